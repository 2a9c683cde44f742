"""Romanised Russian and Belarusian: detected, written back in Cyrillic, answered like Cyrillic."""

from __future__ import annotations

import pytest

from bot.language import detect
from bot.library import Library
from bot.search.translit import romanisations, romanised, to_cyrillic


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("kto rukovodit federatsiey profsoyuzov", "ru"),
        ("pochemu zakryli nezavisimye profsojuzy", "ru"),
        ("shto zdarylasia z nezaleznymi prafsajuzami", "be"),
        ("khto kiruje federacyjaj prafsajuzau", "be"),
        ("Chto ŭznačaliŭ FPB?", "be"),  # Łacinka: its "ch" is х, and "chto" is not что
        ("Što takoje artykuł 33?", "be"),
        # one Łacinka letter, and the word is known in its informal spelling ("chamu")
        ("čamu MAP vykarystala artykul 33", "be"),
    ],
)
def test_romanised_russian_and_belarusian_are_told_apart(text: str, lang: str) -> None:
    assert romanised(text) == lang
    assert detect(text) == lang


@pytest.mark.parametrize(
    "text",
    [
        "what did lukashenko do to the independent unions",
        "pro-government union",
        "belaruskali strike",
        "Who chairs the FPB now?",
        "Kozik",
        "kozik net worth",  # "net" is нет too
        "hey kozik",
        "What did Lukašenka do in 2001?",  # a name in Łacinka leaves the question English
    ],
)
def test_english_and_bare_names_are_not_romanised(text: str) -> None:
    assert romanised(text) is None
    assert detect(text) in ("en", None)


def test_latin_words_are_written_in_cyrillic() -> None:
    assert to_cyrillic("pochemu zhaloba byla podana v MOT?", "ru") == (
        "почему жалоба была подана в МОТ?"
    )
    assert to_cyrillic("kali jany stali prafsajuznikami", "be") == (
        "калі яны сталі прафсаюзнікамі"
    )
    assert to_cyrillic("Chto ŭznačaliŭ FPB? Čamu MAP ŭžyła artykuł 33?", "be") == (
        "Хто ўзначаліў ФПБ? Чаму МАП ўжыла артыкул 33?"
    )
    # Function words come out spelled right, whatever spelling was typed.
    assert to_cyrillic("skolko", "ru") == to_cyrillic("skol'ko", "ru") == "сколько"
    # ...in their usual spelling first: "z", "za" and "i" are з, за and і, not ж, жа and й.
    assert to_cyrillic("list z Zhenevy i za podpisam", "be") == "ліст з Жэневы і за подпісам"


def test_russian_word_ends_and_hard_consonants_are_read_as_russian_spells_them() -> None:
    assert to_cyrillic("kto likvidiroval ostavshiesja nezavisimye profsojuzy", "ru") == (
        "кто ликвидировал оставшиеся независимые профсоюзы"
    )
    assert to_cyrillic("Gai Rajder i administrativnyi sovet", "ru") == (
        "Гай Райдер и административный совет"
    )
    assert to_cyrillic("rabochie komissii schitayut", "ru") == "рабочие комиссии считают"
    assert to_cyrillic("pochemu ES lishil Belarus GSP", "ru") == "почему ЕС лишил Беларус ГСП"


def test_belarusian_hard_consonants_and_polish_style_letters() -> None:
    assert to_cyrillic("dekret pra pracent demakratychnyh", "be") == (
        "дэкрэт пра працэнт дэмакратычных"
    )
    assert to_cyrillic("pasla arysztau vykliuczyli", "be") == "пасла арыштаў выключылі"
    assert to_cyrillic("dzie cie", "be") == "дзе це"


def test_every_informal_spelling_of_a_word_is_generated() -> None:
    assert {"chto", "shto"} <= romanisations("что") | romanisations("што")
    assert {"kholodno", "holodno"} <= romanisations("холодно")


@pytest.mark.parametrize(
    ("cyrillic", "latin"),
    [
        (
            "в каком году ЕС лишил Беларусь торговых преференций",
            "v kakom godu ES lishil Belarus torgovyh preferentsiy",
        ),
        (
            "у якім годзе Беларусь страціла гандлёвыя льготы ЕС",
            "u jakim hodzie Bielarus stracila handlovyja lhoty ES",
        ),
        (
            "калі ліквідавалі незалежныя прафсаюзы",
            "Kali likvidavali niezaležnyja prafsajuzy?",
        ),
    ],
)
async def test_a_romanised_question_reaches_the_fact_its_cyrillic_form_does(
    library: Library, cyrillic: str, latin: str
) -> None:
    expected = await library.search(cyrillic)
    found = await library.search(latin)
    assert expected.answered and expected.best is not None
    assert found.answered and found.best is not None
    assert found.best.doc_id == expected.best.doc_id
    assert detect(latin) == detect(cyrillic)
