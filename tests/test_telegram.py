"""The real python-telegram-bot Application, served by our transport, against the Bot API emulator."""

from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import BOT_NAME
from conftest import TELEGRAM_TOKEN as TOKEN
from support.process import bot_env, spawn_run
from support.telegram_emulator import TelegramEmulator

from bot.alerts.ratelimit import ChatLimits, RateLimiter
from bot.clock import SystemClock
from bot.config import Settings, TelegramSettings
from bot.core import Core
from bot.domain import ChatRef, Paragraph, Platform, Reply
from bot.knowledge.models import KnowledgeBase
from bot.library import Library
from bot.store.db import Database
from bot.store.repositories import Repository
from bot.transports.telegram import TelegramTransport


@dataclass
class Running:
    emulator: TelegramEmulator
    transport: TelegramTransport
    core: Core
    repository: Repository


async def start_bot(
    emulator: TelegramEmulator, kb: KnowledgeBase, db: Database, **overrides: object
) -> tuple[Running, asyncio.Event, asyncio.Task[None]]:
    telegram = TelegramSettings(token=TOKEN, base_url=emulator.base_url, poll_timeout=1)
    settings = Settings(database=db.path, telegram=telegram, **overrides)  # type: ignore[arg-type]
    repository = Repository(db)
    core = Core(Library(kb, settings.search), settings, repository)
    stop = asyncio.Event()
    limiter = RateLimiter(30, ChatLimits(1.0, 20), SystemClock())
    transport = TelegramTransport(core, settings.telegram, stop, limiter)
    task = asyncio.create_task(transport.run())
    await emulator.wait_for("getUpdates")
    return Running(emulator, transport, core, repository), stop, task


@pytest.fixture
async def bot(
    emulator: TelegramEmulator, kb: KnowledgeBase, db: Database
) -> AsyncIterator[Running]:
    running, stop, task = await start_bot(emulator, kb, db)
    try:
        yield running
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def settled(bot: Running) -> None:
    """Every update queued so far was fetched and its handler has finished, so whatever the bot
    would send in answer to them is sent. PTB handles updates concurrently, so a reply to a later
    message proves nothing about an earlier one; its update queue counts unfinished updates
    instead (``task_done`` once a handler returns), and the emulator's queue empties only when
    the next getUpdates confirms what was fetched, after PTB queued it."""
    await bot.emulator.wait_consumed(timeout=10)
    await asyncio.wait_for(bot.transport.application.update_queue.join(), 10)


async def last_text(emulator: TelegramEmulator, count: int = 1, **kwargs: object) -> str:
    calls = await emulator.wait_for("sendMessage", count=count, **kwargs)  # type: ignore[arg-type]
    return str(calls[-1].params["text"])


async def test_start_help_and_commands_registered(bot: Running) -> None:
    emu = bot.emulator
    commands = await emu.wait_for("setMyCommands", count=3)
    languages = {c.params.get("language_code") for c in commands}
    assert languages == {None, "ru", "be"}
    emu.send_message("/start")
    text = await last_text(emu)
    assert "Hello!" in text and "/privacy" in text
    emu.send_message("/help")
    text = await last_text(emu, count=2)
    assert "/topics" in text and "/timeline" in text


async def test_question_answered_in_html_with_source(bot: Running) -> None:
    emu = bot.emulator
    emu.send_message("who ran against lukashenko in 2001")
    [call] = await emu.wait_for("sendMessage")
    assert call.params["parse_mode"] == "HTML"
    assert "Hancharyk" in call.params["text"]
    assert "<i>Source:" in call.params["text"]
    assert call.params["link_preview_options"]["is_disabled"] is True
    assert "reply_parameters" in call.params or "reply_to_message_id" in call.params


