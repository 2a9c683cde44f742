"""Core behaviour, platform-neutral: questions, declines, commands, language, limits."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from bot.answers import LABEL_CHARS, answer, quote_label
from bot.core import TIMELINE_PAGE, Core
from bot.domain import ChatRef, Incoming, Platform, Reply, ReplyKind
from bot.knowledge.models import KnowledgeBase
from bot.language import detect
from bot.library import Library, question_parts
from bot.texts import t


def incoming(text: str, sender: str = "7", hint: str | None = None) -> Incoming:
    return Incoming(
        chat=ChatRef(platform=Platform.CONSOLE, chat_id=sender),
        sender_id=sender,
        text=text,
        language_hint=hint,
    )


async def test_question_answered_with_source(core: Core) -> None:
    [reply] = await core.handle(
        incoming("How many recommendations did the Commission of Inquiry make?")
    )
    assert reply.kind is ReplyKind.ANSWER
    assert "12" in reply.plain_text()
    assert reply.sources and reply.sources[0].title in reply.plain_text()


async def test_a_question_of_function_words_alone_asks_what_is_meant(core: Core) -> None:
    """ "Why?" or "who is he?" names nothing to search for: the bot asks for the person, event
    or topic and shows the topics, instead of declining with unrelated close topics. Such a
    message is no question to count or to offer to wait for."""
    for text, lang in {
        "why?": "en",
        "Who is he?": "en",
        "а когда это было?": "ru",
        "калі гэта было?": "be",
    }.items():
        [reply] = await core.handle(incoming(text, sender=text))
        assert reply.lang == lang and reply.plain_text().startswith(t(lang, "ask.vague")), text
        assert [c.command for c in reply.choices] == [
            f"/topics {topic}" for topic in core.library.topics
        ]
        assert not reply.answered
    assert core.repository is not None
    assert await core.repository.question_days("2000-01-01") == []


async def test_a_declined_question_that_says_only_he_or_they_is_asked_to_name_them(
    core: Core,
) -> None:
    """ "When was he appointed?" after an answer about Kozik: the bot keeps no conversation, so
    the decline says so and asks for the name, and offers no wait for an answer to the question
    as asked; a decline that names its subject does neither."""
    for text, lang in {
        "when was he appointed?": "en",
        "why did they refuse him?": "en",
        "кто его назначил?": "ru",
        "калі яго прызначылі?": "be",
    }.items():
        [reply] = await core.handle(incoming(text, sender=text))
        assert reply.kind is ReplyKind.DECLINE and reply.lang == lang, text
        assert t(lang, "decline.name_them") in reply.plain_text(), text
        # The close topics are still offered, but not to wait for an answer to it as asked.
        assert reply.choices, text
        assert not any(c.command.startswith("/notifyme") for c in reply.choices), text
    # A pronoun after a name points at that name: nothing to name, and worth waiting for.
    for text in (
        "What is the capital of Australia?",
        "what did Lukashenko say about his pay?",
        "who is Alexander Yaroshuk and what happened to him?",
    ):
        [reply] = await core.handle(incoming(text, sender=text))
        assert reply.kind is ReplyKind.DECLINE, text
        assert t("en", "decline.name_them") not in reply.plain_text(), text
        assert any(c.command.startswith("/notifyme") for c in reply.choices), text


def test_cyrillic_belarusian_is_told_by_its_spelling_too() -> None:
    """Belarusian spells жы, шы, чы, шч and э after a consonant, which Russian does not."""
    for text, lang in {
        "раскажы яшчэ": "be",
        "дэкрэт 2 1999 года якога чысла": "be",
        "расскажи ещё": "ru",
        "жизнь и щи": "ru",
        "мэр минска": "ru",
    }.items():
        assert detect(text) == lang, text


async def test_invisible_characters_inside_words_change_nothing(core: Core) -> None:
    """Zero-width spaces and joiners, soft hyphens, direction marks and byte-order marks, as
    pasted from web pages, neither hide the words nor change the answer's language."""
    for question in ("who heads the fpb?", "кто возглавляет ФПБ?"):
        [plain] = await core.handle(incoming(question))
        assert plain.kind is ReplyKind.ANSWER, question
        for mark in ("\u200b", "\u200d", "\u00ad", "\u200f", "\u202e", "\ufeff", "\u2060"):
            hidden = mark.join(question[:4]) + question[4:-3] + mark + question[-3:]
            [reply] = await core.handle(incoming(hidden, sender=f"{mark!r}"))
            assert (reply.fact_id, reply.lang) == (plain.fact_id, plain.lang), repr(hidden)
            assert (await core.answer(hidden)).fact_id == plain.fact_id, repr(hidden)


