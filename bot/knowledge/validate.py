"""Cross-entry checks: unique ids, known references, verbatim evidence and quotes, translations."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bot.knowledge.models import KnowledgeBase, Localized, Source
from bot.search.normalize import normalize


@dataclass(slots=True)
class Report:
    """Errors make the knowledge base unusable; warnings are work for the curators."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    checked_excerpts: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors


def _collapse(text: str) -> str:
    return " ".join(text.split())


def source_text_path(source: Source, seeds_dir: Path) -> Path | None:
    """Where ``source``'s text is when it is in ``seeds_dir``; None if it has no file there."""
    if not source.local_ref:
        return None
    path = seeds_dir / source.local_ref
    return path if path.is_file() else None


def _read_source_files(sources: Iterable[Source], seeds_dir: Path | None) -> dict[str, bytes]:
    """Source id -> the bytes of its text file, for sources whose file is in ``seeds_dir``."""
    files: dict[str, bytes] = {}
    if seeds_dir is None:
        return files
    for source in sources:
        path = source_text_path(source, seeds_dir)
        if path is not None:
            files[source.id] = path.read_bytes()
    return files


def _collapsed_texts(files: dict[str, bytes]) -> dict[str, str]:
    return {source_id: _collapse(data.decode("utf-8")) for source_id, data in files.items()}


def read_source_texts(sources: Iterable[Source], seeds_dir: Path | None) -> dict[str, str]:
    """Source id -> whitespace-collapsed text, for sources whose seed file is available."""
    return _collapsed_texts(_read_source_files(sources, seeds_dir))


def is_verbatim(excerpt: str, collapsed_text: str) -> bool:
    """Whether ``excerpt`` is word for word in a text from ``read_source_texts`` (line breaks
    and runs of spaces aside)."""
    return _collapse(excerpt) in collapsed_text


def _localized(kb: KnowledgeBase) -> list[tuple[str, Localized]]:
    out: list[tuple[str, Localized]] = []
    for src in kb.sources:
        out.append((f"source {src.id} title", src.title))
    for topic in kb.topics:
        out.append((f"topic {topic.id} title", topic.title))
        if topic.description:
            out.append((f"topic {topic.id} description", topic.description))
    for fact in kb.facts:
        out.append((f"fact {fact.id} answer", fact.answer))
    for quote in kb.quotes:
        out.append((f"quote {quote.id} speaker", quote.speaker))
        if quote.context:
            out.append((f"quote {quote.id} context", quote.context))
        if quote.translation:
            out.append((f"quote {quote.id} translation", quote.translation))
    for event in kb.events:
        out.append((f"event {event.id} title", event.title))
        out.append((f"event {event.id} summary", event.summary))
    return out


def validate(kb: KnowledgeBase, seeds_dir: Path | None = None) -> Report:
    """Check what single-entry validation cannot: references, uniqueness, verbatim excerpts."""
    report = Report()
    ids: Counter[str] = Counter()
    for group in (kb.sources, kb.topics, kb.facts, kb.quotes, kb.events):
        ids.update(e.id for e in group)
    report.errors += [f"id {i!r} is used {n} times" for i, n in ids.items() if n > 1]

    topics = {t.id for t in kb.topics}
    sources: dict[str, Source] = {s.id: s for s in kb.sources}
    facts = {f.id for f in kb.facts}
    files = _read_source_files(kb.sources, seeds_dir)
    texts = _collapsed_texts(files)

    def check_refs(kind: str, entry_id: str, topic_ids: list[str], source_ids: list[str]) -> None:
        for t in topic_ids:
            if t not in topics:
                report.errors.append(f"{kind} {entry_id}: unknown topic {t!r}")
        for s in source_ids:
            if s not in sources:
                report.errors.append(f"{kind} {entry_id}: unknown source {s!r}")

    def check_verbatim(kind: str, entry_id: str, source_id: str, excerpt: str) -> None:
        text = texts.get(source_id)
        if text is None:
            return
        report.checked_excerpts += 1
        if not is_verbatim(excerpt, text):
            report.errors.append(
                f"{kind} {entry_id}: text is not verbatim in source {source_id!r}: {excerpt[:80]!r}"
            )

    for fact in kb.facts:
        check_refs("fact", fact.id, fact.topics, fact.sources)
        for r in fact.related:
            if r not in facts:
                report.errors.append(f"fact {fact.id}: unknown related fact {r!r}")
        check_verbatim("fact", fact.id, fact.sources[0], fact.evidence)
    for quote in kb.quotes:
        check_refs("quote", quote.id, quote.topics, quote.sources)
        check_verbatim("quote", quote.id, quote.sources[0], quote.text)
    for event in kb.events:
        check_refs("event", event.id, event.topics, event.sources)
        for f in event.facts:
            if f not in facts:
                report.errors.append(f"event {event.id}: unknown fact {f!r}")
        if event.evidence:
            check_verbatim("event", event.id, event.sources[0], event.evidence)
    for source in kb.sources:
        if seeds_dir is None or not source.local_ref:
            continue
        data = files.get(source.id)
        if data is None:
            report.errors.append(
                f"source {source.id}: source text {source.local_ref} not found in {seeds_dir}"
            )
            continue
        digest = hashlib.sha256(data).hexdigest()
        if source.text_sha256 is None:
            report.warnings.append(
                f"source {source.id}: no text_sha256 recorded ({source.local_ref} has {digest})"
            )
        elif digest != source.text_sha256:
            report.errors.append(
                f"source {source.id}: source text {source.local_ref} has sha256 {digest}, "
                f"not the recorded text_sha256 {source.text_sha256}"
            )

    phrasings = Counter(
        normalize(q) for fact in kb.facts for q in fact.questions.all() if normalize(q)
    )
    report.warnings += [
        f"phrasing {p!r} is used by {n} facts" for p, n in phrasings.items() if n > 1
    ]
    for where, text in _localized(kb):
        missing = text.missing()
        if missing:
            report.warnings.append(f"{where}: missing translation ({', '.join(missing)})")
        elif text.stale():
            report.warnings.append(f"{where}: translation is stale (English text changed)")
    return report


def stats(kb: KnowledgeBase) -> dict[str, dict[str, int]]:
    """Counts per kind, per topic and per language, for ``kb stats``."""
    per_topic: Counter[str] = Counter()
    for entries in (kb.facts, kb.quotes, kb.events):
        for entry in entries:
            per_topic.update(entry.topics)
    per_lang: Counter[str] = Counter()
    for _, text in _localized(kb):
        per_lang.update(lang for lang in ("en", "ru", "be") if getattr(text, lang))
    keywords: Counter[str] = Counter()
    for fact in kb.facts:
        for lang in ("en", "ru", "be"):
            keywords[lang] += len(getattr(fact.keywords, lang)) + len(
                getattr(fact.questions, lang)
            )
    return {
        "kinds": {
            "sources": len(kb.sources),
            "topics": len(kb.topics),
            "facts": len(kb.facts),
            "quotes": len(kb.quotes),
            "events": len(kb.events),
        },
        "topics": dict(sorted(per_topic.items())),
        "translated texts": dict(per_lang),
        "keywords and phrasings": dict(keywords),
    }
