"""The per-chat memory of the last choices that every transport resolves follow-ups against."""

from __future__ import annotations

from bot.domain import Choice, PageTurn, Paragraph, Reply
from bot.transports.follow_ups import LastOffers

EVIDENCE = "/evidence fact:kozik-fpb"
NOTIFY = "/notifyme abc123"


def answer(lang: str = "ru", *commands: str) -> Reply:
    return Reply(
        paragraphs=(Paragraph(text="…"),),
        lang=lang,
        choices=tuple(Choice(label=c, command=c) for c in commands or (EVIDENCE, NOTIFY)),
    )


def test_a_follow_up_picks_the_last_offer_and_answers_in_its_language() -> None:
    offers = LastOffers()
    offers.remember("room", answer("ru"))

    assert offers.resolve("room", "/evidence").model_dump() == {"text": EVIDENCE, "language": "ru"}
    for asked in (
        "source?",
        "who said that?",
        "show me the exact words",
        "а откуда это?",
        "ну и кто это сказал",
        "хто гэта сказаў?",
        "пакажыце крыніцу",
        "adkuĺ hieta?",
        "otkuda eto",
    ):
        assert offers.resolve("room", asked).text == EVIDENCE, asked
    assert offers.resolve("room", "а кто такой Козик?").text == "а кто такой Козик?"
    assert offers.resolve("room", "!notifyme").text == NOTIFY
    assert offers.resolve("room", "2", by_number=True).text == NOTIFY
    # Unnumbered buttons: a typed number picks them, but keeping the question takes a press.
    assert offers.resolve("room", "1", by_number=True, numbered=False).text == EVIDENCE
    for typed in ("1.", "#1", " 1) "):  # as people type a list's numbers
        assert offers.resolve("room", typed, by_number=True).text == EVIDENCE, typed
    assert offers.resolve("room", "2", by_number=True, numbered=False).text == "2"
    # A question, a number off the list and a number where numbers are not shown stay as typed,
    # with no language forced on them.
    for text, by_number in (("who is kozik?", True), ("3", True), ("2", False)):
        assert offers.resolve("room", text, by_number=by_number).model_dump() == {
            "text": text,
            "language": None,
        }
    assert offers.language("room") == "ru"
    # Another chat was offered nothing.
    assert offers.resolve("other", "/evidence").text == "/evidence"
    assert offers.language("other") is None


def test_a_reply_without_choices_leaves_the_last_offer_standing() -> None:
    offers = LastOffers()
    offers.remember(1, answer("be"))
    offers.remember(1, Reply(paragraphs=(Paragraph(text="Калі ласка!"),), lang="be"))

    assert offers.resolve(1, "адкуль гэта?").text == EVIDENCE
    assert offers.resolve(1, "1", by_number=True).text == EVIDENCE


def test_memory_is_bounded_and_forgets_the_least_recently_offered_chat() -> None:
    offers = LastOffers(max_chats=2)
    offers.remember(1, answer())
    offers.remember(2, answer())
    offers.remember(1, answer("en", "/evidence fact:newer"))
    offers.remember(3, answer())

    assert offers.offered(2) == ()
    assert offers.offered(1) == ("/evidence fact:newer",)
    assert offers.offered(3) == (EVIDENCE, NOTIFY)


def test_next_and_back_pick_the_choices_that_turn_the_page() -> None:
    offers = LastOffers()
    pager = Reply(
        paragraphs=(Paragraph(text="…"),),
        lang="be",
        choices=(
            Choice(label="‹ Назад", command="/timeline 1", page=PageTurn.PREVIOUS),
            Choice(label="Далей ›", command="/timeline 3", page=PageTurn.NEXT),
        ),
    )
    offers.remember("chat", pager)
    for typed in ("next", "Next ›", "далее", "далей", "ещё", "dalshe"):
        assert offers.resolve("chat", typed).model_dump() == {
            "text": "/timeline 3",
            "language": "be",
        }
    for typed in ("back", "‹ Назад", "папярэдняя", "nazad"):
        assert offers.resolve("chat", typed).text == "/timeline 1", typed
    assert offers.resolve("chat", "next steps").text == "next steps"
    # An answer's choices turn no page: "next" stays as typed (it asks for more).
    offers.remember("chat", answer("be"))
    assert offers.resolve("chat", "next").text == "next"
