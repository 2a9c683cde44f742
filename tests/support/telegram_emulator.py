"""A Telegram Bot API emulator for tests: an aiohttp server on 127.0.0.1 that the real
python-telegram-bot talks HTTP to (``ApplicationBuilder().base_url(emulator.base_url)``).

It implements the methods the bot uses, records every call, queues updates that tests inject
(messages, button presses, inline queries, raw updates) for ``getUpdates`` with offsets and
long polling, and can inject faults (429 with retry_after, 403, 400, 5xx, slow responses).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import re
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiohttp import web

JSON_PARAMS = {
    "reply_markup",
    "entities",
    "results",
    "commands",
    "link_preview_options",
    "reply_parameters",
    "allowed_updates",
    "scope",
    "caption_entities",
    "button",
}
INT_PARAMS = {"chat_id", "user_id", "message_id", "reply_to_message_id", "offset", "limit"}
BOT_ID = 999000


@dataclass
class Call:
    """One request the bot made: method, decoded parameters, and whether it succeeded."""

    method: str
    params: dict[str, Any]
    token: str
    time: float
    ok: bool = True
    files: dict[str, bytes] = field(default_factory=dict)


@dataclass
class Fault:
    error_code: int
    description: str
    retry_after: int | None = None
    migrate_to_chat_id: int | None = None
    times: int = 1
    chat_id: int | None = None


class TelegramEmulator:
    """The fake Bot API server; see the module docstring."""

    def __init__(
        self, token: str = "123456:TEST-token", bot_username: str = "AdvocacyTestBot"
    ) -> None:
        self.token = token
        self.bot_username = bot_username
        self.calls: list[Call] = []
        self.timeout_delay = 3.0
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids: dict[int, itertools.count[int]] = {}
        self._last_bot_message: dict[int, dict[str, Any]] = {}
        self._new_update = asyncio.Event()
        self._new_call = asyncio.Event()
        self._faults: dict[str, list[Fault]] = {}
        self._dead_chats: dict[int, Fault] = {}
        self._fault_rate = 0.0
        self._fault_kinds: tuple[str, ...] = ()
        self._rng = random.Random(0)
        self._latency = 0.0
        self._admins: dict[int, list[int]] = {}
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    async def start(self) -> None:
        app = web.Application(client_max_size=50 * 2**20)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> TelegramEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- what tests inject ---------------------------------------------------------------------

    def _chat(
        self, chat_id: int, chat_type: str, title: str | None, user: dict[str, Any]
    ) -> dict[str, Any]:
        chat: dict[str, Any] = {"id": chat_id, "type": chat_type}
        if chat_type == "private":
            chat["first_name"] = user["first_name"]
        else:
            chat["title"] = title or "Group"
        return chat

    def _next_message_id(self, chat_id: int) -> int:
        return next(self._message_ids.setdefault(chat_id, itertools.count(1)))

    def push_update(self, update: dict[str, Any]) -> None:
        """Queue a raw update (it gets an update_id if it has none)."""
        update.setdefault("update_id", next(self._update_ids))
        self._updates.append(update)
        self._new_update.set()

    def send_message(
        self,
        text: str,
        *,
        user_id: int = 1001,
        chat_id: int | None = None,
        chat_type: str = "private",
        first_name: str = "Alice",
        username: str | None = None,
        language_code: str | None = "en",
        reply_to_bot: bool = False,
        entities: list[dict[str, Any]] | None = None,
        chat_title: str | None = None,
        is_bot: bool = False,
        queue: bool = True,
    ) -> dict[str, Any]:
        """A user's text message; commands and @mentions get the entities Telegram would add."""
        chat_id = user_id if chat_id is None else chat_id
        user: dict[str, Any] = {"id": user_id, "is_bot": is_bot, "first_name": first_name}
        if username:
            user["username"] = username
        if language_code:
            user["language_code"] = language_code
        if entities is None:
            entities = []
            command = re.match(r"/[A-Za-z0-9_]+(@[A-Za-z0-9_]+)?", text)
            if command:
                entities.append(
                    {"type": "bot_command", "offset": 0, "length": len(command.group(0))}
                )
            for mention in re.finditer(r"@[A-Za-z0-9_]{5,}", text):
                if not (command and mention.start() < command.end()):
                    entities.append(
                        {
                            "type": "mention",
                            "offset": mention.start(),
                            "length": len(mention.group(0)),
                        }
                    )
        message: dict[str, Any] = {
            "message_id": self._next_message_id(chat_id),
            "date": int(time.time()),
            "chat": self._chat(chat_id, chat_type, chat_title, user),
            "from": user,
            "text": text,
        }
        if entities:
            message["entities"] = entities
        if reply_to_bot:
            previous = self._last_bot_message.get(chat_id) or {
                "message_id": self._next_message_id(chat_id),
                "date": int(time.time()),
                "chat": message["chat"],
                "from": self._bot_user(),
                "text": "earlier",
            }
            message["reply_to_message"] = previous
        update = {"update_id": next(self._update_ids), "message": message}
        if queue:
            self.push_update(update)
        return update

    def press_button(
        self,
        callback_data: str,
        *,
        user_id: int = 1001,
        chat_id: int | None = None,
        message_id: int | None = None,
    ) -> dict[str, Any]:
        chat_id = user_id if chat_id is None else chat_id
        message = self._last_bot_message.get(chat_id) or {
            "message_id": message_id or 1,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private", "first_name": "Alice"},
            "from": self._bot_user(),
            "text": "…",
        }
        if message_id is not None:
            message = {**message, "message_id": message_id}
        update = {
            "update_id": next(self._update_ids),
            "callback_query": {
                "id": str(next(self._update_ids) * 7919),
                "from": {
                    "id": user_id,
                    "is_bot": False,
                    "first_name": "Alice",
                    "language_code": "en",
                },
                "chat_instance": f"ci-{chat_id}",
                "message": message,
                "data": callback_data,
            },
        }
        self.push_update(update)
        return update

    def inline_query(
        self, query: str, *, user_id: int = 1001, language_code: str = "en"
    ) -> dict[str, Any]:
        update = {
            "update_id": next(self._update_ids),
            "inline_query": {
                "id": str(next(self._update_ids) * 104729),
                "from": {
                    "id": user_id,
                    "is_bot": False,
                    "first_name": "Alice",
                    "language_code": language_code,
                },
                "query": query,
                "offset": "",
            },
        }
        self.push_update(update)
        return update

    def set_chat_admins(self, chat_id: int, user_ids: list[int]) -> None:
        self._admins[chat_id] = list(user_ids)

    # -- faults --------------------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        *,
        error_code: int,
        description: str,
        retry_after: int | None = None,
        migrate_to_chat_id: int | None = None,
        times: int = 1,
        chat_id: int | None = None,
    ) -> None:
        self._faults.setdefault(method, []).append(
            Fault(error_code, description, retry_after, migrate_to_chat_id, times, chat_id)
        )

    def fail_chat(
        self,
        chat_id: int,
        error_code: int = 403,
        description: str = "Forbidden: bot was blocked by the user",
    ) -> None:
        self._dead_chats[chat_id] = Fault(error_code, description)

    def set_fault_rate(
        self, rate: float, *, seed: int = 0, kinds: tuple[str, ...] = ("429", "500", "timeout")
    ) -> None:
        self._fault_rate, self._fault_kinds, self._rng = rate, kinds, random.Random(seed)

    def set_latency(self, seconds: float) -> None:
        self._latency = seconds

    # -- what tests read -----------------------------------------------------------------------

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def sent_texts(self, chat_id: int | None = None) -> list[str]:
        return [
            str(c.params.get("text", ""))
            for c in self.calls
            if c.ok
            and c.method in ("sendMessage", "editMessageText")
            and (chat_id is None or int(c.params.get("chat_id", 0)) == chat_id)
        ]

    async def wait_for(
        self, method: str, count: int = 1, timeout: float = 5.0, predicate: Any = None
    ) -> list[Call]:
        """Wait until ``count`` successful calls of ``method`` (matching ``predicate``) exist."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            found = [
                c for c in self.calls_to(method) if c.ok and (predicate is None or predicate(c))
            ]
            if len(found) >= count:
                return found
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                seen = [(c.method, str(c.params.get("text", ""))[:60]) for c in self.calls[-15:]]
                raise TimeoutError(
                    f"{len(found)}/{count} {method} calls after {timeout} s; last calls: {seen}"
                )
            self._new_call.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_call.wait(), remaining)

    async def post_webhook(
        self, url: str, update: dict[str, Any], secret_token: str | None
    ) -> int:
        headers = (
            {"X-Telegram-Bot-Api-Secret-Token": secret_token} if secret_token is not None else {}
        )
        async with httpx.AsyncClient(trust_env=False) as client:
            response = await client.post(url, json=update, headers=headers, timeout=10)
        return response.status_code

    # -- the server ----------------------------------------------------------------------------

    def _bot_user(self) -> dict[str, Any]:
        return {
            "id": BOT_ID,
            "is_bot": True,
            "first_name": "Advocacy bot",
            "username": self.bot_username,
        }

    def _record(self, call: Call) -> None:
        self.calls.append(call)
        self._new_call.set()

    async def _handle(self, request: web.Request) -> web.Response:
        token, method = request.match_info["token"], request.match_info["method"]
        params: dict[str, Any] = {}
        files: dict[str, bytes] = {}
        if request.can_read_body:
            if request.content_type == "application/json":
                params = await request.json()
            else:
                form = await request.post()
                for key, value in form.items():
                    if isinstance(value, web.FileField):
                        files[key] = value.file.read()
                        params[key] = value.filename
                    else:
                        params[key] = value
        params.update({k: v for k, v in request.query.items() if k not in params})
        for key, value in list(params.items()):
            if key in INT_PARAMS and isinstance(value, str) and re.fullmatch(r"-?\d+", value):
                params[key] = int(value)
            if key in JSON_PARAMS and isinstance(value, str):
                with contextlib.suppress(json.JSONDecodeError):
                    params[key] = json.loads(value)
        call = Call(method, params, token, time.monotonic(), files=files)
        if token != self.token:
            call.ok = False
            self._record(call)
            return self._error(401, "Unauthorized")
        if self._latency:
            await asyncio.sleep(self._latency)
        fault = self._fault_for(method, params)
        if fault is not None:
            call.ok = False
            self._record(call)
            if fault.error_code == 0:
                await asyncio.sleep(self.timeout_delay)
                return self._error(504, "Gateway Timeout")
            return self._error(
                fault.error_code, fault.description, fault.retry_after, fault.migrate_to_chat_id
            )
        handler = getattr(self, "_m_" + method, None)
        if handler is None:
            call.ok = False
            self._record(call)
            return self._error(404, "Not Found: method not found")
        if method == "getUpdates":
            self._record(call)
            return web.json_response({"ok": True, "result": await handler(params)})
        try:
            result = handler(params)
        except _ApiError as exc:
            call.ok = False
            self._record(call)
            return self._error(exc.code, exc.description)
        self._record(call)
        return web.json_response({"ok": True, "result": result})

    def _fault_for(self, method: str, params: dict[str, Any]) -> Fault | None:
        chat_id = _int(params.get("chat_id"))
        if (
            method in ("sendMessage", "sendDocument", "editMessageText")
            and chat_id in self._dead_chats
        ):
            return self._dead_chats[chat_id]
        for fault in self._faults.get(method, []):
            if fault.times > 0 and (fault.chat_id is None or fault.chat_id == chat_id):
                fault.times -= 1
                return fault
        if method == "sendMessage" and self._fault_rate and self._rng.random() < self._fault_rate:
            kind = self._rng.choice(self._fault_kinds)
            if kind == "429":
                return Fault(429, "Too Many Requests: retry after 1", retry_after=1)
            if kind == "timeout":
                return Fault(0, "timeout")
            return Fault(500, "Internal Server Error")
        return None

    @staticmethod
    def _error(
        code: int, description: str, retry_after: int | None = None, migrate_to: int | None = None
    ) -> web.Response:
        body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
        parameters: dict[str, int] = {}
        if retry_after is not None:
            parameters["retry_after"] = retry_after
        if migrate_to is not None:
            parameters["migrate_to_chat_id"] = migrate_to
        if parameters:
            body["parameters"] = parameters
        return web.json_response(body, status=code)

    # -- methods -------------------------------------------------------------------------------

    def _m_getMe(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            **self._bot_user(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": True,
        }

    async def _m_getUpdates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = _int(params.get("offset")) or 0
        limit = _int(params.get("limit")) or 100
        timeout = float(params.get("timeout") or 0)
        if offset:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        if not self._updates and timeout > 0:
            self._new_update.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_update.wait(), timeout)
        return self._updates[:limit]

    def _message(self, params: dict[str, Any], text: str | None) -> dict[str, Any]:
        chat_id = _int(params.get("chat_id"))
        if chat_id is None:
            raise _ApiError(400, "Bad Request: chat_id is empty")
        message: dict[str, Any] = {
            "message_id": self._next_message_id(chat_id),
            "date": int(time.time()),
            "chat": {
                "id": chat_id,
                "type": "private" if chat_id > 0 else "supergroup",
                "first_name": "Alice",
                "title": "Group",
            },
            "from": self._bot_user(),
        }
        if text is not None:
            if not text:
                raise _ApiError(400, "Bad Request: message text is empty")
            if len(text) > 4096:
                raise _ApiError(400, "Bad Request: message is too long")
            message["text"] = text
        if isinstance(params.get("reply_markup"), dict):
            message["reply_markup"] = params["reply_markup"]
        self._last_bot_message[chat_id] = message
        return message

    def _m_sendMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._message(params, str(params.get("text", "")))

    def _m_sendDocument(self, params: dict[str, Any]) -> dict[str, Any]:
        message = self._message(params, None)
        message["document"] = {
            "file_id": "doc1",
            "file_unique_id": "u1",
            "file_name": str(params.get("document")),
        }
        return message

    def _m_editMessageText(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._message(params, str(params.get("text", "")))

    def _m_editMessageReplyMarkup(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._message(params, "…")

    def _m_getChatMember(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id, user_id = _int(params.get("chat_id")), _int(params.get("user_id"))
        status = "administrator" if user_id in self._admins.get(chat_id or 0, []) else "member"
        member: dict[str, Any] = {
            "status": status,
            "user": {"id": user_id, "is_bot": False, "first_name": "U"},
        }
        if status == "administrator":
            member.update(
                {
                    "can_be_edited": False,
                    "is_anonymous": False,
                    "can_manage_chat": True,
                    "can_delete_messages": True,
                    "can_manage_video_chats": True,
                    "can_restrict_members": True,
                    "can_promote_members": False,
                    "can_change_info": True,
                    "can_invite_users": True,
                    "can_post_stories": False,
                    "can_edit_stories": False,
                    "can_delete_stories": False,
                }
            )
        return member

    def _m_getChat(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = _int(params.get("chat_id")) or 0
        return {
            "id": chat_id,
            "type": "private" if chat_id > 0 else "supergroup",
            "accent_color_id": 0,
            "max_reaction_count": 1,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
            },
        }

    def _ok(self, params: dict[str, Any]) -> bool:
        return True

    _m_deleteWebhook = _m_setWebhook = _m_setMyCommands = _m_deleteMyCommands = _ok
    _m_answerCallbackQuery = _m_answerInlineQuery = _m_sendChatAction = _ok
    _m_leaveChat = _m_deleteMessage = _m_logOut = _m_close = _ok

    def _m_getMyCommands(self, params: dict[str, Any]) -> list[dict[str, str]]:
        return []

    def _m_getWebhookInfo(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }


class _ApiError(Exception):
    def __init__(self, code: int, description: str) -> None:
        self.code, self.description = code, description


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
