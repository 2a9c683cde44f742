"""Text folding shared by indexing and querying: Unicode, numbers, stems, one Latin spelling.

Every word goes through the same steps so that "Ганчарык", "Гончарика" and "Hancharyk" meet:
Unicode compatibility folding and case folding, number forms (``No. 2``, ``#2``, ``№ 2``,
``4,000``), stop-word removal, stemming (Snowball: Russian for Cyrillic, after Belarusian
endings are rewritten as the Russian ones it knows; English for Latin), then transliteration
to ASCII (anyascii) and a phonetic skeleton that merges the usual variants of Slavic
romanisation (kh/h/g, ch/tsch, ya/ja/ia, y/i ...).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

import snowballstemmer
from anyascii import anyascii

from bot.search.stopwords import CHAT_WORDS, FILLERS, STOPWORDS

MAX_QUERY_CHARS = 1000

_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_NUMBER_MARK = re.compile(
    r"(?:\bno\.?|\bnr\.?|\bnum\.?|\bnumber|#|№|\bномер|\bнумар|\bн-р)\s*(?=\d)", re.IGNORECASE
)
# "Art. 33", "ст. 33", "арт. 33": the abbreviations of "article" before a number.
_ARTICLE_MARK = re.compile(r"\b(art|ст|арт)\.?\s*(?=\d)")
_ARTICLE_WORD = {"art": "article ", "ст": "статья ", "арт": "артыкул "}
# "led to" is "caused", not "headed": "who led the FPB?" is not about what led to a case.
_CAUSED = re.compile(r"\b(?:lead|leads|leading|led)\s+to\b")
_DIGIT_GROUPS = re.compile(r"(?<![\d.,])(\d{1,3})(?:[ ,.\u00a0\u202f\u2009](\d{3}))+(?![\d])")
_PERCENT = re.compile(r"(\d)\s*%")
_SKELETON_RULES: tuple[tuple[str, str], ...] = (
    ("shch", "s"),
    ("sch", "s"),
    ("sh", "s"),
    ("zh", "z"),
    ("kh", "h"),
    ("ch", "c"),
    ("ts", "c"),
    ("tz", "c"),
    ("ck", "k"),
    ("ph", "f"),
    ("w", "v"),
    ("q", "k"),
    ("x", "ks"),
    ("g", "h"),
    ("j", "i"),
    ("y", "i"),
    ("'", ""),
)
_BELARUSIAN_TO_RUSSIAN = str.maketrans({"і": "и", "ў": "в", "’": "", "'": "", "ʼ": ""})

# Belarusian endings the Russian stemmer does not know, as the Russian endings it strips, so
# that the forms of a Belarusian word meet ("прафсаюзаў" and "прафсаюзы", "арыштаваў" and
# "арыштаваць"). Each ending is one Russian does not write (a final "ў", "ць", "ацца", "ыя"),
# so Russian words keep their stems and no language has to be guessed for a single word: a
# Belarusian word is rewritten alike in the knowledge and in a question. Longest first.
_BELARUSIAN_ENDINGS: tuple[tuple[str, str], ...] = (
    ("ецца", "ется"),  # 3rd person reflexive: адбываецца ~ происходит
    ("юцца", "ются"),
    ("уцца", "утся"),
    ("іцца", "ится"),
    ("ацца", "аться"),  # reflexive infinitive: арганізоўвацца (not Russian "пицца")
    ("яцца", "яться"),
    ("ыцца", "ыться"),
    ("ыямі", "иями"),
    ("ыяй", "ией"),  # арганізацыяй ~ арганізацыя
    ("ыях", "иях"),
    ("ыям", "иям"),
    ("ыя", "ия"),  # незалежныя, канвенцыя
    ("ыі", "ии"),
    ("цыю", "цию"),  # арганізацыю (not Russian "открыю")
    ("іў", "ил"),  # past tense: зрабіў ~ зрабіць
    ("ыў", "ыл"),
    ("ваў", "вал"),  # past tense of the many -ваць verbs: кіраваў ~ кіраваць
    ("аў", "ов"),  # genitive plural: прафсаюзаў ~ прафсаюз
    ("яў", "ев"),
    ("оў", "ов"),
    ("еў", "ев"),
    ("ць", "ть"),  # infinitive: выйграць
)
_BELARUSIAN_ENDING = re.compile(
    "(" + "|".join(ending for ending, _ in _BELARUSIAN_ENDINGS) + r")$"
)
_RUSSIAN_ENDING_OF = dict(_BELARUSIAN_ENDINGS)

_english = snowballstemmer.stemmer("english")
_russian = snowballstemmer.stemmer("russian")


def _strip_latin_marks(text: str) -> str:
    """Drop accents from Latin letters (š -> s) but keep Cyrillic й and ў intact."""
    out: list[str] = []
    for ch in unicodedata.normalize("NFKD", text):
        if unicodedata.combining(ch) and out and out[-1] < "\u0250":
            continue
        out.append(ch)
    return "".join(out)


# Letters that look alike in Latin and Cyrillic. A word typed in both scripts (a Latin "a" in
# "тaкой", after a keyboard switch or in a copied text) is read in the one most of it is in.
_LOOKALIKES = ("aeopcyxkiAEOPCYXKBHMT", "аеорсухкіАЕОРСУХКВНМТ")
_TO_CYRILLIC = str.maketrans(*_LOOKALIKES)
_TO_LATIN = str.maketrans(*reversed(_LOOKALIKES))
_MIXED_SCRIPTS = re.compile(r"\b(?=\w*[a-zA-Z])(?=\w*[\u0400-\u04ff])\w+")


def one_script_words(text: str) -> str:
    """The text with every word written in two scripts written in its main one."""

    def unmixed(match: re.Match[str]) -> str:
        word = match.group(0)
        cyrillic = len(_CYRILLIC.findall(word))
        return word.translate(_TO_CYRILLIC if cyrillic * 2 >= len(word) else _TO_LATIN)

    return _MIXED_SCRIPTS.sub(unmixed, text)


def fold(text: str) -> str:
    """Unicode and case folding, number forms unified; the words are still readable."""
    text = one_script_words(unicodedata.normalize("NFKC", text[:MAX_QUERY_CHARS]))
    text = unicodedata.normalize("NFC", _strip_latin_marks(text)).casefold().replace("ё", "е")
    text = _NUMBER_MARK.sub(" ", text)
    text = _ARTICLE_MARK.sub(lambda m: _ARTICLE_WORD[m.group(1)], text)
    text = _CAUSED.sub("resulted in", text)
    text = _DIGIT_GROUPS.sub(lambda m: m.group(0).replace(",", "").replace(".", ""), text)
    text = re.sub(r"(?<=\d)[ \u00a0\u202f\u2009](?=\d{3}\b)", "", text)
    return _PERCENT.sub(r"\1 percent", text)


def words(text: str) -> list[str]:
    """The folded words of a text, stop words included."""
    return _WORD.findall(fold(text))


@lru_cache(maxsize=200_000)
def term(word: str) -> str:
    """One folded word -> its index term: stem, transliterate, reduce to a skeleton."""
    if word.isdecimal():  # any script's digits ("୦", "٣") are the ASCII number
        return word if word.isascii() else "".join(str(unicodedata.decimal(c)) for c in word)
    word = _russian_stem(word) if _CYRILLIC.search(word) else _english.stemWord(word)
    latin = anyascii(word).lower()
    for old, new in _SKELETON_RULES:
        latin = latin.replace(old, new)
    return re.sub(r"(.)\1+", r"\1", latin)


def _russian_stem(word: str) -> str:
    """Stem a Cyrillic word, Russian or Belarusian, so both languages' forms of a word meet."""
    if word[0] in "уў" and len(word) > 3:
        # A word begins with ў only after a vowel ("хто ўзначаліў"), the same word as with у
        # elsewhere ("і узначаліў"); and a Belarusian у- is often the Russian в- ("уводзілі",
        # "вводили"). So an initial у or ў is read as в, in both languages alike.
        word = "в" + word[1:]
    if len(word) > 4:
        word = _BELARUSIAN_ENDING.sub(lambda m: _RUSSIAN_ENDING_OF[m.group(1)], word)
    stem: str = _russian.stemWord(word.translate(_BELARUSIAN_TO_RUSSIAN))
    # Belarusian softens д to дз before a soft ending (год, годзе): a stem never ends in дз.
    return stem[:-1] if stem.endswith("дз") and len(stem) >= 4 else stem


