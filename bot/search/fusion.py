"""One decision from two retrievers: the lexical matcher and the dense (semantic) one.

Every candidate either retriever ranks near the top is described by a few features (its dense
similarity and margin, the mean similarity of its few nearest texts and of its answers, its
lexical score, coverage and margin, whether both retrievers put it
first, the weight of question words it lacks, whether the question's type fits its answer). A
logistic model over them and their pairwise products (so that, say, a high dense similarity
counts for less when the question asks for a kind of thing the answer lacks) turns them into the
probability that the candidate is the right answer; the most
probable candidate is the answer when that probability clears the model's threshold, otherwise
the question is declined and the candidates become suggestions.

The coefficients are data (``decision.json``), refitted by ``benchmarks/calibrate.py`` on the
tuning sets (``TUNING_SETS``: development, regression, independent and fresh), never on the
held-out set.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cache, lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

from bot.search.dense import DenseScores
from bot.search.matcher import Hit, MatchResult

MODEL_FILE = Path(__file__).with_name("decision.json")
DENSE_CANDIDATES = 20
# A candidate's dense similarity is measured in spreads of the dense top from its mean, up to
# this many either way: a lexical candidate far below the dense top is simply far, and a larger
# value would swing the model's squared terms beyond anything it was fitted on.
DENSE_Z_LIMIT = 3.0

FEATURES = (
    "dense",
    "dense_margin",
    "dense_z",
    "answer",
    "answer_margin",
    "lexical",
    "coverage",
    "known_coverage",
    "phrase",
    "lexical_margin",
    "missing",
    "agree",
    "dense_rank",
    "lexical_rank",
    "type_mismatch",
    "quote",
    "dense_mean",
    "answer_mean",
)
# How many of an entry's nearest texts make its mean similarity (a fact has up to three answers,
# one per language, and a dozen phrasings and keyword lists per language).
NEAREST_AVERAGED = 5

_WHEN = re.compile(
    r"\b(when|what year|which year|what date|когда|када|в каком году|какого числа|калі|у якім годзе|"
    r"kogda|v kakom godu)\b",
    re.IGNORECASE,
)
_COUNT = re.compile(
    r"\b(how many|how much|how long|how big|how large|how old|сколько|скока|колькі|skolko|skol'ko|"
    r"насколько (большой|большим|крупн\w*)|какой численности|наколькі вялік\w*)\b",
    re.IGNORECASE,
)
_YEAR_OR_DATE = re.compile(
    r"\b(1[89]\d\d|20\d\d)\b|\b(january|february|march|april|june|july|august|september|october|"
    r"november|december|январ|феврал|март|апрел|ма[йя]|июн|июл|август|сентябр|октябр|ноябр|"
    r"декабр|студзен|лют|сакавік|красавік|травен|чэрвен|ліпен|жнівен|верасн|кастрычнік|"
    r"лістапад|снежн)|"
    # A time stated relative to another: "a year later", "several months after the arrests".
    r"\b(months?|years?)\s+(later|after)\b|\bспустя\b|\b(через|праз)\s+(\w+\s+)?(месяц|год|гад)",
    re.IGNORECASE,
)
_NUMBER = re.compile(
    r"\d+(?:[.,]\d+)?|\b(one|two|three|four|five|six|seven|eight|nine|ten|twelve|dozen|decade|once|"
    r"один|два|три|четыре|пять|шесть|десят|дюжин|адзін|тры|чатыры|шэсць|дзесят|тузін|"
    r"раз\b)",
    re.IGNORECASE,
)


_DAY = re.compile(
    r"\b(what date|which date|which day|what day|exact date|какого числа|какая дата|"
    r"якога чысла|якая дата|kakogo chisla)\b",
    re.IGNORECASE,
)
_DAY_OF_MONTH = re.compile(r"\b\d{1,2}(st|nd|rd|th)?\s+[^\W\d_]{3,}|[^\W\d_]{3,}\s+\d{1,2}\b")
_PERCENT_ASKED = re.compile(r"%|\b(percent|per cent|процент|працэнт|protsent)", re.IGNORECASE)
_PERCENT_STATED = re.compile(r"%|\b(percent|per cent|процент|працэнт)", re.IGNORECASE)
_PLEASE_BE = re.compile(r"\bкалі\s+ласка\b", re.IGNORECASE)  # "please", not "when"
_YEAR = re.compile(r"1[89]\d\d|20\d\d")
_NAME_ASKED = re.compile(
    r"\bnames?\b|\b(как|як)\s+(его|её|ее|их|яго|яе|іх)?\s*(зовут|звали|завуць|звалі)\b|"
    r"\b(имя|имена|имени|фамили\w*|імя|імёны|імёнаў|прозвішч\w*)\b|\bkak\s+(zovut|zvali)\b",
    re.IGNORECASE,
)
# "Who heads the FPB?" asks for a person: no answer that names none states it.
_LEADER_ASKED = re.compile(
    r"\b(who|кто|хто|kto|khto)\b.*\b(leads|heads?|headed|chairs?|chaired|chairman|chairwoman|"
    r"chairperson|leader|boss|возглав\w*|руковод\w*|глав[аеуы]|председател\w*|лидер\w*|"
    r"начальник\w*|[уў]значал\w*|кіру\w*|кіраваў|старшын\w*|лідар\w*|кіраўнік\w*|vozglav\w*|"
    r"rukovod\w*|glava|predsedatel\w*|lider\w*|[uŭ]znachal\w*|u[zž]načal\w*|starshyn\w*|"
    r"kira[uŭ]nik\w*)\b",
    re.IGNORECASE,
)
# A capitalised word inside a sentence: a name, unless it is one of the titles, places and
# months the knowledge writes with capitals.
_CAPITALISED = re.compile(r"\b[A-Z][a-z]+(?:-[A-Z]?[a-z]+)*\b")
_NOT_PEOPLE = frozenset(
    """Administration Africa American Article Body Byelorussian Belarus Belarusian Case Commission
    Committee Confederation Conference Congress Constitution Convention Conventions Council Court
    Decree Decrees Democratic Director Director-General Employment Europe European Forced Free
    General Generalised Governing Human Independent Inquiry International Labor Labour Ministry
    Minsk Gomel Office Organisation Organization Parliament Polish Preferences Presidential
    Prohibition Prosecutor Protection Rapporteur Republic Rights Russia Russian Scheme Special
    Supreme Trade Union Unions Wages Western No January February March April May June July
    August September October November December Monday Tuesday Wednesday Thursday Friday
    Saturday Sunday""".split()  # noqa: SIM905
)


def _found(pattern: re.Pattern[str], text: str) -> frozenset[str]:
    return frozenset(m.group(0).casefold() for m in pattern.finditer(text))


def _names(text: str) -> frozenset[str]:
    """Capitalised words that are not a sentence's first word and not a known title."""
    out = set()
    for m in _CAPITALISED.finditer(text):
        before = text[: m.start()].rstrip()
        if before and before[-1] not in '.!?:"“(' and m.group(0) not in _NOT_PEOPLE:
            out.add(m.group(0).casefold())
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class Asked:
    """What kind of thing a question asks for, and the dates, numbers and words it already
    says (read once per question, then set against every candidate's answer)."""

    day: bool
    percent: bool
    when: bool
    count: bool
    counts_named: bool  # counts things known by number: conventions, articles, decrees, cases
    name: bool
    dates: frozenset[str]
    numbers: frozenset[str]
    words: frozenset[str]
    identifiers: frozenset[tuple[str, str]]


