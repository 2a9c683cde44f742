"""The live knowledge: entries by id plus the search index over them, updated together.

Curated entries come from ``knowledge/``; entries admins add at run time are applied on top
(by the store at start-up, and one by one as admins confirm them). Every update is synchronous,
so a search on the event loop sees an entry either fully or not at all.
"""

from __future__ import annotations

import calendar
import logging
import re
from dataclasses import replace

from rapidfuzz import fuzz

from bot.knowledge.models import Event, Fact, KnowledgeBase, Phrases, Quote, Source, Topic
from bot.references import refers_back
from bot.search.embedder import Vectors
from bot.search.fusion import DENSE_CANDIDATES, Candidate, candidates, decide, load_model
from bot.search.index import Document, SearchIndex
from bot.search.matcher import LexicalMatch, MatchResult, MatchSettings, match
from bot.search.normalize import (
    one_script_words,
    terms,
    without_chat,
    without_fillers,
    without_links,
    words,
)
from bot.search.semantic import SemanticIndex, passage_vectors
from bot.search.stopwords import STOPWORDS
from bot.search.translit import romanised, to_cyrillic

logger = logging.getLogger(__name__)

FACT_PREFIX = "fact:"
QUOTE_PREFIX = "quote:"
EVENT_PREFIX = "event:"
TOPIC_NAME_SCORE = 85  # rapidfuzz token-set ratio: the words typed are (nearly) in the title
_SENTENCE_END = re.compile(r"(?<=[.!?？…])\s+")


def search_form(query: str) -> str:
    """The question as both matchers and the type check see it: without links (their parts
    are not words of the question) or a chatty lead-in ("quick question:"), and in Cyrillic
    if it is romanised Russian or Belarusian
    (measured: the Latin form alone, or both forms, leave more romanised questions
    unanswered)."""
    query = one_script_words(without_links(query))
    lang = romanised(query)
    return without_chat(to_cyrillic(query, lang) if lang else query)


def question_parts(query: str) -> list[str]:
    """The questions of a message of several sentences: each sentence ended by a question
    mark, and a last one left open ("Hi! I'm a student. When were the unions liquidated?",
    "who heads the FPB? and what is article 33?"); [] for a message of one sentence. A
    statement is no question of its own."""
    sentences = [p.strip() for p in _SENTENCE_END.split(query.strip()) if p.strip()]
    if len(sentences) < 2:
        return []
    asked = [
        p
        for i, p in enumerate(sentences)
        if p.endswith(("?", "？")) or (i == len(sentences) - 1 and not p.endswith((".", "!", "…")))
    ]
    return [p for p in asked if terms(search_form(p))]


def _one_word(query: str) -> bool:
    """The message is one word, with no "what is" or "who" to say what is asked about it, or
    one word besides a pronoun that names no one ("who leads it?", "when was he appointed?")."""
    form = search_form(query)
    if len(words(without_fillers(form))) == 1:
        return True
    return refers_back(query) and len(set(terms(form))) == 1


def _topic_words(topic_ids: list[str], topics: dict[str, Topic]) -> str:
    return "\n".join(
        text
        for t in topic_ids
        if t in topics
        for text in (topics[t].title.en, topics[t].title.ru or "", topics[t].title.be or "")
    )


def fact_document(fact: Fact, topics: dict[str, Topic]) -> Document:
    """What the index sees of a fact: keywords weigh most, then phrasings, then the answer."""
    topic_words = _topic_words(fact.topics, topics)
    answer = "\n".join(x for x in (fact.answer.en, fact.answer.ru, fact.answer.be) if x)
    return Document(
        id=FACT_PREFIX + fact.id,
        fields=(
            ("\n".join(fact.keywords.all()), 1.0),
            ("\n".join(fact.questions.all()), 0.9),
            (answer, 0.6),
            (fact.evidence, 0.5),
            (topic_words, 0.3),
        ),
        phrases=(*fact.questions.all(), *fact.keywords.all()),
        topics=tuple(fact.topics),
    )


