"""Write a knowledge base back to YAML files in the same format as knowledge/."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import yaml

from bot.errors import BotError
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


class ExportRefused(BotError):
    """The export target is unsafe or unusable; the message is one line naming the reason."""

    def __init__(self, directory: Path, reason: str) -> None:
        super().__init__(f"cannot export to {str(directory)!r}: {reason}")


def _reason(exc: OSError) -> str:
    reasons = {
        errno.EACCES: "not writable",
        errno.EPERM: "not writable",
        errno.EROFS: "not writable",
        errno.EEXIST: "directory not empty",
        errno.ENOTEMPTY: "directory not empty",
        errno.ELOOP: "is a symbolic link",
        errno.ENOTDIR: "is a file, not a directory",
    }
    return reasons.get(exc.errno or 0) or " ".join((exc.strerror or type(exc).__name__).split())


def _empty(directory: Path | int) -> bool:
    with os.scandir(directory) as entries:
        return next(entries, None) is None


def check_export_target(directory: Path, knowledge_dir: Path | None = None) -> None:
    """Raise ExportRefused unless ``directory`` is an empty directory or does not exist yet.

    Symbolic links are never followed: ``directory`` itself being one is refused, and any entry
    inside it (a dangling link included) makes it non-empty. The knowledge directory, and any
    directory inside it (the loader reads subdirectories too), is refused.
    """
    try:
        if directory.is_symlink():
            raise ExportRefused(directory, "is a symbolic link")
        if knowledge_dir is not None:
            target, knowledge = directory.resolve(), knowledge_dir.resolve()
            if target == knowledge:
                raise ExportRefused(directory, "is the knowledge directory itself")
            if target.is_relative_to(knowledge):
                raise ExportRefused(directory, "is inside the knowledge directory")
        if not directory.exists():
            return
        if not directory.is_dir():
            raise ExportRefused(directory, "is a file, not a directory")
        if not _empty(directory):
            raise ExportRefused(directory, "directory not empty")
        if not os.access(directory, os.W_OK | os.X_OK):
            raise ExportRefused(directory, "not writable")
    except OSError as exc:
        raise ExportRefused(directory, _reason(exc)) from exc


def _mkdir(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:
        # mkdir(2) never follows a link: a dangling one (on the path) stays dangling.
        reason = "it or a parent exists and is not a directory (a dangling link?)"
        raise ExportRefused(directory, reason) from exc
    except OSError as exc:
        raise ExportRefused(directory, _reason(exc)) from exc


def make_export_dir(directory: Path, knowledge_dir: Path | None = None) -> None:
    """``check_export_target``, then create ``directory`` if it does not exist yet."""
    check_export_target(directory, knowledge_dir)
    _mkdir(directory)


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW


def export_knowledge(
    kb: KnowledgeBase, directory: Path, knowledge_dir: Path | None = None
) -> list[Path]:
    """Write ``to_yaml(kb)`` into ``directory`` (blocking); returns the paths written.

    ``directory`` must be empty or not exist yet (see ``check_export_target``). Every file is
    created anew through a descriptor of the directory opened without following links, so a link
    put in place after the check makes the export fail instead of writing elsewhere.
    """
    check_export_target(directory, knowledge_dir)
    files = to_yaml(kb)
    written = []
    _mkdir(directory)
    try:
        dir_fd = os.open(directory, _DIR_FLAGS)
        try:
            if not _empty(dir_fd):
                raise ExportRefused(directory, "directory not empty")
            for name, text in files.items():
                fd = os.open(name, _FILE_FLAGS, 0o666, dir_fd=dir_fd)
                with open(fd, "w", encoding="utf-8") as out:
                    out.write(text)
                written.append(directory / name)
        finally:
            os.close(dir_fd)
    except ExportRefused:
        raise
    except OSError as exc:
        raise ExportRefused(directory, _reason(exc)) from exc
    return written
