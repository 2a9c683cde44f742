"""The real knowledge/ loads, validates against the seed texts, and every entry finds itself."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import SEEDS

from bot.errors import KnowledgeError
from bot.knowledge.loader import load_knowledge
from bot.knowledge.models import LANGS, KnowledgeBase, Localized
from bot.knowledge.validate import validate
from bot.library import FACT_PREFIX, Library


def test_coverage_targets(kb: KnowledgeBase) -> None:
    assert len(kb.facts) >= 60
    assert len(kb.events) >= 15
    assert len(kb.quotes) >= 4
    assert {s.local_ref for s in kb.sources} >= {
        "000_eeef288184854c9f.txt",
        "004_1bc799aac2841d92.txt",
    }


def test_sources_invent_no_dates_or_urls(kb: KnowledgeBase) -> None:
    for source in kb.sources:
        assert source.url is None and source.date is None


@pytest.mark.skipif(not SEEDS.is_dir(), reason="seed texts not available")
def test_validates_against_seed_texts(kb: KnowledgeBase) -> None:
    report = validate(kb, SEEDS)
    assert report.errors == []
    assert report.checked_excerpts >= len(kb.facts) + len(kb.quotes)


def test_every_fact_is_translated(kb: KnowledgeBase) -> None:
    report = validate(kb, None)
    assert [w for w in report.warnings if "translation" in w] == []


def test_both_article_33_claims_kept_with_their_sources(kb: KnowledgeBase) -> None:
    by_source: dict[str, list[str]] = {}
    for fact in kb.facts:
        if "article-33" in fact.topics:
            for source in fact.sources:
                by_source.setdefault(source, []).append(fact.answer.en)
    texts = " ".join(" ".join(v) for v in by_source.values())
    assert len(by_source) == 2
    assert "Governing Body" in texts and "International Labour Conference" in texts


# The article that reports the UN experts' statement is not a UN publication, and in Belarusian
# "артыкул ААН" reads like "артыкул 33"; every text names it by what it is.
UN_ARTICLE_LABEL = {
    "en": re.compile(r"\bUN(?:\s+experts['’]?)?\s+article", re.IGNORECASE),
    "ru": re.compile(r"стат\w*(?:\s+об\s+экспертах)?\s+ООН", re.IGNORECASE),
    "be": re.compile(r"артыкул\w*(?:\s+пра\s+экспертаў)?\s+ААН", re.IGNORECASE),
}
MYANMAR = re.compile(r"Myanmar|Мьянм|М['’]янм", re.IGNORECASE)


def _texts(kb: KnowledgeBase) -> list[tuple[str, str, str]]:
    """(where, language, text) for every localized text of every entry, and every quotation."""
    out: list[tuple[str, str, str]] = []
    for group in (kb.sources, kb.topics, kb.facts, kb.quotes, kb.events):
        for entry in group:
            for name in type(entry).model_fields:
                value = getattr(entry, name)
                if isinstance(value, Localized):
                    out += [(f"{entry.id} {name}", lang, value.get(lang)) for lang in LANGS]
    out += [(f"{q.id} text", "en", q.text) for q in kb.quotes]
    return out


def test_no_text_calls_the_un_experts_source_a_un_article(kb: KnowledgeBase) -> None:
    texts = _texts(kb)
    assert len(texts) > 3 * (len(kb.facts) + len(kb.events))
    labelled = [
        (where, lang, text)
        for where, lang, text in texts
        if any(pattern.search(text) for pattern in UN_ARTICLE_LABEL.values())
    ]
    assert labelled == []
    assert UN_ARTICLE_LABEL["be"].search("Паводле артыкула ААН, артыкул 33")


def test_every_fact_rests_on_the_one_source_its_evidence_quotes(kb: KnowledgeBase) -> None:
    # Evidence is checked against the first source only: a second source's claims would go
    # unchecked, so a fact combining two sources is split into one fact per source.
    assert [(f.id, f.sources) for f in kb.facts if len(f.sources) != 1] == []


def test_article_33_precedent_keeps_each_claim_with_its_own_source(kb: KnowledgeBase) -> None:
    facts = {f.id: f for f in kb.facts}
    once = facts["article33-used-once"]
    # "Only once before" is the claim of the article reporting the UN experts' statement, which
    # names no earlier case: the fact cites that article alone and names none either.
    assert once.sources == ["un-experts-statement"]
    assert "only once before" in once.evidence
    assert [lang for lang in LANGS if MYANMAR.search(once.answer.get(lang))] == []
    # Myanmar in 2000 is Stary's example of the ILO appealing to its members; he never ties it
    # to Article 33, so no fact does, and no event or fact files it under Article 33.
    about_myanmar = [
        f for f in kb.facts if any(MYANMAR.search(f.answer.get(lang)) for lang in LANGS)
    ]
    assert {"myanmar-2000", "top-25-violators"} <= {f.id for f in about_myanmar}
    for fact in about_myanmar:
        assert fact.sources == ["stary-27-years"], fact.id
        assert "once" not in fact.answer.en.lower(), fact.id
        assert "article-33" not in fact.topics, fact.id
    assert "does not say whether Article 33" in facts["myanmar-2000"].answer.en
    for event in kb.events:
        if MYANMAR.search(event.summary.en):
            assert "article-33" not in event.topics and "article-33" not in event.id


async def test_each_fact_finds_itself_by_its_own_phrasings(kb: KnowledgeBase) -> None:
    library = Library(kb)
    misses = []
    for fact in kb.facts:
        for question in fact.questions.all():
            result = await library.search(question)
            if not (
                result.answered and result.best and result.best.doc_id == FACT_PREFIX + fact.id
            ):
                misses.append((fact.id, question, result.best))
    total = sum(len(f.questions.all()) for f in kb.facts)
    assert len(misses) <= total * 0.1, misses[:20]


def test_broken_file_names_file_line_and_field(tmp_path: Path) -> None:
    (tmp_path / "facts.yaml").write_text(
        "facts:\n  - id: good-id\n    topics: [history]\n    answer: {en: ok}\n"
        "    sources: [s]\n    evidence: e\n  - id: Bad Id\n    topics: []\n",
        encoding="utf-8",
    )
    with pytest.raises(KnowledgeError) as caught:
        load_knowledge(tmp_path)
    message = str(caught.value)
    assert "facts.yaml:7" in message and "'Bad Id'" in message and "field 'id'" in message


def test_unknown_references_are_errors(kb: KnowledgeBase) -> None:
    fact = kb.facts[0].model_copy(
        update={"id": "dangling", "topics": ["nope"], "related": ["gone"]}
    )
    event = kb.events[0].model_copy(update={"id": "dangling-event", "facts": ["lost"]})
    broken = kb.model_copy(update={"facts": [*kb.facts, fact], "events": [*kb.events, event]})
    errors = validate(broken, None).errors
    assert any("unknown topic 'nope'" in e for e in errors)
    assert any("unknown related fact 'gone'" in e for e in errors)
    assert "event dangling-event: unknown fact 'lost'" in errors
