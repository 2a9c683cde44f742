"""The interface catalogues: every message id exists in English, Russian and Belarusian."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.admin.forms import FORMS
from bot.commands import COMMANDS, with_prefix
from bot.texts import LANGUAGES, catalogue, t

BOT = Path(__file__).resolve().parent.parent / "bot"
_LITERAL_KEY = re.compile(r'"((?:[a-z_]+\.)+[a-z_]+)"')


def referenced_keys() -> set[str]:
    """Message ids written literally in the code, plus the ones built from tables."""
    keys: set[str] = set()
    for path in BOT.rglob("*.py"):
        for key in _LITERAL_KEY.findall(path.read_text(encoding="utf-8")):
            if key.split(".")[0] in {k.split(".")[0] for k in catalogue("en")}:
                keys.add(key)
    keys |= {c.help_key for c in COMMANDS}
    keys |= {f"admin.ask.{f.name}" for form in FORMS.values() for f in form.fields}
    keys |= {f"admin.intro.{kind}" for kind in FORMS}
    return keys


@pytest.mark.parametrize("lang", LANGUAGES)
def test_catalogue_complete(lang: str) -> None:
    missing = sorted(referenced_keys() - set(catalogue(lang)))
    assert missing == [], f"{lang} lacks {missing}"


def test_catalogues_have_the_same_keys() -> None:
    assert set(catalogue("ru")) == set(catalogue("en")) == set(catalogue("be"))


def test_placeholders_match_across_languages() -> None:
    for key, english in catalogue("en").items():
        wanted = set(re.findall(r"{(\w+)}", english))
        for lang in ("ru", "be"):
            assert set(re.findall(r"{(\w+)}", catalogue(lang)[key])) == wanted, (lang, key)


def test_translations_are_not_english_copies() -> None:
    same = [
        k
        for k, v in catalogue("en").items()
        if catalogue("ru")[k] == v and re.search(r"[a-z]{4}", re.sub(r"{\w+}", "", v))
    ]
    assert same == []


def test_falls_back_to_english_for_unknown_language() -> None:
    assert t("xx", "help.title") == t("en", "help.title")


def test_every_command_a_text_names_can_be_shown_as_typed_on_matrix() -> None:
    """Each catalogue's commands become "!name"; links and paths that look alike do not."""
    for lang in ("en", "ru", "be"):
        for key, text in catalogue(lang).items():
            if key.startswith("console."):  # the terminal's own "/quit"
                continue
            assert not re.search(r"(?<![\w/])/[a-z]+\b(?![/.\w])", with_prefix(text, "!")), key
    assert with_prefix("see https://x.org/topics/abc, /topics/abc and /quotes", "!") == (
        "see https://x.org/topics/abc, /topics/abc and /quotes"
    )
    assert with_prefix("type /privacy or /ask@bot, not /subscriptions", "!") == (
        "type !privacy or !ask@bot, not !subscriptions"
    )
