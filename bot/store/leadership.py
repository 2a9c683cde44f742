"""Jobs that one process at a time may do among the processes sharing a store.

Sending alerts (so that the platforms' bot-wide limits hold for the sum of all processes) and
the Matrix sync (so that nothing is answered twice) are such jobs. On PostgreSQL a job is led by
the process holding its advisory lock, on a connection of its own; the others stand by and try
again every ``poll`` seconds. When the leader dies the server ends its session and frees the
lock, so a standby takes over within about ``poll`` seconds. A leader whose lock connection is
lost (a server restart, a network cut, noticed within ``check`` seconds) ends its term at once
and stands by again, so two processes never lead together for longer than that. On SQLite there
is one process: the job simply runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Final

from bot.errors import StoreUnavailable
from bot.store.db import Database, Hold

logger = logging.getLogger(__name__)

# Advisory lock keys, one per job; any 64-bit numbers that no other application on the database
# uses. The Telegram poller's (bot/app.py) is ...0001.
ALERTS_TELEGRAM_LOCK: Final = 0x0B07_7E1E_6A00_0002
MATRIX_LOCK: Final = 0x0B07_7E1E_6A00_0003

Job = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


class Leadership:
    """Runs ``job(term)`` whenever this process leads; ``term`` is set when the lead ends."""

    def __init__(
        self,
        db: Database,
        key: int,
        name: str,
        *,
        settle: float = 0.0,
        poll: float = 1.0,
        check: float = 2.0,
    ) -> None:
        """``settle``: seconds between taking the lead and starting the job (for the sends of
        a leader that just died to leave the rate window first)."""
        self.db = db
        self.settle = settle
        self.key = key
        self.name = name
        self.poll = poll
        self.check = check
        self.leading = False

    async def run(self, job: Job, stop: asyncio.Event) -> None:
        """Stand by, lead, stand by again after a lost lock ... until ``stop`` is set. A job that
        ends by itself (not because its term ended) ends this too."""
        announced_standby = False
        while not stop.is_set():
            try:
                hold = await self.db.try_hold(self.key)
            except StoreUnavailable:
                hold = None
            if hold is None:
                if not announced_standby:
                    logger.info("lead.standby", extra={"job": self.name})
                    announced_standby = True
                await _wait(stop, self.poll)
                continue
            announced_standby = False
            logger.info("lead.acquired", extra={"job": self.name})
            self.leading = True
            try:
                ended_by_itself = await self._term(job, hold, stop)
            finally:
                self.leading = False
                await hold.release()
            if ended_by_itself:
                return
            if not stop.is_set():
                # Others get the first chance: a process that lost its connection may be the
                # one in trouble.
                logger.warning("lead.lost", extra={"job": self.name})
                await _wait(stop, self.poll)

    async def _term(self, job: Job, hold: Hold, stop: asyncio.Event) -> bool:
        """Run the job until it ends, ``stop`` is set or the lock is lost; True if it ended by
        itself."""
        await _wait(stop, self.settle)
        term = asyncio.Event()
        running = asyncio.create_task(job(term))
        waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(hold.lost.wait())]
        try:
            while not (running.done() or stop.is_set() or hold.lost.is_set()):
                await asyncio.wait(
                    [running, *waiters], timeout=self.check, return_when=asyncio.FIRST_COMPLETED
                )
                if not (running.done() or stop.is_set()):
                    await hold.check()
            ended_by_itself = running.done()
            term.set()
            await running
            return ended_by_itself
        finally:
            term.set()
            for waiter in waiters:
                waiter.cancel()
            if not running.done():
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await running


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
