"""Admin curation through the Bot API emulator: guided and one-shot forms, retract, export."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support.telegram_emulator import TelegramEmulator
from test_telegram import Running, last_text, start_bot

from bot.knowledge.loader import parse_file
from bot.knowledge.models import KnowledgeBase
from bot.knowledge.validate import validate
from bot.store.db import Database

ADMIN = 4242
EVIDENCE = "Among the strikers were workers of the Minsk metro and Gomel trolleybus drivers."


@pytest.fixture
async def admin_bot(
    emulator: TelegramEmulator, kb: KnowledgeBase, db: Database
) -> AsyncIterator[Running]:
    running, stop, task = await start_bot(emulator, kb, db, admins=[f"telegram:{ADMIN}"])
    try:
        yield running
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def rows(db: Database, table: str) -> int:
    async with db.conn.execute(f"SELECT COUNT(*) FROM {table}") as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


def buttons(call_params: dict[str, object]) -> list[dict[str, str]]:
    markup = call_params.get("reply_markup")
    assert isinstance(markup, dict), call_params
    return [b for row in markup["inline_keyboard"] for b in row]


async def say(emu: TelegramEmulator, text: str, user_id: int = ADMIN, **kwargs: object) -> str:
    before = len(emu.calls_to("sendMessage"))
    emu.send_message(text, user_id=user_id, **kwargs)  # type: ignore[arg-type]
    return await last_text(emu, count=before + 1)


async def press(emu: TelegramEmulator, data: str, user_id: int = ADMIN) -> str:
    before = len(emu.calls_to("sendMessage"))
    emu.press_button(data, user_id=user_id)
    return await last_text(emu, count=before + 1)


async def test_guided_addfact_with_a_validation_error_then_a_user_gets_it(
    admin_bot: Running, db: Database
) -> None:
    emu = admin_bot.emulator
    assert "Which topic?" in await say(emu, "/addfact")
    topic_buttons = buttons(emu.calls_to("sendMessage")[-1].params)
    assert any(b["callback_data"] == "/step history" for b in topic_buttons)
    assert "short answer" in await press(emu, "/step history")
    problem = await say(emu, "x" * 500)
    assert "The answer is not valid" in problem and "420" in problem
    answer = "The Zubrovka depot strike of 1995 is a test fact & <b>escaped</b>."
    assert "Keywords" in await say(emu, answer)
    assert "The source" in await say(emu, "zubrovka depot, test strike")
    assert "The evidence" in await press(emu, "/step stary-27-years")
    preview = await say(emu, EVIDENCE)
    assert "Preview" in preview and "Zubrovka depot strike" in preview
    assert "&lt;b&gt;escaped&lt;/b&gt;" in preview and "&amp;" in preview
    labels = [b["callback_data"] for b in buttons(emu.calls_to("sendMessage")[-1].params)]
    assert labels == ["/confirm", "/edit", "/cancel"]
    assert await rows(db, "runtime_entries") == 0
    assert "Saved as fact-" in await press(emu, "/confirm")
    assert await rows(db, "runtime_entries") == 1 and await rows(db, "audit") == 1
    reply = await say(emu, "tell me about the zubrovka depot strike", user_id=7)
    assert "Zubrovka depot strike" in reply and "Source:" in reply


async def test_cancel_leaves_nothing_and_one_shot_form_works(
    admin_bot: Running, db: Database
) -> None:
    emu = admin_bot.emulator
    await say(emu, "/addfact")
    await press(emu, "/step history")
    await say(emu, "A draft that will be cancelled.")
    assert "Nothing was saved" in await say(emu, "/cancel")
    assert await rows(db, "runtime_entries") == 0 and await rows(db, "audit") == 0
    one_shot = (
        f"/addfact history | The Kvass test fact answer. | kvasstest | stary-27-years | {EVIDENCE}"
    )
    assert "Preview" in await say(emu, one_shot)
    assert "Saved as" in await say(emu, "/confirm")
    assert "Kvass test fact" in await say(emu, "kvasstest", user_id=8)


async def test_retract_and_restore_take_effect_at_once(admin_bot: Running, db: Database) -> None:
    emu = admin_bot.emulator
    question = "who ran against lukashenko in 2001"
    assert "Hancharyk" in await say(emu, question, user_id=9)
    assert "Retracted election-2001-hancharyk" in await say(
        emu, "/retract election-2001-hancharyk wrong date"
    )
    assert "Hancharyk" not in await say(emu, question, user_id=10)
    emu.inline_query("hancharyk lukashenko 2001")
    [inline] = await emu.wait_for("answerInlineQuery")
    assert all(
        "Hancharyk" not in r["input_message_content"]["message_text"]
        for r in inline.params["results"]
    )
    assert "Restored" in await say(emu, "/restore election-2001-hancharyk")
    assert "Hancharyk" in await say(emu, question, user_id=11)
    audit = await say(emu, "/audit election-2001-hancharyk")
    assert "retract" in audit and "restore" in audit and "wrong date" in audit


async def test_non_admins_get_the_unknown_command_reply(admin_bot: Running, db: Database) -> None:
    emu = admin_bot.emulator

    async def replies(text: str, user_id: int, **kwargs: object) -> list[str]:
        before = len(emu.calls_to("sendMessage"))
        emu.send_message(text, user_id=user_id, **kwargs)  # type: ignore[arg-type]
        calls = await emu.wait_for("sendMessage", count=before + 2)
        return [str(c.params["text"]) for c in calls[before:]]

    unknown = await replies("/frobnicate", 5555)
    refused = await replies("/addfact", 5556, username="adminname")
    assert [t.replace("addfact", "X") for t in refused] == [
        t.replace("frobnicate", "X") for t in unknown
    ]
    in_group = await replies("/stats", ADMIN, chat_id=-100123, chat_type="supergroup")
    assert "I don't know the command /stats." in in_group[0]
    async with db.conn.execute("SELECT day, count FROM refused_admin_attempts") as cursor:
        [(day, count)] = [tuple(r) for r in await cursor.fetchall()]
    assert count == 2 and len(day) == 10


async def test_unanswered_shows_wordings_only_and_export_round_trips(
    admin_bot: Running, db: Database, kb: KnowledgeBase
) -> None:
    emu = admin_bot.emulator
    await say(emu, "how do I grow tomatoes", user_id=12)
    await say(emu, "How do I grow tomatoes?", user_id=13)
    report = await say(emu, "/unanswered")
    assert "• 2 × how do i grow tomatoes" in report
    assert "12" not in report and "13" not in report
    before = len(emu.calls_to("sendDocument"))
    await say(emu, "/export")
    [document] = (await emu.wait_for("sendDocument", count=before + 1))[-1:]
    [content] = document.files.values()
    exported = KnowledgeBase.model_validate(parse_file(Path("export.yaml"), content.data.decode()))
    assert len(exported.facts) == len(kb.facts)
    assert validate(exported).errors == []