async def test_decline_offers_buttons_and_a_press_answers(bot: Running) -> None:
    emu = bot.emulator
    emu.send_message("What is the capital of Australia?")
    [call] = await emu.wait_for("sendMessage")
    assert (
        "I don&#x27;t have a sourced answer" in call.params["text"]
        or "I don't have a sourced answer" in call.params["text"]
    )
    buttons = [b for row in call.params["reply_markup"]["inline_keyboard"] for b in row]
    assert 1 <= len(buttons) <= 3
    emu.press_button(buttons[0]["callback_data"])
    await emu.wait_for("answerCallbackQuery")
    answer = await last_text(emu, count=2)
    assert "Source" in answer or "Топ" in answer or "/topics" not in answer


async def test_forged_callback_is_answered_politely_and_ignored(bot: Running) -> None:
    emu = bot.emulator
    emu.send_message("/help")
    await emu.wait_for("sendMessage")
    emu.press_button("/rm -rf; DROP TABLE")
    [answer] = await emu.wait_for("answerCallbackQuery")
    assert "expired" in str(answer.params.get("text", ""))
    await settled(bot)
    assert len(emu.calls_to("sendMessage")) == 1


async def test_timeline_pages_by_editing_the_message(bot: Running) -> None:
    emu = bot.emulator
    emu.send_message("/timeline")
    [call] = await emu.wait_for("sendMessage")
    buttons = [b for row in call.params["reply_markup"]["inline_keyboard"] for b in row]
    next_page = next(b for b in buttons if b["callback_data"] == "/timeline 2")
    emu.press_button(next_page["callback_data"])
    [edit] = await emu.wait_for("editMessageText")
    assert "(2/" in edit.params["text"]


async def test_group_answers_only_when_addressed(bot: Running) -> None:
    emu = bot.emulator
    group = -100777
    emu.send_message(
        "what is article 33", chat_id=group, chat_type="supergroup", chat_title="Union"
    )
    await settled(bot)
    assert emu.calls_to("sendMessage") == []
    emu.send_message(f"@{BOT_NAME} what is article 33", chat_id=group, chat_type="supergroup")
    text = await last_text(emu)
    assert "Article 33" in text
    emu.send_message(f"/ask@{BOT_NAME} who is Kozik", chat_id=group, chat_type="supergroup")
    assert "Kozik" in await last_text(emu, count=2)
    emu.send_message("/ask@SomeOtherBot who is Kozik", chat_id=group, chat_type="supergroup")
    emu.send_message(
        "what decree made union registration harder",
        chat_id=group,
        chat_type="supergroup",
        reply_to_bot=True,
    )
    text = await last_text(emu, count=3)
    assert "1999" in text
    await settled(bot)  # /ask@SomeOtherBot included
    assert len(emu.calls_to("sendMessage")) == 3
    # One member asks in Russian; another's command is answered in that member's language.
    emu.send_message(f"@{BOT_NAME} кто такой Козик", user_id=31, language_code="ru", chat_id=group)
    assert "Козик" in await last_text(emu, count=4)
    emu.send_message(f"/help@{BOT_NAME}", user_id=32, language_code="en", chat_id=group)
    assert (await last_text(emu, count=5)).startswith("<b>What I can do:</b>")


async def test_inline_query_offers_sourced_answers(bot: Running) -> None:
    emu = bot.emulator
    emu.inline_query("belaruskali union")
    [call] = await emu.wait_for("answerInlineQuery")
    results = call.params["results"]
    assert results and "4,000" in results[0]["input_message_content"]["message_text"]
    assert results[0]["input_message_content"]["parse_mode"] == "HTML"
    # Invisible characters pasted inside words change nothing there either.
    emu.inline_query("bel\u200baruskali un\u00adion")
    [_, hidden] = await emu.wait_for("answerInlineQuery", count=2)
    assert [r["title"] for r in hidden.params["results"]] == [r["title"] for r in results]
    # A shared result has no buttons: no "See also" heading, the source's own words written out.
    shared = results[0]["input_message_content"]["message_text"]
    assert "See also" not in shared and "<b>" not in shared
    assert "The source's own words" in shared and "<blockquote>" in shared
    assert shared.index("<blockquote>") < shared.index("Source:")
    # Words close to nothing offer nothing.
    emu.inline_query("football results")
    [*_, unrelated] = await emu.wait_for("answerInlineQuery", count=3)
    assert unrelated.params["results"] == []


