"""Load benchmark: simulated users ask questions concurrently through the Bot API emulator.

Phase 1: N users, each asking a question, waiting for the reply, pausing, asking again.
Phase 2: the same, plus one user flooding 100 messages a second. Prints throughput, p50/p99
reply latency per phase, the round trip of a single question on an idle bot, and each bot
process's peak memory (the bot runs as ``python -m bot run`` children). Asserts nothing.

The store starts empty: a temporary SQLite file, or on PostgreSQL a database the benchmark
creates and drops (benchmarks/_processes.py). On SQLite one process long-polls getUpdates, as
before. On PostgreSQL ``--processes`` processes serve webhooks (each on a port of its own) and
this process posts every update to one of them in turn, as a reverse proxy would; one process
too, so that 1 and N differ only in the number of processes (a webhook process also records
each update id in the store, which polling does not).

    python benchmarks/load.py [--users 1000] [--seconds 30] [--quick]
        [--database sqlite|postgres|postgresql://...] [--processes 1]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable
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
from aiohttp import ClientError, ClientSession, ClientTimeout  # noqa: E402
from support.telegram_emulator import TelegramEmulator  # noqa: E402

from bot.knowledge.loader import load_knowledge  # noqa: E402

TOKEN = "123456:LOAD-token-for-the-emulator"
SECRET = "load-benchmark-secret"
FLOODER = 9_999_999

Ask = Callable[[str, int], Awaitable[None]]
"""Put a user's question to the bot: ``ask(text, user_id)``."""


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return (
        ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]
        if ordered
        else float("nan")
    )


class Users:
    """Simulated users: each asks, waits for the reply to its chat, pauses, asks again."""

    def __init__(
        self, emulator: TelegramEmulator, ask: Ask, questions: list[str], pause: float
    ) -> None:
        self.emulator = emulator
        self.ask = ask
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
            await self.ask(rng.choice(self.questions), user_id)
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
            await asyncio.gather(users.ask("article 33", FLOODER), asyncio.sleep(0.01))

    watch = asyncio.create_task(watcher())
    try:
        await asyncio.gather(*(users.user(1000 + i, until, rng) for i in range(n)), flooder())
    finally:
        watch.cancel()
    return len(users.latencies), percentile(users.latencies, 50), percentile(users.latencies, 99)


def free_ports(n: int) -> list[int]:
    """``n`` distinct TCP ports free on 127.0.0.1 just now."""
    ports: set[int] = set()
    while len(ports) < n:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.add(int(s.getsockname()[1]))
    return sorted(ports)


async def listening(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True


async def start_polling(bots: Bots, emulator: TelegramEmulator, env: dict[str, str]) -> Ask:
    """One process long-polling the emulator; questions go into its getUpdates queue."""
    await bots.spawn(env)

    async def polling() -> bool:
        return bool(emulator.calls_to("getUpdates"))

    await bots.until(polling, "the bot to poll")

    async def ask(text: str, user_id: int) -> None:
        emulator.send_message(text, user_id=user_id)

    return ask


async def start_webhooks(
    bots: Bots,
    emulator: TelegramEmulator,
    env: dict[str, str],
    processes: int,
    session: ClientSession,
) -> Ask:
    """``processes`` webhook processes; questions are posted to each in turn."""
    ports = free_ports(processes)
    await asyncio.gather(
        *(
            bots.spawn(
                {
                    **env,
                    "BOT_TELEGRAM__WEBHOOK_URL": f"http://127.0.0.1:{port}/telegram",
                    "BOT_TELEGRAM__SECRET_TOKEN": SECRET,
                    "BOT_TELEGRAM__PORT": str(port),
                }
            )
            for port in ports
        )
    )

    async def all_listening() -> bool:
        return all(await asyncio.gather(*(listening(port) for port in ports)))

    await bots.until(all_listening, "the bot processes to listen", timeout=120)
    urls = itertools.cycle(f"http://127.0.0.1:{port}/telegram" for port in ports)
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}

    async def ask(text: str, user_id: int) -> None:
        # As Telegram through a reverse proxy: the update to the next process in turn, on
        # connections kept open (one session), not a new one per update.
        url = next(urls)
        update = emulator.send_message(text, user_id=user_id, queue=False)
        try:
            async with session.post(url, json=update, headers=headers) as response:
                await response.read()
        except (ClientError, TimeoutError) as exc:
            await bots.check()
            raise Failure(f"posting an update to {url} failed: {exc!r}") from None
        if response.status != 200:
            raise Failure(f"{url} answered an update with HTTP {response.status}")

    return ask


async def run(server: Server | None, args: argparse.Namespace) -> None:
    kb = load_knowledge(ROOT / "knowledge")
    questions = [q for fact in kb.facts for q in fact.questions.all()]
    emulator = TelegramEmulator(token=TOKEN)
    webhook = server is not None
    async with emulator, fresh_store(server) as store:
        async with prepared(store, kb):
            pass
        env = bot_environment(
            emulator,
            store,
            BOT_TELEGRAM__POLL_TIMEOUT="1",
            BOT_TELEGRAM__RATE_LIMIT="true" if args.rate_limit else "false",
        )
        async with Bots(emulator) as bots, ClientSession(timeout=ClientTimeout(30)) as session:
            if webhook:
                ask = await start_webhooks(bots, emulator, env, args.processes, session)
            else:
                ask = await start_polling(bots, emulator, env)
            users = Users(emulator, ask, questions, args.pause)
            single = []
            for n, question in enumerate(questions[:50]):
                start = time.monotonic()
                before = len(emulator.calls_to("sendMessage"))
                await ask(question, 500 + n)
                try:
                    calls = await emulator.wait_for("sendMessage", count=before + 1, timeout=10)
                except TimeoutError:
                    await bots.check()
                    raise Failure("no reply within 10 s to a question on an idle bot") from None
                single.append((calls[before].time - start) * 1000)
            mode = "1 process polling getUpdates"
            if webhook:
                mode = "1 webhook process"
                if args.processes > 1:
                    mode = f"{args.processes} webhook processes, updates posted to each in turn"
            print(
                f"load benchmark: {len(kb.facts)} facts, {args.users} users, "
                f"{args.seconds:.0f} s per phase, outgoing rate limiter "
                f"{'on (Telegram: about 30/s)' if args.rate_limit else 'off'}, "
                f"pause {args.pause:.1f} s between a user's questions\n"
                f"  store: {store.description}; {mode}; {os.cpu_count()} CPUs\n"
                f"  idle round trip per question: p50 {percentile(single, 50):.1f} ms, "
                f"p99 {percentile(single, 99):.1f} ms"
            )
            for flood in (False, True):
                replies, p50, p99 = await phase(users, args.users, args.seconds, flood)
                label = "with one user flooding 100 msg/s" if flood else "no flooding"
                print(
                    f"  {label:<34} {replies / args.seconds:7.1f} replies/s, "
                    f"p50 {p50:7.1f} ms, p99 {p99:7.1f} ms"
                )
            memory = ", ".join(f"{mb:.0f}" for mb in bots.peak_memory_mb())
            which = "the bot process" if args.processes == 1 else "each bot process"
            print(f"  peak memory of {which}: {memory} MB")
            await bots.stop()


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
    add_arguments(
        parser, "bot processes sharing the load: webhooks on PostgreSQL; SQLite: 1, polling"
    )
    args = parser.parse_args()
    if args.quick:
        args.users, args.seconds = 100, 5.0
    return run_benchmark(args, lambda server: run(server, args))


if __name__ == "__main__":
    raise SystemExit(main())
