"""Command line: ask | chat | run | kb validate/stats/export; builds Settings once and runs the loop."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from bot import logs, texts
from bot.config import REPO_ROOT, Settings
from bot.core import Core
from bot.domain import Reply
from bot.errors import ConfigError, KnowledgeError
from bot.knowledge.loader import load_knowledge
from bot.knowledge.models import KnowledgeBase
from bot.knowledge.validate import source_text_path, stats, validate
from bot.store.url import PostgresUrl

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    ask = sub.add_parser("ask", help="answer one question, or one per stdin line with '-'")
    ask.add_argument("question", nargs="*", help="the question; '-' reads one per line from stdin")
    ask.add_argument("--json", action="store_true", help="print one JSON object per answer")
    ask.add_argument("--lang", choices=texts.LANGUAGES, help="answer in this language")

    sub.add_parser("chat", help="talk to the bot in this terminal (no token needed)")
    sub.add_parser("run", help="serve every platform whose credentials are set")

    kb = sub.add_parser("kb", help="knowledge base tools")
    kb_sub = kb.add_subparsers(dest="kb_command", required=True)
    kb_validate = kb_sub.add_parser(
        "validate", help="check schema, ids, references, verbatim excerpts"
    )
    texts_source = kb_validate.add_mutually_exclusive_group()
    texts_source.add_argument("--seeds", type=Path, help="directory of the source texts")
    texts_source.add_argument(
        "--no-source-texts",
        action="store_true",
        help="skip the verbatim and sha256 checks against the source texts",
    )
    kb_validate.add_argument("--strict", action="store_true", help="treat warnings as errors")
    kb_sub.add_parser("stats", help="counts per kind, topic and language")
    kb_sub.add_parser(
        "vectors", help="rewrite the vectors of the knowledge's texts that ship with the package"
    )
    kb_export = kb_sub.add_parser(
        "export", help="the knowledge (files + run-time additions) as YAML"
    )
    kb_export.add_argument(
        "directory",
        type=Path,
        nargs="?",
        help="a new or empty directory for one file per kind; without it, one document on stdout",
    )

    alerts = sub.add_parser("alerts", help="alert outbox tools")
    alerts_sub = alerts.add_subparsers(dest="alerts_command", required=True)
    alerts_sub.add_parser("status", help="print the outbox state")

    db = sub.add_parser("db", help="database tools")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("migrate", help="bring the database schema up to date (run does it too)")
    backup = db_sub.add_parser(
        "backup", help="copy the live database safely (SQLite online backup, or pg_dump)"
    )
    backup.add_argument("file", type=Path)
    restore = db_sub.add_parser("restore", help="replace the database with a checked backup")
    restore.add_argument("file", type=Path)

    events = sub.add_parser("events", help="timeline events")
    events_sub = events.add_subparsers(dest="events_command", required=True)
    publish = events_sub.add_parser("publish", help="publish the events of a YAML file as alerts")
    publish.add_argument("file", type=Path, help="a YAML file with an `events:` list")
    return parser


def load_settings() -> Settings:
    """Settings from the environment and config file; a bad one raises ConfigError (one line)."""
    return Settings.from_environment()


def reply_json(reply: Reply) -> str:
    return json.dumps(
        {
            "answered": reply.answered,
            "text": reply.plain_text(numbered_choices=True),
            "fact_id": reply.fact_id,
            "score": reply.score,
            "sources": [s.model_dump() for s in reply.sources],
            "suggestions": list(reply.suggestions),
            "evidence": reply.evidence.model_dump() if reply.evidence else None,
            "lang": reply.lang,
        },
        ensure_ascii=False,
    )


async def run_ask(settings: Settings, kb: KnowledgeBase, args: argparse.Namespace) -> int:
    from bot.app import library_with_runtime_entries

    core = Core(await library_with_runtime_entries(kb, settings), settings)
    questions: Iterable[str]
    if args.question == ["-"]:
        questions = (line.rstrip("\n") for line in sys.stdin)
    else:
        questions = [" ".join(args.question)]
    for question in questions:
        reply = await core.answer(question[: settings.max_message_chars], args.lang)
        print(
            reply_json(reply) if args.json else reply.plain_text(numbered_choices=True), flush=True
        )
    return 0


async def run_db(settings: Settings, args: argparse.Namespace) -> int:
    """db migrate | backup FILE | restore FILE."""
    from bot.store.backup import backup, restore
    from bot.store.db import Database

    if args.db_command == "migrate":
        async with Database(settings.database) as db:
            if db.schema_version == db.migrated_from:
                print(f"migrate: {db.target} is up to date (schema version {db.schema_version})")
            else:
                print(
                    f"migrate: {db.target} went from schema version {db.migrated_from} "
                    f"to {db.schema_version}"
                )
        return 0
    action = backup if args.db_command == "backup" else restore
    await action(settings.database, args.file)
    print(f"{args.db_command}: done ({args.file})")
    return 0


def _seeds_dir(settings: Settings, args: argparse.Namespace) -> Path | None:
    """--seeds as given, else the configured directory (a relative one from here or the repo)."""
    if args.seeds is not None:
        return Path(args.seeds)
    seeds = settings.knowledge.seeds_dir
    if seeds is not None and not seeds.is_absolute() and not seeds.exists():
        beside_code = REPO_ROOT / seeds
        return beside_code if beside_code.exists() else seeds
    return seeds


def write_knowledge_vectors(settings: Settings, kb: KnowledgeBase) -> int:
    """The vectors of every curated text, into the file the package ships."""
    from bot.library import knowledge_passages
    from bot.search.semantic import passage_vectors
    from bot.search.vectors import SHIPPED, write_shipped

    vectors = passage_vectors(settings.search.embedder, settings.search.vector_cache)
    if vectors is None:
        print("error: search.embedder is 'none': there are no vectors to write", file=sys.stderr)
        return 2
    texts = knowledge_passages(kb)
    write_shipped(SHIPPED, vectors.embedder.model_id, vectors.vectors(texts))
    print(f"wrote the vectors of {len(set(texts))} texts to {SHIPPED}")
    return 0


def run_kb(settings: Settings, kb: KnowledgeBase, args: argparse.Namespace) -> int:
    if args.kb_command == "vectors":
        return write_knowledge_vectors(settings, kb)
    if args.kb_command == "validate":
        seeds = None if args.no_source_texts else _seeds_dir(settings, args)
        if not args.no_source_texts and (
            seeds is None
            or not seeds.is_dir()
            or not any(source_text_path(s, seeds) for s in kb.sources)
        ):
            if seeds is None:
                where = "no directory configured"
            elif not seeds.is_dir():
                where = f"no directory {str(seeds)!r}"
            else:
                where = f"none of them in {str(seeds)!r}"
            print(
                f"error: source texts not found ({where}); give their directory with --seeds DIR, "
                "or skip the verbatim checks with --no-source-texts",
                file=sys.stderr,
            )
            return 2
        report = validate(kb, seeds)
        for warning in report.warnings:
            print(f"warning: {warning}")
        for error in report.errors:
            print(f"error: {error}")
        counts = stats(kb)["kinds"]
        checked = (
            "verbatim checks SKIPPED (--no-source-texts)"
            if seeds is None
            else f"{report.checked_excerpts} excerpts checked verbatim"
        )
        print(
            f"{'OK' if report.ok else 'FAILED'}: "
            + ", ".join(f"{n} {kind}" for kind, n in counts.items())
            + f"; {checked}, {len(report.errors)} errors, {len(report.warnings)} warnings"
        )
        return 0 if report.ok and not (args.strict and report.warnings) else 1
    if args.kb_command == "stats":
        for section, counts in stats(kb).items():
            print(f"{section}:")
            for name, n in counts.items():
                print(f"  {name:<28}{n:>6}")
        return 0
    from bot.app import library_with_runtime_entries
    from bot.knowledge.export import (
        ExportRefused,
        export_knowledge,
        make_export_dir,
        to_single_yaml,
    )

    if args.directory is None:
        library = asyncio.run(library_with_runtime_entries(kb, settings))
        sys.stdout.write(to_single_yaml(library.snapshot()))
        return 0
    try:
        # Checked and created before the database is opened; checked again (without following
        # links) on writing.
        make_export_dir(args.directory, settings.knowledge.directory)
        library = asyncio.run(library_with_runtime_entries(kb, settings))
        written = export_knowledge(
            library.snapshot(), args.directory, settings.knowledge.directory
        )
    except ExportRefused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {len(written)} files to {args.directory}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    # PTB 22 warns on every flood-control answer unless told to use timedelta values already.
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    args = build_parser().parse_args(argv)
    try:
        status = _run(args)
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        # The reader went away (`ask --json - | head -1`): stop quietly, and point standard
        # output at nothing so that the interpreter's last flush cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings()
        secrets = [
            s.get_secret_value()
            for s in (
                settings.telegram.token,
                settings.matrix.access_token,
                settings.matrix.password,
            )
            if s is not None
        ]
        if isinstance(settings.database, PostgresUrl) and settings.database.password:
            secrets.append(settings.database.password)
        level = settings.log_level
        if args.command == "chat" and "BOT_LOG_LEVEL" not in os.environ:
            # The terminal chat shares the screen with the log: only problems belong there.
            level = "WARNING"
        logs.configure(level, settings.log_format, secrets)
        if settings.pseudonym_key is not None:
            logs.set_pseudonym_key(settings.pseudonym_key.get_secret_value().encode())
        texts.preload()
        kb = load_knowledge(settings.knowledge.directory)
        if args.command == "ask":
            return asyncio.run(run_ask(settings, kb, args))
        if args.command == "kb":
            return run_kb(settings, kb, args)
        from bot import app

        if args.command == "db":
            return asyncio.run(run_db(settings, args))
        if args.command == "alerts":
            return asyncio.run(app.alerts_status(settings))
        if args.command == "events":
            return asyncio.run(app.publish_events(settings, kb, args.file))
        if args.command == "chat":
            return asyncio.run(app.chat(settings, kb))
        return asyncio.run(app.serve(settings, kb))
    except KnowledgeError as exc:
        print(f"error: the knowledge base is invalid:\n{exc}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
