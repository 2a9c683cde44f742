"""End-to-end tests of the Matrix transport: a real Synapse, real matrix-nio clients, the real bot.

The bot runs in-process exactly as in production, as ``bot.app.serve(settings, kb, stop)`` (Matrix
transport, delivery worker and core on one SQLite database), against the session-wide throwaway
homeserver from ``conftest.py``. The people talking to it are plain ``nio.AsyncClient``s. Every
test registers its own bot and people under fresh localparts, so tests are independent.

Where a test checks that the bot stays *silent*, it does not sleep: it sends a later message the
bot must answer and waits for that answer. The transport handles one room's events in timeline
order and sends each reply before it looks at the next event, so once the later answer is there,
any answer to the earlier message would already be there too.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import TELEGRAM_TOKEN
from nio import (
    AsyncClient,
    AsyncClientConfig,
    JoinedRoomsResponse,
    JoinResponse,
    MatrixRoom,
    RoomCreateResponse,
    RoomInviteResponse,
    RoomLeaveResponse,
    RoomMemberEvent,
    RoomMessage,
    RoomMessageNotice,
    RoomPreset,
    RoomSendResponse,
    SyncResponse,
)
from pydantic import SecretStr
from support.cli import free_port
from support.environment import child_environment
from support.process import BotProcess
from support.synapse import RegisteredUser, SynapseServer
from support.telegram_emulator import TelegramEmulator

from bot.app import serve
from bot.config import HttpSettings, MatrixSettings, Settings, TelegramSettings
from bot.core import Core
from bot.domain import ChatRef, Platform
from bot.knowledge.models import Event, KnowledgeBase, Localized, Precision
from bot.library import Library
from bot.store.db import Database
from bot.store.repositories import Repository
from bot.store.url import PostgresUrl
from bot.texts import t
from bot.transports.matrix import DEVICE_KEY, NEXT_BATCH_KEY, SYNC_TIMEOUT_MS

ARTICLE_33 = "What is Article 33 of the ILO Constitution?"
OFF_TOPIC = "How do I bake bread?"
NEAR_MISS = "Who is Kozik's wife?"  # declined, with the fact about Kozik offered first
DECLINED = "I don't have a sourced answer"
HELP_TITLE = "What I can do:"
SOURCE_LINE = re.compile(r"^Sources?: \S", re.MULTILINE)
ALERT_TOPIC = "article-33"
NEW_FACT_TOPIC = "history"
NEW_FACT_SOURCE = "stary-27-years"

NOTICE_TIMEOUT = 10.0  # seconds; a local round trip takes well under one
STOP_TIMEOUT = 15.0
SYNC_POLL_MS = 500
# A wide timeline window, so that no sync of a busy room is "limited" (events left out).
SYNC_FILTER: dict[str, Any] = {"room": {"timeline": {"limit": 100}}}


def unique(prefix: str) -> str:
    """A localpart (or any name) no other test in this session uses: the server is shared."""
    return f"{prefix}-{secrets.token_hex(4)}"


def in_reply_to(event: RoomMessage) -> str | None:
    """The event id a message replies to (``m.relates_to.m.in_reply_to``), if any."""
    relates: dict[str, Any] = event.source.get("content", {}).get("m.relates_to", {})
    event_id = relates.get("m.in_reply_to", {}).get("event_id")
    return str(event_id) if event_id is not None else None


def replying_to(event_id: str) -> Callable[[RoomMessageNotice], bool]:
    return lambda notice: in_reply_to(notice) == event_id


class Person:
    """Someone on the test homeserver, driven through their own nio client.

    Every message and membership event their syncs bring is kept in ``seen``, with its room.
    """

    def __init__(self, client: AsyncClient) -> None:
        self.client = client
        self.seen: list[tuple[str, RoomMessage | RoomMemberEvent]] = []
        client.add_event_callback(self._collect, (RoomMessage, RoomMemberEvent))

    @property
    def user_id(self) -> str:
        return str(self.client.user_id)

    async def _collect(self, room: MatrixRoom, event: RoomMessage | RoomMemberEvent) -> None:
        self.seen.append((room.room_id, event))

    async def sync(self) -> None:
        """One incremental sync, long-polling up to half a second."""
        response = await self.client.sync(timeout=SYNC_POLL_MS, sync_filter=SYNC_FILTER)
        assert isinstance(response, SyncResponse), f"sync failed: {response}"

    def notices(self, room_id: str, sender: str) -> list[RoomMessageNotice]:
        """The ``m.notice`` messages ``sender`` posted in the room, oldest first."""
        return [
            event
            for room, event in self.seen
            if room == room_id and isinstance(event, RoomMessageNotice) and event.sender == sender
        ]

    def membership(self, room_id: str, user_id: str) -> list[str]:
        """The memberships ``user_id`` went through in the room, in order."""
        return [
            event.membership
            for room, event in self.seen
            if room == room_id
            and isinstance(event, RoomMemberEvent)
            and event.state_key == user_id
        ]

    async def say(self, room_id: str, text: str, **content: Any) -> str:
        """Send an ``m.text`` message; returns its event id."""
        body = {"msgtype": "m.text", "body": text, **content}
        response = await self.client.room_send(room_id, "m.room.message", body)
        assert isinstance(response, RoomSendResponse), response
        return str(response.event_id)

    async def sync_until(self, done: Callable[[], bool], what: str, timeout: float) -> None:
        try:
            async with asyncio.timeout(timeout):
                while not done():
                    await self.sync()
        except TimeoutError:
            raise AssertionError(f"{self.user_id} waited {timeout:g} s for {what}") from None


async def wait_for_notice(
    person: Person,
    room_id: str,
    sender: str,
    predicate: Callable[[RoomMessageNotice], bool],
    timeout: float = NOTICE_TIMEOUT,
) -> RoomMessageNotice:
    """Sync ``person`` until ``sender`` posts an ``m.notice`` in the room that fits ``predicate``."""

    def found() -> RoomMessageNotice | None:
        return next((n for n in person.notices(room_id, sender) if predicate(n)), None)

    try:
        await person.sync_until(lambda: found() is not None, "a notice", timeout)
    except AssertionError:
        bodies = [n.body[:80] for n in person.notices(room_id, sender)]
        raise AssertionError(f"no matching notice from {sender}; got: {bodies}") from None
    notice = found()
    assert notice is not None
    return notice


async def ask(
    person: Person, room_id: str, bot_id: str, text: str, **content: Any
) -> RoomMessageNotice:
    """Say something and wait for the bot's notice replying to exactly that message."""
    question = await person.say(room_id, text, **content)
    return await wait_for_notice(person, room_id, bot_id, replying_to(question))


