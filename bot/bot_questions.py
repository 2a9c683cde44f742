"""Questions about the bot itself: "do you store my questions?", "how do I get alerts?",
"which sources do you use?".

People ask these in their own words, and for our users, some of them inside Belarus, the first
one matters most. The knowledge cannot answer them: a decline with unrelated close topics, or a
fact that shares a word ("is it safe..."), would be the wrong reply, and a declined privacy
question would even be kept among the questions the bot could not answer. Each kind gets the
reply its command gives (/privacy, /subscribe, /sources).

Only wording about the bot or the asker counts ("do *you* keep *my* messages", "is *this chat*
safe", "how do I *subscribe*"), so "is it safe to join a union in Belarus?", "who signed the
statement?" and "Беларусь падпісалася пад канвенцыямі" are still questions.
"""

from __future__ import annotations

import re
from enum import StrEnum

from bot.search.normalize import words


class BotQuestion(StrEnum):
    """What a question about the bot asks."""

    PRIVACY = "privacy"  # what is stored, who can see it, is it safe
    ALERTS = "alerts"  # how to subscribe to (or stop) alerts
    SOURCES = "sources"  # which sources the answers rest on


def _any(*alternatives: str) -> str:
    return r"\b(?:" + "|".join(alternatives) + r")\b"