async def test_off_topic_declined_with_choices(core: Core) -> None:
    [reply] = await core.handle(incoming("What is the capital of Australia?"))
    assert reply.kind is ReplyKind.DECLINE
    assert "I don't have a sourced answer" in reply.plain_text()
    assert 1 <= len(reply.choices) <= 3
    # every choice is a command the core understands
    for choice in reply.choices:
        [followed] = await core.handle(incoming(choice.command, sender="8"))
        assert followed.kind is not ReplyKind.ERROR


async def test_small_talk_gets_a_fitting_reply_not_a_decline(core: Core) -> None:
    replies = {
        text: (await core.handle(incoming(text, sender=str(i))))[0]
        for i, text in enumerate(
            [
                "hi",
                "Hello!",
                "thanks a lot 🙏",
                "bye",
                "what can you do?",
                "привет",
                "спасибо большое",
                "Дзякуй!",
                "добры дзень",
                "kto ty",
                "thanks!",
                "ok",
                "Понятно.",
                "yes",
                "нет",
                "hello, can you help me?",
                "дзякуй, усё зразумела",
                "как дела?",
                "What's new?",
                "dziakuj vialikaje",
                "paka",
                "poka",
                "tell me more",
                "Подробнее?",
                "раскажы яшчэ",
                "who made you?",
                "Кто тебя создал?",
                "якія тэмы ты ведаеш",
            ]
        )
    }
    assert {text: r.lang for text, r in replies.items()} == {
        "hi": "en",
        "Hello!": "en",
        "thanks a lot 🙏": "en",
        "bye": "en",
        "what can you do?": "en",
        "привет": "ru",
        "спасибо большое": "ru",
        "Дзякуй!": "be",
        "добры дзень": "be",
        "kto ty": "ru",
        "thanks!": "en",
        "ok": "en",
        "Понятно.": "ru",
        "yes": "en",
        "нет": "ru",
        "hello, can you help me?": "en",
        "дзякуй, усё зразумела": "be",
        "как дела?": "ru",
        "What's new?": "en",
        "dziakuj vialikaje": "be",
        "paka": "be",
        "poka": "ru",
        "tell me more": "en",
        "Подробнее?": "ru",
        "раскажы яшчэ": "be",
        "who made you?": "en",
        "Кто тебя создал?": "ru",
        "якія тэмы ты ведаеш": "be",
    }
    assert all(r.kind is ReplyKind.INFO for r in replies.values())
    # A greeting or "what can you do" gets the introduction with the topics to browse.
    for text in (
        "hi",
        "Hello!",
        "what can you do?",
        "привет",
        "добры дзень",
        "kto ty",
        "hello, can you help me?",
        "как дела?",
        "who made you?",
        "Кто тебя создал?",
        "якія тэмы ты ведаеш",
    ):
        assert replies[text].choices and "/help" in replies[text].plain_text()
    assert "welcome" in replies["thanks a lot 🙏"].plain_text()
    assert "Пожалуйста" in replies["спасибо большое"].plain_text()
    assert "Калі ласка" in replies["Дзякуй!"].plain_text()
    assert "Калі ласка" in replies["дзякуй, усё зразумела"].plain_text()
    newest = max(core.library.timeline(), key=lambda event: event.date)
    assert newest.title.en in replies["What's new?"].plain_text()
    assert "/subscribe" in replies["What's new?"].plain_text()
    assert "Goodbye" in replies["bye"].plain_text()
    assert "Калі ласка" in replies["dziakuj vialikaje"].plain_text()
    assert replies["paka"].plain_text() == t("be", "smalltalk.farewell")
    # "Tell me more" is no new question to decline (nor to offer to wait for an answer to).
    for text in ("tell me more", "Подробнее?", "раскажы яшчэ"):
        reply = replies[text]
        assert reply.plain_text() == t(reply.lang, "smalltalk.further") and not reply.choices
    # A bare "yes" or "no" is no question either ("yes" once found "ЕС", the EU).
    for text in ("ok", "Понятно.", "yes", "нет"):
        assert replies[text].plain_text() == t(replies[text].lang, "smalltalk.more")
    # Nothing was counted as a question, so nothing is listed as unanswered.
    assert core.repository is not None
    assert await core.repository.question_days("2000-01-01") == []
    assert await core.repository.unanswered("2000-01-01") == []
    # Asking for the source with nothing to show it for says how to get it, and lists the
    # sources every answer rests on ("what are your sources?" may open a chat).
    for text in ("source?", "what are your sources?", "is this true?", "это правда?"):
        [source] = await core.handle(incoming(text, sender="98"))
        assert "/evidence" in source.plain_text() and "Philip Stary" in source.plain_text()
    for text in ("are you a bot?", "ты бот?", "можна па-беларуску?"):
        [about] = await core.handle(incoming(text, sender="97"))
        assert about.plain_text().startswith(t(detect(text) or "en", "start.title")), text
    # A greeting with a question is a question.
    [asked] = await core.handle(incoming("hi, who was appointed to head the FPB?", sender="99"))
    assert asked.kind is ReplyKind.ANSWER and "Kozik" in asked.plain_text()