async def wait_for_membership(
    person: Person, room_id: str, user_id: str, membership: str, timeout: float = NOTICE_TIMEOUT
) -> None:
    await person.sync_until(
        lambda: membership in person.membership(room_id, user_id),
        f"{user_id} to {membership} {room_id}",
        timeout,
    )


class People:
    """Registers people on the shared homeserver; closes their clients at the end of the test."""

    def __init__(self, synapse: SynapseServer) -> None:
        self.synapse = synapse
        self.clients: list[AsyncClient] = []

    def register(self, prefix: str) -> RegisteredUser:
        return self.synapse.register(unique(prefix), secrets.token_hex(8))

    def client(self, user: RegisteredUser) -> AsyncClient:
        """A client logged in as ``user`` (call it inside the running event loop)."""
        config = AsyncClientConfig(encryption_enabled=False)
        client = AsyncClient(self.synapse.base_url, user.user_id, config=config)
        client.restore_login(user.user_id, user.device_id, user.access_token)
        self.clients.append(client)
        return client

    async def new(self, prefix: str) -> Person:
        """A freshly registered person, initial sync done (so later syncs are incremental)."""
        person = Person(self.client(self.register(prefix)))
        await person.sync()
        return person

    async def close(self) -> None:
        for client in self.clients:
            await client.close()


@pytest.fixture
async def people(synapse: SynapseServer) -> AsyncIterator[People]:
    cast = People(synapse)
    try:
        yield cast
    finally:
        await cast.close()


@pytest.fixture
def bot_user(people: People) -> RegisteredUser:
    return people.register("bot")


def settings_for(
    synapse: SynapseServer,
    bot: RegisteredUser,
    database: Path,
    *,
    admins: tuple[str, ...] = (),
    allowed_inviters: tuple[str, ...] = (),
) -> Settings:
    """Settings of a Matrix-only bot with its own database, as the environment would give them."""
    matrix = MatrixSettings(
        homeserver=synapse.base_url,
        user_id=bot.user_id,
        access_token=SecretStr(bot.access_token),
        device_id=bot.device_id,
        allowed_inviters=list(allowed_inviters),
    )
    return Settings(
        database=database,
        admins=list(admins),
        matrix=matrix,
        telegram=TelegramSettings(),
        http=HttpSettings(),
    )


@pytest.fixture
def bot_settings(synapse: SynapseServer, bot_user: RegisteredUser, tmp_path: Path) -> Settings:
    return settings_for(synapse, bot_user, tmp_path / "bot.sqlite3")


@pytest.fixture
def reference(kb: KnowledgeBase, bot_settings: Settings) -> Core:
    """A core without a store on the same knowledge: what the bot should say, for comparison."""
    return Core(Library(kb, bot_settings.search), bot_settings)


@asynccontextmanager
async def serving(settings: Settings, kb: KnowledgeBase) -> AsyncIterator[None]:
    """Run the whole bot (``serve``) as a task; on exit stop it and check it ended cleanly."""
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, kb, stop))
    try:
        yield
    finally:
        ended_early = task.done()
        stop.set()
        exit_code = await asyncio.wait_for(task, STOP_TIMEOUT)
        assert not ended_early, f"the bot stopped by itself (exit code {exit_code})"
    assert exit_code == 0


async def open_direct_room(person: Person, bot_id: str) -> str:
    """The person opens a direct chat with the bot and waits until the bot has joined it."""
    created = await person.client.room_create(
        is_direct=True, preset=RoomPreset.trusted_private_chat, invite=[bot_id]
    )
    assert isinstance(created, RoomCreateResponse), created
    await wait_for_membership(person, created.room_id, bot_id, "join")
    return str(created.room_id)


async def open_group_room(owner: Person, bot_id: str, *members: Person) -> str:
    """A room of the owner, the bot and ``members``, everyone joined."""
    invited = [bot_id, *(m.user_id for m in members)]
    created = await owner.client.room_create(name=unique("group"), invite=invited)
    assert isinstance(created, RoomCreateResponse), created
    room_id = str(created.room_id)
    for member in members:
        joined = await member.client.join(room_id)
        assert isinstance(joined, JoinResponse), joined
    for user_id in invited:
        await wait_for_membership(owner, room_id, user_id, "join")
    return room_id


