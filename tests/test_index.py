"""The compact SearchIndex finds exactly what the plain dict-of-dicts index it replaced found.

``ReferenceIndex`` is that earlier implementation, kept here as the specification: the same
documents, added, replaced and removed in the same order, must give the same postings, the same
vocabulary and the same search results (scores, order, decision) on the real knowledge and on a
synthetic set with many one-entry terms.
"""

from __future__ import annotations

import math
import random

import numpy as np
import numpy.typing as npt
import pytest

from bot.knowledge.models import Fact, KnowledgeBase, Phrases
from bot.library import FACT_PREFIX, fact_document, quote_document
from bot.search.index import Document, NameLeads, SearchIndex
from bot.search.matcher import LexicalMatch, MatchResult, match
from bot.search.normalize import MAX_QUERY_CHARS, index_terms, terms
from bot.search.questions import HELD_OUT_SET, TUNING_SETS, load_questions

OFF_TOPIC = (
    "What is the capital of Australia?",
    "the weather in Minsk tomorrow",
    "кто выиграл чемпионат мира по футболу",
    "",
    "???",
)


class ReferenceIndex:
    """The earlier SearchIndex: a dict of term weights per entry and of slots per term."""

    changes = 0  # never changes while a question is scored here

    def __init__(self) -> None:
        self.slots: list[tuple[str, tuple[str, ...], tuple[str, ...], dict[str, float]] | None]
        self.slots = []
        self.slot_ids: dict[str, int] = {}
        self.posting_dicts: dict[str, dict[int, float]] = {}
        self.vocabulary_version = 0
        self.names = NameLeads()

    def __len__(self) -> int:
        return len(self.slot_ids)

    @property
    def capacity(self) -> int:
        return len(self.slots)

    def add(self, document: Document) -> None:
        self.remove(document.id)
        weights: dict[str, float] = {}
        for text, weight in document.fields:
            text_terms = index_terms(text)
            for t in text_terms:
                if weights.get(t, 0.0) < weight:
                    weights[t] = weight
            self.names.note(text, text_terms)
        slot = len(self.slots)
        phrases = tuple(p for p in (" ".join(terms(p)) for p in document.phrases) if p)
        self.slots.append((document.id, document.topics, phrases, weights))
        self.slot_ids[document.id] = slot
        for t, weight in weights.items():
            postings = self.posting_dicts.setdefault(t, {})
            if not postings:
                self.vocabulary_version += 1
            postings[slot] = weight

    def remove(self, doc_id: str) -> None:
        slot = self.slot_ids.pop(doc_id, None)
        if slot is None:
            return
        entry = self.slots[slot]
        self.slots[slot] = None
        assert entry is not None
        for t in entry[3]:
            postings = self.posting_dicts[t]
            del postings[slot]
            if not postings:
                del self.posting_dicts[t]
                self.vocabulary_version += 1

    def vocabulary(self) -> list[str]:
        return sorted(self.posting_dicts)

    def terms_of_length(self, low: int, high: int) -> list[str]:
        # Shortest first, then alphabetical: the order decides which of equally near terms
        # a query term expands to.
        return [t for n in range(low, high + 1) for t in self.vocabulary() if len(t) == n]

    def has_term(self, t: str) -> bool:
        return t in self.posting_dicts

    def leads_names_only(self, t: str) -> bool:
        return self.names.leads_only(t)

    def document_frequency(self, t: str) -> int:
        return len(self.posting_dicts.get(t, ()))

    def idf(self, t: str) -> float:
        n = max(len(self.slot_ids), 1)
        return math.log(1.0 + n / max(self.document_frequency(t), 0.5))

    def postings(self, t: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        postings = self.posting_dicts.get(t, {})
        return (
            np.fromiter(postings.keys(), dtype=np.int64, count=len(postings)),
            np.fromiter(postings.values(), dtype=np.float32, count=len(postings)),
        )

    def slot_entry(self, slot: int) -> tuple[str, tuple[str, ...]] | None:
        entry = self.slots[slot]
        return (entry[0], entry[1]) if entry else None

    def slot_of(self, doc_id: str) -> int | None:
        return self.slot_ids.get(doc_id)

    def slot_has_any(self, slot: int, candidates: tuple[str, ...]) -> bool:
        entry = self.slots[slot]
        return entry is not None and any(t in entry[3] for t in candidates)

    def slot_phrases(self, slot: int) -> tuple[str, ...]:
        entry = self.slots[slot]
        return entry[2] if entry else ()


def both(documents: list[Document]) -> tuple[SearchIndex, ReferenceIndex]:
    index, reference = SearchIndex(), ReferenceIndex()
    for document in documents:
        index.add(document)
        reference.add(document)
    return index, reference


def real_documents(kb: KnowledgeBase) -> list[Document]:
    topics = {t.id: t for t in kb.topics}
    return [
        *(fact_document(f, topics) for f in kb.facts if not f.retracted),
        *(quote_document(q) for q in kb.quotes),
    ]


def invented_name(rng: random.Random) -> str:
    return "".join(rng.choice("bdgklmnprstvz") + rng.choice("aeiou") for _ in range(3))


def typo(text: str, rng: random.Random) -> str:
    at = rng.randrange(1, max(2, len(text) - 1))
    return text[:at] + text[at + 1 :]


def synthetic(kb: KnowledgeBase, size: int, seed: int) -> tuple[list[Fact], list[str]]:
    """Real facts renamed with invented names (one-entry terms), and typed questions for them."""
    rng = random.Random(seed)
    base = [f for f in kb.facts if f.questions.en]
    facts, queries = [], []
    for n in range(size):
        fact = base[n % len(base)]
        names = [invented_name(rng), invented_name(rng)]
        question = f"{rng.choice(fact.questions.en)} {' '.join(names)}"
        facts.append(
            fact.model_copy(
                update={
                    "id": f"{fact.id}~syn-{n}",
                    "keywords": Phrases(en=[*fact.keywords.en, *names], ru=fact.keywords.ru),
                    "questions": Phrases(en=[question]),
                }
            )
        )
        queries.append(typo(question, rng))
    return facts, queries


def assert_same_results(index: SearchIndex, reference: ReferenceIndex, queries: list[str]) -> int:
    """Every query gives the same hits and decision from both; returns how many hit anything."""
    found = 0
    for query in queries:
        got: MatchResult = match(index, query)
        expected: MatchResult = match(reference, query)  # type: ignore[arg-type]
        assert got == expected, query
        found += bool(got.hits)
    return found


def assert_same_contents(index: SearchIndex, reference: ReferenceIndex) -> None:
    """Same vocabulary, postings (in order), entries, phrases and term membership."""
    assert len(index) == len(reference) and index.capacity == reference.capacity
    vocabulary = reference.vocabulary()
    assert index.vocabulary() == vocabulary
    for low, high in ((0, 4), (4, 6), (5, 9), (8, 40)):
        assert index.terms_of_length(low, high) == reference.terms_of_length(low, high)
    for t in vocabulary:
        slots, weights = index.postings(t)
        expected_slots, expected_weights = reference.postings(t)
        assert slots.tolist() == expected_slots.tolist(), t
        assert weights.tolist() == expected_weights.tolist(), t
        assert index.document_frequency(t) == reference.document_frequency(t)
    assert index.postings("nosuchterm")[0].size == 0 and not index.has_term("nosuchterm")
    probe = (*vocabulary[::7], "nosuchterm")
    for slot in range(reference.capacity):
        assert index.slot_entry(slot) == reference.slot_entry(slot)
        assert index.slot_phrases(slot) == reference.slot_phrases(slot)
        held = reference.slots[slot]
        for t in probe:
            assert index.slot_has_any(slot, (t,)) == reference.slot_has_any(slot, (t,))
        if held:
            assert index.slot_has_any(slot, ("nosuchterm", next(iter(held[3]))))


def test_real_knowledge_searches_as_before(kb: KnowledgeBase) -> None:
    index, reference = both(real_documents(kb))
    assert_same_contents(index, reference)
    questions = [q.text for q in load_questions(*TUNING_SETS, HELD_OUT_SET)]
    rng = random.Random(1)
    queries = [*questions, *(typo(q, rng) for q in questions), *OFF_TOPIC]
    assert len(queries) >= 100
    assert assert_same_results(index, reference, queries) >= 0.9 * len(questions)


def test_synthetic_set_searches_as_before(kb: KnowledgeBase) -> None:
    facts, queries = synthetic(kb, 3000, seed=7)
    topics = {t.id: t for t in kb.topics}
    index, reference = both([fact_document(f, topics) for f in facts])
    assert_same_contents(index, reference)
    assert assert_same_results(index, reference, queries[:300]) == 300


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_adds_replacements_and_removals_one_at_a_time(kb: KnowledgeBase, seed: int) -> None:
    rng = random.Random(seed)
    facts, queries = synthetic(kb, 400, seed=seed)
    topics = {t.id: t for t in kb.topics}
    # Few ids for many versions: most adds replace an entry, and terms come and go.
    versions = [
        fact_document(f.model_copy(update={"id": f"entry-{i % 60}"}), topics)
        for i, f in enumerate(facts)
    ]
    index, reference = SearchIndex(), ReferenceIndex()
    for step in range(600):
        if rng.random() < 0.3:
            doc_id = f"{'fact:' if rng.random() < 0.9 else 'gone:'}entry-{rng.randrange(60)}"
            index.remove(doc_id)
            reference.remove(doc_id)
        else:
            document = rng.choice(versions)
            index.add(document)
            reference.add(document)
        assert index.vocabulary_version == reference.vocabulary_version
        if step % 100 == 99:
            assert_same_contents(index, reference)
            assert_same_results(index, reference, rng.sample(queries, 30))
    for document in versions[:60]:
        index.remove(document.id)
        reference.remove(document.id)
    assert_same_contents(index, reference)
    assert len(index) == 0 and index.vocabulary() == []
    assert match(index, queries[0]).hits == ()


def test_a_question_scored_before_the_index_changed_is_scored_again() -> None:
    """Search scores the lexical side while the question is embedded; an admin's edit may land
    in between, and the result must be the new index's, not stale slots."""
    index = SearchIndex(
        [Document("a", (("union strike", 1.0),)), Document("b", (("strike potash", 0.5),))]
    )
    scored = LexicalMatch(index, "union strike potash")
    index.remove("a")
    index.add(Document("c", (("union strike potash miners", 1.0),)))
    index.add(Document("b", (("potash", 0.5),)))
    result = scored.result(also=["c", "b"])
    assert result == match(index, "union strike potash", also=["c", "b"])
    assert [h.doc_id for h in result.hits] == ["c", "b"] and result.answered


def test_entries_another_retriever_found_are_scored_too() -> None:
    documents = [Document(f"d{i}", ((f"strike word{i}", 1.0),)) for i in range(30)]
    index = SearchIndex([*documents, Document("far", (("strike", 0.1),))])
    assert "far" not in {h.doc_id for h in match(index, "strike").hits}
    assert "far" in {h.doc_id for h in LexicalMatch(index, "strike").result(also=["far"]).hits}


def test_postings_are_read_only_views() -> None:
    index = SearchIndex(
        [Document("a", (("union strike", 1.0),)), Document("b", (("strike", 0.5),))]
    )
    slots, weights = index.postings("strike")
    assert slots.tolist() == [0, 1] and weights.tolist() == [1.0, 0.5]
    with pytest.raises(ValueError):
        weights[0] = 2.0
    index.add(Document("a", (("union", 1.0),)))
    assert index.postings("strike")[0].tolist() == [1]
    assert index.postings("union")[0].tolist() == [2]


def learned(*texts: str) -> NameLeads:
    names = NameLeads()
    for text in texts:
        names.note(text, index_terms(text))
    return names


def test_a_word_seen_only_leading_a_name_is_told_apart() -> None:
    names = learned(
        "Alexander Lukashenko was elected.\nThe European Union withdrew trade preferences.",
        "European trade union leaders. Guy Ryder wrote to Guy.",
    )
    [alexander] = terms("Alexander")
    [european] = terms("European")
    [guy] = terms("Guy")
    assert names.leads_only(alexander)
    # Seen before a lower-case word, or alone: a word, not only a first name.
    assert not names.leads_only(european) and not names.leads_only(guy)
    # Texts joined by a newline are not one name.
    names = learned("Leonid Kozik\nMinsk Tractor Works")
    [kozik] = terms("Kozik")
    [minsk] = terms("Minsk")
    assert not names.leads_only(kozik) and names.leads_only(minsk)


def test_every_phrasing_of_a_long_field_is_indexed(kb: KnowledgeBase) -> None:
    """An entry's phrasings in three languages run to thousands of characters, beyond what is
    read of a question: the last (Belarusian) ones must be indexed too."""
    topics = {t.id: t for t in kb.topics}
    facts = [f for f in kb.facts if not f.retracted and f.questions.be]
    index = SearchIndex([fact_document(f, topics) for f in facts])
    assert len("\n".join(facts[0].questions.all())) > MAX_QUERY_CHARS
    for fact in facts:
        slot = index.slot_of(FACT_PREFIX + fact.id)
        for t in terms(fact.questions.be[-1]):
            assert slot in index.postings(t)[0].tolist(), (fact.id, t)


def test_index_terms_reads_a_text_of_any_length_without_splitting_words() -> None:
    text = " ".join(f"word{i}" for i in range(400))
    assert len(text) > 2 * MAX_QUERY_CHARS
    assert index_terms(text) == [t for w in text.split() for t in terms(w)]
