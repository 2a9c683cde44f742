"""Platform-neutral types that cross the core/transport boundary: Incoming, Reply and friends."""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Model(BaseModel):
    """Immutable model with unknown fields rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Platform(StrEnum):
    """Where a message comes from."""

    TELEGRAM = "telegram"
    MATRIX = "matrix"
    CONSOLE = "console"


class ChatRef(Model):
    """A chat on a platform; the only identity the core keeps (for subscriptions)."""

    platform: Platform
    chat_id: str

    @property
    def key(self) -> str:
        return f"{self.platform.value}:{self.chat_id}"


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# Invisible format characters: zero-width spaces and joiners, soft hyphens, direction marks and
# overrides, byte-order marks. Pasted from web pages (or typed to dodge filters) inside words,
# they would hide the words from matching and from language detection.
_INVISIBLE = re.compile("[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff]")


def visible(text: str) -> str:
    """The text without invisible format characters (see ``_INVISIBLE``)."""
    return _INVISIBLE.sub("", text)


class Incoming(Model):
    """One user message (or button press, turned into its command) handed to the core."""

    chat: ChatRef
    sender_id: str = Field(description="platform user id; used for roles and rate limits only")
    text: str
    is_private: bool = True
    is_chat_admin: bool = False
    language_hint: str | None = Field(default=None, description="e.g. Telegram language_code")
    media_only: bool = Field(
        default=False, description="a photo, voice message or file with no text to read"
    )

    @field_validator("text")
    @classmethod
    def _readable(cls, text: str) -> str:
        # A forged update can carry lone surrogates: echoed back, they would make every send
        # of the reply fail. They become U+FFFD, as any UTF-8 decoder would show them.
        return visible(_LONE_SURROGATE.sub("\ufffd", text))


class PageTurn(StrEnum):
    """Which way a choice turns the pages of a list."""

    NEXT = "next"
    PREVIOUS = "previous"


class Style(StrEnum):
    """How a paragraph is shown; each transport maps styles to its own markup."""

    PLAIN = "plain"
    HEADING = "heading"
    QUOTE = "quote"
    SOURCE = "source"
    ITEM = "item"
    NOTE = "note"


class Paragraph(Model):
    """A block of text; ``url`` makes it (or its source title) a link."""

    text: str
    style: Style = Style.PLAIN
    url: str | None = None


class Choice(Model):
    """A button (Telegram) or numbered option (Matrix, console) that sends ``command`` when picked."""

    label: str
    command: str
    page: PageTurn | None = None  # the choice turns a list's page: typing "next" picks it


class SourceRef(Model):
    """A source as shown in replies and in ``ask --json``."""

    title: str
    author: str | None = None
    publisher: str | None = None
    date: str | None = None
    url: str | None = None


class Evidence(Model):
    """The verbatim excerpt an entry rests on, in its source's language, with that source."""

    excerpt: str
    language: str = Field(description="the language the excerpt is written in")
    source: SourceRef | None = None


class Attachment(Model):
    """A file sent with a reply (an export)."""

    filename: str
    content: bytes
    mime_type: str = "application/x-yaml"


class ReplyKind(StrEnum):
    """What a reply is, for transports that treat kinds differently."""

    ANSWER = "answer"
    DECLINE = "decline"
    INFO = "info"
    ERROR = "error"


class Reply(Model):
    """What the core says back, rendered by each transport in its own markup."""

    kind: ReplyKind = ReplyKind.INFO
    paragraphs: tuple[Paragraph, ...]
    choices: tuple[Choice, ...] = ()
    lang: str = "en"
    fact_id: str | None = None
    score: float = 0.0
    sources: tuple[SourceRef, ...] = ()
    suggestions: tuple[str, ...] = ()
    evidence: Evidence | None = None
    attachments: tuple[Attachment, ...] = ()
    replace: bool = Field(
        default=False, description="a page of a list: edit the message that offered it if possible"
    )

    @property
    def answered(self) -> bool:
        return self.kind is ReplyKind.ANSWER

    def plain_text(self, *, numbered_choices: bool = False) -> str:
        """The reply as a person reads it in plain text (console, Matrix ``body``, ``ask --json``)."""
        blocks: list[str] = []
        for p in self.paragraphs:
            text = p.text
            if p.style is Style.QUOTE:
                text = "\n".join("> " + line for line in text.splitlines())
            elif p.style is Style.ITEM:
                text = "• " + text
            if p.url and p.url not in text:
                text = f"{text} <{p.url}>"
            blocks.append(text)
        body = "\n\n".join(_join_items(blocks, self.paragraphs))
        if numbered_choices and self.choices:
            body += "\n\n" + "\n".join(f"{i}. {c.label}" for i, c in enumerate(self.choices, 1))
        return body


def _join_items(blocks: list[str], paragraphs: tuple[Paragraph, ...]) -> list[str]:
    """Consecutive list items stay on consecutive lines."""
    out: list[str] = []
    for text, p in zip(blocks, paragraphs, strict=True):
        if p.style is Style.ITEM and out and out[-1].startswith("• "):
            out[-1] += "\n" + text
        else:
            out.append(text)
    return out
