"""What each chat was last offered, so that a short follow-up ("2", "source?", a bare
"/evidence") is about the reply the person just read."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

from pydantic import BaseModel, ConfigDict

from bot.commands import choice_number, resolve_follow_up
from bot.domain import PageTurn, Reply
from bot.small_talk import page_turn

MAX_CHATS = 10_000
# The follow-up that stores something about the chat, so only on an explicit choice.
CONSENT = "notifyme"


class Offer(BaseModel):
    """The language and the choice commands of the last reply that offered choices, and
    those of them that turn a list's page."""

    model_config = ConfigDict(frozen=True)

    lang: str
    commands: tuple[str, ...]
    pages: dict[PageTurn, str] = {}


class FollowUp(BaseModel):
    """A message after resolving it against the chat's last offer.

    ``language`` is the offering reply's language when the message picked one of its choices
    (a follow-up answers in the language of the reply it follows), else None."""

    model_config = ConfigDict(frozen=True)

    text: str
    language: str | None = None


class LastOffers:
    """Per chat, in memory only and for at most ``max_chats`` chats (the least recently
    offered are forgotten first): never written anywhere, so no record links a person to
    what they asked."""

    def __init__(self, max_chats: int = MAX_CHATS) -> None:
        self.max_chats = max_chats
        self._offers: OrderedDict[Hashable, Offer] = OrderedDict()

    def remember(self, chat: Hashable, reply: Reply) -> None:
        """Keep the reply's choices. A reply without choices leaves the last offer standing:
        "source?" after "thanks", or "2" after the evidence, is about the list the person
        last saw."""
        if not reply.choices:
            return
        self._offers[chat] = Offer(
            lang=reply.lang,
            commands=tuple(c.command for c in reply.choices),
            pages={c.page: c.command for c in reply.choices if c.page is not None},
        )
        self._offers.move_to_end(chat)
        while len(self._offers) > self.max_chats:
            self._offers.popitem(last=False)

    def language(self, chat: Hashable) -> str | None:
        """The language of the last offer: the conversation's language, for a message that
        shows none (a command, a number)."""
        offer = self._offers.get(chat)
        return offer.lang if offer else None

    def offered(self, chat: Hashable) -> tuple[str, ...]:
        offer = self._offers.get(chat)
        return offer.commands if offer else ()

    def resolve(
        self, chat: Hashable, text: str, *, by_number: bool = False, numbered: bool = True
    ) -> FollowUp:
        """``by_number``: a bare number picks that choice. ``numbered``: the choices were shown
        with their numbers; where they were not (Telegram's buttons), a number never picks one
        that keeps something about the chat ("tell me if this gets answered"): that takes a
        press. A bare follow-up command or a request for the source picks the matching
        choice, and "next" or "back" the choice that turns the list's page that way."""
        offer = self._offers.get(chat)
        if offer is None:
            return FollowUp(text=text)
        picked = text
        turn = page_turn(text)
        if turn in offer.pages:
            picked = offer.pages[turn]
        number = choice_number(text) if by_number else None
        if number is not None and 0 < number <= len(offer.commands):
            choice = offer.commands[number - 1]
            if numbered or not choice.startswith(f"/{CONSENT}"):
                picked = choice
        picked = resolve_follow_up(picked, offer.commands)
        return FollowUp(text=picked, language=offer.lang if picked != text else None)