def asked(question: str) -> Asked:
    question = _PLEASE_BE.sub(" ", question)
    return Asked(
        day=bool(_DAY.search(question)),
        percent=bool(_PERCENT_ASKED.search(question)),
        when=bool(_WHEN.search(question)),
        count=bool(_COUNT.search(question)),
        counts_named=bool(_NAMED_KINDS.search(question)),
        name=bool(_NAME_ASKED.search(question) or _LEADER_ASKED.search(question)),
        dates=_found(_YEAR_OR_DATE, question),
        numbers=_found(_NUMBER, question),
        words=frozenset(re.findall(r"\w+", question.casefold())),
        identifiers=_identifiers(question),
    )


@dataclass(frozen=True, slots=True)
class _Stated:
    """What an answer states, by kind."""

    day: bool
    percent: bool
    dates: frozenset[str]
    numbers: frozenset[str]
    quantities: frozenset[str]  # the numbers that name nothing
    latin: bool
    names: frozenset[str]
    identifiers: frozenset[tuple[str, str]]


# A number that names something ("Article 33", "Decree No. 2", "Conventions No. 87 and 98")
# is no count: "how many members does the ILO have" is not answered by "Article 33". It is one
# when such things are what is counted ("how many conventions..." and a list of them).
_NUMBERED_KINDS = (  # the kinds' forms common to both patterns below
    r"articles?|decrees?|conventions?|cases?|артыкул\w*|декрет\w*|дэкрэт\w*|конвенци\w*"
    r"|канвенцы\w*"
)
_NAMED_KINDS = re.compile(
    rf"\b(?:{_NUMBERED_KINDS}|стат\w*|дело|дела|дел|справа|справы|спраў)\b", re.IGNORECASE
)
_IDENTIFIER = re.compile(
    rf"\b(?:{_NUMBERED_KINDS}|no\.|nos\.|статья|статьи|статью|статьёй|статье|дело|делу|справ\w*)"
    r"\s*(?:№\s*)?\d+(?:\s*(?:,|and|и|і)\s*(?:no\.\s*|№\s*)?\d+)*|№\s*\d+",
    re.IGNORECASE,
)


