"""SearchIndex: index terms of each entry's fields -> entries, updated one entry at a time.

Readers never see half an update: every mutation is synchronous (no ``await`` inside), so on the
single event loop a search runs either before or after it, never during.

The layout is compact because a dict of weights per entry and of entries per term cost ~5 KB an
entry (over 500 MB at 100k entries): terms are interned as integer ids, all postings live in two
flat numpy arrays (int32 slots, float32 weights), and an entry keeps only a tuple of its term ids
and its phrases joined into one string.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from bot.search.normalize import index_terms, terms

Slots = npt.NDArray[np.int32]
_Scalar = TypeVar("_Scalar", bound=np.generic)
Weights = npt.NDArray[np.float32]


# A word followed by one space and a letter (the lookahead leaves "B" of "A B C" to pair again).
_WORD_AND_NEXT = re.compile(r"(?<![^\W_])([^\W_]+) (?=[^\W\d_])")
_NO_SLOTS: Slots = np.zeros(0, np.int32)
_NO_WEIGHTS: Weights = np.zeros(0, np.float32)
_NO_SLOTS.flags.writeable = _NO_WEIGHTS.flags.writeable = False


@dataclass(frozen=True, slots=True)
class Document:
    """What the index needs of one searchable entry (a fact, a quote or an event).

    ``fields`` are (text, weight) pairs: keywords weigh more than the answer text; separate the
    texts joined in one field with a newline, so that no name seems to run across them.
    ``phrases`` are the short phrasings used to re-rank the best candidates as whole strings.
    """

    id: str
    fields: tuple[tuple[str, float], ...]
    phrases: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Slot:
    """What stays in memory of an indexed document: not its texts, only its terms."""

    id: str
    topics: tuple[str, ...]
    # Normalised phrasings joined by newlines (terms never hold one): one object, not a tuple.
    phrases: str
    # Ascending, for bisection; the ints are the ones the term-id dict holds, so cost 8 bytes.
    term_ids: tuple[int, ...]


class _PostingPool:
    """Every term's postings, (slot, field weight) with slots ascending, in two flat arrays.

    Term ``i`` owns ``room[i]`` positions from ``start[i]``, of which the first ``size[i]`` are
    used. A full block moves to one twice as large; freed blocks are kept by size and reused.
    (A pair of numpy arrays per term would cost ~300 bytes even for the many terms, names and
    numbers, that only one entry holds.)
    """

    def __init__(self) -> None:
        self._slots: Slots = np.zeros(1024, np.int32)
        self._weights: Weights = np.zeros(1024, np.float32)
        self._end = 0
        self._start: npt.NDArray[np.int64] = np.zeros(256, np.int64)
        self._room: npt.NDArray[np.int32] = np.zeros(256, np.int32)
        self._size: npt.NDArray[np.int32] = np.zeros(256, np.int32)
        self._free_blocks: dict[int, list[int]] = {}

    def size(self, term_id: int) -> int:
        """How many slots hold the term: its document frequency."""
        return int(self._size[term_id])

    def get(self, term_id: int) -> tuple[Slots, Weights]:
        """Read-only views of the term's slots and weights, valid until the next mutation."""
        start = int(self._start[term_id])
        end = start + int(self._size[term_id])
        slots, weights = self._slots[start:end], self._weights[start:end]
        slots.flags.writeable = weights.flags.writeable = False
        return slots, weights

    def append(self, term_ids: npt.NDArray[np.intp], slot: int, weights: Weights) -> None:
        """Add ``slot`` (greater than any slot already added) to each of the distinct terms."""
        if len(term_ids) == 0:
            return
        self._ensure_terms(int(term_ids.max()) + 1)
        full = term_ids[self._size[term_ids] == self._room[term_ids]]
        for term_id in full.tolist():
            self._move(term_id, max(1, 2 * int(self._room[term_id])))
        at = self._start[term_ids] + self._size[term_ids]
        self._slots[at] = slot
        self._weights[at] = weights
        self._size[term_ids] += 1

    def discard(self, term_ids: tuple[int, ...], slot: int) -> list[int]:
        """Drop ``slot`` from each term's postings; returns the terms no slot holds any more."""
        ids = np.fromiter(term_ids, np.intp, len(term_ids))
        emptied = []
        starts, sizes = self._start[ids].tolist(), self._size[ids].tolist()
        for term_id, start, size in zip(term_ids, starts, sizes, strict=True):
            if size == 1:
                emptied.append(term_id)
                continue
            end = start + size
            at = start + int(self._slots[start:end].searchsorted(slot))
            # Shifting (not swapping in the last one) keeps the slots ascending.
            self._slots[at : end - 1] = self._slots[at + 1 : end]
            self._weights[at : end - 1] = self._weights[at + 1 : end]
        self._size[ids] -= 1
        for term_id in emptied:
            self._release(term_id)
        return emptied

    def _ensure_terms(self, count: int) -> None:
        if count > len(self._start):
            capacity = max(count, 2 * len(self._start))
            self._start = _grown(self._start, capacity)
            self._room = _grown(self._room, capacity)
            self._size = _grown(self._size, capacity)

    def _move(self, term_id: int, room: int) -> None:
        start = self._allocate(room)
        old, size = int(self._start[term_id]), int(self._size[term_id])
        self._slots[start : start + size] = self._slots[old : old + size]
        self._weights[start : start + size] = self._weights[old : old + size]
        self._release(term_id)
        self._start[term_id], self._room[term_id] = start, room

    def _release(self, term_id: int) -> None:
        room = int(self._room[term_id])
        if room:
            self._free_blocks.setdefault(room, []).append(int(self._start[term_id]))
        self._start[term_id] = self._room[term_id] = 0

    def _allocate(self, room: int) -> int:
        free = self._free_blocks.get(room)
        if free:
            return free.pop()
        start, self._end = self._end, self._end + room
        if self._end > len(self._slots):
            capacity = max(self._end, 2 * len(self._slots))
            self._slots = _grown(self._slots, capacity)
            self._weights = _grown(self._weights, capacity)
        return start