async def test_hostile_text_is_escaped_and_long_replies_split(bot: Running) -> None:
    emu = bot.emulator
    hostile = "<b>bold & </i> unbalanced <script>"
    paragraphs = tuple(Paragraph(text=f"{hostile} {n} " + "x" * 900) for n in range(6))
    await bot.transport.send(
        ChatRef(platform=Platform.TELEGRAM, chat_id="1001"), Reply(paragraphs=paragraphs)
    )
    calls = await emu.wait_for("sendMessage", count=2)
    texts = [str(c.params["text"]) for c in calls]
    assert all(len(t) <= 4096 for t in texts)
    assert sum(t.count("&lt;b&gt;bold &amp; &lt;/i&gt;") for t in texts) == 6
    assert "<script>" not in "".join(texts)
    assert all(t.split("\n\n")[-1].endswith("x") for t in texts)


async def test_flooding_user_gets_one_slow_down_and_others_still_served(bot: Running) -> None:
    emu = bot.emulator
    for _ in range(100):
        emu.send_message("article 33", user_id=666)
    emu.send_message("article 33", user_id=777)
    await emu.wait_for("sendMessage", count=22, timeout=20)
    await settled(bot)
    to_flooder = [c for c in emu.calls_to("sendMessage") if c.params["chat_id"] == 666]
    slow_downs = [c for c in to_flooder if "very fast" in str(c.params["text"])]
    assert len(slow_downs) == 1
    assert len(to_flooder) == 21
    assert [c for c in emu.calls_to("sendMessage") if c.params["chat_id"] == 777]


async def test_subscribe_in_group_only_by_admins(bot: Running) -> None:
    emu = bot.emulator
    group = -100555
    emu.set_chat_admins(group, [42])
    emu.send_message("/subscribe all", user_id=43, chat_id=group, chat_type="supergroup")
    assert "only its admins" in await last_text(emu)
    emu.send_message("/subscribe all", user_id=42, chat_id=group, chat_type="supergroup")
    assert "Subscribed to" in await last_text(emu, count=2)
    chat = ChatRef(platform=Platform.TELEGRAM, chat_id=str(group))
    assert len(await bot.repository.subscriptions(chat)) == len(bot.core.library.topics)


