"""Questions about the bot itself are told from questions about the subject that share words."""

from __future__ import annotations

import pytest

from bot.bot_questions import BotQuestion, asks_about_bot
from bot.knowledge.models import KnowledgeBase

ABOUT_THE_BOT = {
    "do you store my questions?": BotQuestion.PRIVACY,
    "Do you keep logs?": BotQuestion.PRIVACY,
    "will my messages be saved anywhere": BotQuestion.PRIVACY,
    "can anyone see what I ask here?": BotQuestion.PRIVACY,
    "is it safe to talk to you?": BotQuestion.PRIVACY,
    "is this bot anonymous": BotQuestion.PRIVACY,
    "can the KGB read my messages?": BotQuestion.PRIVACY,
    "what data do you collect about me": BotQuestion.PRIVACY,
    "это анонимно?": BotQuestion.PRIVACY,
    "кто видит мои сообщения": BotQuestion.PRIVACY,
    "удалите мои данные": BotQuestion.PRIVACY,
    "ці бяспечна пісаць вам?": BotQuestion.PRIVACY,
    "хто бачыць мае паведамленні": BotQuestion.PRIVACY,
    "how can I get notifications about new events": BotQuestion.ALERTS,
    "can I unsubscribe": BotQuestion.ALERTS,
    "how to stop the alerts": BotQuestion.ALERTS,
    "как подписаться на новости?": BotQuestion.ALERTS,
    "хочу получать уведомления": BotQuestion.ALERTS,
    "як адпісацца": BotQuestion.ALERTS,
    "where do you get your information?": BotQuestion.SOURCES,
    "what are your answers based on": BotQuestion.SOURCES,
    "какие источники вы используете?": BotQuestion.SOURCES,
    "якія крыніцы вы выкарыстоўваеце?": BotQuestion.SOURCES,
    "адкуль вы бераце інфармацыю?": BotQuestion.SOURCES,
    "where can I read the full article?": BotQuestion.SOURCES,
    "дай ссылку на статью": BotQuestion.SOURCES,
    "дзе можна прачытаць артыкул?": BotQuestion.SOURCES,
}
ABOUT_THE_SUBJECT = [
    "is it safe to join a union in belarus",
    "безопасно ли сейчас вступать в профсоюз в Беларуси",
    "who signed the UN statement",
    "кто подписал заявление экспертов ООН",
    "Беларусь падпісалася пад канвенцыямі?",
    "what sources did the UN experts cite",
    "what information did the ILO collect on belarus",
    "did the KGB read the union leaders' messages",
    "какие данные собирала МОТ",
    "Ці мае МАП права ўводзіць санкцыі?",
    "who keeps the unionists in prison",
    "I keep reading about article 33, what is its history",
    "what does the article say about Kozik?",
    "what did the statement say about the link between unions and the 2020 unrest?",
]


@pytest.mark.parametrize(("text", "kind"), ABOUT_THE_BOT.items())
def test_a_question_about_the_bot_is_recognised(text: str, kind: BotQuestion) -> None:
    assert asks_about_bot(text) is kind


@pytest.mark.parametrize("text", ABOUT_THE_SUBJECT)
def test_a_question_about_the_subject_is_left_to_search(text: str) -> None:
    assert asks_about_bot(text) is None


def test_no_sample_question_of_the_knowledge_is_taken_for_one_about_the_bot(
    kb: KnowledgeBase,
) -> None:
    taken = [q for f in kb.facts for q in f.questions.all() if asks_about_bot(q)]
    assert taken == []
