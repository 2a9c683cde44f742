"""Admin curation through the Bot API emulator: guided and one-shot forms, retract, export."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support.telegram_emulator import TelegramEmulator
from test_telegram import Running, last_text, start_bot

from bot.config import Settings
from bot.core import Core
from bot.domain import ChatRef, Incoming, Platform, Reply, ReplyKind
from bot.knowledge.loader import parse_file
from bot.knowledge.models import KnowledgeBase
from bot.knowledge.validate import validate
from bot.library import Library
from bot.store.db import Database
from bot.store.repositories import Repository
from bot.texts import t

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
    assert "The “answer” field is not valid" in problem and "420" in problem
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


async def test_editing_says_so_and_keep_it_stays_in_the_conversations_language(
    admin_bot: Running, kb: KnowledgeBase
) -> None:
    """The keywords step quotes Russian and Belarusian keywords: pressing "Keep it" there must
    not switch an English conversation to another language."""
    emu = admin_bot.emulator
    opening = await say(emu, "/editfact kozik-appointed")
    assert opening.startswith("<b>Editing kozik-appointed:") and "New fact" not in opening
    await press(emu, "/skip")
    keywords = await say(emu, "Leonid Kozik was made chair of the FPB after the 2001 election.")
    assert "Keywords" in keywords and "Козик" in keywords and "Start with + to add" in keywords
    assert "The source" in await say(emu, "+ who runs the fpb now, хто цяпер на чале ФПБ")
    await press(emu, "/skip")
    preview = await press(emu, "/skip")
    # Confirm and Edit take the place of the fact's own buttons, so those are listed.
    assert "Preview" in preview and "See also:" in preview
    assert "• 📄 The source's own words" in preview
    assert "Saved as kozik-appointed" in await press(emu, "/confirm")
    # The keywords kept their languages, and the added ones are filed under theirs.
    before = next(f for f in kb.facts if f.id == "kozik-appointed").keywords
    after = admin_bot.core.library.facts["kozik-appointed"].keywords
    assert after.en == [*before.en, "who runs the fpb now"]
    assert after.ru == before.ru
    assert after.be == [*before.be, "хто цяпер на чале ФПБ"]


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


# -- the same flows straight through the Core, on a real SQLite store --------------------------

CONSOLE_ADMIN = "curator"
ANSWER = "The Zubrovka depot strike of 1995 is a test fact."
KEYWORDS = "zubrovka depot, test strike"
SOURCE_ID = "stary-27-years"
GENERIC_ERROR = t("en", "error.generic")


@pytest.fixture
async def admin_core(kb: KnowledgeBase, settings: Settings, db: Database) -> Core:
    admin_settings = settings.model_copy(update={"admins": [f"console:{CONSOLE_ADMIN}"]})
    return Core(Library(kb, admin_settings.search), admin_settings, Repository(db))


async def tell(core: Core, text: str) -> Reply:
    """The one reply of the core to the admin's private message ``text``."""
    chat = ChatRef(platform=Platform.CONSOLE, chat_id=CONSOLE_ADMIN)
    [reply] = await core.handle(
        Incoming(chat=chat, sender_id=CONSOLE_ADMIN, text=text, language_hint="en")
    )
    assert GENERIC_ERROR not in reply.plain_text()
    return reply


def saved_id(reply: Reply) -> str:
    text = reply.plain_text()
    assert text.startswith("Saved as "), text
    return text.removeprefix("Saved as ").split(".")[0]


