"""Notify-me offers: what a "Tell me if this gets answered" choice stands for until pressed.

A declined question is offered with a short random token. The question sits in memory under that
token, with the chat and the asker, for ``ttl`` seconds at most (never written anywhere); only
when the person presses the choice is it stored, because they asked for it.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from dataclasses import dataclass

from bot.clock import Clock

OFFER_TTL = 3600.0
MAX_OFFERS = 10_000


@dataclass(frozen=True, slots=True)
class Offer:
    """A declined question that may be kept if its asker (or a chat admin) presses the choice."""

    chat: str
    sender_id: str
    question: str
    language: str
    made_at: float


class NotifyOffers:
    """Bounded, expiring offers by token; the oldest go first when ``capacity`` is reached."""

    def __init__(self, clock: Clock, ttl: float = OFFER_TTL, capacity: int = MAX_OFFERS) -> None:
        self.clock = clock
        self.ttl = ttl
        self.capacity = capacity
        self._offers: OrderedDict[str, Offer] = OrderedDict()

    def offer(self, chat: str, sender_id: str, question: str, language: str) -> str:
        now = self.clock.monotonic()
        while self._offers and (
            len(self._offers) >= self.capacity
            or now - next(iter(self._offers.values())).made_at > self.ttl
        ):
            self._offers.popitem(last=False)
        token = secrets.token_urlsafe(8)
        self._offers[token] = Offer(chat, sender_id, question, language, now)
        return token

    def get(self, token: str) -> Offer | None:
        offer = self._offers.get(token)
        if offer is None or self.clock.monotonic() - offer.made_at > self.ttl:
            return None
        return offer

    def discard(self, token: str) -> None:
        self._offers.pop(token, None)
