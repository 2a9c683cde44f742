"""Notify-me: "Tell me if this gets answered" under a declined question, keeping the question
when pressed, and matching the kept questions again when admins confirm new knowledge.

A declined question is offered with a short random token. The question sits in memory under that
token, with the chat and the asker, for ``ttl`` seconds at most (never written anywhere); only
when the person presses the choice is it stored, because they asked for it.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.alerts.notices import AnswerFound
from bot.answers import text_reply
from bot.clock import Clock
from bot.domain import Choice, Incoming, Reply, ReplyKind
from bot.library import EVENT_PREFIX, QUOTE_PREFIX
from bot.store.repositories import Repository
from bot.texts import t

logger = logging.getLogger(__name__)

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


class WaitingQuestions:
    """Offers the choice, keeps a pressed question for its chat, and tells the chat once an
    entry an admin confirmed answers it (through the outbox)."""

    def __init__(
        self,
        repository: Repository,
        clock: Clock,
        answer: Callable[[str, str], Awaitable[Reply]],
        keep_days: int,
        on_queued: Callable[[], None],
    ) -> None:
        self.repository = repository
        self.clock = clock
        self.answer = answer
        self.keep_days = keep_days
        self.on_queued = on_queued
        self.offers = NotifyOffers(clock)
        self._rematching = asyncio.Lock()
        self._background: set[asyncio.Task[int]] = set()

    def offer(self, incoming: Incoming, question: str, lang: str) -> Choice:
        """The choice to put under the decline of ``question`` (already normalised)."""
        token = self.offers.offer(incoming.chat.key, incoming.sender_id, question, lang)
        return Choice(label=t(lang, "notify.button"), command=f"/notifyme {token}")

    async def keep(self, incoming: Incoming, lang: str, token: str) -> Reply:
        """Keep the offered question for this chat until it is answered or expires."""
        token = token.strip()
        offer = self.offers.get(token)
        if offer is None or offer.chat != incoming.chat.key:
            return text_reply(lang, "notify.expired")
        if not (
            incoming.is_private or incoming.is_chat_admin or incoming.sender_id == offer.sender_id
        ):
            return text_reply(lang, "notify.asker_only", ReplyKind.ERROR)
        now = self.clock.now()
        await self.repository.wait_for_answer(
            incoming.chat, offer.question, offer.language, now, now + self.keep_days * 86400
        )
        self.offers.discard(token)
        return text_reply(lang, "notify.saved", days=self.keep_days)

    def schedule_rematch(self) -> None:
        """An admin confirmed an entry: match the waiting questions again, in the background."""
        task = asyncio.get_running_loop().create_task(self.rematch())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def rematch(self) -> int:
        """Ask every waiting question again, with the decision a live question gets; each one
        now answered by an entry confirmed since the last run is queued for its chat (through
        the outbox) and forgotten. Returns how many were queued."""
        repository = self.repository
        async with self._rematching:
            try:
                entries = await repository.rematch_queue()
                queued = 0
                if entries:
                    for waiting in await repository.waiting_questions(self.clock.now()):
                        reply = await self.answer(waiting.question, waiting.language)
                        entry = (reply.fact_id or "").removeprefix(QUOTE_PREFIX)
                        entry = entry.removeprefix(EVENT_PREFIX)
                        if not reply.answered or entry not in entries:
                            continue
                        found = AnswerFound(
                            question=waiting.question, entry=entry, language=waiting.language
                        )
                        if await repository.answer_found(
                            waiting, found.model_dump_json(), self.clock.now()
                        ):
                            queued += 1
                    for entry in entries:
                        await repository.rematched(entry)
            except Exception:
                # The queue stays as it is and is matched again at the next confirm or start.
                logger.exception("waiting.rematch_failed")
                return 0
        if queued:
            logger.info("waiting.answered", extra={"queued": queued})
            self.on_queued()
        return queued
