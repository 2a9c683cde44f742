"""End-to-end encryption: the bot answers, encrypted, in an encrypted direct room (real Synapse)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from nio import AsyncClient, AsyncClientConfig, RoomCreateResponse, RoomSendResponse
from nio.crypto import ENCRYPTION_ENABLED
from support.synapse import SynapseServer
from test_matrix import (
    People,
    Person,
    serving,
    settings_for,
    wait_for_membership,
    wait_for_notice,
)

from bot.knowledge.models import KnowledgeBase

pytestmark = pytest.mark.skipif(not ENCRYPTION_ENABLED, reason="matrix-nio[e2e] is not installed")

ENCRYPTION = {
    "type": "m.room.encryption",
    "state_key": "",
    "content": {"algorithm": "m.megolm.v1.aes-sha2"},
}


@pytest.fixture
async def crowd(synapse: SynapseServer) -> AsyncIterator[People]:
    people = People(synapse)
    try:
        yield people
    finally:
        await people.close()


async def encrypted_person(people: People, synapse: SynapseServer, store: Path) -> Person:
    user = people.register("crypto")
    store.mkdir()
    client = AsyncClient(
        synapse.base_url,
        user.user_id,
        device_id=user.device_id,
        store_path=str(store),
        config=AsyncClientConfig(encryption_enabled=True, store_sync_tokens=False),
    )
    client.restore_login(user.user_id, user.device_id, user.access_token)
    people.clients.append(client)
    await client.keys_upload()
    person = Person(client)
    await person.sync()
    return person


async def test_encrypted_question_gets_an_encrypted_answer(
    kb: KnowledgeBase, synapse: SynapseServer, crowd: People, tmp_path: Path
) -> None:
    human = await encrypted_person(crowd, synapse, tmp_path / "human-store")
    bot = crowd.register("bot")
    async with serving(settings_for(synapse, bot, tmp_path / "bot.sqlite3"), kb):
        created = await human.client.room_create(
            is_direct=True, invite=[bot.user_id], initial_state=[ENCRYPTION]
        )
        assert isinstance(created, RoomCreateResponse), created
        room = str(created.room_id)
        await wait_for_membership(human, room, bot.user_id, "join")
        await human.client.keys_query()
        sent = await human.client.room_send(
            room,
            "m.room.message",
            {"msgtype": "m.text", "body": "What is Article 33 of the ILO Constitution?"},
            ignore_unverified_devices=True,
        )
        assert isinstance(sent, RoomSendResponse), sent
        answer = await wait_for_notice(
            human, room, bot.user_id, lambda n: "Article 33" in n.body, timeout=20
        )
    assert answer.decrypted, "the answer was not sent encrypted"
    assert "Source:" in answer.body
