"""Logging: secrets redacted everywhere, JSON lines on request, chat ids as pseudonyms."""

from __future__ import annotations

import io
import json
import logging

from bot import logs

TOKEN = "123456789:AAE-secretsecretsecretsecret_123"


def capture(fmt: str) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    logs.configure("DEBUG", fmt, secrets=[TOKEN, "syt_matrix_secret_token"])
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    return logging.getLogger("bot.test"), stream


def test_tokens_redacted_in_messages_extras_and_tracebacks() -> None:
    logger, stream = capture("text")
    logger.info("calling https://api.telegram.org/bot%s/getMe", TOKEN)
    logger.info(
        "event", extra={"url": f"http://x/bot{TOKEN}/send", "other": "syt_matrix_secret_token"}
    )
    try:
        raise RuntimeError(f"failed for https://api.telegram.org/bot{TOKEN}/getUpdates")
    except RuntimeError:
        logger.exception("boom")
    output = stream.getvalue()
    assert TOKEN not in output and "syt_matrix_secret_token" not in output
    assert output.count("[REDACTED]") >= 4
    assert "RuntimeError" in output


def test_unknown_token_shapes_are_redacted_too() -> None:
    logger, stream = capture("text")
    logger.warning("other bot 987654321:ZZZ-another-token-value-here-1234 leaked")
    assert "ZZZ-another" not in stream.getvalue()


def test_json_lines() -> None:
    logger, stream = capture("json")
    logger.info("answer.sent", extra={"entry": "fact-1", "score": 0.9})
    record = json.loads(stream.getvalue().splitlines()[-1])
    assert (
        record["event"] == "answer.sent" and record["entry"] == "fact-1" and record["score"] == 0.9
    )
    assert record["level"] == "INFO"


def test_pseudonyms_are_stable_keyed_and_opaque() -> None:
    logs.set_pseudonym_key(b"k1")
    first = logs.pseudonym("12345")
    assert first == logs.pseudonym("12345") and "12345" not in first
    logs.set_pseudonym_key(b"k2")
    assert logs.pseudonym("12345") != first
