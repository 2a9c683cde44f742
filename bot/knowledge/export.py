"""Write a knowledge base back to YAML files in the same format as knowledge/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bot.knowledge.models import KnowledgeBase


def _plain(value: Any) -> Any:
    """Drop empty values so exported files stay as terse as hand-written ones."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v not in (None, [], {}, False)}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def to_single_yaml(kb: KnowledgeBase) -> str:
    """The whole knowledge base as one YAML document (loadable as a knowledge/ file)."""
    data = {
        kind: _plain(entries) for kind, entries in kb.model_dump(mode="json").items() if entries
    }
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=100)


def to_yaml(kb: KnowledgeBase) -> dict[str, str]:
    """File name -> YAML text, one file per kind."""
    data = kb.model_dump(mode="json")
    return {
        f"{kind}.yaml": yaml.safe_dump(
            {kind: _plain(entries)}, allow_unicode=True, sort_keys=False, width=100
        )
        for kind, entries in data.items()
        if entries
    }


def export_knowledge(kb: KnowledgeBase, directory: Path) -> list[Path]:
    """Write ``to_yaml(kb)`` into ``directory`` (blocking); returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in to_yaml(kb).items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
