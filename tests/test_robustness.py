"""A greeting, "please", "can you tell me" or a city added to a question keeps its answer."""

from __future__ import annotations

from bot.library import Library
from bot.search.questions import TUNING_SETS, is_right, load_questions, variants


async def test_added_words_keep_at_least_95_percent_of_answers(library: Library) -> None:
    kept, changed = 0, []
    for question in load_questions(*TUNING_SETS):
        if not question.markers:
            continue
        result = await library.search(question.text)
        if not (
            result.answered and result.best and is_right(library, question, result.best.doc_id)
        ):
            continue
        for variant in variants(question):
            again = await library.search(variant)
            if again.answered and again.best and again.best.doc_id == result.best.doc_id:
                kept += 1
            else:
                changed.append(variant)
    share = kept / (kept + len(changed))
    assert share >= 0.95, (share, changed[:20])
