"""Search benchmark: index build time, p50/p99 latency, memory and top-1 accuracy of our matcher,
side by side with a naive baseline (rapidfuzz ``process.extractOne`` over concatenated fact texts),
on synthetic knowledge bases of 1k, 10k and 100k facts generated from the real ones.

Each synthetic fact is a real fact whose keywords and phrasings get two invented proper names
(like the names, places and case numbers that distinguish real facts). Each query is one of its
phrasings with a typo, the way people ask. Prints figures; asserts nothing.

The fused matcher (lexical + dense, ``Library.search``) is measured as served, question embedding
included, beside the embedding of the same questions alone (most of its cost). Embedding 100k invented phrasings would take hours, so a synthetic fact's dense rows
are its real fact's vectors plus one row for its own phrasing: the real phrasing's vector with a
little noise. Identical texts share a row, as they do in the bot.

    python benchmarks/search.py [--quick] [--sizes 1000 10000 100000] [--queries 300]
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import platform
import random
import string
import sys
import time
from pathlib import Path

from rapidfuzz import fuzz, process

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncio

import numpy as np

from bot.config import REPO_ROOT
from bot.knowledge.loader import load_knowledge
from bot.knowledge.models import Fact, KnowledgeBase, Phrases
from bot.library import FACT_PREFIX, Library, fact_document, fact_passages, search_form
from bot.search.index import SearchIndex
from bot.search.matcher import MatchSettings, match
from bot.search.normalize import without_fillers
from bot.search.semantic import SemanticIndex, passage_vectors
from bot.search.vectors import PassageVectors, text_key


def settle() -> None:
    """Collect garbage and give freed heap pages back to the OS (glibc), so that the next RSS
    difference counts what is built then, not pages freed earlier and reused."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * 4096 / 2**20


def invented_name(rng: random.Random) -> str:
    consonants, vowels = "bdgklmnprstvz", "aeiou"
    return "".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(rng.randint(2, 4)))


def typo(text: str, rng: random.Random) -> str:
    words = text.split()
    candidates = [i for i, w in enumerate(words) if len(w) > 5 and w.isalpha()]
    if not candidates:
        return text
    i = rng.choice(candidates)
    w = words[i]
    j = rng.randrange(1, len(w) - 1)
    words[i] = rng.choice(
        [w[:j] + w[j + 1 :], w[:j] + rng.choice(string.ascii_lowercase) + w[j + 1 :]]
    )
    return " ".join(words)


def synthesize(
    facts: list[Fact], size: int, seed: int
) -> tuple[list[Fact], list[tuple[str, str]]]:
    """``size`` facts derived from the real ones, and (query, expected fact id) pairs."""
    rng = random.Random(seed)
    out: list[Fact] = []
    queries: list[tuple[str, str]] = []
    with_questions = [f for f in facts if f.questions.en]
    for n in range(size):
        base = with_questions[n % len(with_questions)]
        names = [invented_name(rng), invented_name(rng)]
        question = f"{rng.choice(base.questions.en)} {names[0]} {names[1]}"
        fact = base.model_copy(
            update={
                "id": f"{base.id}~syn-{n}",
                "keywords": Phrases(en=[*base.keywords.en, *names], ru=base.keywords.ru),
                "questions": Phrases(en=[question]),
                "related": [],
            }
        )
        out.append(fact)
        queries.append((typo(question, rng), fact.id))
    rng.shuffle(queries)
    return out, queries


def fused_library(kb: KnowledgeBase, synthetic: list[Fact], vectors: PassageVectors) -> Library:
    """A library of the synthetic facts with dense rows derived from their real facts."""
    library = Library(
        kb.model_copy(update={"facts": synthetic, "quotes": []}), MatchSettings(embedder="none")
    )
    semantic = SemanticIndex(vectors)
    rng = np.random.default_rng(0)
    base_vectors: dict[str, tuple[dict[str, np.ndarray], dict[str, np.ndarray]]] = {}
    for fact in synthetic:
        base_id = fact.id.split("~")[0]
        if base_id not in base_vectors:
            answers, phrasings = fact_passages(library_base[base_id])
            found = vectors.vectors([*answers, *phrasings])
            base_vectors[base_id] = (
                {text_key(t): found[text_key(t)] for t in answers},
                {text_key(t): found[text_key(t)] for t in phrasings},
            )
        answers, phrasings = base_vectors[base_id]
        own = next(iter(phrasings.values())) + rng.normal(0, 0.02, 384).astype(np.float32)
        own /= np.linalg.norm(own)
        doc_id = FACT_PREFIX + fact.id
        semantic.answers.add(doc_id, answers)
        semantic.dense.add(doc_id, {**answers, **phrasings, text_key(fact.questions.en[0]): own})
    library.semantic = semantic
    return library


