"""Per-sender limit on incoming questions: a token bucket, one "slow down" notice, then silence.

The core asks a ``FloodLimit``. ``LocalFloodLimit`` keeps the buckets in this process's memory
(SQLite: one process); ``SharedFloodLimit`` keeps them in the store, so that processes sharing
a PostgreSQL database hold a sender to the limit together; ``NoFloodLimit`` serves the terminal
chat. The composition root picks one.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final, Protocol

from bot.clock import Clock
from bot.errors import StoreUnavailable
from bot.store.repositories import FloodBucket

logger = logging.getLogger(__name__)

#: True: go ahead. False: over the limit, warn once. None: over the limit, stay silent.
Verdict = bool | None

# How long a shared check may take before this message is decided in memory instead: a
# database that hangs must not hold up the update (nor every update after it, see RETRY_AFTER).
CHECK_TIMEOUT: Final = 2.0
# After a failed shared check, how long to decide in memory before asking the database again.
RETRY_AFTER: Final = 5.0
PURGE_EVERY: Final = 60.0
_VERDICTS: Final[dict[int, Verdict]] = {1: True, 0: False, -1: None}


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float
    warned: bool = False


class FloodGuard:
    """Allows ``per_minute`` messages per sender (with that many in a burst).

    Senders are kept in memory only, as opaque keys, oldest-updated first, and forgotten once
    their bucket is full. At most ``max_senders`` are kept: when a new sender would exceed that,
    the sender updated longest ago is forgotten even if its bucket is not full yet (it starts
    afresh if it comes back), so a burst of distinct senders cannot grow the table. A new sender
    costs O(1) amortised: every entry looked at while forgetting is either removed (at most once
    per insertion) or ends the look (once per new sender). ``scanned`` counts those looks.
    """

    def __init__(self, per_minute: int, clock: Clock, max_senders: int = 100_000) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.clock = clock
        self.max_senders = max_senders
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self.scanned = 0

    def check(self, sender: str) -> Verdict:
        """True: go ahead. False: over the limit, warn once. None: over the limit, stay silent."""
        now = self.clock.monotonic()
        bucket = self._touch(sender, now)
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            bucket.warned = False
            return True
        if bucket.warned:
            return None
        bucket.warned = True
        return False

    def observe(self, sender: str, tokens: float, warned: bool) -> None:
        """Take the sender's bucket as it is now elsewhere (in the shared store)."""
        now = self.clock.monotonic()
        bucket = self._touch(sender, now)
        bucket.tokens = min(self.capacity, tokens)
        bucket.updated = now
        bucket.warned = warned

    def has_tokens(self, sender: str) -> bool:
        """Whether ``check`` would let the sender through now (nothing is consumed)."""
        bucket = self._buckets.get(sender)
        if bucket is None:
            return True
        now = self.clock.monotonic()
        return bucket.tokens + (now - bucket.updated) * self.rate >= 1.0

    @property
    def tracked(self) -> int:
        """How many senders are kept in memory now."""
        return len(self._buckets)

    def _touch(self, sender: str, now: float) -> _Bucket:
        """The sender's bucket, made the most recently updated; a new one (full) if unknown."""
        bucket = self._buckets.get(sender)
        if bucket is None:
            self._forget_full(now)
            while self._buckets and len(self._buckets) >= self.max_senders:
                self.scanned += 1
                self._buckets.popitem(last=False)
            bucket = self._buckets[sender] = _Bucket(self.capacity, now)
        else:
            self._buckets.move_to_end(sender)
        return bucket

    def _forget_full(self, now: float) -> None:
        """Forget the oldest-updated senders while their buckets are full again.

        Stops at the first one that is not: a younger bucket may be full too, but it is forgotten
        later, when it reaches the front (or evicted as the oldest if the table is full).
        """
        while self._buckets:
            self.scanned += 1
            sender = next(iter(self._buckets))
            bucket = self._buckets[sender]
            if bucket.tokens + (now - bucket.updated) * self.rate < self.capacity:
                return
            del self._buckets[sender]