async def test_a_question_about_the_bot_gets_what_its_command_says(core: Core) -> None:
    """ "Do you store my questions?" asked in words gets /privacy's answer, "how do I get
    alerts?" how to subscribe, "which sources do you use?" the sources: not a decline with
    unrelated topics, and a privacy question is not kept among the unanswered ones."""
    privacy = {
        "Is this chat safe? Do you store my questions?": "en",
        "can anyone see what I ask here?": "en",
        "вы храните мои вопросы?": "ru",
        "безопасно ли писать этому боту?": "ru",
        "Ці захоўваеце вы мае пытанні?": "be",
    }
    alerts = {"how do I subscribe to alerts?": "en", "як падпісацца на навіны?": "be"}
    sources = {"what sources do you use?": "en", "откуда вы берёте информацию?": "ru"}
    for i, (text, lang) in enumerate({**privacy, **alerts, **sources}.items()):
        [reply] = await core.handle(incoming(text, sender=f"about{i}"))
        assert reply.kind is ReplyKind.INFO and reply.lang == lang, text
        shown = reply.plain_text()
        if text in privacy:
            assert shown.startswith(t(lang, "privacy.body", days=30)[:40]), text
        elif text in alerts:
            assert shown.startswith(t(lang, "subscribe.howto")), text
            assert [c.command for c in reply.choices] == ["/subscribe"]
        else:
            assert shown.startswith(t(lang, "evidence.pick")) and "Philip Stary" in shown, text
    assert core.repository is not None
    assert await core.repository.question_days("2000-01-01") == []
    assert await core.repository.unanswered("2000-01-01") == []
    # Asked about the subject, the same words are a question.
    for text in (
        "is it safe to join a union in Belarus?",
        "кто подписал заявление экспертов ООН?",
    ):
        [reply] = await core.handle(incoming(text, sender="subject"))
        assert reply.kind in (ReplyKind.ANSWER, ReplyKind.DECLINE), text


async def test_a_request_for_personal_advice_is_not_answered_with_a_fact(core: Core) -> None:
    asked = {
        "I was fired for joining a union, what should I do?": "en",
        "Меня уволили за профсоюз, что мне делать?": "ru",
        "Мяне затрымалі пасля забастоўкі, куды мне звярнуцца?": "be",
        "menya uvolili, chto delat?": "ru",
    }
    for n, (text, lang) in enumerate(asked.items()):
        [reply] = await core.handle(incoming(text, sender=f"advice-{n}"))
        assert reply.kind is ReplyKind.INFO and reply.lang == lang, text
        assert reply.fact_id is None and reply.evidence is None, text
        assert all(not c.command.startswith("/evidence") for c in reply.choices), text
        [caution] = reply.paragraphs[:1]
        assert caution.text == t(lang, "advice.personal"), text
    # Nobody's story is kept or counted, not even anonymously among the unanswered questions.
    assert core.repository is not None
    assert await core.repository.question_days("2000-01-01") == []
    assert await core.repository.unanswered("2000-01-01") == []
    # The same words about other people, or about what institutions should do, are questions.
    for question, fact_word in (
        ("Which union leaders were arrested in 2022?", "2022"),
        ("What can the ILO do under Article 33?", "33"),
    ):
        [reply] = await core.handle(incoming(question, sender="advice-q"))
        assert reply.kind is ReplyKind.ANSWER and fact_word in reply.plain_text(), question