# Things known by their number, each kind with its words in our languages.
_KINDS_BY_NUMBER = {
    "decree": r"decrees?|декрет\w*|дэкрэт\w*",
    "article": r"articles?|стать\w*|статей|артыкул\w*",
    "convention": r"conventions?|конвенци\w*|канвенцы\w*",
    "case": r"cases?|дело|дела|делу|справа|справы|справе|справу|спраў",
}
_NUMBER_SIGN = r"(?:nos?\.?\s*|№\s*|number\s+|номер\s+|нумар\s+)?"
_KIND_NUMBERS = {
    kind: re.compile(
        rf"\b(?:{words})\s*{_NUMBER_SIGN}(\d+(?:\s*(?:,|and|и|і)\s*{_NUMBER_SIGN}\d+)*)",
        re.IGNORECASE,
    )
    for kind, words in _KINDS_BY_NUMBER.items()
}


def _identifiers(text: str) -> frozenset[tuple[str, str]]:
    """The (kind, number) of every decree, article, convention or case a text names."""
    return frozenset(
        (kind, number)
        for kind, pattern in _KIND_NUMBERS.items()
        for m in pattern.finditer(text)
        for number in re.findall(r"\d+", m.group(1))
    )


@lru_cache(maxsize=4096)
def _stated(answer: str) -> _Stated:
    # Cached: the same few answers are candidates for question after question.
    return _Stated(
        day=bool(_DAY_OF_MONTH.search(answer)),
        percent=bool(_PERCENT_STATED.search(answer)),
        dates=_found(_YEAR_OR_DATE, answer),
        numbers=_found(_NUMBER, answer),
        quantities=_found(_NUMBER, _IDENTIFIER.sub(" ", answer)),
        latin=bool(re.search("[A-Za-z]", answer)),
        names=_names(answer),
        identifiers=_identifiers(answer),
    )


