"""Function words of English, Russian and Belarusian (and Latin-script Russian) that carry no topic.

Deliberately short: only words that say nothing about what is asked. Content words such as
"today", "work" or "year" are not here, because an out-of-scope question must keep them.
"""

from __future__ import annotations

_ENGLISH = """
a an the and or but if of in on at to for from by with without about into onto over under after
before since until during between against through than then as so such that this these those it
its is are was were be been being am do does did done doing have has had having can could will
would shall should may might must i me my we us our you your he him his she her they them their
what which who whom whose when where why how whats whos hows there here not no nor any some all
each every both either neither own same other another more most much many very just also only
again ever still yet please tell explain know want like say said give show let s t d ll re ve m
anything something someone somebody way kind sort about really actually exactly
told get got gets getting make made makes go goes went take took taken put happen happened
happens mean means meant called call know known thing things out up off ever eventually
ok okay sorry btw hmm um even anyway basically mention mentioned mentions everything
teh hte whta waht wat wht hwo whn wen abt u ur r
"""

_RUSSIAN = """
а и или но если то это этот эта эти тот та те так такой такая такое такие как какой какая какое какие каков
что кто кого кому кем чем чего где когда куда откуда почему зачем ли же бы не ни нет да в во на
по о об от до из у к ко с со за под над при для про без через между после перед ещё еще уже
вот я мы ты вы он она оно они его ее её их мне меня нас вас им ей ему был была было были быть
есть будет будут может можно нужно надо скажи скажите расскажи расскажите объясни объясните
пожалуйста ну ли чей чья чьё чьи сколько всё все весь вся свой своя свои своё который которая
которые которое также тоже только очень
ок окей вообще
шо че чё чо када кагда скока скоко щас типа вобще ваще
упоминали упомянули упоминал упомянул упоминается упоминают упомянуто
случилось случился случилась случились произошло произошел произошёл произошла произошли
поясни поясните разъясни разъясните
"""

_BELARUSIAN = """
а і й ці або але калі гэта гэты гэтая гэтыя той тая тыя так такі такая такое такія як які якая якое
якія што хто каго каму кім чым чаго дзе куды адкуль чаму навошта ж б бы не ні няма так у ў на
па пра аб ад да з са за пад над пры для без праз паміж пасля перад ужо вось я мы ты вы ён яна
яно яны яго яе іх мне мяне нас вас ім ёй яму быў была было былі быць ёсць будзе будуць можа
можна трэба скажы скажыце раскажы раскажыце растлумач калі ласка ну чый чыя чыё чые колькі
усё ўсё усе ўсе увесь уся свой свая свае сваё які якая таксама толькі вельмі
здарылася адбылося стала стаў зрабіў зрабіла зрабілі сказаў сказалі называецца упершыню
ўпершыню наогул
якога якому якім якой якую якіх якімі гэтага гэтаму гэтым гэтай гэтую гэтых таго тым тую тых
каб бо нават яшчэ больш болей менш паводле наконт акрамя каля сярод дзеля сабе сябе імі
свайго сваёй свайму сваім сваю сваіх наш наша нашы нашай нашага нам вам ды жа хіба ўжо
ок окей увогуле ўвогуле
згадвалі згадалі згадваў згадаў згадваецца згадваюць
адбыўся адбылася адбыліся здарыўся здарыліся
растлумачце растлумачыце растлумачы патлумач патлумачце патлумачыце
"""

_RUSSIAN_LATIN = """
chto kto kogda gde pochemu zachem skolko kak kakoy kakaya kakie eto etot byl byla bylo byli
li ne net da v vo na po o ob ot do iz u k s so za pri dlya pro bez posle pered uzhe ya my ty vy
on ona oni ego ee ikh mne nas vas est budet mozhno nado skazhi rasskazhi shto kali hto
takoe takoy takoi takaya takie taki takaja takija heta hety jaki jakija kolki chamu dze
sluchilos proizoshlo
"""


