"""Exception hierarchy of the bot.

BotError
├── KnowledgeError        a knowledge file or entry is invalid (file, line, entry id, field)
├── ConfigError           settings are missing or malformed (one clear line, exit non-zero)
├── StoreUnavailable      the database cannot be reached right now (a PostgreSQL outage)
├── UserError             the user asked for something we refuse; carries a text key
└── DeliveryError         sending a message failed
    ├── DeliveryDeferred  try again later (rate limit, network error, 5xx)
    ├── RecipientGone     the chat blocked us, left or no longer exists; final
    └── ChatMoved         the chat has a new id (group -> supergroup)
"""

from __future__ import annotations

from dataclasses import dataclass


class BotError(Exception):
    """Base of every error the bot raises on purpose."""


@dataclass(frozen=True, slots=True)
class KnowledgeProblem:
    """One problem in the knowledge base, located as precisely as known."""

    file: str
    line: int | None
    entry_id: str | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line else "")
        what = " ".join(
            part
            for part in (
                f"entry {self.entry_id!r}" if self.entry_id else "",
                f"field {self.field!r}" if self.field else "",
            )
            if part
        )
        return f"{where}: {what + ': ' if what else ''}{self.message}"


class KnowledgeError(BotError):
    """The knowledge base does not load or validate."""

    def __init__(self, problems: list[KnowledgeProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class ConfigError(BotError):
    """Settings are missing or malformed."""


class StoreUnavailable(BotError):
    """The database server cannot be reached or is restarting; the same call may work later."""


class UserError(BotError):
    """A request the bot declines; ``key`` names the message shown to the user."""

    def __init__(self, key: str, **params: object) -> None:
        self.key = key
        self.params = params
        super().__init__(key)


class DeliveryError(BotError):
    """Sending to a chat failed."""


class DeliveryDeferred(DeliveryError):
    """Try again after ``retry_after`` seconds (0: the platform did not say; back off)."""

    def __init__(self, retry_after: float, reason: str = "") -> None:
        self.retry_after = retry_after
        super().__init__(reason or f"retry after {retry_after:.1f} s")


class RecipientGone(DeliveryError):
    """The chat is gone for good (blocked, kicked, deleted)."""


class ChatMoved(DeliveryError):
    """The chat has a new id (a Telegram group became a supergroup, a Matrix room was upgraded)."""

    def __init__(self, new_chat_id: str) -> None:
        self.new_chat_id = new_chat_id
        super().__init__(f"chat moved to {new_chat_id}")
