"""The forms admins fill in: fields, their parsers and limits, and how a draft becomes an entry.

The same form serves the guided conversation (one field per message) and the one-shot command
(``/addfact topic | answer | keywords | source | evidence``). Every value is bounded, stripped
of control characters and stored as given; rendering escapes it.

In the one-shot command the source may be a new one written inline, itself made of up to
``NEW_SOURCE_PARTS`` parts (``title | author or publisher | YYYY-MM-DD | url``, empty parts
allowed). So every field but the source takes exactly one ``|``-separated part, and the parts
left over belong to the source: ``/addfact topic | answer | keywords | Title | Publisher |
2024-05-01 | https://… | evidence``. A ``|`` inside any other field can be given only in the
guided form (a form without a source field gives the parts left over to its last field).
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date as Date
from typing import cast

from pydantic import BaseModel, ValidationError

from bot import answers
from bot.knowledge.models import (
    LANGS,
    Event,
    Fact,
    Localized,
    Phrases,
    Precision,
    Quote,
    Source,
    id_words,
    precision_of,
)
from bot.language import detect
from bot.library import Library

MAX_KEYWORDS = 60  # built-in facts have up to about 40, in three languages
MAX_KEYWORD_CHARS = 80
NEW_SOURCE = "new"
NEW_SOURCE_PARTS = 4  # title | author or publisher | date | url


class FieldError(ValueError):
    """A value an admin typed is not acceptable; ``field`` names the form field."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


def clean(text: str, limit: int) -> str:
    """Strip control characters (keeping newlines) and surrounding space; enforce a length."""
    text = "".join(
        ch
        for ch in text
        if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co")
    ).strip()
    if not text:
        raise ValueError("it is empty")
    if len(text) > limit:
        raise ValueError(f"it is {len(text)} characters long; the limit is {limit}")
    return text


def slug(text: str, prefix: str, taken: set[str]) -> str:
    """A readable, unique id from the first words of a text."""
    words = id_words(text)[:5]
    base = "-".join([prefix, *words])[:44].rstrip("-")
    candidate = base
    while candidate in taken:
        candidate = f"{base}-{secrets.token_hex(2)}"
    return candidate


@dataclass(frozen=True, slots=True)
class FormField:
    """One question of a form: ``parse`` turns the admin's text into a value or raises."""

    name: str
    parse: Callable[[str, Library], object]
    optional: bool = False


def _text(limit: int) -> Callable[[str, Library], object]:
    return lambda value, _: clean(value, limit)


def _topic(value: str, library: Library) -> object:
    topic = library.topic_named(value)
    if topic is None:
        wanted = answers.shorten(" ".join(value.split()), 40)
        raise ValueError(f"there is no topic {wanted!r}; pick one of: {', '.join(library.topics)}")
    return topic.id


def _keywords(value: str, _: Library) -> object:
    keywords = [clean(k, MAX_KEYWORD_CHARS) for k in re.split(r"[,;\n]", value) if k.strip()]
    if not keywords:
        raise ValueError("give at least one keyword, separated by commas")
    if len(keywords) > MAX_KEYWORDS:
        raise ValueError(f"{len(keywords)} keywords; the limit is {MAX_KEYWORDS}")
    return keywords


def _source(value: str, library: Library) -> object:
    """An existing source id, or a new source as ``title | author or publisher | date | url``."""
    value = value.strip()
    if value in library.sources:
        return value
    parts = [p.strip() for p in value.split("|")]
    title = clean(parts[0], 300)
    if len(parts) == 1 and re.fullmatch(r"[a-z0-9-]{2,56}", title):
        raise ValueError(
            f"there is no source {title!r}; pick one or give 'title | author | date | url'"
        )
    if title in library.sources:
        raise ValueError(
            f"{title!r} is an existing source: give its id alone, "
            "or a new source as 'title | author | date | url'"
        )
    if len(parts) > NEW_SOURCE_PARTS:
        raise ValueError(
            f"a new source has at most {NEW_SOURCE_PARTS} parts, 'title | author | date | url'"
            f", not {len(parts)}"
        )
    fields: dict[str, object] = {"title": Localized(en=title)}
    if len(parts) > 1 and parts[1]:
        fields["publisher"] = clean(parts[1], 200)
    if len(parts) > 2 and parts[2]:
        fields["date"] = _date(parts[2], library)
    if len(parts) > 3 and parts[3]:
        fields["url"] = _url(parts[3], library)
    taken = set(library.sources)
    return Source(id=slug(title, "src", taken), **fields)


