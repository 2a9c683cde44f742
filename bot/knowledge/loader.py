"""knowledge/*.yaml -> validated entries; errors name the file, line, entry id and field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from bot.errors import KnowledgeError, KnowledgeProblem
from bot.knowledge.models import Event, Fact, KnowledgeBase, Quote, Source, Topic

KINDS: dict[str, type[BaseModel]] = {
    "sources": Source,
    "topics": Topic,
    "facts": Fact,
    "quotes": Quote,
    "events": Event,
}


def knowledge_files(directory: Path) -> list[Path]:
    """Every YAML file under ``directory``, in a stable order."""
    return sorted(p for p in directory.rglob("*.y*ml") if p.is_file())


def _line_of(node: yaml.Node | None, path: tuple[int | str, ...]) -> int | None:
    """1-based line of the node at ``path`` inside ``node``, as deep as the path resolves."""
    line = node.start_mark.line + 1 if node is not None else None
    for key in path:
        if isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        elif isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == key), None)
        else:
            break
        if node is None:
            break
        line = node.start_mark.line + 1
    return line


def parse_file(path: Path, text: str) -> dict[str, list[BaseModel]]:
    """Parse one knowledge file; raises KnowledgeError listing every problem in it."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise KnowledgeError([KnowledgeProblem(str(path), line, None, None, str(exc))]) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        problem = "expected a mapping of kinds (sources, topics, facts, quotes, events) to lists"
        raise KnowledgeError([KnowledgeProblem(str(path), 1, None, None, problem)])
    out: dict[str, list[BaseModel]] = {}
    problems: list[KnowledgeProblem] = []
    for kind, items in data.items():
        model = KINDS.get(str(kind))
        if model is None:
            problems.append(
                KnowledgeProblem(
                    str(path), _line_of(root, (kind,)), None, None, f"unknown kind {kind!r}"
                )
            )
            continue
        if not isinstance(items, list):
            line = _line_of(root, (kind,))
            problems.append(
                KnowledgeProblem(str(path), line, None, None, f"{kind} must be a list")
            )
            continue
        for i, item in enumerate(items):
            entry_id = item.get("id") if isinstance(item, dict) else None
            try:
                out.setdefault(kind, []).append(model.model_validate(item))
            except ValidationError as exc:
                for error in exc.errors():
                    loc = tuple(error["loc"])
                    field = ".".join(str(p) for p in loc) or None
                    line = _line_of(root, (kind, i, *loc))
                    problems.append(
                        KnowledgeProblem(str(path), line, entry_id, field, error["msg"])
                    )
    if problems:
        raise KnowledgeError(problems)
    return out


def load_knowledge(directory: Path) -> KnowledgeBase:
    """Load and validate every file of ``directory`` (blocking: call before the loop or in a thread)."""
    if not directory.is_dir():
        raise KnowledgeError(
            [KnowledgeProblem(str(directory), None, None, None, "knowledge directory not found")]
        )
    merged: dict[str, list[BaseModel]] = {kind: [] for kind in KINDS}
    problems: list[KnowledgeProblem] = []
    for path in knowledge_files(directory):
        try:
            parsed = parse_file(path, path.read_text(encoding="utf-8"))
        except KnowledgeError as exc:
            problems.extend(exc.problems)
            continue
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(KnowledgeProblem(str(path), None, None, None, str(exc)))
            continue
        for kind, entries in parsed.items():
            merged[kind].extend(entries)
    if problems:
        raise KnowledgeError(problems)
    return KnowledgeBase.model_validate(merged)
