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
# Vectors of the built-in knowledge's texts, shipped with the package (``python -m bot kb
# vectors`` writes it), so a fresh install answers without embedding everything first. A text
# it lacks is embedded as usual: a stale file costs time, never a wrong answer.
SHIPPED = Path(__file__).with_name("knowledge-vectors.sqlite3")


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class VectorCache:
    """float16 vectors on disk by (model id, text hash); a broken file is a cache miss.

    Lookups fall back to the read-only ``shipped`` file."""

    def __init__(self, path: Path | None, shipped: Path | None = SHIPPED) -> None:
        self._path = path
        self._shipped = shipped
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
        with self._lock:
            found = _select(self._connect(), model, keys)
        missing = [k for k in keys if k not in found]
        if missing and self._shipped is not None and self._shipped.is_file():
            try:
                shipped = sqlite3.connect(f"file:{self._shipped}?mode=ro&immutable=1", uri=True)
            except sqlite3.Error:
                return found
            try:
                found.update(_select(shipped, model, missing))
            finally:
                shipped.close()
        return found

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

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


# Vectors already computed in this process, per model: shared by every library (the tests and
# the benchmarks build many), whichever disk cache each one was given.
_MEMORY: dict[str, dict[str, Vectors]] = {}
_MEMORY_LOCK = threading.Lock()


def _select(
    connection: sqlite3.Connection | None, model: str, keys: Sequence[str]
) -> dict[str, Vectors]:
    found: dict[str, Vectors] = {}
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


def write_shipped(path: Path, model: str, vectors: dict[str, Vectors]) -> None:
    """A fresh file holding exactly ``vectors`` (what ``kb vectors`` ships)."""
    path.unlink(missing_ok=True)
    cache = VectorCache(path, shipped=None)
    cache.save(model, vectors)
    cache.close()


class PassageVectors:
    """Vectors of knowledge texts: memory first, then the disk cache, then the embedder."""

    def __init__(
        self, embedder: Embedder, cache: VectorCache, memory: dict[str, Vectors] | None = None
    ) -> None:
        """``memory``: this process's vectors of the model unless given (a fresh one plays a
        new process)."""
        self.embedder = embedder
        self._cache = cache
        with _MEMORY_LOCK:
            self._memory = _MEMORY.setdefault(embedder.model_id, {}) if memory is None else memory
        self._lock = _MEMORY_LOCK

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