async def test_confirm_while_a_rejected_field_is_asked_again_names_the_field(
    admin_core: Core, db: Database
) -> None:
    await tell(admin_core, "/addfact")
    await tell(admin_core, "/step history")
    refused = await tell(admin_core, "x" * 421)
    assert (
        refused.kind is ReplyKind.ERROR
        and "The “answer” field is not valid" in refused.plain_text()
    )
    # /confirm now: the answer (and everything after it) is still missing.
    early = await tell(admin_core, "/confirm")
    assert early.kind is ReplyKind.ERROR
    assert "The “answer” field is not valid: this field is required" in early.plain_text()
    assert t("en", "admin.ask.answer") in early.plain_text()
    assert await rows(db, "runtime_entries") == 0
    # The form goes on from there, and /confirm at the end saves.
    assert t("en", "admin.ask.keywords") in (await tell(admin_core, ANSWER)).plain_text()
    too_many = await tell(admin_core, ", ".join(f"word{n}" for n in range(61)))
    assert "The “keywords” field is not valid: 61 keywords; the limit is 60" in (
        too_many.plain_text()
    )
    assert t("en", "admin.ask.source") in (await tell(admin_core, KEYWORDS)).plain_text()
    still = await tell(admin_core, "/confirm")
    assert "The “source” field is not valid: this field is required" in still.plain_text()
    assert t("en", "admin.ask.source") in still.plain_text()
    await tell(admin_core, f"/step {SOURCE_ID}")
    assert "Preview" in (await tell(admin_core, EVIDENCE)).plain_text()
    fact_id = saved_id(await tell(admin_core, "/confirm"))
    assert admin_core.library.facts[fact_id].evidence == EVIDENCE
    assert await rows(db, "runtime_entries") == 1


async def test_a_button_of_an_earlier_step_never_becomes_another_fields_value(
    admin_core: Core,
) -> None:
    await tell(admin_core, "/addfact")
    await tell(admin_core, "/step history")
    # The topic button again, while the answer is asked: the answer is asked again.
    again = await tell(admin_core, "/step history")
    assert t("en", "admin.ask.answer") in again.plain_text()
    await tell(admin_core, ANSWER)
    await tell(admin_core, KEYWORDS)
    await tell(admin_core, f"/step {SOURCE_ID}")
    # The source button again, while the evidence is asked: no evidence "stary-27-years".
    for stale in (f"/step {SOURCE_ID}", "/step page 2", "/step history"):
        assert t("en", "admin.ask.evidence") in (await tell(admin_core, stale)).plain_text()
    assert "Preview" in (await tell(admin_core, EVIDENCE)).plain_text()
    fact = admin_core.library.facts[saved_id(await tell(admin_core, "/confirm"))]
    assert (fact.answer.en, fact.evidence, fact.topics) == (ANSWER, EVIDENCE, ["history"])


async def test_a_topic_can_be_typed_as_its_menu_title_in_any_of_our_languages(
    admin_core: Core,
) -> None:
    history = admin_core.library.topics["history"].title
    assert history.ru and history.ru != history.en
    for typed in (f"  {history.en.upper()} ", history.ru, "history"):
        await tell(admin_core, "/addfact")
        asked = await tell(admin_core, typed)
        assert asked.kind is not ReplyKind.ERROR, (typed, asked.plain_text())
        assert t(asked.lang, "admin.ask.answer") in asked.plain_text(), typed
        await tell(admin_core, "/cancel")
    refused = await tell(admin_core, "/addfact nothing like a topic | x")
    assert "there is no topic 'nothing like a topic'" in refused.plain_text()


async def test_confirm_after_a_rejected_one_shot_field_then_after_a_rejected_edit(
    admin_core: Core, db: Database
) -> None:
    refused = await tell(
        admin_core, f"/addfact history | {'y' * 421} | {KEYWORDS} | {SOURCE_ID} | {EVIDENCE}"
    )
    assert "The “answer” field is not valid" in refused.plain_text()
    early = await tell(admin_core, "/confirm")
    assert "The “answer” field is not valid: this field is required" in early.plain_text()
    assert await rows(db, "runtime_entries") == 0
    assert "Preview" in (await tell(admin_core, ANSWER)).plain_text()
    fact_id = saved_id(await tell(admin_core, "/confirm"))

    # Editing: every field has a valid value, so /confirm while one is asked again saves the
    # entry as it stands (the rejected value is not used).
    await tell(admin_core, f"/editfact {fact_id}")
    await tell(admin_core, "/skip")
    assert "The “answer” field is not valid" in (await tell(admin_core, "z" * 421)).plain_text()
    assert saved_id(await tell(admin_core, "/confirm")) == fact_id
    assert admin_core.library.facts[fact_id].answer.en == ANSWER
    assert await rows(db, "audit") == 2


