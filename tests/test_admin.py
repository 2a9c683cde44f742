"""Admin curation end to end: the real python-telegram-bot Application against the Bot API emulator.

An admin (``telegram:4242``) adds facts with the guided form (buttons, one field per message)
and the one-shot form, edits, retracts and restores them, publishes an event to subscribed
chats (a DeliveryWorker runs beside the transport, as in ``bot.app.serve``), and reads the
reports (/unanswered, /stats, /audit, /export). Everybody else, and the admin in a group, gets
exactly the reply an unknown command gets. Drafts live in memory only: a crash before /confirm
leaves nothing behind, and a failure inside the confirming transaction writes nothing.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import TELEGRAM_TOKEN as TOKEN
from support.curation import (
    ADMIN,
    ADMIN_USERNAME,
    ANSWER,
    CONFIRM_BUTTONS,
    DECLINED,
    EVIDENCE,
    FACT_ID,
    GROUP,
    KEYWORDS,
    NEAR_MISS,
    ONE_SHOT,
    PREVIEW,
    QUESTION,
    SEEDS,
    SOURCE_ID,
    STRANGER,
    TOPIC,
    TWIN,
    USER,
    Served,
    buttons,
    columns,
    every_value,
    rows,
)
from support.environment import child_environment
from support.process import spawn_run
from support.telegram_emulator import Call, TelegramEmulator

from bot.answers import fact_label
from bot.core import Core
from bot.domain import ChatRef, Platform
from bot.knowledge.loader import parse_file
from bot.knowledge.models import Fact, KnowledgeBase
from bot.knowledge.validate import validate
from bot.search.normalize import words
from bot.store.repositories import Repository
from bot.texts import t

# -- adding facts ------------------------------------------------------------------------------


async def test_guided_addfact_with_buttons_cancel_and_a_field_error(
    served: Served, kb: KnowledgeBase
) -> None:
    topic_buttons = [(tp.title.en, f"/step {tp.id}") for tp in kb.topics]
    answer_prompt = t("en", "admin.ask.answer")

    # A first draft, cancelled at the source step: nothing is saved.
    [intro] = await served.say("/addfact")
    assert intro.params["text"] == (
        f"<b>{t('en', 'admin.intro.fact')}</b>\n\n{t('en', 'admin.ask.topic')}"
    )
    assert buttons(intro) == [*topic_buttons, ("Cancel", "/cancel")]
    [asked] = await served.press(f"/step {TOPIC}")
    assert asked.params["text"] == answer_prompt
    assert await served.ask(ANSWER) == t("en", "admin.ask.keywords")
    [source] = await served.say(KEYWORDS)
    assert source.params["text"] == t("en", "admin.ask.source")
    assert (f"/step {SOURCE_ID}") in [data for _, data in buttons(source)]
    assert buttons(source)[-1] == ("Cancel", "/cancel")
    [cancelled] = await served.press("/cancel")
    assert cancelled.params["text"] == "Cancelled. Nothing was saved."
    assert await served.runtime_entries() == []
    assert await asyncio.to_thread(rows, served.database, "SELECT * FROM audit") == []
    assert await served.ask("/confirm") == t("en", "admin.no_draft")
    # With no draft open, the admin's plain text is a question like anybody's.
    assert DECLINED in await served.ask(QUESTION)

    # A second draft: an over-long answer is refused naming the field, and only it is resent.
    await served.say("/addfact")
    await served.press(f"/step {TOPIC}")
    [refused] = await served.say("x" * 421)
    assert refused.params["text"] == (
        "<i>The “answer” field is not valid: it is 421 characters long; the limit is 420. "
        f"Please send it again.</i>\n\n{answer_prompt}"
    )
    assert buttons(refused) == [("Cancel", "/cancel")]
    assert await served.ask(ANSWER) == t("en", "admin.ask.keywords")
    await served.say(KEYWORDS)
    [evidence] = await served.press(f"/step {SOURCE_ID}")
    assert evidence.params["text"] == t("en", "admin.ask.evidence")
    [preview] = await served.say(EVIDENCE)
    assert buttons(preview) == CONFIRM_BUTTONS
    preview_text = str(preview.params["text"])
    assert preview_text.startswith(f"{PREVIEW}\n\n{ANSWER}\n\n<i>Source: ")

    # Not live before /confirm.
    assert DECLINED in await served.ask(QUESTION, user_id=USER)
    [saved] = await served.press("/confirm")
    assert saved.params["text"] == f"Saved as {FACT_ID}. It is searchable now."

    # A user's question gets exactly what the preview showed, the buttons listed there.
    answer = await served.ask(QUESTION, user_id=USER)
    assert preview_text == f"{PREVIEW}\n\n{answer}\n\n• 📄 The source's own words"
    assert await served.runtime_entries() == [("fact", FACT_ID)]
    [added] = await served.audit_rows(FACT_ID)
    assert (added["actor"], added["action"], added["kind"], added["before"]) == (
        f"telegram:{ADMIN}",
        "add",
        "fact",
        None,
    )
    after = json.loads(added["after"])
    assert (after["answer"], after["topics"], after["sources"], after["evidence"]) == (
        {"en": ANSWER, "ru": None, "be": None, "of": None},
        [TOPIC],
        [SOURCE_ID],
        EVIDENCE,
    )
    assert after["keywords"]["en"] == ["zubrovka accord", "zubrovka"]


async def test_one_shot_addfact_resends_only_the_wrong_field(served: Served) -> None:
    too_long = "y" * 421
    [refused] = await served.say(
        f"/addfact {TOPIC} | {too_long} | {KEYWORDS} | {SOURCE_ID} | {EVIDENCE}"
    )
    assert str(refused.params["text"]).startswith(
        "<i>The “answer” field is not valid: it is 421 characters long; the limit is 420."
    )
    # Only the answer is asked again; the other fields of the command are kept.
    [preview] = await served.say(ANSWER)
    assert str(preview.params["text"]).startswith(f"{PREVIEW}\n\n{ANSWER}\n\n")
    assert buttons(preview) == CONFIRM_BUTTONS
    [saved] = await served.say("/confirm")
    assert saved.params["text"] == f"Saved as {FACT_ID}. It is searchable now."
    assert (await served.ask(QUESTION, user_id=USER)).startswith(ANSWER)

    # An unknown source id is refused by name, and fixed alone too.
    [refused] = await served.say(
        f"/addfact {TOPIC} | Another answer about zubrovka. | zubrovka two | no-such-source | x"
    )
    text = str(refused.params["text"])
    assert text.startswith(
        "<i>The “source” field is not valid: there is no source 'no-such-source'"
    )
    [preview] = await served.say(SOURCE_ID)
    assert str(preview.params["text"]).startswith(f"{PREVIEW}\n\nAnother answer about zubrovka.")
    assert await served.ask("/cancel") == "Cancelled. Nothing was saved."
    assert await served.runtime_entries() == [("fact", FACT_ID)]


async def translated_fact(kb: KnowledgeBase, core: Core) -> Fact:
    """A curated fact with all three translations that answers its own sample questions."""
    for fact in kb.facts:
        if not (fact.answer.ru and fact.answer.be and fact.questions.en and fact.questions.ru):
            continue
        en = await core.answer(fact.questions.en[0], "en")
        ru = await core.answer(fact.questions.ru[0], "ru")
        if en.fact_id == fact.id and ru.fact_id == fact.id:
            return fact
    raise AssertionError("the knowledge base has no fully translated, self-answering fact")


async def test_editfact_keeps_skipped_fields_and_serves_the_edit(
    served: Served, kb: KnowledgeBase
) -> None:
    fact = await translated_fact(kb, served.core)
    ru_user, en_user = 2001, 2002
    ru_before = await served.ask(fact.questions.ru[0], user_id=ru_user, language_code="ru")
    assert ru_before.startswith(fact.answer.ru or "")

    # Keep everything but the keywords: Keep buttons and /skip both keep a value.
    [topic] = await served.say(f"/editfact {fact.id}")
    assert f"<i>Current value: {fact.topics[0]}</i>" in topic.params["text"]
    assert buttons(topic)[0] == ("Keep it", "/skip")
    [answer] = await served.press("/skip")
    assert str(answer.params["text"]).startswith(t("en", "admin.ask.answer"))
    [keywords] = await served.say("/skip")
    assert str(keywords.params["text"]).startswith(t("en", "admin.ask.keywords"))
    await served.say("zanzibarium, zanzibarium treaty")
    await served.press("/skip")  # source
    [preview] = await served.say("/skip")  # evidence
    assert str(preview.params["text"]).startswith(f"{PREVIEW}\n\n")
    [saved] = await served.press("/confirm")
    assert saved.params["text"] == f"Saved as {fact.id}. It is searchable now."
    assert (await served.ask("zanzibarium treaty", user_id=en_user)).startswith(fact.answer.en)
    # The kept answer kept its translations.
    edited = served.core.library.facts[fact.id]
    assert edited.answer == fact.answer
    assert edited.evidence == fact.evidence and edited.sources == fact.sources
    assert await served.ask(fact.questions.ru[0], user_id=ru_user) == ru_before

    # Change the answer alone: the new text is what users get.
    new_answer = "An edited answer: the ILO acted after two decades, in November 2022."
    await served.say(f"/editfact {fact.id}")
    await served.say("/skip")
    await served.say(new_answer)
    await served.press("/skip")  # keywords
    await served.say("/skip")  # source
    [preview] = await served.say("/skip")  # evidence
    assert str(preview.params["text"]).startswith(f"{PREVIEW}\n\n{new_answer}\n\n<i>Corrected on ")
    # Changing the answer is a correction: the preview says so and shows the dated note.
    hint = t("en", "admin.correction_hint")
    assert str(preview.params["text"]).endswith(f"\n\n<i>{hint}</i>")
    assert ("Minor fix: no notice", "/confirm minor") in buttons(preview)
    [saved] = await served.say("/confirm")
    assert "Correction queued for chats: 0." in saved.params["text"]
    # Asked by its (kept) keyword: the edited answer no longer says what its phrasings ask.
    [answered_call] = await served.say("zanzibarium treaty", user_id=en_user)
    answered = str(answered_call.params["text"])
    assert "<i>Corrected on " in answered
    # The preview lists the buttons users get, which Confirm and Edit replace there.
    offered = "\n".join(f"• {label}" for label, _ in buttons(answered_call))
    assert preview.params["text"] == f"{PREVIEW}\n\n{answered}\n\n{offered}\n\n<i>{hint}</i>"

    first, second = await served.audit_rows(fact.id)
    assert (first["action"], second["action"]) == ("edit", "edit")
    assert json.loads(first["before"]) == fact.model_dump(mode="json")
    assert json.loads(first["after"])["keywords"]["en"] == ["zanzibarium", "zanzibarium treaty"]
    assert json.loads(second["before"])["answer"] == fact.answer.model_dump(mode="json")
    assert json.loads(second["after"])["answer"]["en"] == new_answer
    assert await served.runtime_entries() == [("fact", fact.id)]


# -- retract and restore -----------------------------------------------------------------------


async def served_everywhere(served: Served, fact_id: str) -> tuple[bool, bool, bool]:
    """Whether the fact answers its question, comes up inline, and is suggested on a decline."""
    answer = await served.ask(QUESTION, user_id=USER)
    inline = await served.inline("zubrovka")
    [decline] = await served.say(NEAR_MISS, user_id=USER)
    assert str(decline.params["text"]).startswith(DECLINED)
    return (
        answer.startswith(ANSWER),
        any(text.startswith(ANSWER) for text in inline),
        f"/fact {fact_id}" in [data for _, data in buttons(decline)],
    )


async def test_retract_and_restore_take_effect_at_once_with_audit(served: Served) -> None:
    fact_id = await served.add_fact()
    assert await served_everywhere(served, fact_id) == (True, True, True)

    retracted = await served.ask(f"/retract {fact_id} the accord never existed")
    assert (
        retracted
        == f"Retracted {fact_id}: it is no longer served. /restore {fact_id} undoes this.\n\n"
        "Correction queued for chats: 0."
    )
    assert await served_everywhere(served, fact_id) == (False, False, False)
    assert await served.ask(f"/fact {fact_id}", user_id=USER) == t("en", "fact.unknown")
    assert await served.ask(f"/retract {fact_id}") == f"{fact_id} is already retracted."

    assert await served.ask(f"/restore {fact_id}") == (
        f"Restored {fact_id}: it is served again.\n\nCorrection queued for chats: 0."
    )
    assert await served_everywhere(served, fact_id) == (True, True, True)
    assert (
        await served.ask("/retract no-such-fact")
        == "There is no entry with the id “no-such-fact”."
    )
    for command in ("/retract", "/restore ", "/editfact"):
        assert (await served.ask(command)).startswith("Which entry? Send the command with its id:")
    assert (await served.ask("/retract")).endswith("its id: /retract ID [reason].")

    added, retract, restore = await served.audit_rows(fact_id)
    assert [r["action"] for r in (added, retract, restore)] == ["add", "retract", "restore"]
    assert [r["reason"] for r in (added, retract, restore)] == [
        None,
        "the accord never existed",
        None,
    ]
    assert added["before"] is None
    assert json.loads(retract["before"])["retracted"] is False
    assert json.loads(retract["after"])["retracted"] is True
    assert retract["after"] == restore["before"]
    assert json.loads(restore["after"]) == json.loads(added["after"])

    audit = await served.ask(f"/audit {fact_id}")
    lines = audit.split("\n\n")
    assert lines[0] == "<b>Admin changes, newest first:</b>"
    stamp = r"• \d{4}-\d{2}-\d{2} \d{2}:\d{2} telegram:4242"
    assert re.fullmatch(f"{stamp} restore fact {fact_id}", lines[1])
    assert lines[2] == "<i>retracted: true → false</i>"
    assert re.fullmatch(f"{stamp} retract fact {fact_id} \\(the accord never existed\\)", lines[3])
    assert lines[4] == "<i>retracted: false → true</i>"
    assert re.fullmatch(f"{stamp} add fact {fact_id}", lines[5])
    assert lines[6].startswith(f'<i>id: — → "{fact_id}"\n')
    assert len(lines) == 7


# -- who may curate ----------------------------------------------------------------------------


async def test_non_admins_and_groups_get_the_unknown_command_reply(served: Served) -> None:
    def shown(calls: list[Call], name: str) -> list[tuple[str, object]]:
        """The replies with the command's name taken out, to compare with any other."""
        return [
            (str(c.params["text"]).replace(f"/{name}.", "/NAME."), c.params.get("reply_markup"))
            for c in calls
        ]

    unknown = shown(await served.say("/frobnicate", user_id=STRANGER, replies=2), "frobnicate")
    assert unknown[0][0] == "I don't know the command /NAME."
    attempts = 0
    for text in ("/addfact", ONE_SHOT, "/confirm", "/export", "/stats", "/retract x", "/audit"):
        name = text.split()[0].removeprefix("/")
        for user_id, chat_id, username in (
            (STRANGER, None, "stranger"),
            (TWIN, None, ADMIN_USERNAME),
            (ADMIN, GROUP, ADMIN_USERNAME),
        ):
            replies = await served.say(
                text, user_id=user_id, chat_id=chat_id, username=username, replies=2
            )
            assert shown(replies, name) == unknown, (text, user_id)
            attempts += 1
    # A stranger's free text is a question, never a form value.
    assert DECLINED in await served.ask(ANSWER, user_id=STRANGER)

    counted = await asyncio.to_thread(
        rows, served.database, "SELECT * FROM refused_admin_attempts"
    )
    assert columns(served.database, "refused_admin_attempts") == ["day", "count"]
    assert [count for _, count in counted] == [attempts]
    for table, value in await asyncio.to_thread(lambda: list(every_value(served.database))):
        for identity in (str(STRANGER), str(TWIN), ADMIN_USERNAME, "stranger", str(GROUP)):
            assert identity not in str(value), (table, value)
    assert await served.runtime_entries() == []
    assert await served.ask("/confirm") == t("en", "admin.no_draft")

    admin_help = await served.ask("/help")
    stranger_help = await served.say("/help", user_id=STRANGER)
    assert "Admin commands" in admin_help and "/addfact" in admin_help
    assert "Admin commands" not in str(stranger_help[0].params["text"])
    stats = await served.ask("/stats")
    assert f"<i>Refused admin attempts so far: {attempts}</i>" in stats