async def test_webhook_checks_the_secret_token(
    emulator: TelegramEmulator, kb: KnowledgeBase, db: Database
) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    telegram = TelegramSettings(
        token=TOKEN,
        base_url=emulator.base_url,
        webhook_url=f"http://127.0.0.1:{port}/telegram",
        listen="127.0.0.1",
        port=port,
        secret_token="s3cret-Token",
    )
    settings = Settings(database=db.path, telegram=telegram)
    core = Core(Library(kb), settings, Repository(db))
    stop = asyncio.Event()
    transport = TelegramTransport(core, settings.telegram, stop)
    task = asyncio.create_task(transport.run())
    try:
        await emulator.wait_for("setWebhook")
        update = emulator.send_message("article 33", queue=False)
        url = f"http://127.0.0.1:{port}/telegram"
        assert await emulator.post_webhook(url, update, "wrong") == 403
        assert await emulator.post_webhook(url, update, None) == 403
        assert await emulator.post_webhook(url, update, "s3cret-Token") == 200
        assert "Article 33" in await last_text(emulator)
        # A refused post that was queued all the same would be ahead of the accepted one: once
        # every queued update is handled, its answer would be there too.
        await asyncio.wait_for(transport.application.update_queue.join(), 10)
        assert len(emulator.calls_to("sendMessage")) == 1
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_run_subprocess_answers_end_to_end(
    emulator: TelegramEmulator, tmp_path: Path
) -> None:
    env = bot_env(emulator, tmp_path / "run.sqlite3")
    proc = await spawn_run(env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        await emulator.wait_for("getUpdates", timeout=30)
        emulator.send_message("How many recommendations did the Commission of Inquiry make?")
        assert "12" in await last_text(emulator, timeout=15)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr_bytes = await asyncio.wait_for(proc.communicate(), 20)
    stderr = stderr_bytes.decode()
    assert proc.returncode == 0, stderr
    assert TOKEN not in stderr and "Traceback" not in stderr


async def test_conversation_in_russian_and_belarusian(bot: Running) -> None:
    emu = bot.emulator
    emu.send_message("/start", user_id=2001, language_code="ru")
    assert "Здравствуйте!" in await last_text(emu)
    emu.send_message("Когда была забастовка в минском метро?", user_id=2001, language_code="ru")
    text = await last_text(emu, count=2)
    assert "1995" in text and "Источник:" in text
    emu.send_message("колькі рэкамендацый дала камісія МАП", user_id=2002, language_code="en")
    text = await last_text(emu, count=3)
    assert "12" in text and "Крыніца:" in text
    emu.send_message("/language be", user_id=2003)
    assert "У гэтым чаце я буду адказваць" in await last_text(emu, count=4)
    emu.send_message("What is Article 33 of the ILO Constitution?", user_id=2003)
    text = await last_text(emu, count=5)
    assert "артыкул 33" in text.lower() and "Крыніца:" in text
    commands = {
        c.params.get("language_code"): c.params["commands"] for c in emu.calls_to("setMyCommands")
    }
    assert any("тэмы" in c["description"] for c in commands["be"])
    assert any("темы" in c["description"] for c in commands["ru"])


async def test_unreachable_homeserver_does_not_stop_telegram(
    emulator: TelegramEmulator, kb: KnowledgeBase, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from pydantic import SecretStr

    from bot.app import serve
    from bot.config import MatrixSettings

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    settings = Settings(
        database=tmp_path / "both.sqlite3",
        telegram=TelegramSettings(token=TOKEN, base_url=emulator.base_url, poll_timeout=1),
        matrix=MatrixSettings(
            homeserver=f"http://127.0.0.1:{closed_port}",
            user_id="@bot:localhost",
            access_token=SecretStr("syt_unreachable"),
            device_id="DEV",
        ),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, kb, stop))
    try:
        await emulator.wait_for("getUpdates", timeout=10)
        async with asyncio.timeout(10):  # until the Matrix side has failed and backs off
            while not any(r.getMessage() == "matrix.unreachable" for r in caplog.records):
                await asyncio.sleep(0.05)
        emulator.send_message("What is Article 33 of the ILO Constitution?")
        assert "Article 33" in await last_text(emulator, timeout=10)
        assert not task.done()
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 15) == 0


async def test_a_flooding_group_member_costs_one_admin_check_and_delays_nobody(
    bot: Running,
) -> None:
    emu = bot.emulator
    group = -100777
    emu.set_chat_admins(group, [42], creator=7)
    for _ in range(300):
        emu.send_message(
            "/subscribe all", user_id=43, chat_id=group, chat_type="supergroup", queue=True
        )
    emu.send_message("who ran against lukashenko in 2001", user_id=99)
    [answer] = await emu.wait_for(
        "sendMessage", timeout=30, predicate=lambda c: c.params.get("chat_id") == 99
    )
    assert "Hancharyk" in answer.params["text"]
    # One question to Telegram about who is admin, however many updates needed the answer.
    await emu.wait_for("getChatMember")
    assert len(emu.calls_to("getChatMember")) == 1
    assert (
        await bot.repository.subscriptions(ChatRef(platform=Platform.TELEGRAM, chat_id=str(group)))
        == []
    )


