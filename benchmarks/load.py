"""Load benchmark: simulated users ask questions concurrently through the Bot API emulator.

Phase 1: N users, each asking a question, waiting for the reply, pausing, asking again.
Phase 2: the same, plus one user flooding 100 messages a second. Prints throughput, p50/p99
reply latency per phase, the round trip of a single question on an idle bot, and the bot
process's peak memory (the bot runs as `python -m bot run`). Asserts nothing.

    python benchmarks/load.py [--users 1000] [--seconds 60] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from support.telegram_emulator import TelegramEmulator  # noqa: E402

from bot.knowledge.loader import load_knowledge  # noqa: E402

TOKEN = "123456:LOAD-token-for-the-emulator"
FLOODER = 9_999_999


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return (
        ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]
        if ordered
        else float("nan")
    )


class Users:
    """Simulated users: each asks, waits for the reply to its chat, pauses, asks again."""

    def __init__(self, emulator: TelegramEmulator, questions: list[str], pause: float) -> None:
        self.emulator = emulator
        self.questions = questions
        self.pause = pause
        self.waiting: dict[int, tuple[float, asyncio.Future[None]]] = {}
        self.latencies: list[float] = []
        self._seen = 0

    def watch(self) -> None:
        """Match new sendMessage calls to the users waiting on those chats."""
        calls = self.emulator.calls
        for call in calls[self._seen :]:
            if call.method == "sendMessage" and call.ok:
                chat = int(call.params["chat_id"])
                pending = self.waiting.pop(chat, None)
                if pending is not None and not pending[1].done():
                    self.latencies.append((call.time - pending[0]) * 1000)
                    pending[1].set_result(None)
        self._seen = len(calls)

    async def user(self, user_id: int, until: float, rng: random.Random) -> None:
        await asyncio.sleep(rng.random() * self.pause)
        loop = asyncio.get_running_loop()
        while time.monotonic() < until:
            future: asyncio.Future[None] = loop.create_future()
            self.waiting[user_id] = (time.monotonic(), future)
            self.emulator.send_message(rng.choice(self.questions), user_id=user_id)
            try:
                await asyncio.wait_for(future, 30)
            except TimeoutError:
                self.waiting.pop(user_id, None)
            await asyncio.sleep(self.pause * (0.5 + rng.random()))


async def phase(users: Users, n: int, seconds: float, flood: bool) -> tuple[int, float, float]:
    users.latencies = []
    until = time.monotonic() + seconds
    rng = random.Random(n)

    async def watcher() -> None:
        while time.monotonic() < until + 5:
            users.watch()
            await asyncio.sleep(0.002)

    async def flooder() -> None:
        while flood and time.monotonic() < until:
            users.emulator.send_message("article 33", user_id=FLOODER)
            await asyncio.sleep(0.01)

    watch = asyncio.create_task(watcher())
    await asyncio.gather(*(users.user(1000 + i, until, rng) for i in range(n)), flooder())
    watch.cancel()
    return len(users.latencies), percentile(users.latencies, 50), percentile(users.latencies, 99)


def peak_memory_mb(pid: int) -> float:
    """The high-water mark of a process's resident memory (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def run(n_users: int, seconds: float, pause: float, rate_limit: bool) -> None:
    kb = load_knowledge(ROOT / "knowledge")
    questions = [q for fact in kb.facts for q in fact.questions.all()]
    emulator = TelegramEmulator(token=TOKEN)
    await emulator.start()
    with tempfile.TemporaryDirectory() as tmp:
        # The bot runs as its own process, as in production; this process plays Telegram and users.
        env = {
            **os.environ,
            "BOT_TELEGRAM__TOKEN": TOKEN,
            "BOT_TELEGRAM__BASE_URL": emulator.base_url,
            "BOT_TELEGRAM__POLL_TIMEOUT": "1",
            "BOT_TELEGRAM__RATE_LIMIT": "true" if rate_limit else "false",
            "BOT_DATABASE": str(Path(tmp) / "load.sqlite3"),
            # The knowledge's vectors as a deployed bot has them after its first start.
            "BOT_SEARCH__VECTOR_CACHE": str(ROOT / "data" / "vectors.sqlite3"),
            "BOT_LOG_LEVEL": "WARNING",
        }
        bot = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", cwd=ROOT, env=env
        )
        try:
            await emulator.wait_for("getUpdates", timeout=60)
            users = Users(emulator, questions, pause)
            single = []
            for n, question in enumerate(questions[:50]):
                start = time.monotonic()
                before = len(emulator.calls_to("sendMessage"))
                emulator.send_message(question, user_id=500 + n)
                await emulator.wait_for("sendMessage", count=before + 1, timeout=10)
                single.append((time.monotonic() - start) * 1000)
            print(
                f"load benchmark: {len(kb.facts)} facts, {n_users} users, {seconds:.0f} s per phase, "
                f"outgoing rate limiter {'on (Telegram: about 30/s)' if rate_limit else 'off'}, "
                f"pause {pause:.1f} s between a user's questions\n"
                f"  idle round trip per question: p50 {percentile(single, 50):.1f} ms, "
                f"p99 {percentile(single, 99):.1f} ms"
            )
            for flood in (False, True):
                replies, p50, p99 = await phase(users, n_users, seconds, flood)
                label = "with one user flooding 100 msg/s" if flood else "no flooding"
                print(
                    f"  {label:<34} {replies / seconds:7.1f} replies/s, p50 {p50:7.1f} ms, p99 {p99:7.1f} ms"
                )
            print(f"  peak memory of the bot process: {peak_memory_mb(bot.pid):.0f} MB")
        finally:
            bot.send_signal(signal.SIGTERM)
            await asyncio.wait_for(bot.wait(), 30)
    await emulator.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument(
        "--seconds", type=float, default=30.0, help="length of each of the two phases"
    )
    parser.add_argument(
        "--pause", type=float, default=4.0, help="mean pause between a user's questions"
    )
    parser.add_argument("--quick", action="store_true", help="100 users, 5 s phases")
    parser.add_argument(
        "--rate-limit", action="store_true", help="keep PTB's 30/s limiter on (caps replies/s)"
    )
    args = parser.parse_args()
    if args.quick:
        args.users, args.seconds = 100, 5.0
    asyncio.run(run(args.users, args.seconds, args.pause, args.rate_limit))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