# -- events ------------------------------------------------------------------------------------


async def test_addevent_previews_the_reach_and_confirm_publishes(served: Served) -> None:
    now = time.time()
    for chat_id, topic in ((7001, TOPIC), (7002, TOPIC), (7003, "sanctions")):
        ref = ChatRef(platform=Platform.TELEGRAM, chat_id=str(chat_id))
        await served.repository.subscribe(ref, [topic], now)
    title = "The Zubrovka congress met"
    form = f"2031-05-01 | {TOPIC} | {title} | Unions met in Zubrovka. | {SOURCE_ID}"
    [preview] = await served.say(f"/addevent {form}")
    text = str(preview.params["text"])
    reach = "<i>Confirming publishes this alert to subscribed chats: 2.</i>"
    assert text.startswith(
        f"{PREVIEW}\n\n<b>🔔 May 1, 2031: {title}</b>\n\nUnions met in Zubrovka."
    )
    assert text.endswith(f"\n\n{reach}")
    assert buttons(preview) == CONFIRM_BUTTONS
    alert = text.removeprefix(f"{PREVIEW}\n\n").removesuffix(f"\n\n{reach}")

    [published] = await served.say("/confirm")
    match = re.fullmatch(
        r"Published (event-2031-05-01-[a-z0-9-]+); alerts queued for chats: 2\.",
        str(published.params["text"]),
    )
    assert match is not None, published.params["text"]
    event_id = match.group(1)
    delivered_to = await served.emulator.wait_for(
        "sendMessage", count=2, predicate=lambda c: c.params["chat_id"] in (7001, 7002, 7003)
    )
    assert sorted(c.params["chat_id"] for c in delivered_to) == [7001, 7002]
    for delivered in delivered_to:
        assert delivered.params["text"] == alert
        assert buttons(delivered) == [
            ("Related facts", f"/topics {TOPIC}"),
            ("Unsubscribe: History, 1994–2019", f"/unsubscribe {TOPIC}"),
        ]

    async def outbox() -> list[tuple[Any, ...]]:
        return await asyncio.to_thread(
            rows, served.database, "SELECT chat_id, status FROM outbox ORDER BY chat_id"
        )

    deadline = time.monotonic() + 10
    while await outbox() != [("7001", "sent"), ("7002", "sent")]:
        assert time.monotonic() < deadline, await outbox()
        await asyncio.sleep(0.05)
    assert served.sent(7003) == []
    [audit] = await served.audit_rows(event_id)
    assert (audit["action"], audit["kind"]) == ("add", "event")
    assert event_id in served.core.library.events
    # Found at once by a question in anyone's own words, with its date and source.
    answer = await served.ask("so when did the zubrovka congress take place?", user_id=7004)
    assert answer.startswith(f"<b>May 1, 2031: {title}</b>\n\nUnions met in Zubrovka."), answer
    assert "<i>Source:" in answer


