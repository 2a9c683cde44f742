"""Question sets (the grader's YAML format) and the grader's rule for a right answer.

Used by the calibration script, the matching benchmark and the robustness test, so that all
three judge an answer the way ``../shared/eval/grade.py`` does.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path

import yaml

from bot.answers import entry_answer
from bot.config import REPO_ROOT
from bot.library import Library

QUESTIONS = REPO_ROOT / "tests" / "questions"
DEV_SET = REPO_ROOT.parent / "shared" / "eval" / "dev_questions.yaml"
# Fitting and tuning use these only; the held-out set is measured, never tuned on.
TUNING_SETS = (
    DEV_SET,
    QUESTIONS / "regression.yaml",
    QUESTIONS / "independent.yaml",
    QUESTIONS / "fresh.yaml",
)
HELD_OUT_SET = QUESTIONS / "heldout.yaml"


# Words people add that change nothing: a greeting, "please", "can you tell me", a city.
VARIANTS = {
    "en": ("hi, {q}", "{q} please", "can you tell me {q}", "{q} in minsk"),
    "ru": ("привет, {q}", "{q} пожалуйста", "подскажите, {q}", "{q} в минске"),
    "be": ("прывітанне, {q}", "{q} калі ласка", "скажыце, {q}", "{q} у мінску"),
}


@dataclass(frozen=True, slots=True)
class Question:
    """One question, its language, and the markers a right answer contains (none: decline)."""

    text: str
    lang: str
    markers: tuple[str, ...]
    origin: str


def fold(text: str) -> str:
    """The grader's folding: NFKC, casefold, ё as е."""
    return unicodedata.normalize("NFKC", text).casefold().replace("ё", "е")


def load_questions(*paths: Path) -> list[Question]:
    """The questions of every existing file among ``paths``."""
    out = []
    for path in paths:
        if not path.exists():
            continue
        for item in yaml.safe_load(path.read_text(encoding="utf-8")):
            markers = tuple(item.get("expect_any") or ()) if item["kind"] == "answer" else ()
            out.append(Question(str(item["q"]), item["lang"], markers, path.stem))
    return out


def is_right(library: Library, question: Question, doc_id: str) -> bool:
    """Whether answering with ``doc_id`` gives a reply holding one of the markers."""
    if not question.markers:
        return False
    reply = entry_answer(library, doc_id, question.lang)
    if reply is None:
        return False
    text = fold(reply.plain_text(numbered_choices=True) + " ")
    text += fold(" ".join(s.title for s in reply.sources))
    return any(fold(m) in text for m in question.markers)


def variants(question: Question) -> list[str]:
    """The question with words added that must not change its answer."""
    text = question.text.rstrip("?.! ")
    text = text[:1].lower() + text[1:]
    return [v.format(q=text) for v in VARIANTS[question.lang]]