async def test_a_bare_number_is_no_question_but_a_year_is(core: Core) -> None:
    for text in ("2", "12", "#3", "7."):
        [reply] = await core.handle(incoming(text, sender="numbers"))
        assert reply.kind is ReplyKind.INFO and reply.fact_id is None, text
        assert reply.plain_text() == t("en", "ask.number_only"), text
    assert core.repository is not None
    assert await core.repository.unanswered("2000-01-01") == []  # not counted as declines
    [year] = await core.handle(incoming("1995", sender="numbers"))
    assert year.kind is not ReplyKind.INFO


async def test_a_lone_letter_is_no_question_but_a_short_word_is(core: Core) -> None:
    for text in ("x", "?a", "Ы!"):
        [reply] = await core.handle(incoming(text, sender="letters"))
        assert reply.kind is ReplyKind.INFO and not reply.choices, text
        assert reply.plain_text() == t(reply.lang, "ask.empty"), text
    assert core.repository is not None
    assert await core.repository.unanswered("2000-01-01") == []  # not counted as declines
    # "ЕС" (the EU) is searched; as one word that several facts share, it offers them to pick.
    [eu] = await core.handle(incoming("ЕС", sender="letters"))
    assert eu.kind is ReplyKind.INFO and "ЕС" in eu.suggestions[1]


async def test_i_have_a_question_is_asked_for_the_question(core: Core) -> None:
    """ "I have a question" or "можно вопрос?" is no question yet: "quick question" was answered
    with the Commission's twelve recommendations."""
    for text in ("quick question", "I have a question", "can I ask a question?", "можно вопрос?"):
        [reply] = await core.handle(incoming(text, sender="opener"))
        assert reply.kind is ReplyKind.INFO, text
        assert reply.plain_text() == t(reply.lang, "ask.empty"), text
    [reply] = await core.handle(incoming("I have a question: who is Kozik?", sender="opener"))
    assert reply.kind is ReplyKind.ANSWER and reply.fact_id == "kozik-appointed"


async def test_one_word_several_entries_share_offers_them_instead_of_answering(
    core: Core,
) -> None:
    """ "history" or "people" alone used to be answered with whichever fact led by a hair
    ("history": the countries sanctioned besides Myanmar). A word that points at one entry,
    or that both retrievers agree on, is still answered; one that names a topic gets it."""
    for word in ("people", "time", "ЕС"):
        [reply] = await core.handle(incoming(word, sender="one-word"))
        assert reply.kind is ReplyKind.INFO and len(reply.choices) >= 2, word
        assert reply.plain_text().startswith(t(reply.lang, "ask.one_word")), word
    # A word that names a topic gets the topic's page.
    for word, title in (("history", "History, 1994–2019"), ("история", "История, 1994–2019")):
        [reply] = await core.handle(incoming(word, sender="one-word"))
        assert reply.kind is ReplyKind.INFO and reply.plain_text().startswith(title), word
    assert core.repository is not None
    assert await core.repository.unanswered("2000-01-01") == []  # no question the knowledge lacks
    for word, fact in (("Kozik", "kozik-appointed"), ("strike", "strike-1995")):
        [reply] = await core.handle(incoming(word, sender="one-word"))
        assert reply.kind is ReplyKind.ANSWER and reply.fact_id == fact, word
    # So is one word beside a pronoun that names no one: "who leads it?" was answered with the
    # arrests that "led" the ILO to act; now it is asked to name the organisation.
    [unnamed] = await core.handle(incoming("who leads it?", sender="one-word"))
    assert unnamed.kind is ReplyKind.DECLINE
    assert t("en", "decline.name_them") in unnamed.plain_text()
    [pointed] = await core.handle(incoming("when was it liquidated?", sender="one-word"))
    assert pointed.kind is ReplyKind.ANSWER and pointed.fact_id == "liquidation-2022"


