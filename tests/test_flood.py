"""FloodGuard: one "slow down" then silence per sender, in a table that stays bounded."""

from __future__ import annotations

from bot.flood import FloodGuard

PER_MINUTE = 20


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.seconds = 1_000.0

    def now(self) -> float:
        return 1_700_000_000.0 + self.seconds

    def monotonic(self) -> float:
        return self.seconds

    def advance(self, seconds: float) -> None:
        self.seconds += seconds


def test_a_burst_of_distinct_senders_keeps_the_table_bounded_and_cheap() -> None:
    clock = FakeClock()
    guard = FloodGuard(PER_MINUTE, clock, max_senders=5_000)
    senders = 200_000
    for n in range(senders):
        clock.advance(0.00002)  # 200k senders within 4 seconds: no bucket refills meanwhile
        assert guard.check(f"telegram:{n}") is True
        assert guard.tracked <= guard.max_senders
    assert guard.tracked == guard.max_senders
    # O(1) amortised per new sender: each look at an entry removes it or ends the look.
    assert guard.scanned <= 2 * senders


def test_a_tracked_flooder_is_warned_once_then_ignored_among_many_newcomers() -> None:
    clock = FakeClock()
    guard = FloodGuard(PER_MINUTE, clock, max_senders=100)
    verdicts = []
    newcomer = 0
    for _ in range(60):
        clock.advance(0.01)
        verdicts.append(guard.check("matrix:@flood:example.org"))
        for _ in range(50):  # fewer newcomers between two messages than the table holds
            newcomer += 1
            guard.check(f"telegram:{newcomer}")
            assert guard.tracked <= guard.max_senders
    assert verdicts == [True] * PER_MINUTE + [False] + [None] * (60 - PER_MINUTE - 1)
    assert not guard.has_tokens("matrix:@flood:example.org")
    assert guard.scanned <= 2 * (newcomer + 1)


def test_full_buckets_are_forgotten_and_a_refilled_sender_is_served_again() -> None:
    clock = FakeClock()
    guard = FloodGuard(PER_MINUTE, clock, max_senders=10)
    for _ in range(PER_MINUTE):
        assert guard.check("a") is True
    assert guard.check("a") is False and guard.check("a") is None
    clock.advance(3.0)  # one token back, the bucket is not full yet
    guard.check("b")
    assert guard.tracked == 2
    assert guard.check("a") is True and guard.check("a") is False
    clock.advance(61.0)  # both buckets are full again: a newcomer makes room for free
    guard.check("c")
    assert guard.tracked == 1
    assert guard.check("a") is True


def test_the_oldest_sender_is_evicted_when_the_table_is_full() -> None:
    clock = FakeClock()
    guard = FloodGuard(PER_MINUTE, clock, max_senders=3)
    for _ in range(PER_MINUTE + 2):
        guard.check("old")
    guard.check("x")
    guard.check("y")
    guard.check("old")  # still tracked: silent, and now the most recently updated
    assert guard.check("old") is None
    guard.check("z")  # evicts "x", the oldest-updated, not the flooder
    assert guard.tracked == 3
    assert guard.check("old") is None
    assert guard.has_tokens("x")