def keyword_lists(phrases: Phrases) -> list[str]:
    """One passage per language: a list of single keywords says little to an embedding model."""
    return [", ".join(k) for k in (phrases.en, phrases.ru, phrases.be) if k]


def fact_passages(fact: Fact) -> tuple[list[str], list[str]]:
    """What the dense index embeds of a fact: its answers; its phrasings and keyword lists."""
    answers = [x for x in (fact.answer.en, fact.answer.ru, fact.answer.be) if x]
    return answers, [*fact.questions.all(), *keyword_lists(fact.keywords)]


def quote_passages(quote: Quote) -> tuple[list[str], list[str]]:
    """What the dense index embeds of a quote: its words and translations; its keyword lists."""
    translation = quote.translation
    texts = [quote.text]
    if translation:
        texts += [x for x in (translation.ru, translation.be) if x]
    return texts, keyword_lists(quote.keywords)


def knowledge_passages(kb: KnowledgeBase) -> list[str]:
    """Every text the dense index may embed of the curated knowledge (what ships pre-embedded):
    the events' too, though facts tell them, as a retraction makes an event searchable."""
    groups = [
        *(fact_passages(f) for f in kb.facts if not f.retracted),
        *(quote_passages(q) for q in kb.quotes),
        *(event_passages(e) for e in kb.events),
    ]
    return [text for answers, phrasings in groups for text in (*answers, *phrasings)]


def _titles(event: Event) -> list[str]:
    return [x for x in (event.title.en, event.title.ru, event.title.be) if x]


def _summaries(event: Event) -> list[str]:
    return [x for x in (event.summary.en, event.summary.ru, event.summary.be) if x]


def event_when(event: Event) -> str:
    """An event's date as words the matchers and the type check read: "1995", "August 1995"."""
    year, _, month = event.date.partition("-")
    month = month.partition("-")[0]
    return f"{calendar.month_name[int(month)]} {year}" if month else year


def event_document(event: Event, topics: dict[str, Topic]) -> Document:
    """What the index sees of an event: its titles weigh as a fact's phrasings, its summaries
    and date as an answer."""
    return Document(
        id=EVENT_PREFIX + event.id,
        fields=(
            ("\n".join(_titles(event)), 0.9),
            ("\n".join([event_when(event), *_summaries(event)]), 0.6),
            (event.evidence or "", 0.5),
            (_topic_words(event.topics, topics), 0.3),
        ),
        phrases=tuple(_titles(event)),
        topics=tuple(event.topics),
    )


def event_passages(event: Event) -> tuple[list[str], list[str]]:
    """What the dense index embeds of an event: title and summary as its answer in each
    language; its titles as phrasings."""
    answers = [
        f"{title}. {summary}"
        for title, summary in (
            (event.title.en, event.summary.en),
            (event.title.ru, event.summary.ru),
            (event.title.be, event.summary.be),
        )
        if title and summary
    ]
    return answers, _titles(event)


def quote_document(quote: Quote) -> Document:
    """What the index sees of a quote: its words, translations, speaker and keywords."""
    translation = quote.translation
    translated = "\n".join(x for x in (translation.ru, translation.be) if x) if translation else ""
    speaker = "\n".join(x for x in (quote.speaker.en, quote.speaker.ru, quote.speaker.be) if x)
    return Document(
        id=QUOTE_PREFIX + quote.id,
        fields=(
            ("\n".join(quote.keywords.all()), 1.0),
            (quote.text, 0.7),
            (translated, 0.6),
            (speaker, 0.6),
            ("quote quotation said цитата цытата сказал сказалі", 0.4),
        ),
        phrases=tuple(quote.keywords.all()),
        topics=tuple(quote.topics),
    )


def _content_words(text: str) -> str:
    """The words of a name that say something ("the", "of" and "ILO's" apostrophes do not)."""
    return " ".join(w for w in words(text) if w not in STOPWORDS)


