"""`python -m bot kb export` and `kb validate` as an operator runs them: refusals are one line."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import SEEDS
from support.cli import run_bot

from bot.config import REPO_ROOT
from bot.knowledge.export import ExportRefused, export_knowledge
from bot.knowledge.models import KnowledgeBase
from bot.knowledge.validate import validate

needs_seeds = pytest.mark.skipif(not SEEDS.is_dir(), reason="seed texts not available")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A throwaway database and a copy of knowledge/, so no regression can overwrite the real one."""
    knowledge = tmp_path / "knowledge"
    shutil.copytree(REPO_ROOT / "knowledge", knowledge)
    return {
        "BOT_DATABASE": str(tmp_path / "bot.sqlite3"),
        "BOT_KNOWLEDGE__DIRECTORY": str(knowledge),
    }


def snapshot(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()
    }


def assert_refused(proc: subprocess.CompletedProcess[str], reason: str) -> None:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: cannot export to ") and lines[0].endswith(reason), lines[0]
    assert proc.stdout == ""


# --- kb export ---------------------------------------------------------------------------------


def test_export_writes_a_new_directory_then_refuses_to_write_into_it(
    tmp_path: Path, env: dict[str, str]
) -> None:
    out = tmp_path / "out" / "kb"
    proc = run_bot("kb", "export", str(out), env=env)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "events.yaml",
        "facts.yaml",
        "quotes.yaml",
        "sources.yaml",
        "topics.yaml",
    ]
    before = snapshot(out)

    assert_refused(run_bot("kb", "export", str(out), env=env), "directory not empty")
    assert snapshot(out) == before


def test_export_without_a_directory_prints_one_loadable_document(
    tmp_path: Path, env: dict[str, str]
) -> None:
    proc = run_bot("kb", "export", env=env)
    assert proc.returncode == 0, proc.stderr
    reloaded = tmp_path / "reloaded"
    reloaded.mkdir()
    (reloaded / "all.yaml").write_text(proc.stdout, encoding="utf-8")
    check = run_bot("kb", "validate", env={**env, "BOT_KNOWLEDGE__DIRECTORY": str(reloaded)})
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.startswith("OK: 2 sources, 9 topics, 81 facts"), check.stdout


def test_export_into_an_existing_empty_directory(tmp_path: Path, env: dict[str, str]) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    proc = run_bot("kb", "export", str(out), env=env)
    assert proc.returncode == 0, proc.stderr
    assert (out / "facts.yaml").is_file()


def test_export_refuses_a_file(tmp_path: Path, env: dict[str, str]) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("mine\n", encoding="utf-8")
    assert_refused(run_bot("kb", "export", str(target), env=env), "is a file, not a directory")
    assert target.read_text(encoding="utf-8") == "mine\n"


