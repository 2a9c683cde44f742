"""`Core.handle(Incoming) -> list[Reply]`: the one entry point of every transport."""

from __future__ import annotations

import logging
from collections.abc import Callable

from bot import answers
from bot.admin.curation import Curation
from bot.admin.roles import is_admin
from bot.advice import asks_for_advice
from bot.answers import text_reply
from bot.bot_questions import BotQuestion, asks_about_bot
from bot.clock import Clock, SystemClock
from bot.commands import (
    ADMIN_HELP,
    BY_NAME,
    COMMANDS,
    ParsedCommand,
    Role,
    bare_command,
    choice_number,
    closest_command,
    parse,
)
from bot.config import Settings
from bot.domain import (
    ChatRef,
    Choice,
    Incoming,
    PageTurn,
    Paragraph,
    Reply,
    ReplyKind,
    Style,
    visible,
)
from bot.errors import UserError
from bot.flood import FloodGuard, FloodLimit, LocalFloodLimit
from bot.knowledge.models import Event
from bot.knowledge.validate import read_source_texts
from bot.language import detect
from bot.library import FACT_PREFIX, QUOTE_PREFIX, Library, search_form
from bot.metrics import QUESTIONS, REPLY_SECONDS
from bot.references import refers_back
from bot.search.normalize import terms, words
from bot.small_talk import SmallTalk, small_talk
from bot.store.repositories import Repository
from bot.texts import LANGUAGE_NAMES, LANGUAGES, language_code, t
from bot.waiting import WaitingQuestions

logger = logging.getLogger(__name__)

TIMELINE_PAGE = 8
TOPIC_PAGE = 12
QUOTE_PAGE = 8
CORRECTIONS = "corrections"  # the /toggle that turns correction notices off and on
SMALL_TALK_TEXTS = {
    SmallTalk.THANKS: "smalltalk.thanks",
    SmallTalk.FAREWELL: "smalltalk.farewell",
    SmallTalk.ACKNOWLEDGEMENT: "smalltalk.more",
    SmallTalk.MORE: "smalltalk.further",
    SmallTalk.COMPLAINT: "smalltalk.complaint",
    SmallTalk.OPENER: "ask.empty",
}


def info(
    lang: str, *paragraphs: Paragraph, choices: list[Choice] | None = None, replace: bool = False
) -> Reply:
    return Reply(paragraphs=paragraphs, choices=tuple(choices or ()), lang=lang, replace=replace)


def _event_line(event: Event, lang: str) -> Paragraph:
    """One event as a line of a list: its date as precise as known, and its title."""
    return Paragraph(
        text=f"{answers.format_event_date(event, lang)} — {event.title.get(lang)}",
        style=Style.ITEM,
    )


def _page_number(arg: str) -> int:
    """Page 1 for anything but a plain positive number ("0", "²", "２" included)."""
    return max(int(arg), 1) if arg.isascii() and arg.isdigit() and len(arg) < 6 else 1


def _quote_page(args: str) -> int | None:
    """The page ``/quote`` or ``/quote page N`` asks for; None if the args are a search.

    A missing or bad N is page 1; the caller clamps a number past the end to the last page.
    """
    parts = args.split()
    if parts and (parts[0].lower() != "page" or len(parts) > 2):
        return None
    arg = parts[1] if len(parts) == 2 else ""
    if not (arg.isascii() and arg.isdigit()):
        return 1
    return int(arg) if len(arg) < 7 else 10**6  # past the last page either way


