"""The operations endpoint answers health, readiness and metrics without user data."""

from __future__ import annotations

import asyncio

import httpx
from support.cli import free_port

from bot.core import Core
from bot.domain import ChatRef, Incoming, Platform
from bot.ops import OpsServer
from bot.store.db import Database
from bot.store.repositories import Repository


async def test_health_ready_and_metrics(db: Database, core: Core) -> None:
    await core.handle(
        Incoming(
            chat=ChatRef(platform=Platform.CONSOLE, chat_id="5551234"),
            sender_id="5551234",
            text="Article 33",
        )
    )
    stop = asyncio.Event()
    connected = {"telegram": True}
    port = free_port()
    server = OpsServer(
        "127.0.0.1", port, Repository(db), {"telegram": lambda: connected["telegram"]}, stop
    )
    task = asyncio.create_task(server.run())
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", trust_env=False
        ) as client:
            for _ in range(50):
                try:
                    health = await client.get("/healthz")
                    break
                except httpx.ConnectError:
                    await asyncio.sleep(0.05)
            assert health.json() == {"status": "ok"}
            ready = await client.get("/readyz")
            assert ready.status_code == 200 and ready.json()["store"] is True
            connected["telegram"] = False
            assert (await client.get("/readyz")).status_code == 503
            metrics = (await client.get("/metrics")).text
            assert "bot_questions_total" in metrics and "bot_alert_backlog" in metrics
            assert "5551234" not in metrics and "Article" not in metrics
    finally:
        stop.set()
        await task
