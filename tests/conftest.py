"""Shared fixtures: the real knowledge base, settings on a temporary database, the core, and one
throwaway Synapse homeserver and one PostgreSQL server for the whole session.

The store is SQLite unless a test module overrides the ``backend`` fixture, e.g. with
``params=["sqlite", "postgres"]`` to run its tests against both."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from support.curation import Served, serving
from support.postgres import PostgresServer
from support.postgres import running_or_skip as postgres_or_skip
from support.synapse import SynapseServer, running_or_skip
from support.telegram_emulator import TelegramEmulator

from bot.config import REPO_ROOT, Settings
from bot.core import Core
from bot.knowledge.loader import load_knowledge
from bot.knowledge.models import KnowledgeBase
from bot.library import Library
from bot.store.db import Database
from bot.store.repositories import Repository
from bot.store.url import PostgresUrl

SEEDS = REPO_ROOT.parent / "shared" / "seeds"
# One cache of the knowledge's passage vectors for every test and every bot process they start,
# so the model embeds the knowledge once per machine, not once per temporary database.
os.environ.setdefault("BOT_SEARCH__VECTOR_CACHE", str(REPO_ROOT / "data" / "test-vectors.sqlite3"))
# The commands tests run never read or write the developer's own database (data/bot.sqlite3):
# a language chosen there in a terminal chat would change what the tests see.
_SESSION_DIR = tempfile.mkdtemp(prefix="bot-tests-")
atexit.register(shutil.rmtree, _SESSION_DIR, ignore_errors=True)
os.environ["BOT_DATABASE"] = str(Path(_SESSION_DIR) / "bot.sqlite3")
TELEGRAM_TOKEN = "123456:TEST-token-for-the-emulator"
BOT_NAME = "AdvocacyTestBot"


@pytest.fixture
async def emulator() -> AsyncIterator[TelegramEmulator]:
    """The Bot API emulator on 127.0.0.1, with the bot account the Telegram tests use."""
    emu = TelegramEmulator(token=TELEGRAM_TOKEN, bot_username=BOT_NAME)
    await emu.start()
    try:
        yield emu
    finally:
        await emu.stop()


@pytest.fixture(scope="session")
def kb() -> KnowledgeBase:
    return load_knowledge(REPO_ROOT / "knowledge")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session (skipped if not installed, unless CI=true)."""
    with postgres_or_skip() as server:
        yield server


@pytest.fixture
def backend() -> str:
    """Which store the ``database`` fixture makes: "sqlite" or "postgres"."""
    return "sqlite"


@pytest.fixture
async def database(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Path | PostgresUrl]:
    """A fresh store: a SQLite file in tmp_path, or a new database on the session's server."""
    if backend == "sqlite":
        yield tmp_path / "bot.sqlite3"
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    async with server.database() as url:
        yield url


@pytest.fixture
def settings(database: Path | PostgresUrl) -> Settings:
    return Settings(database=database)


@pytest.fixture(scope="session")
def library(kb: KnowledgeBase) -> Library:
    return Library(kb)


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    async with Database(settings.database) as database:
        yield database


@pytest.fixture
async def core(kb: KnowledgeBase, settings: Settings, db: Database) -> Core:
    return Core(Library(kb, settings.search), settings, Repository(db))


@pytest.fixture
async def served(
    emulator: TelegramEmulator, kb: KnowledgeBase, db: Database
) -> AsyncIterator[Served]:
    """The Telegram bot with its delivery worker, as an admin and users talk to it."""
    async with serving(emulator, kb, db) as running:
        yield running


@pytest.fixture(scope="session")
def synapse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SynapseServer]:
    """One homeserver for the whole test session (skipped if unavailable, unless CI=true).

    Tests share it, so each registers its own users under unique localparts.
    """
    with running_or_skip(tmp_path_factory.mktemp("synapse")) as server:
        yield server
