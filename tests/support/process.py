"""``python -m bot run`` as a child process of a test, against the Bot API emulator."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from bot.config import REPO_ROOT
from bot.store.url import PostgresUrl
from support.cli import free_port
from support.environment import child_environment, database_setting
from support.telegram_emulator import Call, TelegramEmulator

Output = int | IO[Any]  # where a child's output goes: DEVNULL, PIPE, STDOUT or an open file


async def spawn_run(
    env: dict[str, str], *, stdout: Output = asyncio.subprocess.DEVNULL, stderr: Output
) -> asyncio.subprocess.Process:
    """``python -m bot run`` from the repository, with no input, as a shell would start it."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        cwd=REPO_ROOT,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
    )


async def run_to_end(
    env: dict[str, str], *args: str, timeout: float = 60.0
) -> tuple[int, str, str]:
    """``python -m bot ARGS`` until it exits by itself (killed after ``timeout``): status,
    stdout, stderr."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=REPO_ROOT,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def bot_env(
    emulator: TelegramEmulator, database: Path | PostgresUrl, **extra: str
) -> dict[str, str]:
    """The environment of a bot child process on ``database`` (a PostgreSQL URL with its
    password): ours only, none of the caller's BOT_ settings."""
    env = child_environment()
    env.update(
        BOT_TELEGRAM__TOKEN=emulator.token,
        BOT_TELEGRAM__BASE_URL=emulator.base_url,
        BOT_TELEGRAM__POLL_TIMEOUT="1",
        BOT_DATABASE=database_setting(database),
    )
    env.update(extra)
    return env


class BotProcess:
    """``python -m bot run`` as a child process, its output appended to ``log``.

    Used as an async context manager, so the child is always killed and reaped.
    """

    def __init__(self, emulator: TelegramEmulator, env: dict[str, str], log: Path) -> None:
        self.emulator = emulator
        self.env = env
        self.log = log
        self.proc: asyncio.subprocess.Process | None = None
        self.spawned = 0.0

    async def spawn(self) -> None:
        self.spawned = time.monotonic()
        out = await asyncio.to_thread(self.log.open, "ab")
        try:
            self.proc = await spawn_run(self.env, stdout=out, stderr=asyncio.subprocess.STDOUT)
        finally:
            out.close()

    def started_after_spawn(self, call: Call) -> bool:
        return call.time >= self.spawned

    async def ready(self, timeout: float = 30.0) -> None:
        """Wait for this process's first long poll (it has initialised and is serving)."""
        await self.emulator.wait_for(
            "getUpdates", timeout=timeout, predicate=self.started_after_spawn
        )

    async def start(self) -> None:
        await self.spawn()
        await self.ready()

    async def kill(self) -> None:
        """SIGKILL: no cleanup of any kind runs in the child."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
        if self.proc is not None:
            await self.proc.wait()

    async def terminate(self) -> int:
        """SIGTERM, the graceful stop; returns the exit status."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.proc.wait(), 20)

    async def output(self) -> str:
        return await asyncio.to_thread(self.log.read_text, "utf-8", "replace")

    async def wait_for_log(self, needle: str, timeout: float = 60.0) -> None:
        """Wait until the child's output holds ``needle`` (a log line it writes)."""
        deadline = time.monotonic() + timeout
        while needle not in await self.output():
            if self.proc is not None and self.proc.returncode is not None:
                raise AssertionError(f"the bot exited before logging {needle!r}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the bot did not log {needle!r} within {timeout} s")
            await asyncio.sleep(0.05)

    async def __aenter__(self) -> BotProcess:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.kill()


# -- several webhook processes behind one address ----------------------------------------------

SECRET = "s3cret-Token"


def webhook_env(
    emulator: TelegramEmulator, database: Path | PostgresUrl, port: int, **extra: str
) -> dict[str, str]:
    """A child serving Telegram's webhook on ``port`` (as behind a reverse proxy)."""
    return bot_env(
        emulator,
        database,
        BOT_TELEGRAM__WEBHOOK_URL=f"http://127.0.0.1:{port}/telegram",
        BOT_TELEGRAM__SECRET_TOKEN=SECRET,
        BOT_TELEGRAM__PORT=str(port),
        **extra,
    )


async def listening(port: int, timeout: float = 60.0) -> None:
    """Wait until something accepts connections on ``port``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"nothing listens on port {port} after {timeout} s") from None
            await asyncio.sleep(0.1)
            continue
        writer.close()
        await writer.wait_closed()
        return


@asynccontextmanager
async def webhook_processes(
    emulator: TelegramEmulator, database: Path | PostgresUrl, logs: Path, **extra: str
) -> AsyncIterator[tuple[list[BotProcess], list[str]]]:
    """Two ``python -m bot run`` children on one database, each serving the webhook on a port
    of its own, started and listening: the processes and their webhook URLs. Both are killed
    at the end."""
    ports = [free_port(), free_port()]
    async with (
        BotProcess(
            emulator, webhook_env(emulator, database, ports[0], **extra), logs / "a.log"
        ) as a,
        BotProcess(
            emulator, webhook_env(emulator, database, ports[1], **extra), logs / "b.log"
        ) as b,
    ):
        await asyncio.gather(a.spawn(), b.spawn())
        await asyncio.gather(*(listening(port) for port in ports))
        yield [a, b], [f"http://127.0.0.1:{port}/telegram" for port in ports]
