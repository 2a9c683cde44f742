"""Questions that point back at an earlier answer: "when was he appointed?", "что они сказали?".

The bot answers each question on its own (it keeps no conversation), so "he", "they" or "it"
name nobody it can search for. When such a question is declined, the reply says why and asks
for the name, rather than leaving the person to think the knowledge lacks the answer.
"""

from __future__ import annotations

from bot.search.normalize import words

# Third-person personal pronouns of English, Russian and Belarusian, as subject or object,
# folded as ``words`` folds a message (ё is е); "it" too, since "when did it happen?" points
# back just the same. Possessives ("his", "its") are left out: "Lukashenko and his decrees"
# names whom it means.
_POINTING_BACK = frozenset(
    """
    he him she they them it
    он его ему него нему нем она ее ей ней нее оно они их им них ним
    ен яго яму яна яе яны іх ім
    """.split()  # noqa: SIM905
)


def refers_back(question: str) -> bool:
    """Whether the question names someone or something only by a pronoun."""
    return any(word in _POINTING_BACK for word in words(question))
