"""The pages' interface strings (gettext catalogues in bot/web/locales, read with Babel, as
bot/texts.py reads the chat's) and the choice of a page's language."""

from __future__ import annotations

from pathlib import Path

from bot.texts import LANGUAGES, Catalogues

LOCALES = Path(__file__).resolve().parent / "locales"
PAGES = Catalogues(LOCALES, "web")
catalogue = PAGES.catalogue
preload = PAGES.preload
text = PAGES.text


def accepted(header: str | None) -> list[str]:
    """Our languages in an Accept-Language header, most wanted first (q=0 ones left out)."""
    wanted: list[tuple[float, int, str]] = []
    for position, item in enumerate((header or "").split(",")[:32]):
        tag, *params = (p.strip() for p in item.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        primary = tag.split("-")[0].lower()
        if primary in LANGUAGES and quality > 0:
            wanted.append((-quality, position, primary))
    seen: list[str] = []
    for _, _, lang in sorted(wanted):
        if lang not in seen:
            seen.append(lang)
    return seen


def negotiate(query: str | None, accept_language: str | None, default: str) -> tuple[str, bool]:
    """The page's language: ``?lang=``, then Accept-Language, then the default; and whether it
    was chosen in the address (then the page's links keep it)."""
    if query in LANGUAGES:
        return query, True
    preferred = accepted(accept_language)
    return (preferred[0] if preferred else default), False
