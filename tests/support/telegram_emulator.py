"""A Telegram Bot API emulator for tests.

An aiohttp server on 127.0.0.1 (random free port) that the *real* python-telegram-bot talks HTTP
to, via ``ApplicationBuilder().token(TOKEN).base_url(emulator.base_url)``. PTB then POSTs to
``{base_url}{token}/{method}`` with form-encoded (or, with uploads, multipart) fields in which
every non-string value is a JSON string; the emulator answers ``{"ok": true, "result": ...}`` or
``{"ok": false, "error_code": ..., "description": ..., "parameters": {...}}`` as Telegram does.

What it offers a test:

* every request is recorded as a :class:`Call` with its parameters decoded (``reply_markup``,
  ``entities``, ``results`` … as objects, ``chat_id`` as an int); :meth:`TelegramEmulator.wait_for`
  waits for calls, :meth:`~TelegramEmulator.sent_texts` lists what the bot said;
* updates are injected with :meth:`~TelegramEmulator.send_message`,
  :meth:`~TelegramEmulator.press_button`, :meth:`~TelegramEmulator.inline_query` (and a few
  more), or raw with :meth:`~TelegramEmulator.push_update`, and served by ``getUpdates`` with
  Telegram's offset, limit, ``allowed_updates`` and long-poll semantics (a second concurrent
  long poll ends the first with 409 Conflict, as on Telegram);
* the methods a bot typically uses, with Telegram's validation where bots often get it wrong:
  HTML / MarkdownV2 parse errors, the 4096-character limit, ``callback_data`` over 64 bytes,
  editing a message into itself ("message is not modified"), answering a query twice …;
* fault injection: :meth:`~TelegramEmulator.fail_next`, :meth:`~TelegramEmulator.fail_chat`,
  :meth:`~TelegramEmulator.set_fault_rate`, :meth:`~TelegramEmulator.set_latency`.

Deliberate simplifications: message ids are per chat; any numeric ``chat_id`` is a chat the bot
may write to (private if positive, a group or, at -10**12 and below, a supergroup) unless a
fault says otherwise; webhook URLs may be plain http; legacy ``Markdown`` is parsed loosely.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import html
import json
import random
import re
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final

from aiohttp import ClientConnectorError, ClientSession, ClientTimeout, web

JSON = dict[str, Any]

BOT_ID: Final = 999000
DEFAULT_USER_ID: Final = 1001
DEFAULT_GROUP_ID: Final = -200_001
DEFAULT_SUPERGROUP_ID: Final = -1_000_000_200_001
DEFAULT_CHANNEL_ID: Final = -1_000_000_300_001
SUPERGROUP_IDS_BELOW: Final = -1_000_000_000_000

MESSAGE_LIMIT: Final = 4096
CAPTION_LIMIT: Final = 1024
CALLBACK_DATA_LIMIT: Final = 64  # bytes
CALLBACK_ANSWER_LIMIT: Final = 200
INLINE_RESULTS_LIMIT: Final = 50


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


UPDATE_TYPES: Final = _words(
    "message edited_message channel_post edited_channel_post business_connection "
    "business_message edited_business_message deleted_business_messages message_reaction "
    "message_reaction_count inline_query chosen_inline_result callback_query shipping_query "
    "pre_checkout_query purchased_paid_media poll poll_answer my_chat_member chat_member "
    "chat_join_request chat_boost removed_chat_boost"
)
"""Update types Telegram knows; ``allowed_updates`` filters only these (forged ones pass)."""
NOT_SENT_BY_DEFAULT: Final = frozenset(
    {"chat_member", "message_reaction", "message_reaction_count"}
)

CHAT_ACTIONS: Final = _words(
    "typing upload_photo record_video upload_video record_voice upload_voice upload_document "
    "choose_sticker find_location record_video_note upload_video_note"
)
BUTTON_ACTIONS: Final = _words(
    "url callback_data web_app login_url switch_inline_query switch_inline_query_current_chat "
    "switch_inline_query_chosen_chat copy_text callback_game pay"
)
STRING_PARAMS: Final = _words(
    "text caption parse_mode callback_query_id inline_query_id inline_message_id next_offset "
    "switch_pm_text switch_pm_parameter action url secret_token ip_address language_code "
    "file_id query emoji business_connection_id message_effect_id name title description "
    "short_description custom_title document photo audio video animation voice sticker "
    "thumbnail question explanation address phone_number first_name last_name vcard payload "
    "currency invite_link error_message"
)
"""Parameters that are strings even when they look like JSON (``text="42"`` stays ``"42"``)."""

FAULT_KINDS: Final = frozenset({"429", "500", "502", "timeout"})

NOT_MODIFIED: Final = (
    "message is not modified: specified new message content and reply markup "
    "are exactly the same as a content and reply markup of the current message"
)
QUERY_INVALID: Final = "query is too old and response timeout expired or query ID is invalid"


# -- records -----------------------------------------------------------------------------------


@dataclass
class UploadedFile:
    """A file the bot uploaded (multipart), as the emulator received it."""

    filename: str
    content_type: str
    data: bytes


@dataclass
class Call:
    """One request the bot made.

    ``params`` are decoded: JSON-valued fields (``reply_markup``, ``entities``, ``commands``,
    ``results`` …) are objects, numbers and booleans are Python values, string parameters such as
    ``text`` are left as sent (an uploaded file's parameter is its file name; the bytes are in
    ``files``). ``time`` is :func:`time.monotonic` at arrival. ``ok`` is False when the emulator
    answered with an error (``status`` and ``error`` then say which); ``result`` is what it
    returned otherwise.
    """

    method: str
    params: dict[str, Any]
    token: str
    time: float
    ok: bool = True
    status: int = 200
    error: str | None = None
    result: Any = None
    files: dict[str, UploadedFile] = field(default_factory=dict)

    @property
    def chat_id(self) -> Any:
        return self.params.get("chat_id")

    @property
    def text(self) -> str | None:
        text = self.params.get("text")
        return None if text is None else str(text)

    def summary(self) -> str:
        """One line for failure reports."""
        outcome = "ok" if self.ok else f"{self.status} {self.error}"
        shown = {k: v for k, v in self.params.items() if k in ("chat_id", "offset", "timeout")}
        if self.text is not None:
            shown["text"] = self.text[:60]
        detail = " ".join(f"{k}={v!r}" for k, v in shown.items())
        return f"{self.method} [{outcome}] {detail}".rstrip()


class ApiError(Exception):
    """An error answer of the Bot API."""

    def __init__(
        self,
        error_code: int,
        description: str,
        *,
        retry_after: int | None = None,
        migrate_to_chat_id: int | None = None,
    ) -> None:
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.retry_after = retry_after
        self.migrate_to_chat_id = migrate_to_chat_id

    def body(self) -> JSON:
        body: JSON = {"ok": False, "error_code": self.error_code, "description": self.description}
        parameters: JSON = {}
        if self.retry_after is not None:
            parameters["retry_after"] = self.retry_after
        if self.migrate_to_chat_id is not None:
            parameters["migrate_to_chat_id"] = self.migrate_to_chat_id
        if parameters:
            body["parameters"] = parameters
        return body


def bad_request(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


@dataclass
class _Fault:
    """An injected failure; ``error`` None means "the response does not come in time"."""

    error: ApiError | None
    method: str | None = None
    chat_id: int | None = None
    times: int = 1


# -- text: UTF-16 offsets, detected entities, parse modes ---------------------------------------


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of Telegram's entity offsets."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


_COMMAND = re.compile(r"(?<![\w/@])/[A-Za-z0-9_]{1,32}(?:@[A-Za-z][A-Za-z0-9_]{2,31})?(?![\w/@])")
_MENTION = re.compile(r"(?<![\w@/])@[A-Za-z][A-Za-z0-9_]{3,31}(?![\w@])")
_HASHTAG = re.compile(r"(?<![\w#])#\w*[^\W\d]\w*")
_URL = re.compile(r"\bhttps?://[^\s<>\"']*[^\s<>\"'.,;:!?)\]]")


def detect_entities(text: str) -> list[JSON]:
    """The entities Telegram adds to a user's message: commands, mentions, hashtags, URLs."""
    found: list[tuple[int, int, str]] = []
    for pattern, kind in (
        (_COMMAND, "bot_command"),
        (_MENTION, "mention"),
        (_HASHTAG, "hashtag"),
        (_URL, "url"),
    ):
        found.extend((m.start(), m.end(), kind) for m in pattern.finditer(text))
    entities: list[JSON] = []
    taken = 0
    for start, end, kind in sorted(found):
        if start < taken:  # inside an earlier one (a #fragment of a URL, say)
            continue
        offset = utf16_len(text[:start])
        entities.append({"type": kind, "offset": offset, "length": utf16_len(text[start:end])})
        taken = end
    return entities


