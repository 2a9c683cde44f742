"""`match(index, query) -> MatchResult`: fuzzy, weighted scoring of a question; pure, sync, no I/O.

Scoring in two stages:

1. Every query term is expanded to the indexed terms within a few edits of it (rapidfuzz
   Levenshtein over the vocabulary: none for digits and words of up to four letters, one up to
   seven, two beyond). Each entry scores the IDF-weighted share
   of the query's terms it holds, times the weight of the field holding them: the *coverage*.
   A query word no entry knows counts against every entry, which is what makes off-topic
   questions ("the weather in Minsk") decline. So does a first name the knowledge only uses
   before a surname ("Alexander" of "Alexander Lukashenko") when the question follows it with
   a surname no entry knows ("Alexander Yaroshuk").
2. The best candidates are re-ranked by comparing the whole query with their phrasings
   (rapidfuzz ``token_set_ratio``/``token_sort_ratio``), which rewards word order and paraphrase.

The best entry is an answer only when its score clears ``min_score`` and no entry on another
topic is nearly tied with it; otherwise the result is a decline carrying the close candidates.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict
from rapidfuzz import fuzz, process
from rapidfuzz.distance import Levenshtein

from bot.search.index import SearchIndex
from bot.search.normalize import terms
from bot.search.stopwords import PLACES

MAX_QUERY_TERMS = 24
# A word no entry knows counts against every entry, but less than the rarest known word: it is
# as often a filler ("lodged", "size") as the point of an off-topic question ("weather").
UNKNOWN_WORD_WEIGHT = 0.7
PLACE_WEIGHT = 0.25
PLACE_TERMS = frozenset(t for place in PLACES for t in terms(place))


class MatchSettings(BaseModel):
    """Cut-offs of the lexical matcher (used alone with ``embedder = "none"``), the semantic
    model and where its vectors are cached; change them only with the figures quoted."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_score: float = 0.55
    min_coverage: float = 0.6
    strong_score: float = 0.78
    tie_margin: float = 0.015
    rerank_candidates: int = 20
    coverage_weight: float = 0.7
    embedder: Literal["e5-small", "none"] = "e5-small"
    # None: ``vectors.sqlite3`` beside the database (filled in by Settings).
    vector_cache: Path | None = None


@dataclass(frozen=True, slots=True)
class Hit:
    """One scored entry."""

    doc_id: str
    score: float
    coverage: float
    phrase: float
    topics: tuple[str, ...] = ()
    # The largest share of the question's weight held by one word this entry lacks: a rare
    # name or place the entry never mentions ("yarashuk's sentence") makes it a doubtful answer.
    missing: float = 0.0
    # Coverage counting only the question's words some entry knows: chatty words no entry
    # knows ("install", "boss") lower ``coverage`` but say nothing against this entry.
    known_coverage: float = 0.0


@dataclass(frozen=True, slots=True)
class MatchResult:
    """The ranked candidates and whether the best one is good enough to answer with."""

    hits: tuple[Hit, ...]
    answered: bool
    # The one question of a message that asks several that the answer is to (None: the whole).
    part: str | None = None
    # A question of one word that several entries could answer ("history"): not answered,
    # though the best entry clears the bar.
    ambiguous: bool = False

    @property
    def best(self) -> Hit | None:
        return self.hits[0] if self.hits else None


def max_edits(term: str) -> int:
    """Typos tolerated in a term: none in short words (they collide), more in long ones."""
    if term.isdigit() or len(term) <= 4:
        return 0
    return 1 if len(term) <= 7 else 2


def expand(index: SearchIndex, term: str) -> tuple[tuple[str, float], ...]:
    """Indexed terms that ``term`` stands for, with their similarity (1.0 for an exact hit)."""
    return _expand_cached(index, index.vocabulary_version, term)


@lru_cache(maxsize=50_000)
def _expand_cached(
    index: SearchIndex, vocabulary_version: int, term: str
) -> tuple[tuple[str, float], ...]:
    found: dict[str, float] = {}
    if index.has_term(term):
        found[term] = 1.0
    # An inflected form whose stem the stemmer missed (Latin-script Russian: "profsoyuznikov")
    # meets its indexed stem by dropping up to three trailing letters.
    for cut in range(1, 4):
        stem = term[:-cut]
        if len(stem) >= 5 and index.has_term(stem):
            found.setdefault(stem, 0.9)
    edits = max_edits(term)
    if edits == 0 or term in found:
        # A word the index knows is taken as written: looking for its near neighbours costs a
        # scan of the vocabulary and mostly finds other words.
        return tuple(found.items())
    nearby = index.terms_of_length(len(term) - edits, len(term) + edits)
    for candidate, distance, _ in process.extract(
        term, nearby, scorer=Levenshtein.distance, score_cutoff=edits, limit=6
    ):
        if candidate != term and not candidate.isdigit():
            found.setdefault(candidate, 1.0 - 0.2 * distance)
    return tuple(found.items())


def match(
    index: SearchIndex,
    query: str,
    settings: MatchSettings | None = None,
    also: Collection[str] = (),
) -> MatchResult:
    """Score ``query`` against every entry of ``index``; ``also`` names entries to score even
    outside the best candidates (those another retriever found)."""
    return LexicalMatch(index, query, settings).result(also)


