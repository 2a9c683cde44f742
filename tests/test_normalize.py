"""Normalisation: the same word in any spelling, script or inflection folds to the same term."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.search.index import Document, SearchIndex
from bot.search.matcher import match
from bot.search.normalize import fold, term, terms


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Hancharyk", "Ганчарык"),
        ("Lukashenko", "Lukašenka"),
        ("Лукашэнка", "Лукашенко"),
        ("профсоюз", "профсоюзов"),
        ("recommendations", "recommendation"),
        ("КГБ", "KGB"),
        ("Belaruskali", "belaruskali"),
    ],
)
def test_spellings_meet(a: str, b: str) -> None:
    ta, tb = terms(a), terms(b)
    assert ta and tb
    # the skeletons are equal or differ only in ways fuzzy matching absorbs (a vowel, an ending)
    from rapidfuzz import fuzz

    assert fuzz.ratio(ta[0], tb[0]) >= 80, (ta, tb)


@pytest.mark.parametrize(
    "forms",
    [
        ("прафсаюзаў", "прафсаюзы", "прафсаюз"),  # genitive plural in -аў
        ("экспертаў", "эксперты"),
        ("кіраўнікоў", "кіраўнікі"),  # -оў
        ("незалежных", "незалежныя", "незалежны"),  # adjective plural in -ыя
        ("арганізацыяй", "арганізацыя", "арганізацыі", "арганізацыю"),
        ("арыштаваў", "арыштаваць", "арыштавалі"),  # past in -ваў, infinitive in -ць
        ("зрабіў", "зрабіць", "зрабілі"),
        ("засталася", "застацца"),  # reflexive infinitive in -цца
        ("годзе", "год"),  # д softened to дз
        ("ўзначаліў", "узначаліў"),  # initial ў after a vowel, у elsewhere
        ("уводзілі", "вводили"),  # Belarusian у-, Russian в-
    ],
)
def test_belarusian_forms_meet_exactly(forms: tuple[str, ...]) -> None:
    assert len({term(form) for form in forms}) == 1, [term(form) for form in forms]


@pytest.mark.parametrize("word", ["пицца", "открыю", "профсоюзов", "независимые", "годах"])
def test_russian_words_keep_their_russian_stems(word: str) -> None:
    import snowballstemmer

    from bot.search.normalize import _russian_stem

    assert _russian_stem(word) == snowballstemmer.stemmer("russian").stemWord(word)


def test_belarusian_question_meets_keyword_in_another_form() -> None:
    index = SearchIndex(
        [
            Document("liquidation", (("ліквідацыя незалежных прафсаюзаў", 1.0),)),
            Document("other", (("незалежныя эксперты ААН", 1.0),)),
        ]
    )
    result = match(index, "як ліквідавалі незалежныя прафсаюзы")
    assert result.best is not None and result.best.doc_id == "liquidation"
    # every word of the question is an exact hit: none is left to fuzzy matching
    assert match(index, "незалежныя прафсаюзы").hits[0].coverage == 1.0


@pytest.mark.parametrize(
    "text", ["Decree No. 2", "Decree #2", "декрет № 2", "decree number 2", "Decree No.2"]
)
def test_number_forms(text: str) -> None:
    assert terms(text)[-1] == "2"


@pytest.mark.parametrize(
    ("short", "long"),
    [
        ("Art. 33", "Article 33"),
        ("art 33", "article 33"),
        ("ст. 33 Устава", "статья 33 Устава"),
        ("арт.33", "артыкул 33"),
    ],
)
def test_article_abbreviations_before_a_number(short: str, long: str) -> None:
    assert terms(short) == terms(long)


def test_an_abbreviation_without_a_number_is_left_alone() -> None:
    assert terms("art") != terms("article")


def test_leading_to_something_is_causing_it_not_heading_it() -> None:
    assert terms("complaints, leading to case 2090") == terms("complaints, resulting in case 2090")
    assert term("led") not in terms("the crackdown led to a complaint")
    assert term("lead") in terms("who leads the FPB?")


def test_a_word_typed_in_two_scripts_is_read_in_its_main_one() -> None:
    # A Latin "a" and "o" in Cyrillic words, a Cyrillic "о" in a Latin one.
    assert fold("кто тaкой кoзик") == "кто такой козик"
    assert fold("who is kоzik") == "who is kozik"
    assert terms("тaкой") == terms("такой")
    # Words in one script each are left as they are.
    assert fold("ФПБ and FPB") == "фпб and fpb"


def test_digit_groups_and_percent() -> None:
    assert "4000" in terms("more than 4,000 workers")
    assert "4000" in terms("4 000 рабочих")
    assert terms("95%") == terms("95 percent")


def test_stopwords_dropped() -> None:
    assert terms("what is the") == []
    assert terms("что это такое") == []
    assert terms("што гэта такое") == []
    # Stop words with ё, as a message's words are folded (ё is е).
    assert terms("хто ён") == terms("ці ёсць") == terms("чьё это") == []


@given(st.text(max_size=300))
def test_fold_is_idempotent(text: str) -> None:
    assert fold(fold(text)) == fold(text)


@given(st.text(max_size=300))
def test_terms_never_crash_and_are_ascii(text: str) -> None:
    for t in terms(text):
        assert t and t.isascii()