class Library:
    """Entries by id and the index that finds them."""

    def __init__(self, kb: KnowledgeBase, settings: MatchSettings | None = None) -> None:
        self.settings = settings or MatchSettings()
        self.sources: dict[str, Source] = {s.id: s for s in kb.sources}
        self.topics: dict[str, Topic] = {t.id: t for t in kb.topics}
        self.facts: dict[str, Fact] = {}
        self.quotes: dict[str, Quote] = {}
        self.events: dict[str, Event] = {}
        self._events_told_by: dict[str, set[str]] = {}
        self.index = SearchIndex()
        vectors = passage_vectors(self.settings.embedder, self.settings.vector_cache)
        self.semantic = SemanticIndex(vectors) if vectors is not None else None
        for fact in kb.facts:
            self.put_fact(fact)
        for quote in kb.quotes:
            self.put_quote(quote)
        for event in kb.events:
            self.put_event(event)

    def topic_named(self, name: str) -> Topic | None:
        """A topic by its id or its title in any of our languages, as a menu shows it or as
        people shorten it ("article 33", "UN experts", "репрессии"); None when no topic, or
        more than one, fits."""
        wanted = " ".join(name.split()).casefold()
        if not wanted:
            return None
        names = {
            topic.id: [
                topic.id.replace("-", " "),
                *(t for t in (topic.title.en, topic.title.ru, topic.title.be) if t),
            ]
            for topic in self.topics.values()
        }
        for topic_id, titles in names.items():
            if wanted == topic_id or wanted in {" ".join(t.split()).casefold() for t in titles}:
                return self.topics[topic_id]
        content = _content_words(wanted)
        if not content:
            return None
        scores = sorted(
            (max(fuzz.token_set_ratio(content, _content_words(t)) for t in titles), topic_id)
            for topic_id, titles in names.items()
        )
        (second, _), (best, topic_id) = [(0.0, ""), *scores][-2:]
        return self.topics[topic_id] if best >= TOPIC_NAME_SCORE and best > second else None

    async def search(self, query: str) -> MatchResult:
        """The best entries for a question, and whether the best one answers it.

        A message of several sentences that is declined as a whole may be answered by its first
        question (measured on the tuning sets: two more answered, none lost); when it asks
        several, the result says which one it was."""
        result, vector = await self._search(query)
        if result.answered:
            return result
        parts = question_parts(query)
        if parts:
            # Only the first question is tried, with the whole message's vector: it is most of
            # the message, and a declined message then costs one embedding, not two (measured:
            # no tuning or held-out figure moved; p99 at 10k facts 64 -> 44 ms).
            found, _ = await self._search(parts[0], vector)
            if found.answered:
                return replace(found, part=parts[0]) if len(parts) > 1 else found
        return result

    async def _search(
        self, query: str, vector: Vectors | None = None
    ) -> tuple[MatchResult, Vectors | None]:
        if self.semantic is None:
            return match(self.index, search_form(query), self.settings), None
        try:
            scored, vector = await self.candidates(query, self.semantic, vector)
        except Exception:
            # The model failing must not silence the bot: the lexical matcher answers alone.
            logger.exception("search.semantic_failed")
            return match(self.index, search_form(query), self.settings), None
        return decide(scored, load_model(), one_word=_one_word(query)), vector

    async def candidates(
        self, query: str, semantic: SemanticIndex, vector: Vectors | None = None
    ) -> tuple[list[Candidate], Vectors]:
        """What both retrievers propose for a question, with the decision model's features, and
        the question's vector (embedded here unless given)."""
        query = search_form(query)
        if vector is None:
            pending = await semantic.embed_question(without_fillers(query))
            # The lexical side is scored on the loop while the worker embeds (the engine
            # releases the GIL), so a question costs little more than its embedding.
            lexical = LexicalMatch(self.index, query, self.settings)
            vector = await pending
        else:
            lexical = LexicalMatch(self.index, query, self.settings)
        dense, answers = semantic.scores(vector)
        nearest = [h.doc_id for h in dense.top(DENSE_CANDIDATES)]
        return candidates(
            query, lexical.result(also=nearest), dense, answers, self.describe
        ), vector

    async def prepare(self) -> None:
        """Embed whatever is not embedded yet (at start-up: from the cache if warm)."""
        if self.semantic is not None:
            await self.semantic.ready()

    def describe(self, doc_id: str) -> tuple[str, tuple[str, ...]]:
        """An entry's answer text in every language, and its topics."""
        if doc_id.startswith(FACT_PREFIX) and (fact := self.facts.get(doc_id[len(FACT_PREFIX) :])):
            answer = " ".join(x for x in (fact.answer.en, fact.answer.ru, fact.answer.be) if x)
            return answer, tuple(fact.topics)
        if doc_id.startswith(QUOTE_PREFIX) and (
            quote := self.quotes.get(doc_id[len(QUOTE_PREFIX) :])
        ):
            return quote.text, tuple(quote.topics)
        if doc_id.startswith(EVENT_PREFIX) and (
            event := self.events.get(doc_id[len(EVENT_PREFIX) :])
        ):
            return " ".join([event_when(event), *_titles(event), *_summaries(event)]), tuple(
                event.topics
            )
        return "", ()

    def put_fact(self, fact: Fact) -> None:
        """Add or replace a fact; a retracted fact is kept but no longer found."""
        self.facts[fact.id] = fact
        doc_id = FACT_PREFIX + fact.id
        if fact.retracted:
            self._unindex(doc_id)
        else:
            self._index(fact_document(fact, self.topics), fact_passages(fact))
        for event_id in self._events_told_by.get(fact.id, ()):
            self._index_event(self.events[event_id])

    def put_quote(self, quote: Quote) -> None:
        self.quotes[quote.id] = quote
        self._index(quote_document(quote), quote_passages(quote))

    def put_source(self, source: Source) -> None:
        self.sources[source.id] = source

    def put_event(self, event: Event) -> None:
        """Add or replace an event; it is searchable while no fact that tells it is served."""
        self.events[event.id] = event
        for fact_id in event.facts:
            self._events_told_by.setdefault(fact_id, set()).add(event.id)
        self._index_event(event)

    def _index_event(self, event: Event) -> None:
        if any((f := self.facts.get(i)) and not f.retracted for i in event.facts):
            self._unindex(EVENT_PREFIX + event.id)
        else:
            self._index(event_document(event, self.topics), event_passages(event))

    def _index(self, document: Document, passages: tuple[list[str], list[str]]) -> None:
        """Make an entry searchable by both retrievers (its answers and other texts)."""
        self.index.add(document)
        if self.semantic is not None:
            self.semantic.put(document.id, *passages)

    def _unindex(self, doc_id: str) -> None:
        self.index.remove(doc_id)
        if self.semantic is not None:
            self.semantic.remove(doc_id)

    def apply(self, kind: str, payload: str) -> None:
        """Apply one run-time entry from the store on top of the curated ones."""
        match kind:
            case "fact":
                self.put_fact(Fact.model_validate_json(payload))
            case "quote":
                self.put_quote(Quote.model_validate_json(payload))
            case "source":
                self.put_source(Source.model_validate_json(payload))
            case "event":
                self.put_event(Event.model_validate_json(payload))

    def live_facts(self, topic_id: str | None = None) -> list[Fact]:
        """Facts that are served (not retracted), optionally of one topic, in file order."""
        return [
            f
            for f in self.facts.values()
            if not f.retracted and (topic_id is None or topic_id in f.topics)
        ]

    def timeline(self) -> list[Event]:
        return sorted(self.events.values(), key=lambda e: (e.date, e.id))

    def snapshot(self) -> KnowledgeBase:
        """Everything as one knowledge base, e.g. for export back to YAML."""
        return KnowledgeBase(
            sources=list(self.sources.values()),
            topics=list(self.topics.values()),
            facts=list(self.facts.values()),
            quotes=list(self.quotes.values()),
            events=self.timeline(),
        )
