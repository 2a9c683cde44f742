"""Pydantic models of the curated knowledge base: sources, topics, facts, quotes and events."""

from __future__ import annotations

import hashlib
import re
from datetime import date as Date
from enum import StrEnum
from typing import Annotated

from anyascii import anyascii
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    HttpUrl,
    model_validator,
)

LANGS: tuple[str, ...] = ("en", "ru", "be")
MAX_ANSWER_CHARS = 420
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,55}$")


def _check_id(value: str) -> str:
    if not _ID_RE.match(value):
        raise ValueError(
            "ids are 2-56 characters of a-z, 0-9 and '-', starting with a letter or digit"
        )
    return value


def id_words(text: str) -> list[str]:
    """The words of a text as an id can hold them: ASCII letters and digits, lower case."""
    return re.findall(r"[a-z0-9]+", anyascii(text).lower())


def _check_text(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be empty")
    if any(ord(ch) < 32 and ch not in "\n\t" for ch in value):
        raise ValueError("must not contain control characters")
    return value


EntryId = Annotated[str, AfterValidator(_check_id)]


def _number_as_text(value: object) -> object:
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


Text = Annotated[str, AfterValidator(_check_text)]
Phrase = Annotated[str, BeforeValidator(_number_as_text), AfterValidator(_check_text)]


def fingerprint(text: str) -> str:
    """Short stable digest of an English text; translations record the one they were made from."""
    return hashlib.sha256(" ".join(text.split()).encode()).hexdigest()[:8]


class Frozen(BaseModel):
    """Base of every knowledge model: immutable, unknown fields rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Lang(StrEnum):
    """Languages the bot speaks."""

    EN = "en"
    RU = "ru"
    BE = "be"


class Localized(Frozen):
    """A text written in English with our Russian and Belarusian versions.

    ``of`` is the fingerprint of the English text the translations were made from; when the
    English changes and ``of`` does not, ``kb validate`` reports the translations as stale.
    """

    en: Text
    ru: Text | None = None
    be: Text | None = None
    of: str | None = None

    def get(self, lang: str) -> str:
        """The text in ``lang``, falling back to English."""
        value = getattr(self, lang, None) if lang in LANGS else None
        return value if isinstance(value, str) else self.en

    def missing(self) -> list[str]:
        return [lang for lang in ("ru", "be") if getattr(self, lang) is None]

    def stale(self) -> bool:
        return self.of is not None and self.of != fingerprint(self.en)


class Phrases(Frozen):
    """Words and phrasings people use to ask for an entry, per language."""

    en: list[Phrase] = Field(default_factory=list)
    ru: list[Phrase] = Field(default_factory=list)
    be: list[Phrase] = Field(default_factory=list)

    def all(self) -> list[str]:
        return [*self.en, *self.ru, *self.be]


class Source(Frozen):
    """A published text the knowledge base rests on. Dates and URLs only where known."""

    id: EntryId
    title: Localized
    author: str | None = None
    publisher: str | None = None
    date: Date | None = None
    url: HttpUrl | None = None
    local_ref: str | None = Field(default=None, description="file name of the seed text")
    text_sha256: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="sha256 of the seed text file's bytes; kb validate checks the text against it",
    )
    language: str = "en"


class Topic(Frozen):
    """A theme facts, quotes and events belong to; also what users subscribe to."""

    id: EntryId
    title: Localized
    description: Localized | None = None
    keywords: Phrases = Field(default_factory=Phrases)


class Fact(Frozen):
    """One sourced, short answer with the evidence that supports it."""

    id: EntryId
    topics: list[EntryId] = Field(min_length=1)
    answer: Localized
    sources: list[EntryId] = Field(min_length=1)
    evidence: Text = Field(description="verbatim excerpt of the first source")
    keywords: Phrases = Field(default_factory=Phrases)
    questions: Phrases = Field(default_factory=Phrases)
    related: list[EntryId] = Field(default_factory=list)
    retracted: bool = False
    corrected: Date | None = Field(
        default=None, description="when an admin last changed the answer (not for typo fixes)"
    )

    @model_validator(mode="after")
    def _short_answer(self) -> Fact:
        for lang in LANGS:
            text = getattr(self.answer, lang)
            if text and len(text) > MAX_ANSWER_CHARS * (1.4 if lang != "en" else 1):
                raise ValueError(f"answer.{lang} is longer than {MAX_ANSWER_CHARS} characters")
        return self


class Quote(Frozen):
    """A verbatim quotation, attributed; translations are ours and marked as such."""

    id: EntryId
    text: Text
    speaker: Localized
    sources: list[EntryId] = Field(min_length=1)
    topics: list[EntryId] = Field(min_length=1)
    context: Localized | None = None
    translation: Localized | None = Field(
        default=None, description="our translation; en repeats the original"
    )
    keywords: Phrases = Field(default_factory=Phrases)


class Precision(StrEnum):
    """How much of an event's date is known."""

    DAY = "day"
    MONTH = "month"
    YEAR = "year"


_DATE_PATTERNS = {
    Precision.DAY: r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])",
    Precision.MONTH: r"\d{4}-(0[1-9]|1[0-2])",
    Precision.YEAR: r"\d{4}",
}


