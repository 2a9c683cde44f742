"""Token buckets per platform and spacing per chat; rates come from settings.

The platform bucket is shared with question replies, which take their token without waiting:
replies therefore always go first, and alerts use only what replies leave.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

from bot.clock import Clock


@dataclass(frozen=True, slots=True)
class ChatLimits:
    """Minimum seconds between two messages to one chat, and a per-minute cap for groups."""

    interval: float
    group_per_minute: int


# The sliding window in which at most ``per_second`` messages go out: a little longer than a
# second, so that jitter between here and the platform never shows it more than that in one.
WINDOW = 1.05


class RateLimiter:
    """``per_second`` messages overall and per-chat spacing.

    A token bucket spaces the messages out (its burst is a fifth of a second's worth); a log of
    the last ``WINDOW`` seconds' sends caps them, so that no one-second window ever sees more
    than ``per_second`` (the bucket alone would let it see its burst more).
    """

    def __init__(self, per_second: float, limits: ChatLimits, clock: Clock) -> None:
        self.per_second = per_second
        self.limits = limits
        self.clock = clock
        self.burst = max(1.0, per_second / 5)
        self._tokens = self.burst
        self._updated = clock.monotonic()
        self._lock = asyncio.Lock()
        self._paused_until = 0.0
        self._last_sent: dict[str, float] = {}
        self._group_sends: dict[str, deque[float]] = {}
        self._recent: deque[float] = deque()
        self.window_cap = max(1, int(per_second))

    def _refill(self) -> None:
        now = self.clock.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.per_second)
        self._updated = now

    def pause(self, seconds: float) -> None:
        """The platform asked us to back off (HTTP 429): no alert goes out before then."""
        self._paused_until = max(self._paused_until, self.clock.monotonic() + seconds)

    def take_now(self) -> None:
        """A question reply was sent: it has priority, so it takes a token even into debt."""
        self._refill()
        self._tokens -= 1.0
        self._recent.append(self.clock.monotonic())

    def _window_wait(self) -> float:
        """Seconds until the window has room for one more message."""
        now = self.clock.monotonic()
        while self._recent and self._recent[0] <= now - WINDOW:
            self._recent.popleft()
        if len(self._recent) < self.window_cap:
            return 0.0
        return self._recent[-self.window_cap] + WINDOW - now

    def chat_wait(self, chat_key: str, is_group: bool) -> float:
        """Seconds until ``chat_key`` may receive another message (0 if now)."""
        now = self.clock.monotonic()
        wait = self._last_sent.get(chat_key, -1e9) + self.limits.interval - now
        if is_group:
            window = self._group_sends.get(chat_key)
            if window is not None:
                while window and window[0] <= now - 60.0:
                    window.popleft()
                if len(window) >= self.limits.group_per_minute:
                    wait = max(wait, window[0] + 60.0 - now)
        return max(0.0, wait)

    async def acquire(self, chat_key: str, is_group: bool) -> float:
        """Take a platform token and record the send, or return how long the chat must wait.

        Returns 0.0 when the caller may send now; a positive number of seconds when this chat
        is not due yet (no token is taken, so the caller can defer the alert and move on).
        """
        async with self._lock:
            wait = self.chat_wait(chat_key, is_group)
            if wait > 0:
                return wait
            pause = self._paused_until - self.clock.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
            while True:
                self._refill()
                full = self._window_wait()
                if full > 0:
                    await asyncio.sleep(full)
                elif self._tokens >= 1.0:
                    self._tokens -= 1.0
                    break
                else:
                    await asyncio.sleep((1.0 - self._tokens) / self.per_second)
            now = self.clock.monotonic()
            self._recent.append(now)
            self._last_sent[chat_key] = now
            if is_group:
                self._group_sends.setdefault(chat_key, deque()).append(now)
            return 0.0
