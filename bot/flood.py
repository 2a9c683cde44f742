"""Per-sender limit on incoming questions: a token bucket, one "slow down" notice, then silence."""

from __future__ import annotations

from dataclasses import dataclass

from bot.clock import Clock


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float
    warned: bool = False


class FloodGuard:
    """Allows ``per_minute`` messages per sender (with that many in a burst).

    Senders are kept in memory only, as opaque keys, and forgotten once their bucket is full.
    """

    def __init__(self, per_minute: int, clock: Clock, max_senders: int = 100_000) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.clock = clock
        self.max_senders = max_senders
        self._buckets: dict[str, _Bucket] = {}

    def check(self, sender: str) -> bool | None:
        """True: go ahead. False: over the limit, warn once. None: over the limit, stay silent."""
        now = self.clock.monotonic()
        bucket = self._buckets.get(sender)
        if bucket is None:
            if len(self._buckets) >= self.max_senders:
                self._forget_full(now)
            bucket = self._buckets[sender] = _Bucket(self.capacity, now)
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

    def _forget_full(self, now: float) -> None:
        for sender, bucket in list(self._buckets.items()):
            if bucket.tokens + (now - bucket.updated) * self.rate >= self.capacity:
                del self._buckets[sender]
