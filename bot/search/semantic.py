"""SemanticIndex: the dense side of search, with embedding kept off the event loop.

Documents are queued as texts when they are put (synchronously, like the lexical index) and
embedded in a worker thread before the next search, so an entry an admin adds is found
semantically by the very next question. Question vectors are computed in the same worker and
never stored.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from functools import cache
from pathlib import Path

from bot.search.dense import DenseIndex, DenseScores
from bot.search.embedder import Vectors, load_embedder
from bot.search.vectors import PassageVectors, VectorCache, text_key

# What a question can say fits in this many characters; the rest only costs embedding time.
MAX_QUESTION_CHARS = 600


@cache
def passage_vectors(embedder: str, cache_path: Path | None) -> PassageVectors | None:
    """One store of passage vectors per model and cache file in a process; None for ``none``."""
    model = load_embedder(embedder)
    return None if model is None else PassageVectors(model, VectorCache(cache_path))


class SemanticIndex:
    """Dense vectors of every searchable entry, and nearest-entry search for a question."""

    def __init__(self, vectors: PassageVectors) -> None:
        self._vectors = vectors
        self.dense = DenseIndex(vectors.embedder.dimensions)
        # The answers alone: a question close to an entry's phrasings but far from what its
        # answer states ("when was Kozik born") is a near miss, not an answer.
        self.answers = DenseIndex(vectors.embedder.dimensions)
        self._pending: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
        self._lock = asyncio.Lock()

    def put(self, doc_id: str, answers: Sequence[str], phrasings: Sequence[str]) -> None:
        """Queue a document's answer texts and its other texts; both are embedded before the
        next search."""
        self._pending[doc_id] = (_distinct(answers), _distinct(phrasings))

    def remove(self, doc_id: str) -> None:
        self._pending.pop(doc_id, None)
        self.dense.remove(doc_id)
        self.answers.remove(doc_id)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def _embed(self, batch: _Batch) -> dict[str, Vectors]:
        return self._vectors.vectors([t for a, p in batch.values() for t in (*a, *p)])

    def _apply(self, batch: _Batch, vectors: dict[str, Vectors]) -> None:
        for doc_id, texts in batch.items():
            # Replaced or removed while it was being embedded: the newer version wins.
            if self._pending.get(doc_id) is texts:
                del self._pending[doc_id]
                answers, phrasings = texts
                self.answers.add(doc_id, {text_key(t): vectors[text_key(t)] for t in answers})
                self.dense.add(
                    doc_id, {text_key(t): vectors[text_key(t)] for t in (*answers, *phrasings)}
                )

    async def ready(self) -> None:
        """Embed every queued document, in a worker thread."""
        async with self._lock:
            while self._pending:
                batch = dict(self._pending)
                vectors = await asyncio.to_thread(self._embed, batch)
                self._apply(batch, vectors)

    async def embed_question(self, question: str) -> asyncio.Future[Vectors]:
        """Start embedding a question in the worker thread (after any queued documents); the
        returned future gives its vector, and the loop is free meanwhile."""
        await self.ready()
        return asyncio.get_running_loop().run_in_executor(
            None, self._vectors.embedder.encode_queries, [question[:MAX_QUESTION_CHARS]]
        )

    def scores(self, vector: Vectors) -> tuple[DenseScores, DenseScores]:
        """Similarity of every entry, and of every entry's answer, to a question's vector."""
        return self.dense.search(vector[0]), self.answers.search(vector[0])


_Batch = dict[str, tuple[tuple[str, ...], tuple[str, ...]]]


def _distinct(texts: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(t for t in texts if t.strip()))
