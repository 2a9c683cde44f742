"""The Bot API emulator (tests/support/telegram_emulator.py), driven by the real
python-telegram-bot: a bare ``telegram.Bot`` and a polling ``Application``."""

from __future__ import annotations

import asyncio
import datetime as dtm
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import ClientSession, web
from support.telegram_emulator import (
    BOT_ID,
    TelegramEmulator,
    detect_entities,
    parse_html,
    parse_markdown,
)
from telegram import (
    Bot,
    BotCommand,
    ChatMemberAdministrator,
    ChatMemberOwner,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InputFile,
    InputTextMessageContent,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TimedOut,
)
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    InlineQueryHandler,
    MessageHandler,
    filters,
)
from telegram.request import HTTPXRequest

TOKEN = "123456:TEST-token"
BOT_NAME = "AdvocacyTestBot"
KEYBOARD = InlineKeyboardMarkup(
    [
        [
            InlineKeyboardButton("Yes", callback_data="yes"),
            InlineKeyboardButton("No", url="https://example.org"),
        ]
    ]
)


def says(description: str) -> str:
    """A pattern for PTB's version of a Telegram error description ("Bad Request: chat not
    found" becomes "Chat not found")."""
    return "(?i)" + re.escape(description)


@pytest_asyncio.fixture
async def emulator() -> AsyncIterator[TelegramEmulator]:
    async with TelegramEmulator(token=TOKEN, bot_username=BOT_NAME) as emu:
        yield emu


@pytest_asyncio.fixture
async def bot(emulator: TelegramEmulator) -> AsyncIterator[Bot]:
    async with Bot(
        TOKEN, base_url=emulator.base_url, base_file_url=emulator.base_file_url
    ) as tg_bot:
        yield tg_bot


# -- a bare Bot --------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_get_me_and_send_message_with_inline_keyboard(
    emulator: TelegramEmulator, bot: Bot
) -> None:
    me = await bot.get_me()
    assert (me.id, me.is_bot, me.username) == (BOT_ID, True, BOT_NAME)
    assert me.can_join_groups and me.supports_inline_queries

    sent = await bot.send_message(
        1001,
        "Hello <b>world</b> &amp; <i>you</i>",
        parse_mode=ParseMode.HTML,
        reply_markup=KEYBOARD,
    )
    assert sent.message_id == 1 and sent.chat.id == 1001 and sent.from_user
    assert sent.from_user.id == BOT_ID
    assert sent.text == "Hello world & you"
    assert [(e.type, e.offset, e.length) for e in sent.entities] == [
        ("bold", 6, 5),
        ("italic", 14, 3),
    ]
    assert sent.reply_markup == KEYBOARD
    assert (await bot.send_message(1001, "again")).message_id == 2
    assert (await bot.send_message(2002, "other chat")).message_id == 1

    call = emulator.calls_to("sendMessage")[0]
    assert call.ok and call.token == TOKEN
    assert call.params["chat_id"] == 1001
    assert call.params["parse_mode"] == "HTML"
    assert call.params["text"] == "Hello <b>world</b> &amp; <i>you</i>"
    assert call.params["reply_markup"] == {
        "inline_keyboard": [
            [{"text": "Yes", "callback_data": "yes"}, {"text": "No", "url": "https://example.org"}]
        ]
    }
    assert emulator.sent_texts(1001) == ["Hello <b>world</b> &amp; <i>you</i>", "again"]
    assert [c.method for c in emulator.calls] == ["getMe", "getMe", "sendMessage"] + [
        "sendMessage"
    ] * 2


@pytest.mark.asyncio
async def test_edit_and_delete_follow_telegram_rules(emulator: TelegramEmulator, bot: Bot) -> None:
    sent = await bot.send_message(
        1001, "<b>v1</b>", parse_mode=ParseMode.HTML, reply_markup=KEYBOARD
    )
    edited = await bot.edit_message_text(
        "v2", chat_id=1001, message_id=sent.message_id, reply_markup=KEYBOARD
    )
    assert not isinstance(edited, bool)
    assert (edited.message_id, edited.text, edited.reply_markup) == (
        sent.message_id,
        "v2",
        KEYBOARD,
    )
    assert edited.edit_date is not None
    with pytest.raises(BadRequest, match=says("message is not modified")):
        await bot.edit_message_text(
            "v2", chat_id=1001, message_id=sent.message_id, reply_markup=KEYBOARD
        )
    bare = await bot.edit_message_reply_markup(chat_id=1001, message_id=sent.message_id)
    assert not isinstance(bare, bool) and bare.reply_markup is None
    with pytest.raises(BadRequest, match=says("message to edit not found")):
        await bot.edit_message_text("v3", chat_id=1001, message_id=99)

    assert await bot.delete_message(1001, sent.message_id)
    with pytest.raises(BadRequest, match=says("message to delete not found")):
        await bot.delete_message(1001, sent.message_id)
    # A press now refers to a message the emulator makes up, as old buttons do.
    press = emulator.press_button("yes", message_id=sent.message_id, queue=False)
    assert press["callback_query"]["message"]["message_id"] == sent.message_id


