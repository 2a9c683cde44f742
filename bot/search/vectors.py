"""Passage vectors: embedded once, kept in memory for the process and cached on disk.

The disk cache is a small SQLite file keyed by (model id, SHA-256 of the text), with each vector
stored as float16, so a restart re-embeds nothing that is unchanged. It holds vectors of the
knowledge's own texts only, never of a user's question.

Everything here is synchronous and meant to run in the embedding worker thread.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bot.search.embedder import Embedder, Vectors

logger = logging.getLogger(__name__)

BATCH = 32


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class VectorCache:
    """float16 vectors on disk by (model id, text hash); a broken file is a cache miss."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _connect(self) -> sqlite3.Connection | None:
        if self._path is None:
            return None
        if self._connection is None:
            try:
                self._path.parent.mkdir(parents=True, exist_ok=True)
                connection = sqlite3.connect(self._path, check_same_thread=False)
                connection.execute(
                    "CREATE TABLE IF NOT EXISTS vectors (model TEXT NOT NULL, key TEXT NOT NULL,"
                    " vector BLOB NOT NULL, PRIMARY KEY (model, key)) WITHOUT ROWID"
                )
                self._connection = connection
            except (OSError, sqlite3.Error) as exc:
                logger.warning("vectors.cache_unavailable", extra={"error": str(exc)})
                self._path = None
                return None
        return self._connection

    def load(self, model: str, keys: Sequence[str]) -> dict[str, Vectors]:
        found: dict[str, Vectors] = {}
        with self._lock:
            connection = self._connect()
            if connection is None:
                return found
            try:
                for start in range(0, len(keys), 500):
                    chunk = list(keys[start : start + 500])
                    marks = ",".join("?" * len(chunk))
                    for key, blob in connection.execute(
                        f"SELECT key, vector FROM vectors WHERE model = ? AND key IN ({marks})",
                        (model, *chunk),
                    ):
                        found[key] = np.frombuffer(blob, dtype=np.float16).astype(np.float32)
            except sqlite3.Error as exc:
                logger.warning("vectors.cache_unreadable", extra={"error": str(exc)})
        return found

    def save(self, model: str, items: dict[str, Vectors]) -> None:
        with self._lock:
            connection = self._connect()
            if connection is None or not items:
                return
            try:
                with connection:
                    connection.executemany(
                        "INSERT OR REPLACE INTO vectors (model, key, vector) VALUES (?, ?, ?)",
                        [
                            (model, key, vector.astype(np.float16).tobytes())
                            for key, vector in items.items()
                        ],
                    )
            except sqlite3.Error as exc:
                logger.warning("vectors.cache_unwritable", extra={"error": str(exc)})


class PassageVectors:
    """Vectors of knowledge texts: memory first, then the disk cache, then the embedder."""

    def __init__(self, embedder: Embedder, cache: VectorCache) -> None:
        self.embedder = embedder
        self._cache = cache
        self._memory: dict[str, Vectors] = {}
        self._lock = threading.Lock()

    def vectors(self, texts: Sequence[str]) -> dict[str, Vectors]:
        """Vectors of ``texts`` by text key, embedding only those never seen."""
        keys = {text_key(t): t for t in texts}
        model = self.embedder.model_id
        with self._lock:
            missing = [k for k in keys if k not in self._memory]
            if missing:
                self._memory.update(self._cache.load(model, missing))
                missing = [k for k in missing if k not in self._memory]
            if missing:
                logger.info("vectors.embedding", extra={"texts": len(missing)})
                fresh: dict[str, Vectors] = {}
                for start in range(0, len(missing), BATCH):
                    batch = missing[start : start + BATCH]
                    encoded = self.embedder.encode_passages([keys[k] for k in batch])
                    fresh.update(zip(batch, encoded, strict=True))
                self._cache.save(model, fresh)
                self._memory.update(fresh)
            return {k: self._memory[k] for k in keys}
