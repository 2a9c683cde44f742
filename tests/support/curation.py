"""The bot as an admin's and a user's Telegram see it: the transport and a delivery worker,
composed as ``bot.app.serve`` composes them, against the Bot API emulator; shared by the
curation and the notify-me / corrections tests."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.alerts.delivery import DeliveryWorker
from bot.app import build_library, build_limiters
from bot.clock import SystemClock
from bot.config import REPO_ROOT, AlertSettings, MatrixSettings, Settings, TelegramSettings
from bot.core import Core
from bot.domain import Platform
from bot.knowledge.models import KnowledgeBase
from bot.store.db import Database
from bot.store.repositories import Repository
from bot.texts import t
from bot.transports.telegram import TelegramTransport
from support.telegram_emulator import Call, TelegramEmulator

ADMIN = 4242
ADMIN_USERNAME = "curator"
USER = 1001
STRANGER = 5555
TWIN = 5556  # not an admin, but with the admin's username
GROUP = -100123
TOPIC = "history"
SOURCE_ID = "stary-27-years"
EVIDENCE = "Back in 1956, the BSSR ratified Conventions No. 87 and No. 98"
SEEDS = REPO_ROOT.parent / "shared" / "seeds"

ANSWER = "The Zubrovka Accord of 2031 bound every union to report to the ministry."
FACT_ID = "fact-the-zubrovka-accord-of-2031"
KEYWORDS = "zubrovka accord, zubrovka"
QUESTION = "What was the Zubrovka Accord?"
NEAR_MISS = "zubrovka weather forecast"  # declined, with the fact as a suggestion
ONE_SHOT = f"/addfact {TOPIC} | {ANSWER} | {KEYWORDS} | {SOURCE_ID} | {EVIDENCE}"

PREVIEW = f"<b>{t('en', 'admin.preview')}</b>"
SAVED = re.compile(r"^Saved as ([a-z0-9-]+)\. It is searchable now\.$")
CONFIRM_BUTTONS = [("Confirm", "/confirm"), ("Edit", "/edit"), ("Cancel", "/cancel")]
DECLINED = "I don't have a sourced answer to that question, and I won't guess."


def buttons(call: Call) -> list[tuple[str, str]]:
    """(label, callback data) of every inline button of a message, in order."""
    markup = call.params.get("reply_markup") or {"inline_keyboard": []}
    return [(b["text"], b["callback_data"]) for row in markup["inline_keyboard"] for b in row]


def rows(path: Path, query: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
    """One query on a connection of its own (the bot keeps its own open)."""
    conn = sqlite3.connect(path, timeout=10)
    try:
        return conn.execute(query, params).fetchall()
    finally:
        conn.close()


def every_value(path: Path) -> Iterator[tuple[str, object]]:
    """(table, value) for every column of every row of every table."""
    tables = [
        name
        for (name,) in rows(path, "SELECT name FROM sqlite_master WHERE type = 'table'")
        if not name.startswith("sqlite_")
    ]
    for table in tables:
        for row in rows(path, f'SELECT * FROM "{table}"'):
            for value in row:
                yield table, value


def columns(path: Path, table: str) -> list[str]:
    return [str(r[1]) for r in rows(path, f'PRAGMA table_info("{table}")')]


@dataclass
class Served:
    """The bot under test and what it runs on.

    ``say`` and ``press`` return the next replies in the chat, counting from the last reply
    they returned, so an unexpected extra reply shows up where the next one was expected (and
    the fixture checks at the end that none is left over).
    """

    emulator: TelegramEmulator
    core: Core
    repository: Repository
    settings: Settings
    transport: TelegramTransport
    seen: dict[int, int] = field(default_factory=dict)

    @property
    def database(self) -> Path:
        return self.settings.database

    def sent(self, chat_id: int) -> list[Call]:
        return [
            c
            for c in self.emulator.calls_to("sendMessage")
            if c.ok and c.params["chat_id"] == chat_id
        ]

    async def _replies(self, chat_id: int, replies: int) -> list[Call]:
        before = self.seen.get(chat_id, 0)
        calls = await self.emulator.wait_for(
            "sendMessage",
            count=before + replies,
            predicate=lambda c: c.params["chat_id"] == chat_id,
        )
        self.seen[chat_id] = before + replies
        return calls[before : before + replies]

    async def idle(self) -> None:
        """Every update sent so far has been fully handled."""
        await self.emulator.wait_consumed()
        await asyncio.wait_for(self.transport.application.update_queue.join(), 10)

    async def say(
        self,
        text: str,
        *,
        user_id: int = ADMIN,
        chat_id: int | None = None,
        replies: int = 1,
        **kwargs: Any,
    ) -> list[Call]:
        """Send ``text`` as ``user_id`` and return the ``replies`` messages the bot answers with."""
        chat = user_id if chat_id is None else chat_id
        username = ADMIN_USERNAME if user_id == ADMIN else None
        kwargs.setdefault("username", username)
        if chat != user_id:
            kwargs.setdefault("chat_type", "supergroup")
        self.emulator.send_message(text, user_id=user_id, chat_id=chat_id, **kwargs)
        return await self._replies(chat, replies)

    async def ask(self, text: str, *, user_id: int = ADMIN, **kwargs: Any) -> str:
        """The text of the one reply to ``text``."""
        [call] = await self.say(text, user_id=user_id, **kwargs)
        return str(call.params["text"])

    async def press(self, data: str, *, user_id: int = ADMIN, replies: int = 1) -> list[Call]:
        """Press a button of the last message in the private chat with ``user_id``."""
        answered = len(self.emulator.calls_to("answerCallbackQuery"))
        self.emulator.press_button(data, user_id=user_id)
        [*_, answer] = await self.emulator.wait_for("answerCallbackQuery", count=answered + 1)
        assert "text" not in answer.params, answer.params  # a live button, not an expired one
        return await self._replies(user_id, replies)

    async def inline(self, query: str) -> list[str]:
        """The message texts of the inline results for ``query``."""
        count = len(self.emulator.calls_to("answerInlineQuery"))
        self.emulator.inline_query(query, user_id=USER)
        [*_, call] = await self.emulator.wait_for("answerInlineQuery", count=count + 1)
        return [r["input_message_content"]["message_text"] for r in call.params["results"]]

    async def runtime_entries(self) -> list[tuple[Any, ...]]:
        return await asyncio.to_thread(
            rows, self.database, "SELECT kind, entry_id FROM runtime_entries ORDER BY rowid"
        )

    async def audit_rows(self, entry_id: str) -> list[dict[str, Any]]:
        found = await asyncio.to_thread(
            rows,
            self.database,
            "SELECT actor, action, kind, before, after, reason FROM audit "
            "WHERE entry_id = ? ORDER BY id",
            (entry_id,),
        )
        keys = ("actor", "action", "kind", "before", "after", "reason")
        return [dict(zip(keys, row, strict=True)) for row in found]

    async def add_fact(self) -> str:
        """The Zubrovka fact through the one-shot form and /confirm; returns its id."""
        [preview] = await self.say(ONE_SHOT)
        assert str(preview.params["text"]).startswith(PREVIEW)
        [saved] = await self.say("/confirm")
        match = SAVED.match(str(saved.params["text"]))
        assert match is not None, saved.params["text"]
        return match.group(1)


def bot_settings(emulator: TelegramEmulator, database: Path) -> Settings:
    return Settings(
        database=database,
        admins=[f"telegram:{ADMIN}"],
        questions_per_minute=1000,
        telegram=TelegramSettings(
            token=emulator.token, base_url=emulator.base_url, poll_timeout=1
        ),
        matrix=MatrixSettings(),
        alerts=AlertSettings(telegram_per_second=30.0),
    )


@asynccontextmanager
async def serving(
    emulator: TelegramEmulator, kb: KnowledgeBase, db: Database
) -> AsyncIterator[Served]:
    """The transport and a delivery worker, composed as ``bot.app.serve`` composes them."""
    settings = bot_settings(emulator, db.path)
    clock = SystemClock()
    repository = Repository(db)
    library = await build_library(kb, settings, repository)
    core = Core(library, settings, repository, clock)
    limiters = build_limiters(settings, clock)
    stop = asyncio.Event()
    transport = TelegramTransport(core, settings.telegram, stop, limiters[Platform.TELEGRAM])
    worker = DeliveryWorker(
        repository,
        library,
        {Platform.TELEGRAM: transport},
        limiters,
        settings.alerts,
        clock,
        poll_interval=0.2,
    )
    core.on_publish = worker.wake
    tasks = [asyncio.create_task(transport.run()), asyncio.create_task(worker.run(stop))]
    try:
        await emulator.wait_for("getUpdates", timeout=10)
        served = Served(emulator, core, repository, settings, transport)
        yield served
        await served.idle()
        left_over = {chat: len(served.sent(chat)) - n for chat, n in served.seen.items()}
        assert set(left_over.values()) <= {0}, f"replies nobody expected: {left_over}"
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 15)