@pytest.mark.asyncio
async def test_bad_markup_and_limits_are_rejected_like_telegram(
    emulator: TelegramEmulator, bot: Bot
) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        (
            {"text": "1 < 2", "parse_mode": ParseMode.HTML},
            'Unsupported start tag "" at byte offset 2',
        ),
        ({"text": "<b>bold", "parse_mode": ParseMode.HTML}, "Can't find end tag"),
        ({"text": "<b>x</i>", "parse_mode": ParseMode.HTML}, "Unmatched end tag"),
        ({"text": "<br>", "parse_mode": ParseMode.HTML}, 'Unsupported start tag "br"'),
        ({"text": "Done.", "parse_mode": ParseMode.MARKDOWN_V2}, "Character '.' is reserved"),
        ({"text": "x" * 4097}, "message is too long"),
        ({"text": "<b> </b>", "parse_mode": ParseMode.HTML}, "message text is empty"),
        (
            {
                "text": "hi",
                "reply_markup": InlineKeyboardMarkup(
                    [[InlineKeyboardButton("a", callback_data="x" * 65)]]
                ),
            },
            "BUTTON_DATA_INVALID",
        ),
        ({"text": "hi", "reply_to_message_id": 42}, "message to be replied not found"),
    ]
    for kwargs, error in cases:
        with pytest.raises(BadRequest, match=says(error)):
            await bot.send_message(1001, **kwargs)
    assert await bot.send_message(1001, "ok \\.", parse_mode=ParseMode.MARKDOWN_V2)
    assert await bot.send_message(
        1001, "hi", reply_to_message_id=42, allow_sending_without_reply=True
    )
    failed = emulator.calls_to("sendMessage")[: len(cases)]
    assert [(c.ok, c.status) for c in failed] == [(False, 400)] * len(cases)
    assert [c.text for c in await emulator.wait_for("sendMessage", count=2)] == ["ok \\.", "hi"]


