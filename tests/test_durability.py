"""Durability: the bot is SIGKILLed at random moments, again and again, and nothing breaks.

Each round starts ``python -m bot run`` against the Bot API emulator while an alert fans out to
300 chats and an admin adds facts (``/addfact`` then ``/confirm``), then kills it with SIGKILL
at a moment drawn from a seeded random generator (before, during or after start-up, possibly
mid-transaction). After every kill the database must pass ``PRAGMA integrity_check``, every
run-time fact must have exactly one matching audit row (a change is applied whole or not at
all), and every fact the bot acknowledged must be there. A last, undisturbed run finishes the
fan-out: every chat must have the alert exactly once, plus one copy for each kill that caught
its row in the documented at-least-once window ('sending', message already accepted). The
emulator drops requests cut off by a kill, so an alert marked 'sent' too early would be lost,
and seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.telegram_emulator import Call, TelegramEmulator
from test_alerts import (
    SOURCE_ID,
    TOPIC,
    BotProcess,
    LossyEmulator,
    alert_counts,
    bot_env,
    eventually,
    make_event,
    outbox_drained,
    outbox_status,
    publish,
    query,
    seed_database,
)

from bot.knowledge.models import Fact, KnowledgeBase

ROUNDS = 20
SEED = 20240501
CHATS = range(800_001, 800_301)
ALERTS_PER_SECOND = 20
ADMIN = 4242
FACTS_PER_ROUND = 8
REQUEST_DELAY = 0.05
# A quarter of the kills land during start-up, however long it takes on a busy machine; the rest
# land a random time after the bot was seen serving (it polled for updates).
KILL_DURING_STARTUP = 0.25
STARTUP_WINDOW = (0.1, 1.0)  # seconds after spawning
SERVING_WINDOW = (0.0, 2.0)  # seconds after the first poll
EVIDENCE = "Back in 1956, the BSSR ratified Conventions No. 87 and No. 98"
SAVED = re.compile(r"Saved as (fact-[a-z0-9-]+)\.")


@pytest.fixture
async def emulator() -> AsyncIterator[LossyEmulator]:
    """Requests in flight at a kill are dropped (see LossyEmulator): an alert marked 'sent'
    before the server had it would then be lost, and the final count would show it."""
    emu = LossyEmulator(delay=REQUEST_DELAY)
    async with emu:
        yield emu


def to_admin(call: Call) -> bool:
    return call.ok and call.method == "sendMessage" and call.params.get("chat_id") == ADMIN


async def add_fact(emulator: TelegramEmulator, word: str) -> str:
    """The admin adds a fact whose answer starts with ``word``; returns the id the bot saved."""
    answer = f"{word.capitalize()} is a fact written during the durability test"
    emulator.send_message(
        f"/addfact {TOPIC} | {answer} | {word}, durability test | {SOURCE_ID} | {EVIDENCE}",
        user_id=ADMIN,
    )
    await emulator.wait_for(
        "sendMessage",
        timeout=10,
        predicate=lambda c: to_admin(c) and answer in c.params["text"],
    )
    emulator.send_message("/confirm", user_id=ADMIN)
    [saved] = await emulator.wait_for(
        "sendMessage",
        timeout=10,
        predicate=lambda c: to_admin(c) and f"Saved as fact-{word}-" in c.params["text"],
    )
    match = SAVED.search(saved.params["text"])
    assert match is not None
    return match.group(1)


async def admin_session(emulator: TelegramEmulator, bot: BotProcess, round_no: int) -> None:
    """Adds facts one after another as soon as the bot serves, until it is killed."""
    await bot.ready()
    for n in range(FACTS_PER_ROUND):
        await add_fact(emulator, f"durable{round_no}x{n}")
        await asyncio.sleep(0.05)


def acknowledged(emulator: TelegramEmulator) -> set[str]:
    """Every fact id the bot told the admin it saved (it says so only after the commit)."""
    return {
        m.group(1)
        for c in emulator.calls
        if to_admin(c) and (m := SAVED.search(str(c.params["text"])))
    }


async def check_store(database: Path, acked: set[str]) -> dict[str, str]:
    """The database is sound and no admin change is half-applied; returns fact id -> payload."""
    assert await query(database, "PRAGMA integrity_check") == [("ok",)]
    assert await query(database, "PRAGMA foreign_key_check") == []
    facts: dict[str, str] = dict(
        await query(database, "SELECT entry_id, payload FROM runtime_entries WHERE kind = 'fact'")
    )
    audit = await query(
        database, "SELECT entry_id, actor, action, after FROM audit WHERE kind = 'fact'"
    )
    # One audit row per fact and no audit row without its fact ...
    assert sorted(row[0] for row in audit) == sorted(facts)
    # ... and each audit row records exactly the stored entry.
    for entry_id, actor, action, after in audit:
        assert (actor, action, after) == (f"telegram:{ADMIN}", "add", facts[entry_id])
    missing = acked - set(facts)
    assert not missing, f"acknowledged facts lost: {sorted(missing)}"
    return facts


@dataclass(frozen=True)
class Kill:
    """What one SIGKILL interrupted."""

    after: float  # seconds after spawning, or after the first poll
    serving: bool  # the process had started polling for updates
    queued: int  # alert rows still pending or sending
    sending: frozenset[int]
    at_risk: frozenset[int]  # 'sending' and already accepted by the server: sent again


@pytest.mark.slow
async def test_random_sigkills_lose_nothing_and_half_apply_nothing(
    emulator: TelegramEmulator, kb: KnowledgeBase, tmp_path: Path
) -> None:
    database, log = tmp_path / "durable.sqlite3", tmp_path / "bot.log"
    await seed_database(database, kb, CHATS)
    event = make_event("durability-fanout-event", "Alert fanned out across crashes")
    assert await publish(database, event) == len(CHATS)
    env = bot_env(
        emulator,
        database,
        BOT_ADMINS=f'["telegram:{ADMIN}"]',
        BOT_ALERTS__TELEGRAM_PER_SECOND=str(ALERTS_PER_SECOND),
        BOT_QUESTIONS_PER_MINUTE="600",
    )
    rng = random.Random(SEED)
    kills: list[Kill] = []
    facts: dict[str, str] = {}

    for round_no in range(ROUNDS):
        first_call = len(emulator.calls)
        during_startup = rng.random() < KILL_DURING_STARTUP
        after = rng.uniform(*(STARTUP_WINDOW if during_startup else SERVING_WINDOW))
        async with BotProcess(emulator, env, log) as bot:
            await bot.spawn()
            admin = asyncio.create_task(admin_session(emulator, bot, round_no))
            try:
                if not during_startup:
                    await bot.ready()
                await asyncio.sleep(after)
                await bot.kill()
            finally:
                admin.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await admin
        await emulator.wait_idle()  # requests the killed process had sent are answered or dropped

        now = await check_store(database, acknowledged(emulator))
        assert set(facts) <= set(now) and all(now[f] == p for f, p in facts.items())
        facts = now
        status = await outbox_status(database, event.id)
        ever_sent = alert_counts(emulator.calls, event.title.en)
        sent_rows = {chat_id for chat_id, s in status.items() if s == "sent"}
        lost = sent_rows - set(ever_sent)
        assert not lost, f"marked 'sent' but never delivered: {sorted(lost)}"
        sending = frozenset(chat_id for chat_id, s in status.items() if s == "sending")
        in_this_run = set(alert_counts(emulator.calls[first_call:], event.title.en))
        queued = sum(s in ("pending", "sending") for s in status.values())
        serving = any(c.method == "getUpdates" for c in emulator.calls[first_call:])
        kills.append(Kill(after, serving, queued, sending, sending & in_this_run))

    assert len(facts) >= 5, "too few facts were confirmed to exercise the admin path"
    async with BotProcess(emulator, env, log) as bot:
        await bot.start()
        final = await add_fact(emulator, "durablefinal")
        # A fact confirmed before a kill is loaded again and answered after the restart.
        earlier = min(facts)
        answer = Fact.model_validate_json(facts[earlier]).answer.en
        asked = time.monotonic()
        emulator.send_message(f"/fact {earlier}", user_id=ADMIN)
        await emulator.wait_for(
            "sendMessage",
            predicate=lambda c: c.time > asked and to_admin(c) and answer in c.params["text"],
        )
        await eventually(lambda: outbox_drained(database), "the last fan-out", timeout=60)
        assert await bot.terminate() == 0
    await emulator.wait_idle()

    now = await check_store(database, acknowledged(emulator))
    assert set(facts) | {final} == set(now)
    interrupted = [k for k in kills if k.queued]
    assert len(interrupted) >= ROUNDS // 2, "the fan-out ended too early to be interrupted"

    expected: Counter[int] = Counter(CHATS)
    for kill in kills:
        expected.update(kill.at_risk)
    assert alert_counts(emulator.calls, event.title.en) == expected
    assert set((await outbox_status(database, event.id)).values()) == {"sent"}
    assert "Traceback" not in await bot.output()
    duplicates = sum(len(k.at_risk) for k in kills)
    print(
        f"durability: {ROUNDS} kills ({sum(not k.serving for k in kills)} during start-up, "
        f"{len(interrupted)} mid-fan-out), {len(now)} facts, "
        f"'sending' rows at kills: {[len(k.sending) for k in kills]}, "
        f"{duplicates} duplicate alert(s)"
    )
