"""Alert fan-out benchmark: one event to N subscribed Telegram chats through the Bot API emulator,
with faults (429 with retry_after, 5xx, timeouts) injected into a share of the calls.

Prints total time, achieved messages per second against the configured limit, the maximum
per-chat rate observed, duplicates and lost alerts. Asserts nothing.

    python benchmarks/alerts.py [--chats 10000] [--rate 30] [--faults 0.05] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from support.telegram_emulator import TelegramEmulator  # noqa: E402

from bot import logs  # noqa: E402
from bot.alerts.delivery import DeliveryWorker  # noqa: E402
from bot.alerts.ratelimit import ChatLimits, RateLimiter  # noqa: E402
from bot.clock import SystemClock  # noqa: E402
from bot.config import AlertSettings, Settings, TelegramSettings  # noqa: E402
from bot.core import Core  # noqa: E402
from bot.domain import Platform  # noqa: E402
from bot.knowledge.loader import load_knowledge  # noqa: E402
from bot.knowledge.models import Event, Localized  # noqa: E402
from bot.library import Library  # noqa: E402
from bot.store.db import Database  # noqa: E402
from bot.store.repositories import Repository  # noqa: E402
from bot.transports.telegram import TelegramTransport  # noqa: E402

TOKEN = "123456:BENCH-token-for-the-emulator"


async def run(chats: int, rate: float, faults: float) -> None:
    logs.configure("WARNING")
    kb = load_knowledge(ROOT / "knowledge")
    emulator = TelegramEmulator(token=TOKEN)
    emulator.timeout_delay = 3.0
    await emulator.start()
    with tempfile.TemporaryDirectory() as tmp:
        alerts = AlertSettings(telegram_per_second=rate, max_attempts=20, max_backoff=10)
        settings = Settings(
            database=Path(tmp) / "bench.sqlite3",
            telegram=TelegramSettings(
                token=TOKEN, base_url=emulator.base_url, request_timeout=1.5
            ),
            alerts=alerts,
        )
        async with Database(settings.database) as db:
            repository = Repository(db)
            async with db.transaction() as conn:
                await conn.executemany(
                    "INSERT INTO subscriptions (platform, chat_id, topic, created_at) VALUES (?, ?, ?, 0)",
                    [("telegram", str(1_000_000 + n), "article-33") for n in range(chats)],
                )
            library = Library(kb, settings.search)
            core = Core(library, settings, repository)
            clock = SystemClock()
            limiter = RateLimiter(rate, ChatLimits(alerts.telegram_chat_interval, 20), clock)
            stop = asyncio.Event()
            transport = TelegramTransport(core, settings.telegram, stop, limiter)
            await transport.application.initialize()
            worker = DeliveryWorker(
                repository,
                library,
                {Platform.TELEGRAM: transport},
                {Platform.TELEGRAM: limiter},
                alerts,
                clock,
            )
            event = Event(
                id="bench-event",
                date="2026-11",
                precision="month",
                title=Localized(en="Benchmark event"),
                summary=Localized(en="A benchmark alert."),
                topics=["article-33"],
                sources=[kb.sources[0].id],
            )
            emulator.set_fault_rate(faults, seed=1)
            start = time.perf_counter()
            assert await repository.publish_event(event, clock.now()) == chats
            task = asyncio.create_task(worker.run(stop))
            while True:
                await asyncio.sleep(0.5)
                counts = await repository.outbox_counts()
                if counts["pending"] == 0 and counts["sending"] == 0:
                    break
            elapsed = time.perf_counter() - start
            stop.set()
            await task
            await transport.application.shutdown()
            counts = await repository.outbox_counts()

    delivered: Counter[int] = Counter()
    per_chat_times: dict[int, list[float]] = defaultdict(list)
    all_times: list[float] = []
    for call in emulator.calls_to("sendMessage"):
        if call.ok:
            chat = int(call.params["chat_id"])
            delivered[chat] += 1
            per_chat_times[chat].append(call.time)
            all_times.append(call.time)
    await emulator.stop()
    duplicates = sum(n - 1 for n in delivered.values() if n > 1)
    lost = chats - len(delivered)
    max_per_chat = max(
        (
            sum(1 for u in times if t <= u < t + 1.0)
            for times in per_chat_times.values()
            for t in times
        ),
        default=0,
    )
    all_times.sort()
    peak = 0
    j = 0
    for i, t in enumerate(all_times):
        while all_times[j] < t - 1.0:
            j += 1
        peak = max(peak, i - j + 1)
    print(
        f"alerts benchmark: {chats} chats, limit {rate:.0f}/s, faults injected into {faults:.0%} of calls "
        f"({sum(1 for c in emulator.calls_to('sendMessage') if not c.ok)} failed calls)\n"
        f"  total time {elapsed:.1f} s, achieved {len(all_times) / elapsed:.1f} msg/s "
        f"(peak {peak} in any 1 s window), max per-chat {max_per_chat} msg/s\n"
        f"  duplicates {duplicates}, lost {lost}, outbox {counts}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chats", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--faults", type=float, default=0.05)
    parser.add_argument("--quick", action="store_true", help="300 chats at 200/s (CI)")
    args = parser.parse_args()
    if args.quick:
        args.chats, args.rate = 300, 200.0
    asyncio.run(run(args.chats, args.rate, args.faults))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