async def joined_rooms(client: AsyncClient) -> list[str]:
    """The rooms the client's account is joined to, as the homeserver sees it now."""
    response = await client.joined_rooms()
    assert isinstance(response, JoinedRoomsResponse), response
    return [str(room_id) for room_id in response.rooms]


# -- the tests ---------------------------------------------------------------------------------


async def test_direct_question_gets_an_html_notice_replying_to_it(
    kb: KnowledgeBase,
    bot_settings: Settings,
    people: People,
    bot_user: RegisteredUser,
    reference: Core,
) -> None:
    human = await people.new("human")
    bot = bot_user.user_id
    async with serving(bot_settings, kb):
        room = await open_direct_room(human, bot)
        question = await human.say(room, ARTICLE_33)
        answer = await wait_for_notice(human, room, bot, replying_to(question))

    expected = await reference.answer(ARTICLE_33)
    assert expected.answered
    content = answer.source["content"]
    assert content["msgtype"] == "m.notice"
    assert content["m.relates_to"] == {"m.in_reply_to": {"event_id": question}}
    assert answer.body == expected.plain_text(numbered_choices=True)
    assert "Article 33" in answer.body
    assert SOURCE_LINE.search(answer.body), answer.body
    assert answer.format == "org.matrix.custom.html"
    assert "Article 33" in answer.formatted_body
    assert "<i>Source" in answer.formatted_body
    assert "\n" not in answer.formatted_body  # line breaks are <br> in HTML