class FloodLimit(Protocol):
    """What the core asks before doing any work for a sender."""

    async def check(self, sender: str) -> Verdict:
        """Spend one of the sender's tokens: True, False (warn once) or None (silence)."""
        ...

    def has_tokens(self, sender: str) -> bool:
        """A cheap guess, never waiting on anything, whether ``check`` would let them through."""
        ...


class NoFloodLimit:
    """No limit: the terminal chat has one person at their own keyboard, and a scripted session
    piped into it must get an answer to every line."""

    async def check(self, sender: str) -> Verdict:
        return True

    def has_tokens(self, sender: str) -> bool:
        return True


class LocalFloodLimit:
    """The buckets of this process alone, in its memory: enough when one process serves."""

    def __init__(self, guard: FloodGuard) -> None:
        self.guard = guard

    async def check(self, sender: str) -> Verdict:
        return self.guard.check(sender)

    def has_tokens(self, sender: str) -> bool:
        return self.guard.has_tokens(sender)


class SharedBuckets(Protocol):
    """The store's side of ``SharedFloodLimit`` (``Repository`` on PostgreSQL)."""

    async def spend_flood_token(
        self, sender: str, capacity: float, per_second: float
    ) -> FloodBucket: ...

    async def purge_full_flood_buckets(self) -> int: ...


class SharedFloodLimit:
    """The buckets in the store, one atomic statement per check, so the limit holds for the
    sum of every process on the database.

    Senders are stored under a keyed pseudonym (``key``: the same in every process), never the
    platform's id. A copy of each answer is kept in memory: ``has_tokens`` reads it without a
    round trip, and when the store is unavailable (or slower than ``timeout``) the message is
    decided in memory from that copy, with one warning per outage, and the store is asked again
    after ``retry_after`` seconds.
    """

    def __init__(
        self,
        buckets: SharedBuckets,
        per_minute: int,
        clock: Clock,
        key: bytes,
        *,
        timeout: float = CHECK_TIMEOUT,
        retry_after: float = RETRY_AFTER,
    ) -> None:
        self.buckets = buckets
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.clock = clock
        self.key = key
        self.timeout = timeout
        self.retry_after = retry_after
        self.local = FloodGuard(per_minute, clock)
        self._retry_at: float | None = None  # set while the store is unavailable
        self._purge_at = 0.0

    def pseudonym(self, sender: str) -> str:
        """The sender as stored: keyed and one-way, so a database alone does not name anyone."""
        return hmac.new(self.key, b"flood:" + sender.encode(), hashlib.sha256).hexdigest()[:16]

    async def check(self, sender: str) -> Verdict:
        if self._retry_at is not None and self.clock.monotonic() < self._retry_at:
            return self.local.check(sender)
        try:
            async with asyncio.timeout(self.timeout):
                bucket = await self.buckets.spend_flood_token(
                    self.pseudonym(sender), self.capacity, self.rate
                )
        except (StoreUnavailable, TimeoutError) as exc:
            if self._retry_at is None:
                logger.warning(
                    "shared_flood.store_unavailable",
                    extra={"error": str(exc) or type(exc).__name__, "fallback": "memory"},
                )
            self._retry_at = self.clock.monotonic() + self.retry_after
            return self.local.check(sender)
        if self._retry_at is not None:
            self._retry_at = None
            logger.info("shared_flood.store_available")
        verdict = _VERDICTS[bucket.verdict]
        self.local.observe(sender, bucket.tokens, warned=verdict is not True)
        await self._purge_now_and_then()
        return verdict

    async def _purge_now_and_then(self) -> None:
        """Rows of senders whose bucket is full again are as good as gone: the processes that
        write rows delete them, once a minute."""
        now = self.clock.monotonic()
        if now < self._purge_at:
            return
        self._purge_at = now + PURGE_EVERY
        with contextlib.suppress(StoreUnavailable):
            await self.buckets.purge_full_flood_buckets()

    def has_tokens(self, sender: str) -> bool:
        """As far as this process has seen: a sender flooding only through other processes
        looks fine here, and costs at most the one Bot API call this guess is there to save."""
        return self.local.has_tokens(sender)
