"""PTB v22 Application: updates -> Core.handle, Reply -> Telegram HTML, errors -> errors.py."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from typing import Any, cast
from uuid import uuid4

from telegram import (
    BotCommand,
    BotCommandScopeDefault,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InputFile,
    InputTextMessageContent,
    LinkPreviewOptions,
    Message,
    Update,
)
from telegram.constants import ChatAction, ChatMemberStatus, ChatType, ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    ChatMemberHandler,
    ContextTypes,
    InlineQueryHandler,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot import answers
from bot.alerts.ratelimit import RateLimiter
from bot.commands import BY_NAME, COMMANDS, parse
from bot.config import TelegramSettings
from bot.core import Core
from bot.domain import ChatRef, Choice, Incoming, Platform, Reply, visible
from bot.errors import ChatMoved, ConfigError, DeliveryDeferred, RecipientGone
from bot.flood import FloodGuard
from bot.language import detect
from bot.logs import pseudonym
from bot.texts import LANGUAGES, t
from bot.transports.follow_ups import LastOffers
from bot.transports.html import reply_html, split_message

logger = logging.getLogger(__name__)

ADMIN_CACHE_SECONDS = 60.0
MAX_RECONNECT_DELAY = 60.0
INLINE_FLOOD_FACTOR = 3
ADMIN_CACHE_SIZE = 10_000

MESSAGE_LIMIT = 4096
CALLBACK_DATA_LIMIT = 64
INLINE_RESULTS = 10
TYPING_AFTER = 0.3
TOKEN_SHAPE = re.compile(r"^\d+:[A-Za-z0-9_-]+$")
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


def keyboard(choices: tuple[Choice, ...]) -> InlineKeyboardMarkup | None:
    """One button per choice (two per row when short); choices whose command cannot fit in
    Telegram's 64-byte callback data are left out rather than sent broken."""
    buttons = [
        InlineKeyboardButton(c.label[:64], callback_data=c.command)
        for c in choices
        if len(c.command.encode()) <= CALLBACK_DATA_LIMIT
    ]
    if not buttons:
        return None
    rows: list[list[InlineKeyboardButton]] = []
    for button in buttons:
        if rows and len(rows[-1]) == 1 and len(rows[-1][0].text) <= 14 and len(button.text) <= 14:
            rows[-1].append(button)
        else:
            rows.append([button])
    return InlineKeyboardMarkup(rows)