@pytest.mark.parametrize("device_id", [None, "SOMEDEVICE"])
async def test_a_rejected_access_token_stops_with_one_line_saying_so(
    kb: KnowledgeBase,
    bot_settings: Settings,
    device_id: str | None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Without a device id the bot asks the homeserver whose token it is; either way a token
    the homeserver does not know is a setting to fix, said in one line, not a traceback."""
    matrix = bot_settings.matrix.model_copy(
        update={"access_token": SecretStr("syt_not_a_token"), "device_id": device_id}
    )
    settings = bot_settings.model_copy(update={"matrix": matrix})
    assert await asyncio.wait_for(serve(settings, kb, asyncio.Event()), STOP_TIMEOUT) == 2
    errors = capsys.readouterr().err
    assert "error: the Matrix homeserver rejected BOT_MATRIX__ACCESS_TOKEN\n" in errors
    assert "Traceback" not in errors and "syt_not_a_token" not in errors


async def test_declined_question_then_a_numbered_choice_answers_the_fact(
    kb: KnowledgeBase,
    bot_settings: Settings,
    people: People,
    bot_user: RegisteredUser,
    reference: Core,
) -> None:
    human = await people.new("human")
    bot = bot_user.user_id
    expected_decline = await reference.answer(NEAR_MISS)
    assert not expected_decline.answered and expected_decline.choices
    first = expected_decline.choices[0]
    assert first.command.startswith("/fact "), f"{NEAR_MISS!r} should suggest a fact first"
    fact = reference.library.facts[first.command.removeprefix("/fact ")]

    async with serving(bot_settings, kb):
        room = await open_direct_room(human, bot)
        declined = await ask(human, room, bot, NEAR_MISS)
        chosen = await ask(human, room, bot, "1")

    assert DECLINED in declined.body
    assert not SOURCE_LINE.search(declined.body)
    assert f"\n1. {first.label}" in declined.body
    assert chosen.body == reference.fact("en", fact.id).plain_text(numbered_choices=True)
    assert fact.answer.en in chosen.body
    assert SOURCE_LINE.search(chosen.body), chosen.body


async def test_group_room_answers_only_when_addressed(
    kb: KnowledgeBase, bot_settings: Settings, people: People, bot_user: RegisteredUser
) -> None:
    human, other = await people.new("human"), await people.new("other")
    bot = bot_user.user_id
    async with serving(bot_settings, kb):
        room = await open_group_room(human, bot, other)
        unaddressed = await human.say(room, ARTICLE_33)
        mentioned = await ask(human, room, bot, f"{bot}: {ARTICLE_33}")
        helped = await ask(human, room, bot, "!help")
        # Replying to one of the bot's messages addresses it too (with the usual quoted fallback).
        fallback = f"> <{bot}> {helped.body.splitlines()[0]}\n\n{ARTICLE_33}"
        relates = {"m.in_reply_to": {"event_id": helped.event_id}}
        replied = await ask(human, room, bot, fallback, **{"m.relates_to": relates})
        # Changing what a group follows is for its admins (power level 50+), not every member.
        refused = await ask(other, room, bot, "!subscribe all")
    await wait_for_notice(human, room, bot, lambda n: n.event_id == refused.event_id)

    assert "Article 33" in mentioned.body and SOURCE_LINE.search(mentioned.body)
    # Matrix clients keep "/" for their own commands: the help names the bot's with "!".
    assert HELP_TITLE in helped.body and "• !subscribe" in helped.body
    assert "/subscribe" not in helped.body and "/help" not in helped.body
    assert replied.body == mentioned.body
    assert "only its admins" in refused.body
    answered = [in_reply_to(n) for n in human.notices(room, bot)]
    assert unaddressed not in answered
    assert len(answered) == 4, [n.body[:60] for n in human.notices(room, bot)]


async def test_subscribed_chat_gets_one_alert_for_a_published_event(
    kb: KnowledgeBase, bot_settings: Settings, people: People, bot_user: RegisteredUser
) -> None:
    human = await people.new("human")
    bot = bot_user.user_id
    title = f"Alert check {unique('event')}"
    event = Event(
        id=unique("e2e-event"),
        date="2026-11-20",
        precision=Precision.DAY,
        title=Localized(en=title),
        summary=Localized(en="An event published while the bot runs."),
        topics=[ALERT_TOPIC],
        sources=[kb.sources[0].id],
    )
    async with serving(bot_settings, kb):
        room = await open_direct_room(human, bot)
        subscribed = await ask(human, room, bot, "!subscribe all")
        assert "Subscribed to:" in subscribed.body
        async with Database(bot_settings.database) as db:
            repository = Repository(db)
            assert await repository.publish_event(event, time.time()) == 1
            alert = await wait_for_notice(human, room, bot, lambda n: title in n.body)
            async with asyncio.timeout(NOTICE_TIMEOUT):
                while (await repository.outbox_counts())["sent"] != 1:
                    await asyncio.sleep(0.05)
            counts = await repository.outbox_counts()
        await human.sync()  # whatever else the bot sent by now

    assert counts == {"pending": 0, "sending": 0, "sent": 1, "gone": 0, "failed": 0, "dropped": 0}
    assert [n.event_id for n in human.notices(room, bot) if title in n.body] == [alert.event_id]
    assert alert.body.startswith("🔔 ") and "An event published while the bot runs." in alert.body
    assert alert.format == "org.matrix.custom.html" and title in alert.formatted_body
    assert in_reply_to(alert) is None


async def test_admin_adds_a_fact_and_users_get_it_as_an_answer(
    kb: KnowledgeBase,
    synapse: SynapseServer,
    people: People,
    bot_user: RegisteredUser,
    tmp_path: Path,
) -> None:
    human = await people.new("admin")
    bot = bot_user.user_id
    with_admin = settings_for(
        synapse, bot_user, tmp_path / "bot.sqlite3", admins=(f"matrix:{human.user_id}",)
    )
    word = unique("Zubrovka-test")
    keyword = word.replace("-", "").lower()
    answer = f"The {word} fact was added from a Matrix chat by an admin."
    evidence = "It took the ILO two decades to take this step."
    form = (
        f"{NEW_FACT_TOPIC} | {answer} | {keyword}, unique keyword | {NEW_FACT_SOURCE} | {evidence}"
    )
    async with serving(with_admin, kb):
        room = await open_direct_room(human, bot)
        before = await ask(human, room, bot, f"What is {keyword}?")
        preview = await ask(human, room, bot, f"!addfact {form}")
        saved = await ask(human, room, bot, "!confirm")
        after = await ask(human, room, bot, f"What is {keyword}?")

    assert DECLINED in before.body
    assert preview.body.startswith("Preview"), preview.body
    assert answer in preview.body
    assert saved.body.startswith("Saved as fact-"), saved.body
    assert after.body.startswith(answer), after.body
    assert SOURCE_LINE.search(after.body)


async def test_restart_answers_what_came_while_down_once_and_replays_nothing(
    kb: KnowledgeBase, bot_settings: Settings, people: People, bot_user: RegisteredUser
) -> None:
    human, other = await people.new("human"), await people.new("other")
    bot = bot_user.user_id
    async with serving(bot_settings, kb):
        room = await open_direct_room(human, bot)
        group = await open_group_room(human, bot, other)
        before = await human.say(room, ARTICLE_33)
        await wait_for_notice(human, room, bot, replying_to(before))

    while_down = await human.say(room, "!help")
    async with serving(bot_settings, kb):
        caught_up = await wait_for_notice(human, room, bot, replying_to(while_down))
        # After a restart the group is still a group: an un-addressed message gets no answer.
        unaddressed = await human.say(group, ARTICLE_33)
        await ask(human, group, bot, f"{bot} {OFF_TOPIC}")
        after = await human.say(room, OFF_TOPIC)
        await wait_for_notice(human, room, bot, replying_to(after))
    await human.sync()

    assert HELP_TITLE in caught_up.body
    answered = [in_reply_to(n) for n in human.notices(room, bot)]
    assert answered == [before, while_down, after]
    assert unaddressed not in [in_reply_to(n) for n in human.notices(group, bot)]


async def test_a_picture_in_a_direct_room_gets_a_line_saying_only_text_is_read(
    kb: KnowledgeBase, bot_settings: Settings, people: People, bot_user: RegisteredUser
) -> None:
    human, other = await people.new("human"), await people.new("other")
    bot = bot_user.user_id
    image = {"msgtype": "m.image", "body": "photo.jpg", "url": "mxc://localhost/photo"}
    async with serving(bot_settings, kb):
        room = await open_direct_room(human, bot)
        answer = await ask(human, room, bot, "", **image)
        # In a group room a picture is no message to the bot.
        group = await open_group_room(human, bot, other)
        await human.say(group, "", **image)
        await ask(human, group, bot, f"{bot} {ARTICLE_33}")

    assert answer.body.startswith("I can only read typed text"), answer.body
    assert len(human.notices(group, bot)) == 1


async def test_an_edited_message_is_not_answered_again(
    kb: KnowledgeBase, bot_settings: Settings, people: People, bot_user: RegisteredUser
) -> None:
    human = await people.new("human")
    bot = bot_user.user_id
    async with serving(bot_settings, kb):
        room = await open_direct_room(human, bot)
        first = await human.say(room, "!help")
        await wait_for_notice(human, room, bot, replying_to(first))
        # As Element sends an edit: a "* " fallback body and the new content beside it.
        await human.say(
            room,
            "* !help please",
            **{
                "m.new_content": {"msgtype": "m.text", "body": "!help please"},
                "m.relates_to": {"rel_type": "m.replace", "event_id": first},
            },
        )
        last = await human.say(room, ARTICLE_33)
        await wait_for_notice(human, room, bot, replying_to(last))

    assert [in_reply_to(n) for n in human.notices(room, bot)] == [first, last]


async def test_a_question_in_a_thread_is_answered_in_that_thread(
    kb: KnowledgeBase, bot_settings: Settings, people: People, bot_user: RegisteredUser
) -> None:
    human, other = await people.new("human"), await people.new("other")
    bot = bot_user.user_id
    async with serving(bot_settings, kb):
        group = await open_group_room(human, bot, other)
        root = await human.say(group, "Thread about the ILO")
        in_thread = {"rel_type": "m.thread", "event_id": root, "is_falling_back": True}
        answer = await ask(
            human,
            group,
            bot,
            f"{bot} {ARTICLE_33}",
            **{"m.relates_to": {**in_thread, "m.in_reply_to": {"event_id": root}}},
        )
        # A later message in the thread falls back to "replying" to the bot's answer, the
        # thread's latest event: still no message to the bot, which is not mentioned.
        unaddressed = await human.say(
            group,
            ARTICLE_33,
            **{"m.relates_to": {**in_thread, "m.in_reply_to": {"event_id": answer.event_id}}},
        )
        await ask(human, group, bot, f"{bot} !help")

    assert answer.source["content"]["m.relates_to"]["rel_type"] == "m.thread"
    assert answer.source["content"]["m.relates_to"]["event_id"] == root
    assert "Article 33" in answer.body
    assert unaddressed not in [in_reply_to(n) for n in human.notices(group, bot)]


async def test_what_is_said_after_the_invite_is_answered_even_before_the_bot_joins(
    kb: KnowledgeBase, bot_settings: Settings, people: People, bot_user: RegisteredUser
) -> None:
    """A person invites the bot and asks at once, before it has joined (here: while it is
    down); the room's talk from before the invite stays unanswered."""
    human = await people.new("human")
    bot = bot_user.user_id
    async with serving(bot_settings, kb):
        pass  # the bot has synced once: the invite below comes in an incremental sync

    created = await human.client.room_create(preset=RoomPreset.trusted_private_chat)
    assert isinstance(created, RoomCreateResponse), created
    room = str(created.room_id)
    backlog = await human.say(room, ARTICLE_33)
    invited = await human.client.room_invite(room, bot)
    assert isinstance(invited, RoomInviteResponse), invited
    question = await human.say(room, "!help")
    async with serving(bot_settings, kb):
        answer = await wait_for_notice(human, room, bot, replying_to(question))

    assert HELP_TITLE in answer.body
    assert [in_reply_to(n) for n in human.notices(room, bot)] == [question], backlog


async def test_new_database_does_not_answer_old_messages(
    kb: KnowledgeBase,
    synapse: SynapseServer,
    bot_settings: Settings,
    people: People,
    bot_user: RegisteredUser,
    tmp_path: Path,
) -> None:
    """The first start takes the server's position: history already in joined rooms stays."""
    human = await people.new("human")
    bot = bot_user.user_id
    async with serving(bot_settings, kb):
        room = await open_direct_room(human, bot)
    await human.say(room, ARTICLE_33)  # history by the time the bot starts again

    # A new database and a new device: the bot logs in with its password this time.
    fresh = Settings(
        database=tmp_path / "fresh.sqlite3",
        matrix=MatrixSettings(
            homeserver=synapse.base_url,
            user_id=bot_user.user_id,
            password=SecretStr(bot_user.password),
        ),
        telegram=TelegramSettings(),
        http=HttpSettings(),
    )
    async with Database(fresh.database) as db:  # created here, so the test can watch it
        repository = Repository(db)
        async with serving(fresh, kb):
            # Until the first sync is done, anything said is history that the bot skips.
            async with asyncio.timeout(NOTICE_TIMEOUT):
                while await repository.get_value(NEXT_BATCH_KEY) is None:
                    await asyncio.sleep(0.05)
            new = await human.say(room, OFF_TOPIC)
            await wait_for_notice(human, room, bot, replying_to(new))
        device = await repository.get_value(DEVICE_KEY)

    assert [in_reply_to(n) for n in human.notices(room, bot)] == [new]  # nothing said before
    assert device is not None and device != bot_user.device_id


async def test_bot_never_answers_its_own_messages(
    kb: KnowledgeBase, bot_settings: Settings, people: People, bot_user: RegisteredUser
) -> None:
    human = await people.new("human")
    bot = bot_user.user_id
    # A second session of the bot's own account posts ordinary text, as another client would.
    bot_elsewhere = Person(people.client(bot_user))
    async with serving(bot_settings, kb):
        room = await open_direct_room(human, bot)
        own = await bot_elsewhere.say(room, ARTICLE_33)
        await ask(human, room, bot, OFF_TOPIC)
    await human.sync()

    assert own not in [in_reply_to(n) for n in human.notices(room, bot)]
    assert len(human.notices(room, bot)) == 1


async def test_invites_only_from_allowed_inviters_are_accepted(
    kb: KnowledgeBase,
    synapse: SynapseServer,
    people: People,
    bot_user: RegisteredUser,
    tmp_path: Path,
) -> None:
    stranger, friend = await people.new("stranger"), await people.new("friend")
    bot = bot_user.user_id
    picky = settings_for(
        synapse, bot_user, tmp_path / "bot.sqlite3", allowed_inviters=(friend.user_id,)
    )
    bot_account = people.client(bot_user)
    async with serving(picky, kb):
        created = await stranger.client.room_create(is_direct=True, invite=[bot])
        assert isinstance(created, RoomCreateResponse), created
        refused = str(created.room_id)
        await wait_for_membership(stranger, refused, bot, "leave")
        accepted = await open_direct_room(friend, bot)
        answer = await ask(friend, accepted, bot, ARTICLE_33)
        joined = await joined_rooms(bot_account)

    assert stranger.membership(refused, bot) == ["invite", "leave"]
    assert accepted in joined and refused not in joined
    assert "Article 33" in answer.body


async def test_bot_leaves_an_emptied_room_and_drops_its_subscriptions(
    kb: KnowledgeBase, bot_settings: Settings, people: People, bot_user: RegisteredUser
) -> None:
    human = await people.new("human")
    bot = bot_user.user_id
    bot_account = people.client(bot_user)
    async with serving(bot_settings, kb):
        room = await open_direct_room(human, bot)
        subscribed = await ask(human, room, bot, "!subscribe all")
        async with Database(bot_settings.database) as db:
            repository = Repository(db)
            chat = ChatRef(platform=Platform.MATRIX, chat_id=room)
            followed = await repository.subscriptions(chat)
            left = await human.client.room_leave(room)
            assert isinstance(left, RoomLeaveResponse), left
            # The bot leaves (and forgets) the room first and drops the chat's subscriptions
            # after that, so the homeserver can show the leave before the rows are gone: wait
            # for both.
            async with asyncio.timeout(NOTICE_TIMEOUT):
                while room in await joined_rooms(bot_account):
                    await asyncio.sleep(0.05)
                while await repository.subscriptions(chat):
                    await asyncio.sleep(0.05)
            assert await repository.subscriptions(chat) == []
            assert await repository.count_subscribers([t.id for t in kb.topics]) == 0

    assert "Subscribed to:" in subscribed.body
    assert sorted(followed) == sorted(t.id for t in kb.topics)


async def test_a_room_that_refuses_the_bot_stops_nothing(
    kb: KnowledgeBase, bot_settings: Settings, people: People, bot_user: RegisteredUser
) -> None:
    owner = await people.new("owner")
    human = await people.new("human")
    bot = bot_user.user_id
    async with serving(bot_settings, kb):
        # The owner lets the bot in, then leaves it no right to speak (power 0 of 50 needed).
        created = await owner.client.room_create(
            name=unique("muted"),
            invite=[bot],
            power_level_override={"events_default": 50},
        )
        assert isinstance(created, RoomCreateResponse), created
        muted = str(created.room_id)
        await wait_for_membership(owner, muted, bot, "join")
        await owner.say(muted, "!help")
        # The refused reply ends neither the sync nor the bot: another room is still answered.
        room = await open_direct_room(human, bot)
        answer = await ask(human, room, bot, ARTICLE_33)
        assert "Article 33" in answer.body
    assert owner.notices(muted, bot) == []


async def test_an_answer_shows_its_evidence_by_number_bang_command_or_asking(
    kb: KnowledgeBase,
    bot_settings: Settings,
    people: People,
    bot_user: RegisteredUser,
    reference: Core,
) -> None:
    human = await people.new("human")
    bot = bot_user.user_id
    question = "калі Беларусь выключылі з GSP"
    expected = await reference.answer(question)
    assert expected.answered and expected.fact_id and expected.lang == "be"
    assert expected.choices[0].command == f"/evidence {expected.fact_id}"
    fact = reference.library.facts[expected.fact_id]

    async with serving(bot_settings, kb):
        room = await open_direct_room(human, bot)
        answered = await ask(human, room, bot, question)
        by_number = await ask(human, room, bot, "1")
        by_command = await ask(human, room, bot, "!evidence")
        by_words = await ask(human, room, bot, "Адкуль гэта?")
        # A command shows no language: it gets the conversation's (Matrix sends none).
        help_reply = await ask(human, room, bot, "!help")

    assert "1. 📄 Словы крыніцы" in answered.body
    assert help_reply.body.startswith(t("be", "help.title")), help_reply.body[:80]
    for shown in (by_number, by_command, by_words):
        assert "\n> " + fact.evidence.splitlines()[0] in "\n" + shown.body
        assert "Цытата прыведзена ў арыгінале" in shown.body
        assert "Крыніца:" in shown.body


# -- a homeserver that rate-limits the bot -----------------------------------------------------

BURST = (ARTICLE_33, OFF_TOPIC, "!help", "Who ran against Lukashenko in 2001?")
RATE_LIMITED_TIMEOUT = 90.0  # seconds: every reply after the first waits about 1 s for its turn


class Deferrals(logging.Handler):
    """When (``time.monotonic()``) the Matrix transport was told to wait by a 429."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.times: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == "matrix.reply_deferred":
            self.times.append(time.monotonic())


@pytest.fixture
def deferrals() -> Iterator[Deferrals]:
    handler = Deferrals()
    logger = logging.getLogger("bot.transports.matrix")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def limit_messages(synapse: SynapseServer, bot: RegisteredUser) -> None:
    """The strictest message rate limit Synapse lets an admin set: 1 a second, a burst of 1.
    Most of the bot's sends are then answered 429 M_LIMIT_EXCEEDED."""
    admin = synapse.register(unique("admin"), secrets.token_hex(8), admin=True)
    synapse.override_ratelimit(admin, bot.user_id, messages_per_second=1, burst_count=1)


def replies_per_question(person: Person, room_id: str, bot_id: str) -> Counter[str | None]:
    """How many of the bot's notices in the room reply to each message."""
    return Counter(in_reply_to(n) for n in person.notices(room_id, bot_id))


async def every_question_answered(human: Person, room: str, bot: str, questions: list[str]) -> str:
    """Wait until each question has a reply, then ask "!help" and wait for its reply: the bot
    handles a room's events in order, so a second copy of an earlier reply would be there by
    then. Returns the event id of "!help"."""
    await human.sync_until(
        lambda: set(questions) <= set(replies_per_question(human, room, bot)),
        "a reply to every question",
        RATE_LIMITED_TIMEOUT,
    )
    last = await human.say(room, "!help")
    await wait_for_notice(human, room, bot, replying_to(last), RATE_LIMITED_TIMEOUT)
    return last


async def test_rate_limited_replies_are_retried_and_none_is_sent_twice(
    kb: KnowledgeBase,
    synapse: SynapseServer,
    bot_settings: Settings,
    people: People,
    bot_user: RegisteredUser,
    deferrals: Deferrals,
) -> None:
    """429s on the bot's replies: it waits and retries until each reply is taken. It is stopped
    halfway through a burst, after some replies went out but before it finished the sync batch
    that brought the questions, so it had not saved its sync position: the restart handles the
    whole batch again. The replies delivered before the stop must not be posted a second time
    (each reply has a fixed transaction id, which the homeserver deduplicates), the others are
    sent, one each."""
    human = await people.new("human")
    bot = bot_user.user_id
    async with serving(bot_settings, kb):
        room = await open_direct_room(human, bot)
    limit_messages(synapse, bot_user)
    # Said while the bot is down: the next start gets them all in one sync batch. Five, so the
    # batch handled again after the restart (these and the replies sent before the stop) stays
    # within the 10 events of a sync's default timeline window.
    questions = [await human.say(room, BURST[n % len(BURST)]) for n in range(5)]

    async with serving(bot_settings, kb):
        await human.sync_until(
            lambda: len(replies_per_question(human, room, bot)) >= 1,
            "the first reply",
            RATE_LIMITED_TIMEOUT,
        )
    before_restart = replies_per_question(human, room, bot)
    assert len(before_restart) < len(questions), "stopped too late: nothing is handled again"

    async with serving(bot_settings, kb):
        last = await every_question_answered(human, room, bot, questions)
    await human.sync()

    assert replies_per_question(human, room, bot) == Counter([*questions, last])
    assert deferrals.times, "the homeserver never rate-limited the bot"


async def test_a_rate_limited_room_holds_up_neither_telegram_nor_other_rooms(
    kb: KnowledgeBase,
    synapse: SynapseServer,
    bot_settings: Settings,
    people: People,
    bot_user: RegisteredUser,
    emulator: TelegramEmulator,
    deferrals: Deferrals,
) -> None:
    """A burst from one person while the homeserver rate-limits the bot: Telegram is answered
    while the Matrix replies still wait their turn, another room's question is answered too, and
    every question gets exactly one reply."""
    human, other = await people.new("human"), await people.new("other")
    bot = bot_user.user_id
    telegram = TelegramSettings(token=TELEGRAM_TOKEN, base_url=emulator.base_url, poll_timeout=1)
    both = bot_settings.model_copy(update={"telegram": telegram})
    async with serving(both, kb):
        room = await open_direct_room(human, bot)
        other_room = await open_direct_room(other, bot)
        limit_messages(synapse, bot_user)
        questions = [await human.say(room, BURST[n % len(BURST)]) for n in range(6)]
        async with asyncio.timeout(RATE_LIMITED_TIMEOUT):
            while not deferrals.times:  # the bot is waiting out a 429 now
                await asyncio.sleep(0.05)
        emulator.send_message(ARTICLE_33)
        elsewhere = await other.say(other_room, ARTICLE_33)
        [on_telegram] = await emulator.wait_for("sendMessage", timeout=NOTICE_TIMEOUT)
        await wait_for_notice(other, other_room, bot, replying_to(elsewhere), RATE_LIMITED_TIMEOUT)
        last = await every_question_answered(human, room, bot, questions)
    await human.sync()
    await other.sync()

    assert "Article 33" in str(on_telegram.params["text"])
    assert deferrals.times[-1] > on_telegram.time, "Telegram waited until Matrix was done"
    assert replies_per_question(human, room, bot) == Counter([*questions, last])
    assert replies_per_question(other, other_room, bot) == Counter([elsewhere])


async def test_ready_once_the_first_sync_is_done_not_a_long_poll_later(
    kb: KnowledgeBase, synapse: SynapseServer, bot_user: RegisteredUser, tmp_path: Path
) -> None:
    """On a quiet account the first sync must not long-poll: /readyz would say "not ready" for
    the whole sync timeout (30 s) after every start, resumed ones included."""
    port = free_port()
    settings = settings_for(synapse, bot_user, tmp_path / "bot.sqlite3").model_copy(
        update={"http": HttpSettings(port=port)}
    )
    bound = SYNC_TIMEOUT_MS / 1000 / 2
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False) as http:
        for start in ("first start", "resumed start"):
            async with serving(settings, kb):
                began = time.monotonic()
                while True:
                    with suppress(httpx.TransportError):
                        if (await http.get("/readyz")).status_code == 200:
                            break
                    waited = time.monotonic() - began
                    assert waited < bound, f"{start}: not ready after {waited:.1f} s"
                    await asyncio.sleep(0.05)


