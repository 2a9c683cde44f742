"""Small talk: a message that only greets, thanks, says "ok" or goodbye, asks what the bot is,
for the source of the last answer, for more than it, or for news, or says the last reply missed.

People open a chat with "hi", end it with "thanks!" or "ok" and ask "what can you do?",
"source?", "what's new?" or "tell me more". None of these is a question the knowledge answers,
and a decline ("I don't have a sourced answer...") with unrelated suggestions, or a fact that
happens to share a word ("как дела?" and ILO case No. 2090), is the wrong reply to them. A message is small talk
only when every word belongs to it (in English, Russian or Belarusian, Cyrillic or romanised),
so "hi, who is Kozik?" is still a question.
"""

from __future__ import annotations

import re
from enum import StrEnum

from bot.domain import PageTurn
from bot.search.normalize import words


class SmallTalk(StrEnum):
    """What a message that is not a question does."""

    GREETING = "greeting"
    THANKS = "thanks"
    FAREWELL = "farewell"
    ABOUT = "about"  # "who are you?", "what can you do?"
    ACKNOWLEDGEMENT = "acknowledgement"  # "ok", "got it", "понятно"
    SOURCE = "source"  # "source?", "откуда это?": the evidence behind the last answer
    NEWS = "news"  # "what's new?", "что нового?": the latest events
    MORE = "more"  # "tell me more", "подробнее": more than the answer just given
    COMPLAINT = "complaint"  # "that's wrong", "не то": the last reply missed
    OPENER = "opener"  # "I have a question", "можно вопрос?": the question is still to come


def _phrases(text: str) -> frozenset[str]:
    """One phrase a line, folded as ``words`` folds a message (ё is е)."""
    return frozenset(" ".join(words(line)) for line in text.strip().splitlines() if line.strip())