async def test_one_shot_addfact_with_a_new_source_inline_keeps_the_evidence(
    admin_core: Core, db: Database
) -> None:
    evidence = "Workers of the depot stopped 12 trolleybuses; the strike lasted 3 days."
    preview = await tell(
        admin_core,
        f"/addfact history | {ANSWER} | {KEYWORDS} | The Depot Report | Zubrovka Press"
        f" | 2024-05-01 | https://example.org/depot-report | {evidence}",
    )
    assert preview.kind is not ReplyKind.ERROR and "Preview" in preview.plain_text()
    fact_id = saved_id(await tell(admin_core, "/confirm"))
    fact = admin_core.library.facts[fact_id]
    assert fact.evidence == evidence
    source = admin_core.library.sources[fact.sources[0]]
    assert source.title.en == "The Depot Report"
    assert source.publisher == "Zubrovka Press"
    assert str(source.date) == "2024-05-01"
    assert str(source.url) == "https://example.org/depot-report"
    assert await rows(db, "runtime_entries") == 2  # the fact and its new source

    # A new source with only some of its parts: the rest stay empty, the evidence is kept.
    await tell(
        admin_core,
        f"/addfact history | Another zubrovka answer. | zubrovka two | Depot Notes | | "
        f"2023-01-02 | {evidence}",
    )
    other = admin_core.library.facts[saved_id(await tell(admin_core, "/confirm"))]
    assert other.evidence == evidence
    notes = admin_core.library.sources[other.sources[0]]
    assert (notes.title.en, notes.publisher, str(notes.date), notes.url) == (
        "Depot Notes",
        None,
        "2023-01-02",
        None,
    )


async def test_one_shot_parts_that_cannot_be_a_source_are_refused_by_name(
    admin_core: Core, db: Database
) -> None:
    # A "|" after an existing source id would otherwise make a new source of it.
    refused = await tell(
        admin_core, f"/addfact history | {ANSWER} | {KEYWORDS} | {SOURCE_ID} | a | b"
    )
    assert refused.kind is ReplyKind.ERROR
    assert "The “source” field is not valid" in refused.plain_text()
    # More parts than a new source has (title | author | date | url) are refused, not dropped.
    refused = await tell(
        admin_core,
        f"/addfact history | {ANSWER} | {KEYWORDS} | Title | Press | 2024-05-01"
        f" | https://example.org/x | extra | {EVIDENCE}",
    )
    assert refused.kind is ReplyKind.ERROR
    assert "The “source” field is not valid" in refused.plain_text()
    # Only the source is asked again; the evidence given is kept.
    assert "Preview" in (await tell(admin_core, SOURCE_ID)).plain_text()
    fact_id = saved_id(await tell(admin_core, "/confirm"))
    assert admin_core.library.facts[fact_id].evidence == EVIDENCE
    assert await rows(db, "runtime_entries") == 1


async def test_evidence_or_a_quote_not_in_the_sources_text_is_refused(
    admin_core: Core, db: Database
) -> None:
    """Where the source's text is at hand (the seed texts), an excerpt must be its own words."""
    made_up = "Workers of the Zubrovka depot joined the strike."
    refused = await tell(
        admin_core, f"/addfact history | {ANSWER} | {KEYWORDS} | {SOURCE_ID} | {made_up}"
    )
    assert refused.kind is ReplyKind.ERROR
    assert "The “evidence” field is not valid: it is not word for word in the text of" in (
        refused.plain_text()
    )
    # The refused value is shown, to be corrected, but not offered to keep.
    assert t("en", "admin.current", value=made_up) in refused.plain_text()
    assert [c.command for c in refused.choices] == ["/cancel"]
    again = await tell(admin_core, "/skip")  # the evidence is required: dropped, then asked for
    assert "this field is required" in again.plain_text() and made_up not in again.plain_text()
    # Asked again for the evidence alone; the source's words, line breaks aside, are taken.
    spread = EVIDENCE.replace(" were ", "\n  were ")
    assert "Preview" in (await tell(admin_core, spread)).plain_text()
    fact_id = saved_id(await tell(admin_core, "/confirm"))
    assert admin_core.library.facts[fact_id].evidence == spread
    quote = await tell(admin_core, f"/addquote history | Philip Stary | {made_up} | {SOURCE_ID}")
    assert quote.kind is ReplyKind.ERROR and "The “text” field is not valid" in quote.plain_text()
    assert await rows(db, "runtime_entries") == 1


