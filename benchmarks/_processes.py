"""What alerts.py and load.py share: a fresh store, the bot as child processes, a clean stop.

``--database`` picks the store: ``sqlite`` (default: a file in a temporary directory),
``postgres`` (a throwaway server from Debian's initdb/pg_ctl, tests/support/postgres.py) or a
``postgresql://`` URL. On PostgreSQL a benchmark never touches existing data: it creates a
database of its own on that server (``bench_<8 hex digits>``; the role needs CREATEDB), runs in
it and drops it at the end. ``--processes N`` runs the bot as N ``python -m bot run`` children
(tests/support/process.py), which only PostgreSQL lets share a store.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import asyncpg
from support.environment import child_environment, database_setting
from support.process import BotProcess
from support.telegram_emulator import TelegramEmulator

from bot.clock import SystemClock
from bot.knowledge.models import KnowledgeBase
from bot.store.db import Database
from bot.store.repositories import Repository
from bot.store.url import PostgresUrl, is_postgres_url

ROOT = Path(__file__).resolve().parent.parent
POLL = 0.05  # seconds between two looks at a condition (outbox counts, a log, a port)


class Failure(Exception):
    """The benchmark cannot go on; the message is one line for the person running it."""


# -- arguments ---------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser, processes_help: str) -> None:
    parser.add_argument(
        "--database",
        default="sqlite",
        help="sqlite (a temporary file, the default), postgres (a throwaway server: needs "
        "Debian's postgresql package) or postgresql://user:password@host:port/dbname (a "
        "database of the benchmark's own is created there and dropped after)",
    )
    parser.add_argument("--processes", type=int, default=1, help=processes_help)


def argument_error(args: argparse.Namespace) -> str | None:
    """What is wrong with ``--database`` / ``--processes``, in one line, or None."""
    if args.database not in ("sqlite", "postgres") and not is_postgres_url(args.database):
        return (
            f"--database {args.database!r}: use sqlite, postgres or a postgresql:// URL "
            "(the benchmark starts from an empty store of its own, never from a given file)"
        )
    if args.processes < 1:
        return "--processes: at least 1"
    if args.processes > 1 and args.database == "sqlite":
        return (
            f"--processes {args.processes} needs PostgreSQL: several bot processes do not "
            "share a SQLite file; add --database postgres (a throwaway server) or "
            "--database postgresql://..."
        )
    return None


@dataclass(frozen=True)
class Server:
    """A PostgreSQL server to run on: ``url`` names a database there that already exists."""

    url: PostgresUrl
    throwaway: bool


def main(
    args: argparse.Namespace, job: Callable[[Server | None], Coroutine[Any, Any, None]]
) -> int:
    """Check the arguments, start a throwaway server if asked, run ``job(server)`` (None:
    SQLite) in an event loop: 0 when it ends, 2 for bad arguments, 1 for a ``Failure``, 130
    on Ctrl-C; never a traceback for those."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_DFL:  # set so by the benchmark's imports
        signal.signal(signal.SIGINT, signal.default_int_handler)
    error = argument_error(args)
    if error is not None:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        with _server(args.database) as server:
            asyncio.run(job(server))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Failure as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


@contextlib.contextmanager
def _server(choice: str) -> Iterator[Server | None]:
    """The URL of a database on the server to use (None: SQLite); for ``postgres`` a
    throwaway server, stopped and deleted on exit."""
    if choice == "sqlite":
        yield None
        return
    if choice != "postgres":
        try:
            url = PostgresUrl(choice)
        except ValueError as exc:
            raise Failure(str(exc)) from None
        yield Server(url, throwaway=False)
        return
    # Imported here: it brings pytest along, which the SQLite runs do without.
    from support.postgres import find_binaries, running

    binaries = find_binaries()
    if binaries is None:
        raise Failure("PostgreSQL (initdb, pg_ctl) is not installed: apt-get install postgresql")
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(running(binaries))
        except RuntimeError as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise Failure(f"the throwaway PostgreSQL server did not start: {first}") from None
        yield Server(server.url("postgres"), throwaway=True)


# -- the store ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Store:
    """Where the bot processes keep their state, and how to say so."""

    location: Path | PostgresUrl
    description: str

    @property
    def setting(self) -> str:
        """The value of BOT_DATABASE (a URL with its password)."""
        return database_setting(self.location)