_GREETINGS = _phrases(
    """
    hi
    hello
    hey
    hiya
    howdy
    greetings
    good morning
    good afternoon
    good evening
    good day
    привет
    приветствую
    здравствуйте
    здравствуй
    здрасте
    добрый день
    добрый вечер
    доброе утро
    доброго дня
    прывітанне
    прывет
    вітаю
    добры дзень
    добры вечар
    добрай раніцы
    privet
    zdravstvuyte
    zdravstvujte
    dobryy den
    dobryj den
    dobriy den
    dobry den
    dobry dzen
    dobry dzien
    dobry viechar
    dobry vechar
    pryvitannie
    pryvitanne
    vitaju
    vitayu
    how are you
    how are you doing
    how r u
    how is it going
    how s it going
    как дела
    как ты
    как вы
    как поживаете
    как жизнь
    як справы
    як ты
    як вы
    як маецеся
    kak dela
    yak spravy
    """
)
_NEWS = _phrases(
    """
    what s new
    whats new
    what is new
    anything new
    any news
    news
    latest news
    the latest
    what s the latest
    what is the latest
    latest events
    recent events
    что нового
    какие новости
    новости
    есть новости
    последние новости
    што новага
    якія навіны
    навіны
    ёсць навіны
    апошнія навіны
    chto novogo
    kakie novosti
    """
)
_THANKS = _phrases(
    """
    thanks
    thank you
    thank u
    thx
    ty
    cheers
    many thanks
    спасибо
    спасиб
    спс
    благодарю
    дзякуй
    дзякуем
    дзякую
    spasibo
    spasiba
    dziakuj
    dzyakuy
    dzjakuj
    dzyakuj
    dziakuju
    dzyakuyu
    blagodaryu
    """
)
_FAREWELLS = _phrases(
    """
    bye
    goodbye
    good bye
    bye bye
    see you
    see you later
    good night
    пока
    пака
    до свидания
    всего доброго
    спокойной ночи
    бывай
    бывайце
    да пабачэння
    да спаткання
    дабранач
    poka
    paka
    do svidaniya
    da svidaniya
    da pabachennia
    da pabachennya
    byvaj
    """
)
_ABOUT = _phrases(
    """
    who are you
    what are you
    what is this
    what is this bot
    what bot is this
    what can you do
    what do you do
    what do you know
    what can i ask
    what can i ask you
    how does this work
    how do you work
    help
    help me
    can you help
    can you help me
    could you help me
    i need help
    what can you tell me
    what can you tell me about
    what do you know about
    who made you
    who created you
    who built you
    who runs you
    who is behind you
    who is behind this bot
    what topics do you cover
    which topics do you cover
    what do you cover
    what topics can i ask about
    can i trust you
    why should i trust you
    are you a bot
    are you a robot
    are you a human
    are you a person
    are you real
    are you an ai
    is this a bot
    am i talking to a bot
    am i talking to a human
    am i talking to a person
    do you speak russian
    do you speak belarusian
    do you speak english
    can i ask in russian
    can i ask in belarusian
    can i write in russian
    can i write in belarusian
    кто ты
    ты кто
    кто вы
    что ты такое
    что ты умеешь
    что ты можешь
    что ты знаешь
    что это за бот
    что это
    что можно спросить
    помощь
    помоги
    помогите
    помогите мне
    можете помочь
    что вы умеете
    что вы можете
    что вы знаете
    что вы можете рассказать
    что ты можешь рассказать
    кто тебя создал
    кто тебя сделал
    кто стоит за тобой
    кто стоит за этим ботом
    какие темы ты знаешь
    о чем ты знаешь
    можно тебе доверять
    можно ли тебе доверять
    почему тебе можно доверять
    ты бот
    вы бот
    ты робот
    ты человек
    вы человек
    ты живой
    это бот
    я говорю с ботом
    ты говоришь по русски
    вы говорите по русски
    ты понимаешь по русски
    можно по русски
    можно на русском
    можно по белорусски
    можно на белорусском
    хто ты
    ты хто
    хто вы
    што ты ўмееш
    што ты умееш
    што ты можаш
    што ты ведаеш
    што гэта за бот
    што гэта
    што можна спытаць
    дапамога
    дапамажы
    дапамажыце
    дапамажыце мне
    можаце дапамагчы
    што вы ўмееце
    што вы умееце
    што вы можаце
    што вы ведаеце
    што вы можаце расказаць
    што ты можаш расказаць
    хто цябе стварыў
    хто цябе зрабіў
    хто стаіць за табой
    хто стаіць за гэтым ботам
    якія тэмы ты ведаеш
    пра што ты ведаеш
    ці можна табе давяраць
    чаму табе можна давяраць
    ты чалавек
    вы чалавек
    гэта бот
    ты жывы
    можна па беларуску
    можна па руску
    ты размаўляеш па беларуску
    вы размаўляеце па беларуску
    ты разумееш па беларуску
    kto ty
    kto tebya sozdal
    khto ciabie stvaryu
    chto ty umeesh
    chto ty mozhesh
    """
)
# Turning the page of a list the last reply offered ("next", "назад"). Without such a list,
# the words for "next" ask for more (above) and those for "back" are an acknowledgement.
_NEXT_PAGE = _phrases(
    """
    next
    next page
    more
    show more
    далее
    дальше
    следующая
    следующая страница
    ещё
    далей
    наступная
    наступная старонка
    яшчэ
    dalee
    dalshe
    """
)
_PREVIOUS_PAGE = _phrases(
    """
    back
    go back
    previous
    previous page
    prev
    назад
    предыдущая
    предыдущая страница
    папярэдняя
    папярэдняя старонка
    nazad
    """
)
_PAGE_TURNS = {PageTurn.NEXT: _NEXT_PAGE, PageTurn.PREVIOUS: _PREVIOUS_PAGE}


def page_turn(text: str) -> PageTurn | None:
    """The way a message that only says "next" or "back" (in any of the languages) turns a
    list's page, if that is all it says."""
    phrase = " ".join(words(text))
    return next((turn for turn, phrases in _PAGE_TURNS.items() if phrase in phrases), None)


