"""Events another process publishes (``python -m bot events publish FILE``) reaching this one.

The command writes to the database only. Each running bot reads what was published since it
last looked, every few seconds, so a new event is on its timeline and answers questions here
even when no chat follows its topics (the delivery worker learns of the others as it sends
them), and the questions waiting for such an answer are matched again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from bot.errors import StoreUnavailable
from bot.library import Library
from bot.store.repositories import Repository

logger = logging.getLogger(__name__)

FOLLOW_EVERY = 2.0


class PublishedEvents:
    """Puts the events published since the last look into the library."""

    def __init__(
        self,
        repository: Repository,
        library: Library,
        on_new: Callable[[], None] = lambda: None,
        interval: float = FOLLOW_EVERY,
    ) -> None:
        self.repository = repository
        self.library = library
        self.on_new = on_new
        self.interval = interval
        # Seconds, as stored; rows of the second last seen are read again, known ids skipped.
        self._since = 0

    async def catch_up(self) -> int:
        """Put the events published since the last call that the library lacks (an event it
        holds keeps that version: knowledge/ and admins' entries win); how many."""
        new = 0
        for published_at, event in await self.repository.published_events_since(self._since):
            self._since = max(self._since, published_at)
            if event.id not in self.library.events:
                self.library.put_event(event)
                new += 1
        if new:
            logger.info("events.followed", extra={"events": new})
            self.on_new()
        return new

    async def run(self, stop: asyncio.Event) -> None:
        store_down = False
        while not stop.is_set():
            try:
                await self.catch_up()
                store_down = False
            except StoreUnavailable as exc:
                if not store_down:
                    logger.warning("events.store_unavailable", extra={"error": str(exc)})
                store_down = True
            except Exception:
                # Following must not stop the bot: the next look tries again.
                logger.exception("events.follow_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)