@pytest.mark.asyncio
async def test_injected_errors_raise_the_matching_ptb_exceptions(
    emulator: TelegramEmulator, bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")  # RetryAfter.retry_after as a timedelta
    emulator.fail_next(
        "sendMessage",
        error_code=429,
        description="Too Many Requests: retry after 7",
        retry_after=7,
    )
    with pytest.raises(RetryAfter) as flood:
        await bot.send_message(1001, "one")
    assert flood.value.retry_after == dtm.timedelta(seconds=7)

    emulator.fail_chat(3003)
    with pytest.raises(Forbidden, match=says("bot was blocked by the user")):
        await bot.send_message(3003, "two")
    with pytest.raises(Forbidden):
        await bot.send_chat_action(3003, "typing")

    emulator.fail_next(
        "sendMessage",
        error_code=400,
        description="Bad Request: chat not found",
        chat_id=4004,
        times=2,
    )
    assert await bot.send_message(1001, "other chats are unaffected")
    for _ in range(2):
        with pytest.raises(BadRequest, match=says("chat not found")):
            await bot.send_message(4004, "three")
    assert await bot.send_message(4004, "then it works")

    emulator.fail_next(
        "sendMessage",
        error_code=400,
        description="Bad Request: group chat was upgraded to a supergroup chat",
        migrate_to_chat_id=-1005005,
    )
    with pytest.raises(ChatMigrated) as migrated:
        await bot.send_message(-5005, "four")
    assert migrated.value.new_chat_id == -1005005

    outcomes = [(c.params["chat_id"], c.status) for c in emulator.calls_to("sendMessage")]
    assert outcomes == [
        (1001, 429),
        (3003, 403),
        (1001, 200),
        (4004, 400),
        (4004, 400),
        (4004, 200),
        (-5005, 400),
    ]
    body = emulator.calls_to("sendMessage")[0]
    assert not body.ok and body.error == "Too Many Requests: retry after 7"


@pytest.mark.asyncio
async def test_latency_timeouts_and_random_faults(
    emulator: TelegramEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")  # else RetryAfter warns about retry_after
    request = HTTPXRequest(read_timeout=0.3)
    async with Bot(TOKEN, base_url=emulator.base_url, request=request) as bot:
        emulator.set_latency(0.2)
        started = time.monotonic()
        await bot.send_message(1001, "slow")
        assert time.monotonic() - started >= 0.2
        emulator.set_latency(0)

        emulator.timeout_delay = 1.0
        emulator.set_fault_rate(1.0, kinds=("timeout",))
        with pytest.raises(TimedOut):
            await bot.send_message(1001, "never answered in time")
        emulator.set_fault_rate(1.0, kinds=("500",))
        with pytest.raises(NetworkError, match=says("Internal Server Error")):
            await bot.send_message(1001, "server error")

        emulator.set_fault_rate(0.5, seed=3, kinds=("429", "500"))
        outcomes = []
        for n in range(20):
            try:
                await bot.send_message(1001, f"message {n}")
                outcomes.append("ok")
            except RetryAfter:
                outcomes.append("429")
            except NetworkError:
                outcomes.append("500")
        assert {"ok", "429", "500"} == set(outcomes)
        emulator.clear_faults()
        assert await bot.send_message(1001, "healthy again")

    statuses = [c.status for c in emulator.calls_to("sendMessage")]
    assert statuses[:3] == [200, 504, 500]
    assert statuses[3:-1] == [{"ok": 200, "429": 429, "500": 500}[o] for o in outcomes]


@pytest.mark.asyncio
async def test_documents_are_uploaded_and_can_be_downloaded(
    emulator: TelegramEmulator, bot: Bot
) -> None:
    content = b"fact,source\narticle 33,ILO\n"
    sent = await bot.send_document(
        1001,
        InputFile(content, filename="facts.csv"),
        caption="<b>Facts</b>",
        parse_mode=ParseMode.HTML,
    )
    [call] = emulator.calls_to("sendDocument")
    upload = call.files["document"]
    assert (upload.filename, upload.data) == ("facts.csv", content)
    assert call.params["document"] == "facts.csv" and call.params["caption"] == "<b>Facts</b>"
    assert sent.document is not None and sent.document.file_name == "facts.csv"
    assert sent.document.file_size == len(content)
    assert sent.caption == "Facts" and sent.caption_entities[0].type == "bold"

    file = await bot.get_file(sent.document.file_id)
    assert bytes(await file.download_as_bytearray()) == content
    again = await bot.send_document(2002, sent.document.file_id)  # re-send by file_id
    assert again.document is not None and again.document.file_id == sent.document.file_id


@pytest.mark.asyncio
async def test_chat_members_admins_and_leaving(emulator: TelegramEmulator, bot: Bot) -> None:
    group = -100123
    emulator.send_message(
        "hi", user_id=42, chat_id=group, chat_type="supergroup", chat_title="Union", queue=False
    )
    emulator.set_chat_admins(group, [42], creator=7)

    admin = await bot.get_chat_member(group, 42)
    assert isinstance(admin, ChatMemberAdministrator) and admin.user.first_name == "Alice"
    assert isinstance(await bot.get_chat_member(group, 7), ChatMemberOwner)
    assert (await bot.get_chat_member(group, 43)).status == "member"
    admins = await bot.get_chat_administrators(group)
    assert [(m.user.id, m.status) for m in admins] == [(7, "creator"), (42, "administrator")]
    with pytest.raises(BadRequest, match=says("no administrators in the private chat")):
        await bot.get_chat_administrators(1001)

    chat = await bot.get_chat(group)
    assert (chat.id, chat.type, chat.title) == (group, "supergroup", "Union")
    assert (await bot.get_chat(1001)).type == "private"

    assert await bot.leave_chat(group)
    with pytest.raises(Forbidden, match=says("bot is not a member of the supergroup chat")):
        await bot.send_message(group, "still here?")
    assert (await bot.get_chat_member(group, BOT_ID)).status == "left"


@pytest.mark.asyncio
async def test_commands_are_kept_per_scope_and_language(bot: Bot) -> None:
    await bot.set_my_commands([BotCommand("start", "Start"), BotCommand("help", "Help")])
    await bot.set_my_commands([BotCommand("start", "Старт")], language_code="ru")
    assert [c.command for c in await bot.get_my_commands()] == ["start", "help"]
    assert [c.description for c in await bot.get_my_commands(language_code="ru")] == ["Старт"]
    with pytest.raises(BadRequest, match=says("BOT_COMMAND_INVALID")):
        await bot.set_my_commands([BotCommand("Not-Valid", "x")])
    assert await bot.delete_my_commands(language_code="ru")
    assert await bot.get_my_commands(language_code="ru") == ()


@pytest.mark.asyncio
async def test_raw_protocol_unknown_method_and_wrong_token(emulator: TelegramEmulator) -> None:
    base = f"{emulator.base_url}{TOKEN}"
    async with ClientSession() as http:
        async with http.post(f"{base}/fooBar", data={"x": "1"}) as response:
            assert response.status == 404
            assert await response.json() == {
                "ok": False,
                "error_code": 404,
                "description": "Not Found: method not found",
            }
        async with http.post(f"{emulator.base_url}654321:wrong/getMe") as response:
            assert (response.status, (await response.json())["description"]) == (
                401,
                "Unauthorized",
            )
        async with http.get(f"{base}/getme") as response:  # method names ignore case
            assert (await response.json())["result"]["id"] == BOT_ID
        payload = {"chat_id": 5, "text": "42", "reply_markup": '{"inline_keyboard": []}'}
        async with http.post(f"{base}/sendMessage", json=payload) as response:
            assert (await response.json())["result"]["text"] == "42"
    assert [(c.method, c.status) for c in emulator.calls] == [
        ("fooBar", 404),
        ("getMe", 401),
        ("getMe", 200),
        ("sendMessage", 200),
    ]
    assert emulator.calls[-1].params == {
        "chat_id": 5,
        "text": "42",
        "reply_markup": {"inline_keyboard": []},
    }

    async with Bot(TOKEN, base_url=emulator.base_url) as bot:
        with pytest.raises(EndPointNotFound):
            await bot.do_api_request("fooBar")
    with pytest.raises(InvalidToken):
        async with Bot("654321:wrong", base_url=emulator.base_url):
            pass


# -- updates -----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_get_updates_offsets_limits_filters_and_long_polling(
    emulator: TelegramEmulator, bot: Bot
) -> None:
    emulator.send_message("one")
    emulator.send_message("two")
    emulator.press_button("data")
    updates = await bot.get_updates(timeout=0)
    assert [u.update_id for u in updates] == [1, 2, 3]
    assert await bot.get_updates(timeout=0) == updates  # unconfirmed: served again
    assert len(await bot.get_updates(timeout=0, limit=1)) == 1
    assert await bot.get_updates(offset=4, timeout=0) == ()
    assert emulator.pending_updates == []

    asyncio.get_running_loop().call_later(0.2, emulator.send_message, "late")
    started = time.monotonic()
    [late] = await bot.get_updates(offset=4, timeout=5)
    assert time.monotonic() - started < 1.5
    assert late.message is not None and late.message.text == "late"

    emulator.inline_query("query")
    emulator.send_message("wanted")
    [only] = await bot.get_updates(offset=5, timeout=0, allowed_updates=["message"])
    assert only.message is not None and only.message.text == "wanted"
    assert [u["update_id"] for u in emulator.pending_updates] == [
        only.update_id
    ]  # no inline query

    for text in ("a", "b", "c"):
        emulator.send_message(text)
    [last] = await bot.get_updates(offset=-1, timeout=0)
    assert last.message is not None and last.message.text == "c"
    await bot.get_updates(offset=last.update_id + 1, timeout=0)
    await emulator.wait_consumed(timeout=0.5)

    calls = emulator.calls_to("getUpdates")
    assert calls[0].params == {"timeout": 0}
    assert calls[4].params == {"offset": 4, "timeout": 5}
    assert calls[4].result[0]["message"]["text"] == "late"
    assert calls[5].params["allowed_updates"] == ["message"]


@pytest.mark.asyncio
async def test_a_second_long_poll_ends_the_first_with_conflict(
    emulator: TelegramEmulator, bot: Bot
) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=3))
    await emulator.wait_for("getUpdates")
    async with Bot(TOKEN, base_url=emulator.base_url) as other:
        assert await other.get_updates(timeout=0) == ()
    with pytest.raises(Conflict, match=says("terminated by other getUpdates request")):
        await first
    assert [c.status for c in emulator.calls_to("getUpdates")] == [409, 200]