async def test_a_token_revoked_while_polling_means_not_ready_and_a_clean_stop(
    emulator: TelegramEmulator, kb: KnowledgeBase, db: Database
) -> None:
    running, stop, task = await start_bot(emulator, kb, db)
    assert running.transport.ready()
    emulator.token = "654321:another-bot-entirely"  # every call now answers 401 Unauthorized
    async with asyncio.timeout(30):
        while running.transport.ready():
            await asyncio.sleep(0.05)
    assert not task.done()  # Telegram is down, the process (and any other platform) is not
    stop.set()
    await asyncio.wait_for(task, 10)  # no exception: a clean stop


async def test_a_lone_surrogate_in_a_forged_update_still_gets_a_reply(bot: Running) -> None:
    emu = bot.emulator
    emu.send_message("/subscribe \udfff")
    [reply] = await emu.wait_for("sendMessage", timeout=10)  # before: the send raised, no reply
    assert "I don't know the topic" in reply.params["text"] or "\ufffd" in reply.params["text"]


async def test_telegram_unreachable_at_start_is_retried_not_a_crash(
    emulator: TelegramEmulator, kb: KnowledgeBase, db: Database
) -> None:
    emulator.fail_next("getMe", error_code=502, description="Bad Gateway", times=2)
    telegram = TelegramSettings(token=TOKEN, base_url=emulator.base_url, poll_timeout=1)
    settings = Settings(database=db.path, telegram=telegram)
    core = Core(Library(kb, settings.search), settings, Repository(db))
    stop = asyncio.Event()
    transport = TelegramTransport(core, settings.telegram, stop)
    task = asyncio.create_task(transport.run())
    try:
        await emulator.wait_for("getMe", include_failed=True)
        assert not transport.ready()
        await emulator.wait_for("getUpdates", timeout=30)  # after two refusals, it got through
        assert len(emulator.calls_to("getMe")) >= 3 and not task.done()
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_button_presses_and_inline_queries_are_limited_per_user(bot: Running) -> None:
    emu = bot.emulator
    for _ in range(300):
        emu.press_button("/topics", user_id=77, chat_id=77)
        emu.inline_query("article 33", user_id=78)
    emu.send_message("who ran against lukashenko in 2001", user_id=79)
    await emu.wait_for(
        "sendMessage", timeout=60, predicate=lambda c: c.params.get("chat_id") == 79
    )
    await emu.wait_for("answerInlineQuery", count=60, timeout=60)
    await emu.wait_for("answerCallbackQuery", count=20, timeout=60)
    # Every update was fetched and handled before the bot asks for more.
    await emu.wait_for("getUpdates", count=2, since=len(emu.calls))
    # Limits of 60 and 20 a minute, plus what refilled while the 600 updates were handled.
    assert len(emu.calls_to("answerInlineQuery")) < 150
    assert len(emu.calls_to("answerCallbackQuery")) < 100


async def test_an_answer_offers_its_evidence_quoted_in_the_original(bot: Running) -> None:
    emu = bot.emulator
    emu.send_message("Когда была забастовка в минском метро?", user_id=2101, language_code="ru")
    [call] = await emu.wait_for("sendMessage")
    buttons = [b for row in call.params["reply_markup"]["inline_keyboard"] for b in row]
    evidence = next(b for b in buttons if b["callback_data"].startswith("/evidence "))
    assert evidence["text"] == "📄 Слова источника"
    emu.press_button(evidence["callback_data"], user_id=2101)
    shown = await last_text(emu, count=2)
    assert "<blockquote>" in shown and "strike" in shown  # the English original, verbatim
    assert "Цитата приведена в оригинале" in shown and "Источник:" in shown


