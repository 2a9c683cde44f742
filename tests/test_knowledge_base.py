"""The real knowledge/ loads, validates against the seed texts, and every entry finds itself."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import SEEDS

from bot.errors import KnowledgeError
from bot.knowledge.loader import load_knowledge
from bot.knowledge.models import KnowledgeBase
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
    broken = kb.model_copy(update={"facts": [*kb.facts, fact]})
    errors = validate(broken, None).errors
    assert any("unknown topic 'nope'" in e for e in errors)
    assert any("unknown related fact 'gone'" in e for e in errors)