@pytest.mark.asyncio
async def test_injected_updates_are_what_telegram_sends(
    emulator: TelegramEmulator, bot: Bot
) -> None:
    group = -1001000000777
    question = await bot.send_message(group, "Which article?")
    text = f"/ask@{BOT_NAME} 🙂 see @{BOT_NAME} #ilo https://ilo.org/x."
    raw = emulator.send_message(
        text, user_id=42, chat_id=group, chat_title="Union", reply_to_bot=True
    )
    message = Update.de_json(raw, bot).message
    assert message is not None and message.chat.type == "supergroup"
    assert message.chat.title == "Union" and message.from_user and message.from_user.id == 42
    assert list(message.parse_entities().values()) == [
        f"/ask@{BOT_NAME}",
        f"@{BOT_NAME}",
        "#ilo",
        "https://ilo.org/x",
    ]
    assert message.entities[1].offset == len(f"/ask@{BOT_NAME} 🙂 see ") + 1  # UTF-16 units
    assert message.reply_to_message is not None
    assert message.reply_to_message.message_id == question.message_id
    assert message.message_id == question.message_id + 1

    press = Update.de_json(emulator.press_button("go", user_id=42, chat_id=group), bot)
    assert press.callback_query is not None and press.callback_query.message is not None
    assert press.callback_query.message.message_id == question.message_id

    inline = Update.de_json(emulator.inline_query("q", user_id=42), bot).inline_query
    assert inline is not None and inline.from_user.id == 42 and inline.query == "q"

    post = Update.de_json(emulator.send_message("news", chat_type="channel"), bot)
    assert post.channel_post is not None and post.channel_post.sender_chat is not None

    kicked = Update.de_json(emulator.bot_membership(group, "kicked", user_id=42), bot)
    assert kicked.my_chat_member is not None
    assert kicked.my_chat_member.new_chat_member.status == "kicked"
    with pytest.raises(Forbidden):
        await bot.send_message(group, "gone")

    migration = emulator.migrate_chat(-777, group)
    moved_ids = [u["update_id"] for u in migration]
    moved = [Update.de_json(u, bot).message for u in migration]
    assert [(m.migrate_to_chat_id, m.migrate_from_chat_id) for m in moved if m] == [
        (group, None),
        (None, -777),
    ]
    forged: dict[str, Any] = {"callback_query": {"id": "forged", "data": 1}}  # PTB rejects this
    emulator.push_update(forged)
    assert emulator.pending_updates[-1] is forged and forged["update_id"] > moved_ids[-1]


