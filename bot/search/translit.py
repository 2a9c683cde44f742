"""Romanised Russian and Belarusian ("kto vozglavlyaet fpb", "kali likvidavali bkdp"): telling
them from English, and writing them back in Cyrillic for the matchers.

People without a Cyrillic keyboard type Russian and Belarusian in Latin letters, informally and
inconsistently (ч as ch, 4 or c; ы as y or i; я as ya, ja or ia; ў as u or w). The dense model
understands such text poorly and the English stemmer mangles it, so a question found to be
romanised is searched in a Cyrillic spelling made back from it. The spelling need not be right
(мягкий знак, ы or и): it only has to be close enough for the fuzzy lexical matcher and the
embedding model.

Detection counts the words that are function words of one language: English stop words, and
the romanised forms of the Russian and Belarusian ones (generated here from their Cyrillic lists
by the usual informal spellings, so no list of Latin words is kept by hand), plus letter groups
English words do not have (zh, kh, -iy, -aya). A word with a letter of Belarusian Łacinka (ŭ, č, š,
ž, ł, ć, ś, ź, ń) is a Belarusian one, and a romanised text with one is read as Łacinka, whose
"ch" is х; a name so spelled in an English question ("Lukašenka") leaves it English.
"""

from __future__ import annotations

import itertools
import re
from functools import cache

from bot.search.stopwords import BELARUSIAN_WORDS, ENGLISH_WORDS, LATIN_FILLERS, RUSSIAN_WORDS

# Hyphenated words are one ("pro-government" holds no function word "pro").
_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_LATIN = re.compile(r"[a-z]")
_LACINKA = re.compile(r"[ŭčšžłćśźń]", re.IGNORECASE)
# Łacinka's own letters as the informal spellings read below; the soft sign of ć, ś, ź and ń is
# dropped, which the matchers forgive. "ch" first: in Łacinka it is х, and č becomes "ch".
_FROM_LACINKA: tuple[tuple[str, str], ...] = (
    ("ch", "kh"),
    ("dž", "dzh"),
    ("č", "ch"),
    ("š", "sh"),
    ("ž", "zh"),
    ("ŭ", "w"),
    ("ł", "l"),
    ("ć", "c"),
    ("ś", "s"),
    ("ź", "z"),
    ("ń", "n"),
)
# Romanised Slavic function words that are English words too ("kozik net worth": not нет).
_ENGLISH_TOO = frozenset(
    "ad bit bits bo ego eye hey hi ion joy net pad pod tot toy use".split()  # noqa: SIM905
)
# Letter groups of romanised Slavic words that English words (almost) never have.
_SLAVIC_SPELLING = re.compile(
    r"zh|kh|shch|sch(?!ool|em|ol)|tsk|yy|iy$|yj$|ij$|aya$|aja$|yaya|oye$|iya$|ija$|yu|"
    r"ykh$|ikh$|ogo$|ovat|irovat|^v[^aeiouy]|dz[iy]|ie[^dsr]|^sv|^zv|^vz|^vs|^dv|^tv|^kv[^a]|"
    r"[bdklmnprstvz]y[au]"
)
# Belarusian spellings: дз, ў after a vowel, г written h where Russian has g, Łacinka's ie/ia.
_BELARUSIAN_SPELLING = re.compile(r"dz|[aeoiy][uw]$|[aeoy]u[^aeiouy]|^h[aeiouy]|ie|ia|io")
_RUSSIAN_SPELLING = re.compile(r"ogo$|ego$|^g|tsya$|tsa$|shch|ovat")

# Cyrillic -> informal Latin spellings (every common variant).
_ROMAN: dict[str, tuple[str, ...]] = {
    "а": ("a",),
    "б": ("b",),
    "в": ("v",),
    "г": ("g", "h"),
    "д": ("d",),
    "е": ("e", "ie", "ye"),
    "ё": ("e", "yo", "io", "jo"),
    "ж": ("zh", "z"),
    "з": ("z",),
    "и": ("i",),
    "і": ("i",),
    "й": ("y", "j", "i"),
    "к": ("k",),
    "л": ("l",),
    "м": ("m",),
    "н": ("n",),
    "о": ("o",),
    "п": ("p",),
    "р": ("r",),
    "с": ("s",),
    "т": ("t",),
    "у": ("u",),
    "ў": ("u", "w"),
    "ф": ("f",),
    "х": ("kh", "h", "x"),
    "ц": ("ts", "c"),
    "ч": ("ch",),
    "ш": ("sh",),
    "щ": ("shch", "sch"),
    "ъ": ("",),
    "ы": ("y", "i"),
    "ь": ("",),
    "э": ("e",),
    "ю": ("yu", "ju", "iu"),
    "я": ("ya", "ja", "ia"),
}


