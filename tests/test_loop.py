"""Closing the loop, through the Bot API emulator: "tell me if this gets answered" and
corrections that reach the chats following a fact's topics (never past askers)."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path

from conftest import BOT_NAME
from support.curation import (
    ADMIN,
    ANSWER,
    ONE_SHOT,
    QUESTION,
    SOURCE_ID,
    TOPIC,
    USER,
    Served,
    buttons,
    rows,
)
from support.environment import child_environment
from support.process import BotProcess, bot_env
from support.telegram_emulator import Call, TelegramEmulator

from bot.alerts.notices import AnswerFound, Correction, answer_found_reply, correction_reply
from bot.config import REPO_ROOT
from bot.knowledge.models import KnowledgeBase
from bot.library import Library
from bot.texts import t

ASKER, OTHER, FORGETFUL, EXPIRED = USER, 1002, 1003, 1004
FOLLOWER, ELSEWHERE, NO_CORRECTIONS = 2001, 2002, 2003
OTHER_QUESTION = "What did the Zanzibar potash cartel decide?"
NOTIFY = t("en", "notify.button")


async def queued_work_done(database: Path) -> None:
    """Every rematch the admins' changes asked for ran, and every notice it queued was sent."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while True:
        left = await asyncio.to_thread(
            rows,
            database,
            "SELECT (SELECT COUNT(*) FROM rematch_queue), "
            "(SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'sending'))",
        )
        if left == [(0, 0)]:
            return
        assert loop.time() < deadline, f"rematch queue and outbox not empty: {left}"
        await asyncio.sleep(0.05)


def expire_waiting(database: Path, chat_id: int) -> None:
    """As if the chat's wait had run out (its days passed)."""
    with sqlite3.connect(database, timeout=10) as conn:
        conn.execute(
            "UPDATE waiting_questions SET expires_at = 0 WHERE chat_id = ?", (str(chat_id),)
        )


async def ask_to_be_told(served: Served, user_id: int, question: str) -> Call:
    """Ask, get declined with the offer, press it; returns the confirmation."""
    [declined] = await served.say(question, user_id=user_id)
    offer = [data for label, data in buttons(declined) if label == NOTIFY]
    assert offer, buttons(declined)
    [saved] = await served.press(offer[0], user_id=user_id)
    assert str(saved.params["text"]).startswith("I will tell you here"), saved.params["text"]
    return saved


def notices(served: Served, chat_id: int, marker: str) -> list[str]:
    return [str(c.params["text"]) for c in served.sent(chat_id) if marker in c.params["text"]]


async def test_the_asker_is_told_once_when_an_admin_adds_the_answer(served: Served) -> None:
    for user_id in (ASKER, FORGETFUL, EXPIRED):
        await ask_to_be_told(served, user_id, QUESTION)
    await ask_to_be_told(served, OTHER, OTHER_QUESTION)
    assert "waiting for an answer: 1." in await served.ask("/privacy", user_id=ASKER)
    unanswered = await served.ask("/unanswered")
    assert "3 × what was the zubrovka accord" in unanswered  # how many, never who
    assert str(ASKER) not in unanswered

    # One forgets everything, the wait of another runs out, before the fact exists.
    await served.say("/forgetme confirm", user_id=FORGETFUL)
    await asyncio.to_thread(expire_waiting, served.database, EXPIRED)
    # An unrelated fact first: nobody is told anything.
    await served.say(
        f"/addfact {TOPIC} | The Gomel bakery union met on Tuesdays. | gomel bakery | "
        "stary-27-years | Back in 1956, the BSSR ratified Conventions No. 87 and No. 98"
    )
    await served.say("/confirm")
    await queued_work_done(served.database)
    assert all(not notices(served, u, "You asked") for u in (ASKER, OTHER, FORGETFUL, EXPIRED))

    await served.add_fact()
    await served.emulator.wait_for(
        "sendMessage",
        predicate=lambda c: c.params["chat_id"] == ASKER and "You asked" in c.params["text"],
    )
    await queued_work_done(served.database)
    await served.idle()
    [told] = notices(served, ASKER, "You asked")
    assert told.startswith("<b>You asked: “what was the zubrovka accord”.")
    assert ANSWER in told and "<i>Source:" in told
    for user_id in (OTHER, FORGETFUL, EXPIRED):
        assert notices(served, user_id, "You asked") == []
    served.seen[ASKER] = len(served.sent(ASKER))
    # Told, and forgotten: nothing waits any more for the asker.
    assert "waiting for an answer:" not in await served.ask("/privacy", user_id=ASKER)
    left = await asyncio.to_thread(rows, served.database, "SELECT chat_id FROM waiting_questions")
    assert (str(ASKER),) not in left and (str(OTHER),) in left