# Greetings and politeness: stop words, and the dense model is given the question without them.
# The English ones apart: "hello" and "thanks" alone are English, not romanised Russian.
_ENGLISH_FILLERS = frozenset("hi hello hey hiya please pls plz thanks thank thx lol haha".split())  # noqa: SIM905
# Romanised Russian ones, which tell a Latin-script question is Russian ("privet, kto ...").
LATIN_FILLERS: frozenset[str] = frozenset(
    "privet pozhaluysta pozhalujsta spasibo podskazhi podskazhite".split()  # noqa: SIM905
)
FILLERS: frozenset[str] = (
    _ENGLISH_FILLERS
    | LATIN_FILLERS
    | frozenset(
        [
            "привет",
            "здравствуйте",
            "пожалуйста",
            "спасибо",
            "подскажи",
            "подскажите",
            "прывітанне",
            "вітаю",
            "дзякуй",
            "падкажы",
            "падкажыце",
            "слушай",
            "слушайте",
            "кстати",
            "короче",
            "слухай",
            "слухайце",
            "дарэчы",
            "карацей",
        ]
    )
)

# The words of a chatty lead-in ("quick question:", "I was wondering", "мне интересно", "цікава,
# хто...") and of its politeness ("could you possibly"): dropped from a question before either
# retriever reads it, but not from the index, whose chatty phrasings use some of them (as stop
# words they changed which entries those phrasings favour).
CHAT_WORDS: frozenset[str] = frozenset(
    """
    quick question questions wondering wonder curious curiosity idea guys yo folks possibly
    perhaps maybe kindly understand info information remind remember recall wanted wanna
    interested clarify briefly
    интересно интересует хотел хотела хотелось хочу хочется узнать знать подскажете вопрос
    вопросик быстрый коротко кратко напомни напомните можете могли знаете знаешь ребят ребята
    цікава цікавіць хацеў хацела хачу даведацца ведаць падкажаце пытанне коратка нагадай
    нагадайце можаце ведаеце ведаеш прабачце прабачыце выбачайце выбачце извините простите
    bot bother pardon помогите помоги дапамажыце дапамажы cheers заранее загадзя
    summarize summarise summary overview outline brief вкратце сцісла
    """.split()  # noqa: SIM905
) | {
    "sorry to bother you",
    "in advance",
    "excuse me",
    "good morning",
    "good afternoon",
    "good evening",
    "one more thing",
    "добрый день",
    "доброе утро",
    "добрый вечер",
    "ещё один момент",
    "еще один момент",
    "ещё вопрос",
    "еще вопрос",
    "добры дзень",
    "добрай раніцы",
    "добры вечар",
    "яшчэ адно",
    "яшчэ пытанне",
}

ENGLISH_WORDS: frozenset[str] = frozenset(_ENGLISH.split())
RUSSIAN_WORDS: frozenset[str] = frozenset(_RUSSIAN.split())
BELARUSIAN_WORDS: frozenset[str] = frozenset(_BELARUSIAN.split())

# Folded as ``normalize.words`` folds a message (ё is е), or "ён" and "ёсць" would never match.
STOPWORDS: frozenset[str] = frozenset(
    word.replace("ё", "е")
    for word in [*(_ENGLISH + _RUSSIAN + _BELARUSIAN + _RUSSIAN_LATIN).split(), *FILLERS]
)

# Places people add for context ("... in Minsk") that are rarely the point of a question here:
# they count for less than other words, so adding one does not change which fact answers.
PLACES: tuple[str, ...] = tuple(
    [
        "minsk",
        "минск",
        "мінск",
        "gomel",
        "homel",
        "гомель",
        "brest",
        "брест",
        "брэст",
        "grodno",
        "hrodna",
        "гродно",
        "гродна",
        "vitebsk",
        "viciebsk",
        "витебск",
        "віцебск",
        "mogilev",
        "mahilyow",
        "mogilyov",
        "могилев",
        "могилёв",
        "магілёў",
        "soligorsk",
        "salihorsk",
        "солигорск",
        "салігорск",
        "novopolotsk",
        "navapolatsk",
        "новополоцк",
        "наваполацк",
        "bobruisk",
        "babruysk",
        "бобруйск",
        "бабруйск",
        "baranovichi",
        "baranavichy",
        "барановичи",
        "баранавічы",
        "pinsk",
        "пинск",
        "пінск",
        "zhodino",
        "zhodzina",
        "жодино",
        "жодзіна",
        "moscow",
        "москва",
        "масква",
        "warsaw",
        "варшава",
        "vilnius",
        "вильнюс",
        "вільня",
    ]
)
