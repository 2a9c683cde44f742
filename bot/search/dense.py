"""DenseIndex: documents as sets of passage vectors; a document scores its best passage.

Identical texts share one row (many facts share keywords), rows are float32 in one growing
matrix, and a document's rows are kept in compact int32 arrays. Like ``SearchIndex``, every
mutation is synchronous, so a search on the event loop never sees half a document.
"""

from __future__ import annotations

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
            ids = list(self._rows_of_doc)
            arrays = [self._rows_of_doc[i] for i in ids]
            flat = np.concatenate(arrays) if arrays else np.zeros(0, np.int32)
            starts = np.zeros(len(arrays), dtype=np.int64)
            if arrays:
                np.cumsum([len(a) for a in arrays[:-1]], out=starts[1:])
            self._layout = _Layout(ids, {d: i for i, d in enumerate(ids)}, flat, starts)
        return self._layout

    def search(self, query: Vectors) -> DenseScores:
        """Every document's similarity to the (normalised) query vector."""
        layout = self._current_layout()
        if not layout.ids:
            return DenseScores(layout, np.zeros(0, np.float32))
        similarities = self._matrix[: len(self._row_of)] @ query
        return DenseScores(layout, np.maximum.reduceat(similarities[layout.rows], layout.starts))


@dataclass(frozen=True, slots=True)
class _Layout:
    """Documents in a fixed order with their rows laid end to end, for one reduceat."""

    ids: list[str]
    position: dict[str, int]
    rows: npt.NDArray[np.int32]
    starts: npt.NDArray[np.int64]


class DenseScores:
    """The similarity of every document to one question."""

    def __init__(self, layout: _Layout, best: npt.NDArray[np.float32]) -> None:
        self._layout = layout
        self._best = best

    def top(self, limit: int) -> list[DenseHit]:
        """The ``limit`` nearest documents, best first."""
        ids, best = self._layout.ids, self._best
        k = min(limit, len(ids))
        if k == 0:
            return []
        top = np.argpartition(-best, k - 1)[:k] if k < len(ids) else np.arange(len(ids))
        ordered = sorted(top.tolist(), key=lambda i: (-best[i], ids[i]))
        return [DenseHit(ids[i], float(best[i])) for i in ordered]

    def of(self, doc_id: str) -> float | None:
        i = self._layout.position.get(doc_id)
        return None if i is None else float(self._best[i])