class TelegramTransport:
    """Serves the core on Telegram by long polling (default) or a webhook.

    Messages are held to the core's flood limit, shared by every process on a PostgreSQL store.
    Button presses and inline queries have limits of their own that stay in this process's
    memory on purpose: the press limit only decides whether to acknowledge it (the press itself
    then meets the core's shared limit), and inline queries come per keystroke, where a write
    to the database for each would cost more than the in-memory search it guards. With N
    webhook processes a sender gets at most N times those two; messages stay at one limit.
    """

    platform = Platform.TELEGRAM

    def __init__(
        self,
        core: Core,
        settings: TelegramSettings,
        stop: asyncio.Event,
        limiter: RateLimiter | None = None,
        *,
        receive: bool = True,
    ) -> None:
        """``receive=False``: only send (alerts), never take updates; for a process whose
        roles lack "updates"."""
        if settings.token is None or not TOKEN_SHAPE.match(settings.token.get_secret_value()):
            raise ConfigError(
                "BOT_TELEGRAM__TOKEN is missing or malformed (expected digits:letters from @BotFather)"
            )
        self.core = core
        self.settings = settings
        self.stop_event = stop
        self.limiter = limiter
        self.receive = receive
        self._admin_answers: dict[tuple[int, int], tuple[float, bool]] = {}
        self._admin_lookups: dict[tuple[int, int], asyncio.Future[bool]] = {}
        self._offers = LastOffers()
        self._inline_flood = FloodGuard(
            core.settings.questions_per_minute * INLINE_FLOOD_FACTOR, core.clock
        )
        self._button_flood = FloodGuard(core.settings.questions_per_minute, core.clock)
        builder = (
            ApplicationBuilder()
            .token(settings.token.get_secret_value())
            .base_url(settings.base_url)
            .concurrent_updates(True)
            .read_timeout(settings.request_timeout)
            .write_timeout(settings.request_timeout)
            .connect_timeout(settings.request_timeout)
            .pool_timeout(settings.request_timeout)
        )
        if settings.rate_limit:
            # Its overall rate is ours (BOT_ALERTS__TELEGRAM_PER_SECOND), not a hidden 30/s; its
            # per-group limit covers the replies, which our limiter lets go first.
            overall = limiter.per_second if limiter is not None else 30.0  # PTB's default
            builder = builder.rate_limiter(
                AIORateLimiter(overall_max_rate=overall, max_retries=0)  # type: ignore[arg-type]
            )
        if settings.base_file_url:
            builder = builder.base_file_url(settings.base_file_url)
        self.application: Application = builder.build()  # type: ignore[type-arg]
        self.username = ""
        if settings.webhook_url and core.repository is not None:
            # Before every other handler: a copy of an update another process took ends here.
            self.application.add_handler(TypeHandler(Update, self._take_once), group=-1)
        # Text, commands and captions anywhere; in a private chat also what has no text at all
        # (a photo, a voice message, a sticker), which gets a line saying only text is read.
        readable = filters.TEXT | filters.COMMAND | filters.CAPTION
        private_other = filters.ChatType.PRIVATE & ~filters.StatusUpdate.ALL
        self.application.add_handler(
            MessageHandler(
                filters.UpdateType.MESSAGE & (readable | private_other), self._on_message
            )
        )
        self.application.add_handler(
            MessageHandler(filters.StatusUpdate.MIGRATE, self._on_migrate)
        )
        self.application.add_handler(
            ChatMemberHandler(self._on_my_membership, ChatMemberHandler.MY_CHAT_MEMBER)
        )
        self.application.add_handler(CallbackQueryHandler(self._on_button))
        self.application.add_handler(InlineQueryHandler(self._on_inline_query))
        self.application.add_error_handler(self._on_error)

    # -- lifecycle -----------------------------------------------------------------------------

    async def _register_commands(self, application: Application) -> None:  # type: ignore[type-arg]
        self.username = application.bot.username or ""
        for lang in LANGUAGES:
            commands = [BotCommand(c.name, t(lang, c.help_key)[:256]) for c in COMMANDS if c.menu]
            try:
                await application.bot.set_my_commands(
                    commands,
                    scope=BotCommandScopeDefault(),
                    language_code=None if lang == "en" else lang,
                )
            except TelegramError as exc:
                # The menu is a convenience: a server that refuses it must not stop the bot.
                logger.warning("telegram.commands_not_set", extra={"error": type(exc).__name__})

    async def run(self) -> None:
        """Poll (or serve the webhook) until the stop event is set, then shut down gracefully."""
        app = self.application
        if not await self._initialize():
            return
        if not self.receive:
            async with app:
                await app.start()
                logger.info("telegram.started", extra={"bot": app.bot.username, "updates": False})
                try:
                    await self.stop_event.wait()
                finally:
                    if app.running:
                        await app.stop()
            logger.info("telegram.stopped")
            return
        await self._register_commands(app)
        async with app:
            await app.start()
            updater = app.updater
            assert updater is not None
            if self.settings.webhook_url:
                secret = self.settings.secret_token
                await updater.start_webhook(
                    listen=self.settings.listen,
                    port=self.settings.port,
                    url_path=self.settings.webhook_path,
                    webhook_url=self.settings.webhook_url,
                    secret_token=secret.get_secret_value() if secret else None,
                    allowed_updates=Update.ALL_TYPES,
                )
            else:
                await updater.start_polling(
                    poll_interval=0.0,
                    timeout=self.settings.poll_timeout,
                    allowed_updates=Update.ALL_TYPES,
                )
            logger.info("telegram.started", extra={"bot": self.username})
            try:
                await self._serve_until_stopped()
            finally:
                # Stop taking updates, let handlers under way finish, then close (also when
                # cancelled, or PTB refuses to shut down a running application). A token
                # rejected while polling was reported already; it must not fail the shutdown.
                if updater.running:
                    with contextlib.suppress(InvalidToken):
                        await updater.stop()
                if app.running:
                    await app.stop()
        logger.info("telegram.stopped")

    async def _initialize(self) -> bool:
        """Reach Telegram, retrying with capped backoff while it is unreachable (never a crash
        loop); False if stopped first. A rejected token is a configuration error."""
        delay = 1.0
        while not self.stop_event.is_set():
            try:
                await self.application.initialize()
                return True
            except InvalidToken:
                raise ConfigError("the Telegram server rejected BOT_TELEGRAM__TOKEN") from None
            except NetworkError as exc:
                logger.warning(
                    "telegram.unreachable", extra={"error": type(exc).__name__, "retry_in": delay}
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop_event.wait(), delay)
                delay = min(delay * 2, MAX_RECONNECT_DELAY)
        return False

    async def _serve_until_stopped(self) -> None:
        """Wait for the stop event; if polling ends first (Telegram rejected the token), say so
        once and stay down, not ready, while the other platforms go on."""
        polling = self._polling_task()
        stopping = asyncio.create_task(self.stop_event.wait())
        waiting = {stopping} if polling is None else {stopping, polling}
        try:
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if polling is not None and polling.done() and not self.stop_event.is_set():
                logger.error(
                    "telegram.polling_stopped",
                    extra={"error": "the Telegram server rejected BOT_TELEGRAM__TOKEN"},
                )
                await stopping
        finally:
            stopping.cancel()

    def _polling_task(self) -> asyncio.Task[Any] | None:
        # PTB keeps its polling task private; it ends before stop() only when Telegram
        # rejects the token (every other error is retried).
        task = getattr(self.application.updater, "_Updater__polling_task", None)
        return task if isinstance(task, asyncio.Task) else None

    def ready(self) -> bool:
        updater = self.application.updater
        polling = self._polling_task()
        if not self.receive:
            return self.application.running
        return (
            self.application.running
            and updater is not None
            and updater.running
            and not (polling is not None and polling.done())
        )

    # -- incoming ------------------------------------------------------------------------------

    async def _take_once(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Webhook mode: Telegram may deliver an update again, and behind a reverse proxy to
        another process; the first process to record its id handles it, the others drop it."""
        repository = self.core.repository
        assert repository is not None
        if not await repository.take_update(update.update_id, self.core.clock.now()):
            logger.info("telegram.duplicate_update", extra={"update": update.update_id})
            raise ApplicationHandlerStop

    def _addressed_text(self, message: Message) -> str | None:
        """The text (or caption) meant for us, or None: in groups only commands, mentions and
        replies to us."""
        text = message.text or message.caption or ""
        if message.chat.type == ChatType.PRIVATE:
            return text
        command = parse(text)
        if command is not None:
            if command.addressee and command.addressee.lower() != self.username.lower():
                return None
            return text
        mention = f"@{self.username}"
        if self.username and mention.lower() in text.lower():
            return re.sub(re.escape(mention), " ", text, flags=re.IGNORECASE).strip()
        reply_to = message.reply_to_message
        if reply_to and reply_to.from_user and reply_to.from_user.id == self.application.bot.id:
            return text
        return None

    async def _on_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.message
        user = message.from_user if message else None
        if message is None or user is None or user.is_bot:
            return
        text = self._addressed_text(message)
        if text is None:
            return
        # Buttons carry no numbers, but a person may type one: "2" picks the second button.
        follow_up = self._offers.resolve(message.chat.id, text, by_number=True, numbered=False)
        # A message that shows no language (a command, a number) gets the conversation's:
        # someone asking in Russian from an English-language app wants /help in Russian. In a
        # group the last reply may have been to someone else: each member's app language then.
        private = message.chat.type == ChatType.PRIVATE
        conversation = self._offers.language(message.chat.id) if private else None
        hint = follow_up.language or conversation or user.language_code
        incoming = await self._incoming(message, user.id, hint, follow_up.text)
        if not text:
            incoming = incoming.model_copy(update={"media_only": True})
        replies = await self._handle_with_typing(incoming, message.chat.id)
        for reply in replies:
            await self._send(message.chat.id, reply, reply_to=message.message_id)
            self._offers.remember(message.chat.id, reply)

    async def _incoming(
        self, message: Message, user_id: int, language_code: str | None, text: str
    ) -> Incoming:
        """An Incoming for the core; asks Telegram whether the sender is a group admin only
        when the command needs it."""
        private = message.chat.type == ChatType.PRIVATE
        command = parse(text)
        spec = BY_NAME.get(command.name) if command else None
        is_admin = False
        # A sender over the flood limit costs no Bot API call: the core will silence them.
        allowed = self.core.flood.has_tokens(f"{Platform.TELEGRAM.value}:{user_id}")
        if not private and allowed and spec is not None and spec.checks_chat_admin:
            is_admin = await self._is_chat_admin(message.chat.id, user_id)
        return Incoming(
            chat=ChatRef(platform=Platform.TELEGRAM, chat_id=str(message.chat.id)),
            sender_id=str(user_id),
            text=text,
            is_private=private,
            is_chat_admin=is_admin,
            language_hint=language_code,
        )

    async def _is_chat_admin(self, chat_id: int, user_id: int) -> bool:
        """Asks Telegram once for many simultaneous updates, and remembers the answer for a
        minute: Telegram allows a group few calls a minute."""
        key = (chat_id, user_id)
        cached = self._admin_answers.get(key)
        if cached is not None and cached[0] > self.core.clock.monotonic():
            return cached[1]
        pending = self._admin_lookups.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._ask_chat_admin(chat_id, user_id))
            self._admin_lookups[key] = pending
            pending.add_done_callback(lambda _: self._admin_lookups.pop(key, None))
        return await asyncio.shield(pending)

    async def _ask_chat_admin(self, chat_id: int, user_id: int) -> bool:
        try:
            member = await self.application.bot.get_chat_member(chat_id, user_id)
        except TelegramError:
            return False
        is_admin = member.status in (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER)
        if len(self._admin_answers) >= ADMIN_CACHE_SIZE:
            self._admin_answers.clear()
        self._admin_answers[(chat_id, user_id)] = (
            self.core.clock.monotonic() + ADMIN_CACHE_SECONDS,
            is_admin,
        )
        return is_admin

    async def _handle_with_typing(self, incoming: Incoming, chat_id: int) -> list[Reply]:
        """Show "typing" only if the core takes noticeably long."""
        task = asyncio.create_task(self.core.handle(incoming))
        done, _ = await asyncio.wait({task}, timeout=TYPING_AFTER)
        if not done:
            with contextlib.suppress(TelegramError):
                await self.application.bot.send_chat_action(chat_id, ChatAction.TYPING)
        return await task

    async def _on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None:
            return
        command = parse(query.data or "") if isinstance(query.data, str) else None
        valid = command is not None and command.name in BY_NAME
        lang = (query.from_user.language_code or "en").split("-")[0] if query.from_user else "en"
        # Presses have a limit of their own, as messages do: over it, not even the
        # acknowledgement is sent (and the core says "slow down" once, then nothing).
        sender = f"{Platform.TELEGRAM.value}:{query.from_user.id}" if query.from_user else ""
        if self._button_flood.check(sender) is True:
            await query.answer(
                None if valid else t(lang if lang in LANGUAGES else "en", "button.expired")
            )
        message = query.message
        if not valid or not isinstance(message, Message) or query.from_user is None:
            return
        user = query.from_user
        # A press answers in the conversation's language, whatever the app's language: in a
        # private chat the last reply's; in a group, the language of the message pressed (its
        # text may quote other languages, as an admin form's keywords do, so only there).
        private = message.chat.type == ChatType.PRIVATE
        conversation = self._offers.language(message.chat.id) if private else None
        hint = conversation or detect(message.text or message.caption or "") or user.language_code
        incoming = await self._incoming(message, user.id, hint, cast(str, query.data))
        replies = await self.core.handle(incoming)
        for reply in replies:
            self._offers.remember(message.chat.id, reply)
            if reply.replace and await self._edit(query, reply):
                continue
            await self._send(message.chat.id, reply)

    async def _on_inline_query(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.inline_query
        if query is None:
            return
        # Inline queries come as the user types: a limit of their own, a few times the one
        # on messages; over it they are not answered at all.
        if self._inline_flood.check(f"{Platform.TELEGRAM.value}:{query.from_user.id}") is not True:
            return
        text = visible(query.query[: self.core.settings.max_message_chars])
        lang = await self.core.language_for(
            Incoming(
                chat=ChatRef(platform=Platform.TELEGRAM, chat_id=str(query.from_user.id)),
                sender_id=str(query.from_user.id),
                text=text,
                language_hint=query.from_user.language_code,
            )
        )
        results = [
            InlineQueryResultArticle(
                id=uuid4().hex,
                title=label,
                description=answers.shorten(reply.paragraphs[0].text, 120),
                input_message_content=InputTextMessageContent(
                    split_message(reply_html(reply), MESSAGE_LIMIT)[0],
                    parse_mode=ParseMode.HTML,
                    link_preview_options=NO_PREVIEW,
                ),
            )
            for label, reply in await self.core.inline_answers(text, lang, INLINE_RESULTS)
        ]
        await query.answer(results, cache_time=30, is_personal=True)

    async def _on_migrate(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.message
        if message is not None and message.migrate_to_chat_id:
            old = ChatRef(platform=Platform.TELEGRAM, chat_id=str(message.chat.id))
            await self.core.chat_moved(old, str(message.migrate_to_chat_id))

    async def _on_my_membership(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        change = update.my_chat_member
        if change is None:
            return
        if change.new_chat_member.status in (ChatMemberStatus.LEFT, ChatMemberStatus.BANNED):
            await self.core.chat_gone(
                ChatRef(platform=Platform.TELEGRAM, chat_id=str(change.chat.id))
            )

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        logger.error("telegram.update_failed", exc_info=context.error)

    # -- outgoing ------------------------------------------------------------------------------

    async def _edit(self, query: CallbackQuery, reply: Reply) -> bool:
        chunks = split_message(reply_html(reply), MESSAGE_LIMIT)
        if len(chunks) != 1:
            return False
        try:
            await query.edit_message_text(
                chunks[0],
                parse_mode=ParseMode.HTML,
                reply_markup=keyboard(reply.choices),
                link_preview_options=NO_PREVIEW,
            )
        except BadRequest as exc:
            return "not modified" in str(exc).lower()
        return True

    async def _send(
        self, chat_id: int, reply: Reply, reply_to: int | None = None, *, alert: bool = False
    ) -> None:
        """Send a reply as one or more messages; buttons go on the last one."""
        chunks = split_message(reply_html(reply), MESSAGE_LIMIT)
        for i, chunk in enumerate(chunks):
            last = i == len(chunks) - 1
            if self.limiter is not None and not alert:
                self.limiter.take_now()
            await self.application.bot.send_message(
                chat_id,
                chunk,
                parse_mode=ParseMode.HTML,
                reply_markup=keyboard(reply.choices) if last else None,
                link_preview_options=NO_PREVIEW,
                reply_to_message_id=reply_to if i == 0 else None,
                allow_sending_without_reply=True,
            )
        for attachment in reply.attachments:
            await self.application.bot.send_document(
                chat_id, InputFile(attachment.content, filename=attachment.filename)
            )

    async def send(self, chat: ChatRef, reply: Reply) -> None:
        """Deliver an alert; maps Telegram's errors to the outbox's vocabulary."""
        try:
            await self._send(int(chat.chat_id), reply, alert=True)
        except RetryAfter as exc:
            retry = exc.retry_after
            seconds = retry.total_seconds() if hasattr(retry, "total_seconds") else float(retry)
            raise DeliveryDeferred(seconds, "telegram flood control") from None
        except ChatMigrated as exc:
            raise ChatMoved(str(exc.new_chat_id)) from None
        except Forbidden as exc:
            raise RecipientGone(str(exc)) from None
        except BadRequest as exc:
            if "chat not found" in str(exc).lower() or "kicked" in str(exc).lower():
                raise RecipientGone(str(exc)) from None
            raise
        except (TimedOut, NetworkError) as exc:
            raise DeliveryDeferred(0.0, type(exc).__name__) from None
        logger.debug("telegram.sent", extra={"chat": pseudonym(chat.chat_id)})