async def test_language_follows_question_then_explicit_choice(core: Core) -> None:
    [ru] = await core.handle(incoming("сколько рекомендаций дала комиссия МОТ"))
    assert ru.lang == "ru" and "12" in ru.plain_text()
    [be] = await core.handle(incoming("колькі рэкамендацый дала камісія МАП"))
    assert be.lang == "be"
    [hint] = await core.handle(incoming("/help", hint="ru-RU"))
    assert hint.lang == "ru"
    [chosen] = await core.handle(incoming("/language be"))
    assert chosen.lang == "be"
    [after] = await core.handle(
        incoming("How many recommendations did the Commission of Inquiry make?")
    )
    assert after.lang == "be"


@pytest.mark.parametrize(
    ("typed", "lang"), [("Russian", "ru"), ("беларуская", "be"), ("en-GB", "en"), ("RU", "ru")]
)
async def test_a_language_by_name_or_locale(core: Core, typed: str, lang: str) -> None:
    [chosen] = await core.handle(incoming(f"/language {typed}", sender=f"lang-{typed}"))
    assert chosen.lang == lang and chosen.kind is not ReplyKind.ERROR
    assert not chosen.choices  # set, not the menu


async def test_topics_by_the_words_people_use_for_them(core: Core) -> None:
    [done] = await core.handle(incoming("/subscribe article 33", sender="topics"))
    assert done.plain_text().startswith("Subscribed to: Article 33 of the ILO Constitution")
    [done] = await core.handle(incoming("/subscribe репрессии", sender="topics"))
    assert "Repression 2020–2022" in done.plain_text()
    [listed] = await core.handle(incoming("/subscriptions", sender="topics"))
    assert "Article 33" in listed.plain_text() and "Repression" in listed.plain_text()
    [shown] = await core.handle(incoming("/topics un experts", sender="topics"))
    assert shown.plain_text().startswith("UN experts' statement")
    for vague in ("the", "ilo", "weather"):  # no topic, or more than one, fits
        [refused] = await core.handle(incoming(f"/subscribe {vague}", sender="topics"))
        assert refused.kind is ReplyKind.ERROR, vague


async def test_whats_new_lists_the_newest_events_newest_first(core: Core) -> None:
    [news] = await core.handle(incoming("what's new?"))
    lines = news.plain_text().splitlines()
    assert lines[0] == "Newest events:"
    newest = sorted(core.library.timeline(), key=lambda e: e.date)[-1]
    assert lines[2].endswith(newest.title.en), lines[:3]
    assert sum(line.startswith("• ") for line in lines) == TIMELINE_PAGE
    assert [c.command for c in news.choices] == ["/timeline"]


async def test_an_event_is_found_through_the_fact_that_tells_it_or_else_on_its_own(
    kb: KnowledgeBase,
) -> None:
    library = Library(kb)
    question = "when was Decree No. 2 issued?"
    told = await library.search(question)
    assert told.answered and told.best is not None
    assert told.best.doc_id == "fact:decree-2-1999"
    assert not any(h.doc_id.startswith("event:") for h in told.hits)

    library.put_fact(library.facts["decree-2-1999"].model_copy(update={"retracted": True}))
    alone = await library.search(question)
    assert alone.answered and alone.best is not None
    assert alone.best.doc_id == "event:1999-01-26-decree-2"
    reply = answer(library, alone, "en")
    assert reply.plain_text().startswith("January 26, 1999: Decree No. 2 makes registering")
    assert reply.sources and reply.evidence is not None
    assert [c.command for c in reply.choices] == [
        "/evidence 1999-01-26-decree-2",
        "/topics decrees",
    ]


async def test_fact_shows_an_event_offered_among_close_topics_by_its_id(core: Core) -> None:
    [reply] = await core.handle(incoming("/fact 1999-01-26-decree-2"))
    assert reply.kind is ReplyKind.ANSWER
    assert reply.plain_text().startswith("January 26, 1999: Decree No. 2 makes registering")


async def test_timeline_pages_and_sources(core: Core) -> None:
    [first] = await core.handle(incoming("/timeline"))
    assert first.replace and any(c.command == "/timeline 2" for c in first.choices)
    [second] = await core.handle(incoming("/timeline 2"))
    assert "(2/" in second.plain_text()
    [sources] = await core.handle(incoming("/sources"))
    assert "Philip Stary" in sources.plain_text()