library_base: dict[str, Fact] = {}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def bench(
    size: int, kb: KnowledgeBase, topics: dict, n_queries: int, baseline_queries: int
) -> None:
    synthetic, queries = synthesize(kb.facts, size, seed=size)
    queries = queries[:n_queries]

    settle()
    before = rss_mb()
    start = time.perf_counter()
    index = SearchIndex()
    for fact in synthetic:
        # One at a time, as the bot does: a list of every document would be counted too.
        index.add(fact_document(fact, topics))
    index.vocabulary()
    build = time.perf_counter() - start
    memory = rss_mb() - before

    latencies: list[float] = []
    correct = 0
    for query, expected in queries:
        start = time.perf_counter()
        result = match(index, query)
        latencies.append((time.perf_counter() - start) * 1000)
        best = result.best
        correct += bool(result.answered and best and best.doc_id == FACT_PREFIX + expected)

    start = time.perf_counter()
    texts = [" ".join([f.answer.en, *f.keywords.all(), *f.questions.all()]) for f in synthetic]
    baseline_build = time.perf_counter() - start
    baseline_latencies: list[float] = []
    baseline_correct = 0
    sample = queries[:baseline_queries]
    for query, expected in sample:
        start = time.perf_counter()
        found = process.extractOne(query, texts, scorer=fuzz.WRatio)
        baseline_latencies.append((time.perf_counter() - start) * 1000)
        baseline_correct += bool(found and synthetic[found[2]].id == expected)

    del index
    vectors = passage_vectors("e5-small", REPO_ROOT / "data" / "vectors.sqlite3")
    fused_line = ""
    if vectors is not None:
        settle()
        before = rss_mb()
        start = time.perf_counter()
        library = fused_library(kb, synthetic, vectors)
        fused_build = time.perf_counter() - start
        fused_memory = rss_mb() - before
        fused_latencies: list[float] = []
        fused_correct = 0

        embedding_latencies: list[float] = []
        embedder = vectors.embedder

        async def run() -> None:
            nonlocal fused_correct
            for query, expected in queries:
                # The question's embedding alone, as search computes it, beside the whole search.
                start = time.perf_counter()
                embedder.encode_queries([without_fillers(search_form(query))])
                embedding_latencies.append((time.perf_counter() - start) * 1000)
                start = time.perf_counter()
                result = await library.search(query)
                fused_latencies.append((time.perf_counter() - start) * 1000)
                best = result.best
                fused_correct += bool(
                    result.answered and best and best.doc_id == FACT_PREFIX + expected
                )

        asyncio.run(run())
        fused_line = (
            f"\n{'':>7} | fused (embedding included): build {fused_build:6.2f} s, "
            f"p50 {percentile(fused_latencies, 50):6.2f} ms, "
            f"p99 {percentile(fused_latencies, 99):6.2f} ms, "
            f"top-1 {fused_correct / len(queries):6.1%}, +{fused_memory:5.0f} MB (both indexes)"
            f"\n{'':>7} | the question's embedding alone: "
            f"p50 {percentile(embedding_latencies, 50):6.2f} ms, "
            f"p99 {percentile(embedding_latencies, 99):6.2f} ms"
        )
        del library

    p99, b99 = percentile(latencies, 99), percentile(baseline_latencies, 99)
    print(
        f"{size:>7} | lexical: build {build:6.2f} s, p50 {percentile(latencies, 50):6.2f} ms, "
        f"p99 {p99:6.2f} ms, top-1 {correct / len(queries):6.1%} ({len(queries)} q), "
        f"+{memory:5.0f} MB | baseline: build {baseline_build:5.2f} s, "
        f"p50 {percentile(baseline_latencies, 50):8.2f} ms, p99 {b99:8.2f} ms, "
        f"top-1 {baseline_correct / len(sample):6.1%} ({len(sample)} q) | "
        f"p50 speed-up x{percentile(baseline_latencies, 50) / percentile(latencies, 50):.0f}"
        + fused_line,
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and few queries (CI)")
    parser.add_argument("--sizes", type=int, nargs="*", default=[1_000, 10_000, 100_000])
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--baseline-queries", type=int, default=100)
    args = parser.parse_args()
    sizes = [1_000, 10_000] if args.quick else args.sizes
    n_queries = 100 if args.quick else args.queries
    baseline_queries = 20 if args.quick else args.baseline_queries

    kb = load_knowledge(REPO_ROOT / "knowledge")
    topics = {t.id: t for t in kb.topics}
    print(
        f"search benchmark: {len(kb.facts)} real facts -> synthetic sizes {sizes}; "
        f"Python {platform.python_version()}, {platform.processor() or platform.machine()}"
    )
    library_base.update({f.id: f for f in kb.facts})
    for size in sizes:
        bench(size, kb, topics, n_queries, baseline_queries)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