class Core:
    """Answers questions and runs commands; knows nothing of any chat platform."""

    def __init__(
        self,
        library: Library,
        settings: Settings,
        repository: Repository | None = None,
        clock: Clock | None = None,
        flood: FloodLimit | None = None,
    ) -> None:
        """``flood`` defaults to this process's own buckets, in memory."""
        self.library = library
        self.settings = settings
        self.repository = repository
        self.clock = clock or SystemClock()
        self.flood: FloodLimit = flood or LocalFloodLimit(
            FloodGuard(settings.questions_per_minute, self.clock)
        )
        self.on_publish: Callable[[], None] = lambda: None
        self.waiting = (
            WaitingQuestions(
                repository,
                self.clock,
                self.answer,
                settings.privacy.pending_question_days,
                lambda: self.on_publish(),
            )
            if repository is not None
            else None
        )
        self.curation = (
            Curation(
                library,
                repository,
                self.clock,
                lambda: self.on_publish(),
                on_confirmed=self.waiting.schedule_rematch if self.waiting else lambda: None,
                source_texts=read_source_texts(
                    library.sources.values(), settings.knowledge.seeds_dir
                ),
            )
            if repository is not None
            else None
        )

    # -- entry point ---------------------------------------------------------------------------

    async def handle(self, incoming: Incoming) -> list[Reply]:
        """Everything a transport hands in comes through here; never raises."""
        lang = self.settings.default_language
        try:
            # The flood check comes first and costs at most one statement: a flooding sender
            # must not make the bot do any other work at the expense of everybody else.
            allowed = await self.flood.check(
                f"{incoming.chat.platform.value}:{incoming.sender_id}"
            )
            if allowed is None:
                return []
            lang = await self.language_for(incoming)
            if allowed is False:
                return [text_reply(lang, "flood.slow_down", ReplyKind.ERROR)]
            if incoming.media_only:
                return [text_reply(lang, "ask.text_only")]
            if len(incoming.text) > self.settings.max_message_chars:
                return [
                    text_reply(
                        lang,
                        "error.too_long",
                        ReplyKind.ERROR,
                        limit=self.settings.max_message_chars,
                    )
                ]
            command = parse(incoming.text)
            if command is not None:
                return await self.run_command(incoming, command, lang)
            if self.curation is not None and is_admin(self.settings.admins, incoming):
                drafted = await self.curation.answer_text(incoming, incoming.text, lang)
                if drafted is not None:
                    return [drafted]
            command = bare_command(incoming.text)
            if command is not None:
                return await self.run_command(incoming, command, lang)
            return [await self.ask(incoming.text, lang, incoming)]
        except UserError as exc:
            return [text_reply(lang, exc.key, ReplyKind.ERROR, **exc.params)]
        except Exception:
            logger.exception("core.failed")
            return [text_reply(lang, "error.generic", ReplyKind.ERROR)]

    async def language_for(self, incoming: Incoming) -> str:
        """Explicit per-chat choice, then the question's language, then the platform hint."""
        if self.repository is not None:
            chosen = await self.repository.chat_language(incoming.chat)
            if chosen:
                return chosen
        command = parse(incoming.text)
        # Only free text tells a language: a command's arguments are ids and numbers.
        if command is None:
            # A value typed into an admin's form (keywords in three languages, a Russian
            # quote) does not change the language the form is held in.
            detected = None if self._fills_a_form(incoming) else detect(incoming.text)
        else:
            detected = detect(command.args) if self._is_free_text(command) else None
        if detected:
            return detected
        hint = (incoming.language_hint or "").split("-")[0].lower()
        if hint in LANGUAGES:
            return hint
        return self.settings.default_language

    def _fills_a_form(self, incoming: Incoming) -> bool:
        if self.curation is None or not is_admin(self.settings.admins, incoming):
            return False
        return self.curation.asking(incoming) is not None

    def _is_free_text(self, command: ParsedCommand) -> bool:
        """/ask words and /quote words; not /quote's page numbers or ids."""
        args = command.args.strip()
        if command.name == "quote":
            return _quote_page(args) is None and args not in self.library.quotes
        return command.name == "ask"

    # -- questions -----------------------------------------------------------------------------

    async def answer(self, question: str, lang: str | None = None) -> Reply:
        """Answer one question (pure: no counting); the language follows the question if unset."""
        question = visible(question)
        lang = lang or detect(question) or self.settings.default_language
        folded = words(question)
        if not folded:
            return text_reply(lang, "ask.empty")
        if choice_number(question) is not None:
            # "2" is a choice from a list, not a question about Decree No. 2: guessing would
            # answer something nobody asked. (Years like "1995" are still searched.)
            return text_reply(lang, "ask.number_only")
        talk = small_talk(question)
        if talk in SMALL_TALK_TEXTS:
            return text_reply(lang, SMALL_TALK_TEXTS[talk])
        if talk is SmallTalk.NEWS:
            return self.latest_events(lang)
        if talk is SmallTalk.SOURCE:
            # "source?" with no answer remembered (transports that remember one resolve it
            # first), or "what are your sources?" opening a chat.
            return self.sources(lang, intro="evidence.pick")
        if talk is not None:  # a greeting, or "what can you do?": the introduction
            return self.start(lang)
        if len("".join(folded)) < 2:
            return text_reply(lang, "ask.empty")  # a lone letter ("x", "?a"): nothing to search
        asked = asks_about_bot(question)
        if asked is not None:
            return self.about_bot(asked, lang)
        if not terms(search_form(question)):
            # "Why?", "who is he?", "калі гэта было?": nothing but function words, so nothing
            # to search for; a decline with unrelated close topics would only puzzle.
            return info(
                lang,
                Paragraph(text=t(lang, "ask.vague")),
                choices=answers.topic_choices(self.library, lang),
            )
        result = await self.library.search(question)
        if asks_for_advice(question):
            return answers.personal_advice(self.library, result, lang)
        if result.ambiguous and (topic := self.library.topic_named(question)) is not None:
            # "history" alone, which several facts share, is the name of a topic: its page.
            return self.topics(lang, topic.id)
        reply = answers.answer(self.library, result, lang, refers_back=refers_back(question))
        return answers.with_page_link(self.library, reply, self.settings.http.public_url)

    async def ask(self, question: str, lang: str, incoming: Incoming | None = None) -> Reply:
        with REPLY_SECONDS.time():
            reply = await self.answer(question, lang)
        if reply.kind not in (ReplyKind.ANSWER, ReplyKind.DECLINE):
            return reply  # small talk or an empty question: nothing to count
        QUESTIONS.labels("answered" if reply.answered else "declined").inc()
        if self.repository is not None:
            declined = None if reply.answered else " ".join(words(question))
            await self.repository.count_question(self.clock.now(), reply.fact_id, declined)
            waiting = self.waiting
            # "When was he appointed?" could never be answered as asked: nothing to wait for.
            if (
                declined
                and waiting
                and incoming is not None
                and reply.kind is ReplyKind.DECLINE
                and not refers_back(question)
            ):
                offer = waiting.offer(incoming, declined, lang)
                reply = reply.model_copy(update={"choices": (*reply.choices, offer)})
        return reply

    # -- commands ------------------------------------------------------------------------------

    async def run_command(
        self, incoming: Incoming, command: ParsedCommand, lang: str
    ) -> list[Reply]:
        spec = BY_NAME.get(command.name)
        if spec is not None and spec.role is Role.ADMIN:
            if self.curation is not None and is_admin(self.settings.admins, incoming):
                return await self.curation.command(incoming, command.name, command.args, lang)
            # Anyone else gets exactly what an unknown command gets; only a count is kept.
            if self.repository is not None:
                await self.repository.count_refused_admin(self.clock.now())
            spec = None
        if spec is None:
            meant = closest_command(command.name)
            if meant is not None:
                return [
                    text_reply(
                        lang,
                        "error.unknown_command_close",
                        command=command.mark + command.name,
                        meant=meant,
                    )
                ]
            return [
                text_reply(lang, "error.unknown_command", command=command.mark + command.name),
                self.help(lang),
            ]
        args = command.args
        if spec.role is Role.CHAT_ADMIN and not (incoming.is_private or incoming.is_chat_admin):
            return [text_reply(lang, "subscribe.admins_only", ReplyKind.ERROR)]
        match command.name:
            case "start":
                return [self.start(lang)]
            case "help":
                return [self.help(lang, admin=is_admin(self.settings.admins, incoming))]
            case "ask":
                if not args:
                    return [text_reply(lang, "ask.empty")]
                return [await self.ask(args, lang, incoming)]
            case "notifyme":
                if self.waiting is None:
                    return [text_reply(lang, "notify.expired")]
                return [await self.waiting.keep(incoming, lang, args)]
            case "topics":
                return [self.topics(lang, args)]
            case "fact":
                # A bare /fact has no entry to show: the topics lead to every one.
                return [self.fact(lang, args.split()[0]) if args else self.topics(lang, "")]
            case "evidence":
                if not args:
                    return [self.sources(lang, intro="evidence.pick")]
                reply = answers.evidence_reply(self.library, args.split()[0], lang)
                return [answers.with_page_link(self.library, reply, self.settings.http.public_url)]
            case "timeline":
                return [self.timeline(lang, _page_number(args))]
            case "quote":
                return [await self.quote(lang, args)]
            case "sources":
                return [self.sources(lang)]
            case "language":
                return [await self.language(incoming, lang, args)]
            case "privacy":
                return [await self.privacy(incoming, lang)]
            case "forgetme":
                return [await self.forget(incoming, lang, args)]
            case "subscribe" | "toggle" | "unsubscribe" | "subscriptions":
                return [await self.subscriptions(incoming, lang, command.name, args)]
        return [self.help(lang)]

    def start(self, lang: str) -> Reply:
        return info(
            lang,
            Paragraph(text=t(lang, "start.title"), style=Style.HEADING),
            Paragraph(text=t(lang, "start.body")),
            Paragraph(text=t(lang, "start.privacy"), style=Style.NOTE),
            choices=answers.topic_choices(self.library, lang),
        )

    def help(self, lang: str, *, admin: bool = False) -> Reply:
        lines = [Paragraph(text=t(lang, "help.title"), style=Style.HEADING)]
        lines += [
            Paragraph(text=f"/{c.name} — {t(lang, c.help_key)}", style=Style.ITEM)
            for c in COMMANDS
            if c.menu
        ]
        lines.append(Paragraph(text=t(lang, "help.free_text")))
        if admin:
            lines.append(Paragraph(text=t(lang, "help.admin_title"), style=Style.HEADING))
            lines += [
                Paragraph(text=f"/{name} — {t(lang, BY_NAME[name].help_key)}", style=Style.ITEM)
                for name in ADMIN_HELP
            ]
        return info(lang, *lines)

    def topics(self, lang: str, args: str) -> Reply:
        parts = args.split()
        page_arg = parts.pop() if len(parts) > 1 and parts[-1].isdigit() else ""
        topic = self.library.topic_named(" ".join(parts))
        if topic is None:
            heading = [Paragraph(text=t(lang, "topics.title"), style=Style.HEADING)]
            if args.strip():
                unknown = t(
                    lang, "topics.unknown", topic=answers.shorten(" ".join(args.split()), 40)
                )
                heading.insert(0, Paragraph(text=unknown, style=Style.NOTE))
            choices = [
                Choice(
                    label=f"{topic.title.get(lang)} ({len(self.library.live_facts(topic.id))})",
                    command=f"/topics {topic.id}",
                )
                for topic in self.library.topics.values()
            ]
            return info(lang, *heading, choices=choices)
        facts = self.library.live_facts(topic.id)
        pages = max(1, -(-len(facts) // TOPIC_PAGE))
        page = min(_page_number(page_arg), pages)
        shown = facts[(page - 1) * TOPIC_PAGE : page * TOPIC_PAGE]
        paragraphs = [Paragraph(text=topic.title.get(lang), style=Style.HEADING)]
        if topic.description:
            paragraphs.append(Paragraph(text=topic.description.get(lang)))
        paragraphs.append(
            Paragraph(text=t(lang, "topics.pick", count=len(facts)), style=Style.NOTE)
        )
        choices = [answers.fact_choice(f, lang) for f in shown]
        choices += self._pager(lang, f"/topics {topic.id}", page, pages)
        choices.append(Choice(label=t(lang, "topics.back"), command="/topics"))
        return info(lang, *paragraphs, choices=choices, replace=True)

    def fact(self, lang: str, fact_id: str) -> Reply:
        """/fact id: a fact, or an event (offered among close topics) by its id."""
        event = self.library.events.get(fact_id.strip())
        if event is not None:
            return answers.answer_event(self.library, event, lang)
        fact = self.library.facts.get(fact_id.strip())
        if fact is None or fact.retracted:
            return text_reply(lang, "fact.unknown", ReplyKind.ERROR)
        reply = answers.answer_fact(self.library, fact, lang)
        return answers.with_page_link(self.library, reply, self.settings.http.public_url)

    async def inline_answers(self, text: str, lang: str, limit: int) -> list[tuple[str, Reply]]:
        """What an inline query ("@bot" and a few words) offers as the person types: up to
        ``limit`` facts close to the words, best first (for no words, the first facts), each with
        its label and as a message that stands alone in the chat it is shared to. Words close to
        nothing offer nothing."""
        facts = self.library.facts
        if text.strip():
            hits = (await self.library.search(text)).hits
            ids = [
                h.doc_id.removeprefix(FACT_PREFIX)
                for h in hits
                if h.doc_id.startswith(FACT_PREFIX) and h.score >= answers.MIN_SUGGESTION_SCORE
            ]
            found = [facts[i] for i in ids if i in facts and not facts[i].retracted]
        else:
            found = self.library.live_facts()
        public_url = self.settings.http.public_url
        return [
            (
                answers.fact_label(fact, lang),
                answers.with_page_link(
                    self.library, answers.shared_answer(self.library, fact, lang), public_url
                ),
            )
            for fact in found[:limit]
        ]

    def timeline(self, lang: str, page: int) -> Reply:
        events = self.library.timeline()
        if not events:
            return text_reply(lang, "timeline.empty")
        pages = max(1, -(-len(events) // TIMELINE_PAGE))
        page = min(page, pages)
        paragraphs = [
            Paragraph(text=t(lang, "timeline.title", page=page, pages=pages), style=Style.HEADING)
        ]
        paragraphs += [
            _event_line(event, lang)
            for event in events[(page - 1) * TIMELINE_PAGE : page * TIMELINE_PAGE]
        ]
        return info(
            lang, *paragraphs, choices=self._pager(lang, "/timeline", page, pages), replace=True
        )

    def latest_events(self, lang: str) -> Reply:
        """The newest events, newest first, and how to get new ones as they come."""
        events = self.library.timeline()
        if not events:
            return text_reply(lang, "timeline.empty")
        return info(
            lang,
            Paragraph(text=t(lang, "news.title"), style=Style.HEADING),
            *(_event_line(event, lang) for event in reversed(events[-TIMELINE_PAGE:])),
            Paragraph(text=t(lang, "smalltalk.news"), style=Style.NOTE),
            choices=[Choice(label=t(lang, "news.timeline"), command="/timeline")],
        )

    @staticmethod
    def _pager(lang: str, command: str, page: int, pages: int) -> list[Choice]:
        choices = []
        if page > 1:
            previous = f"{command} {page - 1}"
            choices.append(
                Choice(label=t(lang, "page.previous"), command=previous, page=PageTurn.PREVIOUS)
            )
        if page < pages:
            following = f"{command} {page + 1}"
            choices.append(
                Choice(label=t(lang, "page.next"), command=following, page=PageTurn.NEXT)
            )
        return choices

    async def quote(self, lang: str, args: str) -> Reply:
        """/quote lists the quotes a page at a time (/quote page N); /quote id or words shows one."""
        quotes = self.library.quotes
        if args.strip() in quotes:
            return answers.answer_quote(self.library, quotes[args.strip()], lang)
        page = _quote_page(args)
        if page is not None:
            return self.quote_list(lang, page)
        for hit in (await self.library.search(args)).hits:
            if hit.doc_id.startswith(QUOTE_PREFIX) and hit.score >= answers.MIN_SUGGESTION_SCORE:
                quote = quotes.get(hit.doc_id.removeprefix(QUOTE_PREFIX))
                if quote:
                    return answers.answer_quote(self.library, quote, lang, hit.score)
        return text_reply(lang, "quote.none")

    def quote_list(self, lang: str, page: int) -> Reply:
        quotes = list(self.library.quotes.values())
        pages = max(1, -(-len(quotes) // QUOTE_PAGE))
        page = max(1, min(page, pages))
        paragraphs = [Paragraph(text=t(lang, "quote.pick"), style=Style.HEADING)]
        if pages > 1:
            paragraphs.append(
                Paragraph(text=t(lang, "page.counter", page=page, pages=pages), style=Style.NOTE)
            )
        choices = [
            Choice(
                label=answers.shorten(f"{q.speaker.get(lang)}: {q.text}"),
                command=f"/quote {q.id}",
            )
            for q in quotes[(page - 1) * QUOTE_PAGE : page * QUOTE_PAGE]
        ]
        choices += self._pager(lang, "/quote page", page, pages)
        return info(lang, *paragraphs, choices=choices, replace=True)

    def sources(self, lang: str, intro: str | None = None) -> Reply:
        """The sources answers rest on, after an ``intro`` line when given."""
        paragraphs = [Paragraph(text=t(lang, intro))] if intro else []
        paragraphs.append(Paragraph(text=t(lang, "sources.title"), style=Style.HEADING))
        for source in self.library.sources.values():
            paragraphs.append(
                Paragraph(
                    text=answers.describe_source(source, lang),
                    style=Style.ITEM,
                    url=str(source.url) if source.url else None,
                )
            )
        return info(lang, *paragraphs)

    async def language(self, incoming: Incoming, lang: str, args: str) -> Reply:
        code = language_code(args)
        if code is not None:
            if self.repository is not None:
                await self.repository.set_chat_language(incoming.chat, code, self.clock.now())
            return text_reply(code, "language.set", language=LANGUAGE_NAMES[code])
        choices = [
            Choice(label=name, command=f"/language {code}")
            for code, name in LANGUAGE_NAMES.items()
        ]
        return info(lang, Paragraph(text=t(lang, "language.pick")), choices=choices)

    def about_bot(self, asked: BotQuestion, lang: str) -> Reply:
        """What its command says, for a question about the bot asked in words."""
        match asked:
            case BotQuestion.PRIVACY:
                return self.what_is_stored(lang)
            case BotQuestion.ALERTS:
                return info(
                    lang,
                    Paragraph(text=t(lang, "subscribe.howto")),
                    choices=[Choice(label=t(lang, "subscribe.choose"), command="/subscribe")],
                )
            case BotQuestion.SOURCES:
                return self.sources(lang, intro="evidence.pick")

    def what_is_stored(self, lang: str) -> Reply:
        days = self.settings.privacy.pending_question_days
        return info(lang, Paragraph(text=t(lang, "privacy.body", days=days)))

    async def privacy(self, incoming: Incoming, lang: str) -> Reply:
        """/privacy: what is stored, and how many of this chat's questions wait for an answer."""
        reply = self.what_is_stored(lang)
        if self.repository is not None:
            waiting = await self.repository.waiting_count(incoming.chat, self.clock.now())
            if waiting:
                note = Paragraph(text=t(lang, "privacy.waiting", count=waiting), style=Style.NOTE)
                reply = reply.model_copy(update={"paragraphs": (*reply.paragraphs, note)})
        return reply

    async def forget(self, incoming: Incoming, lang: str, args: str) -> Reply:
        """/forgetme asks first; /forgetme confirm deletes everything tied to the chat."""
        if args.strip().lower() != "confirm" or self.repository is None:
            return info(
                lang,
                Paragraph(text=t(lang, "forget.ask")),
                choices=[
                    Choice(label=t(lang, "forget.confirm"), command="/forgetme confirm"),
                    Choice(label=t(lang, "forget.keep"), command="/privacy"),
                ],
            )
        deleted = await self.repository.forget_chat(incoming.chat)
        return Reply(paragraphs=(Paragraph(text=t(lang, "forget.done", **deleted)),), lang=lang)

    # -- subscriptions -------------------------------------------------------------------------

    async def chat_gone(self, chat: ChatRef) -> None:
        """The bot was removed from or blocked in a chat: it follows nothing any more."""
        if self.repository is not None:
            await self.repository.unsubscribe(chat)

    async def chat_moved(self, chat: ChatRef, new_chat_id: str) -> None:
        """A group became a supergroup (or a room was upgraded): subscriptions follow it."""
        if self.repository is not None:
            await self.repository.move_chat(chat, new_chat_id)

    async def subscriptions(self, incoming: Incoming, lang: str, name: str, args: str) -> Reply:
        """/subscribe [topic|all], /toggle topic, /unsubscribe [topic|all], /subscriptions."""
        repository = self.repository
        if repository is None:
            return text_reply(lang, "error.generic", ReplyKind.ERROR)
        chat = incoming.chat
        topic_id = args.strip().lower()
        topics = self.library.topics
        if name == "toggle" and topic_id == CORRECTIONS:
            wanted = not await repository.wants_corrections(chat)
            await repository.set_corrections(chat, wanted, self.clock.now())
            return await self.subscription_menu(incoming, lang)
        if topic_id and topic_id != "all":
            topic = self.library.topic_named(args)
            if topic is None:
                return text_reply(
                    lang, "subscribe.unknown", ReplyKind.ERROR, topic=args.strip()[:40]
                )
            topic_id = topic.id
        chosen = list(topics) if topic_id in ("all", "") else [topic_id]
        now = self.clock.now()
        match name:
            case "subscribe" if topic_id:
                await repository.subscribe(chat, chosen, now, lang)
                return text_reply(lang, "subscribe.done", topics=self._titles(chosen, lang))
            case "toggle" if topic_id and topic_id != "all":
                if topic_id in await repository.subscriptions(chat):
                    await repository.unsubscribe(chat, [topic_id])
                else:
                    await repository.subscribe(chat, [topic_id], now, lang)
            case "unsubscribe":
                if topic_id in ("", "all"):
                    await repository.unsubscribe(chat)
                    return text_reply(lang, "unsubscribe.all")
                await repository.unsubscribe(chat, chosen)
                return text_reply(lang, "unsubscribe.done", topics=self._titles(chosen, lang))
            case "subscriptions":
                followed = await repository.subscriptions(chat)
                if not followed:
                    return text_reply(lang, "subscriptions.empty")
                return text_reply(lang, "subscriptions.list", topics=self._titles(followed, lang))
        return await self.subscription_menu(incoming, lang)

    async def subscription_menu(self, incoming: Incoming, lang: str) -> Reply:
        """The topics as toggle buttons, ticked where the chat follows them."""
        assert self.repository is not None
        followed = set(await self.repository.subscriptions(incoming.chat))
        choices = [
            Choice(
                label=("✅ " if topic.id in followed else "▫️ ") + topic.title.get(lang),
                command=f"/toggle {topic.id}",
            )
            for topic in self.library.topics.values()
        ]
        corrections = await self.repository.wants_corrections(incoming.chat)
        choices.append(
            Choice(
                label=("✅ " if corrections else "▫️ ") + t(lang, "subscribe.corrections"),
                command=f"/toggle {CORRECTIONS}",
            )
        )
        choices.append(Choice(label=t(lang, "subscribe.all"), command="/subscribe all"))
        choices.append(Choice(label=t(lang, "subscribe.none"), command="/unsubscribe all"))
        text = t(lang, "subscribe.pick", count=len(followed), total=len(self.library.topics))
        return info(lang, Paragraph(text=text), choices=choices, replace=True)

    def _titles(self, topic_ids: list[str], lang: str) -> str:
        topics = self.library.topics
        return ", ".join(topics[i].title.get(lang) if i in topics else i for i in topic_ids)