async def test_topics_browse_to_a_fact(core: Core) -> None:
    [topics] = await core.handle(incoming("/topics"))
    topic_choice = topics.choices[0]
    [topic] = await core.handle(incoming(topic_choice.command))
    fact_choice = next(c for c in topic.choices if c.command.startswith("/fact "))
    [fact] = await core.handle(incoming(fact_choice.command))
    assert fact.kind is ReplyKind.ANSWER and fact.sources


async def test_topics_takes_a_title_as_the_menu_shows_it_and_says_when_there_is_none(
    core: Core,
) -> None:
    history = core.library.topics["history"]
    pages = []
    for typed in (history.title.en, f"{history.title.ru} 2", "HISTORY 1"):
        [topic] = await core.handle(incoming(f"/topics {typed}"))
        assert topic.plain_text().startswith(history.title.get(topic.lang)), typed
        pages.append([c.command for c in topic.choices])
    assert pages[0] == pages[2] != pages[1]
    [unknown] = await core.handle(incoming("/topics nope"))
    assert unknown.plain_text().startswith("There is no topic “nope”.")
    assert len(unknown.choices) == len(core.library.topics)
    [listed] = await core.handle(incoming("/topics"))
    assert listed.plain_text().startswith("Topics — pick one")


async def test_quotes_verbatim_with_attribution(core: Core) -> None:
    [reply] = await core.handle(incoming("/quote human rights defenders"))
    text = reply.plain_text()
    assert "Belarus must end the repression of independent trade unionists" in text
    assert "—" in text


async def test_forged_fact_id_is_polite(core: Core) -> None:
    [reply] = await core.handle(incoming("/fact ../../etc/passwd"))
    assert reply.kind is ReplyKind.ERROR and "not available" in reply.plain_text()


async def test_fact_without_an_id_shows_the_topics_and_extra_words_are_ignored(
    core: Core,
) -> None:
    [bare] = await core.handle(incoming("/fact"))
    assert bare.kind is not ReplyKind.ERROR
    assert [c.command for c in bare.choices][:2] == ["/topics history", "/topics ilo-cases"]
    [reply] = await core.handle(incoming("/fact gsp-what please"))
    assert "Generalised Scheme of Preferences" in reply.plain_text()


async def test_a_latin_letter_inside_a_cyrillic_word_changes_nothing(core: Core) -> None:
    plain = await core.answer("кто такой козик")
    mixed = await core.answer("кто тaкой кoзик")  # Latin "a" and "o"
    assert plain.fact_id == mixed.fact_id == "kozik-appointed" and mixed.answered


async def test_unknown_command_gets_help(core: Core) -> None:
    replies = await core.handle(incoming("/frobnicate now"))
    assert "I don't know the command /frobnicate." in replies[0].plain_text()
    assert "/topics" in replies[1].plain_text()


@pytest.mark.parametrize(
    ("typed", "meant"),
    [("source", "sources"), ("hlep", "help"), ("subscibe", "subscribe"), ("lang", "language")],
)
async def test_mistyped_command_gets_what_it_likely_meant(
    core: Core, typed: str, meant: str
) -> None:
    [reply] = await core.handle(incoming(f"/{typed}"))
    assert reply.plain_text() == f"I don't know the command /{typed}. Did you mean /{meant}?"


@pytest.mark.parametrize(
    ("typed", "heading"), [("topics", "Topics"), ("Menu!", "Topics"), ("темы", "Темы")]
)
async def test_a_command_typed_without_its_slash_is_the_command(
    core: Core, typed: str, heading: str
) -> None:
    [reply] = await core.handle(incoming(typed))
    assert reply.plain_text().startswith(f"{heading} — ")


async def test_asking_for_the_timeline_in_words_gets_the_timeline(core: Core) -> None:
    for typed, lang in {
        "timeline of events": "en",
        "Chronology?": "en",
        "хронология событий": "ru",
        "усе падзеі": "be",
    }.items():
        [reply] = await core.handle(incoming(typed, sender=typed))
        assert reply.plain_text() == core.timeline(lang, 1).plain_text(), typed