class LexicalMatch:
    """A question scored against every entry of an index, with its best candidates re-ranked.

    Entries another retriever finds later are scored on request (``result(also=...)``), so the
    scoring can run while the question is being embedded. If the index changes in between, the
    question is scored again: slots may have been reused.
    """

    def __init__(
        self, index: SearchIndex, query: str, settings: MatchSettings | None = None
    ) -> None:
        self._index = index
        self._query = query
        self._settings = settings or MatchSettings()
        self._score()

    def _score(self) -> None:
        index = self._index
        self._version = index.changes
        # Best candidates and entries asked for since, by slot; None: a slot with no entry.
        self._hits: dict[int, Hit | None] = {}
        self._coverage: npt.NDArray[np.float32] | None = None
        self._query_terms = list(dict.fromkeys(terms(self._query)))[:MAX_QUERY_TERMS]
        self._scores = np.zeros(index.capacity, dtype=np.float32)
        self._total_weight = 0.0
        self._known: list[tuple[tuple[str, ...], float]] = []
        if not self._query_terms or len(index) == 0:
            return
        expanded = [expand(index, term) for term in self._query_terms]
        for at, (term, expansions) in enumerate(zip(self._query_terms, expanded, strict=True)):
            place = PLACE_WEIGHT if term in PLACE_TERMS else 1.0
            if at + 1 < len(expanded) and _first_name_of_another(
                index, expansions, expanded[at + 1]
            ):
                expansions = ()
            if not expansions:
                self._total_weight += index.idf(term) * UNKNOWN_WORD_WEIGHT * place
                continue
            exact = [t for t, similarity in expansions if similarity == 1.0]
            weight = index.idf(exact[0]) if exact else max(index.idf(t) * s for t, s in expansions)
            weight *= place
            self._total_weight += weight
            self._known.append((tuple(t for t, _ in expansions), weight))
            if len(expansions) == 1:
                slots, field_weights = index.postings(expansions[0][0])
                self._scores[slots] += field_weights * (expansions[0][1] * weight)
                continue
            best = np.zeros(index.capacity, dtype=np.float32)
            for t, similarity in expansions:
                slots, field_weights = index.postings(t)
                best[slots] = np.maximum(best[slots], field_weights * similarity)
            self._scores += best * weight
        if self._total_weight <= 0 or not self._scores.any():
            return
        self._coverage = coverage = self._scores / self._total_weight
        k = min(self._settings.rerank_candidates, int(np.count_nonzero(coverage)))
        top = (
            np.argpartition(-coverage, k - 1)[:k]
            if k < len(coverage)
            else np.arange(len(coverage))
        )
        self._query_text = " ".join(self._query_terms)
        self._known_weight = sum(w for _, w in self._known) or 1.0
        for slot in top.tolist():
            self._hits[slot] = self._hit(slot, coverage)

    def _hit(self, slot: int, coverage: npt.NDArray[np.float32]) -> Hit | None:
        index = self._index
        entry = index.slot_entry(slot)
        if entry is None or coverage[slot] <= 0:
            return None
        doc_id, topics = entry
        phrase = _phrase_similarity(self._query_text, index.slot_phrases(slot))
        cov = float(coverage[slot])
        score = (
            self._settings.coverage_weight * cov + (1 - self._settings.coverage_weight) * phrase
        )
        missing = max(
            (w for alternatives, w in self._known if not index.slot_has_any(slot, alternatives)),
            default=0.0,
        )
        return Hit(
            doc_id,
            round(score, 4),
            round(cov, 4),
            round(phrase, 4),
            topics,
            round(missing / self._total_weight, 4),
            round(float(self._scores[slot]) / self._known_weight, 4),
        )

    def result(self, also: Collection[str] = ()) -> MatchResult:
        """The ranked candidates, ``also`` included, and whether the best one answers."""
        if self._index.changes != self._version:
            self._score()
        if self._coverage is None:
            return MatchResult((), False)
        for slot in map(self._index.slot_of, also):
            if slot is not None and slot not in self._hits:
                self._hits[slot] = self._hit(slot, self._coverage)
        hits = sorted((h for h in self._hits.values() if h), key=lambda h: (-h.score, h.doc_id))
        return MatchResult(tuple(hits), _is_answer(hits, self._settings))


def _first_name_of_another(
    index: SearchIndex,
    expansions: tuple[tuple[str, float], ...],
    following: tuple[tuple[str, float], ...],
) -> bool:
    """A known first name followed by a surname no entry knows: "Alexander Yaroshuk" is not
    Alexander Lukashenko, so "Alexander" counts as unknown too."""
    return (
        bool(expansions)
        and not following
        and all(index.leads_names_only(t) for t, _ in expansions)
    )


def _phrase_similarity(query: str, phrases: Sequence[str]) -> float:
    """How closely the question's words match the entry's closest phrasing (0..1): the mean
    of rapidfuzz's token-set and token-sort ratios, scored in one call per ratio."""
    if not phrases:
        return 0.0
    as_sets = process.cdist([query], phrases, scorer=fuzz.token_set_ratio, dtype=np.float64)[0]
    sorted_ = process.cdist([query], phrases, scorer=fuzz.token_sort_ratio, dtype=np.float64)[0]
    return float((as_sets + sorted_).max()) / 200


def _is_answer(hits: list[Hit], settings: MatchSettings) -> bool:
    if not hits:
        return False
    best = hits[0]
    if best.score < settings.min_score or best.coverage < settings.min_coverage:
        return False
    if len(hits) > 1 and best.score < settings.strong_score:
        runner_up = hits[1]
        tied = best.score - runner_up.score < settings.tie_margin
        # Two near-equal entries on the same topic are both on point; on unrelated topics the
        # question is ambiguous, and guessing would risk an unrelated answer.
        return not (tied and not set(best.topics) & set(runner_up.topics))
    return True