async def test_a_waiting_question_and_a_correction_reach_matrix_rooms_once(
    kb: KnowledgeBase,
    synapse: SynapseServer,
    people: People,
    bot_user: RegisteredUser,
    tmp_path: Path,
) -> None:
    """Notify-me and corrections go through the core and the outbox on Matrix too."""
    admin, asker, follower = [await people.new(n) for n in ("admin", "asker", "follower")]
    bot = bot_user.user_id
    settings = settings_for(
        synapse, bot_user, tmp_path / "bot.sqlite3", admins=(f"matrix:{admin.user_id}",)
    )
    word = unique("Zubrovka-loop").replace("-", "").lower()
    answer = f"The {word} accord bound every union to report to the ministry."
    evidence = "It took the ILO two decades to take this step."
    form = f"{NEW_FACT_TOPIC} | {answer} | {word} | {NEW_FACT_SOURCE} | {evidence}"

    def told(marker: str) -> Callable[[RoomMessageNotice], bool]:
        return lambda notice: marker in notice.body

    async with serving(settings, kb):
        asked_in = await open_direct_room(asker, bot)
        declined = await ask(asker, asked_in, bot, f"What was the {word} accord?")
        offer = next(
            line.split(".")[0]
            for line in declined.body.splitlines()
            if line.endswith("Tell me if this gets answered")
        )
        kept = await ask(asker, asked_in, bot, offer)
        followed_in = await open_direct_room(follower, bot)
        await ask(follower, followed_in, bot, f"!subscribe {NEW_FACT_TOPIC}")
        admin_room = await open_direct_room(admin, bot)
        await ask(admin, admin_room, bot, f"!addfact {form}")
        saved = await ask(admin, admin_room, bot, "!confirm")
        fact_id = saved.body.removeprefix("Saved as ").split(".")[0]
        found = await wait_for_notice(asker, asked_in, bot, told("You asked"))
        retracted = await ask(admin, admin_room, bot, f"!retract {fact_id} it never existed")
        correction = await wait_for_notice(follower, followed_in, bot, told("Correction ("))
        # Both were answered once: a later question in each room is answered after them.
        await ask(asker, asked_in, bot, "!help")
        await ask(follower, followed_in, bot, "!help")

    assert kept.body.startswith("I will tell you here"), kept.body
    assert found.body.startswith("You asked: “what was the") and answer in found.body
    assert retracted.body.endswith("Correction queued for chats: 1.")
    assert "is withdrawn" in correction.body and "Reason: it never existed" in correction.body
    assert [n.body for n in asker.notices(asked_in, bot)].count(found.body) == 1
    assert len([n for n in follower.notices(followed_in, bot) if "Correction (" in n.body]) == 1
    assert not [n for n in asker.notices(asked_in, bot) if "Correction (" in n.body]