async def test_asking_for_the_source_after_an_answer_shows_its_evidence(bot: Running) -> None:
    emu = bot.emulator
    emu.send_message("source?", user_id=2102)
    assert "/evidence" in await last_text(emu)  # nothing answered yet: how to get it
    emu.send_message("Когда была забастовка в минском метро?", user_id=2102, language_code="en")
    await emu.wait_for("sendMessage", count=2)
    emu.send_message("откуда это?", user_id=2102, language_code="en")
    shown = await last_text(emu, count=3)
    assert "<blockquote>" in shown and "strike" in shown
    assert "Цитата приведена в оригинале" in shown  # in the language of the answer
    # Another chat's answer is not this one's.
    emu.send_message("source?", user_id=2103)
    assert "<blockquote>" not in await last_text(emu, count=4)


async def test_a_conversation_keeps_its_language_and_a_typed_number_picks_a_button(
    bot: Running,
) -> None:
    """The app is in English, the person writes Russian: commands and numbers, which show no
    language, are answered in the conversation's; "2" is the second button of the last reply."""
    emu = bot.emulator
    emu.send_message("кто такой Козик", user_id=2104, language_code="en")
    [call] = await emu.wait_for("sendMessage")
    assert "Козик" in call.params["text"]
    buttons = [b for row in call.params["reply_markup"]["inline_keyboard"] for b in row]
    emu.send_message("а кто это сказал?", user_id=2104, language_code="en")
    shown = await last_text(emu, count=2)
    assert "<blockquote>" in shown and "Цитата приведена в оригинале" in shown
    emu.send_message("2", user_id=2104, language_code="en")
    picked = await last_text(emu, count=3)
    emu.press_button(buttons[1]["callback_data"], user_id=2105, language_code="ru")
    assert picked == await last_text(emu, count=4) and "Источник:" in picked
    emu.send_message("/help", user_id=2104, language_code="en")
    assert (await last_text(emu, count=5)).startswith("<b>Что я умею:</b>")
    emu.send_message("9", user_id=2104, language_code="en")
    assert (await last_text(emu, count=6)).startswith("Одно число — это не вопрос.")
    # Keeping a question until it is answered takes a press, not a typed number.
    emu.send_message("расскажи про погоду в минске", user_id=2104, language_code="en")
    [*_, declined] = await emu.wait_for("sendMessage", count=7)
    commands = [
        b["callback_data"]
        for row in declined.params["reply_markup"]["inline_keyboard"]
        for b in row
    ]
    notify = next(i for i, c in enumerate(commands, 1) if c.startswith("/notifyme"))
    emu.send_message(str(notify), user_id=2104, language_code="en")
    assert (await last_text(emu, count=8)).startswith("Одно число — это не вопрос.")


def without_text(update: dict[str, object], **media: object) -> dict[str, object]:
    """The message of ``update`` as a photo, voice message or sticker: its text replaced."""
    message = update["message"]
    assert isinstance(message, dict)
    del message["text"]
    message.pop("entities", None)
    message.update(media)
    return update


async def test_pictures_and_voice_messages_get_a_line_saying_only_text_is_read(
    bot: Running,
) -> None:
    emu = bot.emulator
    voice = {"file_id": "v1", "file_unique_id": "uv1", "duration": 3}
    emu.push_update(without_text(emu.send_message("x", queue=False), voice=voice))
    assert "I can only read typed text" in await last_text(emu)
    # A photo with a question as its caption is that question.
    photo = [{"file_id": "p1", "file_unique_id": "up1", "width": 90, "height": 90}]
    captioned = without_text(emu.send_message("x", queue=False), photo=photo)
    captioned["message"]["caption"] = "who was appointed to head the FPB?"  # type: ignore[index]
    emu.push_update(captioned)
    assert "Kozik" in await last_text(emu, count=2)
    # In a group nothing without words is answered.
    sticker = {
        "file_id": "s1",
        "file_unique_id": "us1",
        "type": "regular",
        "width": 512,
        "height": 512,
        "is_animated": False,
        "is_video": False,
    }
    group = emu.send_message("x", chat_id=-100778, chat_type="supergroup", queue=False)
    emu.push_update(without_text(group, sticker=sticker))
    await settled(bot)
    assert len(emu.calls_to("sendMessage")) == 2
