"""Public pages benchmark: the weight of a fact's page (HTML + CSS bytes, also gzipped) and the
server's time for ``/facts/<id>`` at p50/p99 under 50 concurrent clients.

The server runs in a child process (the real handlers of bot/web over the real knowledge base
and an SQLite store), so the clients do not share its event loop; a middleware of this script
reports each request's time in the server as a ``Server-Timing`` header. The clients (aiohttp)
run here, on 127.0.0.1 only, for a bounded number of requests. Prints figures; asserts nothing.

    python benchmarks/pages.py [--quick] [--clients 50] [--requests 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import platform
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiohttp import ClientSession, ClientTimeout, TCPConnector, web

from bot.config import REPO_ROOT, Settings
from bot.core import Core
from bot.knowledge.loader import load_knowledge
from bot.library import Library
from bot.search.matcher import MatchSettings
from bot.store.db import Database
from bot.store.repositories import Repository
from bot.web.pages import PublicPages


async def serve(port: int) -> None:
    """The child: the pages on 127.0.0.1:port until stdin closes."""
    kb = load_knowledge(REPO_ROOT / "knowledge")
    library = Library(kb, MatchSettings(embedder="none"))
    with tempfile.TemporaryDirectory() as tmp:
        async with Database(Path(tmp) / "bench.sqlite3") as db:
            pages = PublicPages(library, Repository(db), Core(library, Settings()).answer)

            @web.middleware
            async def timing(request: web.Request, handler: web.Handler) -> web.StreamResponse:
                started = time.perf_counter()
                response = await handler(request)
                took = (time.perf_counter() - started) * 1000
                response.headers["Server-Timing"] = f"app;dur={took:.3f}"
                return response

            app = web.Application(middlewares=[timing, pages.middleware])
            app.add_routes(pages.routes())
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", port)
            await site.start()
            print(f"ready {runner.addresses[0][1]}", flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
            await runner.cleanup()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def load(base: str, paths: list[str], clients: int, requests: int) -> dict[str, list[float]]:
    """``clients`` concurrent clients share ``requests`` GETs of ``paths``, round robin."""
    server: list[float] = []
    client: list[float] = []
    counter = iter(range(requests))
    timeout = ClientTimeout(total=30)

    async def one_client(session: ClientSession) -> None:
        for n in counter:
            started = time.perf_counter()
            async with session.get(base + paths[n % len(paths)]) as response:
                await response.read()
                assert response.status == 200, response.status
                client.append((time.perf_counter() - started) * 1000)
                timing = re.search(r"dur=([\d.]+)", response.headers.get("Server-Timing", ""))
                server.append(float(timing.group(1)) if timing else float("nan"))

    connector = TCPConnector(limit=clients)
    async with ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        await asyncio.gather(*(one_client(session) for _ in range(clients)))
        wall = time.perf_counter() - started
    return {"server": server, "client": client, "wall": [wall]}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--quick", action="store_true", help="1000 requests")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        await serve(args.serve)
        return
    requests = 1000 if args.quick else args.requests

    child = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--serve",
        "0",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None and child.stdin is not None
    line = (await asyncio.wait_for(child.stdout.readline(), timeout=120)).decode()
    if not line.startswith("ready "):
        raise SystemExit(f"the server did not start: {line!r}")
    base = f"http://127.0.0.1:{line.split()[1]}"
    try:
        kb = load_knowledge(REPO_ROOT / "knowledge")
        facts = [f.id for f in kb.facts if not f.retracted]
        paths = [f"/facts/{fact}" for fact in facts]
        async with ClientSession() as session:
            weights: list[tuple[int, int, str]] = []
            for path in paths:
                async with session.get(base + path) as response:
                    body = await response.read()
                weights.append((len(body), len(gzip.compress(body)), path))
                css_path = re.search(rb'href="([^"]+style\.css[^"]*)"', body)
            assert css_path is not None
            async with session.get(base + css_path.group(1).decode()) as response:
                css = await response.read()
        weights.sort()
        html, html_gz, typical = weights[len(weights) // 2]
        largest = weights[-1]
        css_gz = len(gzip.compress(css))

        # Warm up, then measure.
        await load(base, paths, args.clients, min(200, requests))
        measured = await load(base, paths, args.clients, requests)
    finally:
        child.stdin.close()
        await child.wait()

    server, client, wall = measured["server"], measured["client"], measured["wall"][0]
    print(
        f"public pages benchmark ({platform.python_implementation()} {platform.python_version()},"
    )
    print(f"  {len(paths)} facts, {args.clients} concurrent clients, {requests} requests)")
    print(f"page weight of {typical} (median fact):")
    print(f"  HTML {html:,} B + CSS {len(css):,} B = {html + len(css):,} B")
    print(f"  gzipped: HTML {html_gz:,} B + CSS {css_gz:,} B = {html_gz + css_gz:,} B")
    print(f"  largest fact page: {largest[2]} HTML {largest[0]:,} B")
    print("server time of /facts/<id> (handler, in the server process):")
    print(f"  p50 {percentile(server, 50):.2f} ms, p99 {percentile(server, 99):.2f} ms")
    print("response time seen by the clients (queueing under load included):")
    print(f"  p50 {percentile(client, 50):.2f} ms, p99 {percentile(client, 99):.2f} ms")
    print(
        f"throughput: {requests / wall:,.0f} requests/s (mean {statistics.fmean(client):.2f} ms)"
    )


if __name__ == "__main__":
    asyncio.run(main())
