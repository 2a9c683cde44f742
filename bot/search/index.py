"""SearchIndex: index terms of each entry's fields -> entries, updated one entry at a time.

Readers never see half an update: every mutation is synchronous (no ``await`` inside), so on the
single event loop a search runs either before or after it, never during.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from bot.search.normalize import terms


@dataclass(frozen=True, slots=True)
class Document:
    """What the index needs of one searchable entry (a fact or a quote).

    ``fields`` are (text, weight) pairs: keywords weigh more than the answer text. ``phrases`` are
    the short phrasings used to re-rank the best candidates as whole strings.
    """

    id: str
    fields: tuple[tuple[str, float], ...]
    phrases: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()


@dataclass(slots=True)
class _Slot:
    """What stays in memory of an indexed document: not its texts, only its terms."""

    id: str
    topics: tuple[str, ...]
    phrases: tuple[str, ...]
    term_weights: dict[str, float] = field(default_factory=dict)


class SearchIndex:
    """An in-memory inverted index with per-field weights and a fuzzy-matchable vocabulary."""

    def __init__(self, documents: list[Document] | tuple[Document, ...] = ()) -> None:
        self._slots: list[_Slot | None] = []
        self._slot_of: dict[str, int] = {}
        self._postings: dict[str, dict[int, float]] = {}
        self._arrays: dict[str, tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]] = {}
        self._vocabulary: list[str] | None = None
        self._by_length: dict[int, list[str]] = {}
        self._vocabulary_version = 0
        for document in documents:
            self.add(document)

    def __len__(self) -> int:
        return len(self._slot_of)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._slot_of

    @property
    def capacity(self) -> int:
        """Number of slots, live or freed: the length of score arrays."""
        return len(self._slots)

    def add(self, document: Document) -> None:
        """Index a document, replacing any earlier version with the same id."""
        self.remove(document.id)
        weights: dict[str, float] = {}
        for text, weight in document.fields:
            for t in terms(text):
                if weights.get(t, 0.0) < weight:
                    weights[t] = weight
        slot = len(self._slots)
        phrases = tuple(p for p in (" ".join(terms(p)) for p in document.phrases) if p)
        self._slots.append(_Slot(document.id, document.topics, phrases, weights))
        self._slot_of[document.id] = slot
        for t, weight in weights.items():
            postings = self._postings.setdefault(t, {})
            if not postings:
                self._vocabulary_changed()
            postings[slot] = weight
            self._arrays.pop(t, None)

    def remove(self, doc_id: str) -> None:
        """Drop a document; unknown ids are ignored."""
        slot = self._slot_of.pop(doc_id, None)
        if slot is None:
            return
        entry = self._slots[slot]
        self._slots[slot] = None
        if entry is None:
            return
        for t in entry.term_weights:
            postings = self._postings.get(t)
            if postings is None:
                continue
            postings.pop(slot, None)
            self._arrays.pop(t, None)
            if not postings:
                del self._postings[t]
                self._vocabulary_changed()

    def _vocabulary_changed(self) -> None:
        self._vocabulary = None
        self._vocabulary_version += 1

    @property
    def vocabulary_version(self) -> int:
        """Changes whenever a term enters or leaves the vocabulary (a cache key)."""
        return self._vocabulary_version

    def vocabulary(self) -> list[str]:
        """All indexed terms, for fuzzy expansion of query terms."""
        if self._vocabulary is None:
            self._vocabulary = sorted(self._postings)
            self._by_length = {}
            for t in self._vocabulary:
                self._by_length.setdefault(len(t), []).append(t)
        return self._vocabulary

    def terms_of_length(self, low: int, high: int) -> list[str]:
        """Indexed terms whose length is within [low, high]: the only ones a few edits reach."""
        self.vocabulary()
        return [t for n in range(low, high + 1) for t in self._by_length.get(n, ())]

    def has_term(self, t: str) -> bool:
        return t in self._postings

    def document_frequency(self, t: str) -> int:
        return len(self._postings.get(t, ()))

    def idf(self, t: str) -> float:
        """Inverse document frequency; a term no entry has counts as rarer than any."""
        n = max(len(self._slot_of), 1)
        return math.log(1.0 + n / max(self.document_frequency(t), 0.5))

    def postings(self, t: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """Slots holding term ``t`` and the field weight it has in each."""
        cached = self._arrays.get(t)
        if cached is None:
            postings = self._postings.get(t, {})
            cached = (
                np.fromiter(postings.keys(), dtype=np.int64, count=len(postings)),
                np.fromiter(postings.values(), dtype=np.float32, count=len(postings)),
            )
            self._arrays[t] = cached
        return cached

    def slot_entry(self, slot: int) -> tuple[str, tuple[str, ...]] | None:
        """The id and topics of the document in ``slot``, or None if it was removed."""
        entry = self._slots[slot]
        return (entry.id, entry.topics) if entry else None

    def slot_of(self, doc_id: str) -> int | None:
        return self._slot_of.get(doc_id)

    def slot_has_any(self, slot: int, candidates: tuple[str, ...]) -> bool:
        """Whether the document in ``slot`` holds any of the terms."""
        entry = self._slots[slot]
        return entry is not None and any(t in entry.term_weights for t in candidates)

    def slot_phrases(self, slot: int) -> tuple[str, ...]:
        entry = self._slots[slot]
        return entry.phrases if entry else ()