class EntityParseError(ValueError):
    """The text does not parse in its parse_mode; the message is Telegram's."""


def _parse_error(message: str, source: str, index: int) -> EntityParseError:
    return EntityParseError(f"{message} at byte offset {len(source[:index].encode())}")


class _TextBuilder:
    """Plain text plus entities, with offsets counted in UTF-16 code units."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.entities: list[JSON] = []

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.length += utf16_len(text)

    def entity(self, kind: str, start: int, **extra: Any) -> None:
        if self.length > start:
            self.entities.append(
                {"type": kind, "offset": start, "length": self.length - start, **extra}
            )

    def build(self) -> tuple[str, list[JSON]]:
        """The text with leading and trailing whitespace trimmed, as Telegram stores it."""
        text = "".join(self.parts)
        stripped = text.strip()
        lead = utf16_len(text[: len(text) - len(text.lstrip())])
        size = utf16_len(stripped)
        entities = []
        for entity in sorted(self.entities, key=lambda e: (e["offset"], -e["length"])):
            start = max(entity["offset"] - lead, 0)
            end = min(entity["offset"] + entity["length"] - lead, size)
            if end > start:
                entities.append({**entity, "offset": start, "length": end - start})
        return stripped, entities


_HTML_TAGS: Final = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "a": "text_link",
    "tg-emoji": "custom_emoji",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
}
_HTML_TEXT = re.compile(r"[^<&]+")
_HTML_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|lt|gt|amp|quot);")
_HTML_TAG_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]*")
_HTML_ATTR = re.compile(r"""\s*([A-Za-z][\w-]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?""")

_OpenTag = tuple[str, int, dict[str, str]]  # name, UTF-16 start, attributes


def parse_html(source: str) -> tuple[str, list[JSON]]:
    """Telegram's ``parse_mode="HTML"``: the plain text and its entities, or EntityParseError."""
    out = _TextBuilder()
    stack: list[_OpenTag] = []
    i = 0
    while i < len(source):
        if plain := _HTML_TEXT.match(source, i):
            out.add(plain.group())
            i = plain.end()
        elif source[i] == "&":
            entity = _HTML_ENTITY.match(source, i)
            out.add(html.unescape(entity.group()) if entity else "&")
            i = entity.end() if entity else i + 1
        else:
            i = _html_tag(out, stack, source, i)
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    return out.build()


def _html_tag(out: _TextBuilder, stack: list[_OpenTag], source: str, index: int) -> int:
    """The tag starting at ``index`` (a "<"); returns the index after it."""
    closing = source.startswith("</", index)
    if not closing:
        name_match = _HTML_TAG_NAME.match(source, index + 1)
        name = name_match.group().lower() if name_match else ""
        if name not in _HTML_TAGS:
            raise _parse_error(f'Unsupported start tag "{name}"', source, index)
    end = source.find(">", index)
    if end < 0:
        raise _parse_error(f"Unclosed {'end' if closing else 'start'} tag", source, index)
    if closing:
        _close_html_tag(out, stack, source[index + 2 : end].strip().lower(), source, index)
    else:
        attributes = source[index + 1 + len(name) : end]
        stack.append(_open_html_tag(out, name, attributes, source, index))
    return end + 1


def _open_html_tag(
    out: _TextBuilder, name: str, attributes: str, source: str, index: int
) -> _OpenTag:
    attrs: dict[str, str] = {}
    for attr in _HTML_ATTR.finditer(attributes.rstrip().removesuffix("/")):
        value = next((v for v in attr.groups()[1:] if v is not None), "")
        attrs[attr.group(1).lower()] = html.unescape(value)
    if name == "span" and attrs.get("class") != "tg-spoiler":
        raise _parse_error('Tag "span" must have class "tg-spoiler"', source, index)
    if name == "tg-emoji" and not attrs.get("emoji-id"):
        raise _parse_error('Tag "tg-emoji" must have attribute "emoji-id"', source, index)
    return name, out.length, attrs


def _close_html_tag(
    out: _TextBuilder, stack: list[_OpenTag], name: str, source: str, index: int
) -> None:
    if not stack:
        raise _parse_error("Unexpected end tag", source, index)
    opened, start, attrs = stack.pop()
    if opened != name:
        offset = len(source[:index].encode())
        raise EntityParseError(
            f'Unmatched end tag at byte offset {offset}, expected "</{opened}>", found "</{name}>"'
        )
    css_class = attrs.get("class", "")
    if name == "code" and stack and stack[-1][0] == "pre":  # <pre><code> is one entity
        if css_class.startswith("language-"):
            stack[-1][2]["language"] = css_class.removeprefix("language-")
    elif name == "a":
        if attrs.get("href"):
            out.entity("text_link", start, url=attrs["href"])
    elif name == "pre":
        out.entity(
            "pre", start, **({"language": attrs["language"]} if "language" in attrs else {})
        )
    elif name == "blockquote":
        out.entity("expandable_blockquote" if "expandable" in attrs else "blockquote", start)
    elif name == "tg-emoji":
        out.entity("custom_emoji", start, custom_emoji_id=attrs["emoji-id"])
    else:
        out.entity(_HTML_TAGS[name], start)


_MD_RESERVED: Final = frozenset("_*[]()~`>#+-=|{}.!")
_MD_ENTITY_NAMES: Final = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "link": "TextUrl",
}


def parse_markdown(source: str, *, v2: bool = True) -> tuple[str, list[JSON]]:
    """Telegram's ``MarkdownV2`` (or, with ``v2=False``, loosely the legacy ``Markdown``)."""
    out = _TextBuilder()
    stack: list[tuple[str, int, int]] = []  # kind, UTF-16 start, source index
    quote_start: int | None = None
    i, n = 0, len(source)
    while i < n:
        ch = source[i]
        if v2 and (i == 0 or source[i - 1] == "\n"):  # a line starting with ">" is quoted
            if ch == ">":
                quote_start = out.length if quote_start is None else quote_start
                i += 1
                continue
            if quote_start is not None:
                out.entity("blockquote", quote_start)
                quote_start = None
        if ch == "\\" and i + 1 < n and (v2 or source[i + 1] in "_*`["):
            out.add(source[i + 1])
            i += 2
        elif ch == "`":
            i = _markdown_code(out, source, i)
        elif ch == "[" or (v2 and source.startswith("![", i)):
            stack.append(("link", out.length, i))
            i += 1 if ch == "[" else 2
        elif ch == "]" and stack and stack[-1][0] == "link":
            i = _markdown_link_url(out, stack.pop(), source, i)
        elif marker := _markdown_marker(source, i, v2):
            kind, width = marker
            if stack and stack[-1][0] == kind:
                out.entity(kind, stack.pop()[1])
            elif any(opened == kind for opened, _, _ in stack):
                raise _parse_error(f"Can't find end of {_MD_ENTITY_NAMES[kind]} entity", source, i)
            else:
                stack.append((kind, out.length, i))
            i += width
        elif v2 and ch in _MD_RESERVED:
            raise EntityParseError(
                f"Character '{ch}' is reserved and must be escaped with the preceding '\\'"
            )
        else:
            out.add(ch)
            i += 1
    if quote_start is not None:
        out.entity("blockquote", quote_start)
    if stack:
        kind, _, index = stack[-1]
        what = f"{_MD_ENTITY_NAMES[kind]} entity" if v2 else "the entity starting"
        raise _parse_error(f"Can't find end of {what}", source, index)
    return out.build()


