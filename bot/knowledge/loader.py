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


class _Loader(yaml.SafeLoader):
    """Safe YAML that keeps dates as written: an unquoted 2024-05-01 is text, as the models
    expect, and 2024-02-30 is not an error of the YAML reader but a date the model refuses."""


class _FastLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """``_Loader`` on libyaml's parser where PyYAML has it: twenty times faster, which is a
    third of the start-up of ``ask``. Its error messages differ, so errors are re-read by
    ``_Loader``, whose messages the curators see."""


_Loader.yaml_implicit_resolvers = _FastLoader.yaml_implicit_resolvers = {
    first: [r for r in resolvers if r[0] != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _read(path: Path, text: str) -> Any:
    """The YAML of a file as data."""
    try:
        return yaml.load(text, Loader=_FastLoader)
    except yaml.YAMLError:
        pass
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise KnowledgeError([KnowledgeProblem(str(path), line, None, None, str(exc))]) from exc


class _Lines:
    """Where the nodes of a file's YAML start: composed only when a problem needs a line."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._root: yaml.Node | None = None

    def of(self, path: tuple[int | str, ...]) -> int | None:
        """1-based line of the node at ``path``, as deep as the path resolves."""
        if self._root is None:
            self._root = yaml.compose(self._text, Loader=_FastLoader)
        return _line_of(self._root, path)


def _entries(
    path: Path,
    lines: _Lines,
    model: type[BaseModel],
    items: list[Any],
    where: tuple[int | str, ...] | None,
    problems: list[KnowledgeProblem],
) -> list[BaseModel]:
    """Validate ``items`` (at ``where`` in the file, item by item; None: the file is the one
    item), adding each error with its line to ``problems``."""
    out: list[BaseModel] = []
    for i, item in enumerate(items):
        entry_id = item.get("id") if isinstance(item, dict) else None
        try:
            out.append(model.model_validate(item))
        except ValidationError as exc:
            for error in exc.errors():
                loc = tuple(error["loc"])
                field = ".".join(str(p) for p in loc) or None
                line = lines.of((*where, i, *loc) if where is not None else loc)
                message = error["msg"].removeprefix("Value error, ")
                problems.append(KnowledgeProblem(str(path), line, entry_id, field, message))
    return out


def parse_file(path: Path, text: str) -> dict[str, list[BaseModel]]:
    """Parse one knowledge file; raises KnowledgeError listing every problem in it."""
    return _kinds(path, _Lines(text), _read(path, text))


def _kinds(path: Path, lines: _Lines, data: Any) -> dict[str, list[BaseModel]]:
    """The entries of a knowledge file's YAML, by kind."""
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
                    str(path), lines.of((kind,)), None, None, f"unknown kind {kind!r}"
                )
            )
        elif not isinstance(items, list):
            problems.append(
                KnowledgeProblem(
                    str(path), lines.of((kind,)), None, None, f"{kind} must be a list"
                )
            )
        else:
            out[kind] = _entries(path, lines, model, items, (kind,), problems)
    if problems:
        raise KnowledgeError(problems)
    return out


def parse_events_file(path: Path, text: str) -> list[Event]:
    """The events of a file for ``events publish``: a knowledge file with an ``events:`` list,
    a bare list of events, or one event on its own."""
    lines, data = _Lines(text), _read(path, text)
    problems: list[KnowledgeProblem] = []
    if isinstance(data, dict) and "events" in data:
        events = _kinds(path, lines, data).get("events", [])
    elif isinstance(data, list):
        events = _entries(path, lines, Event, data, (), problems)
    elif isinstance(data, dict):
        events = _entries(path, lines, Event, [data], None, problems)
    else:
        problem = "expected an event, a list of events, or an `events:` list"
        raise KnowledgeError([KnowledgeProblem(str(path), 1, None, None, problem)])
    if problems:
        raise KnowledgeError(problems)
    return [e for e in events if isinstance(e, Event)]


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