def type_mismatch(question: Asked, answer: str) -> bool:
    """The question asks for a kind of thing the answer does not state, beyond what the
    question itself says: a 'when' and no other year or month, a 'how many' and no other
    number than a year, a day and no day of a month, a share and no percent, a name and no
    name. ("How many people died in the 1995 strike" is not answered by "in 1995".)"""
    stated = _stated(answer)
    if question.day and not stated.day:
        return True
    if question.percent and not stated.percent:
        return True
    if question.when and not stated.dates - question.dates:
        return True
    counted = stated.numbers if question.counts_named else stated.quantities
    if question.count and all(_YEAR.fullmatch(n) for n in counted - question.numbers):
        return True
    if _other_numbers(question.identifiers, stated):
        return True
    return question.name and stated.latin and not stated.names - question.words


def _other_numbers(asked: frozenset[tuple[str, str]], stated: _Stated) -> bool:
    """The question names a decree, article, convention or case by its number, and the answer
    names others of that kind but never that number ("decree 29" and an answer on Decree
    No. 2)."""
    stated_kinds = {kind for kind, _ in stated.identifiers}
    return any(
        kind in stated_kinds and not {n for k, n in asked if k == kind} & stated.numbers
        for kind in {kind for kind, _ in asked}
    )


def expanded(features: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Each row of features followed by every product of two of them (squares included), in
    the order (0,0), (0,1), ..., (1,1), ...; one row per candidate."""
    rows = np.atleast_2d(np.asarray(features, dtype=np.float64))
    first, second = _pairs(rows.shape[1])
    return np.hstack([rows, rows[:, first] * rows[:, second]])


@cache
def _pairs(n: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    first, second = np.triu_indices(n)
    return first, second


@dataclass(frozen=True, slots=True)
class DecisionModel:
    """Logistic regression over the standardised expanded features, and the probability that
    answers."""

    weights: tuple[float, ...]
    bias: float
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    threshold: float

    def probabilities(self, features: Sequence[tuple[float, ...]]) -> list[float]:
        """The probability that answers, for each candidate's features (one pass for all)."""
        if not features:
            return []
        standardised = (expanded(features) - np.asarray(self.mean)) / np.asarray(self.scale)
        z = np.clip(standardised @ np.asarray(self.weights) + self.bias, -40.0, 40.0)
        return [float(p) for p in 1.0 / (1.0 + np.exp(-z))]


@cache
def load_model(path: Path = MODEL_FILE) -> DecisionModel:
    data = json.loads(path.read_text(encoding="utf-8"))
    if tuple(data["features"]) != FEATURES:
        raise ValueError(f"{path}: features {data['features']} are not {FEATURES}")
    size = len(FEATURES) * (len(FEATURES) + 3) // 2  # the features, then their products
    if not len(data["weights"]) == len(data["mean"]) == len(data["scale"]) == size:
        raise ValueError(f"{path}: needs {size} weights, means and scales (features and products)")
    return DecisionModel(
        weights=tuple(data["weights"]),
        bias=float(data["bias"]),
        mean=tuple(data["mean"]),
        scale=tuple(data["scale"]),
        threshold=float(data["threshold"]),
    )


@dataclass(frozen=True, slots=True)
class Candidate:
    """One candidate entry with the features the decision model reads."""

    hit: Hit
    features: tuple[float, ...]


def candidates(
    question: str,
    lexical: MatchResult,
    dense: DenseScores,
    answers: DenseScores,
    describe: Callable[[str], tuple[str, tuple[str, ...]]],
) -> list[Candidate]:
    """Features of every entry either retriever ranks near the top.

    ``describe`` gives a candidate's answer text (for the type check) and its topics.
    """
    dense_top = dense.top(DENSE_CANDIDATES)
    lexical_hits = {h.doc_id: h for h in lexical.hits}
    ids = list(dict.fromkeys([h.doc_id for h in lexical.hits] + [h.doc_id for h in dense_top]))
    if not ids:
        return []
    similarities = {doc_id: dense.of(doc_id) or 0.0 for doc_id in ids}
    top_values = [h.similarity for h in dense_top] or [0.0]
    mean = sum(top_values) / len(top_values)
    spread = math.sqrt(sum((v - mean) ** 2 for v in top_values) / len(top_values)) + 1e-3
    ranked_dense = sorted(similarities.values(), reverse=True)
    answer_similarities = {doc_id: answers.of(doc_id) or 0.0 for doc_id in ids}
    ranked_answers = sorted(answer_similarities.values(), reverse=True)
    ranked_lexical = sorted((h.score for h in lexical.hits), reverse=True)
    lexical_best = lexical.hits[0].doc_id if lexical.hits else None
    dense_best = dense_top[0].doc_id if dense_top else None
    question_asks = asked(question)
    out: list[Candidate] = []
    for doc_id in ids:
        similarity = similarities[doc_id]
        answer_text, topics = describe(doc_id)
        hit = lexical_hits.get(doc_id) or Hit(doc_id, 0.0, 0.0, 0.0, topics, missing=1.0)
        other_dense = _best_other(ranked_dense, similarity)
        other_lexical = _best_other(ranked_lexical, hit.score)
        features = (
            similarity,
            similarity - other_dense,
            max(-DENSE_Z_LIMIT, min(DENSE_Z_LIMIT, (similarity - mean) / spread)),
            answer_similarities[doc_id],
            answer_similarities[doc_id] - _best_other(ranked_answers, answer_similarities[doc_id]),
            hit.score,
            hit.coverage,
            hit.known_coverage,
            hit.phrase,
            hit.score - other_lexical,
            hit.missing,
            float(doc_id == lexical_best == dense_best),
            1.0 / (1 + ranked_dense.index(similarity)),
            1.0 / (1 + ranked_lexical.index(hit.score)) if doc_id in lexical_hits else 0.0,
            float(type_mismatch(question_asks, answer_text)),
            float(not doc_id.startswith("fact:")),
            dense.mean_of_nearest(doc_id, NEAREST_AVERAGED),
            answers.mean_of_nearest(doc_id, NEAREST_AVERAGED),
        )
        out.append(Candidate(hit, features))
    return out


def _best_other(ranked: list[float], value: float) -> float:
    """The best value in ``ranked`` (descending) other than one occurrence of ``value``."""
    if not ranked:
        return 0.0
    if ranked[0] == value:
        return ranked[1] if len(ranked) > 1 else 0.0
    return ranked[0]


# A question of one word ("strike", "people") names a subject but not what is asked about it.
# It is answered only when the word points at one entry: both retrievers rank that entry first,
# or the lexical match is well ahead of the next ("Kozik"). A word that many entries share
# ("people", "history") gets them as close topics, not whichever entry happens to lead.
ONE_WORD_LEXICAL_MARGIN = 0.3
_AGREE = FEATURES.index("agree")
_LEXICAL_MARGIN = FEATURES.index("lexical_margin")


def decide(
    scored: list[Candidate], model: DecisionModel, *, one_word: bool = False
) -> MatchResult:
    """Rank candidates by the model's probability; answer with the best if it clears the bar
    (and, for a one-word question, if that word points at it alone)."""
    probabilities = model.probabilities([c.features for c in scored])
    ranked = sorted(
        (
            (replace(c.hit, score=round(p, 4)), c.features)
            for c, p in zip(scored, probabilities, strict=True)
        ),
        key=lambda ranked_hit: (-ranked_hit[0].score, ranked_hit[0].doc_id),
    )
    hits = tuple(hit for hit, _ in ranked)
    answered = bool(hits) and hits[0].score >= model.threshold
    if answered and one_word:
        best = ranked[0][1]
        if best[_AGREE] != 1.0 and best[_LEXICAL_MARGIN] < ONE_WORD_LEXICAL_MARGIN:
            return MatchResult(hits, answered=False, ambiguous=True)
    return MatchResult(hits, answered)