# -- reports -----------------------------------------------------------------------------------


async def test_unanswered_stats_and_export_round_trip(served: Served, kb: KnowledgeBase) -> None:
    # Nothing asked yet: no per-day heading without days under it.
    assert await served.ask("/stats") == (
        "<b>Last 7 days: questions 0, answered —.</b>\n\nSubscribed chats per topic:\n\n• —"
        "\n\n<i>Refused admin attempts so far: 0</i>"
    )
    declined = {
        "What is the capital of Australia?": (3001, 3002),
        "Who painted the quokka mural?": (3003,),
    }
    for question, users in declined.items():
        for user_id in users:
            assert DECLINED in await served.ask(question, user_id=user_id)
    fact_id = await served.add_fact()
    assert (await served.ask(QUESTION, user_id=3004)).startswith(ANSWER)
    await served.ask(f"/retract {fact_id} testing the export")

    unanswered = await served.ask("/unanswered")
    assert unanswered == (
        "<b>Questions I declined in the last 7 days (by wording only):</b>\n\n"
        f"• 2 × {' '.join(words('What is the capital of Australia?'))}\n"
        f"• 1 × {' '.join(words('Who painted the quokka mural?'))}"
    )
    one_day = await served.ask("/unanswered 1")
    assert one_day.startswith("<b>Questions I declined in the last day (by wording only):</b>")
    assert columns(served.database, "declined_questions") == ["day", "normalized", "count"]
    stored = await asyncio.to_thread(
        rows, served.database, "SELECT normalized, count FROM declined_questions ORDER BY count"
    )
    assert stored == [("who painted the quokka mural", 1), ("what is the capital of australia", 2)]
    for table, value in await asyncio.to_thread(lambda: list(every_value(served.database))):
        assert not any(str(user) in str(value) for user in (3001, 3002, 3003, 3004)), table

    await served.ask("/subscribe history", user_id=3001)
    stats = await served.ask("/stats")
    day = time.strftime("%Y-%m-%d", time.gmtime())
    label = fact_label(served.core.library.facts[fact_id], "en")
    assert stats.startswith(
        "<b>Last 7 days: questions 4, answered 25%.</b>\n\nPer day (answered / declined):\n\n"
        f"• {day}: 4 (1 / 3)\n\nMost shown facts:\n\n• 1 × {fact_id} — {label}\n\n"
        "Subscribed chats per topic:\n\n• 1 × History, 1994–2019 (history)\n\n"
        "<i>Refused admin attempts so far: 0</i>"
    )

    before = len(served.emulator.calls_to("sendDocument"))
    assert await served.ask("/export") == t("en", "admin.export")
    [*_, document] = await served.emulator.wait_for("sendDocument", count=before + 1)
    assert document.params["chat_id"] == ADMIN
    filename = str(document.params["document"])
    assert re.fullmatch(r"knowledge-\d{8}-\d{4}\.yaml", filename)
    text = document.files["document"].data.decode()
    parsed = parse_file(Path(filename), text)
    exported = KnowledgeBase.model_validate(parsed)
    assert exported == served.core.library.snapshot()
    assert exported.facts[-1].id == fact_id and exported.facts[-1].retracted is True
    assert len(exported.facts) == len(kb.facts) + 1
    report = validate(exported, SEEDS if SEEDS.is_dir() else None)
    assert report.errors == []
    assert report.errors == validate(served.core.library.snapshot()).errors