def romanisations(word: str, limit: int = 48) -> set[str]:
    """The usual informal Latin spellings of a Cyrillic word (at most ``limit`` of them)."""
    options = [_ROMAN.get(ch, (ch,)) for ch in word.lower()]
    out: set[str] = set()
    for parts in itertools.islice(itertools.product(*options), limit):
        out.add("".join(parts))
    return out


def _usual_spelling(word: str) -> str:
    """The Cyrillic word in each letter's most usual Latin spelling."""
    return "".join(_ROMAN.get(ch, (ch,))[0] for ch in word.lower())


@cache
def _spellings(lang: str) -> dict[str, str]:
    """Romanised function words of Russian or Belarusian -> the Cyrillic word.

    A spelling that is the usual one of some word means that word: "z" is з, although ж can
    be written "z" too, and Belarusian "i" is і, not й."""
    words = sorted(RUSSIAN_WORDS if lang == "ru" else BELARUSIAN_WORDS, key=lambda w: (len(w), w))
    out: dict[str, str] = {}
    for word in words:
        out.setdefault(_usual_spelling(word), word)
    for word in words:
        for latin in romanisations(word, limit=200):
            out.setdefault(latin, word)
    return out


@cache
def _lexicons() -> tuple[frozenset[str], frozenset[str]]:
    """Romanised Russian and Belarusian function words, none that is also an English one."""
    russian = set(_spellings("ru")) | LATIN_FILLERS
    english = ENGLISH_WORDS | _ENGLISH_TOO
    return frozenset(russian - english), frozenset(set(_spellings("be")) - english)


def romanised(text: str) -> str | None:
    """'ru' or 'be' when a Latin-script text is romanised Russian or Belarusian, else None."""
    words = [w for w in _WORD.findall(text.casefold()) if _LATIN.match(w) or _LACINKA.search(w)]
    if not words or any(_CYRILLIC.search(w) for w in words):
        return None
    russian, belarusian = _lexicons()
    english = sum(w in ENGLISH_WORDS for w in words)
    # A Łacinka word is looked up as its informal spelling: "čamu" is "chamu".
    informal = [_from_lacinka(w) if _LACINKA.search(w) else w for w in words]
    ru = sum(w in russian for w in informal)
    be = sum(w in belarusian for w in informal)
    lacinka = sum(bool(_LACINKA.search(w)) for w in words)
    spelled = sum(bool(_SLAVIC_SPELLING.search(w)) for w in words) + lacinka
    known = max(ru, be)
    slavic = known + spelled
    if slavic <= english or (not known and spelled < 2):
        return None
    be_spelling = sum(bool(_BELARUSIAN_SPELLING.search(w)) for w in words)
    ru_spelling = sum(bool(_RUSSIAN_SPELLING.search(w)) for w in words)
    return "be" if lacinka or (be - ru) * 2 + be_spelling - ru_spelling > 0 else "ru"


_VOWELS = frozenset("aeiouy")
# Longest first; each (Latin, Russian, Belarusian).
_GROUPS: tuple[tuple[str, str, str], ...] = (
    ("shch", "щ", "шч"),
    ("sch", "щ", "шч"),
    ("dzh", "дж", "дж"),
    ("zh", "ж", "ж"),
    # Polish-style spellings some write Belarusian (and Russian) in: "arysztau", "vykliuczyli".
    ("sz", "ш", "ш"),
    ("cz", "ч", "ч"),
    ("kh", "х", "х"),
    ("ch", "ч", "ч"),
    ("sh", "ш", "ш"),
    ("ts", "ц", "ц"),
    ("tz", "ц", "ц"),
    ("ck", "к", "к"),
    ("ph", "ф", "ф"),
    ("x", "х", "х"),
    ("a", "а", "а"),
    ("b", "б", "б"),
    ("c", "ц", "ц"),
    ("d", "д", "д"),
    ("f", "ф", "ф"),
    ("g", "г", "г"),
    ("h", "х", "г"),
    ("k", "к", "к"),
    ("l", "л", "л"),
    ("m", "м", "м"),
    ("n", "н", "н"),
    ("o", "о", "о"),
    ("p", "п", "п"),
    ("q", "к", "к"),
    ("r", "р", "р"),
    ("s", "с", "с"),
    ("t", "т", "т"),
    ("v", "в", "в"),
    ("w", "в", "ў"),
    ("z", "з", "з"),
    ("'", "ь", "ь"),
    ("’", "ь", "ь"),
)
_IOTATED = {"a": "я", "u": "ю", "o": "ё", "e": "е"}
_PLAIN_VOWEL = {"a": "а", "u": "у", "o": "о", "e": "е"}