# The bot, spoken to or of.
_YOU = _any(
    r"you|your|yours|this bot|the bot|bot",
    r"вы|ты|бот|бота|боте|ботом|вас|тебя|ваш\w*|тво\w*|вам|тебе",
    r"вы|ты|бот|бота|боце|ботам|вас|цябе|ваш\w*|тва\w*|вам|табе",
)
# Doing something with what people write.
_KEEPING = re.compile(
    _any(
        r"store[sd]?|storing|save[sd]?|saving|keep|keeps|kept|log|logs|logged|logging|record(?:s|ed)?"
        r"|track(?:s|ed|ing)?|collect(?:s|ed)?|share[sd]?|sell|sells|monitor(?:s|ed)?|read|reads"
        r"|see|sees|delete[sd]?|erase|remove|forget|retain(?:s|ed)?|pass on|hand over|give",
        r"хран\w*|сохран\w*|записыва\w*|логир\w*|собира\w*|переда\w*|отслежива\w*|видите|видишь"
        r"|видит|видят|читаете|читаешь|читает|читают|удал\w*|сотр\w*|стере\w*|забуд\w*",
        r"захоўва\w*|захава\w*|запісва\w*|збіра\w*|перада\w*|адсочва\w*|бачыце|бачыш|бачыць|бачаць"
        r"|чытаеце|чытаеш|чытае|чытаюць|выдал\w*|сатр\w*|сцер\w*|забуд\w*",
    )
)
# What people write, or who they are.
_WRITINGS = _any(
    r"questions?|messages?|data|chats?|history|conversations?|ip|identity|name|phone|number"
    r"|account|logs|info|information|details|quer(?:y|ies)|searches|personal|who i am",
    r"вопрос\w*|сообщени\w*|данн\w*|переписк\w*|истори\w*|лог\w*|информаци\w*|личн\w*|имя"
    r"|номер\w*|аккаунт\w*",
    r"пытанн\w*|паведамленн\w*|дадзен\w*|даны[яхм]\w*|звестк\w*|перапіск\w*|гісторы\w*|лог\w*"
    r"|інфармацы\w*|асабіст\w*|імя|нумар\w*|акаўнт\w*",
)
_MY = _any(r"my|our", r"мо[йяиюё]\w*|наш\w*", r"мае|мой|мая|маю|маі\w*|наш\w*")
_PRIVATE = re.compile(
    _any(
        r"privacy|anonymous|anonymously|anonymity|confidential\w*",
        r"анонимн\w*|конфиденциальн\w*|приватност\w*",
        r"ананімн\w*|канфідэнцыйн\w*|прыватнасц\w*",
        r"anonimn\w*",
    )
)
_SAFE_HERE = re.compile(
    "|".join(
        (
            r"\b(?:safe|secure|safely|securely) to (?:use|talk|write|ask|chat|message|text)"
            r"(?: to| with)? (?:you|this|the bot|this bot|this chat|here)\b",
            r"\b(?:is|are) (?:this|this chat|this bot|the bot|the chat|you|this conversation"
            r"|our chat|our conversation) (?:safe|secure|private|anonymous|encrypted|monitored"
            r"|watched)\b",
            r"\bcan (?:i|we) (?:safely|securely) (?:ask|use|talk|write|chat)\b",
            r"\b(?:can|could|does|do|will|would) (?:anyone|someone|somebody|the kgb|the police"
            r"|the authorities|the government|the state|the regime|they) (?:see|read|track|find"
            r" out|know|trace) (?:what i|who i|who is|my|our|that i|what we)\b",
        )
    )
)
_SAFE = re.compile(_any(r"безопасн\w*|бяспечн\w*"))
_HERE = re.compile(
    _any(
        r"бот\w*|чат\w*|вам|тебе|переписк\w*|с вами|с тобой",
        r"вам|табе|перапіск\w*|з вамі|з табой",
    )
)
_ALERTS = re.compile(
    "|".join(
        (
            r"\b(?:subscribe|subscribing|subscription|subscriptions|unsubscribe|unsubscribing)\b",
            r"\b(?:get|receive|turn on|switch on|enable|set up|sign up for|stop|turn off"
            r"|switch off|disable|follow)(?: the| your| any| some| new)? (?:alerts?|notifications?"
            r"|updates|news alerts|news updates)\b",
            # Russian and Belarusian "subscribe" is also "sign": not "подписаться под" (sign up to).
            r"\b(?:подписаться|подписываться|подпишусь|подпиши|подпишите|отписаться|отписываться"
            r"|отпишите|отпиши)\b(?! под)",
            r"\bподписк[аиуе] на\b",
            r"\b(?:получать|включить|выключить|отключить|настроить) (?:уведомления|оповещения"
            r"|новости|обновления|рассылку)\b",
            r"\b(?:падпісацца|падпісвацца|падпішыце|падпішы|адпісацца|адпісвацца|адпішыце"
            r"|адпішы)\b(?! пад)",
            r"\bпадпіск[аіу] на\b",
            r"\b(?:атрымліваць|уключыць|выключыць|адключыць|наладзіць) (?:апавяшчэнні"
            r"|паведамленні|навіны|абнаўленні|рассылку)\b",
            r"\b(?:podpisatsya|podpisatsja|padpisacca)\b",
        )
    )
)
_SOURCES = re.compile(
    "|".join(
        (
            r"\b(?:what|which) (?:sources?|articles?|documents?|references?) (?:do|does|did|are"
            r"|is) (?:you|the bot|this bot|your answers|your facts|your information)\b",
            r"\bwhere (?:do|does) (?:you|the bot|this bot|your information|your info|your facts"
            r"|your answers|your data) (?:get|come|take)\b",
            r"\bwhere (?:is|are) your (?:information|info|facts|answers|data) from\b",
            r"\bwhat (?:are|is) your (?:answers|facts|information|info|knowledge) based on\b",
            r"\bwhat do you base your (?:answers|facts|information) on\b",
            r"\b(?:какие|какими|каким|на какие|на каких) (?:источник\w*|стать\w*|материал\w*)"
            r" (?:вы|ты|бот)\b",
            r"\bоткуда (?:вы|ты|бот) (?:берете|берешь|берет|знаете|знаешь)\b",
            r"\bна чем основан\w* (?:ваши |твои )?(?:ответы|факты)\b",
            r"\b(?:якія|якімі|на якія|на якіх) (?:крыніц\w*|артыкул\w*|матэрыял\w*)"
            r" (?:вы|ты|бот)\b",
            r"\bадкуль (?:вы|ты|бот) (?:бераце|бярэш|бярэ|ведаеце|ведаеш)\b",
            r"\bна чым грунту\w* (?:вашы |твае )?(?:адказы|факты)\b",
            # Where to read the sources themselves.
            r"\b(?:link|links|url|address) (?:to|of|for) (?:the |this |that |your )?(?:articles?"
            r"|sources?|statement|original)\b",
            r"\bwhere (?:can|do|could) (?:i|we) (?:read|find|see|get) (?:the |this |that |your )?"
            r"(?:full |whole |original |complete )?(?:articles?|sources?|statement|text)\b",
            r"\b(?:ссылк\w*|линк\w*) на (?:стать\w*|источник\w*|заявлени\w*|оригинал\w*)\b",
            r"\bгде (?:можно )?(?:прочитать|почитать|найти|посмотреть) (?:эту |всю |саму |полную )?"
            r"(?:стать\w*|источник\w*|заявлени\w*|оригинал\w*)\b",
            r"\b(?:спасылк\w*|лінк\w*) на (?:артыкул\w*|крыніц\w*|заяв\w*|арыгінал\w*)\b",
            r"\bдзе (?:можна )?(?:прачытаць|пачытаць|знайсці|паглядзець) (?:гэты |увесь |ўвесь |сам )?"
            r"(?:артыкул\w*|крыніц\w*|заяв\w*|арыгінал\w*)\b",
        )
    )
)
# "do *you* keep logs", "are *my questions* stored": not "I keep reading about its history".
_YOUR_WRITINGS = re.compile(rf"{_YOU}.*{_WRITINGS}|{_WRITINGS}.*{_YOU}|{_MY} {_WRITINGS}")


def asks_about_bot(text: str) -> BotQuestion | None:
    """What a message asks about the bot itself, or None if it may be about the subject."""
    folded = " ".join(words(text))
    if _ALERTS.search(folded):
        return BotQuestion.ALERTS
    if _SOURCES.search(folded):
        return BotQuestion.SOURCES
    if (
        _PRIVATE.search(folded)
        or _SAFE_HERE.search(folded)
        or (_SAFE.search(folded) and _HERE.search(folded))
        or (_KEEPING.search(folded) and _YOUR_WRITINGS.search(folded))
    ):
        return BotQuestion.PRIVACY
    return None
