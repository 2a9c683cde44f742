"""The dense index's nearest documents, found from their nearest rows, against every document's
best passage worked out directly."""

from __future__ import annotations

import numpy as np
import pytest

from bot.search.dense import DenseIndex


def unit(vector: np.ndarray) -> np.ndarray:
    return (vector / np.linalg.norm(vector)).astype(np.float32)


def built(seed: int) -> tuple[DenseIndex, dict[str, dict[str, np.ndarray]]]:
    """An index of 300 documents whose passages are drawn from 120 shared texts (as facts share
    keyword lists), some of them identical vectors under other keys (ties)."""
    rng = np.random.default_rng(seed)
    texts = {f"t{i}": unit(rng.normal(size=8)) for i in range(100)}
    texts |= {f"same{i}": texts[f"t{i}"] for i in range(20)}
    keys = sorted(texts)
    index = DenseIndex(8)
    documents = {}
    for n in range(300):
        chosen = rng.choice(keys, size=int(rng.integers(1, 6)), replace=False)
        documents[f"doc{n}"] = {k: texts[k] for k in chosen}
        index.add(f"doc{n}", documents[f"doc{n}"])
    return index, documents


def test_nearest_documents_are_those_of_their_best_passage() -> None:
    for seed in range(5):
        index, documents = built(seed)
        for name in [f"doc{n}" for n in range(0, 300, 7)]:
            index.remove(name)
            del documents[name]
        query = unit(np.random.default_rng(100 + seed).normal(size=8))
        best = {d: max(float(v @ query) for v in vs.values()) for d, vs in documents.items()}
        expected = sorted(best, key=lambda d: (-best[d], d))
        scores = index.search(query)
        for limit in (1, 5, 20, 299):
            hits = scores.top(limit)
            assert [h.doc_id for h in hits] == expected[:limit]
            assert [h.similarity for h in hits] == pytest.approx(
                [best[d] for d in expected[:limit]], abs=1e-6
            )
        for doc_id in expected[:30]:
            assert scores.of(doc_id) == pytest.approx(best[doc_id], abs=1e-6)
            passages = sorted((float(v @ query) for v in documents[doc_id].values()), reverse=True)
            assert scores.mean_of_nearest(doc_id, 2) == pytest.approx(
                np.mean(passages[:2]), abs=1e-6
            )
        assert scores.of("doc0") is None
        assert scores.mean_of_nearest("doc0", 2) == 0.0


def test_an_empty_index_has_no_nearest_documents() -> None:
    index = DenseIndex(8)
    assert index.search(unit(np.ones(8))).top(5) == []
    index.add("only", {"k": unit(np.ones(8))})
    index.remove("only")
    assert index.search(unit(np.ones(8))).top(5) == []
