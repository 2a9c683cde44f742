"""End to end: `python -m bot ask` and `python -m bot chat` driven as a user would."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from support.cli import catches, free_port, one_error_line, run_bot
from support.environment import child_environment
from support.process import spawn_run
from support.telegram_emulator import TelegramEmulator

from bot.config import REPO_ROOT


def test_ask_json_answers_with_source() -> None:
    proc = run_bot("ask", "--json", "who was Lukashenko's main opponent in the 2001 election")
    assert proc.returncode == 0, proc.stderr
    reply = json.loads(proc.stdout)
    assert set(reply) == {
        "answered",
        "text",
        "fact_id",
        "score",
        "sources",
        "suggestions",
        "evidence",
        "lang",
    }
    assert reply["answered"] is True
    assert "Hancharyk" in reply["text"]
    assert reply["sources"] and reply["sources"][0]["title"] in reply["text"]
    assert reply["lang"] == "en"


def test_ask_json_carries_the_verbatim_evidence_of_the_answer() -> None:
    seeds = Path(__file__).resolve().parents[2] / "shared" / "seeds"
    proc = run_bot("ask", "--json", "--lang", "be", "калі Беларусь выключылі з GSP")
    assert proc.returncode == 0, proc.stderr
    reply = json.loads(proc.stdout)
    assert reply["answered"] is True and reply["lang"] == "be"
    evidence = reply["evidence"]
    assert evidence["language"] == "en"
    assert evidence["source"]["title"] == reply["sources"][0]["title"]
    assert "Generalized Scheme of preferences" in evidence["excerpt"]
    texts = [" ".join(p.read_text().split()) for p in seeds.glob("*.txt")]
    if texts:  # the source texts sit beside the project (../shared) in development and CI
        assert any(" ".join(evidence["excerpt"].split()) in text for text in texts)
    declined = json.loads(run_bot("ask", "--json", "как приготовить борщ").stdout)
    assert declined["answered"] is False and declined["evidence"] is None


@pytest.mark.parametrize("asked_for", ["/evidence", "where is this from?"])
def test_chat_shows_the_evidence_of_the_last_answer(asked_for: str) -> None:
    proc = run_bot(
        "chat", stdin=f"who was Lukashenko's main opponent in the 2001 election\n{asked_for}\n"
    )
    assert proc.returncode == 0, proc.stderr
    after = proc.stdout.split("The source's own words", 2)
    assert len(after) == 3, proc.stdout  # offered under the answer, then shown
    shown = after[2]
    assert "\n> " in shown and "Source: “27 years of struggle" in shown


def test_ask_batch_one_line_per_question_in_order() -> None:
    questions = [
        "Decree No. 2 1999",
        "как приготовить борщ",
        "",
        "🙂" * 5000,
        "Belaruskali union 4000",
    ]
    proc = run_bot("ask", "--json", "-", stdin="\n".join(questions) + "\n")
    assert proc.returncode == 0, proc.stderr
    replies = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(replies) == len(questions)
    assert replies[0]["answered"] and "1999" in replies[0]["text"]
    assert replies[1]["answered"] is False and replies[1]["lang"] == "ru"
    assert replies[2]["answered"] is False
    assert replies[3]["answered"] is False
    assert replies[4]["answered"] and "4,000" in replies[4]["text"]


def test_a_reader_that_stops_early_ends_the_batch_quietly() -> None:
    """`ask --json - | head -1`: once the reader is gone the batch stops, with no traceback."""
    questions = "What is Article 33 of the ILO Constitution?\n" * 300  # far more than a pipe holds
    command = [sys.executable, "-m", "bot", "ask", "--json", "-"]
    pipe = subprocess.PIPE
    with subprocess.Popen(command, stdin=pipe, stdout=pipe, stderr=pipe, cwd=REPO_ROOT) as proc:
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        proc.stdin.write(questions.encode())
        proc.stdin.close()
        assert json.loads(proc.stdout.readline())["answered"]
        proc.stdout.close()
        assert proc.wait(timeout=120) == 1
        assert proc.stderr.read() == b""


def test_chat_session(tmp_path: Path) -> None:
    script = "/help\n/sources\n/timeline\nWhat did the UN experts ask for?\n/nonsense\n1\n/quit\n"
    proc = run_bot("chat", stdin=script, env={"BOT_DATABASE": str(tmp_path / "chat.sqlite3")})
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "/topics" in out and "Philip Stary" in out
    assert "Timeline (1/" in out
    assert "I don't know the command /nonsense." in out
    assert "Traceback" not in proc.stderr


def test_a_long_scripted_terminal_chat_gets_an_answer_to_every_line(tmp_path: Path) -> None:
    """One person at their own keyboard: no flood limit, so a script piped in (a demo, 30
    questions) is answered line by line instead of "slow down" and then silence."""
    script = "who heads the fpb?\n" * 30 + "/quit\n"
    proc = run_bot("chat", stdin=script, env={"BOT_DATABASE": str(tmp_path / "chat.sqlite3")})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("Leonid Kozik") == 30
    assert "very fast" not in proc.stdout


def test_the_terminal_chat_logs_only_problems_unless_asked_for_more(tmp_path: Path) -> None:
    """The log shares the terminal with the conversation: an admin's save is logged at INFO,
    which only shows there when BOT_LOG_LEVEL asks for it."""
    script = "/addsource A test source | Someone | 2024-01-02 | https://example.org/a\n/confirm\n"
    env = {"BOT_DATABASE": str(tmp_path / "chat.sqlite3"), "BOT_ADMINS": '["console:local"]'}
    quiet = run_bot("chat", stdin=script, env=env)
    assert "Saved as src-a-test-source" in quiet.stdout
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    verbose = run_bot("chat", stdin=script, env={**env, "BOT_LOG_LEVEL": "INFO"})
    assert "INFO bot.admin.curation: admin.saved kind=source" in verbose.stderr


def test_run_without_platform_says_so(tmp_path: Path) -> None:
    env = {
        "BOT_DATABASE": str(tmp_path / "x.sqlite3"),
        "BOT_TELEGRAM__TOKEN": "",
        "BOT_MATRIX__HOMESERVER": "",
    }
    proc = run_bot("run", env=env)
    assert proc.returncode != 0
    assert "no platform is configured" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_broken_knowledge_exits_nonzero_naming_file(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("facts:\n  - id: x\n    topics: [\n", encoding="utf-8")
    proc = run_bot("ask", "anything", env={"BOT_KNOWLEDGE__DIRECTORY": str(tmp_path)})
    assert proc.returncode == 2
    assert "bad.yaml:" in proc.stderr and "Traceback" not in proc.stderr


def test_malformed_telegram_token_is_one_clear_line(tmp_path: Path) -> None:
    env = {"BOT_DATABASE": str(tmp_path / "x.sqlite3"), "BOT_TELEGRAM__TOKEN": "not a token"}
    proc = run_bot("run", env=env)
    assert proc.returncode == 2
    assert "BOT_TELEGRAM__TOKEN is missing or malformed" in proc.stderr
    assert "not a token" not in proc.stderr and "Traceback" not in proc.stderr


def test_ask_json_text_is_the_whole_reply() -> None:
    questions = ["When was Belarus excluded from the EU GSP?", "Who won the football world cup?"]
    proc = run_bot("ask", "--json", "-", stdin="\n".join(questions) + "\n")
    assert proc.returncode == 0, proc.stderr
    answered, declined = (json.loads(line) for line in proc.stdout.splitlines())
    assert answered["answered"] and "2007" in answered["text"]
    assert declined["answered"] is False and declined["suggestions"]
    for reply in (answered, declined):
        # Whatever heading closes the text ("Related:", "You can browse..."), its items follow.
        assert not reply["text"].rstrip().endswith(":"), reply["text"]
        for label in reply["suggestions"]:
            assert label in reply["text"]


def test_chat_bare_number_that_is_no_choice_is_not_a_question(tmp_path: Path) -> None:
    """/start lists the 9 topics; /sources lists no choices, so the topics are still the list
    a number picks from: "12" is none of them (and no question about 12 recommendations), "2"
    is the second topic (and no question about Decree No. 2)."""
    proc = run_bot(
        "chat",
        stdin="/sources\n12\n2\n1995\n/quit\n",
        env={"BOT_DATABASE": str(tmp_path / "c.sqlite3")},
    )
    assert proc.returncode == 0, proc.stderr
    after_sources = proc.stdout.split("Stary", 1)[1]
    assert after_sources.count("Type a question, or pick a number from the list.") == 1
    assert "ILO complaints and cases" in after_sources
    assert "recommendations" not in proc.stdout and "Decree No" not in proc.stdout
    # A year is a question, even where a bare number picks from a list.
    assert "In August 1995" in after_sources


def test_chat_next_and_back_turn_the_pages_of_the_list_just_shown(tmp_path: Path) -> None:
    """Typed "next", "далее" or "back" turn the timeline's pages, as its buttons do; with no
    list shown they are no question ("back" is not "the SPB came back")."""
    proc = run_bot(
        "chat",
        stdin="/timeline\nnext\nback\n/language ru\n/timeline\nдалее\n/sources\nназад\n/quit\n",
        env={"BOT_DATABASE": str(tmp_path / "c.sqlite3")},
    )
    assert proc.returncode == 0, proc.stderr
    pages = re.findall(r"(?:Timeline|Хронология) \((\d)/2\)", proc.stdout)
    # /sources offers no choices, so the timeline is still the list "назад" turns.
    assert pages == ["1", "2", "1", "1", "2", "1"]
    proc = run_bot(
        "chat", stdin="back\nnext\n/quit\n", env={"BOT_DATABASE": str(tmp_path / "d.sqlite3")}
    )
    assert proc.returncode == 0, proc.stderr
    assert "Source:" not in proc.stdout and "I don't have a sourced answer" not in proc.stdout


def test_lexical_only_when_the_embedder_is_off() -> None:
    proc = run_bot(
        "ask", "--json", "who ran against lukashenko in 2001", env={"BOT_SEARCH__EMBEDDER": "none"}
    )
    assert proc.returncode == 0, proc.stderr
    assert "Hancharyk" in json.loads(proc.stdout)["text"]


def test_unknown_embedder_is_one_clear_line() -> None:
    one_error_line(run_bot("ask", "x", env={"BOT_SEARCH__EMBEDDER": "gpt-9"}), "search.embedder")


def test_webhook_without_a_secret_token_refuses_to_start(tmp_path: Path) -> None:
    env = {
        "BOT_DATABASE": str(tmp_path / "x.sqlite3"),
        "BOT_TELEGRAM__TOKEN": "123456:ABCDEF",
        "BOT_TELEGRAM__WEBHOOK_URL": "https://bot.example.org/telegram",
    }
    one_error_line(run_bot("run", env=env), "BOT_TELEGRAM__SECRET_TOKEN")


def test_answers_link_to_the_facts_public_page_when_the_pages_have_an_address() -> None:
    question = "who ran against lukashenko in 2001"
    plain = json.loads(run_bot("ask", "--json", question).stdout)
    assert "Permanent link" not in plain["text"]
    proc = run_bot(
        "ask", "--json", question, env={"BOT_HTTP__PUBLIC_URL": "https://example.org/union/"}
    )
    linked = json.loads(proc.stdout)
    assert f"Permanent link: https://example.org/union/facts/{linked['fact_id']}" in linked["text"]


# -- SIGTERM at any moment -----------------------------------------------------------------------

STOP_BOUND = 20.0  # seconds from SIGTERM to exit: a request under way may run to its timeout
# SIGTERM as soon as the process has a handler for it, or 1 s after the interpreter is up if it
# has none by then: either way the bot is still importing or loading its knowledge (1.5 s on an
# idle machine). A handler installed first thing in bot/__main__.py appears within 0.1 s.


async def until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"waited {timeout:g} s for {what}") from None


async def readyz(port: int) -> bool:
    try:
        async with httpx.AsyncClient(trust_env=False, timeout=2) as client:
            return (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200
    except httpx.TransportError:
        return False


@pytest.mark.parametrize(
    "moment",
    ["starting", "telegram_unreachable", "matrix_unreachable", "serving"],
)
async def test_sigterm_at_any_moment_exits_0_without_a_traceback(
    moment: str, emulator: TelegramEmulator, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """``python -m bot run`` gets SIGTERM (docker stop): while it starts, while it retries an
    unreachable Telegram or homeserver, and while it serves both platforms. Each time it exits
    with status 0, promptly, with no traceback."""
    if not Path("/proc/self/status").exists():
        pytest.skip("needs Linux /proc to see when the process is up")
    nowhere = f"http://127.0.0.1:{free_port()}"  # connection refused
    env = child_environment(
        BOT_TELEGRAM__TOKEN=emulator.token,
        BOT_TELEGRAM__BASE_URL=emulator.base_url,
        BOT_TELEGRAM__POLL_TIMEOUT="1",
        BOT_DATABASE=str(tmp_path / "bot.sqlite3"),
        BOT_HTTP__PORT=str(http_port := free_port()),
    )
    if moment == "telegram_unreachable":
        env["BOT_TELEGRAM__BASE_URL"] = f"{nowhere}/bot"
    if moment == "matrix_unreachable":
        env.update(
            BOT_MATRIX__HOMESERVER=nowhere,
            BOT_MATRIX__USER_ID="@bot:localhost",
            BOT_MATRIX__ACCESS_TOKEN="syt_unreachable",
        )  # and no device id: asking the homeserver for it waits as any other request
    if moment == "serving":
        synapse = request.getfixturevalue("synapse")
        account = synapse.register(f"sigterm-{time.monotonic_ns()}", "secret")
        env.update(
            BOT_MATRIX__HOMESERVER=synapse.base_url,
            BOT_MATRIX__USER_ID=account.user_id,
            BOT_MATRIX__ACCESS_TOKEN=account.access_token,
        )  # no BOT_MATRIX__DEVICE_ID: the homeserver tells the token's device
    log = tmp_path / "stderr.log"

    def said(event: str, times: int = 1) -> bool:
        return log.read_text(encoding="utf-8", errors="replace").count(event) >= times

    with log.open("wb") as stderr:
        proc = await spawn_run(env, stderr=stderr)
    try:
        if moment == "starting":
            await until(lambda: catches(proc.pid, signal.SIGINT), "the interpreter to start")
            with contextlib.suppress(AssertionError):
                await until(lambda: catches(proc.pid, signal.SIGTERM), "a handler", timeout=1.0)
        elif moment == "telegram_unreachable":
            # A second attempt failed: the bot is waiting out its backoff.
            await until(lambda: said("telegram.unreachable", 2), "a retry of Telegram")
        elif moment == "matrix_unreachable":
            await until(lambda: said("matrix.unreachable"), "a failed attempt at Matrix")
            await emulator.wait_for("getUpdates", timeout=30)  # Telegram serves meanwhile
        else:
            await emulator.wait_for("getUpdates", timeout=60)
            deadline = time.monotonic() + 60
            while not await readyz(http_port):  # both platforms ready
                assert time.monotonic() < deadline, "the bot never became ready"
                await asyncio.sleep(0.05)
        assert proc.returncode is None, log.read_text()
        proc.send_signal(signal.SIGTERM)
        status = await asyncio.wait_for(proc.wait(), STOP_BOUND)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    errors = log.read_text(encoding="utf-8", errors="replace")
    assert status == 0, errors
    assert "Traceback" not in errors, errors