def precision_of(date: str) -> Precision | None:
    """How much a date says: YYYY, YYYY-MM or YYYY-MM-DD; None for anything else."""
    for precision, pattern in _DATE_PATTERNS.items():
        if re.fullmatch(pattern, date):
            return precision
    return None


class Event(Frozen):
    """A dated event on the timeline; newly published events go out as alerts.

    Written by hand for ``events publish``, an event may leave out what can be read off the
    rest: the precision (from the date), the id (from the date and title), and the other
    languages (a plain title or summary is the English one); one topic, source or fact needs no
    list.

    Questions find an event on its own only while none of the ``facts`` that tell it is served,
    so that one answer is not split between two entries.
    """

    id: EntryId
    date: str = Field(description="YYYY, YYYY-MM or YYYY-MM-DD, matching precision")
    precision: Precision
    title: Localized
    summary: Localized
    topics: list[EntryId] = Field(min_length=1)
    sources: list[EntryId] = Field(min_length=1)
    evidence: Text | None = None
    facts: list[EntryId] = Field(
        default_factory=list,
        description="facts that tell this event: while one is served, questions find it instead",
    )

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: object) -> object:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if isinstance(data.get("date"), int):
            data["date"] = str(data["date"])  # YAML reads an unquoted 2024 as a number
        date = data.get("date")
        if "precision" not in data and isinstance(date, str):
            data["precision"] = precision_of(date)
            if data["precision"] is None:
                raise ValueError(f"date {date!r}: write it as YYYY, YYYY-MM or YYYY-MM-DD")
        for field in ("title", "summary"):
            if isinstance(data.get(field), str):
                data[field] = {"en": data[field]}
        for one, many in (("topic", "topics"), ("source", "sources"), ("fact", "facts")):
            if one in data and many not in data:
                value = data.pop(one)
                data[many] = value if isinstance(value, list) else [value]
        title = data.get("title")
        if "id" not in data and isinstance(date, str) and isinstance(title, dict):
            data["id"] = "-".join([date, *id_words(str(title.get("en", "")))])[:56].rstrip("-")
        return data

    @model_validator(mode="after")
    def _date_matches_precision(self) -> Event:
        if not re.fullmatch(_DATE_PATTERNS[self.precision], self.date):
            raise ValueError(f"date {self.date!r} does not match precision {self.precision.value}")
        if self.precision is Precision.DAY:
            try:
                Date.fromisoformat(self.date)
            except ValueError:
                raise ValueError(f"date {self.date!r} is not a day of the calendar") from None
        return self


class KnowledgeBase(Frozen):
    """Every curated entry, as loaded and validated from ``knowledge/``."""

    sources: list[Source] = Field(default_factory=list)
    topics: list[Topic] = Field(default_factory=list)
    facts: list[Fact] = Field(default_factory=list)
    quotes: list[Quote] = Field(default_factory=list)
    events: list[Event] = Field(default_factory=list)