def test_export_does_not_follow_a_dangling_link_inside_the_directory(
    tmp_path: Path, env: dict[str, str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    elsewhere = tmp_path / "elsewhere.yaml"
    (out / "facts.yaml").symlink_to(elsewhere)
    assert_refused(run_bot("kb", "export", str(out), env=env), "directory not empty")
    assert not elsewhere.exists()


@pytest.mark.parametrize("target_exists", [False, True])
def test_export_refuses_a_directory_that_is_a_link(
    tmp_path: Path, env: dict[str, str], target_exists: bool
) -> None:
    target = tmp_path / "target"
    if target_exists:
        target.mkdir()
    link = tmp_path / "link"
    link.symlink_to(target)
    assert_refused(run_bot("kb", "export", str(link), env=env), "is a symbolic link")
    assert target.exists() is target_exists
    assert not target_exists or not any(target.iterdir())


def test_export_refuses_the_knowledge_directory_however_spelled(
    tmp_path: Path, env: dict[str, str]
) -> None:
    knowledge = Path(env["BOT_KNOWLEDGE__DIRECTORY"])
    before = snapshot(knowledge)
    for spelling in (str(knowledge), f"{tmp_path}/out/../knowledge/", "knowledge"):
        proc = run_bot("kb", "export", spelling, env=env, cwd=tmp_path)
        assert_refused(proc, "is the knowledge directory itself")
    proc = run_bot("kb", "export", str(knowledge / "exported"), env=env)
    assert_refused(proc, "is inside the knowledge directory")
    assert snapshot(knowledge) == before
    assert not (knowledge / "exported").exists()


def _unwritable(tmp_path: Path) -> Path:
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        return locked
    if Path("/sys/kernel").is_dir():
        return Path("/sys/kb-export-test")  # not creatable even by root
    pytest.skip("no unwritable place for root here")


def test_export_refuses_an_unwritable_place(tmp_path: Path, env: dict[str, str]) -> None:
    target = _unwritable(tmp_path)
    assert_refused(run_bot("kb", "export", str(target), env=env), "not writable")
    assert not target.exists() or not any(target.iterdir())


def test_export_knowledge_refuses_without_following_links(
    kb: KnowledgeBase, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    elsewhere = tmp_path / "elsewhere"
    (out / "sources.yaml").symlink_to(elsewhere)
    with pytest.raises(ExportRefused, match="directory not empty"):
        export_knowledge(kb, out)
    assert not elsewhere.exists()


# --- kb validate -------------------------------------------------------------------------------


def assert_texts_not_found(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode in (1, 2), (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert "source texts not found" in lines[0] and "--no-source-texts" in lines[0]


def test_validate_fails_when_the_seeds_directory_is_missing(tmp_path: Path) -> None:
    assert_texts_not_found(run_bot("kb", "validate", "--seeds", str(tmp_path / "nope")))


def test_validate_fails_when_the_seeds_directory_holds_no_source_text(tmp_path: Path) -> None:
    (tmp_path / "unrelated.txt").write_text("nothing to see\n", encoding="utf-8")
    assert_texts_not_found(run_bot("kb", "validate", "--seeds", str(tmp_path)))


def test_validate_fails_when_the_configured_seeds_are_missing(tmp_path: Path) -> None:
    env = {"BOT_KNOWLEDGE__SEEDS_DIR": str(tmp_path / "nope")}
    assert_texts_not_found(run_bot("kb", "validate", env=env))


def test_validate_can_skip_the_source_texts_and_says_so(tmp_path: Path) -> None:
    env = {"BOT_KNOWLEDGE__SEEDS_DIR": str(tmp_path / "nope")}
    proc = run_bot("kb", "validate", "--no-source-texts", env=env)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    last = proc.stdout.splitlines()[-1]
    assert last.startswith("OK: ") and "verbatim checks SKIPPED (--no-source-texts)" in last


def test_seeds_and_no_source_texts_exclude_each_other() -> None:
    proc = run_bot("kb", "validate", "--seeds", str(SEEDS), "--no-source-texts")
    assert proc.returncode == 2 and "not allowed with argument" in proc.stderr


@needs_seeds
def test_validate_finds_the_default_seeds_from_another_directory(tmp_path: Path) -> None:
    proc = run_bot("kb", "validate", cwd=tmp_path)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    last = proc.stdout.splitlines()[-1]
    assert last.startswith("OK: ") and " 0 excerpts" not in last and "excerpts checked" in last


@needs_seeds
def test_sources_record_the_sha256_of_their_texts(kb: KnowledgeBase) -> None:
    recorded = {s.id: s.text_sha256 for s in kb.sources if s.local_ref}
    actual = {
        s.id: hashlib.sha256((SEEDS / s.local_ref).read_bytes()).hexdigest()
        for s in kb.sources
        if s.local_ref and (SEEDS / s.local_ref).is_file()
    }
    assert actual and recorded == actual


@needs_seeds
def test_validate_rejects_a_changed_source_text(tmp_path: Path, kb: KnowledgeBase) -> None:
    seeds = tmp_path / "seeds"
    shutil.copytree(SEEDS, seeds)
    changed = next(s for s in kb.sources if s.local_ref)
    assert changed.local_ref is not None
    with (seeds / changed.local_ref).open("a", encoding="utf-8") as text:
        text.write("\nA sentence added later.\n")
    proc = run_bot("kb", "validate", "--seeds", str(seeds))
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    errors = [line for line in proc.stdout.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1
    assert errors[0].startswith(f"error: source {changed.id}: ") and "sha256" in errors[0]
    assert proc.stdout.splitlines()[-1].startswith("FAILED: ")


@needs_seeds
def test_validate_checks_the_recorded_sha256(kb: KnowledgeBase) -> None:
    source = kb.sources[0]
    wrong = kb.model_copy(
        update={"sources": [source.model_copy(update={"text_sha256": "0" * 64}), *kb.sources[1:]]}
    )
    errors = validate(wrong, SEEDS).errors
    assert len(errors) == 1 and errors[0].startswith(f"source {source.id}: ")
    assert validate(kb, SEEDS).errors == []


@needs_seeds
def test_validate_reports_a_source_text_missing_from_the_seeds(
    tmp_path: Path, kb: KnowledgeBase
) -> None:
    kept, missing = [s for s in kb.sources if s.local_ref][:2]
    assert kept.local_ref is not None and missing.local_ref is not None
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    shutil.copy(SEEDS / kept.local_ref, seeds / kept.local_ref)
    errors = validate(kb, seeds).errors
    assert f"source {missing.id}: source text {missing.local_ref} not found in {seeds}" in errors