async def test_saying_the_reply_missed_gets_an_apology_and_how_to_ask_again(core: Core) -> None:
    """ "That's not what I asked" is no question: answered as one, it met a fact about what
    Guy Ryder asked."""
    for typed, lang in {
        "that's not what I asked": "en",
        "you're wrong!": "en",
        "это не то": "ru",
        "гэта няпраўда": "be",
    }.items():
        [reply] = await core.handle(incoming(typed, sender=typed))
        assert reply.kind is ReplyKind.INFO, typed
        assert reply.plain_text() == t(lang, "smalltalk.complaint"), typed
    assert core.repository is not None
    assert await core.repository.unanswered("2000-01-01") == []


async def test_start_as_a_word_is_the_welcome_not_a_fact_about_beginnings(core: Core) -> None:
    [reply] = await core.handle(incoming("start"))
    assert reply.plain_text().startswith("Hello! I answer questions")


async def test_an_unknown_command_is_echoed_as_typed(core: Core) -> None:
    """On Matrix commands start with "!": "/sorces" in the reply would be a command nobody typed
    (the transport turns the "/sources" of a known command into "!sources" itself)."""
    [reply] = await core.handle(incoming("!sorces"))
    assert reply.plain_text() == "I don't know the command !sorces. Did you mean /sources?"
    replies = await core.handle(incoming("!frobnicate"))
    assert replies[0].plain_text() == "I don't know the command !frobnicate."


async def test_admin_commands_are_never_suggested(core: Core) -> None:
    replies = await core.handle(incoming("/retrakt x"))
    assert replies[0].plain_text() == "I don't know the command /retrakt."
    assert "/retract" not in replies[1].plain_text()


async def test_over_long_message_not_processed(core: Core) -> None:
    [reply] = await core.handle(incoming("Article 33 " * 5000))
    assert reply.kind is ReplyKind.ERROR and "too long" in reply.plain_text()


async def test_flooding_user_warned_once_then_ignored(core: Core) -> None:
    replies = [await core.handle(incoming("Article 33?", sender="flood")) for _ in range(100)]
    warnings = [r for r in replies if r and "very fast" in r[0].plain_text()]
    assert len(warnings) == 1
    assert sum(1 for r in replies if r == []) == 100 - 20 - 1
    [other] = await core.handle(incoming("Article 33?", sender="calm"))
    assert other.kind is ReplyKind.ANSWER


@hsettings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.one_of(
        st.text(max_size=2000), st.text(alphabet=st.characters(), min_size=1000, max_size=3000)
    )
)
def test_no_input_crashes_answering(library: Library, text: str) -> None:
    from bot.config import Settings

    core = Core(library, Settings())
    reply = asyncio.run(core.answer(text))
    assert reply.paragraphs
    assert reply.kind in (ReplyKind.ANSWER, ReplyKind.DECLINE, ReplyKind.INFO)


async def test_in_a_group_only_admins_erase_its_data_or_change_its_language(core: Core) -> None:
    group = ChatRef(platform=Platform.TELEGRAM, chat_id="-100500")

    def said(text: str, admin: bool) -> Incoming:
        return Incoming(
            chat=group, sender_id="8", text=text, is_private=False, is_chat_admin=admin
        )

    [subscribed] = await core.handle(said("/subscribe all", admin=True))
    assert subscribed.kind is not ReplyKind.ERROR
    for command in ("/forgetme", "/forgetme confirm", "/language ru"):
        [refused] = await core.handle(said(command, admin=False))
        assert refused.kind is ReplyKind.ERROR and "only its admins" in refused.plain_text()
    assert core.repository is not None
    assert await core.repository.subscriptions(group)
    assert await core.repository.chat_language(group) is None
    [changed] = await core.handle(said("/language ru", admin=True))
    assert changed.kind is not ReplyKind.ERROR
    assert await core.repository.chat_language(group) == "ru"