_ACKNOWLEDGEMENTS = (
    _phrases(
        """
    ok
    okay
    k
    kk
    got it
    i see
    understood
    alright
    all right
    fine
    cool
    great
    nice
    good
    awesome
    perfect
    yes
    yeah
    yep
    yup
    sure
    no
    nope
    nah
    ок
    окей
    хорошо
    понятно
    ясно
    отлично
    ладно
    да
    ага
    угу
    нет
    неа
    не
    так
    добра
    зразумела
    ясна
    выдатна
    ponyatno
    da
    net
    tak
    khorosho
    horosho
    yasno
    """
    )
    | _PREVIOUS_PAGE
)
_SOURCE_REQUESTS = _phrases(
    """
    source
    sources
    the source
    your source
    what source
    which source
    what is the source
    what is your source
    what are your sources
    whats the source
    whats your source
    source please
    proof
    evidence
    link
    where is this from
    where is that from
    where did you get this
    where did you get that
    how do you know
    says who
    who said that
    who said this
    who says so
    who says that
    exact words
    the exact words
    the words
    the original words
    the source's words
    the sources words
    what does the source say
    show me the source
    show the source
    show me the exact words
    show the exact words
    show me the words
    is this true
    is that true
    is it true
    really
    are you sure
    how do i know this is true
    how do i know that is true
    how do i know it is true
    how can i check this
    how can i check that
    how can i verify this
    how can i verify that
    how do i verify this
    can i check this
    источник
    источники
    какой источник
    где источник
    откуда это
    откуда информация
    откуда вы это знаете
    откуда ты это знаешь
    кто это сказал
    кто так говорит
    кто так сказал
    точные слова
    слова источника
    что говорит источник
    покажи источник
    покажите источник
    покажи точные слова
    покажите точные слова
    это правда
    правда
    точно
    вы уверены
    ты уверен
    как проверить
    как это проверить
    как мне это проверить
    пруф
    пруфы
    доказательства
    ссылка
    крыніца
    крыніцы
    якая крыніца
    адкуль гэта
    адкуль інфармацыя
    адкуль вы гэта ведаеце
    хто гэта сказаў
    хто так кажа
    дакладныя словы
    словы крыніцы
    што кажа крыніца
    пакажы крыніцу
    пакажыце крыніцу
    пакажыце дакладныя словы
    гэта праўда
    праўда
    дакладна
    вы ўпэўненыя
    ты ўпэўнены
    як праверыць
    як гэта праверыць
    доказы
    спасылка
    istochnik
    otkuda eto
    otkuda
    kto eto skazal
    krynica
    adkul heta
    adkul hieta
    adkul
    khto heta skazau
    hto heta skazau
    """
)
_MORE_REQUESTS = (
    _phrases(
        """
    more
    tell me more
    tell us more
    more please
    more info
    more information
    more details
    details
    in detail
    in more detail
    go on
    keep going
    continue
    and then
    and then what
    what else
    anything else
    what next
    elaborate
    can you elaborate
    please elaborate
    explain more
    say more
    подробнее
    поподробнее
    а подробнее
    можно подробнее
    расскажи подробнее
    расскажите подробнее
    расскажи ещё
    расскажите ещё
    расскажи больше
    расскажите больше
    ещё
    больше
    дальше
    а дальше
    что дальше
    продолжай
    продолжайте
    что ещё
    а ещё
    детали
    падрабязней
    падрабязна
    а падрабязней
    можна падрабязней
    раскажы падрабязней
    раскажыце падрабязней
    раскажы яшчэ
    раскажыце яшчэ
    раскажы больш
    раскажыце больш
    яшчэ
    больш
    далей
    а далей
    што далей
    працягвай
    працягвайце
    што яшчэ
    а яшчэ
    дэталі
    podrobnee
    popodrobnee
    eshche
    eshe
    yeshche
    dalshe
    chto eshche
    chto eshe
    padrabiazniej
    padrabyaznei
    jashche
    yashche
    jasce
    """
    )
    | _NEXT_PAGE
)
_COMPLAINTS = _phrases(
    """
    wrong
    that s wrong
    that is wrong
    this is wrong
    it s wrong
    wrong answer
    that s the wrong answer
    you re wrong
    you are wrong
    incorrect
    that s incorrect
    not true
    that s not true
    that is not true
    not what i asked
    that s not what i asked
    that is not what i asked
    that s not my question
    not my question
    you didn t answer my question
    you did not answer my question
    that doesn t answer my question
    that does not answer my question
    useless
    you re useless
    you are useless
    bad answer
    неправильно
    это неправильно
    неверно
    это неверно
    неправда
    это неправда
    не то
    это не то
    не то спрашивал
    я не это спрашивал
    я не об этом спрашивал
    это не ответ
    ты не ответил на вопрос
    ты ошибаешься
    вы ошибаетесь
    бесполезно
    няправільна
    гэта няправільна
    няпраўда
    гэта няпраўда
    не тое
    гэта не тое
    я не пра гэта пытаўся
    гэта не адказ
    ты памыляешся
    вы памыляецеся
    бескарысна
    nepravilno
    ne to
    """
)
# Words that go with any of the above and change nothing: "thanks a lot", "hi there, bot!",
# "help me please".
_ALONG = _phrases(
    """
    a
    lot
    so
    much
    very
    again
    all
    everyone
    there
    guys
    folks
    friend
    friends
    bot
    dear
    oh
    well
    then
    and
    please
    pls
    plz
    for everything
    а
    ну
    большое
    огромное
    вам
    тебе
    всем
    бот
    друзья
    и
    пожалуйста
    все
    за всё
    за все
    вялікі
    вялікае
    вам
    табе
    усім
    ўсім
    бот
    сябры
    і
    калі ласка
    усё
    ўсё
    за ўсё
    bolshoe
    bolshoje
    vialikaje
    vialikae
    vam
    pozhaluysta
    pozhalujsta
    """
)
_OPENERS = _phrases(
    """
    question
    a question
    quick question
    one question
    i have a question
    i have a quick question
    i have one question
    i got a question
    got a question
    i ve got a question
    ive got a question
    can i ask
    can i ask a question
    can i ask you a question
    can i ask you something
    may i ask
    may i ask a question
    вопрос
    вопросик
    быстрый вопрос
    у меня вопрос
    у меня есть вопрос
    есть вопрос
    можно вопрос
    можно спросить
    можно задать вопрос
    пытанне
    у мяне пытанне
    ёсць пытанне
    можна пытанне
    можна спытаць
    можна задаць пытанне
    """
)
_KINDS: tuple[tuple[SmallTalk | None, frozenset[str]], ...] = (
    (SmallTalk.SOURCE, _SOURCE_REQUESTS),
    (SmallTalk.NEWS, _NEWS),
    (SmallTalk.MORE, _MORE_REQUESTS),
    (SmallTalk.COMPLAINT, _COMPLAINTS),
    (SmallTalk.ABOUT, _ABOUT),
    (SmallTalk.THANKS, _THANKS),
    (SmallTalk.FAREWELL, _FAREWELLS),
    (SmallTalk.GREETING, _GREETINGS),
    (SmallTalk.OPENER, _OPENERS),
    (SmallTalk.ACKNOWLEDGEMENT, _ACKNOWLEDGEMENTS),
    (None, _ALONG),
)
_LONGEST = max(len(p.split()) for _, phrases in _KINDS for p in phrases)
_ANY_DIGIT = re.compile(r"\d")


def small_talk(text: str) -> SmallTalk | None:
    """What a message is if it is only small talk; None for anything that may be a question.

    With several kinds in one message ("ok thanks, bye"), a request for the source wins, then
    one for news, one to know the bot, thanks, goodbye, greeting, "I have a question" and a
    bare "ok": the reply to the more specific one covers the others.
    """
    if len(text) > 120 or _ANY_DIGIT.search(text):
        return None
    tokens = words(text)
    found: set[SmallTalk | None] = set()
    i = 0
    while i < len(tokens):
        for size in range(min(_LONGEST, len(tokens) - i), 0, -1):
            phrase = " ".join(tokens[i : i + size])
            kinds = [kind for kind, phrases in _KINDS if phrase in phrases]
            if kinds:
                found.add(kinds[0])
                i += size
                break
        else:
            return None  # a word that is no small talk: a question, perhaps
    return next((kind for kind, _ in _KINDS if kind in found), None)