@pytest.mark.asyncio
async def test_webhook_registration_and_delivery(emulator: TelegramEmulator, bot: Bot) -> None:
    received: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        if request.headers.get("X-Telegram-Bot-Api-Secret-Token") != "s3cret":
            return web.Response(status=403)
        received.append(await request.json())
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
        assert await bot.set_webhook(url, secret_token="s3cret")
        assert (await bot.get_webhook_info()).url == url
        with pytest.raises(Conflict, match=says("webhook is active")):
            await bot.get_updates(timeout=0)
        update = emulator.send_message("via webhook", queue=False)
        assert await emulator.post_webhook(url, update, "wrong") == 403
        assert await emulator.post_webhook(url, update, None) == 403
        assert await emulator.post_webhook(url, update, "s3cret") == 200
        assert received == [update]
        assert await bot.delete_webhook()
        assert (await bot.get_webhook_info()).url == ""
        assert await bot.get_updates(timeout=0) == ()
    finally:
        await runner.cleanup()


# -- a polling Application ---------------------------------------------------------------------


@pytest.mark.asyncio
async def test_polling_application_handles_commands_text_buttons_and_inline_queries(
    emulator: TelegramEmulator,
) -> None:
    errors: list[object] = []

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text("Welcome!", reply_markup=KEYBOARD)

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text(f"echo: {update.effective_message.text}")

    async def button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        await query.answer(f"pressed {query.data}")
        await query.edit_message_text(f"You said {query.data}")

    async def inline(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.inline_query is not None
        content = InputTextMessageContent("<b>Article 33</b>", parse_mode=ParseMode.HTML)
        result = InlineQueryResultArticle("a33", "Article 33", content)
        await update.inline_query.answer([result], cache_time=0)

    async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        errors.append(context.error)

    app: Application[Any, Any, Any, Any, Any, Any] = (
        ApplicationBuilder().token(TOKEN).base_url(emulator.base_url).build()
    )
    app.add_handler(CommandHandler("start", start))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    app.add_handler(CallbackQueryHandler(button))
    app.add_handler(InlineQueryHandler(inline))
    app.add_error_handler(on_error)
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=1)
        try:
            emulator.send_message("/start")
            [welcome] = await emulator.wait_for("sendMessage")
            assert welcome.text == "Welcome!" and welcome.params["reply_markup"]["inline_keyboard"]

            emulator.send_message("hello there")
            await emulator.wait_for("sendMessage", count=2)

            group = -100200
            emulator.send_message(f"/start@{BOT_NAME}", chat_id=group, chat_type="group")
            emulator.send_message("/start@SomeOtherBot", chat_id=group)  # not for us
            await emulator.wait_for("sendMessage", count=3)

            emulator.press_button("yes", message_id=welcome.result["message_id"])
            [answer] = await emulator.wait_for("answerCallbackQuery")
            assert answer.params["text"] == "pressed yes"
            [edit] = await emulator.wait_for("editMessageText")
            assert edit.params["message_id"] == welcome.result["message_id"]

            emulator.inline_query("article")
            [answered] = await emulator.wait_for("answerInlineQuery")
            [result] = answered.params["results"]
            assert result["input_message_content"]["message_text"] == "<b>Article 33</b>"
            await emulator.wait_consumed()
        finally:
            await app.updater.stop()
            await app.stop()

    assert errors == []
    assert emulator.sent_texts() == ["Welcome!", "echo: hello there", "Welcome!", "You said yes"]
    assert emulator.sent_texts(group) == ["Welcome!"]
    # Stopping the updater abandons its long poll; its last getUpdates then ends that one.
    assert [(c.method, c.status) for c in emulator.calls if not c.ok] == [("getUpdates", 499)]