# -- crashes and failures ----------------------------------------------------------------------


async def first_poll_after(emulator: TelegramEmulator, since: float) -> None:
    await emulator.wait_for("getUpdates", timeout=30, predicate=lambda c: c.time >= since)


async def test_a_crash_before_confirm_leaves_no_record_and_no_draft(
    emulator: TelegramEmulator, tmp_path: Path
) -> None:
    database = tmp_path / "crash.sqlite3"
    env = child_environment()
    env.update(
        BOT_TELEGRAM__TOKEN=TOKEN,
        BOT_TELEGRAM__BASE_URL=emulator.base_url,
        BOT_TELEGRAM__POLL_TIMEOUT="1",
        BOT_DATABASE=str(database),
        BOT_ADMINS=json.dumps([f"telegram:{ADMIN}"]),
    )

    async def spawn() -> asyncio.subprocess.Process:
        since = time.monotonic()
        proc = await spawn_run(env, stderr=asyncio.subprocess.DEVNULL)
        try:
            await first_poll_after(emulator, since)
        except BaseException:
            proc.kill()
            await proc.wait()
            raise
        return proc

    proc = await spawn()
    try:
        emulator.send_message(ONE_SHOT, user_id=ADMIN)
        [preview] = await emulator.wait_for("sendMessage")
        assert str(preview.params["text"]).startswith(PREVIEW)
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    assert proc.returncode == -signal.SIGKILL

    for table in ("runtime_entries", "audit", "outbox"):
        assert rows(database, f"SELECT COUNT(*) FROM {table}") == [(0,)], table
    assert rows(database, "PRAGMA integrity_check") == [("ok",)]

    proc = await spawn()
    try:
        emulator.send_message("/confirm", user_id=ADMIN)
        [_, reply] = await emulator.wait_for("sendMessage", count=2)
        assert reply.params["text"] == t("en", "admin.no_draft")
        emulator.send_message(QUESTION, user_id=USER)
        [answer] = await emulator.wait_for(
            "sendMessage", predicate=lambda c: c.params["chat_id"] == USER
        )
        assert str(answer.params["text"]).startswith(DECLINED)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    for table in ("runtime_entries", "audit", "outbox"):
        assert rows(database, f"SELECT COUNT(*) FROM {table}") == [(0,)], table