def _markdown_marker(source: str, i: int, v2: bool) -> tuple[str, int] | None:
    if v2 and source.startswith("||", i):
        return "spoiler", 2
    if v2 and source.startswith("__", i):
        return "underline", 2
    kind = {"*": "bold", "_": "italic", "~": "strikethrough" if v2 else ""}.get(source[i])
    return (kind, 1) if kind else None


def _markdown_code(out: _TextBuilder, source: str, i: int) -> int:
    """Inline code or a ``` block starting at ``i``; returns the index after it."""
    fence = "```" if source.startswith("```", i) else "`"
    j = i + len(fence)
    language = ""
    if fence == "```":
        newline = source.find("\n", j)
        first_line = source[j:newline] if newline >= 0 else ""
        if re.fullmatch(r"[\w+#.-]+", first_line):
            language, j = first_line, newline + 1
    start = out.length
    while j < len(source):
        if source[j] == "\\" and j + 1 < len(source):
            out.add(source[j + 1])
            j += 2
        elif source.startswith(fence, j):
            if fence == "`":
                out.entity("code", start)
            else:
                out.entity("pre", start, **({"language": language} if language else {}))
            return j + len(fence)
        else:
            out.add(source[j])
            j += 1
    raise _parse_error(
        f"Can't find end of {'Pre' if fence == '```' else 'Code'} entity", source, i
    )


def _markdown_link_url(
    out: _TextBuilder, opened: tuple[str, int, int], source: str, i: int
) -> int:
    """``](url)`` closing the link ``opened``; returns the index after it."""
    _, start, opened_at = opened
    if not source.startswith("(", i + 1):
        raise _parse_error("Can't find end of TextUrl entity", source, opened_at)
    j, url = i + 2, []
    while j < len(source) and source[j] != ")":
        if source[j] == "\\" and j + 1 < len(source):
            j += 1
        url.append(source[j])
        j += 1
    if j >= len(source):
        raise _parse_error("Can't find end of a URL", source, i + 1)
    target = "".join(url)
    if source[opened_at] == "!":
        out.entity("custom_emoji", start, custom_emoji_id=target.partition("id=")[2])
    else:
        out.entity("text_link", start, url=target)
    return j + 1


def parse_formatted(text: str, parse_mode: str | None) -> tuple[str, list[JSON]]:
    """Apply a parse_mode the way Telegram does; ApiError (400) on bad markup."""
    mode = (parse_mode or "").lower()
    try:
        if mode == "":
            builder = _TextBuilder()
            builder.add(text)
            return builder.build()
        if mode == "html":
            return parse_html(text)
        if mode in ("markdownv2", "markdown"):
            return parse_markdown(text, v2=mode == "markdownv2")
    except EntityParseError as exc:
        raise bad_request(f"can't parse entities: {exc}") from None
    raise bad_request("unsupported parse_mode")


# -- the emulator ------------------------------------------------------------------------------

_Handler = Callable[["TelegramEmulator", Call], Awaitable[Any]]
_METHODS: dict[str, tuple[str, _Handler]] = {}


def _api(name: str) -> Callable[[_Handler], _Handler]:
    """Register a Bot API method (Telegram matches method names case-insensitively)."""

    def register(handler: _Handler) -> _Handler:
        _METHODS[name.lower()] = (name, handler)
        return handler

    return register


