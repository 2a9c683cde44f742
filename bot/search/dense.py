"""DenseIndex: documents as sets of passage vectors; a document scores its best passage.

Identical texts share one row (many facts share keywords), rows are float32 in one growing
matrix, and a document's rows are kept in compact int32 arrays, with the inverse (the documents
of each row) laid end to end, so that a search finds the nearest documents from the nearest rows
instead of reducing every document's rows. Like ``SearchIndex``, every mutation is synchronous,
so a search on the event loop never sees half a document.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bot.search.embedder import Vectors


@dataclass(frozen=True, slots=True)
class DenseHit:
    """A document and the cosine similarity of its passage nearest to the question."""

    doc_id: str
    similarity: float


class DenseIndex:
    """Documents -> passage vectors; cosine search by the best passage per document."""

    def __init__(self, dimensions: int) -> None:
        self._matrix = np.zeros((64, dimensions), dtype=np.float32)
        self._row_of: dict[str, int] = {}
        self._rows_of_doc: dict[str, npt.NDArray[np.int32]] = {}
        self._layout: _Layout | None = None

    def __len__(self) -> int:
        return len(self._rows_of_doc)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._rows_of_doc

    def _row(self, key: str, vector: Vectors) -> int:
        row = self._row_of.get(key)
        if row is None:
            row = len(self._row_of)
            if row == len(self._matrix):
                grown = np.zeros((2 * len(self._matrix), self._matrix.shape[1]), np.float32)
                grown[:row] = self._matrix
                self._matrix = grown
            self._matrix[row] = vector
            self._row_of[key] = row
        return row

    def add(self, doc_id: str, vectors: dict[str, Vectors]) -> None:
        """Index (or replace) a document by its passages' vectors, keyed by text hash."""
        rows = sorted({self._row(key, vector) for key, vector in vectors.items()})
        if rows:
            self._rows_of_doc[doc_id] = np.asarray(rows, dtype=np.int32)
        else:
            self._rows_of_doc.pop(doc_id, None)
        self._layout = None

    def remove(self, doc_id: str) -> None:
        if self._rows_of_doc.pop(doc_id, None) is not None:
            self._layout = None

    def _current_layout(self) -> _Layout:
        if self._layout is None:
            rows_of = dict(self._rows_of_doc)
            ids = list(rows_of)
            arrays = list(rows_of.values())
            flat = np.concatenate(arrays) if arrays else np.zeros(0, np.int32)
            owners = np.repeat(np.arange(len(ids), dtype=np.int32), [len(a) for a in arrays])
            by_row = np.argsort(flat, kind="stable")
            self._layout = _Layout(
                ids=ids,
                rows_of=rows_of,
                owners=owners[by_row],
                owners_start=np.searchsorted(flat[by_row], np.arange(len(self._row_of) + 1)),
            )
        return self._layout

    def search(self, query: Vectors) -> DenseScores:
        """The similarity of every row to the (normalised) query vector, by document."""
        return DenseScores(self._current_layout(), self._matrix[: len(self._row_of)] @ query)


@dataclass(frozen=True, slots=True)
class _Layout:
    """A snapshot of the documents' rows, and for each row the documents that hold it
    (``owners[owners_start[row]:owners_start[row + 1]]``, as positions in ``ids``)."""

    ids: list[str]
    rows_of: dict[str, npt.NDArray[np.int32]]
    owners: npt.NDArray[np.int32]
    owners_start: npt.NDArray[np.intp]


class DenseScores:
    """The similarity of every document to one question, worked out as far as it is asked."""

    def __init__(self, layout: _Layout, similarities: npt.NDArray[np.float32]) -> None:
        self._layout = layout
        self._similarities = similarities

    def _rows_nearest_first(self, count: int) -> npt.NDArray[np.intp]:
        similarities = self._similarities
        if count >= len(similarities):
            return np.argsort(-similarities, kind="stable")
        nearest = np.argpartition(-similarities, count - 1)[:count]
        return nearest[np.argsort(-similarities[nearest], kind="stable")]

    def top(self, limit: int) -> list[DenseHit]:
        """The ``limit`` nearest documents, best first (ties by id).

        A document's similarity is that of its nearest row, so walking rows nearest first
        meets the documents in order: the walk stops once it has ``limit`` of them and the
        next row is farther than the last one taken."""
        layout, similarities = self._layout, self._similarities
        found: dict[int, float] = {}
        count = 4 * limit + 64
        while True:
            rows = self._rows_nearest_first(count)
            last = -math.inf
            for row in rows.tolist():
                value = float(similarities[row])
                if len(found) >= limit and value < last:
                    return self._hits(found, limit)
                start, end = layout.owners_start[row], layout.owners_start[row + 1]
                for owner in layout.owners[start:end].tolist():
                    if owner not in found:
                        found[owner] = value
                        last = value
            if count >= len(similarities):
                return self._hits(found, limit)
            found.clear()
            count *= 8

    def _hits(self, found: dict[int, float], limit: int) -> list[DenseHit]:
        ids = self._layout.ids
        ordered = sorted(found.items(), key=lambda item: (-item[1], ids[item[0]]))[:limit]
        return [DenseHit(ids[i], value) for i, value in ordered]

    def of(self, doc_id: str) -> float | None:
        """The document's similarity (its nearest passage's), or None if it is not indexed."""
        rows = self._layout.rows_of.get(doc_id)
        return None if rows is None else float(self._similarities[rows].max())

    def mean_of_nearest(self, doc_id: str, count: int) -> float:
        """The mean similarity of the document's ``count`` nearest passages (0 if not indexed):
        an entry several of whose texts are near the question is surer than one with a single
        near text."""
        rows = self._layout.rows_of.get(doc_id)
        if rows is None:
            return 0.0
        similarities = self._similarities[rows]
        if len(similarities) > count:
            similarities = np.partition(similarities, len(similarities) - count)[-count:]
        return float(similarities.mean())
