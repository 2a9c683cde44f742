"""Shared fixtures: the real knowledge base, settings on a temporary database, the core."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.config import REPO_ROOT, Settings
from bot.core import Core
from bot.knowledge.loader import load_knowledge
from bot.knowledge.models import KnowledgeBase
from bot.library import Library
from bot.store.db import Database
from bot.store.repositories import Repository

SEEDS = REPO_ROOT.parent / "shared" / "seeds"


@pytest.fixture(scope="session")
def kb() -> KnowledgeBase:
    return load_knowledge(REPO_ROOT / "knowledge")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(database=tmp_path / "bot.sqlite3")


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
