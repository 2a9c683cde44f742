"""Requests for personal advice: "I was fired for joining a union, what should I do?".

The knowledge holds facts from published articles; it cannot say what one person should do
about their job, an arrest or a summons, and a fact that shares a word with their story
("fired", "union") is the wrong reply to it. Such a message gets an honest "I can't advise on
your own situation", a word of caution about personal details, and the close facts if any.
Only first-person wording counts ("what should *I* do", "*меня* уволили", "*мяне* затрымалі"),
so "who was arrested in 2022?" or "what did the ILO do?" are still questions.
"""

from __future__ import annotations

import re

from bot.search.normalize import words

_HAPPENED = (
    r"fired|sacked|dismissed|laid off|arrested|detained|jailed|threatened|searched|summoned"
    r"|interrogated|questioned|blacklisted|harassed|pressured|forced|blackmailed|beaten"
)
_PEOPLE = (
    r"boss|employer|manager|director|husband|wife|partner|son|daughter|brother|sister|father"
    r"|mother|dad|mum|mom|friend|colleague|coworker|relative|cousin|uncle|aunt"
)
_ADVICE = re.compile(
    "|".join(
        (
            # English
            r"\bwhat (should|shall|can|could|do|must|would you advise) (i|we) do\b",
            r"\b(should|can|could|may) (i|we) (still )?(sue|appeal|complain|quit|leave the country"
            r"|flee|emigrate|refuse|report|get help|get my job|protest|go on strike|be arrested"
            r"|be fired|be punished)\b",
            r"\b(how|where) (do|can|could|should) (i|we) (protect|defend|complain|appeal|report"
            r"|get help|find help|find a lawyer|get a lawyer|sue|hide|leave|get out|escape"
            r"|get my job)\b",
            rf"\b(i|we) (was|were|got|have been|ve been|am being|are being|m being) ({_HAPPENED})\b",
            rf"\bmy ({_PEOPLE}) (was|were|got|has been|have been|is being) ({_HAPPENED})\b",
            r"\b(advise|advice for) me\b",
            # Russian, Cyrillic and romanised
            r"\bчто (же )?(мне|нам) (теперь |сейчас )?(делать|предпринять)\b",
            r"\bчто делать (если|когда) (меня|мне|нас|нам|мой|моя|моего|мою)\b",
            r"\b(меня|нас) (уволили|задержали|арестовали|вызвали|вызывают|допрашивали|сократили"
            r"|увольняют|заставляют|шантажируют|избили|обыскали)\b",
            r"\b(мне|нам) (угрожают|угрожали|пришла повестка)\b",
            r"\b(как|куда|где) (мне|нам) (защититься|обратиться|пожаловаться|жаловаться|найти"
            r" адвоката|уехать|спрятаться)\b",
            r"\b(могу ли|стоит ли|должен ли|нужно ли) (я|мне)\b",
            r"\b(посоветуйте|посоветуй|подскажите|подскажи) (мне |нам )?(что|как) (мне |нам )?делать\b",
            r"\bchto (zhe )?(mne|nam) (teper |seychas )?delat\b",
            r"\b(menya|menja|nas) (uvolili|zaderzhali|arestovali|vyzvali)\b",
            # Belarusian, Cyrillic and romanised
            r"\bшто (ж )?(мне|нам) (цяпер |зараз )?рабіць\b",
            r"\bшто рабіць (калі|як) (мяне|мне|нас|нам|мой|мая|майго)\b",
            r"\b(мяне|нас) (звольнілі|затрымалі|арыштавалі|выклікалі|выклікаюць|дапытвалі"
            r"|скарацілі|звальняюць|прымушаюць|шантажуюць|збілі|абшукалі)\b",
            r"\b(мне|нам) (пагражаюць|пагражалі|прыйшла позва)\b",
            r"\b(як|куды|дзе) (мне|нам) (абараніцца|звярнуцца|паскардзіцца|скардзіцца|знайсці"
            r" адваката|з ехаць|схавацца)\b",
            r"\b(ці магу|ці варта|ці павінен|ці трэба) (я|мне)\b",
            r"\b(парайце|парай|падкажыце|падкажы) (мне |нам )?(што|як) (мне |нам )?рабіць\b",
            r"\bshto (mne|nam) rabic\b",
            r"\b(mianie|mjane) (zvolnili|zatrymali)\b",
        )
    )
)


def asks_for_advice(text: str) -> bool:
    """Whether the message asks what the writer (or someone close to them) should do."""
    return _ADVICE.search(" ".join(words(text))) is not None
