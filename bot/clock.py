"""Time as a seam: the core asks a Clock, tests can pass their own."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Wall-clock seconds since the epoch (UTC) and a monotonic reading."""

    def now(self) -> float: ...

    def monotonic(self) -> float: ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


def day_of(epoch_seconds: float) -> str:
    """The UTC day (YYYY-MM-DD) of a timestamp, the unit of aggregate counts."""
    return datetime.fromtimestamp(epoch_seconds, UTC).date().isoformat()