async def test_the_asker_is_told_when_an_admin_publishes_the_event_asked_about(
    served: Served,
) -> None:
    await ask_to_be_told(served, ASKER, "when did the zubrovka congress take place?")
    title = "The Zubrovka congress met"
    await served.say(
        f"/addevent 2031-05-01 | {TOPIC} | {title} | Unions met in Zubrovka. | {SOURCE_ID}"
    )
    await served.say("/confirm")
    await served.emulator.wait_for(
        "sendMessage",
        predicate=lambda c: c.params["chat_id"] == ASKER and "You asked" in c.params["text"],
    )
    await queued_work_done(served.database)
    [told] = notices(served, ASKER, "You asked")
    assert f"May 1, 2031: {title}" in told and "Unions met in Zubrovka." in told
    served.seen[ASKER] = len(served.sent(ASKER))


async def test_corrections_reach_topic_followers_once_and_minor_edits_nobody(
    served: Served,
) -> None:
    for user_id, topic in ((FOLLOWER, TOPIC), (ELSEWHERE, "un-experts"), (NO_CORRECTIONS, TOPIC)):
        assert "subscribed" in (await served.ask(f"/subscribe {topic}", user_id=user_id)).lower()
    [menu] = await served.say("/toggle corrections", user_id=NO_CORRECTIONS)
    assert ("▫️ Corrections", "/toggle corrections") in buttons(menu)
    fact_id = await served.add_fact()

    # A typo fix, confirmed as minor: no notice, no "corrected" note.
    await served.say(f"/editfact {fact_id}")
    await served.say("/skip")
    await served.say(ANSWER.replace("bound", "obliged"))
    await served.press("/skip")  # keywords
    await served.say("/skip")  # source
    [preview] = await served.say("/skip")  # evidence
    assert ("Minor fix: no notice", "/confirm minor") in buttons(preview)
    [saved] = await served.say("/confirm minor")
    assert "Correction" not in saved.params["text"]
    await queued_work_done(served.database)
    assert "Corrected on" not in await served.ask("What was the Zubrovka Accord?", user_id=USER)

    notice = await the_followers_notice(
        served, f"/retract {fact_id} the accord never existed", "is withdrawn"
    )
    assert "Reason: the accord never existed" in notice
    kinds = await asyncio.to_thread(
        rows, served.database, "SELECT kind, COUNT(*) FROM outbox GROUP BY kind"
    )
    assert dict(kinds) == {"correction": 1}

    # Restored: the follower, told it was withdrawn, is told it is served again, with it.
    notice = await the_followers_notice(
        served, f"/restore {fact_id} it did exist after all", "is served again"
    )
    assert "as before its withdrawal" in notice and "Reason: it did exist after all" in notice
    assert ANSWER.replace("bound", "obliged") in notice


async def the_followers_notice(served: Served, command: str, marker: str) -> str:
    """The admin's ``command`` queues one correction: the follower, and nobody else, gets it."""
    assert (await served.ask(command)).endswith("Correction queued for chats: 1.")
    await served.emulator.wait_for(
        "sendMessage",
        predicate=lambda c: c.params["chat_id"] == FOLLOWER and marker in c.params["text"],
    )
    await queued_work_done(served.database)
    await served.idle()
    [notice] = notices(served, FOLLOWER, marker)
    for user_id in (ELSEWHERE, NO_CORRECTIONS, USER, ADMIN):
        assert notices(served, user_id, "Correction (") == []
    served.seen[FOLLOWER] = len(served.sent(FOLLOWER))
    return notice


def test_an_answer_found_is_worded_for_any_kind_of_entry_and_never_for_one_gone(
    kb: KnowledgeBase,
) -> None:
    library = Library(kb)

    def found(entry: str) -> str | None:
        notice = AnswerFound(question="asked", entry=entry, language="en")
        reply = answer_found_reply(library, notice, "en")
        return None if reply is None else reply.plain_text()

    quote, event = kb.quotes[0], kb.events[0]
    for entry, says in (
        ("strike-1995", library.facts["strike-1995"].answer.en),
        (quote.id, quote.text),
        (event.id, event.title.en),
    ):
        text = found(entry)
        assert text is not None and text.startswith("You asked: “asked”") and says in text
    library.put_fact(library.facts["strike-1995"].model_copy(update={"retracted": True}))
    assert found("strike-1995") is None
    assert found("no-such-entry") is None


def test_a_notice_overtaken_by_a_later_change_is_not_sent(kb: KnowledgeBase) -> None:
    """Queued notices are worded at delivery: a withdrawal notice for a fact restored since,
    or a change or restore notice for a fact withdrawn since, would say something untrue."""
    library = Library(kb)
    day = date(2026, 11, 28)
    withdrawn = Correction(fact_id="strike-1995", retracted=True, day=day)
    restored = Correction(fact_id="strike-1995", retracted=False, restored=True, day=day)
    changed = Correction(fact_id="strike-1995", retracted=False, day=day)
    assert correction_reply(library, withdrawn, "en") is None  # the fact is served
    assert correction_reply(library, restored, "en") is not None
    assert correction_reply(library, changed, "en") is not None
    library.put_fact(library.facts["strike-1995"].model_copy(update={"retracted": True}))
    notice = correction_reply(library, withdrawn, "en")
    assert notice is not None and "is withdrawn" in notice.plain_text()
    assert correction_reply(library, restored, "en") is None
    assert correction_reply(library, changed, "en") is None


