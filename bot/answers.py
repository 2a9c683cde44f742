"""Turn a match, an entry or nothing into a neutral `Reply`: answer + sources, quotes, declines."""

from __future__ import annotations

from datetime import date as Date

from babel.dates import format_date

from bot.domain import Choice, Evidence, Paragraph, Reply, ReplyKind, SourceRef, Style
from bot.knowledge.models import Event, Fact, Precision, Quote, Source
from bot.library import EVENT_PREFIX, FACT_PREFIX, QUOTE_PREFIX, Library
from bot.search.matcher import MatchResult
from bot.texts import language_name, t
from bot.web.links import fact_url

MAX_SUGGESTIONS = 3
MIN_SUGGESTION_SCORE = 0.25
LABEL_CHARS = 60


def text_reply(lang: str, key: str, kind: ReplyKind = ReplyKind.INFO, **params: object) -> Reply:
    """One fixed text of the catalogue as a reply."""
    return Reply(kind=kind, paragraphs=(Paragraph(text=t(lang, key, **params)),), lang=lang)


def shorten(text: str, limit: int = LABEL_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def format_event_date(event: Event, lang: str) -> str:
    """An event's date as precise as it is known, in the reader's language."""
    if event.precision is Precision.YEAR:
        return event.date
    if event.precision is Precision.MONTH:
        year, month = (int(x) for x in event.date.split("-"))
        return format_date(Date(year, month, 1), format="LLLL y", locale=lang)
    return format_date(Date.fromisoformat(event.date), format="long", locale=lang)


def source_ref(source: Source, lang: str = "en") -> SourceRef:
    return SourceRef(
        title=source.title.get(lang),
        author=source.author,
        publisher=source.publisher,
        date=source.date.isoformat() if source.date else None,
        url=str(source.url) if source.url else None,
    )


def source_refs(library: Library, source_ids: list[str], lang: str) -> tuple[SourceRef, ...]:
    return tuple(source_ref(library.sources[s], lang) for s in source_ids if s in library.sources)


def describe_source(source: Source, lang: str) -> str:
    """Title, author/publisher and date where known: "“Title”, Philip Stary"."""
    parts = [f"“{source.title.get(lang)}”"]
    parts += [p for p in (source.author, source.publisher) if p]
    if source.date:
        parts.append(format_date(source.date, format="long", locale=lang))
    return ", ".join(parts)


def source_paragraphs(library: Library, source_ids: list[str], lang: str) -> list[Paragraph]:
    known = [library.sources[s] for s in source_ids if s in library.sources]
    if not known:
        return []
    key = "answer.source" if len(known) == 1 else "answer.sources"
    text = t(lang, key, source="; ".join(describe_source(s, lang) for s in known))
    url = str(known[0].url) if len(known) == 1 and known[0].url else None
    return [Paragraph(text=text, style=Style.SOURCE, url=url)]


def fact_label(fact: Fact, lang: str) -> str:
    """A short label for a fact on a button: its first sample question in the language."""
    questions = getattr(fact.questions, lang) or fact.questions.en
    return shorten(questions[0] if questions else fact.answer.get(lang))


def quote_label(quote: Quote, lang: str) -> str:
    """A short label for a quote on a button: its opening words in the language (several
    quotes share a speaker, so the speaker alone would label them all alike)."""
    said = quote.translation.get(lang) if quote.translation else quote.text
    room = LABEL_CHARS - len(t(lang, "quote.choice", words=""))
    return t(lang, "quote.choice", words=shorten(said, room))


def fact_choice(fact: Fact, lang: str) -> Choice:
    return Choice(label=fact_label(fact, lang), command=f"/fact {fact.id}")


def evidence_choice(entry_id: str, lang: str) -> Choice:
    return Choice(label=t(lang, "evidence.button"), command=f"/evidence {entry_id}")


def entry_evidence(
    library: Library, excerpt: str | None, source_ids: list[str], lang: str
) -> Evidence | None:
    """The excerpt of an entry's first source (the one it is checked against), if it has one."""
    if not excerpt:
        return None
    source = library.sources.get(source_ids[0]) if source_ids else None
    return Evidence(
        excerpt=excerpt,
        language=source.language if source else "en",
        source=source_ref(source, lang) if source else None,
    )


def excerpt_of(library: Library, entry_id: str) -> tuple[str, list[str]] | None:
    """The excerpt and sources of a live fact, a quote or an event by id (ids are unique
    across the three kinds); None if there is no such entry or it has no excerpt."""
    fact = library.facts.get(entry_id)
    if fact is not None:
        return None if fact.retracted else (fact.evidence, fact.sources)
    quote = library.quotes.get(entry_id)
    if quote is not None:
        return quote.text, quote.sources
    event = library.events.get(entry_id)
    if event is not None and event.evidence:
        return event.evidence, event.sources
    return None


def evidence_reply(library: Library, entry_id: str, lang: str) -> Reply:
    """The words an entry rests on, marked as a quotation, then its source in full."""
    found = excerpt_of(library, entry_id)
    evidence = entry_evidence(library, *found, lang) if found else None
    if found is None or evidence is None:
        return Reply(
            kind=ReplyKind.ERROR,
            paragraphs=(Paragraph(text=t(lang, "evidence.unknown")),),
            lang=lang,
        )
    paragraphs = evidence_paragraphs(evidence, lang, Style.HEADING)
    paragraphs += source_paragraphs(library, found[1][:1], lang)
    return Reply(
        paragraphs=tuple(paragraphs),
        lang=lang,
        fact_id=entry_id,
        sources=(evidence.source,) if evidence.source else (),
        evidence=evidence,
    )


def evidence_paragraphs(evidence: Evidence, lang: str, title: Style) -> list[Paragraph]:
    """ "The source's own words", the excerpt as a quotation, and its language if not ours."""
    paragraphs = [
        Paragraph(text=t(lang, "evidence.title"), style=title),
        Paragraph(text=evidence.excerpt, style=Style.QUOTE),
    ]
    if evidence.language != lang:
        language = language_name(evidence.language, lang)
        paragraphs.append(
            Paragraph(text=t(lang, "evidence.original", language=language), style=Style.NOTE)
        )
    return paragraphs


def shared_answer(library: Library, fact: Fact, lang: str) -> Reply:
    """A fact's answer as a message that stands alone where it is shared (a Telegram inline
    result carries no buttons): no "See also" heading, and the source's own words written out
    before the source."""
    reply = answer_fact(library, fact, lang)
    related = t(lang, "answer.related")
    paragraphs = [p for p in reply.paragraphs if p.text != related]
    if reply.evidence is not None:
        sources = [i for i, p in enumerate(paragraphs) if p.style is Style.SOURCE]
        at = sources[0] if sources else len(paragraphs)
        paragraphs[at:at] = evidence_paragraphs(reply.evidence, lang, Style.NOTE)
    return reply.model_copy(update={"paragraphs": tuple(paragraphs), "choices": ()})


def with_page_link(library: Library, reply: Reply, public_url: str | None) -> Reply:
    """A reply about a fact, with the permanent address of its public page when there is one."""
    fact = library.facts.get(reply.fact_id or "")
    if not public_url or fact is None or fact.retracted:
        return reply
    link = Paragraph(
        text=t(reply.lang, "answer.page", url=fact_url(public_url, fact.id)), style=Style.NOTE
    )
    paragraphs = list(reply.paragraphs)
    sources = [i for i, p in enumerate(paragraphs) if p.style is Style.SOURCE]
    paragraphs.insert(sources[-1] + 1 if sources else len(paragraphs), link)  # before "See also"
    return reply.model_copy(update={"paragraphs": tuple(paragraphs)})


def answer_fact(library: Library, fact: Fact, lang: str, score: float = 1.0) -> Reply:
    paragraphs = [Paragraph(text=fact.answer.get(lang))]
    if fact.corrected is not None:
        day = format_date(fact.corrected, format="long", locale=lang)
        paragraphs.append(Paragraph(text=t(lang, "answer.corrected", day=day), style=Style.NOTE))
    paragraphs += source_paragraphs(library, fact.sources, lang)
    related = [library.facts[r] for r in fact.related if r in library.facts]
    related = [r for r in related if not r.retracted][:MAX_SUGGESTIONS]
    if related:
        paragraphs.append(Paragraph(text=t(lang, "answer.related"), style=Style.NOTE))
    return Reply(
        kind=ReplyKind.ANSWER,
        paragraphs=tuple(paragraphs),
        choices=(evidence_choice(fact.id, lang), *(fact_choice(r, lang) for r in related)),
        lang=lang,
        fact_id=fact.id,
        score=round(score, 4),
        sources=source_refs(library, fact.sources, lang),
        evidence=entry_evidence(library, fact.evidence, fact.sources, lang),
    )


def quote_paragraphs(library: Library, quote: Quote, lang: str) -> list[Paragraph]:
    paragraphs = [
        Paragraph(text=quote.text, style=Style.QUOTE),
        Paragraph(text=t(lang, "quote.said", speaker=quote.speaker.get(lang))),
    ]
    translated = quote.translation.get(lang) if quote.translation else None
    if translated and translated != quote.text:
        paragraphs.append(
            Paragraph(text=t(lang, "quote.translation", text=translated), style=Style.NOTE)
        )
    if quote.context:
        paragraphs.append(Paragraph(text=quote.context.get(lang), style=Style.NOTE))
    return paragraphs + source_paragraphs(library, quote.sources, lang)


def answer_quote(library: Library, quote: Quote, lang: str, score: float = 1.0) -> Reply:
    return Reply(
        kind=ReplyKind.ANSWER,
        paragraphs=tuple(quote_paragraphs(library, quote, lang)),
        choices=(evidence_choice(quote.id, lang),),
        lang=lang,
        fact_id=QUOTE_PREFIX + quote.id,
        score=round(score, 4),
        sources=source_refs(library, quote.sources, lang),
        evidence=entry_evidence(library, quote.text, quote.sources, lang),
    )


def answer_event(library: Library, event: Event, lang: str, score: float = 1.0) -> Reply:
    """An event asked about: its date, title, summary and source; its evidence, and the
    facts of its topic."""
    choices = [evidence_choice(event.id, lang)] if event.evidence else []
    if event.topics[0] in library.topics:
        choices.append(
            Choice(label=t(lang, "alert.related"), command=f"/topics {event.topics[0]}")
        )
    return Reply(
        kind=ReplyKind.ANSWER,
        paragraphs=tuple(event_paragraphs(library, event, lang)),
        choices=tuple(choices),
        lang=lang,
        fact_id=EVENT_PREFIX + event.id,
        score=round(score, 4),
        sources=source_refs(library, event.sources, lang),
        evidence=entry_evidence(library, event.evidence, event.sources, lang),
    )


def entry_answer(library: Library, doc_id: str, lang: str, score: float = 1.0) -> Reply | None:
    """The answer an entry of the index gives (a live fact, a quote or an event); None if
    it is gone."""
    if doc_id.startswith(FACT_PREFIX):
        fact = library.facts.get(doc_id.removeprefix(FACT_PREFIX))
        return None if fact is None or fact.retracted else answer_fact(library, fact, lang, score)
    if doc_id.startswith(QUOTE_PREFIX):
        quote = library.quotes.get(doc_id.removeprefix(QUOTE_PREFIX))
        return None if quote is None else answer_quote(library, quote, lang, score)
    if doc_id.startswith(EVENT_PREFIX):
        event = library.events.get(doc_id.removeprefix(EVENT_PREFIX))
        return None if event is None else answer_event(library, event, lang, score)
    return None


def answer_by_id(library: Library, entry_id: str, lang: str) -> Reply | None:
    """The answer an entry gives, known by its bare id (ids are unique across kinds, as
    ``kb validate`` checks); None if it is gone."""
    for prefix in (FACT_PREFIX, QUOTE_PREFIX, EVENT_PREFIX):
        reply = entry_answer(library, prefix + entry_id, lang)
        if reply is not None:
            return reply
    return None


def suggestion_choices(library: Library, result: MatchResult, lang: str) -> list[Choice]:
    """Up to three close facts, quotes or events, else nothing."""
    choices: list[Choice] = []
    for hit in result.hits:
        if len(choices) >= MAX_SUGGESTIONS or hit.score < MIN_SUGGESTION_SCORE:
            break
        if hit.doc_id.startswith(FACT_PREFIX):
            fact = library.facts.get(hit.doc_id.removeprefix(FACT_PREFIX))
            if fact and not fact.retracted:
                choices.append(fact_choice(fact, lang))
        elif hit.doc_id.startswith(QUOTE_PREFIX):
            quote = library.quotes.get(hit.doc_id.removeprefix(QUOTE_PREFIX))
            if quote:
                choices.append(
                    Choice(label=quote_label(quote, lang), command=f"/quote {quote.id}")
                )
        elif hit.doc_id.startswith(EVENT_PREFIX):
            event = library.events.get(hit.doc_id.removeprefix(EVENT_PREFIX))
            if event:
                label = shorten(f"{format_event_date(event, lang)}: {event.title.get(lang)}")
                choices.append(Choice(label=label, command=f"/fact {event.id}"))
    return choices


def topic_choices(library: Library, lang: str) -> list[Choice]:
    return [
        Choice(label=shorten(topic.title.get(lang)), command=f"/topics {topic.id}")
        for topic in library.topics.values()
    ]


def decline(
    library: Library, result: MatchResult, lang: str, *, refers_back: bool = False
) -> Reply:
    """Say honestly that there is no sourced answer; offer close facts or the topics. A
    question that names someone only as "he" or "they" is also told to name them."""
    choices = suggestion_choices(library, result, lang)
    paragraphs = [Paragraph(text=t(lang, "decline.no_answer"))]
    if refers_back:
        paragraphs.append(Paragraph(text=t(lang, "decline.name_them")))
    if choices:
        paragraphs.append(Paragraph(text=t(lang, "decline.suggest")))
    else:
        choices = topic_choices(library, lang)[:MAX_SUGGESTIONS]
        paragraphs.append(Paragraph(text=t(lang, "decline.topics")))
    return Reply(
        kind=ReplyKind.DECLINE,
        paragraphs=tuple(paragraphs),
        choices=tuple(choices),
        lang=lang,
        score=result.best.score if result.best else 0.0,
        suggestions=tuple(c.label for c in choices),
    )


def several_meanings(library: Library, result: MatchResult, lang: str) -> Reply:
    """A one-word question that several entries could answer: they are offered to pick from.
    An INFO reply, as it is no question the knowledge lacks."""
    choices = suggestion_choices(library, result, lang)
    return Reply(
        paragraphs=(Paragraph(text=t(lang, "ask.one_word")),),
        choices=tuple(choices),
        lang=lang,
        suggestions=tuple(c.label for c in choices),
    )


def personal_advice(library: Library, result: MatchResult, lang: str) -> Reply:
    """No advice on a person's own situation, a word of caution, and the close facts if any.
    An INFO reply: not a question the knowledge lacks, so nothing of it is counted or kept."""
    choices = suggestion_choices(library, result, lang)
    paragraphs = [Paragraph(text=t(lang, "advice.personal"))]
    if choices:
        paragraphs.append(Paragraph(text=t(lang, "decline.suggest")))
    return Reply(
        paragraphs=tuple(paragraphs),
        choices=tuple(choices),
        lang=lang,
        suggestions=tuple(c.label for c in choices),
    )


def answer(
    library: Library, result: MatchResult, lang: str, *, refers_back: bool = False
) -> Reply:
    """The reply to a free-text question (``refers_back``: see ``decline``)."""
    best = result.best
    reply = None
    if result.answered and best is not None:
        reply = entry_answer(library, best.doc_id, lang, best.score)
    elif result.ambiguous and not refers_back:
        return several_meanings(library, result, lang)
    if reply is None:
        return decline(library, result, lang, refers_back=refers_back)
    if result.part is not None:
        # One of several questions: say which, so the rest can be asked on their own.
        note = Paragraph(text=t(lang, "answer.part", part=shorten(result.part)), style=Style.NOTE)
        reply = reply.model_copy(update={"paragraphs": (note, *reply.paragraphs)})
    return reply


def event_paragraphs(library: Library, event: Event, lang: str) -> list[Paragraph]:
    """Date and title as a heading, then the summary and the source line."""
    return [
        Paragraph(
            text=f"{format_event_date(event, lang)}: {event.title.get(lang)}", style=Style.HEADING
        ),
        Paragraph(text=event.summary.get(lang)),
        *source_paragraphs(library, event.sources, lang),
    ]


def alert_reply(library: Library, event: Event, lang: str) -> Reply:
    """A new event as one alert message: date, title, summary, source, and what to do next."""
    paragraphs = event_paragraphs(library, event, lang)
    paragraphs[0] = Paragraph(
        text=t(lang, "alert.heading", title=paragraphs[0].text), style=Style.HEADING
    )
    choices: list[Choice] = []
    if event.evidence:
        choices.append(evidence_choice(event.id, lang))
    topic = library.topics.get(event.topics[0])
    if topic is not None:
        choices.append(Choice(label=t(lang, "alert.related"), command=f"/topics {topic.id}"))
        choices.append(
            Choice(
                label=shorten(t(lang, "alert.unsubscribe", topic=topic.title.get(lang))),
                command=f"/unsubscribe {topic.id}",
            )
        )
    return Reply(
        paragraphs=tuple(paragraphs),
        choices=tuple(choices),
        lang=lang,
        sources=source_refs(library, event.sources, lang),
        evidence=entry_evidence(library, event.evidence, event.sources, lang),
    )