def terms(text: str, *, keep_stopwords: bool = False) -> list[str]:
    """Index terms of a text, in order, stop words dropped unless asked for."""
    out: list[str] = []
    for word in words(text):
        if not keep_stopwords and word in STOPWORDS:
            continue
        t = term(word)
        if t:
            out.append(t)
    return out


def index_terms(text: str) -> list[str]:
    """``terms`` of a text of any length: ``terms`` reads only the first ``MAX_QUERY_CHARS``
    characters, as of a question, while an entry's phrasings in three languages run to
    thousands. Read in pieces cut at a space or newline, so no word is split."""
    out: list[str] = []
    rest = text
    while rest:
        cut = len(rest)
        if cut > MAX_QUERY_CHARS:
            space = max(rest.rfind(" ", 0, MAX_QUERY_CHARS), rest.rfind("\n", 0, MAX_QUERY_CHARS))
            cut = space + 1 or MAX_QUERY_CHARS
        out += terms(rest[:cut])
        rest = rest[cut:]
    return out


def normalize(text: str) -> str:
    """The whole text as space-separated index terms (idempotent on its own output)."""
    return " ".join(terms(text, keep_stopwords=True))


def _phrases_pattern(phrases: Iterable[str]) -> re.Pattern[str]:
    """Any of the phrases as whole words, longest first, with a punctuation mark after it."""
    alternatives = "|".join(re.escape(p) for p in sorted(phrases, key=len, reverse=True))
    return re.compile(rf"(?<![\w-])({alternatives})(?![\w-])[,.!:;]?", re.IGNORECASE)


def _without(pattern: re.Pattern[str], text: str) -> str:
    """The text without the pattern's phrases; a text of nothing else is kept whole."""
    return " ".join(pattern.sub(" ", text).split()) or text


_FILLER = _phrases_pattern([*FILLERS, "калі ласка"])
_CHAT = _phrases_pattern(CHAT_WORDS)


def without_chat(text: str) -> str:
    """The question without the words of a chatty lead-in ("quick question:", "мне
    интересно,"); a question of nothing else is kept whole."""
    return _without(_CHAT, text)


_LINK = re.compile(r"(?:\bhttps?://|\bwww\.)\S+", re.IGNORECASE)


def without_links(text: str) -> str:
    """The text without web addresses pasted into it."""
    return _LINK.sub(" ", text)


def without_fillers(text: str) -> str:
    """The question without greetings and politeness ("hi,", "please", "калі ласка")."""
    return _without(_FILLER, text)
