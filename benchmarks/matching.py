"""Matching quality and cost: every question set per language, robustness, and the cost of a
question beside one multilingual-e5-small embedding. Prints figures; asserts nothing.

For each set (the development set, our regression and independent sets, and the held-out set
nobody tunes on) it prints answer-top1 (answered, and the reply holds a marker) and decline
accuracy per language, for the fused matcher and for the lexical matcher alone
(``search.embedder = "none"``). Then the share of robustness variants that keep their answer,
the cost per question in ``ask --json -`` batch mode, start-up time and peak memory.

    python benchmarks/matching.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.config import REPO_ROOT, Settings
from bot.knowledge.loader import load_knowledge
from bot.library import Library
from bot.search.embedder import Embedder, load_embedder
from bot.search.questions import (
    HELD_OUT_SET,
    TUNING_SETS,
    Question,
    is_right,
    load_questions,
    variants,
)

LANGS = ("en", "ru", "be")


async def grade(
    library: Library, questions: list[Question]
) -> dict[str, tuple[float | None, float | None]]:
    """Per language: (answer-top1, decline accuracy); None where the set has no such question."""
    tallies = {lang: [0, 0, 0, 0] for lang in LANGS}
    for q in questions:
        result = await library.search(q.text)
        tally = tallies[q.lang]
        if q.markers:
            tally[1] += 1
            best = result.best
            tally[0] += bool(result.answered and best and is_right(library, q, best.doc_id))
        else:
            tally[3] += 1
            tally[2] += not result.answered
    return {
        lang: (a / n if n else None, d / m if m else None)
        for lang, (a, n, d, m) in tallies.items()
        if n + m
    }


def cell(value: float | None) -> str:
    return "  - " if value is None else f"{value:.2f}"


async def robustness(library: Library, questions: list[Question]) -> tuple[float, int]:
    kept = total = 0
    for q in questions:
        if not q.markers:
            continue
        result = await library.search(q.text)
        best = result.best
        if not (result.answered and best and is_right(library, q, best.doc_id)):
            continue
        for variant in variants(q):
            again = await library.search(variant)
            total += 1
            kept += bool(again.answered and again.best and again.best.doc_id == best.doc_id)
    return kept / max(total, 1), total


def batch_seconds(questions: list[str]) -> tuple[float, float]:
    """Wall time of one ``ask --json -`` process over ``questions``, and its peak RSS in MB."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "bot", "ask", "--json", "-"],
        input="\n".join(questions) + "\n",
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=True,
        env=os.environ,
    )
    elapsed = time.perf_counter() - start
    peak = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    return elapsed, peak


# The machine's speed drifts (other work, CPU frequency) over the minute a batch takes, so the
# cost and its reference are measured in turns over a share of the questions each.
COST_ROUNDS = 3


@dataclass(frozen=True)
class Cost:
    """One round: ms per question in batch mode and for its embedding alone, and peak RSS."""

    questions: int
    batch_ms: float
    embedding_ms: float
    peak_mb: float


def question_cost(embedder: Embedder, questions: list[str]) -> Cost:
    """A question's cost in ``ask --json -`` batch mode (the start-up taken out by a run over
    ten questions), beside one embedding of the same questions in this process."""
    start = time.perf_counter()
    for q in questions:
        embedder.encode_queries([q])
    embedding = (time.perf_counter() - start) / len(questions) * 1000
    small, peak_small = batch_seconds(questions[:10])
    large, peak_large = batch_seconds(questions)
    batch = (large - small) / (len(questions) - 10) * 1000
    return Cost(len(questions), batch, embedding, max(peak_small, peak_large))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (CI)")
    args = parser.parse_args()
    settings = Settings()
    kb = load_knowledge(settings.knowledge.directory)
    sets = {path.stem: load_questions(path) for path in (*TUNING_SETS, HELD_OUT_SET)}
    libraries = {
        "fused": Library(kb, settings.search),
        "lexical only": Library(kb, settings.search.model_copy(update={"embedder": "none"})),
    }

    async def figures() -> None:
        for library in libraries.values():
            await library.prepare()
        print("matching: answer-top1 / decline per language (held-out: never tuned on)")
        for name, questions in sets.items():
            for label, library in libraries.items():
                by_lang = await grade(library, questions)
                cells = ", ".join(
                    f"{lang} {cell(a)}/{cell(d)}" for lang, (a, d) in by_lang.items()
                )
                print(f"  {name:<14} {label:<13} {cells}")
        share, total = await robustness(libraries["fused"], [q for s in sets.values() for q in s])
        print(
            f"robustness: {share:.1%} of {total} variants (greeting, please, city) keep the answer"
        )

    asyncio.run(figures())

    embedder = load_embedder(settings.search.embedder)
    if embedder is None:
        return 0
    questions = [q.text for s in sets.values() for q in s]
    embedder.encode_queries(questions[:5])
    repeats = 1 if args.quick else 5
    costs = [question_cost(embedder, questions[i::COST_ROUNDS]) for i in range(COST_ROUNDS)]
    per_question = sum(c.batch_ms * c.questions for c in costs) / len(questions)
    one_embedding = sum(c.embedding_ms * c.questions for c in costs) / len(questions)
    ratios = sorted(c.batch_ms / c.embedding_ms for c in costs)
    # A real question, so that the start-up includes a search ("x" alone is answered unsearched).
    startup = min(batch_seconds(["what is article 33"])[0] for _ in range(repeats))
    print(
        f"cost: {per_question:.1f} ms per question in `ask --json -` batch mode, "
        f"{one_embedding:.1f} ms for one e5-small query embedding in this run "
        f"(x{per_question / one_embedding:.2f}; x{ratios[0]:.2f}-{ratios[-1]:.2f} "
        f"over {COST_ROUNDS} interleaved rounds); "
        f"start-up of `ask` with a warm cache {startup:.2f} s; "
        f"peak RSS of the ask process {max(c.peak_mb for c in costs):.0f} MB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
