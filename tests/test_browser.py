"""The public pages in a real browser: Debian's Chromium, driven by Playwright for Python.

A person's path: open the topics, follow one to a fact, switch language, open a retracted fact
and a 404. On every page: no console error, no horizontal scroll at 360 px, and no serious or
critical accessibility violation found by axe-core (injected into the page).

Chromium comes from Debian (``apt-get install chromium``), never from ``playwright install``;
axe-core from the npm registry (.ci/run installs both). Without them the tests are skipped,
unless CI=true. ``UPDATE_SCREENSHOTS=1`` also writes the README's screenshots to
docs/screenshots/.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from test_public_pages import Site, running_site

from bot.config import REPO_ROOT
from bot.knowledge.models import KnowledgeBase
from bot.store.db import Database

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
AXE = Path(
    os.environ.get("AXE_CORE_JS")
    or Path.home() / ".cache/advocacy-fact-bot/node/node_modules/axe-core/axe.min.js"
)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
NOT_FOUND_LOG = "Failed to load resource: the server responded with a status of 404 (Not Found)"
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 900}
SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"


def missing(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is missing; .ci/run installs it")
    pytest.skip(f"{what} is missing (apt-get install chromium; see .ci/run)")


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    if not CHROMIUM.exists():
        missing(str(CHROMIUM))
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        missing("playwright (pip install -e '.[test]')")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
async def site(kb: KnowledgeBase, db: Database) -> AsyncIterator[Site]:
    async with running_site(kb, db) as running:
        yield running


class Tab:
    """One page of the browser that records console errors and failed loads."""

    def __init__(self, page: Any, width: int) -> None:
        self.page = page
        self.width = width
        self.errors: list[str] = []
        page.on(
            "console",
            lambda m: (
                self.errors.append(f"{m.text} at {m.location.get('url')}")
                if m.type == "error"
                else None
            ),
        )
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("requestfailed", lambda r: self.errors.append(f"failed: {r.url}"))
        page.on(
            "response",
            lambda r: self.errors.append(f"{r.status}: {r.url}") if r.status >= 400 else None,
        )

    async def check(self, *, expect_404: bool = False) -> None:
        """No console errors, no horizontal scroll, no serious accessibility violations."""
        errors = self.errors
        if expect_404:  # Chromium logs the document's own 404 status; nothing else may show
            document = self.page.url
            errors = [
                e
                for e in errors
                if e not in (f"404: {document}", f"{NOT_FOUND_LOG} at {document}")
            ]
        assert errors == [], errors
        scroll = await self.page.evaluate("document.documentElement.scrollWidth")
        assert scroll <= self.width, f"{self.page.url}: {scroll}px wide at {self.width}px"
        assert await self.page.evaluate("getComputedStyle(document.body).fontSize") != ""
        await self.axe()
        self.errors.clear()

    async def axe(self) -> None:
        if not AXE.is_file():
            missing(f"axe-core ({AXE})")
        await self.page.add_script_tag(path=str(AXE))
        result = await self.page.evaluate(
            "axe.run(document, {resultTypes: ['violations']})"
            ".then(r => r.violations.map(v => ({id: v.id, impact: v.impact,"
            " nodes: v.nodes.map(n => n.target.join(' '))})))"
        )
        if os.environ.get("AXE_REPORT"):
            print(self.page.url, result)
        serious = [v for v in result if v["impact"] in ("serious", "critical")]
        assert serious == [], f"{self.page.url}: {serious}"


async def open_tab(browser: Any, viewport: dict[str, int], locale: str = "en-GB") -> Tab:
    # bypass_csp lets the test inject axe-core; the pages themselves forbid every script.
    context = await browser.new_context(viewport=viewport, locale=locale, bypass_csp=True)
    return Tab(await context.new_page(), viewport["width"])


async def test_a_reader_browses_topics_facts_languages_and_a_404(
    browser: Any, site: Site, kb: KnowledgeBase, tmp_path: Path
) -> None:
    retracted = next(f for f in kb.facts if not f.retracted)
    await site.retract(retracted.id, "the source was misread")
    tab = await open_tab(browser, PHONE)
    page = tab.page

    response = await page.goto(site.base + "/")
    assert response.status == 200
    assert await page.get_attribute("html", "lang") == "en"
    assert await page.locator("header, nav, main, footer").count() >= 4
    await tab.check()

    await page.locator(".cards h3 a").first.click()
    await page.wait_for_url("**/topics/**")
    assert await page.locator("main h1").count() == 1
    await tab.check()

    await page.locator("ul.facts a").first.click()
    await page.wait_for_url("**/facts/**")
    fact_path = page.url.removeprefix(site.base)
    assert await page.locator("blockquote p").count() >= 1
    assert await page.locator("h2#evidence").is_visible()
    await page.screenshot(path=str(tmp_path / "fact-phone.png"), full_page=True)
    await tab.check()

    await page.get_by_role("link", name="Беларуская").click()
    await page.wait_for_url("**lang=be")
    assert await page.get_attribute("html", "lang") == "be"
    assert await page.locator("h2#evidence").inner_text() == "Пацвярджэнне"
    await tab.check()
    # The chosen language stays while the reader goes on.
    await page.get_by_role("link", name="Храналогія").click()
    await page.wait_for_url("**/timeline?lang=be")
    assert await page.get_attribute("html", "lang") == "be"
    await tab.check()

    await page.goto(f"{site.base}/facts/{retracted.id}?lang=ru")
    assert await page.locator("main h1").inner_text() == "Этот факт отозван"
    assert "the source was misread" in await page.locator(".notice").inner_text()
    await tab.check()

    missing_page = await page.goto(site.base + "/facts/no-such-fact")
    assert missing_page.status == 404
    assert await page.locator("main h1").inner_text() == "Page not found"
    await tab.check(expect_404=True)
    await page.get_by_role("link", name="See all topics").click()
    await page.wait_for_url(site.base + "/")

    await save_screenshots(browser, site, fact_path.split("?")[0], tmp_path)


async def test_every_page_kind_passes_in_each_language_at_phone_width(
    browser: Any, site: Site, kb: KnowledgeBase
) -> None:
    fact = next(f for f in kb.facts if not f.retracted and len(f.related) > 1)
    topic = fact.topics[0]
    paths = ["/", f"/topics/{topic}", f"/facts/{fact.id}", "/timeline", "/quotes", "/sources"]
    for lang in ("en", "ru", "be"):
        tab = await open_tab(browser, PHONE, locale=lang)
        for path in paths:
            response = await tab.page.goto(site.base + path)
            assert response.status == 200
            assert await tab.page.get_attribute("html", "lang") == lang  # from Accept-Language
            await tab.check()
        await tab.page.context.close()


async def save_screenshots(browser: Any, site: Site, fact_path: str, tmp_path: Path) -> None:
    """Phone (in Belarusian) and desktop pictures of a fact and of the topics; kept in
    docs/screenshots/ when UPDATE_SCREENSHOTS=1."""
    shots = {
        "fact-phone.png": (PHONE, fact_path + "?lang=be"),
        "fact-desktop.png": (DESKTOP, fact_path),
        "topics-phone.png": (PHONE, "/"),
        "topics-desktop.png": (DESKTOP, "/"),
    }
    for name, (viewport, path) in shots.items():
        tab = await open_tab(browser, viewport)
        await tab.page.goto(site.base + path)
        await tab.page.screenshot(path=str(tmp_path / name), full_page=viewport is PHONE)
        await tab.page.context.close()
        assert (tmp_path / name).stat().st_size > 5000
        if os.environ.get("UPDATE_SCREENSHOTS") == "1":
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(tmp_path / name, SCREENSHOTS / name)