@contextlib.asynccontextmanager
async def fresh_store(server: Server | None) -> AsyncIterator[Store]:
    """An empty store: a SQLite file in a temporary directory, or a new database on
    ``server`` (dropped on exit)."""
    if server is None:
        with tempfile.TemporaryDirectory(prefix="bot-bench-") as tmp:
            yield Store(Path(tmp) / "bench.sqlite3", "SQLite, a temporary file")
        return
    name = f"bench_{secrets.token_hex(4)}"
    version = await _admin(server.url, f'CREATE DATABASE "{name}"')
    location = _on_database(server.url, name)
    where = "a throwaway server" if server.throwaway else f"the server of {server.url}"
    try:
        yield Store(
            location,
            f"PostgreSQL {version} on {where}, database {name} created for this run "
            "(dropped after)",
        )
    finally:
        try:
            await _admin(server.url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except Failure as exc:
            print(f"warning: {exc}: drop database {name} by hand", file=sys.stderr)


async def _admin(server: PostgresUrl, statement: str) -> str:
    """Run ``statement`` on ``server``; returns the server's version."""
    try:
        conn = await asyncpg.connect(server.dsn, timeout=10)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
        raise Failure(f"cannot connect to {server}: {_one_line(exc)}") from None
    try:
        await conn.execute(statement)
        return str(await conn.fetchval("SHOW server_version")).split()[0]
    except asyncpg.PostgresError as exc:
        hint = ""
        if isinstance(exc, asyncpg.InsufficientPrivilegeError):
            hint = " (the benchmark runs in a database of its own: the role needs CREATEDB)"
        raise Failure(f"{statement} on {server} failed: {_one_line(exc)}{hint}") from None
    finally:
        await conn.close()


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _on_database(url: PostgresUrl, name: str) -> PostgresUrl:
    """``url`` naming database ``name`` instead (host, port, user, password and options
    kept)."""
    parts = urlsplit(url.dsn)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "dbname"]
    tail = "?" + urlencode(query, safe="/:", quote_via=quote) if query else ""
    # Built by hand: urlunsplit drops the empty authority of postgresql:///db?host=/socket.
    return PostgresUrl(f"{parts.scheme}://{parts.netloc}/{name}{tail}")


@contextlib.asynccontextmanager
async def prepared(store: Store, kb: KnowledgeBase) -> AsyncIterator[Database]:
    """The store open (migrated here, so the children never race to) with the knowledge
    base's own events published already, as a first start leaves it: starting processes
    queue nothing."""
    async with Database(store.location) as db:
        repository = Repository(db)
        for event in kb.events:
            await repository.publish_event(event, SystemClock().now())
        yield db


# -- the bot processes -------------------------------------------------------------------------


def bot_environment(emulator: TelegramEmulator, store: Store, **settings: str) -> dict[str, str]:
    """The environment of one child: the emulator, the store, ``settings``; nothing else of
    ours (tests/support/environment.py)."""
    defaults = {
        "BOT_TELEGRAM__TOKEN": emulator.token,
        "BOT_TELEGRAM__BASE_URL": emulator.base_url,
        "BOT_DATABASE": store.setting,
        # The knowledge's vectors as a deployed bot has them after its first start.
        "BOT_SEARCH__VECTOR_CACHE": str(ROOT / "data" / "vectors.sqlite3"),
        "BOT_LOG_LEVEL": "WARNING",
    }
    return child_environment(**{**defaults, **settings})


class Bots:
    """The ``python -m bot run`` children of a benchmark, each logging to a file of its own in
    a temporary directory.

    Leaving the ``async with`` block stops those still running (SIGTERM, SIGKILL after 20 s).
    """

    def __init__(self, emulator: TelegramEmulator) -> None:
        self.emulator = emulator
        self.processes: list[BotProcess] = []
        self._logs = tempfile.TemporaryDirectory(prefix="bot-bench-logs-")

    async def spawn(self, env: dict[str, str]) -> BotProcess:
        log = Path(self._logs.name) / f"bot-{len(self.processes) + 1}.log"
        bot = BotProcess(self.emulator, env, log)
        self.processes.append(bot)
        await bot.spawn()
        return bot

    async def check(self) -> None:
        """Raise ``Failure`` if a child has exited, with the end of its log."""
        for n, bot in enumerate(self.processes, 1):
            if bot.proc is not None and bot.proc.returncode is not None:
                tail = (await bot.output()).strip().splitlines()[-3:]
                raise Failure(
                    f"bot process {n} exited with status {bot.proc.returncode}: "
                    + (" | ".join(tail) or "no output")
                )

    async def until(
        self, condition: Callable[[], Awaitable[bool]], what: str, timeout: float | None = 60.0
    ) -> None:
        """Wait for ``condition`` while every child runs (``Failure`` if one exits or
        ``timeout`` passes first)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not await condition():
            await self.check()
            if deadline is not None and time.monotonic() > deadline:
                raise Failure(f"waited {timeout:.0f} s for {what}")
            await asyncio.sleep(POLL)

    def peak_memory_mb(self) -> list[float]:
        """Each running child's high-water mark of resident memory (VmHWM), in MB."""
        return [_peak_memory_mb(bot.proc.pid) for bot in self.processes if bot.proc is not None]

    async def stop(self) -> None:
        """SIGTERM to each (a graceful stop: sends under way finish and are recorded)."""
        await asyncio.gather(*(_stop(bot) for bot in self.processes))

    async def __aenter__(self) -> Bots:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.stop()
        finally:
            self._logs.cleanup()


async def _stop(bot: BotProcess) -> None:
    if bot.proc is not None and bot.proc.returncode is None:
        # Already gone (ProcessLookupError) or stuck (TimeoutError): SIGKILL settles both.
        with contextlib.suppress(ProcessLookupError, TimeoutError):
            await bot.terminate()
    await bot.kill()


def _peak_memory_mb(pid: int) -> float:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return float("nan")
    for line in lines:
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")
