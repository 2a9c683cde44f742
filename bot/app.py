"""Composition root: builds the store, library and core, then runs the transports."""

from __future__ import annotations

import logging
import sys

from bot.config import Settings
from bot.core import Core
from bot.knowledge.models import KnowledgeBase
from bot.library import Library
from bot.store.db import Database
from bot.store.repositories import Repository
from bot.transports.console import ConsoleTransport

logger = logging.getLogger(__name__)


async def chat(settings: Settings, kb: KnowledgeBase) -> int:
    """The terminal conversation."""
    async with Database(settings.database) as db:
        core = Core(Library(kb, settings.search), settings, Repository(db))
        await ConsoleTransport(core).run()
    return 0


async def serve(settings: Settings, kb: KnowledgeBase) -> int:
    """Serve every platform whose credentials are set."""
    if not (settings.telegram.configured or settings.matrix.configured):
        print(
            "error: no platform is configured: set BOT_TELEGRAM__TOKEN for Telegram, or "
            "BOT_MATRIX__HOMESERVER, BOT_MATRIX__USER_ID and BOT_MATRIX__ACCESS_TOKEN for Matrix "
            "(python -m bot chat needs none)",
            file=sys.stderr,
        )
        return 1
    raise NotImplementedError