async def test_quote_list_pages_reach_every_quote_once(core: Core) -> None:
    from bot.knowledge.models import Localized, Quote

    for i in range(30):
        core.library.put_quote(
            Quote(
                id=f"paging-quote-{i:02d}",
                text=f"Paging test quotation number {i}.",
                speaker=Localized(en=f"Speaker {i}"),
                sources=["stary-27-years"],
                topics=["history"],
            )
        )
    said = 0

    async def quote(text: str) -> Reply:
        nonlocal said
        said += 1  # a sender each, so the flood guard stays out of it
        [reply] = await core.handle(incoming(text, sender=f"pager-{said}"))
        assert reply.kind is not ReplyKind.ERROR, reply.plain_text()
        return reply

    def entries(reply: Reply) -> list[str]:
        return [c.command for c in reply.choices if not c.command.startswith("/quote page")]

    def nav(reply: Reply) -> list[str]:
        return [c.command for c in reply.choices if c.command.startswith("/quote page")]

    pages = [await quote("/quote")]
    while True:
        reply = pages[-1]
        assert len(reply.choices) <= 8 + 2 and 1 <= len(entries(reply)) <= 8
        assert len(nav(reply)) <= 2 and reply.replace
        following = [c for c in nav(reply) if c.endswith(f" {len(pages) + 1}")]
        if not following:
            break
        pages.append(await quote(following[0]))
    seen = [command for page in pages for command in entries(page)]
    assert sorted(seen) == sorted(f"/quote {q}" for q in core.library.quotes)
    assert len(pages) == 5 and f"Page 2 of {len(pages)}" in pages[1].plain_text()
    # Back from the last page is the page before it.
    [back] = [c for c in nav(pages[-1]) if c.endswith(f" {len(pages) - 1}")]
    assert entries(await quote(back)) == entries(pages[-2])
    # A bad page number gets the first or the last page.
    for bad in ("0", "-2", "two", "²", "２", "1.5", ""):
        assert entries(await quote(f"/quote page {bad}")) == entries(pages[0]), bad
    for far in ("6", "99999", "9" * 40):
        assert entries(await quote(f"/quote page {far}")) == entries(pages[-1]), far
    # A quote picked on page 2 is shown, verbatim.
    picked = entries(pages[1])[3]
    shown = await quote(picked)
    quoted = core.library.quotes[picked.removeprefix("/quote ")]
    assert shown.kind is ReplyKind.ANSWER and quoted.text in shown.plain_text()
    # Words after /quote are still a search, not a page.
    assert (
        "Belarus must end the repression"
        in (await quote("/quote human rights defenders")).plain_text()
    )


async def test_odd_page_numbers_show_the_first_page(core: Core) -> None:
    [first] = await core.handle(incoming("/timeline"))
    for odd in ("0", "²", "２", "-3", "x"):
        [reply] = await core.handle(incoming(f"/timeline {odd}", sender=f"odd{odd}"))
        assert reply.kind is not ReplyKind.ERROR
        assert reply.plain_text() == first.plain_text(), odd


def test_quote_choices_are_told_apart(core: Core) -> None:
    """Several quotes share a speaker: their buttons show their opening words instead."""
    quotes = list(core.library.quotes.values())
    for lang in ("en", "ru", "be"):
        labels = {quote_label(quote, lang) for quote in quotes}
        assert len(labels) == len(quotes), lang
        assert all(len(label) <= LABEL_CHARS for label in labels), labels


async def test_a_message_of_several_questions_gets_the_answer_to_one_of_them(core: Core) -> None:
    """Declined as a whole, "who heads the FPB? and what is article 33?" is answered by its
    first question the knowledge answers, and the reply says which one, so the person knows to
    ask the other on its own. A statement before a question is no question of its own."""
    [reply] = await core.handle(incoming("who heads the FPB? and what is article 33?"))
    assert reply.kind is ReplyKind.ANSWER and reply.fact_id == "kozik-appointed"
    assert reply.plain_text().startswith(t("en", "answer.part", part="who heads the FPB?"))
    [reply] = await core.handle(incoming("Што такое БКДП? І калі яго ліквідавалі?", sender="8"))
    assert reply.fact_id == "bkdp-what" and "«Што такое БКДП?»" in reply.plain_text()
    assert question_parts("who heads the FPB?") == []
    assert question_parts("Kozik ran the FPB. When was he born?") == ["When was he born?"]
    [reply] = await core.handle(incoming("Kozik ran the FPB. When was he born?", sender="9"))
    assert reply.kind is ReplyKind.DECLINE
    # One question after a few words about the person asking: answered, with no such line.
    [reply] = await core.handle(
        incoming("Вітаю! Я студэнтка, пішу курсавую. Калі ліквідавалі незалежныя прафсаюзы?")
    )
    assert reply.fact_id == "liquidation-2022"
    assert not reply.plain_text().startswith(t("be", "answer.part", part="")[:20])
