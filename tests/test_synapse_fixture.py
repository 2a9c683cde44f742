"""End-to-end check of the throwaway Synapse homeserver with real nio clients.

A human and a bot, each a ``nio.AsyncClient`` logged in with a token from the
shared-secret admin registration API, exchange a message and an HTML ``m.notice``
reply. A second test shows how a 429 (``M_LIMIT_EXCEEDED``) reaches the caller.
The session-wide ``synapse`` fixture lives in ``conftest.py``.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
from nio import (
    AsyncClient,
    AsyncClientConfig,
    JoinResponse,
    MatrixRoom,
    RoomCreateResponse,
    RoomMessageNotice,
    RoomMessageText,
    RoomSendError,
    RoomSendResponse,
    SyncResponse,
)
from support.synapse import RegisteredUser, SynapseServer

SYNC_DEADLINE = 20.0  # seconds; generous, a local sync answers in milliseconds


def _unique(prefix: str) -> str:
    """A localpart no other test in this session uses (the server is shared)."""
    return f"{prefix}-{secrets.token_hex(4)}"


@asynccontextmanager
async def _client(
    server: SynapseServer, user: RegisteredUser, config: AsyncClientConfig | None = None
) -> AsyncIterator[AsyncClient]:
    client = AsyncClient(server.base_url, user.user_id, config=config)
    client.restore_login(user.user_id, user.device_id, user.access_token)
    try:
        yield client
    finally:
        await client.close()


async def _sync_until(client: AsyncClient, done: Callable[[], bool]) -> None:
    """Run incremental syncs (long-polling 500 ms) until ``done()`` holds."""
    async with asyncio.timeout(SYNC_DEADLINE):
        while not done():
            response = await client.sync(timeout=500)
            assert isinstance(response, SyncResponse), f"sync failed: {response}"


@pytest.mark.asyncio
async def test_bot_receives_message_and_replies_with_html_notice(
    synapse: SynapseServer,
) -> None:
    human_localpart, bot_localpart = _unique("human"), _unique("bot")
    human_user = synapse.register(human_localpart, "human-password")
    bot_user = synapse.register(bot_localpart, "bot-password")
    assert human_user.user_id == synapse.user_id(human_localpart)
    assert bot_user.user_id == f"@{bot_localpart}:{synapse.server_name}"
    assert synapse.base_url.startswith("http://127.0.0.1:")

    async with _client(synapse, human_user) as human, _client(synapse, bot_user) as bot:
        bot_inbox: list[RoomMessageText] = []
        human_inbox: list[RoomMessageNotice] = []

        async def on_bot_text(room: MatrixRoom, event: RoomMessageText) -> None:
            if event.sender != bot.user_id:
                bot_inbox.append(event)

        async def on_human_notice(room: MatrixRoom, event: RoomMessageNotice) -> None:
            human_inbox.append(event)

        bot.add_event_callback(on_bot_text, RoomMessageText)
        human.add_event_callback(on_human_notice, RoomMessageNotice)

        # Initial syncs, so later syncs are incremental.
        await _sync_until(bot, lambda: bot.next_batch is not None)
        await _sync_until(human, lambda: human.next_batch is not None)

        created = await human.room_create(name="fixture check", invite=[bot.user_id])
        assert isinstance(created, RoomCreateResponse), created
        room_id = created.room_id

        await _sync_until(bot, lambda: room_id in bot.invited_rooms)
        joined = await bot.join(room_id)
        assert isinstance(joined, JoinResponse), joined

        question = "How much plastic ends up in the ocean each year?"
        sent = await human.room_send(
            room_id, "m.room.message", {"msgtype": "m.text", "body": question}
        )
        assert isinstance(sent, RoomSendResponse), sent

        await _sync_until(bot, lambda: any(e.event_id == sent.event_id for e in bot_inbox))
        incoming = next(e for e in bot_inbox if e.event_id == sent.event_id)
        assert incoming.sender == human.user_id
        assert incoming.body == question

        reply_content = {
            "msgtype": "m.notice",
            "body": f"> <{incoming.sender}> {question}\n\nRoughly 11 million tonnes. [1]",
            "format": "org.matrix.custom.html",
            "formatted_body": "<p>Roughly <strong>11 million tonnes</strong>. [1]</p>",
            "m.relates_to": {"m.in_reply_to": {"event_id": incoming.event_id}},
        }
        replied = await bot.room_send(room_id, "m.room.message", reply_content)
        assert isinstance(replied, RoomSendResponse), replied

        await _sync_until(human, lambda: any(e.event_id == replied.event_id for e in human_inbox))
        notice = next(e for e in human_inbox if e.event_id == replied.event_id)
        assert notice.sender == bot.user_id
        assert notice.format == "org.matrix.custom.html"
        assert notice.formatted_body == reply_content["formatted_body"]
        relates_to = notice.source["content"]["m.relates_to"]
        assert relates_to == {"m.in_reply_to": {"event_id": incoming.event_id}}


@pytest.mark.asyncio
async def test_rate_limit_surfaces_as_room_send_error(synapse: SynapseServer) -> None:
    """With ``max_limit_exceeded=0`` nio returns the 429 instead of sleeping and retrying."""
    admin = synapse.register(_unique("admin"), "admin-password", admin=True)
    sender_user = synapse.register(_unique("limited"), "limited-password")
    config = AsyncClientConfig(max_limit_exceeded=0)

    async with _client(synapse, sender_user, config) as sender:
        created = await sender.room_create(name="rate limit check")
        assert isinstance(created, RoomCreateResponse), created

        synapse.override_ratelimit(
            admin, sender_user.user_id, messages_per_second=1, burst_count=1
        )
        # One message per second with a burst of one (the room creation events above
        # already count against it): a quick series of sends must hit the limit.
        responses: list[RoomSendResponse | RoomSendError] = []
        for number in range(10):
            content = {"msgtype": "m.notice", "body": f"message {number}"}
            responses.append(await sender.room_send(created.room_id, "m.room.message", content))
            if isinstance(responses[-1], RoomSendError):
                break

    limited = responses[-1]
    assert isinstance(limited, RoomSendError), responses
    assert limited.status_code == "M_LIMIT_EXCEEDED"
    assert limited.retry_after_ms is not None
    assert 0 < limited.retry_after_ms <= 1000
