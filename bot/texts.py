"""Every fixed user-facing string, from the gettext catalogues in bot/locales (read with Babel).

Message ids are stable keys (``help.body``); each language has a ``messages.po``. A key missing
from a language falls back to English; the test suite fails if any catalogue lacks a key.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from babel.messages.pofile import read_po

LANGUAGES: tuple[str, ...] = ("en", "ru", "be")
LANGUAGE_NAMES = {"en": "English", "ru": "Русский", "be": "Беларуская"}
LOCALES = Path(__file__).resolve().parent / "locales"


@cache
def catalogue(lang: str) -> dict[str, str]:
    """Key -> text for one language (blocking file read, cached; call ``preload`` early)."""
    path = LOCALES / lang / "LC_MESSAGES" / "messages.po"
    if not path.is_file():
        return {}
    with path.open("rb") as fh:
        po = read_po(fh, locale=lang)
    return {str(m.id): str(m.string) for m in po if m.id and m.string}


def preload() -> None:
    """Read every catalogue before the event loop starts."""
    for lang in LANGUAGES:
        catalogue(lang)


def t(lang: str, key: str, **params: object) -> str:
    """The text for ``key`` in ``lang`` (English if missing), with ``{name}`` params filled in."""
    text = catalogue(lang).get(key) or catalogue("en").get(key) or key
    return text.format(**params) if params else text