# -- several processes -------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["postgres"])
async def test_when_the_syncing_process_dies_another_takes_over_and_answers_nothing_twice(
    synapse: SynapseServer,
    people: People,
    bot_user: RegisteredUser,
    database: PostgresUrl,
    emulator: TelegramEmulator,
    tmp_path: Path,
) -> None:
    """Two ``python -m bot run`` processes for one Matrix account on one PostgreSQL database:
    one syncs, the other stands by. The syncing one is killed (SIGKILL); the other takes over
    within 15 s, answers what was said meanwhile, and nothing is answered twice (the sync
    position is in the database)."""
    human = await people.new("human")
    bot = bot_user.user_id

    def env(name: str) -> dict[str, str]:
        return child_environment(
            BOT_DATABASE=database.dsn,
            BOT_DATA_DIR=str(tmp_path / name),
            BOT_MATRIX__HOMESERVER=synapse.base_url,
            BOT_MATRIX__USER_ID=bot,
            BOT_MATRIX__ACCESS_TOKEN=bot_user.access_token,
            BOT_MATRIX__DEVICE_ID=bot_user.device_id,
        )

    leads, stands_by = "lead.acquired job=matrix sync", "lead.standby job=matrix sync"
    async with (
        BotProcess(emulator, env("a"), tmp_path / "a.log") as first,
        BotProcess(emulator, env("b"), tmp_path / "b.log") as second,
    ):
        await first.spawn()
        await first.wait_for_log(leads)
        await second.spawn()
        await second.wait_for_log(stands_by)
        room = await open_direct_room(human, bot)
        before = await human.say(room, ARTICLE_33)
        await wait_for_notice(human, room, bot, replying_to(before))

        await first.kill()
        killed = time.monotonic()
        meanwhile = await human.say(room, "!help")
        await wait_for_notice(human, room, bot, replying_to(meanwhile), timeout=20)
        took_over = time.monotonic() - killed
        after = await human.say(room, OFF_TOPIC)
        await wait_for_notice(human, room, bot, replying_to(after))
        assert "Traceback" not in await second.output()
    print(f"the standby answered {took_over:.1f} s after the syncing process was killed")
    assert took_over < 15
    assert [in_reply_to(n) for n in human.notices(room, bot)] == [before, meanwhile, after]