def _word_to_cyrillic(word: str, lang: str) -> str:
    """One lower-case Latin word in Cyrillic, by the informal spellings' usual readings."""
    be = lang == "be"
    out: list[str] = []
    i, n = 0, len(word)
    while i < n:
        ch = word[i]
        prev = word[i - 1] if i else ""
        nxt = word[i + 1] if i + 1 < n else ""
        after_vowel = not prev or prev in _VOWELS
        # "ia", "ie", "iu" are я, е, ю in Belarusian Łacinka everywhere, and in Russian at the
        # start and between consonants ("dlia", "liet"); a Russian word's end ("komissia") keeps и.
        # Russian spelling never writes е after ж, ш, ч, к, г or х for a softened vowel
        # ("rabochie": рабочие, "russkie": русские).
        soft = nxt in _IOTATED and (
            be
            or i == 0
            or (
                not after_vowel
                and i + 2 < n
                and word[i + 2] not in _VOWELS
                and prev not in "kg"
                and word[i - 2 : i] not in ("zh", "sh", "ch", "kh")
            )
        )
        if not be and ch == "y" and nxt == "e" and i + 2 == n and not after_vowel:
            # A Russian word's end "-ye" is an adjective's "-ые" ("nezavisimye").
            out.append("ые")
            break
        if ch == "i" and i + 1 == n and prev in "aoey" and i > 0:
            # "-ai", "-oi", "-ei", "-yi" end a word as "-ай", "-ой", "-ей", "-ый" ("Gai", "novyi").
            out.append("й")
            break
        if ch in "yj" or (ch == "i" and soft):
            if nxt in _IOTATED:
                # ya/ja/ia is я ("dlya": для); "statya" (статья) loses its ь, which the
                # matchers forgive.
                out.append(_IOTATED[nxt])
                i += 2
                continue
            if ch == "j" or (ch == "y" and after_vowel and i > 0):
                out.append("й")
            else:
                out.append("ы")
            i += 1
            continue
        if ch == "i":
            out.append("і" if be else "и")
            i += 1
            continue
        if ch == "e":
            # In Belarusian ж, ш, ч, р, ц, д and т before е are hard (soft д and т are дз and
            # ць, romanised "dzie" and "cie"), so the vowel is э ("pracent": працэнт, "dekret":
            # дэкрэт).
            hard = be and (prev in "rcdt" or word[i - 2 : i] in ("zh", "sh", "ch", "ts"))
            out.append("э" if i == 0 or hard else "е")
            i += 1
            continue
        if ch == "u":
            out.append("ў" if be and i > 0 and prev in _VOWELS and nxt not in _VOWELS else "у")
            i += 1
            continue
        if be and ch == "h" and i + 1 == n and prev in "ayi":
            # Belarusian h is г, but a word's end "-ah", "-yh", "-ih" is the plural "-ах",
            # "-ых", "-іх" ("niezalezhnyh prafsajuzah").
            out.append("х")
            break
        if not be and i == 0 and word.startswith("sch"):
            # At a Russian word's start "sch" is mostly сч ("schitat", "schet"), not щ.
            out.append("сч")
            i += 3
            continue
        for latin, ru, by in _GROUPS:
            if word.startswith(latin, i):
                out.append(by if be else ru)
                i += len(latin)
                break
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _from_lacinka(text: str) -> str:
    """Łacinka in the informal Latin spellings ("Chto ŭznačaliŭ" -> "Khto wznachaliw"), letter
    case kept."""
    for lacinka, informal in _FROM_LACINKA:
        for old, new in ((lacinka, informal), (lacinka.capitalize(), informal.capitalize())):
            text = text.replace(old, new)
    return text


def to_cyrillic(text: str, lang: str) -> str:
    """The text with its Latin words written in Cyrillic ('ru' or 'be' readings); other words,
    digits and punctuation as they were. Abbreviations keep their capitals ("FPB" -> "ФПБ")."""
    if lang == "be" and _LACINKA.search(text):
        text = _from_lacinka(text)

    def convert(match: re.Match[str]) -> str:
        word = match.group(0)
        if not word.isascii():
            return word
        lower = word.lower()
        # A function word is spelled right, so that the matchers know it for one.
        cyrillic = _spellings(lang).get(lower) or _word_to_cyrillic(lower, lang)
        if len(word) > 1 and word.isupper():
            # An abbreviation's E is mostly Е ("ES": ЕС, the EU), the letter's name.
            return ("Е" + cyrillic[1:] if lower[0] == "e" else cyrillic).upper()
        return cyrillic.capitalize() if word[:1].isupper() else cyrillic

    return _WORD.sub(convert, text)
