"""Questions that point back at an earlier answer: "when was he appointed?", "что они сказали?".

The bot answers each question on its own (it keeps no conversation), so "he", "they" or "it"
name nobody it can search for. When such a question is declined, the reply says why and asks
for the name, rather than leaving the person to think the knowledge lacks the answer. A
pronoun after a name in the same message ("who is Yaroshuk and what happened to him?") points
at that name, not back.
"""

from __future__ import annotations

import re

from bot.search.normalize import fold
from bot.search.stopwords import STOPWORDS

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


_WORD = re.compile(r"[^\W_]+")


def _is_name(word: str) -> bool:
    """A capitalised word that is no function word ("Kozik", "ФПБ"; not "What", "Что")."""
    return word[0].isupper() and fold(word) not in STOPWORDS


def refers_back(question: str) -> bool:
    """Whether the question has a pronoun with no name before it in the same message."""
    for word in _WORD.findall(question):
        if _is_name(word):
            return False
        if fold(word) in _POINTING_BACK:
            return True
    return False