class TelegramEmulator:
    """The fake Bot API server; see the module docstring. Use ``async with`` or start/stop."""

    def __init__(
        self,
        token: str = "123456:TEST-token",
        bot_username: str = "AdvocacyTestBot",
        *,
        bot_name: str = "Advocacy bot",
    ) -> None:
        self.token = token
        self.bot_username = bot_username
        self.bot_name = bot_name
        self.calls: list[Call] = []
        self.timeout_delay = 3.0
        """Seconds a "timeout" fault holds the response (longer than the client waits)."""
        self.timeout_delivers = False
        """Whether a message whose response timed out is delivered all the same."""
        self.port = 0
        self._started_at = time.monotonic()
        self._mark = 0
        # updates
        self._updates: list[JSON] = []
        self._next_update_id = 1
        self._allowed_updates: list[str] | None = None
        self._poll_generation = 0
        self._polls_waiting = 0
        self._webhook: JSON = {}
        # what Telegram knows
        self._chats: dict[int, JSON] = {}
        self._users: dict[int, JSON] = {}
        self._messages: dict[int, dict[int, JSON]] = {}
        self._last_message_id: dict[int, int] = {}
        self._queries: dict[str, bool] = {}  # callback/inline query id -> answered
        self._next_query_id = 1
        self._admins: dict[int, list[int]] = {}
        self._creators: dict[int, int] = {}
        self._left_chats: set[int] = set()
        self._commands: dict[tuple[str, str], list[JSON]] = {}
        self._files: dict[str, tuple[UploadedFile, str]] = {}  # file_id -> (file, file_path)
        # faults
        self._faults: list[_Fault] = []
        self._dead_chats: dict[int, ApiError] = {}
        self._fault_rate = 0.0
        self._fault_kinds: tuple[str, ...] = ()
        self._rng = random.Random(0)
        self._latency = 0.0
        # the server
        self._runner: web.AppRunner | None = None
        self._handling = 0  # requests whose handler has not returned yet
        self._changed = asyncio.Event()
        self._closing = asyncio.Event()

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """For ``ApplicationBuilder().base_url(...)`` / ``Bot(base_url=...)``."""
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        """For ``base_file_url(...)``: downloads of files the bot uploaded."""
        return f"http://127.0.0.1:{self.port}/file/bot"

    async def start(self) -> None:
        if self._runner is not None:
            return
        self._changed, self._closing = asyncio.Event(), asyncio.Event()
        app = web.Application(client_max_size=64 * 2**20, middlewares=[self._count_handling])
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        app.router.add_route("*", "/{tail:.*}", self._handle_unknown_path)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
            await web.SockSite(runner, sock).start()
        except BaseException:
            sock.close()
            await runner.cleanup()
            raise
        self._runner = runner
        self._started_at = time.monotonic()

    async def stop(self) -> None:
        """Stop serving; long polls and injected delays under way end at once."""
        if self._runner is None:
            return
        self._closing.set()
        self._notify()
        runner, self._runner = self._runner, None
        await runner.cleanup()

    async def __aenter__(self) -> TelegramEmulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- injecting updates -------------------------------------------------------------------

    def push_update(self, update: JSON) -> None:
        """Queue a raw update for getUpdates; it gets a fresh ``update_id`` unless it has one.

        Query ids in it become answerable. Nothing is validated: forged updates welcome.
        """
        if isinstance(update.get("update_id"), int):
            self._next_update_id = max(self._next_update_id, update["update_id"] + 1)
        else:
            update["update_id"] = self._take_update_id()
        for kind in ("callback_query", "inline_query"):
            query = update.get(kind)
            if isinstance(query, dict) and isinstance(query.get("id"), str):
                self._queries.setdefault(query["id"], False)
        self._updates.append(update)
        self._notify()

    def send_message(
        self,
        text: str,
        *,
        user_id: int = DEFAULT_USER_ID,
        chat_id: int | None = None,
        chat_type: str | None = None,
        first_name: str = "Alice",
        username: str | None = None,
        language_code: str | None = "en",
        reply_to_bot: bool = False,
        reply_to_message_id: int | None = None,
        entities: list[JSON] | None = None,
        chat_title: str | None = None,
        is_bot: bool = False,
        queue: bool = True,
    ) -> JSON:
        """A user's text message, as an update (queued unless ``queue=False``).

        ``chat_id`` defaults to the user's private chat (or, given ``chat_type``, a default
        group, supergroup or channel); ``chat_type`` to the chat's known type, else private for
        positive ids and a group/supergroup for negative ones. Commands (``/cmd``,
        ``/cmd@Bot``), @mentions, hashtags and URLs get the entities Telegram adds, unless
        ``entities`` is given. ``reply_to_bot`` makes it a reply to the bot's last message in
        the chat, ``reply_to_message_id`` to that message. In a channel it is a
        ``channel_post`` without a sender.
        """
        if chat_type is None and chat_id is not None:
            chat_type = self._known_chat_type(chat_id)
        chat_id = _default_chat_id(chat_type, user_id) if chat_id is None else chat_id
        user = self._remember_user(user_id, first_name, username, language_code, is_bot)
        chat = self._remember_chat(chat_id, chat_type, chat_title, user)
        message: JSON = {
            "message_id": self._take_message_id(chat_id),
            "date": int(time.time()),
            "chat": chat,
            "text": text,
        }
        if chat["type"] == "channel":
            message["sender_chat"] = chat
        else:
            message["from"] = user
        entities = detect_entities(text) if entities is None else entities
        if entities:
            message["entities"] = entities
        replied = self._reply_target(chat_id, reply_to_bot, reply_to_message_id)
        if replied is not None:
            message["reply_to_message"] = replied
        self._store(message)
        kind = "channel_post" if chat["type"] == "channel" else "message"
        return self._update(kind, message, queue)

    def press_button(
        self,
        callback_data: str,
        *,
        user_id: int = DEFAULT_USER_ID,
        chat_id: int | None = None,
        message_id: int | None = None,
        first_name: str = "Alice",
        username: str | None = None,
        language_code: str | None = "en",
        queue: bool = True,
    ) -> JSON:
        """A press of an inline button: a callback_query update whose message is the bot's last
        message in the chat (or message ``message_id``) as it is now; made up if there is none.
        """
        chat_id = user_id if chat_id is None else chat_id
        user = self._remember_user(user_id, first_name, username, language_code, False)
        if chat_id not in self._chats:
            self._remember_chat(chat_id, None, None, user)
        message = self._bot_message_for_button(chat_id, message_id)
        query = {
            "id": self._take_query_id(),
            "from": user,
            "chat_instance": str((chat_id * 2654435761) % 2**62),
            "message": copy.deepcopy(message),
            "data": callback_data,
        }
        return self._update("callback_query", query, queue)

    def inline_query(
        self,
        query: str,
        *,
        user_id: int = DEFAULT_USER_ID,
        first_name: str = "Alice",
        username: str | None = None,
        language_code: str | None = "en",
        offset: str = "",
        chat_type: str | None = "sender",
        queue: bool = True,
    ) -> JSON:
        """An inline query (``@Bot query`` typed in a chat of ``chat_type``)."""
        user = self._remember_user(user_id, first_name, username, language_code, False)
        inline: JSON = {
            "id": self._take_query_id(),
            "from": user,
            "query": query,
            "offset": offset,
        }
        if chat_type:
            inline["chat_type"] = chat_type
        return self._update("inline_query", inline, queue)

    def bot_membership(
        self,
        chat_id: int,
        new_status: str,
        *,
        old_status: str = "member",
        user_id: int = DEFAULT_USER_ID,
        chat_type: str | None = None,
        queue: bool = True,
    ) -> JSON:
        """A my_chat_member update: the bot was added, removed, blocked ("kicked") … by
        ``user_id``. While it is "left" or "kicked", sending to the chat fails with 403."""
        user = self._users.get(user_id) or self._remember_user(user_id, "Alice", None, "en", False)
        chat = self._remember_chat(chat_id, chat_type, None, user)
        change = {
            "chat": chat,
            "from": user,
            "date": int(time.time()),
            "old_chat_member": self._member(chat_id, BOT_ID, old_status),
            "new_chat_member": self._member(chat_id, BOT_ID, new_status),
        }
        if new_status in ("left", "kicked"):
            self._left_chats.add(chat_id)
        else:
            self._left_chats.discard(chat_id)
        return self._update("my_chat_member", change, queue)

    def migrate_chat(
        self, chat_id: int, new_chat_id: int, *, user_id: int = DEFAULT_USER_ID
    ) -> list[JSON]:
        """A group became a supergroup: the two service messages Telegram sends (queued)."""
        user = self._users.get(user_id) or self._remember_user(user_id, "Alice", None, "en", False)
        old = self._remember_chat(chat_id, "group", None, user)
        new = self._remember_chat(new_chat_id, "supergroup", old["title"], user)
        service = [
            (old, "migrate_to_chat_id", new_chat_id),
            (new, "migrate_from_chat_id", chat_id),
        ]
        updates = []
        for chat, key, value in service:
            message = {
                "message_id": self._take_message_id(chat["id"]),
                "date": int(time.time()),
                "chat": chat,
                "from": user,
                key: value,
            }
            self._store(message)
            updates.append(self._update("message", message, True))
        return updates

    @property
    def pending_updates(self) -> list[JSON]:
        """Updates not yet confirmed by a getUpdates offset."""
        return list(self._updates)

    async def wait_consumed(self, timeout: float = 5.0) -> None:
        """Wait until the bot has confirmed every queued update."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._updates:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(
                    f"{len(self._updates)} update(s) still unconfirmed after {timeout} s\n"
                    + self.dump()
                )
            await self._wait_change(remaining)

    async def wait_idle(self, timeout: float = 5.0) -> None:
        """After the bot's process is gone: wait until every connection it had is closed and
        every request it had sent is answered or dropped, so :attr:`calls` is final for it.

        (A live client keeps its connections open: this would then wait for the timeout.)
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            server = self._runner.server if self._runner is not None else None
            connections = len(server.connections) if server is not None else 0
            if not connections and not self._handling:
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(
                    f"{connections} connection(s) open, {self._handling} request(s) under way "
                    f"after {timeout} s\n" + self.dump()
                )
            await self._wait_change(min(remaining, 0.02))

    # -- configuration -----------------------------------------------------------------------

    def set_chat_admins(
        self, chat_id: int, user_ids: Iterable[int], *, creator: int | None = None
    ) -> None:
        """Whom getChatMember / getChatAdministrators report as administrators (and owner)."""
        self._admins[chat_id] = [u for u in user_ids if u != creator]
        if creator is None:
            self._creators.pop(chat_id, None)
        else:
            self._creators[chat_id] = creator

    # -- fault injection ---------------------------------------------------------------------

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
        """The next ``times`` calls of ``method`` (to ``chat_id``, if given) fail this way."""
        error = ApiError(
            error_code, description, retry_after=retry_after, migrate_to_chat_id=migrate_to_chat_id
        )
        self._faults.append(_Fault(error, method, chat_id, times))

    def fail_chat(
        self,
        chat_id: int,
        error_code: int = 403,
        description: str = "Forbidden: bot was blocked by the user",
    ) -> None:
        """Every call addressed to ``chat_id`` fails this way from now on."""
        self._dead_chats[chat_id] = ApiError(error_code, description)

    def set_fault_rate(
        self, rate: float, *, seed: int = 0, kinds: Iterable[str] = ("429", "500", "timeout")
    ) -> None:
        """A share ``rate`` of sendMessage calls fails at random (reproducibly, given ``seed``):
        "429" (retry_after=1), "500", "502", or "timeout" (the response is held for
        :attr:`timeout_delay` seconds, then a 504; see :attr:`timeout_delivers`)."""
        chosen = tuple(kinds)
        if not chosen or set(chosen) - FAULT_KINDS:
            raise ValueError(f"fault kinds must be among {sorted(FAULT_KINDS)}, not {chosen}")
        self._fault_rate, self._fault_kinds, self._rng = rate, chosen, random.Random(seed)

    def set_latency(self, seconds: float) -> None:
        """Every request waits this long before it is handled."""
        self._latency = seconds

    def clear_faults(self) -> None:
        """Undo fail_next, fail_chat, set_fault_rate and set_latency."""
        self._faults.clear()
        self._dead_chats.clear()
        self._fault_rate = 0.0
        self._latency = 0.0

    # -- inspection --------------------------------------------------------------------------

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def sent_texts(self, chat_id: int | None = None) -> list[str]:
        """The ``text`` of every successful sendMessage / editMessageText, in order."""
        return [
            str(c.params.get("text", ""))
            for c in self.calls
            if c.ok
            and c.method in ("sendMessage", "editMessageText")
            and (chat_id is None or c.params.get("chat_id") == chat_id)
        ]

    def mark(self) -> int:
        """From now on :meth:`wait_for` counts only calls made after this point."""
        self._mark = len(self.calls)
        return self._mark

    async def wait_for(
        self,
        method: str,
        count: int = 1,
        timeout: float = 5.0,
        predicate: Callable[[Call], bool] | None = None,
        *,
        since: int | None = None,
        include_failed: bool = False,
    ) -> list[Call]:
        """Wait until at least ``count`` successful calls of ``method`` matching ``predicate``
        were recorded since the last :meth:`mark` (or call index ``since``); returns them all.

        getUpdates is recorded when it arrives, every other method once it is answered.
        Raises TimeoutError with a report of recent calls otherwise.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        start = self._mark if since is None else since
        while True:
            found = [
                c
                for c in self.calls[start:]
                if c.method == method
                and (c.ok or include_failed)
                and (predicate is None or predicate(c))
            ]
            if len(found) >= count:
                return found
            remaining = deadline - loop.time()
            if remaining <= 0:
                what = f"{count} {'' if include_failed else 'successful '}{method} call(s)"
                if predicate is not None:
                    what += f" matching {getattr(predicate, '__name__', 'the predicate')}"
                raise TimeoutError(
                    f"waited {timeout} s for {what}; got {len(found)}\n" + self.dump()
                )
            await self._wait_change(remaining)

    def dump(self, last: int = 20) -> str:
        """Recent calls and the update queue, for failure messages."""
        lines = [f"last {min(last, len(self.calls))} of {len(self.calls)} calls:"]
        lines += [
            f"  +{c.time - self._started_at:7.3f}s {c.summary()}" for c in self.calls[-last:]
        ]
        ids = [u.get("update_id") for u in self._updates]
        lines.append(
            f"unconfirmed updates: {ids or 'none'}; long polls waiting: {self._polls_waiting}; "
            f"webhook: {self._webhook.get('url') or 'none'}"
        )
        return "\n".join(lines)

    # -- webhook helper ----------------------------------------------------------------------

    async def post_webhook(
        self, url: str, update: JSON, secret_token: str | None, *, connect_for: float = 3.0
    ) -> int:
        """POST ``update`` to the bot's webhook as Telegram would; returns the HTTP status.

        Like Telegram, it retries while the connection is refused (for up to ``connect_for``
        seconds): PTB registers its webhook before its server listens.
        """
        headers = {} if secret_token is None else {"X-Telegram-Bot-Api-Secret-Token": secret_token}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + connect_for
        async with ClientSession(timeout=ClientTimeout(total=10)) as session:
            while True:
                try:
                    async with session.post(url, json=update, headers=headers) as response:
                        await response.read()
                        return response.status
                except ClientConnectorError:
                    if loop.time() >= deadline:
                        raise
                await asyncio.sleep(0.05)

    # -- HTTP --------------------------------------------------------------------------------

    @web.middleware
    async def _count_handling(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        self._handling += 1
        try:
            return await handler(request)
        finally:
            self._handling -= 1
            self._notify()

    async def _handle(self, request: web.Request) -> web.Response:
        """Every ``/bot<token>/<method>`` request."""
        arrived = time.monotonic()
        token, name = request.match_info["token"], request.match_info["method"]
        method, handler = _METHODS.get(name.lower(), (name, None))
        try:
            params, files = await _read_params(request)
        except ApiError as exc:
            return self._fail(Call(method, {}, token, arrived), exc)
        call = Call(method, params, token, arrived, files=files)
        if token != self.token:
            return self._fail(call, ApiError(401, "Unauthorized"))
        if handler is None:
            return self._fail(call, ApiError(404, "Not Found: method not found"))
        if self._latency:
            await self._sleep(self._latency)
        fault = self._take_fault(method, params)
        if fault is not None and fault.error is not None:
            return self._fail(call, fault.error)
        if fault is not None:  # a timeout: the client gives up before the answer comes
            if not self.timeout_delivers:
                timeout = ApiError(504, "Gateway Timeout")
                self._fail(call, timeout)
                await self._sleep(self.timeout_delay)
                return web.json_response(timeout.body(), status=timeout.error_code)
            await self._sleep(self.timeout_delay)
        early = method == "getUpdates"
        if early:
            self._record(call)  # on arrival: tests wait for the bot to be polling
        try:
            result = await handler(self, call)
        except ApiError as exc:
            error = exc
            if early and (request.transport is None or request.transport.is_closing()):
                error = ApiError(
                    499, "Client Closed Request: the bot had abandoned this long poll"
                )
            return self._fail(call, error, recorded=early)
        call.result = result
        if not early:
            self._record(call)
        return web.json_response({"ok": True, "result": result})

    async def _handle_file(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response(ApiError(401, "Unauthorized").body(), status=401)
        for upload, file_path in self._files.values():
            if file_path == request.match_info["path"]:
                return web.Response(body=upload.data, content_type=upload.content_type)
        return web.json_response(ApiError(404, "Not Found").body(), status=404)

    async def _handle_unknown_path(self, request: web.Request) -> web.Response:
        return web.json_response(ApiError(404, "Not Found").body(), status=404)

    def _fail(self, call: Call, error: ApiError, *, recorded: bool = False) -> web.Response:
        call.ok, call.status, call.error = False, error.error_code, error.description
        if recorded:
            self._notify()
        else:
            self._record(call)
        return web.json_response(error.body(), status=error.error_code)

    def _record(self, call: Call) -> None:
        self.calls.append(call)
        self._notify()

    def _notify(self) -> None:
        """Wake everything waiting for a change (a call, an update, shutdown)."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait_change(self, timeout: float) -> None:
        changed = self._changed
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await changed.wait()

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but not past :meth:`stop`."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._closing.wait()

    def _take_fault(self, method: str, params: JSON) -> _Fault | None:
        chat_id = params.get("chat_id")
        if chat_id in self._dead_chats:
            return _Fault(self._dead_chats[chat_id])
        for fault in self._faults:
            if fault.method == method and fault.chat_id in (None, chat_id):
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        if method == "sendMessage" and self._fault_rate and self._rng.random() < self._fault_rate:
            kind = self._rng.choice(self._fault_kinds)
            if kind == "timeout":
                return _Fault(None)
            if kind == "429":
                return _Fault(ApiError(429, "Too Many Requests: retry after 1", retry_after=1))
            description = "Internal Server Error" if kind == "500" else "Bad Gateway"
            return _Fault(ApiError(int(kind), description))
        return None

    # -- state -------------------------------------------------------------------------------

    def _bot_user(self) -> JSON:
        return {
            "id": BOT_ID,
            "is_bot": True,
            "first_name": self.bot_name,
            "username": self.bot_username,
        }

    def _take_update_id(self) -> int:
        self._next_update_id += 1
        return self._next_update_id - 1

    def _take_query_id(self) -> str:
        query_id = str(4_000_000_000_000_000 + self._next_query_id)
        self._next_query_id += 1
        self._queries[query_id] = False
        return query_id

    def _take_message_id(self, chat_id: int) -> int:
        self._last_message_id[chat_id] = self._last_message_id.get(chat_id, 0) + 1
        return self._last_message_id[chat_id]

    def _update(self, kind: str, payload: JSON, queue: bool) -> JSON:
        update = {"update_id": self._take_update_id(), kind: payload}
        if queue:
            self.push_update(update)
        return update

    def _remember_user(
        self,
        user_id: int,
        first_name: str,
        username: str | None,
        language_code: str | None,
        is_bot: bool,
    ) -> JSON:
        user: JSON = {"id": user_id, "is_bot": is_bot, "first_name": first_name}
        if username:
            user["username"] = username
        if language_code:
            user["language_code"] = language_code
        self._users[user_id] = user
        return user

    def _known_chat_type(self, chat_id: int) -> str:
        known = self._chats.get(chat_id)
        if known is not None:
            return str(known["type"])
        if chat_id > 0:
            return "private"
        return "supergroup" if chat_id <= SUPERGROUP_IDS_BELOW else "group"

    def _remember_chat(
        self, chat_id: int, chat_type: str | None, title: str | None, user: JSON
    ) -> JSON:
        chat_type = chat_type or self._known_chat_type(chat_id)
        chat: JSON = {"id": chat_id, "type": chat_type}
        if chat_type == "private":
            chat["first_name"] = user["first_name"]
            if user.get("username"):
                chat["username"] = user["username"]
        else:
            known_title = self._chats.get(chat_id, {}).get("title")
            chat["title"] = title or known_title or f"Test {chat_type}"
        self._chats[chat_id] = chat
        return chat

    def _chat(self, chat_id: int) -> JSON:
        """The chat object of a chat the bot addresses, known or made up."""
        if chat_id not in self._chats:
            chat_type = self._known_chat_type(chat_id)
            chat: JSON = {"id": chat_id, "type": chat_type}
            if chat_type == "private":
                chat["first_name"] = self._users.get(chat_id, {}).get("first_name", "User")
            else:
                chat["title"] = f"Test {chat_type}"
            self._chats[chat_id] = chat
        return self._chats[chat_id]

    def _store(self, message: JSON) -> None:
        self._messages.setdefault(message["chat"]["id"], {})[message["message_id"]] = message

    def _bot_messages(self, chat_id: int) -> list[JSON]:
        messages = self._messages.get(chat_id, {}).values()
        return [m for m in messages if m.get("from", {}).get("id") == BOT_ID]

    def _new_bot_message(
        self, chat_id: int, message_id: int | None = None, text: str | None = "…"
    ) -> JSON:
        message: JSON = {
            "message_id": message_id or self._take_message_id(chat_id),
            "date": int(time.time()),
            "chat": self._chat(chat_id),
            "from": self._bot_user(),
        }
        if text is not None:
            message["text"] = text
        self._store(message)
        return message

    def _reply_target(
        self, chat_id: int, reply_to_bot: bool, message_id: int | None
    ) -> JSON | None:
        if message_id is not None:
            target = self._messages.get(chat_id, {}).get(message_id)
            if target is None:
                raise ValueError(f"no message {message_id} in chat {chat_id} to reply to")
        elif reply_to_bot:
            previous = self._bot_messages(chat_id)
            target = previous[-1] if previous else self._new_bot_message(chat_id)
        else:
            return None
        return _without_reply(target)

    def _bot_message_for_button(self, chat_id: int, message_id: int | None) -> JSON:
        if message_id is not None:
            found = self._messages.get(chat_id, {}).get(message_id)
            return found if found is not None else self._new_bot_message(chat_id, message_id)
        previous = self._bot_messages(chat_id)
        return previous[-1] if previous else self._new_bot_message(chat_id)

    def _member(self, chat_id: int, user_id: int, status: str | None = None) -> JSON:
        user = self._bot_user() if user_id == BOT_ID else self._users.get(user_id)
        user = user or {"id": user_id, "is_bot": False, "first_name": f"User {user_id}"}
        if status is None:
            if self._creators.get(chat_id) == user_id:
                status = "creator"
            elif user_id in self._admins.get(chat_id, []):
                status = "administrator"
            elif user_id == BOT_ID and chat_id in self._left_chats:
                status = "left"
            else:
                status = "member"
        member: JSON = {"status": status, "user": user}
        if status == "creator":
            member["is_anonymous"] = False
        elif status == "administrator":
            member.update(
                can_be_edited=False,
                is_anonymous=False,
                can_manage_chat=True,
                can_delete_messages=True,
                can_manage_video_chats=True,
                can_restrict_members=True,
                can_promote_members=False,
                can_change_info=True,
                can_invite_users=True,
                can_post_stories=False,
                can_edit_stories=False,
                can_delete_stories=False,
                can_pin_messages=True,
            )
        elif status == "kicked":
            member["until_date"] = 0
        return member

    # -- validation shared by methods --------------------------------------------------------

    def _target_chat(self, params: JSON) -> int:
        """The chat a sending method addresses; raises what Telegram would."""
        chat_id = params.get("chat_id")
        if chat_id is None or chat_id == "":
            raise bad_request("chat_id is empty")
        if isinstance(chat_id, str):
            by_username = {c.get("username"): i for i, c in self._chats.items()}
            if not (chat_id.startswith("@") and chat_id[1:] in by_username):
                raise bad_request("chat not found")
            chat_id = by_username[chat_id[1:]]
        if not isinstance(chat_id, int) or isinstance(chat_id, bool) or chat_id == 0:
            raise bad_request("chat not found")
        if chat_id in self._left_chats:
            kind = self._chat(chat_id)["type"]
            if kind == "private":
                raise ApiError(403, "Forbidden: bot was blocked by the user")
            raise ApiError(403, f"Forbidden: bot is not a member of the {kind} chat")
        return chat_id

    def _any_chat(self, params: JSON) -> int:
        """The chat a reading method (getChat, getChatMember …) asks about."""
        chat_id = params.get("chat_id")
        if isinstance(chat_id, str):
            return self._target_chat(params)
        if not isinstance(chat_id, int) or chat_id == 0:
            raise bad_request("chat not found")
        return chat_id

    def _message_ref(self, params: JSON, *, action: str) -> JSON | None:
        """The stored message a method edits/deletes, or None for an inline message."""
        if params.get("inline_message_id"):
            return None
        chat_id = self._target_chat(params)
        message_id = params.get("message_id")
        if not isinstance(message_id, int):
            raise bad_request("message identifier is not specified")
        message = self._messages.get(chat_id, {}).get(message_id)
        if message is None:
            raise bad_request(f"message to {action} not found")
        return message

    def _formatted(self, params: JSON, key: str) -> tuple[str, list[JSON]]:
        """Text (or caption) with its entities: parsed, or as given in ``(caption_)entities``."""
        source = params.get(key)
        source = "" if source is None else str(source)
        given = params.get("entities" if key == "text" else "caption_entities")
        if isinstance(given, list) and not params.get("parse_mode"):
            return source, given
        return parse_formatted(source, params.get("parse_mode"))

    def _reply_to(self, chat_id: int, params: JSON) -> JSON | None:
        """The message a sent message replies to (``reply_parameters`` or the old fields)."""
        reply = params.get("reply_parameters")
        if not isinstance(reply, dict):
            reply = {
                "message_id": params.get("reply_to_message_id"),
                "allow_sending_without_reply": params.get("allow_sending_without_reply"),
            }
        if not isinstance(reply.get("message_id"), int):
            return None
        target = self._messages.get(reply.get("chat_id", chat_id), {}).get(reply["message_id"])
        if target is not None:
            return _without_reply(target)
        if reply.get("allow_sending_without_reply") is True:
            return None
        raise bad_request("message to be replied not found")

    # -- Bot API methods ---------------------------------------------------------------------

    @_api("getMe")
    async def _get_me(self, call: Call) -> JSON:
        return {
            **self._bot_user(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": True,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    @_api("logOut")
    async def _log_out(self, call: Call) -> bool:
        return True

    @_api("close")
    async def _close(self, call: Call) -> bool:
        return True

    @_api("getUpdates")
    async def _get_updates(self, call: Call) -> list[JSON]:
        params = call.params
        if self._webhook.get("url"):
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        limit = params.get("limit")
        limit = min(max(limit, 1), 100) if isinstance(limit, int) else 100
        timeout = params.get("timeout")
        timeout = max(float(timeout), 0.0) if isinstance(timeout, int | float) else 0.0
        if isinstance(params.get("allowed_updates"), list):
            self._allowed_updates = [str(a) for a in params["allowed_updates"]] or None
        self._poll_generation += 1
        generation = self._poll_generation
        self._confirm(params.get("offset"))
        self._notify()  # an older long poll, if any, ends with a conflict
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self._polls_waiting += 1
        try:
            while True:
                if generation != self._poll_generation:
                    raise ApiError(
                        409,
                        "Conflict: terminated by other getUpdates request; "
                        "make sure that only one bot instance is running",
                    )
                ready = self._deliverable()
                remaining = deadline - loop.time()
                if ready or remaining <= 0 or self._closing.is_set():
                    return ready[:limit]
                await self._wait_change(remaining)
        finally:
            self._polls_waiting -= 1

    def _confirm(self, offset: Any) -> None:
        """Forget updates below ``offset`` (or, if negative, all but the last -offset)."""
        if not isinstance(offset, int) or offset == 0:
            return
        if offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        else:
            self._updates = self._updates[offset:]

    def _deliverable(self) -> list[JSON]:
        """The queue, without updates of types the bot did not ask for (those are dropped)."""
        if self._allowed_updates is None:
            unwanted = NOT_SENT_BY_DEFAULT
        else:
            unwanted = UPDATE_TYPES - set(self._allowed_updates)
        self._updates = [u for u in self._updates if _update_type(u) not in unwanted]
        return list(self._updates)

    @_api("setWebhook")
    async def _set_webhook(self, call: Call) -> bool:
        params = call.params
        url = str(params.get("url") or "")
        if url and not re.match(r"https?://[^/\s]+", url):
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise bad_request("secret token contains unallowed characters")
        if params.get("drop_pending_updates") is True:
            self._updates.clear()
        if isinstance(params.get("allowed_updates"), list):
            self._allowed_updates = [str(a) for a in params["allowed_updates"]] or None
        self._webhook = {"url": url, "max_connections": params.get("max_connections", 40)}
        return True

    @_api("deleteWebhook")
    async def _delete_webhook(self, call: Call) -> bool:
        if call.params.get("drop_pending_updates") is True:
            self._updates.clear()
        self._webhook = {}
        return True

    @_api("getWebhookInfo")
    async def _get_webhook_info(self, call: Call) -> JSON:
        info: JSON = {
            "url": self._webhook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if info["url"]:
            info["max_connections"] = self._webhook["max_connections"]
            if self._allowed_updates is not None:
                info["allowed_updates"] = self._allowed_updates
        return info

    @_api("setMyCommands")
    async def _set_my_commands(self, call: Call) -> bool:
        commands = call.params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise bad_request("can't parse commands JSON object")
        for command in commands:
            if not isinstance(command, dict):
                raise bad_request("can't parse BotCommand")
            if not re.fullmatch(r"[a-z0-9_]{1,32}", str(command.get("command", ""))):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        self._commands[_commands_key(call.params)] = commands
        return True

    @_api("getMyCommands")
    async def _get_my_commands(self, call: Call) -> list[JSON]:
        return self._commands.get(_commands_key(call.params), [])

    @_api("deleteMyCommands")
    async def _delete_my_commands(self, call: Call) -> bool:
        self._commands.pop(_commands_key(call.params), None)
        return True

    @_api("sendMessage")
    async def _send_message(self, call: Call) -> JSON:
        params = call.params
        chat_id = self._target_chat(params)
        text, entities = self._formatted(params, "text")
        if not text:
            raise bad_request("message text is empty")
        if len(text) > MESSAGE_LIMIT:
            raise bad_request("message is too long")
        markup = _inline_markup(params.get("reply_markup"))
        reply_to = self._reply_to(chat_id, params)
        message = self._new_bot_message(chat_id, text=text)
        _set_content(message, text=text, entities=entities, markup=markup)
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        return message

    @_api("sendDocument")
    async def _send_document(self, call: Call) -> JSON:
        params = call.params
        chat_id = self._target_chat(params)
        document = self._document(params.get("document"), call.files.get("document"))
        caption, entities = self._formatted(params, "caption")
        if len(caption) > CAPTION_LIMIT:
            raise bad_request("message caption is too long")
        markup = _inline_markup(params.get("reply_markup"))
        reply_to = self._reply_to(chat_id, params)
        message = self._new_bot_message(chat_id, text=None)
        message["document"] = document
        if caption:
            message["caption"] = caption
        if caption and entities:
            message["caption_entities"] = entities
        if markup is not None:
            message["reply_markup"] = markup
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        return message

    def _document(self, value: Any, upload: UploadedFile | None) -> JSON:
        """The Document object for an upload, a known file_id or a URL."""
        if upload is not None:
            file_id = self._store_file(upload)
        elif isinstance(value, str) and value in self._files:
            file_id, upload = value, self._files[value][0]
        elif isinstance(value, str) and re.match(r"https?://", value):
            name = value.rstrip("/").rsplit("/", 1)[-1] or "file"
            upload = UploadedFile(name, "application/octet-stream", b"")
            file_id = self._store_file(upload)
        elif value:
            raise bad_request("wrong file identifier/HTTP URL specified")
        else:
            raise bad_request("there is no document in the request")
        return {
            "file_id": file_id,
            "file_unique_id": "u" + file_id,
            "file_name": upload.filename,
            "mime_type": upload.content_type,
            "file_size": len(upload.data),
        }

    def _store_file(self, upload: UploadedFile) -> str:
        number = len(self._files) + 1
        file_id = f"BQACAgIAAx{number:08d}"
        suffix = upload.filename.rpartition(".")[2] if "." in upload.filename else "bin"
        self._files[file_id] = (upload, f"documents/file_{number}.{suffix}")
        return file_id

    @_api("getFile")
    async def _get_file(self, call: Call) -> JSON:
        file_id = call.params.get("file_id")
        if not isinstance(file_id, str) or file_id not in self._files:
            raise bad_request("invalid file_id")
        upload, path = self._files[file_id]
        return {
            "file_id": file_id,
            "file_unique_id": "u" + file_id,
            "file_size": len(upload.data),
            "file_path": path,
        }

    @_api("editMessageText")
    async def _edit_message_text(self, call: Call) -> JSON | bool:
        params = call.params
        message = self._message_ref(params, action="edit")
        text, entities = self._formatted(params, "text")
        if not text:
            raise bad_request("message text is empty")
        if len(text) > MESSAGE_LIMIT:
            raise bad_request("message is too long")
        markup = _inline_markup(params.get("reply_markup"))
        if message is None:
            return True
        if "text" not in message:
            raise bad_request("there is no text in the message to edit")
        return self._edit(message, text=text, entities=entities, markup=markup)

    @_api("editMessageReplyMarkup")
    async def _edit_message_reply_markup(self, call: Call) -> JSON | bool:
        message = self._message_ref(call.params, action="edit")
        markup = _inline_markup(call.params.get("reply_markup"))
        if message is None:
            return True
        return self._edit(
            message, text=message.get("text"), entities=message.get("entities"), markup=markup
        )

    def _edit(
        self, message: JSON, *, text: str | None, entities: list[JSON] | None, markup: JSON | None
    ) -> JSON:
        """Edit text and markup (an edit without reply_markup removes the keyboard)."""
        if message.get("from", {}).get("id") != BOT_ID:
            raise bad_request("message can't be edited")
        before = (message.get("text"), message.get("entities") or [], message.get("reply_markup"))
        if before == (text, entities or [], markup):
            raise bad_request(NOT_MODIFIED)
        edited = {**message, "edit_date": int(time.time())}
        _set_content(edited, text=text, entities=entities, markup=markup)
        self._store(edited)
        return edited

    @_api("deleteMessage")
    async def _delete_message(self, call: Call) -> bool:
        message = self._message_ref(call.params, action="delete")
        if message is not None:
            del self._messages[message["chat"]["id"]][message["message_id"]]
        return True

    @_api("answerCallbackQuery")
    async def _answer_callback_query(self, call: Call) -> bool:
        if len(str(call.params.get("text", ""))) > CALLBACK_ANSWER_LIMIT:
            raise bad_request("MESSAGE_TOO_LONG")
        self._answer_query(call.params.get("callback_query_id"))
        return True

    @_api("answerInlineQuery")
    async def _answer_inline_query(self, call: Call) -> bool:
        results = call.params.get("results")
        if not isinstance(results, list):
            raise bad_request("can't parse inline query results JSON object")
        if len(results) > INLINE_RESULTS_LIMIT:
            raise bad_request("RESULTS_TOO_MUCH")
        seen: set[str] = set()
        for result in results:
            _check_inline_result(result, seen)
        self._answer_query(call.params.get("inline_query_id"))
        return True

    def _answer_query(self, query_id: Any) -> None:
        """A query can be answered once, and only if Telegram sent it."""
        if not isinstance(query_id, str) or self._queries.get(query_id, True):
            raise bad_request(QUERY_INVALID)
        self._queries[query_id] = True

    @_api("sendChatAction")
    async def _send_chat_action(self, call: Call) -> bool:
        self._target_chat(call.params)
        if call.params.get("action") not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        return True

    @_api("getChat")
    async def _get_chat(self, call: Call) -> JSON:
        chat_id = self._any_chat(call.params)
        return {
            **self._chat(chat_id),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }

    @_api("getChatMember")
    async def _get_chat_member(self, call: Call) -> JSON:
        chat_id = self._any_chat(call.params)
        user_id = call.params.get("user_id")
        if not isinstance(user_id, int):
            raise bad_request("invalid user_id specified")
        return self._member(chat_id, user_id)

    @_api("getChatAdministrators")
    async def _get_chat_administrators(self, call: Call) -> list[JSON]:
        chat_id = self._any_chat(call.params)
        if self._chat(chat_id)["type"] == "private":
            raise bad_request("there are no administrators in the private chat")
        owner = [self._creators[chat_id]] if chat_id in self._creators else []
        return [self._member(chat_id, u) for u in owner + self._admins.get(chat_id, [])]

    @_api("leaveChat")
    async def _leave_chat(self, call: Call) -> bool:
        chat_id = self._target_chat(call.params)
        if self._chat(chat_id)["type"] == "private":
            raise bad_request("chat member status can't be changed in private chats")
        self._left_chats.add(chat_id)
        return True


# -- helpers -----------------------------------------------------------------------------------


async def _read_params(request: web.Request) -> tuple[JSON, dict[str, UploadedFile]]:
    """The request's parameters (query string, form, multipart or JSON body), decoded."""
    raw: JSON = dict(request.query)
    files: dict[str, UploadedFile] = {}
    if request.body_exists:
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise bad_request("can't parse JSON") from None
            if not isinstance(body, dict):
                raise bad_request("parameters must be a JSON object")
            raw.update(body)
        else:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    with value.file:
                        data = value.file.read()
                    files[key] = UploadedFile(value.filename, value.content_type, data)
                    raw[key] = value.filename
                else:
                    raw[key] = value
    return {key: _decode(key, value) for key, value in raw.items()}, files


def _decode(key: str, value: Any) -> Any:
    """PTB sends every non-string parameter JSON-encoded; undo that."""
    if not isinstance(value, str) or key in STRING_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _update_type(update: JSON) -> str:
    return next((key for key in update if key != "update_id"), "")


def _default_chat_id(chat_type: str | None, user_id: int) -> int:
    defaults = {
        "group": DEFAULT_GROUP_ID,
        "supergroup": DEFAULT_SUPERGROUP_ID,
        "channel": DEFAULT_CHANNEL_ID,
    }
    return defaults.get(chat_type or "private", user_id)


def _without_reply(message: JSON) -> JSON:
    """A copy of a message to nest as ``reply_to_message`` (Telegram nests one level only)."""
    return {k: copy.deepcopy(v) for k, v in message.items() if k != "reply_to_message"}


def _set_content(
    message: JSON, *, text: str | None, entities: list[JSON] | None, markup: JSON | None
) -> None:
    for key, value in (("text", text), ("entities", entities or None), ("reply_markup", markup)):
        if value is None:
            message.pop(key, None)
        else:
            message[key] = value


def _commands_key(params: JSON) -> tuple[str, str]:
    scope = params.get("scope") or {"type": "default"}
    return json.dumps(scope, sort_keys=True), str(params.get("language_code") or "")


def _inline_markup(markup: Any) -> JSON | None:
    """Validate reply_markup; return what the sent message carries (inline keyboards only)."""
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    keyboard = markup.get("inline_keyboard")
    if keyboard is None:
        return None
    if not isinstance(keyboard, list) or not all(isinstance(row, list) for row in keyboard):
        raise bad_request("can't parse inline keyboard JSON object")
    for button in (b for row in keyboard for b in row):
        if not isinstance(button, dict) or not button.get("text"):
            raise bad_request("can't parse inline keyboard button: Text must be non-empty")
        if not BUTTON_ACTIONS & set(button):
            raise bad_request(
                "can't parse inline keyboard button: "
                "Text buttons are unallowed in the inline keyboard"
            )
        data = button.get("callback_data")
        if data is not None and not 1 <= len(str(data).encode()) <= CALLBACK_DATA_LIMIT:
            raise bad_request("BUTTON_DATA_INVALID")
    return markup if keyboard else None


def _check_inline_result(result: Any, seen: set[str]) -> None:
    if not isinstance(result, dict) or "type" not in result:
        raise bad_request("can't parse inline query result")
    result_id = str(result.get("id", ""))
    if not 1 <= len(result_id.encode()) <= 64:
        raise bad_request("RESULT_ID_INVALID")
    if result_id in seen:
        raise bad_request("RESULT_ID_DUPLICATE")
    seen.add(result_id)
    _inline_markup(result.get("reply_markup"))
    if result["type"] != "article":
        return
    if not result.get("title"):
        raise bad_request("RESULT_TITLE_EMPTY")
    content = result.get("input_message_content")
    if not isinstance(content, dict):
        raise bad_request("can't parse input message content")
    if "message_text" in content:
        text, _ = parse_formatted(str(content["message_text"]), content.get("parse_mode"))
        if not text:
            raise bad_request("MESSAGE_EMPTY")
        if len(text) > MESSAGE_LIMIT:
            raise bad_request("MESSAGE_TOO_LONG")
