"""Alert fan-out benchmark: one event to N subscribed Telegram chats through the Bot API emulator,
with faults (429 with retry_after, 5xx, timeouts) injected into a share of the calls.

The bot runs as ``--processes`` children ``python -m bot run`` with ``BOT_ROLES=["alerts"]``
and ``BOT_ALERTS__TELEGRAM_PER_SECOND=--rate``, all on one store (several need PostgreSQL).
The store starts empty (a temporary SQLite file, or on PostgreSQL a database the benchmark
creates and drops: see benchmarks/_processes.py); this process subscribes the chats, starts
the children (one of them leads the sending, the others stand by to take over), then
publishes the event through ``Repository.publish_event``.

Prints, from the emulator's call times: total time from publishing to the last delivery,
achieved messages per second, the peak number of sendMessage calls in any sliding 1 s window
summed over all processes (what must never pass the configured limit, however the processes
share it), the maximum per-chat rate, duplicates and lost alerts. Asserts nothing.

    python benchmarks/alerts.py [--chats 10000] [--rate 30] [--faults 0.05] [--quick]
        [--database sqlite|postgres|postgresql://...] [--processes 1]
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

# Until main() runs there is nothing to clean up: Ctrl-C during the imports just ends the
# process, without a traceback (main() turns it back into KeyboardInterrupt).
if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
    signal.signal(signal.SIGINT, signal.SIG_DFL)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from _processes import (  # noqa: E402
    Bots,
    Failure,
    Server,
    add_arguments,
    bot_environment,
    fresh_store,
    prepared,
)
from _processes import main as run_benchmark  # noqa: E402
from support.telegram_emulator import Call, TelegramEmulator  # noqa: E402

from bot.clock import SystemClock  # noqa: E402
from bot.knowledge.loader import load_knowledge  # noqa: E402
from bot.knowledge.models import Event, Localized  # noqa: E402
from bot.store.repositories import Repository  # noqa: E402

TOKEN = "123456:BENCH-token-for-the-emulator"
FIRST_CHAT = 1_000_000
TOPIC = "article-33"


async def run(server: Server | None, args: argparse.Namespace) -> None:
    kb = load_knowledge(ROOT / "knowledge")
    chats = args.chats
    event = Event(
        id="bench-event",
        date="2026-11",
        precision="month",
        title=Localized(en="Benchmark event"),
        summary=Localized(en="A benchmark alert."),
        topics=[TOPIC],
        sources=[kb.sources[0].id],
    )
    emulator = TelegramEmulator(token=TOKEN)
    emulator.timeout_delay = 3.0
    async with emulator, fresh_store(server) as store, prepared(store, kb) as db:
        repository = Repository(db)
        async with db.transaction() as conn:
            await conn.executemany(
                "INSERT INTO subscriptions (platform, chat_id, topic, created_at) "
                "VALUES ('telegram', ?, ?, 0)",
                [(str(FIRST_CHAT + n), TOPIC) for n in range(chats)],
            )
        env = bot_environment(
            emulator,
            store,
            BOT_ROLES='["alerts"]',
            BOT_ALERTS__TELEGRAM_PER_SECOND=str(args.rate),
            BOT_ALERTS__MAX_ATTEMPTS="20",
            BOT_ALERTS__MAX_BACKOFF="10",
            BOT_TELEGRAM__REQUEST_TIMEOUT="1.5",
            BOT_LOG_LEVEL="INFO",  # for "telegram.started"
        )
        async with Bots(emulator) as bots:
            for _ in range(args.processes):
                await start_worker(bots, env)

            emulator.set_fault_rate(args.faults, seed=1)
            start = time.monotonic()
            queued = await repository.publish_event(event, SystemClock().now())
            if queued != chats:
                raise Failure(f"publishing queued the event for {queued} chats, not {chats}")

            async def drained() -> bool:
                counts = await repository.outbox_counts()
                return counts["pending"] == 0 and counts["sending"] == 0

            # Every attempt is recorded before the bot hears its outcome, so once no row is
            # pending or being sent, the emulator's calls are complete.
            await bots.until(drained, "the fan-out to end", timeout=None)
            counts = await repository.outbox_counts()
            await bots.stop()
    report(args, store.description, emulator.calls_to("sendMessage"), start, counts)


async def start_worker(bots: Bots, env: dict[str, str]) -> None:
    """Start one more alerts process; return once it sends or stands by to (one process at a
    time leads the sending, bot/store/leadership.py)."""
    bot = await bots.spawn(env)

    async def started() -> bool:
        output = await bot.output()
        return "telegram.started" in output and any(
            f"{state} job=telegram alerts" in output for state in ("lead.acquired", "lead.standby")
        )

    await bots.until(started, f"alerts process {len(bots.processes)} to start")


def peak_in_a_second(times: list[float]) -> int:
    """The most of ``times`` in any window (t - 1 s, t]."""
    times = sorted(times)
    peak = first = 0
    for last, t in enumerate(times):
        while times[first] <= t - 1.0:
            first += 1
        peak = max(peak, last - first + 1)
    return peak


def report(
    args: argparse.Namespace,
    store: str,
    calls: list[Call],
    start: float,
    counts: dict[str, int],
) -> None:
    subscribed = range(FIRST_CHAT, FIRST_CHAT + args.chats)
    attempts = [c for c in calls if c.params.get("chat_id") in subscribed]
    delivered = [c for c in attempts if c.ok]
    per_chat: dict[int, list[float]] = defaultdict(list)
    for call in attempts:
        per_chat[int(call.params["chat_id"])].append(call.time)
    copies = Counter(int(c.params["chat_id"]) for c in delivered)
    duplicates = sum(n - 1 for n in copies.values() if n > 1)
    lost = args.chats - len(copies)
    last = max((c.time for c in delivered), default=start)
    first = min((c.time for c in attempts), default=start)
    elapsed, sending = last - start, last - first
    processes = f"{args.processes} alerts process{'es' if args.processes > 1 else ''}"
    print(
        f"alerts benchmark: {args.chats} chats, BOT_ALERTS__TELEGRAM_PER_SECOND={args.rate:g}, "
        f"{processes}, faults injected into {args.faults:.0%} of calls "
        f"({len(attempts) - len(delivered)} failed calls)\n"
        f"  store: {store}\n"
        f"  total time {elapsed:.1f} s from publishing to the last delivery, achieved "
        f"{_per_second(len(delivered), elapsed)} msg/s ({_per_second(len(delivered), sending)} "
        f"from the first send, {first - start:.2f} s after publishing)\n"
        f"  peak {peak_in_a_second([c.time for c in attempts])} sendMessage calls in any 1 s "
        f"window, all processes together ({peak_in_a_second([c.time for c in delivered])} "
        f"delivered), max per-chat {max(map(peak_in_a_second, per_chat.values()), default=0)} "
        f"msg/s\n"
        f"  duplicates {duplicates}, lost {lost}, outbox {counts}"
    )


def _per_second(count: int, seconds: float) -> str:
    return f"{count / seconds:.1f}" if seconds > 0 else "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chats", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=30.0, help="BOT_ALERTS__TELEGRAM_PER_SECOND")
    parser.add_argument("--faults", type=float, default=0.05)
    parser.add_argument("--quick", action="store_true", help="300 chats at 200/s (CI)")
    add_arguments(
        parser, "alerts processes delivering the outbox together (more than 1: PostgreSQL only)"
    )
    args = parser.parse_args()
    if args.quick:
        args.chats, args.rate = 300, 200.0

    return run_benchmark(args, lambda server: run(server, args))


if __name__ == "__main__":
    raise SystemExit(main())