def _grown(array: npt.NDArray[_Scalar], capacity: int) -> npt.NDArray[_Scalar]:
    grown = np.zeros(capacity, array.dtype)
    grown[: len(array)] = array
    return grown


class NameLeads:
    """Which words of the indexed texts are only ever seen leading a name: "Alexander" of
    "Alexander Lukashenko". Such a first name is no evidence when a question gives it another
    surname ("Alexander Yaroshuk"). Only grows: a removed entry's names still count, which is
    harmless."""

    def __init__(self) -> None:
        self._leading: set[str] = set()
        self._otherwise: set[str] = set()

    def note(self, text: str, text_terms: list[str]) -> None:
        """Learn from one text and its ``index_terms``: a capitalised word followed, after one
        space, by another leads a name."""
        leading: Counter[str] = Counter()
        for pair in _WORD_AND_NEXT.finditer(text):
            first = pair.group(1)
            if first[0].isupper() and text[pair.end()].isupper():
                leading.update(terms(first))  # none for a stop word ("The ILO")
        self._leading.update(leading)
        seen = Counter(text_terms)
        self._otherwise.update(t for t, n in seen.items() if n > leading[t])

    def leads_only(self, t: str) -> bool:
        return t in self._leading and t not in self._otherwise


class SearchIndex:
    """An in-memory inverted index with per-field weights and a fuzzy-matchable vocabulary."""

    def __init__(self, documents: list[Document] | tuple[Document, ...] = ()) -> None:
        self._slots: list[_Slot | None] = []
        self._slot_of: dict[str, int] = {}
        self._term_id: dict[str, int] = {}
        self._terms: list[str | None] = []
        self._free_term_ids: list[int] = []
        self._postings = _PostingPool()
        # Many entries share a topic list; one tuple each would cost ~60 bytes an entry.
        self._topic_lists: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._vocabulary: list[str] | None = None
        self._by_length: dict[int, list[str]] = {}
        self._vocabulary_version = 0
        self._changes = 0
        self._names = NameLeads()
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

    @property
    def changes(self) -> int:
        """How many times documents were added or removed: scores by slot from an earlier
        count may name other documents now."""
        return self._changes

    def add(self, document: Document) -> None:
        """Index a document, replacing any earlier version with the same id."""
        self.remove(document.id)
        self._changes += 1
        weights: dict[str, float] = {}
        for text, weight in document.fields:
            text_terms = index_terms(text)
            for t in text_terms:
                if weights.get(t, 0.0) < weight:
                    weights[t] = weight
            self._names.note(text, text_terms)
        slot = len(self._slots)
        term_ids = [self._intern(t) for t in weights]
        self._postings.append(
            np.fromiter(term_ids, np.intp, len(term_ids)),
            slot,
            np.fromiter(weights.values(), np.float32, len(weights)),
        )
        phrases = "\n".join(p for p in (" ".join(terms(p)) for p in document.phrases) if p)
        topics = self._topic_lists.setdefault(document.topics, document.topics)
        self._slots.append(_Slot(document.id, topics, phrases, tuple(sorted(term_ids))))
        self._slot_of[document.id] = slot

    def leads_names_only(self, t: str) -> bool:
        """Whether the term's word is only ever seen as the first word of a name."""
        return self._names.leads_only(t)

    def remove(self, doc_id: str) -> None:
        """Drop a document; unknown ids are ignored."""
        slot = self._slot_of.pop(doc_id, None)
        if slot is None:
            return
        self._changes += 1
        entry = self._slots[slot]
        self._slots[slot] = None
        if entry is None:
            return
        for term_id in self._postings.discard(entry.term_ids, slot):
            t = self._terms[term_id]
            assert t is not None
            del self._term_id[t]
            self._terms[term_id] = None
            self._free_term_ids.append(term_id)
            self._vocabulary_changed()

    def _intern(self, t: str) -> int:
        term_id = self._term_id.get(t)
        if term_id is None:
            if self._free_term_ids:
                term_id = self._free_term_ids.pop()
                self._terms[term_id] = t
            else:
                term_id = len(self._terms)
                self._terms.append(t)
            self._term_id[t] = term_id
            self._vocabulary_changed()
        return term_id

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
            self._vocabulary = sorted(self._term_id)
            self._by_length = {}
            for t in self._vocabulary:
                self._by_length.setdefault(len(t), []).append(t)
        return self._vocabulary

    def terms_of_length(self, low: int, high: int) -> list[str]:
        """Indexed terms whose length is within [low, high]: the only ones a few edits reach."""
        self.vocabulary()
        return [t for n in range(low, high + 1) for t in self._by_length.get(n, ())]

    def has_term(self, t: str) -> bool:
        return t in self._term_id

    def document_frequency(self, t: str) -> int:
        term_id = self._term_id.get(t)
        return 0 if term_id is None else self._postings.size(term_id)

    def idf(self, t: str) -> float:
        """Inverse document frequency; a term no entry has counts as rarer than any."""
        n = max(len(self._slot_of), 1)
        return math.log(1.0 + n / max(self.document_frequency(t), 0.5))

    def postings(self, t: str) -> tuple[Slots, Weights]:
        """Slots holding term ``t`` (ascending) and the field weight it has in each: read-only
        views, valid until the index next changes."""
        term_id = self._term_id.get(t)
        return (_NO_SLOTS, _NO_WEIGHTS) if term_id is None else self._postings.get(term_id)

    def slot_entry(self, slot: int) -> tuple[str, tuple[str, ...]] | None:
        """The id and topics of the document in ``slot``, or None if it was removed."""
        entry = self._slots[slot]
        return (entry.id, entry.topics) if entry else None

    def slot_of(self, doc_id: str) -> int | None:
        return self._slot_of.get(doc_id)

    def slot_has_any(self, slot: int, candidates: tuple[str, ...]) -> bool:
        """Whether the document in ``slot`` holds any of the terms."""
        entry = self._slots[slot]
        if entry is None:
            return False
        held = entry.term_ids
        for t in candidates:
            term_id = self._term_id.get(t)
            if term_id is not None:
                at = bisect_left(held, term_id)
                if at < len(held) and held[at] == term_id:
                    return True
        return False

    def slot_phrases(self, slot: int) -> tuple[str, ...]:
        entry = self._slots[slot]
        return tuple(entry.phrases.split("\n")) if entry and entry.phrases else ()
