"""Every fixed user-facing string, from the gettext catalogues in bot/locales (read with Babel).

Message ids are stable keys (``help.body``); each language has a ``messages.po``. A key missing
from a language falls back to English; the test suite fails if any catalogue lacks a key.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from babel import Locale
from babel.messages.pofile import read_po

LANGUAGES: tuple[str, ...] = ("en", "ru", "be")
LANGUAGE_NAMES = {"en": "English", "ru": "Русский", "be": "Беларуская"}
# What people type after /language: a code, a locale ("ru-RU"), or a name in any of our languages.
_LANGUAGE_WORDS = {
    "en": "en english eng англ английский англійская ангельская",
    "ru": "ru russian rus рус русский руская расейская",
    "be": "be by belarusian belorussian byelorussian бел белорусский беларуская",
}
_LANGUAGE_OF_WORD = {w: code for code, ws in _LANGUAGE_WORDS.items() for w in ws.split()}


def language_code(text: str) -> str | None:
    """The language a /language argument names ("ru", "ru-RU", "Russian", "беларуская")."""
    word = text.strip().casefold().replace("_", "-").split("-")[0]
    return _LANGUAGE_OF_WORD.get(word)


LOCALES = Path(__file__).resolve().parent / "locales"


class Catalogues:
    """The ``<domain>.po`` catalogue of each language under ``directory``, read with Babel."""

    def __init__(self, directory: Path, domain: str) -> None:
        self.directory = directory
        self.domain = domain
        self.catalogue = cache(self._read)

    def _read(self, lang: str) -> dict[str, str]:
        """Key -> text for one language (blocking file read, cached; call ``preload`` early)."""
        path = self.directory / lang / "LC_MESSAGES" / f"{self.domain}.po"
        if not path.is_file():
            return {}
        with path.open("rb") as fh:
            po = read_po(fh, locale=lang)
        return {str(m.id): str(m.string) for m in po if m.id and m.string}

    def preload(self) -> None:
        """Read every catalogue before the event loop starts."""
        for lang in LANGUAGES:
            self.catalogue(lang)

    def text(self, lang: str, key: str, **params: object) -> str:
        """The text for ``key`` in ``lang`` (English if missing), ``{name}`` params filled in."""
        text = self.catalogue(lang).get(key) or self.catalogue("en").get(key) or key
        return text.format(**params) if params else text


CHAT = Catalogues(LOCALES, "messages")
catalogue = CHAT.catalogue
preload = CHAT.preload
t = CHAT.text


@cache
def language_name(code: str, lang: str) -> str:
    """The name of language ``code`` written in ``lang``: ("en", "ru") -> "английский"."""
    try:
        return str(Locale.parse(lang).languages.get(code) or code)
    except (ValueError, LookupError):
        return code
