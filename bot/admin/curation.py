"""Admin commands: guided and one-shot forms with a preview, retract/restore, audit, stats, export.

A draft lives in memory only, per admin, until it is confirmed; confirming writes the entry, its
audit row (and, for an event, the alert outbox rows) in one transaction, then updates the live
library, so the change is searchable at once in every transport, or nothing happens at all.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from datetime import date as Date

from pydantic import BaseModel

from bot import answers
from bot.admin.forms import FORMS, FieldError, Form, build, display, entry_id, values_of
from bot.admin.roles import actor
from bot.alerts.notices import Correction
from bot.answers import text_reply
from bot.clock import Clock, day_of
from bot.domain import Attachment, Choice, Incoming, Paragraph, Reply, ReplyKind, Style
from bot.knowledge.export import to_single_yaml
from bot.knowledge.models import Event, Fact, Quote, Source
from bot.knowledge.validate import is_verbatim
from bot.library import Library
from bot.store.repositories import Repository
from bot.texts import t

logger = logging.getLogger(__name__)

SESSION_TTL = 30 * 60
ADD_COMMANDS = {"addfact": "fact", "addquote": "quote", "addsource": "source", "addevent": "event"}
SOURCE_PAGE = 8  # existing sources offered per page when a form asks for its source
MINOR = "minor"  # "/confirm minor": an edit that fixes a typo and sends no correction


@dataclass(slots=True)
class Draft:
    """An entry being written: its form, the values so far, and what is being asked."""

    form: Form
    values: dict[str, object] = field(default_factory=dict)
    existing: BaseModel | None = None
    asking: str | None = None
    single: bool = False
    started: float = 0.0
    # The field whose stored value the entry's checks refused: not offered to keep.
    rejected: str | None = None


def _reply(
    lang: str,
    *paragraphs: Paragraph,
    choices: list[Choice] | None = None,
    kind: ReplyKind = ReplyKind.INFO,
) -> Reply:
    return Reply(kind=kind, paragraphs=paragraphs, choices=tuple(choices or ()), lang=lang)


def _page_request(args: str) -> int | None:
    """The page ``/step page N`` asks for (1 if N is not a number); None for any other args."""
    parts = args.split()
    if not parts or parts[0].lower() != "page" or len(parts) > 2:
        return None
    arg = parts[1] if len(parts) == 2 else ""
    if not (arg.isascii() and arg.isdigit()):
        return 1
    return int(arg) if len(arg) < 7 else 10**6  # past the last page either way


class Curation:
    """Runs the admin commands of one process; drafts are keyed by admin."""

    def __init__(
        self,
        library: Library,
        repository: Repository,
        clock: Clock,
        on_publish: Callable[[], None],
        on_confirmed: Callable[[], None] = lambda: None,
        source_texts: Mapping[str, str] | None = None,
    ) -> None:
        """``source_texts``: the texts of the sources that have one here (``read_source_texts``);
        an excerpt from one of them must be in it word for word."""
        self.library = library
        self.source_texts = source_texts or {}
        self.repository = repository
        self.clock = clock
        self.on_publish = on_publish
        self.on_confirmed = on_confirmed
        self.drafts: dict[str, Draft] = {}

    def draft_of(self, incoming: Incoming) -> Draft | None:
        draft = self.drafts.get(actor(incoming))
        if draft is not None and self.clock.now() - draft.started > SESSION_TTL:
            del self.drafts[actor(incoming)]
            return None
        return draft

    # -- dispatch ------------------------------------------------------------------------------

    async def command(self, incoming: Incoming, name: str, args: str, lang: str) -> list[Reply]:
        if name in ADD_COMMANDS:
            return [await self.start(incoming, FORMS[ADD_COMMANDS[name]], args, lang)]
        if name in ("editfact", "retract", "restore") and not args.strip():
            help_text = t(lang, f"help.cmd.{name}")  # "stop serving a fact: /retract ID [reason]"
            usage = help_text[help_text.find(f"/{name}") :]
            return [text_reply(lang, "admin.needs_id", ReplyKind.ERROR, usage=usage)]
        match name:
            case "editfact":
                return [await self.edit_existing(incoming, args.strip(), lang)]
            case "retract" | "restore":
                entry_id, _, reason = args.strip().partition(" ")
                return [
                    await self.set_retracted(
                        incoming, entry_id, name == "retract", reason.strip(), lang
                    )
                ]
            case "cancel":
                self.drafts.pop(actor(incoming), None)
                return [text_reply(lang, "admin.cancelled")]
            case "unanswered":
                return [await self.unanswered(lang, args)]
            case "stats":
                return [await self.stats(lang)]
            case "audit":
                return [await self.audit(lang, args.strip())]
            case "export":
                return [self.export(lang)]
        draft = self.draft_of(incoming)
        if draft is None:
            return [text_reply(lang, "admin.no_draft", ReplyKind.ERROR)]
        match name:
            case "step":
                if args.strip() in self._offered(draft):
                    return [await self.receive(draft, args.strip(), lang)]
                page = _page_request(args)
                if draft.asking == "source" and page is not None:
                    return [self.ask(draft, lang, page=page).model_copy(update={"replace": True})]
                # A stale button (an earlier step's or a page's) never becomes another value.
                return [self.ask(draft, lang) if draft.asking else await self.preview(draft, lang)]
            case "skip":
                return [await self.skip(draft, lang)]
            case "edit":
                return [self.field_menu(draft, lang)]
            case "field":
                if args.strip() not in {f.name for f in draft.form.fields}:
                    return [self.field_menu(draft, lang)]
                draft.asking, draft.single = args.strip(), True
                return [self.ask(draft, lang)]
            case "confirm":
                return [await self.confirm(incoming, draft, lang, args.strip())]
        return [text_reply(lang, "admin.no_draft", ReplyKind.ERROR)]

    def _offered(self, draft: Draft) -> Collection[str]:
        """The values the buttons of the step being asked offer: topics or sources."""
        if draft.asking == "topic":
            return self.library.topics
        return self.library.sources if draft.asking == "source" else ()

    def asking(self, incoming: Incoming) -> Draft | None:
        """The sender's draft, if it waits for a field's value."""
        draft = self.draft_of(incoming)
        return draft if draft is not None and draft.asking is not None else None

    async def answer_text(self, incoming: Incoming, text: str, lang: str) -> Reply | None:
        """Plain text from an admin with an open draft is the value of the asked field."""
        draft = self.asking(incoming)
        return None if draft is None else await self.receive(draft, text, lang)

    # -- the form conversation -----------------------------------------------------------------

    async def start(self, incoming: Incoming, form: Form, args: str, lang: str) -> Reply:
        draft = Draft(form=form, started=self.clock.now())
        self.drafts[actor(incoming)] = draft
        if not args.strip():
            draft.asking = form.fields[0].name
            return self.ask(draft, lang, intro=True)
        # A new source given inline spans several parts; the form says which (forms.Form.split).
        parts = form.split(args)
        problem: tuple[str, str] | None = None
        for form_field, raw in zip(form.fields, parts, strict=False):
            if not raw and form_field.optional:
                continue
            try:
                draft.values[form_field.name] = form_field.parse(raw, self.library)
            except ValueError as exc:
                # Keep the other values: the admin resends only the field that was wrong.
                problem = problem or (form_field.name, str(exc))
        if problem is not None:
            return self.invalid(draft, problem[0], problem[1], lang)
        return await self.next_step(draft, lang)

    async def edit_existing(self, incoming: Incoming, entry_id: str, lang: str) -> Reply:
        fact = self.library.facts.get(entry_id)
        if fact is None:
            return text_reply(lang, "admin.unknown_id", ReplyKind.ERROR, id=entry_id[:60])
        form = FORMS["fact"]
        draft = Draft(
            form=form,
            values=values_of("fact", fact, self.library),
            existing=fact,
            started=self.clock.now(),
        )
        draft.asking = form.fields[0].name
        self.drafts[actor(incoming)] = draft
        return self.ask(draft, lang, intro=True)

    def ask(self, draft: Draft, lang: str, *, intro: bool = False, page: int = 1) -> Reply:
        """Ask for ``draft.asking``; existing sources are offered ``SOURCE_PAGE`` at a time."""
        assert draft.asking is not None
        name = draft.asking
        paragraphs = []
        if intro:
            opening = (
                t(lang, f"admin.intro.{draft.form.kind}")
                if draft.existing is None
                else t(lang, "admin.intro.edit", id=entry_id(draft.existing))
            )
            paragraphs.append(Paragraph(text=opening, style=Style.HEADING))
        paragraphs.append(Paragraph(text=t(lang, f"admin.ask.{name}")))
        current = draft.values.get(name)
        choices: list[Choice] = []
        if current is not None:
            paragraphs.append(
                Paragraph(text=t(lang, "admin.current", value=display(current)), style=Style.NOTE)
            )
            if name == "keywords":
                paragraphs.append(Paragraph(text=t(lang, "admin.keywords_add"), style=Style.NOTE))
        if current is not None and draft.rejected != name:
            choices.append(Choice(label=t(lang, "admin.keep"), command="/skip"))
        elif draft.form.field(name).optional:
            choices.append(Choice(label=t(lang, "admin.skip"), command="/skip"))
        if name == "topic":
            choices += [
                Choice(label=tp.title.get(lang), command=f"/step {tp.id}")
                for tp in self.library.topics.values()
            ]
        elif name == "source":
            sources = list(self.library.sources.values())
            pages = max(1, -(-len(sources) // SOURCE_PAGE))
            page = max(1, min(page, pages))
            if pages > 1:
                paragraphs.append(
                    Paragraph(
                        text=t(lang, "page.counter", page=page, pages=pages), style=Style.NOTE
                    )
                )
            choices += [
                Choice(label=answers.shorten(s.title.get(lang)), command=f"/step {s.id}")
                for s in sources[(page - 1) * SOURCE_PAGE : page * SOURCE_PAGE]
            ]
            if page > 1:
                choices.append(
                    Choice(label=t(lang, "page.previous"), command=f"/step page {page - 1}")
                )
            if page < pages:
                choices.append(
                    Choice(label=t(lang, "page.next"), command=f"/step page {page + 1}")
                )
        choices.append(Choice(label=t(lang, "admin.cancel"), command="/cancel"))
        return _reply(lang, *paragraphs, choices=choices)

    async def receive(self, draft: Draft, text: str, lang: str) -> Reply:
        name = draft.asking
        if name is None:
            return await self.preview(draft, lang)
        draft.rejected = None
        current = draft.values.get(name)
        if name == "keywords" and isinstance(current, list) and text.lstrip().startswith("+"):
            text = ", ".join([*map(str, current), text.lstrip()[1:]])  # "+ more" adds to them
        try:
            draft.values[name] = draft.form.field(name).parse(text, self.library)
        except ValueError as exc:
            return self.invalid(draft, name, str(exc), lang)
        return await self.next_step(draft, lang)

    async def skip(self, draft: Draft, lang: str) -> Reply:
        name = draft.asking
        if name is not None and draft.rejected == name:
            # Skipping a refused value drops it (an optional field is then left out).
            draft.values.pop(name, None)
            draft.rejected = None
        if (
            name is not None
            and draft.values.get(name) is None
            and not draft.form.field(name).optional
        ):
            return self.invalid(draft, name, t(lang, "admin.required"), lang)
        if name is not None:
            draft.values.setdefault(name, None)
        return await self.next_step(draft, lang)

    async def next_step(self, draft: Draft, lang: str) -> Reply:
        names = [f.name for f in draft.form.fields]
        if draft.single or draft.asking is None:
            missing = [n for n in names if n not in draft.values]
        else:
            after = names[names.index(draft.asking) + 1 :] if draft.asking in names else names
            missing = [n for n in after if n not in draft.values or draft.existing is not None]
            missing = missing or [n for n in names if n not in draft.values]
        draft.single = False
        if missing:
            draft.asking = missing[0]
            return self.ask(draft, lang)
        draft.asking = None
        return await self.preview(draft, lang)

    def invalid(self, draft: Draft, name: str, problem: str, lang: str) -> Reply:
        draft.asking, draft.single = name, True
        asked = self.ask(draft, lang)
        problem_line = Paragraph(
            text=t(lang, "admin.invalid", field=name, problem=problem), style=Style.NOTE
        )
        return asked.model_copy(
            update={"kind": ReplyKind.ERROR, "paragraphs": (problem_line, *asked.paragraphs)}
        )

    def field_menu(self, draft: Draft, lang: str) -> Reply:
        choices = [
            Choice(
                label=f"{f.name}: {answers.shorten(display(draft.values.get(f.name)), 40)}",
                command=f"/field {f.name}",
            )
            for f in draft.form.fields
        ]
        choices.append(Choice(label=t(lang, "admin.cancel"), command="/cancel"))
        return _reply(lang, Paragraph(text=t(lang, "admin.pick_field")), choices=choices)

    def _built(self, draft: Draft, lang: str) -> tuple[BaseModel, Source | None]:
        """The entry the draft makes; FieldError names a field that is missing or rejected.

        A field is missing when /confirm (or /step) comes while the form is still asking for
        it, e.g. again after its value was rejected.
        """
        missing = draft.form.missing(draft.values)
        if missing is not None:
            raise FieldError(missing, "")
        entry, new_source = build(draft.form.kind, draft.values, self.library, draft.existing)
        self._check_verbatim(entry, lang)
        return entry, new_source

    def _check_verbatim(self, entry: BaseModel, lang: str) -> None:
        """A fact's or event's evidence, or a quote, must be the source's own words, where this
        process has the source's text (the seed texts; not a source added at run time)."""
        if isinstance(entry, Quote):
            field_name, excerpt = "text", entry.text
        elif isinstance(entry, Fact | Event) and entry.evidence:
            field_name, excerpt = "evidence", entry.evidence
        else:
            return
        text = self.source_texts.get(entry.sources[0])
        if text is not None and not is_verbatim(excerpt, text):
            source = self.library.sources[entry.sources[0]]
            raise FieldError(
                field_name, t(lang, "admin.not_verbatim", source=source.title.get(lang))
            )

    def _build_failed(self, draft: Draft, exc: FieldError, lang: str) -> Reply:
        """Ask for the missing field, or again for the one the model rejected (the first field
        if that is not a form field)."""
        missing = draft.form.missing(draft.values)
        if missing is not None:
            return self.invalid(draft, missing, t(lang, "admin.required"), lang)
        name = exc.field if exc.field in draft.values else draft.form.fields[0].name
        draft.rejected = name
        return self.invalid(draft, name, str(exc), lang)

    async def preview(self, draft: Draft, lang: str) -> Reply:
        try:
            entry, new_source = self._built(draft, lang)
        except FieldError as exc:
            return self._build_failed(draft, exc, lang)
        if self._is_correction(draft, entry):
            entry = entry.model_copy(update={"corrected": self._today()})
        shown = self.render(entry, new_source, lang)
        header = Paragraph(text=t(lang, "admin.preview"), style=Style.HEADING)
        # A fact's own buttons give way to Confirm and Edit here: list them, so that its
        # "See also:" is not left hanging and the admin sees what users will be offered.
        offered = [
            Paragraph(text=c.label, style=Style.ITEM)
            for c in (shown.choices if isinstance(entry, Fact) else ())
        ]
        paragraphs = [header, *shown.paragraphs, *offered]
        if isinstance(entry, Event):
            count = await self.repository.count_subscribers(list(entry.topics))
            paragraphs.append(
                Paragraph(text=t(lang, "admin.reach", count=count), style=Style.NOTE)
            )
        choices = [Choice(label=t(lang, "admin.confirm"), command="/confirm")]
        if self._is_correction(draft, entry):
            paragraphs.append(Paragraph(text=t(lang, "admin.correction_hint"), style=Style.NOTE))
            choices.append(
                Choice(label=t(lang, "admin.confirm_minor"), command=f"/confirm {MINOR}")
            )
        choices += [
            Choice(label=t(lang, "admin.edit"), command="/edit"),
            Choice(label=t(lang, "admin.cancel"), command="/cancel"),
        ]
        return _reply(lang, *paragraphs, choices=choices)

    def render(self, entry: BaseModel, new_source: Source | None, lang: str) -> Reply:
        """Exactly what users will see, rendered by the same code as live answers."""
        library = self.library
        added_source = new_source is not None and new_source.id not in library.sources
        if new_source is not None:
            library.sources[new_source.id] = new_source
        try:
            match entry:
                case Fact():
                    return answers.answer_fact(library, entry, lang)
                case Quote():
                    return answers.answer_quote(library, entry, lang)
                case Event():
                    return answers.alert_reply(library, entry, lang)
                case Source():
                    return _reply(
                        lang,
                        Paragraph(
                            text=answers.describe_source(entry, lang),
                            style=Style.ITEM,
                            url=str(entry.url) if entry.url else None,
                        ),
                    )
        finally:
            if added_source and new_source is not None:
                del library.sources[new_source.id]
        raise AssertionError(entry)

    async def confirm(self, incoming: Incoming, draft: Draft, lang: str, args: str = "") -> Reply:
        """Save the draft. An edit that changes a fact's answer is a correction, sent to the
        chats following its topics with ``args`` as the reason, unless ``args`` is "minor"."""
        try:
            entry, new_source = self._built(draft, lang)
        except FieldError as exc:
            return self._build_failed(draft, exc, lang)
        action = "edit" if draft.existing is not None else "add"
        correction = None
        if self._is_correction(draft, entry) and args.lower() != MINOR:
            today = self._today()
            entry = entry.model_copy(update={"corrected": today})
            correction = Correction(
                fact_id=entry_id(entry), retracted=False, day=today, reason=args[:300] or None
            )
        recipients = await self.save(
            incoming,
            draft.form.kind,
            entry,
            draft.existing,
            action,
            new_source=new_source,
            reason=correction.reason if correction else None,
            correction=correction,
        )
        self.drafts.pop(actor(incoming), None)
        saved_id = entry_id(entry)
        if correction is not None:
            return _reply(
                lang,
                Paragraph(text=t(lang, "admin.saved", id=saved_id)),
                Paragraph(text=t(lang, "admin.corrections_sent", count=recipients or 0)),
            )
        if recipients is not None:
            return text_reply(lang, "admin.published", id=saved_id, count=recipients)
        return text_reply(lang, "admin.saved", id=saved_id)

    @staticmethod
    def _is_correction(draft: Draft, entry: BaseModel) -> bool:
        """An edit that changes what a fact answers (unless confirmed as minor)."""
        before = draft.existing
        return (
            isinstance(before, Fact) and isinstance(entry, Fact) and entry.answer != before.answer
        )

    def _today(self) -> Date:
        return datetime.fromtimestamp(self.clock.now(), UTC).date()

    async def save(
        self,
        incoming: Incoming,
        kind: str,
        entry: BaseModel,
        before: BaseModel | None,
        action: str,
        *,
        new_source: Source | None = None,
        reason: str | None = None,
        correction: Correction | None = None,
    ) -> int | None:
        """One transaction: entry (+ new source), audit rows, outbox rows (an event's alerts or
        a fact's correction) and the mark to match waiting questions again; then the library.

        Returns how many chats an event's alerts or a correction were queued for."""
        now = self.clock.now()
        who = actor(incoming)
        recipients: int | None = None
        async with self.repository.db.transaction() as conn:
            if new_source is not None:
                await self.repository.save_entry_in(
                    conn,
                    kind="source",
                    entry=new_source,
                    before=None,
                    actor=who,
                    action="add",
                    now=now,
                )
            audit_id = await self.repository.save_entry_in(
                conn,
                kind=kind,
                entry=entry,
                before=before,
                actor=who,
                action=action,
                now=now,
                reason=reason,
            )
            if isinstance(entry, Event):
                recipients = await self.repository.publish_event_in(conn, entry, now) or 0
            if isinstance(entry, Fact) and correction is not None:
                recipients = await self.repository.queue_correction_in(
                    conn,
                    f"correction:{entry.id}:{audit_id}",
                    list(entry.topics),
                    correction.model_dump_json(),
                    now,
                )
            rematch = isinstance(entry, Quote | Event) or (
                isinstance(entry, Fact) and not entry.retracted
            )
            if rematch:
                await self.repository.queue_rematch_in(conn, entry_id(entry), now)
            if new_source is not None:
                await self.repository.announce_entry_in(conn, "source", new_source.id)
            await self.repository.announce_entry_in(conn, kind, entry_id(entry))
        if new_source is not None:
            self.library.put_source(new_source)
        match entry:
            case Fact():
                self.library.put_fact(entry)
            case Quote():
                self.library.put_quote(entry)
            case Source():
                self.library.put_source(entry)
            case Event():
                self.library.put_event(entry)
        if isinstance(entry, Event) or correction is not None:
            self.on_publish()
        if rematch:
            self.on_confirmed()
        logger.info(
            "admin.saved", extra={"kind": kind, "entry": entry_id(entry), "action": action}
        )
        return recipients

    # -- retract / restore ---------------------------------------------------------------------

    async def set_retracted(
        self, incoming: Incoming, fact_id: str, retracted: bool, reason: str, lang: str
    ) -> Reply:
        fact = self.library.facts.get(fact_id)
        if fact is None:
            return text_reply(lang, "admin.unknown_id", ReplyKind.ERROR, id=fact_id[:60])
        if fact.retracted == retracted:
            return text_reply(
                lang, "admin.already_retracted" if retracted else "admin.not_retracted", id=fact_id
            )
        updated = fact.model_copy(update={"retracted": retracted})
        # A restore is told too: the chats that follow the fact were told it was withdrawn.
        correction = Correction(
            fact_id=fact_id,
            retracted=retracted,
            restored=not retracted,
            day=self._today(),
            reason=reason[:300] or None,
        )
        recipients = await self.save(
            incoming,
            "fact",
            updated,
            fact,
            "retract" if retracted else "restore",
            reason=reason[:300] or None,
            correction=correction,
        )
        done = text_reply(lang, "admin.retracted" if retracted else "admin.restored", id=fact_id)
        sent = Paragraph(text=t(lang, "admin.corrections_sent", count=recipients or 0))
        return done.model_copy(update={"paragraphs": (*done.paragraphs, sent)})

    # -- reports -------------------------------------------------------------------------------

    def _since(self, days: int) -> str:
        return day_of(self.clock.now() - days * 86400)

    async def unanswered(self, lang: str, args: str) -> Reply:
        days = int(args) if args.strip().isdigit() and 0 < int(args) <= 366 else 7
        rows = await self.repository.unanswered(self._since(days))
        waiting = await self.repository.waiting_by_wording(self.clock.now())
        period = (
            t(lang, "admin.period.one_day")
            if days == 1
            else t(lang, "admin.period.days", days=days)
        )
        if not rows and not waiting:
            return text_reply(lang, "admin.unanswered_none", period=period)
        paragraphs = [
            Paragraph(text=t(lang, "admin.unanswered", period=period), style=Style.HEADING)
        ]
        paragraphs += [Paragraph(text=f"{n} × {text}", style=Style.ITEM) for text, n in rows]
        if waiting:
            paragraphs.append(Paragraph(text=t(lang, "admin.waiting"), style=Style.HEADING))
            paragraphs += [
                Paragraph(text=f"{n} × {text}", style=Style.ITEM) for text, n in waiting
            ]
        return _reply(lang, *paragraphs)

    async def stats(self, lang: str) -> Reply:
        days = await self.repository.question_days(self._since(7))
        answered = sum(a for _, a, _ in days)
        total = answered + sum(d for _, _, d in days)
        paragraphs = [
            Paragraph(
                text=t(
                    lang,
                    "admin.stats",
                    total=total,
                    rate=f"{answered / total:.0%}" if total else "—",
                ),
                style=Style.HEADING,
            )
        ]
        if days:
            paragraphs.append(Paragraph(text=t(lang, "admin.stats_per_day")))
            paragraphs += [
                Paragraph(text=f"{day}: {a + d} ({a} / {d})", style=Style.ITEM)
                for day, a, d in days
            ]
        top = await self.repository.top_entries(self._since(7))
        if top:
            paragraphs.append(Paragraph(text=t(lang, "admin.top_facts")))
            paragraphs += [
                Paragraph(text=f"{n} × {self._entry_line(entry, lang)}", style=Style.ITEM)
                for entry, n in top
            ]
        subscribers = await self.repository.subscribers_per_topic()
        paragraphs.append(Paragraph(text=t(lang, "admin.subscribers")))
        paragraphs += [
            Paragraph(text=f"{n} × {self._topic_line(topic, lang)}", style=Style.ITEM)
            for topic, n in subscribers.items()
        ] or [Paragraph(text="—", style=Style.ITEM)]
        refused = await self.repository.refused_admin_total()
        paragraphs.append(
            Paragraph(text=t(lang, "admin.refused", count=refused), style=Style.NOTE)
        )
        return _reply(lang, *paragraphs)

    def _entry_line(self, entry_id: str, lang: str) -> str:
        """An entry's id (what /editfact takes) and what it answers, as its button says."""
        fact = self.library.facts.get(entry_id)
        return f"{entry_id} — {answers.fact_label(fact, lang)}" if fact else entry_id

    def _topic_line(self, topic_id: str, lang: str) -> str:
        topic = self.library.topics.get(topic_id)
        return f"{topic.title.get(lang)} ({topic_id})" if topic else topic_id

    async def audit(self, lang: str, entry_id: str) -> Reply:
        rows = await self.repository.audit(entry_id or None)
        if not rows:
            return text_reply(lang, "admin.audit_none")
        paragraphs = [Paragraph(text=t(lang, "admin.audit"), style=Style.HEADING)]
        for row in rows:
            when = datetime.fromtimestamp(int(str(row["at"])), UTC).strftime("%Y-%m-%d %H:%M")
            line = f"{when} {row['actor']} {row['action']} {row['kind']} {row['entry_id']}"
            if row["reason"]:
                line += f" ({row['reason']})"
            paragraphs.append(Paragraph(text=line, style=Style.ITEM))
            changes = _changes(row["before"], row["after"])
            if changes:
                paragraphs.append(Paragraph(text=changes, style=Style.NOTE))
        return _reply(lang, *paragraphs)

    def export(self, lang: str) -> Reply:
        text = to_single_yaml(self.library.snapshot())
        stamp = datetime.fromtimestamp(self.clock.now(), UTC).strftime("%Y%m%d-%H%M")
        reply = text_reply(lang, "admin.export")
        return reply.model_copy(
            update={
                "attachments": (
                    Attachment(filename=f"knowledge-{stamp}.yaml", content=text.encode()),
                )
            }
        )


def _changes(before: object, after: object) -> str:
    """Which top-level fields an edit changed, as ``field: old → new``."""
    if not isinstance(after, str):
        return ""
    new = json.loads(after)
    old = json.loads(before) if isinstance(before, str) else {}
    lines = []
    for key, value in new.items():
        if old.get(key) != value:
            shown_old = (
                answers.shorten(json.dumps(old.get(key), ensure_ascii=False), 80)
                if key in old
                else "—"
            )
            lines.append(
                f"{key}: {shown_old} → {answers.shorten(json.dumps(value, ensure_ascii=False), 80)}"
            )
    return "\n".join(lines)
