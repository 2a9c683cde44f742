"""matrix-nio AsyncClient: skip backlog, events -> Core.handle, Reply -> m.notice, errors -> errors.py."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import logging
import re
import time
from pathlib import Path
from typing import Any

import aiohttp
from nio import (
    AsyncClient,
    AsyncClientConfig,
    ErrorResponse,
    InviteMemberEvent,
    JoinError,
    LoginResponse,
    MatrixRoom,
    MegolmEvent,
    RoomMemberEvent,
    RoomMessage,
    RoomMessageMedia,
    RoomMessageText,
    RoomSendResponse,
    SyncResponse,
    UploadResponse,
    WhoamiResponse,
)
from nio.crypto import ENCRYPTION_ENABLED

from bot.commands import BY_NAME, parse, with_prefix
from bot.config import MatrixSettings
from bot.core import Core
from bot.domain import ChatRef, Incoming, Platform, Reply, Style
from bot.errors import ConfigError, DeliveryDeferred, RecipientGone
from bot.logs import pseudonym
from bot.store.repositories import Repository
from bot.texts import t
from bot.transports.follow_ups import LastOffers
from bot.transports.html import reply_html

logger = logging.getLogger(__name__)

REPLY_ATTEMPTS = 5
MAX_REPLY_WAIT = 30.0

SYNC_TIMEOUT_MS = 30_000
NEXT_BATCH_KEY = "matrix.next_batch"
TOKEN_KEY = "matrix.access_token"
DEVICE_KEY = "matrix.device_id"
CHAT_ADMIN_POWER = 50
MAX_BACKOFF = 300.0
_REPLY_FALLBACK = re.compile(r"^(> .*\n)+\n?", re.MULTILINE)


def strip_reply_fallback(body: str) -> str:
    """Drop the quoted "> <@user> ..." lines Matrix clients put before a reply's text."""
    return _REPLY_FALLBACK.sub("", body, count=1).strip() if body.startswith("> ") else body


def relation_of(event: RoomMessage) -> dict[str, Any]:
    """The event's ``m.relates_to`` (an edit, a thread, a reply), or {} (also when forged)."""
    content = event.source.get("content")
    relation = content.get("m.relates_to") if isinstance(content, dict) else None
    return relation if isinstance(relation, dict) else {}


def reply_to(event: RoomMessage) -> dict[str, Any]:
    """The ``m.relates_to`` of a reply to ``event``: inside its thread when it is in one, so a
    question asked in a thread is answered there, not in the room's main timeline."""
    relates: dict[str, Any] = {"m.in_reply_to": {"event_id": event.event_id}}
    relation = relation_of(event)
    if relation.get("rel_type") == "m.thread" and isinstance(relation.get("event_id"), str):
        relates.update(rel_type="m.thread", event_id=relation["event_id"], is_falling_back=False)
    return relates


