"""Privacy end to end: what a known user leaves behind after talking to ``python -m bot run``.

A user with a known id, username and first name asks a question the bot answers and one it
declines (a planted, unique wording), subscribes the chat to every topic, chooses a language,
gets one alert while a second one waits in the outbox, then deletes everything with /forgetme
and its confirmation button. The bot logs JSON lines at DEBUG level. Afterwards the raw bytes
of the SQLite file (and of its write-ahead log, while the bot still runs), the logs, and a
``python -m bot kb export`` are searched: the bot token, the user id, the username and the
first name appear nowhere, and the planted question only in the pages of the
``declined_questions`` table, normalised and with no ids beside it.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import struct
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from support.environment import child_environment
from support.process import run_to_end, spawn_run
from support.telegram_emulator import Call, TelegramEmulator

from bot.knowledge.models import Event, KnowledgeBase
from bot.search.normalize import words
from bot.store.db import Database
from bot.store.repositories import Repository

TOKEN = "7301234567:AAH-privacy_token-of-this-run-0123456789"
BOT_NAME = "AdvocacyTestBot"
USER_ID = 987654321
USERNAME = "known_user"
FIRST_NAME = "Knownname"
QUESTION = "zebracrossing unicornium question"
ANSWERED = "What is Article 33 of the ILO Constitution?"
TOPIC = "history"
SOURCE_ID = "stary-27-years"
SECRETS = (TOKEN, TOKEN.split(":")[1], str(USER_ID), USERNAME, FIRST_NAME)
WAL_HEADER, FRAME_HEADER = 32, 24


def sql(path: Path, query: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path, timeout=10)
    try:
        return conn.execute(query, params).fetchall()
    finally:
        conn.close()


def page_owners(path: Path) -> dict[int, str]:
    """Page number -> the table or index it belongs to (freelist pages are not listed)."""
    return {int(page): str(name) for name, page in sql(path, "SELECT name, pageno FROM dbstat")}


def offsets(blob: bytes, needle: bytes) -> list[int]:
    found, start = [], blob.find(needle)
    while start >= 0:
        found.append(start)
        start = blob.find(needle, start + 1)
    return found


def pages_of_main(blob: bytes, needle: bytes, page_size: int) -> set[int]:
    return {offset // page_size + 1 for offset in offsets(blob, needle)}


def pages_of_wal(blob: bytes, needle: bytes) -> set[int]:
    """The database pages whose frames in a write-ahead log hold ``needle``."""
    if len(blob) < WAL_HEADER:
        return set()
    (page_size,) = struct.unpack(">I", blob[8:12])
    frame = FRAME_HEADER + page_size
    pages = set()
    for offset in offsets(blob, needle):
        start = WAL_HEADER + (offset - WAL_HEADER) // frame * frame
        (page,) = struct.unpack(">I", blob[start : start + 4])
        pages.add(page)
    return pages


def bot_env(emulator: TelegramEmulator, database: Path) -> dict[str, str]:
    env = child_environment()
    env.update(
        BOT_TELEGRAM__TOKEN=TOKEN,
        BOT_TELEGRAM__BASE_URL=emulator.base_url,
        BOT_TELEGRAM__POLL_TIMEOUT="1",
        BOT_DATABASE=str(database),
        BOT_LOG_FORMAT="json",
        BOT_LOG_LEVEL="DEBUG",
        # One alert reaches the chat; the next waits in the outbox for ten minutes.
        BOT_ALERTS__TELEGRAM_CHAT_INTERVAL="600",
    )
    return env


def event(event_id: str, title: str) -> Event:
    return Event.model_validate(
        {
            "id": event_id,
            "date": "2031-05-01",
            "precision": "day",
            "title": {"en": title},
            "summary": {"en": f"Summary of {title}."},
            "topics": [TOPIC],
            "sources": [SOURCE_ID],
        }
    )


@pytest.fixture
async def emulator() -> AsyncIterator[TelegramEmulator]:
    async with TelegramEmulator(token=TOKEN, bot_username=BOT_NAME) as emu:
        yield emu


class User:
    """The known user, talking to the bot in a private chat."""

    def __init__(self, emulator: TelegramEmulator) -> None:
        self.emulator = emulator

    def sent(self) -> list[Call]:
        return [
            c
            for c in self.emulator.calls_to("sendMessage")
            if c.ok and c.params["chat_id"] == USER_ID
        ]

    async def _next(self, before: int) -> Call:
        calls = await self.emulator.wait_for(
            "sendMessage",
            count=before + 1,
            timeout=15,
            predicate=lambda c: c.params["chat_id"] == USER_ID,
        )
        return calls[before]

    async def say(self, text: str) -> Call:
        before = len(self.sent())
        self.emulator.send_message(
            text, user_id=USER_ID, username=USERNAME, first_name=FIRST_NAME, language_code="en"
        )
        return await self._next(before)

    async def press(self, data: str) -> Call:
        before = len(self.sent())
        self.emulator.press_button(data, user_id=USER_ID)
        return await self._next(before)


async def outbox(database: Path) -> list[tuple[Any, ...]]:
    return await asyncio.to_thread(
        sql, database, "SELECT chat_id, status FROM outbox ORDER BY event_id"
    )


async def test_nothing_identifies_the_user_after_forgetme(
    emulator: TelegramEmulator, kb: KnowledgeBase, tmp_path: Path
) -> None:
    database = tmp_path / "privacy.sqlite3"
    wal = database.with_name(database.name + "-wal")
    env = bot_env(emulator, database)
    log = tmp_path / "bot.log"
    user = User(emulator)
    with log.open("wb") as log_file:
        proc = await spawn_run(env, stderr=log_file)
    try:
        await emulator.wait_for("getUpdates", timeout=30)
        assert "Hello!" in str((await user.say("/start")).params["text"])
        assert "Article 33" in str((await user.say(ANSWERED)).params["text"])
        declined = await user.say(QUESTION)
        assert str(declined.params["text"]).startswith("I don't have a sourced answer")
        subscribed = await user.say("/subscribe all")
        assert str(subscribed.params["text"]).startswith("Subscribed to: ")
        menu = await user.say("/language")
        assert [
            b["callback_data"]
            for row in menu.params["reply_markup"]["inline_keyboard"]
            for b in row
        ] == ["/language en", "/language ru", "/language be"]
        chosen = await user.press("/language en")
        assert chosen.params["text"] == "I will answer in English in this chat."

        async with Database(database) as db:
            repository = Repository(db)
            assert await repository.publish_event(event("privacy-alert-1", "First"), time.time())
            assert await repository.publish_event(event("privacy-alert-2", "Second"), time.time())
        deadline = time.monotonic() + 15
        while await outbox(database) != [(str(USER_ID), "sent"), (str(USER_ID), "pending")]:
            assert time.monotonic() < deadline, await outbox(database)
            await asyncio.sleep(0.1)

        ask = await user.say("/forgetme")
        buttons = [
            (b["text"], b["callback_data"])
            for row in ask.params["reply_markup"]["inline_keyboard"]
            for b in row
        ]
        assert buttons == [("Yes, delete it", "/forgetme confirm"), ("No, keep it", "/privacy")]
        done = await user.press("/forgetme confirm")
        assert done.params["text"] == (
            f"Done. Deleted: subscriptions — {len(kb.topics)}, alerts — 2, language choice — 1, "
            "questions waiting for an answer — 0. Nothing else about this chat is stored."
        )
        for table in ("subscriptions", "outbox", "chat_settings"):
            assert await asyncio.to_thread(sql, database, f"SELECT * FROM {table}") == [], table

        # The files as they are while the bot still runs, and which page holds what.
        running = {
            "database (running)": await asyncio.to_thread(database.read_bytes),
            "write-ahead log (running)": await asyncio.to_thread(wal.read_bytes)
            if wal.exists()
            else b"",
        }
        owners_running = await asyncio.to_thread(page_owners, database)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

    stopped = {"database (stopped)": await asyncio.to_thread(database.read_bytes)}
    if wal.exists():
        stopped["write-ahead log (stopped)"] = await asyncio.to_thread(wal.read_bytes)
    owners_stopped = await asyncio.to_thread(page_owners, database)
    logs = await asyncio.to_thread(log.read_text, "utf-8")
    status, stdout, stderr = await run_to_end(env, "kb", "export", str(tmp_path / "export"))
    assert status == 0, stderr
    exported = {
        f"export {path.name}": path.read_bytes()
        for path in sorted((tmp_path / "export").iterdir())
    }
    assert "facts.yaml" in " ".join(exported)

    # The logs are JSON lines, and they did record the run.
    records = [json.loads(line) for line in logs.splitlines() if line.strip()]
    events = {r["event"] for r in records}
    assert {"telegram.started", "telegram.sent", "telegram.stopped", "bot.stopped"} <= events

    blobs = {
        **running,
        **stopped,
        **exported,
        "logs": logs.encode(),
        "export output": (stdout + stderr).encode(),
    }
    for where, blob in blobs.items():
        for secret in SECRETS:
            assert secret.encode() not in blob, f"{secret!r} found in the {where}"
        if not where.startswith(("database", "write-ahead")):
            assert b"zebracrossing" not in blob and b"unicornium" not in blob, where

    # The question: only in declined_questions, normalised, with no id beside it.
    normalised = " ".join(words(QUESTION))
    assert await asyncio.to_thread(
        sql, database, "SELECT normalized, count FROM declined_questions"
    ) == [(normalised, 1)]
    assert [c[1] for c in sql(database, "PRAGMA table_info(declined_questions)")] == [
        "day",
        "normalized",
        "count",
    ]
    tables = [
        name
        for (name,) in sql(database, "SELECT name FROM sqlite_master WHERE type = 'table'")
        if name != "declined_questions"
    ]
    for table in tables:
        for row in sql(database, f'SELECT * FROM "{table}"'):
            assert not any("unicornium" in str(value) for value in row), table
    allowed = {"declined_questions", "sqlite_autoindex_declined_questions_1"}
    (page_size,) = sql(database, "PRAGMA page_size")[0]
    needle = normalised.encode()
    running_pages = pages_of_main(running["database (running)"], needle, page_size)
    wal_pages = pages_of_wal(running["write-ahead log (running)"], needle)
    stopped_pages = pages_of_main(stopped["database (stopped)"], needle, page_size)
    assert running_pages | wal_pages, "the declined question is not stored while running"
    assert stopped_pages, "the declined question is not stored after the stop"
    for pages, owners in (
        (running_pages | wal_pages, owners_running),
        (stopped_pages, owners_stopped),
    ):
        assert {owners.get(page, "free page") for page in pages} <= allowed