async def test_in_a_group_only_the_asker_or_a_chat_admin_may_ask_to_be_told(
    served: Served,
) -> None:
    group, asker, bystander, chat_admin = -100777, 3001, 3002, 3003
    served.emulator.set_chat_admins(group, [chat_admin])
    [declined] = await served.say(f"@{BOT_NAME} {OTHER_QUESTION}", user_id=asker, chat_id=group)
    [offer] = [data for label, data in buttons(declined) if label == NOTIFY]

    async def press(user_id: int) -> str:
        served.emulator.press_button(offer, user_id=user_id, chat_id=group)
        [reply] = await served._replies(group, 1)
        return str(reply.params["text"])

    assert await press(bystander) == t("en", "notify.asker_only")
    assert (await press(chat_admin)).startswith("I will tell you here")
    assert (await press(asker)).startswith("That offer has expired")  # kept once is enough
    waiting = await asyncio.to_thread(
        rows, served.database, "SELECT chat_id FROM waiting_questions"
    )
    assert waiting == [(str(group),)]


async def test_the_terminal_chat_prints_the_answer_it_asked_to_be_told_about(
    tmp_path: Path,
) -> None:
    """The terminal's own admin adds the fact; the notice arrives in the same conversation."""
    env = child_environment(
        BOT_DATABASE=str(tmp_path / "bot.sqlite3"), BOT_ADMINS='["console:local"]'
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "chat",
        cwd=REPO_ROOT,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdin is not None and proc.stdout is not None
    seen = ""

    async def until(needle: str) -> None:
        nonlocal seen
        while needle not in seen:
            chunk = await asyncio.wait_for(proc.stdout.read(4096), 60)  # type: ignore[union-attr]
            assert chunk, f"the chat ended before {needle!r}:\n{seen}"
            seen += chunk.decode()

    try:
        for line, reply in (
            (QUESTION, NOTIFY),
            ("/notifyme", "I will tell you here"),
            (ONE_SHOT, "Preview"),
            ("/confirm", "Saved as"),
        ):
            proc.stdin.write(line.encode() + b"\n")
            await until(reply)
        await until("You asked: “what was the zubrovka accord”")
        proc.stdin.close()
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert seen.count("You asked") == 1 and ANSWER in seen.split("You asked")[1]


async def test_a_kill_between_the_confirm_and_the_send_still_tells_the_asker_once(
    emulator: TelegramEmulator, tmp_path: Path
) -> None:
    """The notice is decided and queued, but every send of it fails, when the bot is killed;
    the restarted bot sends it, once."""
    env = bot_env(emulator, tmp_path / "bot.sqlite3", BOT_ADMINS=f'["telegram:{ADMIN}"]')
    log = tmp_path / "bot.log"

    def to(chat_id: int, marker: str = "") -> Callable[[Call], bool]:
        return lambda c: c.params.get("chat_id") == chat_id and marker in c.params["text"]

    async with BotProcess(emulator, env, log) as first:
        await first.start()
        emulator.send_message(QUESTION, user_id=ASKER)
        [declined] = await emulator.wait_for("sendMessage", predicate=to(ASKER))
        [offer] = [data for label, data in buttons(declined) if label == NOTIFY]
        emulator.press_button(offer, user_id=ASKER)
        await emulator.wait_for("sendMessage", predicate=to(ASKER, "I will tell you"))
        emulator.fail_next(
            "sendMessage",
            error_code=500,
            description="Internal Server Error",
            times=10**6,
            chat_id=ASKER,
        )
        emulator.send_message(ONE_SHOT, user_id=ADMIN)
        await emulator.wait_for("sendMessage", predicate=to(ADMIN, "Preview"))
        emulator.send_message("/confirm", user_id=ADMIN)
        await emulator.wait_for("sendMessage", predicate=to(ADMIN, "Saved as"))
        await emulator.wait_for(
            "sendMessage", predicate=to(ASKER, "You asked"), include_failed=True, timeout=30
        )
        await first.kill()
    emulator.clear_faults()

    async with BotProcess(emulator, env, log) as second:
        await second.start()
        await emulator.wait_for("sendMessage", predicate=to(ASKER, "You asked"), timeout=60)
        await queued_work_done(tmp_path / "bot.sqlite3")
        assert await second.terminate() == 0

    delivered = [c for c in emulator.calls_to("sendMessage") if c.ok and to(ASKER, "You asked")(c)]
    assert len(delivered) == 1 and ANSWER in delivered[0].params["text"]
    assert "Traceback" not in await second.output()
