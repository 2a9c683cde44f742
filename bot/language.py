"""Cheap detection of a question's language (en, ru or be): script first, then vocabulary."""

from __future__ import annotations

import re

from bot.search.translit import romanised

_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_BELARUSIAN_LETTERS = re.compile(r"[іўІЎ]")
# Spellings Russian does not use: жы, шы, чы (Russian writes жи, ши, чи), шч (Russian щ), and э
# after a consonant ("дэкрэт", "яшчэ"; Russian writes е there but in a few loanwords).
_BELARUSIAN_SPELLING = re.compile(r"[жшч]ы|шч|[бвгджзклмнпрстфхчш]э", re.IGNORECASE)
_RUSSIAN_LETTERS = re.compile(r"[иъщИЪЩ]")
_WORD = re.compile(r"[^\W\d_]+")
_BELARUSIAN_WORDS = frozenset(
    [
        "што",
        "хто",
        "калі",
        "колькі",
        "чаму",
        "дзе",
        "які",
        "якая",
        "якое",
        "якія",
        "ці",
        "гэта",
        "гэты",
        "быў",
        "пра",
        "з",
        "ад",
        "да",
        "як",
        "ёсць",
        "ня",
        "няма",
        "таксама",
        "толькі",
        "вельмі",
        # Greetings and thanks, which may be all a message says.
        "дзякуй",
        "дзякуем",
        "вітаю",
        "прывітанне",
        "добры",
        "дзень",
        "вечар",
        "бывай",
        "пабачэння",
    ]
)
_RUSSIAN_WORDS = frozenset(
    [
        "что",
        "кто",
        "когда",
        "сколько",
        "почему",
        "где",
        "какой",
        "какая",
        "какое",
        "какие",
        "ли",
        "это",
        "этот",
        "был",
        "была",
        "были",
        "про",
        "с",
        "от",
        "до",
        "как",
        "есть",
        "нет",
        "не",
        "также",
        "только",
        "очень",
        "в",
        "спасибо",
        "привет",
        "здравствуйте",
        "добрый",
        "пока",
        "свидания",
    ]
)
_RUSSIAN_LATIN = frozenset(
    [
        "chto",
        "kto",
        "kogda",
        "gde",
        "pochemu",
        "skolko",
        "kakoy",
        "kakaya",
        "kakie",
        "byl",
        "byla",
        "byli",
        "eto",
        "profsoyuz",
        "profsoyuzy",
        "profsoyuzov",
        "zabastovka",
        "zabastovki",
        "dekret",
        "komissiya",
        "rekomendatsii",
        "rekomendatsiy",
        "statya",
        "statyu",
        "mot",
        # small talk: "poka", "do svidaniya"
        "poka",
        "svidaniya",
        "zdravstvuyte",
        "zdravstvujte",
        "pozhaluysta",
        "pozhalujsta",
    ]
)
_BELARUSIAN_LATIN = frozenset(
    [
        "prafsajuz",
        "prafsajuzy",
        "prafsajuzau",
        "prafsayuz",
        "kamisija",
        "kamisiya",
        # small talk: "dziakuj", "paka"
        "dziakuj",
        "dzyakuj",
        "dzyakuy",
        "dzjakuj",
        "dziakuju",
        "dzyakuyu",
        "pryvitanne",
        "pryvitannie",
        "vitaju",
        "vitayu",
        "dzen",
        "dzien",
        "paka",
        "pabachennia",
        "pabachennya",
        "byvaj",
    ]
)


def detect(text: str) -> str | None:
    """'en', 'ru' or 'be' if the text says, else None (digits, symbols, too short)."""
    letters = _WORD.findall(text.casefold())
    if not letters:
        return None
    cyrillic = sum(1 for w in letters if _CYRILLIC.search(w))
    if cyrillic * 2 >= len(letters):
        be = (
            len(_BELARUSIAN_LETTERS.findall(text))
            + len(_BELARUSIAN_SPELLING.findall(text))
            + sum(w in _BELARUSIAN_WORDS for w in letters)
        )
        ru = len(_RUSSIAN_LETTERS.findall(text)) + sum(w in _RUSSIAN_WORDS for w in letters)
        return "be" if be > ru else "ru"
    if romanised_as := romanised(text):
        return romanised_as
    if any(w in _BELARUSIAN_LATIN for w in letters):
        return "be"
    if sum(w in _RUSSIAN_LATIN for w in letters) >= 1 and not any(
        w in {"the", "what", "when", "who", "how", "is", "of"} for w in letters
    ):
        return "ru"
    return "en"