async def test_a_failure_inside_confirm_writes_nothing(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    await served.repository.subscribe(
        ChatRef(platform=Platform.TELEGRAM, chat_id="7101"), [TOPIC], time.time()
    )

    async def broken(*args: object, **kwargs: object) -> int | None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(Repository, "publish_event_in", staticmethod(broken))
    title = "A congress that fails to publish"
    [preview] = await served.say(
        f"/addevent 2031-06-01 | {TOPIC} | {title} | It will not be saved. | "
        "A new source for it | Zubrovka Gazette | 2031-06-01 | https://example.org/zubrovka"
    )
    assert str(preview.params["text"]).startswith(f"{PREVIEW}\n\n<b>🔔 June 1, 2031: {title}</b>")
    assert await served.ask("/confirm") == t("en", "error.generic")

    # The new source, the event, their audit rows and the outbox rows went together: none.
    for table in ("runtime_entries", "audit", "outbox", "published_events"):
        assert rows(served.database, f"SELECT COUNT(*) FROM {table}") == [(0,)], table
    library = served.core.library
    assert not any(e.title.en == title for e in library.events.values())
    assert not any(s.title.en == "A new source for it" for s in library.sources.values())

    # The draft survived the failure: once the store works again, /confirm saves it whole.
    monkeypatch.undo()
    published = await served.ask("/confirm")
    assert re.fullmatch(
        r"Published event-2031-06-01-[a-z0-9-]+; alerts queued for chats: 1\.", published
    )
    kinds = [kind for kind, _ in await served.runtime_entries()]
    assert kinds == ["source", "event"]
    [(audited,)] = rows(served.database, "SELECT COUNT(*) FROM audit")
    assert audited == 2
