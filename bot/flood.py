"""Per-sender limit on incoming questions: a token bucket, one "slow down" notice, then silence."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from bot.clock import Clock


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

    def check(self, sender: str) -> bool | None:
        """True: go ahead. False: over the limit, warn once. None: over the limit, stay silent."""
        now = self.clock.monotonic()
        bucket = self._buckets.get(sender)
        if bucket is None:
            self._forget_full(now)
            while self._buckets and len(self._buckets) >= self.max_senders:
                self.scanned += 1
                self._buckets.popitem(last=False)
            bucket = self._buckets[sender] = _Bucket(self.capacity, now)
        else:
            self._buckets.move_to_end(sender)
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