@pytest.mark.asyncio
async def test_wait_for_marks_and_its_failure_report(emulator: TelegramEmulator, bot: Bot) -> None:
    await bot.send_message(1001, "before the mark")
    emulator.mark()
    with pytest.raises(TimeoutError, match=r"1 successful sendMessage call\(s\); got 0") as report:
        await emulator.wait_for("sendMessage", timeout=0.1)
    assert "sendMessage [ok] chat_id=1001 text='before the mark'" in str(report.value)

    emulator.fail_chat(1001)
    with pytest.raises(Forbidden):
        await bot.send_message(1001, "refused")
    [refused] = await emulator.wait_for("sendMessage", include_failed=True, timeout=0.1)
    assert refused.status == 403
    assert len(await emulator.wait_for("sendMessage", since=0)) == 1


# -- the text parsers --------------------------------------------------------------------------


def test_html_parser_counts_utf16_and_understands_telegram_tags() -> None:
    text, entities = parse_html(
        '  🙂 <b>bold <i>both</i></b> <a href="https://x.org/?a=1&amp;b=2">link</a>\n'
        '<pre><code class="language-python">x &lt; 1</code></pre>'
        "<tg-spoiler>s</tg-spoiler><blockquote expandable>q</blockquote>  "
    )
    assert text == "🙂 bold both link\nx < 1sq"
    assert entities == [
        {"type": "bold", "offset": 3, "length": 9},
        {"type": "italic", "offset": 8, "length": 4},
        {"type": "text_link", "offset": 13, "length": 4, "url": "https://x.org/?a=1&b=2"},
        {"type": "pre", "offset": 18, "length": 5, "language": "python"},
        {"type": "spoiler", "offset": 23, "length": 1},
        {"type": "expandable_blockquote", "offset": 24, "length": 1},
    ]
    assert parse_html("a & b > c") == ("a & b > c", [])


def test_markdown_v2_parser() -> None:
    text, entities = parse_markdown("*bold* _it_ __u__ ~s~ ||sp|| `c\\`` [l](http://x.y/\\)) \\.")
    assert text == "bold it u s sp c` l ."
    assert [e["type"] for e in entities] == [
        "bold",
        "italic",
        "underline",
        "strikethrough",
        "spoiler",
        "code",
        "text_link",
    ]
    assert entities[-1]["url"] == "http://x.y/)"
    with pytest.raises(ValueError, match="Can't find end of Bold entity at byte offset 0"):
        parse_markdown("*open")
    assert parse_markdown("1.5 *x*", v2=False) == (
        "1.5 x",
        [{"type": "bold", "offset": 4, "length": 1}],
    )


def test_detected_entities() -> None:
    assert detect_entities("/start") == [{"type": "bot_command", "offset": 0, "length": 6}]
    assert detect_entities("and/or @ab a@b.c /x@Bot_1") == [
        {"type": "bot_command", "offset": 17, "length": 8}
    ]
