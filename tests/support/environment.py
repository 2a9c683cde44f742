"""The environment of a bot child process the tests start."""

from __future__ import annotations

import os
from pathlib import Path

from bot.store.url import PostgresUrl

SHARED = ("BOT_SEARCH__VECTOR_CACHE",)


def child_environment(**settings: str) -> dict[str, str]:
    """Ours only: none of the caller's BOT_ settings but the shared vector cache (so a child
    does not embed the whole knowledge base again), plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_") or k in SHARED}
    env.update(settings)
    return env


def database_setting(database: Path | PostgresUrl) -> str:
    """The value of BOT_DATABASE for ``database`` (a PostgreSQL URL with its password)."""
    return database.dsn if isinstance(database, PostgresUrl) else str(database)