class MatrixTransport:
    """Serves the core in Matrix rooms; numbered choices stand in for Telegram's buttons."""

    platform = Platform.MATRIX

    def __init__(
        self,
        core: Core,
        settings: MatrixSettings,
        repository: Repository,
        stop: asyncio.Event,
        store_dir: Path | None = None,
    ) -> None:
        if not (settings.homeserver and settings.user_id):
            raise ConfigError(
                "BOT_MATRIX__HOMESERVER and BOT_MATRIX__USER_ID are required for Matrix"
            )
        self.core = core
        self.settings = settings
        self.repository = repository
        self.stop_event = stop
        self.user_id = settings.user_id
        # Encrypted rooms need the e2e extra (python-olm) and a place for the device's keys.
        self.store_dir = store_dir
        self.encrypted = settings.encryption and ENCRYPTION_ENABLED and store_dir is not None
        config = AsyncClientConfig(
            max_limit_exceeded=0,
            max_timeouts=0,
            store_sync_tokens=False,
            encryption_enabled=self.encrypted,
        )
        self.client = AsyncClient(
            settings.homeserver,
            settings.user_id,
            device_id=settings.device_id or "",
            store_path=str(store_dir) if self.encrypted else "",
            config=config,
        )
        self._offers = LastOffers()
        self._joined_at: dict[str, int] = {}
        self._sent_events: dict[str, str] = {}
        self._synced = False
        self._backoff = 1.0
        self._skipping_backlog = False
        self.client.add_event_callback(self._on_message, RoomMessageText)
        self.client.add_event_callback(self._on_media, RoomMessageMedia)
        self.client.add_event_callback(self._on_invite, InviteMemberEvent)
        self.client.add_event_callback(self._on_member, RoomMemberEvent)
        self.client.add_event_callback(self._on_encrypted, MegolmEvent)

    # -- lifecycle -----------------------------------------------------------------------------

    async def _login(self) -> None:
        settings = self.settings
        token = settings.access_token.get_secret_value() if settings.access_token else None
        device_id = settings.device_id
        if token is None:
            token = await self.repository.get_value(TOKEN_KEY)
            device_id = device_id or await self.repository.get_value(DEVICE_KEY)
        if token is None and settings.password is not None:
            response = await self.client.login(
                settings.password.get_secret_value(), device_name=settings.device_name
            )
            if not isinstance(response, LoginResponse):
                raise ConfigError("the Matrix homeserver refused the password login")
            token, device_id = response.access_token, response.device_id
            await self.repository.set_value(TOKEN_KEY, token)
            await self.repository.set_value(DEVICE_KEY, device_id)
        if token is None:
            raise ConfigError("set BOT_MATRIX__ACCESS_TOKEN (or BOT_MATRIX__PASSWORD) for Matrix")
        if not device_id:
            device_id = await self._device_of(token)
        if self.encrypted and self.store_dir is not None:
            await asyncio.to_thread(self.store_dir.mkdir, parents=True, exist_ok=True)
        self.client.restore_login(self.user_id, device_id, token)

    async def _device_of(self, token: str) -> str:
        """An access token without BOT_MATRIX__DEVICE_ID: the homeserver says whose device it
        is (the client's end-to-end store is kept per device)."""
        self.client.access_token = token
        try:
            response = await self.client.whoami()
        finally:
            self.client.access_token = ""
        if getattr(response, "status_code", "") == "M_UNKNOWN_TOKEN":
            raise ConfigError("the Matrix homeserver rejected BOT_MATRIX__ACCESS_TOKEN")
        if not isinstance(response, WhoamiResponse):
            raise aiohttp.ClientError(f"whoami failed: {getattr(response, 'status_code', '')}")
        if not response.device_id:
            raise ConfigError(
                "set BOT_MATRIX__DEVICE_ID: the homeserver does not say which device "
                "BOT_MATRIX__ACCESS_TOKEN belongs to"
            )
        return str(response.device_id)

    async def run(self) -> None:
        """Sync until the stop event is set. A homeserver that cannot be reached is retried with
        capped backoff (the other platforms keep running meanwhile); a rejected token stops."""
        try:
            while not self.stop_event.is_set():
                try:
                    await self._serve()
                except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                    self._synced = False
                    logger.warning(
                        "matrix.unreachable",
                        extra={"error": type(exc).__name__, "retry_in": self._backoff},
                    )
                    await self._pause()
        finally:
            await self.client.close()
        logger.info("matrix.stopped")

    async def _pause(self) -> None:
        """Wait out the current backoff (or until stopped), then double it up to the cap."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop_event.wait(), self._backoff)
        self._backoff = min(self._backoff * 2, MAX_BACKOFF)

    async def _serve(self) -> None:
        if not self.client.access_token:
            await self._login()
        since = await self.repository.get_value(NEXT_BATCH_KEY)
        # A resumed process knows no room yet: its first sync brings the full state (members,
        # power levels) along with what happened since, or a group would look like a DM.
        full_state = since is not None
        await self._share_keys()
        if since is None:
            since = await self._skip_backlog()
        while not self.stop_event.is_set():
            # Until a sync succeeded, do not long-poll: on a quiet account the first answer would
            # take the whole timeout, and /readyz would say "not ready" all that time.
            timeout = SYNC_TIMEOUT_MS if self._synced else 0
            sync = asyncio.create_task(
                self.client.sync(timeout=timeout, since=since, full_state=full_state)
            )
            stopper = asyncio.create_task(self.stop_event.wait())
            done, _ = await asyncio.wait({sync, stopper}, return_when=asyncio.FIRST_COMPLETED)
            for task in (sync, stopper):
                if task not in done:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            if sync not in done:
                return
            response = sync.result()
            self._synced = isinstance(response, SyncResponse)
            if isinstance(response, SyncResponse):
                since, full_state = response.next_batch, False
                self._backoff = 1.0
                await self.repository.set_value(NEXT_BATCH_KEY, since)
                await self._share_keys()
                continue
            if getattr(response, "status_code", "") == "M_UNKNOWN_TOKEN":
                raise ConfigError("the Matrix homeserver rejected BOT_MATRIX__ACCESS_TOKEN")
            logger.warning(
                "matrix.sync_failed", extra={"error": getattr(response, "status_code", "")}
            )
            await self._pause()

    async def _skip_backlog(self) -> str:
        """First start: take the server's position without answering anything already there."""
        self._skipping_backlog = True  # the sync runs the callbacks on the rooms' recent history
        try:
            response = await self.client.sync(timeout=0, full_state=True)
        finally:
            self._skipping_backlog = False
        if not isinstance(response, SyncResponse):
            if getattr(response, "status_code", "") == "M_UNKNOWN_TOKEN":
                raise ConfigError("the Matrix homeserver rejected BOT_MATRIX__ACCESS_TOKEN")
            raise ConfigError("the first Matrix sync failed")
        await self.repository.set_value(NEXT_BATCH_KEY, response.next_batch)
        return str(response.next_batch)

    def ready(self) -> bool:
        return self._synced

    # -- incoming ------------------------------------------------------------------------------

    def _inviter_allowed(self, sender: str) -> bool:
        allowed = self.settings.allowed_inviters
        server = sender.split(":", 1)[-1]
        if not allowed:
            return server == self.user_id.split(":", 1)[-1]
        return sender in allowed or f":{server}" in allowed or server in allowed

    async def _on_invite(self, room: MatrixRoom, event: InviteMemberEvent) -> None:
        if event.state_key != self.user_id or event.membership != "invite":
            return
        if not self._inviter_allowed(event.sender):
            await self.client.room_leave(room.room_id)
            logger.info("matrix.invite_refused", extra={"room": pseudonym(room.room_id)})
            return
        asked_to_join = int(time.time() * 1000)
        response = await self.client.join(room.room_id)
        if isinstance(response, JoinError):
            logger.warning("matrix.join_failed", extra={"room": pseudonym(room.room_id)})
            return
        self._joined_at[room.room_id] = asked_to_join
        logger.info("matrix.joined", extra={"room": pseudonym(room.room_id)})

    async def _on_member(self, room: MatrixRoom, event: RoomMemberEvent) -> None:
        if event.state_key == self.user_id:
            if event.membership == "invite" and room.room_id in self._joined_at:
                # The joined room's history shows when the bot was invited: what people said
                # after that ("hi, who heads the FPB?" typed while the bot was joining) was
                # said to the bot; only what came before the invite is the room's backlog.
                self._joined_at[room.room_id] = min(
                    self._joined_at[room.room_id], event.server_timestamp
                )
            if event.membership == "join" and room.encrypted and not self.encrypted:
                await self._say_cannot_read(room.room_id)
            if event.membership in ("leave", "ban"):
                await self.core.chat_gone(ChatRef(platform=Platform.MATRIX, chat_id=room.room_id))
            return
        if event.membership in ("leave", "ban") and room.joined_count <= 1:
            # Forget the chat's data first: a forgotten room is never synced again, so a stop
            # between the two would leave its subscriptions behind for good.
            await self.core.chat_gone(ChatRef(platform=Platform.MATRIX, chat_id=room.room_id))
            await self.client.room_leave(room.room_id)
            await self.client.room_forget(room.room_id)

    async def _on_encrypted(self, room: MatrixRoom, event: MegolmEvent) -> None:
        """An encrypted message we hold no key for."""
        if event.sender == self.user_id or self._skipping_backlog:
            return
        if self.encrypted:
            logger.info("matrix.undecryptable", extra={"room": pseudonym(room.room_id)})
        else:
            await self._say_cannot_read(room.room_id)

    async def _share_keys(self) -> None:
        """Keep our device keys published and sessions with the other devices in our rooms."""
        if not self.encrypted:
            return
        if self.client.should_upload_keys:
            await self.client.keys_upload()
        if self.client.should_query_keys:
            await self.client.keys_query()
        if self.client.should_claim_keys:
            await self.client.keys_claim(self.client.get_users_for_key_claiming())

    async def _say_cannot_read(self, room_id: str) -> None:
        text = t(self.core.settings.default_language, "room.encrypted")
        await self.client.room_send(
            room_id,
            "m.room.message",
            {"msgtype": "m.notice", "body": text},
            ignore_unverified_devices=True,
        )

    def _is_direct(self, room: MatrixRoom) -> bool:
        return int(room.member_count) <= 2

    def _addressed_text(self, room: MatrixRoom, event: RoomMessageText) -> str | None:
        """The text meant for us, or None: in group rooms only commands, mentions and replies."""
        body = strip_reply_fallback(event.body or "")
        if self._is_direct(room) or parse(body) is not None:
            return body
        content: dict[str, Any] = event.source.get("content", {})
        mentions = content.get("m.mentions", {}).get("user_ids", [])
        formatted = str(content.get("formatted_body", ""))
        names = [self.user_id]
        display_name = room.user_name(self.user_id)
        if display_name:
            names.append(display_name)
        mentioned = self.user_id in mentions or f"matrix.to/#/{self.user_id}" in formatted
        for name in names:
            pattern = re.compile(rf"(?<!\w){re.escape(name)}:?", re.IGNORECASE)
            if pattern.search(body):
                mentioned = True
                body = pattern.sub(" ", body).strip()
        relation = relation_of(event)
        in_reply = relation.get("m.in_reply_to")
        # In a thread, a plain message "replies" to the thread's latest event as a fallback for
        # old clients: that is no reply to the bot.
        replied_to = (
            in_reply.get("event_id")
            if isinstance(in_reply, dict) and relation.get("is_falling_back") is not True
            else None
        )
        if replied_to and replied_to in self._sent_events:
            mentioned = True
        return body if mentioned else None

    async def _on_message(self, room: MatrixRoom, event: RoomMessageText) -> None:
        # nio lets an exception in a callback end the whole sync: one bad event must not.
        try:
            await self._handle_message(room, event)
        except Exception:
            logger.exception("matrix.message_failed")

    def _is_new(self, room: MatrixRoom, event: RoomMessage) -> bool:
        """Someone else's message, said after the bot was invited and not in the backlog."""
        if event.sender == self.user_id or self._skipping_backlog:
            return False
        return bool(event.server_timestamp >= self._joined_at.get(room.room_id, 0))

    async def _on_media(self, room: MatrixRoom, event: RoomMessageMedia) -> None:
        """A picture, voice message or file in a direct room: say that only text is read."""
        if not self._is_new(room, event) or not self._is_direct(room):
            return
        incoming = Incoming(
            chat=ChatRef(platform=Platform.MATRIX, chat_id=room.room_id),
            sender_id=event.sender,
            text="",
            media_only=True,
            language_hint=self._offers.language(room.room_id),
        )
        try:
            for n, reply in enumerate(await self.core.handle(incoming)):
                await self._reply(room.room_id, reply, event, n)
        except Exception:
            logger.exception("matrix.message_failed")

    async def _handle_message(self, room: MatrixRoom, event: RoomMessageText) -> None:
        if not self._is_new(room, event):
            return
        if relation_of(event).get("rel_type") == "m.replace":
            return  # an edit ("* …") of a message already answered or not meant for us, as on Telegram
        text = self._addressed_text(room, event)
        if text is None:
            return
        follow_up = self._offers.resolve(room.room_id, text, by_number=True)
        text = follow_up.text
        command = parse(text)
        spec = BY_NAME.get(command.name) if command else None
        is_admin = False
        if spec is not None and spec.checks_chat_admin and room.power_levels is not None:
            is_admin = room.power_levels.get_user_level(event.sender) >= CHAT_ADMIN_POWER
        incoming = Incoming(
            chat=ChatRef(platform=Platform.MATRIX, chat_id=room.room_id),
            sender_id=event.sender,
            text=text,
            is_private=self._is_direct(room),
            is_chat_admin=is_admin,
            # Matrix clients send no language: a command or a number gets the conversation's.
            language_hint=follow_up.language or self._offers.language(room.room_id),
        )
        for n, reply in enumerate(await self.core.handle(incoming)):
            await self._reply(room.room_id, reply, event, n)

    async def _reply(self, room_id: str, reply: Reply, event: RoomMessage, n: int) -> None:
        """Answer in the room; a room that refuses the bot or keeps it waiting too long loses
        its reply, never the bot. The transaction id is fixed per reply, so a retry after a
        rate limit cannot post it twice."""
        tx_id = hashlib.sha256(f"reply:{event.event_id}:{n}".encode()).hexdigest()[:32]
        for _ in range(REPLY_ATTEMPTS):
            try:
                await self._send(room_id, reply, reply_to(event), tx_id=tx_id)
                return
            except DeliveryDeferred as exc:
                logger.warning("matrix.reply_deferred", extra={"error": str(exc)})
                await asyncio.sleep(min(max(exc.retry_after, 1.0), MAX_REPLY_WAIT))
            except (RecipientGone, aiohttp.ClientError, OSError, TimeoutError) as exc:
                logger.warning("matrix.reply_failed", extra={"error": str(exc)})
                return
        logger.warning("matrix.reply_dropped", extra={"error": "rate limited"})

    # -- outgoing ------------------------------------------------------------------------------

    def content(self, reply: Reply, relates_to: dict[str, Any] | None = None) -> dict[str, Any]:
        """An ``m.notice`` with a plain body and an HTML formatted_body, as a reply when
        ``relates_to`` (from ``reply_to``) is given."""
        reply = _with_bang_commands(reply)
        content: dict[str, Any] = {
            "msgtype": "m.notice",
            "body": reply.plain_text(numbered_choices=True),
            "format": "org.matrix.custom.html",
            "formatted_body": reply_html(reply, numbered_choices=True).replace("\n", "<br>"),
        }
        if relates_to:
            content["m.relates_to"] = relates_to
        return content

    async def _send(
        self,
        room_id: str,
        reply: Reply,
        relates_to: dict[str, Any] | None = None,
        tx_id: str | None = None,
    ) -> None:
        response = await self.client.room_send(
            room_id,
            "m.room.message",
            self.content(reply, relates_to),
            tx_id=tx_id,
            ignore_unverified_devices=True,
        )
        if isinstance(response, ErrorResponse):
            self._raise_for(response)
        if isinstance(response, RoomSendResponse):
            self._sent_events[response.event_id] = room_id
            if len(self._sent_events) > 10_000:
                self._sent_events.pop(next(iter(self._sent_events)))
        self._offers.remember(room_id, reply)
        for attachment in reply.attachments:
            upload, _ = await self.client.upload(
                io.BytesIO(attachment.content),
                content_type=attachment.mime_type,
                filename=attachment.filename,
                filesize=len(attachment.content),
            )
            if isinstance(upload, UploadResponse):
                await self.client.room_send(
                    room_id,
                    "m.room.message",
                    {"msgtype": "m.file", "body": attachment.filename, "url": upload.content_uri},
                    ignore_unverified_devices=True,
                )

    @staticmethod
    def _raise_for(response: ErrorResponse) -> None:
        code = str(response.status_code or "")
        if code == "M_LIMIT_EXCEEDED":
            retry = getattr(response, "retry_after_ms", None) or 1000
            raise DeliveryDeferred(retry / 1000, "matrix rate limit")
        if code in ("M_FORBIDDEN", "M_NOT_FOUND", "M_UNKNOWN_ROOM"):
            raise RecipientGone(code)
        raise DeliveryDeferred(0.0, code or "matrix error")

    async def send(self, chat: ChatRef, reply: Reply) -> None:
        """Deliver an alert. The transaction id makes a resend after a crash idempotent on the
        homeserver: the same alert to the same room is stored once."""
        tx_id = hashlib.sha256(f"alert:{chat.chat_id}:{reply.plain_text()}".encode()).hexdigest()[
            :32
        ]
        await self._send(chat.chat_id, reply, tx_id=tx_id)


def _with_bang_commands(reply: Reply) -> Reply:
    """The commands a reply names, as typed on Matrix ("!privacy"); the source's own words
    (quotes) stay verbatim."""
    paragraphs = tuple(
        p if p.style is Style.QUOTE else p.model_copy(update={"text": with_prefix(p.text, "!")})
        for p in reply.paragraphs
    )
    return reply.model_copy(update={"paragraphs": paragraphs})
