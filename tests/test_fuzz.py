"""Fuzzing the Telegram side: Hypothesis-generated updates pushed through the Bot API emulator.

The updates are valid Bot API JSON, but everything optional varies: odd Unicode (control and
format characters, right-to-left marks, emoji sequences, HTML look-alikes), texts of up to
100 000 characters, unknown entity types, forged callback data, buttons under inaccessible
messages, edited messages, channel posts, messages from bots, anonymous senders, messages with
no text, inline queries with odd text, and update kinds that do not exist yet. Each example is
a round of five updates in a drawn order (a private message, any message, one to ignore, a
button press and an inline query); after each update the test waits until the bot has fully
handled it (the emulator saw the next getUpdates offset and PTB's update queue is drained),
then checks every call the bot made for it: replies are valid for Telegram (HTML parse mode,
1..4096 characters, only our own tags, every other ``<``, ``>`` and ``&`` escaped), go only
where they should, and updates the bot must ignore get no call at all.

Hypothesis runs in a worker thread and hands each update to the event loop the bot runs on.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from conftest import BOT_NAME
from conftest import TELEGRAM_TOKEN as TOKEN
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.telegram_emulator import BOT_ID, Call, TelegramEmulator

from bot.commands import BY_NAME, COMMANDS, parse
from bot.config import Settings, TelegramSettings
from bot.core import Core
from bot.knowledge.models import KnowledgeBase
from bot.library import Library
from bot.store.db import Database
from bot.store.repositories import Repository
from bot.texts import LANGUAGES, t
from bot.transports.telegram import TelegramTransport

MAX_EXAMPLES = 60
HUMANS = (101, 102, 103)
BOTS = (555001, 555002)
GROUPS = (-100201, -100202)
CHANNEL = -100300
DATE = 1_700_000_000
MESSAGE_LIMIT = 4096
CALLBACK_DATA_LIMIT = 64
GENERIC_ERRORS = {t(lang, "error.generic") for lang in LANGUAGES}

# -- what a reply may look like ----------------------------------------------------------------

_TAG = re.compile(r'<(/?)(b|i|blockquote|a)((?: href="[^"<>]*")?)>')
_ENTITY = re.compile(r"&(?:lt|gt|amp|quot|#x27);")


def _plain_ok(text: str) -> bool:
    """Text between tags: no raw '<' or '>', and every '&' starts an escape."""
    if "<" in text or ">" in text:
        return False
    return all(_ENTITY.match(text, m.start()) for m in re.finditer("&", text))


def html_problem(text: str) -> str | None:
    """Why ``text`` is not well-formed Telegram HTML of the kind we emit, or None."""
    stack: list[str] = []
    position = 0
    for tag in _TAG.finditer(text):
        if not _plain_ok(text[position : tag.start()]):
            return f"unescaped text before {tag.group(0)!r}"
        closing, name, href = tag.groups()
        if closing:
            if href or not stack or stack.pop() != name:
                return f"unbalanced {tag.group(0)!r}"
        else:
            if (name == "a") != bool(href):
                return f"bad link tag {tag.group(0)!r}"
            stack.append(name)
        position = tag.end()
    if not _plain_ok(text[position:]):
        return "unescaped text at the end"
    return f"unclosed {stack}" if stack else None


def check_message_text(call: Call) -> None:
    text = call.params.get("text")
    # An edit of a message the server does not have fails, and the bot sends the reply anew; an
    # edit into the very same content is refused as "not modified", and there is nothing to do.
    edit_refused = call.method == "editMessageText" and (
        "message to edit not found" in str(call.error) or "not modified" in str(call.error)
    )
    assert call.ok or edit_refused, (call.method, call.error, call.params)
    assert isinstance(text, str) and text.strip(), call.params
    assert len(text) <= MESSAGE_LIMIT, len(text)
    assert call.params.get("parse_mode") == "HTML", call.params
    problem = html_problem(text)
    assert problem is None, (problem, text[:300])
    assert text not in GENERIC_ERRORS, "the core failed on this update"
    markup = call.params.get("reply_markup")
    for row in markup["inline_keyboard"] if markup else []:
        for button in row:
            assert button["text"].strip()
            assert 0 < len(button["callback_data"].encode()) <= CALLBACK_DATA_LIMIT


# -- strategies --------------------------------------------------------------------------------

SPECIALS = (
    "<b>",
    "</i>",
    "<script>alert(1)</script>",
    '<a href="javascript:x">',
    "&amp;",
    "&",
    "<",
    ">",
    "&#0;",
    "\u202e",  # right-to-left override
    "\u200b\u200d",  # zero-width space and joiner
    "\ufeff",
    "\x00",
    "\x1b[31m",
    "🏳️‍🌈",
    "👩🏽‍💻",
    "e\u0301\u0301\u0301",
    "\U0001f600" * 3,
    "Ω≈ç√",
    "Статья 33",
    "артыкул 33",
    f"@{BOT_NAME}",
    "@OtherBot",
    "/start",
    "\n\n",
    "\t",
    "article 33",
    "Commission of Inquiry",
)
odd_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=200)  # no lone surrogates
pieces = st.one_of(odd_text, st.sampled_from(SPECIALS))
short_text = st.lists(pieces, max_size=6).map("".join)
huge_text = st.builds(
    lambda chunk, size: (chunk * (size // len(chunk) + 1))[:size],
    st.one_of(pieces.filter(bool), st.just("<b>&amp;")),
    st.one_of(st.sampled_from([4_097, 100_000]), st.integers(1_001, 100_000)),
)
command_names = st.sampled_from([c.name for c in COMMANDS] + ["unknowncmd", "Start", "HELP"])
command_text = st.builds(
    lambda prefix, name, addressee, args: f"{prefix}{name}{addressee} {args}",
    st.sampled_from(["/", "!", " /"]),
    command_names,
    st.sampled_from(["", f"@{BOT_NAME}", f"@{BOT_NAME.lower()}", "@OtherBot"]),
    short_text,
)
mention_text = st.builds(lambda a, b: f"{a}@{BOT_NAME} {b}", short_text, short_text)
# Commands whose reply quotes what was typed ("There is no topic “…”").
echoed_text = st.builds(
    lambda name, hostile, rest: f"/{name} {hostile}{rest}",
    st.sampled_from(["subscribe", "toggle", "unsubscribe"]),
    st.sampled_from(SPECIALS[:9]),
    short_text,
)
message_text = st.one_of(
    short_text, short_text, command_text, echoed_text, mention_text, huge_text
).filter(bool)
language_codes = st.sampled_from(["en", "ru", "be", "de", "", "en-US", "zz-ZZ-x", "ru-RU"])
entity_types = st.sampled_from(
    [
        "bot_command",
        "mention",
        "bold",
        "url",
        "text_link",
        "spoiler",
        "custom_emoji",
        "expandable_blockquote",
        "date_time",
        "future_entity_type",
        "💥",
    ]
)
entities = st.lists(
    st.fixed_dictionaries(
        {
            "type": entity_types,
            "offset": st.integers(0, 150),
            "length": st.integers(0, 150),
        },
        optional={
            "url": st.just("https://example.org/x"),
            "language": st.just("python"),
            "custom_emoji_id": st.just("5368324170671202286"),
            "user": st.just({"id": 42, "is_bot": False, "first_name": "X"}),
        },
    ),
    max_size=4,
)


def user_of(ids: tuple[int, ...], *, is_bot: bool) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "id": st.sampled_from(ids),
            "is_bot": st.just(is_bot),
            "first_name": short_text,
        },
        optional={
            "username": st.from_regex(r"[A-Za-z][A-Za-z0-9_]{4,31}", fullmatch=True),
            "language_code": language_codes,
            "last_name": short_text,
            "is_premium": st.booleans(),
        },
    )


humans = user_of(HUMANS, is_bot=False)
bots = user_of(BOTS, is_bot=True)


def bot_user() -> dict[str, Any]:
    return {"id": BOT_ID, "is_bot": True, "first_name": "Advocacy bot", "username": BOT_NAME}


@st.composite
def chats(draw: st.DrawFn, user: dict[str, Any], *, private: bool = False) -> dict[str, Any]:
    kind = "private" if private else draw(st.sampled_from(["private", "group", "supergroup"]))
    if kind == "private":
        return {"id": user["id"], "type": "private", "first_name": user["first_name"]}
    return {"id": draw(st.sampled_from(GROUPS)), "type": kind, "title": draw(short_text)}


@st.composite
def messages(
    draw: st.DrawFn,
    senders: st.SearchStrategy[dict[str, Any]] = humans,
    *,
    private_text: bool = False,
) -> dict[str, Any]:
    """A message as Telegram sends it, with or without text and the optional fields
    (``private_text``: a text message in a private chat, which the bot always answers)."""
    user = draw(senders)
    chat = draw(chats(user, private=private_text))
    message: dict[str, Any] = {
        "message_id": draw(st.integers(1, 2**31 - 1)),
        "date": DATE + draw(st.integers(0, 10**6)),
        "chat": chat,
        "from": user,
    }
    contents = ["text"] if private_text else ["text"] * 3 + ["none", "location", "dice", "photo"]
    content = draw(st.sampled_from(contents))
    if content == "text":
        text = draw(message_text)
        message["text"] = text
        if draw(st.booleans()):
            command = re.match(r"/[A-Za-z0-9_]+(@[A-Za-z0-9_]+)?", text)
            message["entities"] = (
                [{"type": "bot_command", "offset": 0, "length": len(command.group(0))}]
                if command
                else []
            )
        else:
            message["entities"] = draw(entities)
        if not message["entities"]:
            del message["entities"]
    elif content == "location":
        message["location"] = {"latitude": 53.9, "longitude": 27.56}
    elif content == "dice":
        message["dice"] = {"emoji": "🎲", "value": draw(st.integers(1, 6))}
    elif content == "photo":
        message["photo"] = [{"file_id": "p", "file_unique_id": "u", "width": 1, "height": 1}]
        message["caption"] = draw(message_text)
    if draw(st.booleans()):
        sender = bot_user() if draw(st.booleans()) else draw(humans)
        message["reply_to_message"] = {
            "message_id": draw(st.integers(1, 2**31 - 1)),
            "date": DATE,
            "chat": chat,
            "from": sender,
            "text": draw(short_text.filter(bool)),
        }
    return message


@st.composite
def channel_posts(draw: st.DrawFn) -> dict[str, Any]:
    channel = {"id": CHANNEL, "type": "channel", "title": draw(short_text)}
    post = {
        "message_id": draw(st.integers(1, 10**6)),
        "date": DATE,
        "chat": channel,
        "sender_chat": channel,
        "text": draw(message_text),
    }
    kind = draw(st.sampled_from(["channel_post", "edited_channel_post"]))
    if kind == "edited_channel_post":
        post["edit_date"] = DATE + 1
    return {kind: post}


@st.composite
def anonymous_messages(draw: st.DrawFn) -> dict[str, Any]:
    """A group message with no ``from`` (sent on behalf of the group)."""
    group = {"id": draw(st.sampled_from(GROUPS)), "type": "supergroup", "title": "Union"}
    return {
        "message": {
            "message_id": draw(st.integers(1, 10**6)),
            "date": DATE,
            "chat": group,
            "sender_chat": group,
            "text": draw(message_text),
        }
    }


valid_callbacks = st.sampled_from(
    [
        "/topics",
        "/topics history",
        "/topics history 99",
        "/timeline 2",
        "/timeline 99999",
        "/fact no-such-fact",
        "/quote",
        "/subscribe",
        "/toggle history",
        "/unsubscribe all",
        "/language ru",
        "/language xx",
        "/help",
        "/forgetme",
        "/addfact",
        "/confirm",
        "/sources",
        "!privacy",
    ]
)
forged_callbacks = st.one_of(
    st.text(max_size=64).filter(lambda s: len(s.encode()) <= CALLBACK_DATA_LIMIT),
    st.sampled_from(["/rm -rf; DROP TABLE", "/nonexistent", "💥" * 16, "/", "<b>x</b>"]),
)


@st.composite
def callback_queries(draw: st.DrawFn) -> dict[str, Any]:
    user = draw(humans)
    query: dict[str, Any] = {
        "id": "set per example",
        "from": user,
        "chat_instance": "ci",
    }
    where = draw(st.sampled_from(["message", "message", "inaccessible", "inline"]))
    if where == "inline":
        query["inline_message_id"] = "inline-1"
    else:
        query["message"] = {
            "message_id": draw(st.integers(1, 10**6)),
            "date": 0 if where == "inaccessible" else DATE,
            "chat": draw(chats(user)),
            "from": bot_user(),
            "text": "…",
        }
    payload = draw(st.sampled_from(["valid", "forged", "game"]))
    if payload == "game":
        query["game_short_name"] = "game"
    else:
        query["data"] = draw(valid_callbacks if payload == "valid" else forged_callbacks)
    return {"callback_query": query}


@st.composite
def inline_queries(draw: st.DrawFn) -> dict[str, Any]:
    query: dict[str, Any] = {
        "id": "set per example",
        "from": draw(humans),
        "query": draw(st.one_of(short_text, huge_text)),
        "offset": draw(st.sampled_from(["", "10", "\u202e"])),
    }
    if draw(st.booleans()):
        query["chat_type"] = draw(st.sampled_from(["sender", "private", "group", "channel"]))
    return {"inline_query": query}


@st.composite
def edited(draw: st.DrawFn) -> dict[str, Any]:
    message = draw(messages())
    message["edit_date"] = message["date"] + 1
    return {"edited_message": message}


ignored_updates = st.one_of(
    messages(bots).map(lambda m: {"message": m}),
    edited(),
    channel_posts(),
    anonymous_messages(),
    st.just({"some_future_update": {"id": 1, "payload": "<b>x</b>"}}),
)
rounds = st.tuples(
    messages(private_text=True).map(lambda m: {"message": m}),
    messages().map(lambda m: {"message": m}),
    ignored_updates,
    callback_queries(),
    inline_queries(),
).flatmap(lambda round_: st.permutations(list(round_)))
"""One example: an answered message, any message, one to ignore, a button and an inline query,
in a drawn order."""

# -- what the bot must do with each update -----------------------------------------------------


def addressed(message: dict[str, Any]) -> bool:
    """Whether a human's message is for the bot: private chats always (a message without
    words gets a line saying only text is read); in groups only commands (not for another bot),
    mentions and replies to the bot, in a text or a caption."""
    text = str(message.get("text") or message.get("caption") or "")
    if message["chat"]["type"] == "private":
        return True
    if not text:
        return False
    command = parse(text)
    if command is not None:
        return command.addressee is None or command.addressee.lower() == BOT_NAME.lower()
    if f"@{BOT_NAME}".lower() in text.lower():
        return True
    reply_to = message.get("reply_to_message") or {}
    return bool(reply_to.get("from", {}).get("id") == BOT_ID)


def other_calls(calls: list[Call], *allowed: str) -> list[tuple[str, dict[str, Any]]]:
    return [(c.method, c.params) for c in calls if c.method not in allowed]


def check_message(message: dict[str, Any], calls: list[Call]) -> bool:
    """Checks the calls a message caused; returns whether it was one to answer."""
    sender = message.get("from")
    if sender is None or sender["is_bot"] or not addressed(message):
        assert calls == [], [(c.method, c.params) for c in calls]
        return False
    chat_id = message["chat"]["id"]
    sent = [c for c in calls if c.method == "sendMessage"]
    assert sent, "no reply to an addressed message"
    assert other_calls(calls, "sendMessage", "sendChatAction", "getChatMember") == []
    for call in sent:
        assert call.params["chat_id"] == chat_id
        check_message_text(call)
    first = sent[0].params
    replied_to = first.get("reply_to_message_id") or first.get("reply_parameters", {}).get(
        "message_id"
    )
    assert replied_to == message["message_id"], first
    return True


def check_callback(query: dict[str, Any], calls: list[Call]) -> None:
    answers = [c for c in calls if c.method == "answerCallbackQuery"]
    assert [c.params["callback_query_id"] for c in answers] == [query["id"]]
    data = query.get("data")
    command = parse(data) if isinstance(data, str) else None
    valid = command is not None and command.name in BY_NAME
    rest = [c for c in calls if c.method != "answerCallbackQuery"]
    if not valid:
        assert answers[0].params.get("text") in {t(lang, "button.expired") for lang in LANGUAGES}
        assert rest == [], [(c.method, c.params) for c in rest]
        return
    assert "text" not in answers[0].params
    message = query.get("message")
    if message is None:  # a button under an inline message: no chat to answer in
        assert rest == [], [(c.method, c.params) for c in rest]
        return
    # Also under an inaccessible (date 0) message: its chat is known, and the answer goes there.
    assert other_calls(rest, "sendMessage", "editMessageText", "getChatMember") == []
    for call in rest:
        if call.method in ("sendMessage", "editMessageText"):
            assert call.params["chat_id"] == message["chat"]["id"]
            check_message_text(call)
    edits = [c for c in rest if c.method == "editMessageText"]
    if edits and not edits[-1].ok and "not modified" not in str(edits[-1].error):
        assert rest[-1].method == "sendMessage" and rest[-1].ok, "a failed edit was not resent"


def check_inline(query: dict[str, Any], calls: list[Call]) -> None:
    assert [c.method for c in calls] == ["answerInlineQuery"]
    [call] = calls
    assert call.ok and call.params["inline_query_id"] == query["id"]
    results = call.params["results"]
    assert len(results) <= 10
    for result in results:
        assert result["type"] == "article" and result["title"].strip()
        content = result["input_message_content"]
        assert content["parse_mode"] == "HTML"
        text = content["message_text"]
        assert 0 < len(text) <= MESSAGE_LIMIT and text.strip()
        problem = html_problem(text)
        assert problem is None, (problem, text[:300])


def check(update: dict[str, Any], calls: list[Call]) -> bool:
    """Checks the calls an update caused; returns whether it was a message to answer."""
    if "message" in update:
        return check_message(update["message"], calls)
    if "callback_query" in update:
        check_callback(update["callback_query"], calls)
    elif "inline_query" in update:
        check_inline(update["inline_query"], calls)
    else:  # edited messages, channel posts, updates of unknown kinds
        assert calls == [], [(c.method, c.params) for c in calls]
    return False


# -- the bot -----------------------------------------------------------------------------------


async def test_fuzzed_updates_never_break_the_bot(
    emulator: TelegramEmulator,
    kb: KnowledgeBase,
    db: Database,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings_ = Settings(
        database=db.path,
        questions_per_minute=100_000,  # the flood guard would otherwise hide replies
        telegram=TelegramSettings(token=TOKEN, base_url=emulator.base_url, poll_timeout=1),
    )
    repository = Repository(db)
    core = Core(Library(kb, settings_.search), settings_, repository)
    stop = asyncio.Event()
    transport = TelegramTransport(core, settings_.telegram, stop)
    task = asyncio.create_task(transport.run())
    loop = asyncio.get_running_loop()
    examples: list[int] = []  # updates per example
    kinds: list[str] = []  # the kind of every update pushed
    sizes: list[int] = []  # and its size as JSON
    answered: list[int] = []  # the sizes of the messages the bot had to answer

    async def handled(update: dict[str, Any]) -> list[Call]:
        """Push ``update``; once the bot has fully handled it, every call it made meanwhile."""
        start = len(emulator.calls)
        emulator.push_update(update)
        update_id = update["update_id"]
        await emulator.wait_for(
            "getUpdates",
            timeout=15,
            predicate=lambda c: int(c.params.get("offset") or 0) > update_id,
        )
        await asyncio.wait_for(transport.application.update_queue.join(), 15)
        return [c for c in emulator.calls[start:] if c.method != "getUpdates"]

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
            HealthCheck.filter_too_much,
        ],
    )
    @given(rounds)
    def fuzz(generated: list[dict[str, Any]]) -> None:
        examples.append(len(generated))
        for original in generated:
            update = copy.deepcopy(original)
            kind = next(iter(update))
            kinds.append(kind)
            sizes.append(len(json.dumps(update, ensure_ascii=False)))
            if kind in ("callback_query", "inline_query"):
                update[kind]["id"] = f"{kind}-{len(kinds)}"  # Telegram's ids are unique
            calls = asyncio.run_coroutine_threadsafe(handled(update), loop).result(60)
            if check(update, calls):
                answered.append(sizes[-1])

    run: Callable[[], None] = fuzz
    caplog.set_level(logging.WARNING)
    try:
        await emulator.wait_for("getUpdates", timeout=10)
        await asyncio.to_thread(run)
        assert not task.done()

        # Still serving: a plain question from somebody new gets its sourced answer.
        emulator.send_message("What is Article 33 of the ILO Constitution?", user_id=4000)
        [answer] = await emulator.wait_for(
            "sendMessage", predicate=lambda c: c.params["chat_id"] == 4000
        )
        assert "Article 33" in str(answer.params["text"])
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)

    counted = Counter(kinds)
    print(f"\nfuzz: {len(examples)} examples, {len(kinds)} updates: {dict(counted)}")
    print(f"fuzz: {len(answered)} messages answered; largest update {max(sizes)} characters")
    assert len(examples) >= MAX_EXAMPLES
    assert len(answered) >= len(examples) and max(sizes) > 100_000 and max(answered) > 4096
    assert {
        "message",
        "edited_message",
        "channel_post",
        "callback_query",
        "inline_query",
        "some_future_update",
    } <= set(counted)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [(r.name, r.getMessage()) for r in errors]