def _date(value: str, _: Library) -> object:
    try:
        return Date.fromisoformat(value.strip())
    except ValueError:
        raise ValueError("write the date as YYYY-MM-DD") from None


def _url(value: str, _: Library) -> object:
    value = value.strip()
    if not re.fullmatch(r"https?://[^\s<>\"]{3,500}", value):
        raise ValueError("give a full http:// or https:// address")
    return value


def _event_date(value: str, _: Library) -> object:
    value = value.strip()
    precision = precision_of(value)
    if precision is None:
        raise ValueError("write the date as YYYY, YYYY-MM or YYYY-MM-DD")
    if precision is Precision.DAY:
        _date(value, _)
    return (value, precision)


def filed_phrases(phrases: list[str], before: Phrases | None) -> Phrases:
    """``phrases`` by language: the ones ``before`` had stay where they were (an edit that keeps
    or adds keywords leaves the Russian and Belarusian ones filed as such); new ones go under
    the language they are written in."""
    kept = set(phrases)
    filed: dict[str, list[str]] = {
        lang: [p for p in (getattr(before, lang) if before else []) if p in kept] for lang in LANGS
    }
    known = {p for listed in filed.values() for p in listed}
    for phrase in phrases:
        if phrase not in known:
            lang = detect(phrase)
            filed[lang if lang in ("ru", "be") else "en"].append(phrase)
            known.add(phrase)
    return Phrases.model_validate(filed)


def _localized(text: str) -> Localized:
    """A text an admin wrote, filed under its language (and as the English fallback)."""
    lang = detect(text)
    if lang in ("ru", "be"):
        return Localized.model_validate({"en": text, lang: text})
    return Localized(en=text)


@dataclass(frozen=True, slots=True)
class Form:
    """An ordered set of fields and how the values become an entry (plus a new source, if any)."""

    kind: str
    fields: tuple[FormField, ...]

    def field(self, name: str) -> FormField:
        return next(f for f in self.fields if f.name == name)

    def split(self, text: str) -> list[str]:
        """The ``|``-separated parts of a one-shot command, one per field (see the module doc).

        Parts beyond one per field all go to the source field (to the last field if there is
        none); fewer parts leave the last fields out.
        """
        parts = [p.strip() for p in text.split("|")]
        extra = len(parts) - len(self.fields)
        if extra <= 0:
            return parts
        names = [f.name for f in self.fields]
        at = names.index("source") if "source" in names else len(names) - 1
        return [*parts[:at], " | ".join(parts[at : at + extra + 1]), *parts[at + extra + 1 :]]

    def missing(self, values: dict[str, object]) -> str | None:
        """The first required field without a value, if any."""
        return next(
            (f.name for f in self.fields if not f.optional and values.get(f.name) is None), None
        )


FACT_FORM = Form(
    "fact",
    (
        FormField("topic", _topic),
        FormField("answer", _text(420)),
        FormField("keywords", _keywords),
        FormField("source", _source),
        FormField("evidence", _text(600)),
    ),
)
QUOTE_FORM = Form(
    "quote",
    (
        FormField("topic", _topic),
        FormField("speaker", _text(200)),
        FormField("text", _text(1500)),
        FormField("source", _source),
    ),
)
SOURCE_FORM = Form(
    "source",
    (
        FormField("title", _text(300)),
        FormField("publisher", _text(200), optional=True),
        FormField("date", _date, optional=True),
        FormField("url", _url, optional=True),
    ),
)
EVENT_FORM = Form(
    "event",
    (
        FormField("date", _event_date),
        FormField("topic", _topic),
        FormField("title", _text(200)),
        FormField("summary", _text(700)),
        FormField("source", _source),
    ),
)
FORMS = {form.kind: form for form in (FACT_FORM, QUOTE_FORM, SOURCE_FORM, EVENT_FORM)}


