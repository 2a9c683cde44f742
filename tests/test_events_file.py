"""`events publish FILE` takes events as people write them by hand, and says what is wrong."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from support.cli import run_bot

from bot.alerts.published import PublishedEvents
from bot.errors import KnowledgeError
from bot.knowledge.loader import load_knowledge, parse_events_file
from bot.knowledge.models import KnowledgeBase, Precision
from bot.library import Library
from bot.store.db import Database
from bot.store.repositories import Repository

BY_HAND = """\
date: 2026-11-20
title: ILO Governing Body discusses Belarus again
summary: The Governing Body discussed the measures under Article 33.
topic: article-33
source: stary-27-years
"""


def test_one_event_by_hand_gets_its_id_precision_and_lists() -> None:
    [event] = parse_events_file(Path("e.yaml"), BY_HAND)
    assert event.id == "2026-11-20-ilo-governing-body-discusses-belarus-again"
    assert (event.date, event.precision) == ("2026-11-20", Precision.DAY)
    assert event.title.en == "ILO Governing Body discusses Belarus again"
    assert event.title.get("ru") == event.title.en  # no translation: English for everyone
    assert (event.topics, event.sources) == (["article-33"], ["stary-27-years"])
    assert event.facts == []
    [told] = parse_events_file(Path("e.yaml"), BY_HAND + "fact: article33-governing-body\n")
    assert told.facts == ["article33-governing-body"]


def test_a_list_of_events_and_an_events_section_read_alike() -> None:
    items = (
        "- id: first\n  date: 2025\n  title: One\n  summary: S\n  topic: history\n  source: s1\n"
    )
    listed = parse_events_file(Path("e.yaml"), items)
    section = parse_events_file(Path("e.yaml"), "events:\n" + items)
    assert [(e.id, e.date, e.precision) for e in listed] == [("first", "2025", Precision.YEAR)]
    assert section == listed


def test_impossible_dates_are_named_with_their_lines() -> None:
    text = (
        "- date: 2026-02-30\n  title: t\n  summary: s\n  topic: article-33\n  source: s1\n"
        "- date: someday\n  title: t\n"
    )
    with pytest.raises(KnowledgeError) as caught:
        parse_events_file(Path("e.yaml"), text)
    message = str(caught.value)
    assert "e.yaml:1" in message and "'2026-02-30' is not a day of the calendar" in message
    assert "e.yaml:6" in message and "YYYY, YYYY-MM or YYYY-MM-DD" in message


def test_an_unquoted_impossible_date_in_the_knowledge_is_an_error_not_a_crash(
    tmp_path: Path,
) -> None:
    (tmp_path / "events.yaml").write_text(
        "events:\n  - id: ev\n    date: 2024-02-30\n    title: {en: t}\n    summary: {en: s}\n"
        "    topics: [history]\n    sources: [stary-27-years]\n",
        encoding="utf-8",
    )
    with pytest.raises(KnowledgeError, match=r"events\.yaml:2.*not a day of the calendar"):
        load_knowledge(tmp_path)


def test_publish_from_the_command_line(tmp_path: Path) -> None:
    env = {"BOT_DATABASE": str(tmp_path / "bot.sqlite3")}
    (tmp_path / "event.yaml").write_text(BY_HAND, encoding="utf-8")
    first = run_bot("events", "publish", str(tmp_path / "event.yaml"), env=env)
    again = run_bot("events", "publish", str(tmp_path / "event.yaml"), env=env)
    name = "2026-11-20-ilo-governing-body-discusses-belarus-again"
    assert (first.returncode, first.stdout) == (0, f"{name}: published, chats queued: 0\n")
    assert again.stdout == f"{name}: already published, nothing queued\n", again.stderr
    # Published, it answers questions in any process that opens the database.
    asked = run_bot(
        "ask", "--json", "what did the governing body discuss in november 2026?", env=env
    )
    assert json.loads(asked.stdout)["fact_id"] == f"event:{name}", asked.stdout

    (tmp_path / "bad.yaml").write_text(BY_HAND.replace("article-33", "no-such-topic"), "utf-8")
    bad = run_bot("events", "publish", str(tmp_path / "bad.yaml"), env=env)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "no-such-topic" in bad.stderr
    # A fact's id is not free for an event: /fact would show the event instead.
    (tmp_path / "clash.yaml").write_text(f"id: gsp-what\n{BY_HAND}", "utf-8")
    clash = run_bot("events", "publish", str(tmp_path / "clash.yaml"), env=env)
    assert clash.returncode == 2 and "Traceback" not in clash.stderr
    assert "event gsp-what: the id is taken by another entry" in clash.stderr


async def test_a_running_bot_follows_what_the_command_line_publishes(
    tmp_path: Path, kb: KnowledgeBase
) -> None:
    database = tmp_path / "bot.sqlite3"
    (tmp_path / "event.yaml").write_text(BY_HAND, encoding="utf-8")
    name = "2026-11-20-ilo-governing-body-discusses-belarus-again"
    async with Database(database) as db:
        repository = Repository(db)
        library = Library(kb)
        told: list[str] = []
        follower = PublishedEvents(repository, library, on_new=lambda: told.append("new"))
        assert await follower.catch_up() == 0

        published = await asyncio.to_thread(
            run_bot,
            "events",
            "publish",
            str(tmp_path / "event.yaml"),
            env={"BOT_DATABASE": str(database)},
        )
        assert published.returncode == 0, published.stderr
        assert await follower.catch_up() == 1 and told == ["new"]
        assert await follower.catch_up() == 0 and told == ["new"]
        assert name in library.events
        found = await library.search("what did the governing body discuss in november 2026?")
        assert found.answered and found.best is not None and found.best.doc_id == f"event:{name}"
        # The questions waiting for an answer are matched again with it.
        assert await repository.rematch_queue() == [name]
