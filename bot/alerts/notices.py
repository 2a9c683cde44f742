"""The two notices besides event alerts: "your question has an answer now" and corrections.

Their payloads travel through the outbox as JSON, so a notice queued before a restart is sent
after it exactly as it was decided.
"""

from __future__ import annotations

from datetime import date as Date

from babel.dates import format_date
from pydantic import BaseModel, ConfigDict

from bot import answers
from bot.domain import Paragraph, Reply, Style
from bot.library import Library
from bot.texts import t


class AnswerFound(BaseModel):
    """A waiting question and the entry that now answers it."""

    model_config = ConfigDict(frozen=True)

    question: str
    entry: str
    language: str


class Correction(BaseModel):
    """A fact was withdrawn, restored or its answer changed, on ``day``, for ``reason``."""

    model_config = ConfigDict(frozen=True)

    fact_id: str
    retracted: bool
    day: Date
    reason: str | None = None
    restored: bool = False


def answer_found_reply(library: Library, notice: AnswerFound, lang: str) -> Reply | None:
    """ "You asked: …" then the answer, as a live question gets it; None if the entry is gone."""
    reply = answers.answer_by_id(library, notice.entry, lang)
    if reply is None:
        return None
    heading = Paragraph(
        text=t(lang, "notify.found", question=notice.question), style=Style.HEADING
    )
    return reply.model_copy(update={"paragraphs": (heading, *reply.paragraphs)})


def correction_reply(library: Library, notice: Correction, lang: str) -> Reply | None:
    """What changed and why, then the answer as it now stands (or that the fact is withdrawn);
    None if the fact is gone, or was withdrawn or restored since: the notice would be untrue."""
    fact = library.facts.get(notice.fact_id)
    if fact is None or fact.retracted != notice.retracted:
        return None
    if notice.restored:
        heading = "correction.restored"
    else:
        heading = "correction.retracted" if notice.retracted else "correction.changed"
    day = format_date(notice.day, format="long", locale=lang)
    label = answers.fact_label(fact, lang)
    paragraphs = [
        Paragraph(
            text=t(
                lang,
                heading,
                day=day,
                question=label,
            ),
            style=Style.HEADING,
        )
    ]
    if notice.reason:
        paragraphs.append(
            Paragraph(text=t(lang, "correction.reason", reason=notice.reason), style=Style.NOTE)
        )
    if notice.retracted:
        return Reply(paragraphs=tuple(paragraphs), lang=lang)
    reply = answers.answer_fact(library, fact, lang)
    return reply.model_copy(update={"paragraphs": (*paragraphs, *reply.paragraphs)})