def source_id(value: object) -> tuple[str, Source | None]:
    """The source id a draft points at, and the new source to create with it, if any."""
    if isinstance(value, Source):
        return value.id, value
    return str(value), None


def build(
    kind: str, values: dict[str, object], library: Library, existing: BaseModel | None
) -> tuple[BaseModel, Source | None]:
    """Turn parsed values into a validated entry; raises FieldError naming the bad field."""
    taken = {*library.facts, *library.quotes, *library.sources, *library.events, *library.topics}
    new_source: Source | None = None
    try:
        match kind:
            case "fact":
                src, new_source = source_id(values["source"])
                answer = str(values["answer"])
                keywords = [str(k) for k in values["keywords"]]  # type: ignore[attr-defined]
                base = existing if isinstance(existing, Fact) else None
                entry: BaseModel = Fact(
                    id=base.id if base else slug(answer, "fact", taken),
                    topics=[str(values["topic"])],
                    # A kept answer keeps its translations; a changed one is filed anew.
                    answer=base.answer
                    if base is not None and answer == base.answer.en
                    else _localized(answer),
                    sources=[src],
                    evidence=str(values["evidence"]),
                    keywords=filed_phrases(keywords, base.keywords if base else None),
                    questions=base.questions if base else Phrases(),
                    related=base.related if base else [],
                )
            case "quote":
                src, new_source = source_id(values["source"])
                text = str(values["text"])
                entry = Quote(
                    id=existing.id if isinstance(existing, Quote) else slug(text, "quote", taken),
                    text=text,
                    speaker=_localized(str(values["speaker"])),
                    sources=[src],
                    topics=[str(values["topic"])],
                )
            case "source":
                title = str(values["title"])
                entry = Source(
                    id=existing.id if isinstance(existing, Source) else slug(title, "src", taken),
                    title=Localized(en=title),
                    publisher=values.get("publisher"),
                    date=values.get("date"),
                    url=values.get("url"),
                )
            case "event":
                src, new_source = source_id(values["source"])
                when, precision = cast(tuple[str, Precision], values["date"])
                title = str(values["title"])
                entry = Event(
                    id=existing.id
                    if isinstance(existing, Event)
                    else slug(f"{when} {title}", "event", taken),
                    date=when,
                    precision=precision,
                    title=_localized(title),
                    summary=_localized(str(values["summary"])),
                    topics=[str(values["topic"])],
                    sources=[src],
                )
            case _:
                raise FieldError("kind", f"unknown kind {kind}")
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else kind
        raise FieldError(field, error["msg"]) from None
    return entry, new_source


def entry_id(entry: BaseModel) -> str:
    """The id of any knowledge entry."""
    return str(entry.model_dump(include={"id"})["id"])


def values_of(kind: str, entry: BaseModel, library: Library) -> dict[str, object]:
    """The form values of an existing entry, to prefill an edit."""
    match entry:
        case Fact():
            return {
                "topic": entry.topics[0],
                "answer": entry.answer.en,
                "keywords": entry.keywords.all(),
                "source": entry.sources[0],
                "evidence": entry.evidence,
            }
        case Quote():
            return {
                "topic": entry.topics[0],
                "speaker": entry.speaker.en,
                "text": entry.text,
                "source": entry.sources[0],
            }
        case Event():
            return {
                "date": (entry.date, entry.precision),
                "topic": entry.topics[0],
                "title": entry.title.en,
                "summary": entry.summary.en,
                "source": entry.sources[0],
            }
        case Source():
            return {
                "title": entry.title.en,
                "publisher": entry.publisher,
                "date": entry.date,
                "url": entry.url,
            }
    return {}


def display(value: object) -> str:
    """A value as the admin typed it, for prompts and previews."""
    match value:
        case list():
            return ", ".join(str(v) for v in value)
        case Source():
            return value.title.en
        case (str() as when, Precision()):
            return when
        case None:
            return "—"
    return str(value)