async def test_source_picker_pages_through_every_source(
    kb: KnowledgeBase, settings: Settings, db: Database
) -> None:
    busy = settings.model_copy(
        update={"admins": [f"console:{CONSOLE_ADMIN}"], "questions_per_minute": 1000}
    )
    core = Core(Library(kb, busy.search), busy, Repository(db))
    for i in range(20):
        preview = await tell(
            core,
            f"/addsource Paging Source {i:02d} | Pager Press | 2024-01-{i + 1:02d}"
            f" | https://example.org/paging-{i}",
        )
        assert "Preview" in preview.plain_text(), preview.plain_text()
        saved_id(await tell(core, "/confirm"))
    assert len(core.library.sources) == len(kb.sources) + 20

    def entries(reply: Reply) -> list[str]:
        return [
            c.command
            for c in reply.choices
            if c.command.startswith("/step ") and not c.command.startswith("/step page")
        ]

    def nav(reply: Reply) -> list[str]:
        return [c.command for c in reply.choices if c.command.startswith("/step page")]

    await tell(core, "/addquote")
    await tell(core, "/step history")
    await tell(core, "Pager Speaker")
    pages = [await tell(core, "A quotation attributed to a source on the second page.")]
    assert t("en", "admin.ask.source") in pages[0].plain_text()
    while True:
        reply = pages[-1]
        # At most 8 sources and 2 page buttons; besides them only "cancel".
        assert 1 <= len(entries(reply)) <= 8 and len(nav(reply)) <= 2
        assert len(entries(reply) + nav(reply)) <= 8 + 2 and len(reply.choices) <= 8 + 2 + 1
        assert reply.choices[-1].command == "/cancel"
        following = [c for c in nav(reply) if c.endswith(f" {len(pages) + 1}")]
        if not following:
            break
        pages.append(await tell(core, following[0]))
        assert pages[-1].replace and t("en", "admin.ask.source") in pages[-1].plain_text()
    seen = [command for page in pages for command in entries(page)]
    assert sorted(seen) == sorted(f"/step {s}" for s in core.library.sources)
    assert len(pages) == 3 and "Page 3 of 3" in pages[-1].plain_text()
    [back] = [c for c in nav(pages[-1]) if c.endswith(" 2")]
    assert entries(await tell(core, back)) == entries(pages[1])
    # A bad page number gets the first or the last page, and sets no value.
    for bad in ("0", "-1", "two", "²", ""):
        assert entries(await tell(core, f"/step page {bad}")) == entries(pages[0]), bad
    for far in ("4", "99999", "9" * 40):
        assert entries(await tell(core, f"/step page {far}")) == entries(pages[-1]), far
    # The source picked on page 2 is the quote's.
    picked = entries(pages[1])[2]
    preview = await tell(core, picked)
    assert "Preview" in preview.plain_text()
    # A page button pressed after the picker was answered changes nothing.
    assert "Preview" in (await tell(core, "/step page 3")).plain_text()
    quote = core.library.quotes[saved_id(await tell(core, "/confirm"))]
    assert quote.sources == [picked.removeprefix("/step ")]
    assert core.library.sources[quote.sources[0]].title.en.startswith("Paging Source")
