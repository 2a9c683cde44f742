"""Operations endpoint: /healthz, /readyz and /metrics over aiohttp when BOT_HTTP__PORT is set;
with BOT_HTTP__PUBLIC_PAGES also the read-only pages of the knowledge base (bot/web)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot.metrics import ALERT_BACKLOG, REGISTRY
from bot.store.repositories import Repository

if TYPE_CHECKING:
    from bot.web.pages import PublicPages

logger = logging.getLogger(__name__)
# A store that does not answer within this is as good as down (a PostgreSQL server behind a
# dead network path would otherwise hold the probe for the whole connect timeout).
STORE_PROBE_TIMEOUT = 3.0


class OpsServer:
    """Liveness, readiness (the store answers, platforms connected) and Prometheus metrics."""

    def __init__(
        self,
        host: str,
        port: int,
        repository: Repository,
        readiness: dict[str, Callable[[], bool]],
        stop: asyncio.Event,
        pages: PublicPages | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.pages = pages
        self.listening = asyncio.Event()  # set once the socket accepts (port 0: self.port is set)
        self.repository = repository
        self.readiness = readiness
        self.stop_event = stop

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(self, request: web.Request) -> web.Response:
        checks: dict[str, bool] = {}
        try:
            async with asyncio.timeout(STORE_PROBE_TIMEOUT):
                await self.repository.get_value("ready-probe")
            checks["store"] = True
        except Exception as exc:
            # One line, no traceback: an outage is a state to report, not a bug.
            logger.warning("ops.store_unavailable", extra={"error": type(exc).__name__})
            checks["store"] = False
        for name, check in self.readiness.items():
            checks[name] = check()
        ready = all(checks.values())
        return web.json_response({"ready": ready, **checks}, status=200 if ready else 503)

    async def metrics(self, request: web.Request) -> web.Response:
        counts = await self.repository.outbox_counts()
        ALERT_BACKLOG.set(counts["pending"] + counts["sending"])
        return web.Response(
            body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def run(self) -> None:
        app = web.Application(middlewares=[self.pages.middleware] if self.pages else [])
        app.add_routes(
            [
                web.get("/healthz", self.healthz),
                web.get("/readyz", self.readyz),
                web.get("/metrics", self.metrics),
            ]
        )
        if self.pages is not None:
            app.add_routes(self.pages.routes())
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        if not self.port:
            self.port = int(runner.addresses[0][1])
        self.listening.set()
        logger.info("ops.listening", extra={"port": self.port})
        try:
            await self.stop_event.wait()
        finally:
            await runner.cleanup()
