"""A throwaway PostgreSQL server for the tests, from Debian's ``postgresql`` package.

``initdb`` and ``pg_ctl`` make and start a cluster in a fresh temporary directory; the server
listens only on a Unix socket in that directory (no TCP port), trusts local logins, and keeps
nothing after ``stop``. PostgreSQL refuses to run as root, so as root (CI, containers) the
cluster belongs to the ``postgres`` user the package creates (else ``nobody``) and the server
runs as that user; the tests connect as the database superuser over the socket.

Typical use, from a session-scoped fixture::

    with running_or_skip() as server:
        async with server.database() as url:   # a new, empty database
            async with Database(url) as db: ...
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import asyncpg
import pytest

from bot.store.url import PostgresUrl

__all__ = ["PostgresServer", "binaries_or_skip", "find_binaries", "running", "running_or_skip"]

PORT: Final = 5432  # names the socket file only: every server has a directory of its own
SUPERUSER: Final = "postgres"
_names = itertools.count(1)


def find_binaries() -> Path | None:
    """The directory holding initdb and pg_ctl: Debian's newest /usr/lib/postgresql/N/bin, else
    the PATH."""
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    for directory in versions:
        if (directory / "initdb").is_file() and (directory / "pg_ctl").is_file():
            return directory
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl", path=str(Path(initdb).parent)):
        return Path(initdb).parent
    return None


def _server_account() -> pwd.struct_passwd | None:
    """The account to run the server as when we are root (PostgreSQL will not run as root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError("running as root, and there is neither a postgres nor a nobody user")


@dataclass
class PostgresServer:
    """One cluster in ``directory``: ``start``, ``stop``, and a new database per test."""

    directory: Path
    binaries: Path
    account: pwd.struct_passwd | None = field(default_factory=_server_account)

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def socket_dir(self) -> Path:
        return self.directory / "socket"

    @property
    def log(self) -> Path:
        return self.directory / "server.log"

    def url(self, database: str) -> PostgresUrl:
        """The URL of ``database`` on this server, in the ``?host=/socket/dir`` form."""
        return PostgresUrl(
            f"postgresql:///{database}?host={self.socket_dir}&port={PORT}&user={SUPERUSER}"
        )

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        as_account: dict[str, Any] = {}
        if self.account is not None:
            as_account = {
                "user": self.account.pw_uid,
                "group": self.account.pw_gid,
                "extra_groups": [],
            }
        result = subprocess.run(
            [str(self.binaries / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=self.directory,
            **as_account,
        )
        if result.returncode != 0:
            log = self.log.read_text("utf-8", "replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{args[0]} failed: {result.stderr.strip()}\n{log}")
        return result

    def initdb(self) -> None:
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if self.account is not None:
            for path in (self.directory, self.socket_dir):
                os.chown(path, self.account.pw_uid, self.account.pw_gid)
        self._run(
            "initdb",
            "--pgdata",
            str(self.data_dir),
            "--username",
            SUPERUSER,
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--locale",
            "C",
            "--no-sync",
            "--no-instructions",
        )

    def start(self) -> None:
        """Start and wait until the server accepts connections."""
        options = " ".join(
            [
                f"-k {self.socket_dir}",
                f"-p {PORT}",
                "-c listen_addresses=''",
                # A throwaway cluster: durability buys nothing here and costs seconds.
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
            ]
        )
        self._run(
            "pg_ctl", "start", "--wait", "--timeout", "60", "--pgdata", str(self.data_dir),
            "--log", str(self.log), "--options", options,
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """Stop and wait until the server is gone (``fast`` ends open sessions)."""
        self._run("pg_ctl", "stop", "--wait", "--mode", mode, "--pgdata", str(self.data_dir))

    @property
    def running(self) -> bool:
        return (self.data_dir / "postmaster.pid").exists()

    @contextlib.asynccontextmanager
    async def database(self) -> AsyncIterator[PostgresUrl]:
        """A new empty database for one test, dropped afterwards."""
        name = f"bot_test_{os.getpid()}_{next(_names)}"
        admin = await asyncpg.connect(self.url("postgres").dsn)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        try:
            yield self.url(name)
        finally:
            if self.running:
                admin = await asyncpg.connect(self.url("postgres").dsn)
                try:
                    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                finally:
                    await admin.close()


@contextlib.contextmanager
def running(binaries: Path) -> Iterator[PostgresServer]:
    """A new cluster, started; stopped and deleted on exit."""
    # Not under pytest's tmp_path: that is private to root, and the server may run as another
    # user. mkdtemp makes the directory readable by its owner only; it is handed to that user.
    directory = Path(tempfile.mkdtemp(prefix="bot-pg-"))
    server = PostgresServer(directory, binaries)
    try:
        server.initdb()
        server.start()
        yield server
    finally:
        if server.running:
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                server.stop("immediate")
        shutil.rmtree(directory, ignore_errors=True)


def binaries_or_skip() -> Path:
    """``find_binaries()``, or a skip when PostgreSQL is not installed (a failure when CI=true)."""
    binaries = find_binaries()
    if binaries is None:
        message = "PostgreSQL (initdb, pg_ctl) is not installed: apt-get install postgresql"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return binaries


@contextlib.contextmanager
def running_or_skip() -> Iterator[PostgresServer]:
    """``running``, or a skip when PostgreSQL is not installed (a failure when CI=true)."""
    with running(binaries_or_skip()) as server:
        yield server
