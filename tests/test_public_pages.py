"""The public pages over the real server: every page in three languages, permalinks of retracted
facts, friendly 404s, ETags, admin changes seen at once, a proxy's path prefix, no user data."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from babel.dates import format_date
from markupsafe import escape as markup_escape
from pydantic import ValidationError

from bot.admin.curation import Curation
from bot.app import serve
from bot.config import HttpSettings, Settings
from bot.core import Core
from bot.domain import ChatRef, Incoming, Platform
from bot.errors import ConfigError
from bot.knowledge.models import Fact, KnowledgeBase, Localized
from bot.library import Library
from bot.ops import OpsServer
from bot.search.matcher import MatchSettings
from bot.store.db import Database
from bot.store.repositories import Repository
from bot.texts import LANGUAGES, t
from bot.web import fact_url, prefix_of
from bot.web.i18n import accepted, catalogue, negotiate
from bot.web.pages import HERE, SEARCH_CONCURRENCY, PublicPages

RETRACTED_AT = datetime(2026, 3, 15, 10, 30, tzinfo=UTC).timestamp()
ADMIN = "4242424242"
NAV = {"en": "Timeline", "ru": "Хронология", "be": "Храналогія"}
RETRACTED = {
    "en": "This fact was retracted",
    "ru": "Этот факт отозван",
    "be": "Гэты факт адкліканы",
}
NOT_FOUND = {"en": "Page not found", "ru": "Страница не найдена", "be": "Старонка не знойдзена"}


class FixedClock:
    def __init__(self, now: float) -> None:
        self.at = now

    def now(self) -> float:
        return self.at

    def monotonic(self) -> float:
        return self.at


@dataclass
class Site:
    """A running operations server with the public pages over its own library."""

    base: str
    library: Library
    repository: Repository
    curation: Curation
    client: httpx.AsyncClient
    pages: PublicPages

    async def get(self, path: str, **kwargs: object) -> httpx.Response:
        return await self.client.get(path, **kwargs)  # type: ignore[arg-type]

    async def retract(self, fact_id: str, reason: str) -> None:
        admin = Incoming(
            chat=ChatRef(platform=Platform.TELEGRAM, chat_id=ADMIN),
            sender_id=ADMIN,
            text=f"/retract {fact_id} {reason}",
        )
        await self.curation.set_retracted(admin, fact_id, True, reason, "en")


@asynccontextmanager
async def running_site(
    kb: KnowledgeBase,
    db: Database,
    *,
    public_url: str | None = None,
    default_language: str = "en",
    library: Library | None = None,
) -> AsyncIterator[Site]:
    library = library or Library(kb, MatchSettings(embedder="none"))
    repository = Repository(db)
    # The core answers searches, as in ``bot.app.serve``; it counts nothing (no repository).
    answer = Core(library, Settings(default_language=default_language)).answer
    pages = PublicPages(
        library, repository, answer, public_url=public_url, default_language=default_language
    )
    stop = asyncio.Event()
    server = OpsServer("127.0.0.1", 0, repository, {}, stop, pages=pages)
    task = asyncio.create_task(server.run())
    try:
        await asyncio.wait_for(server.listening.wait(), timeout=10)
        base = f"http://127.0.0.1:{server.port}"
        async with httpx.AsyncClient(base_url=base, trust_env=False) as client:
            curation = Curation(library, repository, FixedClock(RETRACTED_AT), lambda: None)
            yield Site(base, library, repository, curation, client, pages)
    finally:
        stop.set()
        await task


@pytest.fixture
async def site(kb: KnowledgeBase, db: Database) -> AsyncIterator[Site]:
    async with running_site(kb, db) as running:
        yield running


class Links(HTMLParser):
    """The hrefs of a page, its <html lang>, its landmarks and headings."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.tags: list[str] = []
        self.lang: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        values = dict(attrs)
        if tag == "html":
            self.lang = values.get("lang")
        if tag in ("a", "link") and values.get("href"):
            self.hrefs.append(str(values["href"]))


def parse(html: str) -> Links:
    links = Links()
    links.feed(html)
    return links


def internal(page_url: str, links: Links) -> list[str]:
    """Our own addresses linked from a page (fragments dropped), as paths with query."""
    found = []
    for href in links.hrefs:
        absolute = urlsplit(urljoin(page_url, href))
        if absolute.netloc == urlsplit(page_url).netloc:
            found.append(absolute.path + (f"?{absolute.query}" if absolute.query else ""))
    return found


async def crawl(
    site: Site, start: str, follow: Callable[[str], bool] = lambda path: True
) -> dict[str, str]:
    """Every page reachable from ``start`` by the links ``follow`` takes: path -> HTML (none for
    the stylesheet). Each must answer 200."""
    seen: dict[str, str] = {}
    queue = [start]
    while queue:
        path = queue.pop()
        if path in seen or not follow(path):
            continue
        response = await site.get(path)
        assert response.status_code == 200, path
        if not response.headers["content-type"].startswith("text/html"):
            seen[path] = ""
            continue
        seen[path] = response.text
        queue += [p for p in internal(str(response.url), parse(response.text)) if p not in seen]
    return seen


def well_formed_page(html: str, lang: str) -> None:
    page = parse(html)
    assert page.lang == lang
    for landmark in ("header", "nav", "main", "footer", "h1"):
        assert landmark in page.tags, landmark
    assert page.tags.count("h1") == 1
    assert "<script" not in html.lower()


# -- every page, every language ----------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGUAGES)
async def test_every_page_in_every_language_is_reachable_by_links(site: Site, lang: str) -> None:
    pages = await crawl(
        site, f"/?lang={lang}", lambda p: p.endswith(f"?lang={lang}") or "style.css" in p
    )
    html_pages = {p: h for p, h in pages.items() if h}
    for path, html in html_pages.items():
        well_formed_page(html, lang)
        assert NAV[lang] in html, path
        assert path.endswith(f"lang={lang}"), f"{path} lost the chosen language"
    visited = {urlsplit(p).path for p in pages}
    library = site.library
    assert {f"/facts/{f.id}" for f in library.live_facts()} <= visited
    assert {f"/topics/{t}" for t in library.topics} <= visited
    assert {"/", "/timeline", "/quotes", "/sources", "/static/style.css"} <= visited
    everything = "".join(html_pages.values())
    for quote in library.quotes.values():
        assert f'id="quote-{quote.id}"' in everything
    for event in library.events.values():
        assert f'id="event-{event.id}"' in everything
    for source in library.sources.values():
        assert f'id="source-{source.id}"' in everything


@pytest.mark.parametrize("lang", LANGUAGES)
async def test_fact_page_shows_answer_evidence_and_source(
    site: Site, kb: KnowledgeBase, lang: str
) -> None:
    fact = next(f for f in kb.facts if f.related and not f.retracted)
    source = site.library.sources[fact.sources[0]]
    html = (await site.get(f"/facts/{fact.id}", params={"lang": lang})).text
    answer = fact.answer.get(lang)
    assert escape(answer) in html
    # The excerpt is verbatim, a quotation in the source's own language.
    assert re.search(
        rf'<blockquote lang="{source.language}"[^>]*><p>{re.escape(escape(fact.evidence))}</p>',
        html,
    )
    assert f'<cite lang="{source.language}">' in html
    assert escape(source.title.get(source.language)) in html
    if source.author:
        assert escape(source.author) in html
    for related in fact.related:
        assert f'href="/facts/{related}?lang={lang}"' in html
    note = {"en": None, "ru": "на языке оригинала", "be": "на мове арыгінала"}[lang]
    assert note is None or note in html


def escape(text: str) -> str:
    """As the templates escape it."""
    return str(markup_escape(text))


# -- search ----------------------------------------------------------------------------------


async def test_a_question_asked_on_the_pages_gets_the_bots_answer_and_is_kept_nowhere(
    site: Site,
) -> None:
    form = await site.get("/search")
    assert form.status_code == 200 and 'method="post"' in form.text and 'name="q"' in form.text
    assert 'action="/search"' in (await site.get("/")).text  # the home page asks too
    kozik = site.library.facts["kozik-appointed"]

    asked = await site.client.post("/search", data={"q": "who heads the f\u200bpb?"})
    assert asked.status_code == 200 and escape(kozik.answer.en) in asked.text
    assert 'href="/facts/kozik-appointed"' in asked.text
    assert asked.headers["Cache-Control"] == "no-store" and "ETag" not in asked.headers
    assert "form-action 'self'" in asked.headers["Content-Security-Policy"]

    russian = await site.client.post("/search?lang=ru", data={"q": "кто возглавил ФПБ?"})
    assert escape(kozik.answer.get("ru")) in russian.text
    assert 'action="/search?lang=ru"' in russian.text
    # Without a language in the address, the answer comes in the question's, as in the chats;
    # one chosen in the address wins.
    asked_in_belarusian = await site.client.post("/search", data={"q": "хто ўзначаліў ФПБ?"})
    assert parse(asked_in_belarusian.text).lang == "be"
    assert escape(kozik.answer.get("be")) in asked_in_belarusian.text
    chosen = await site.client.post("/search?lang=en", data={"q": "хто ўзначаліў ФПБ?"})
    assert parse(chosen.text).lang == "en" and escape(kozik.answer.en) in chosen.text

    declined = await site.client.post("/search", data={"q": "what is the capital of australia"})
    assert declined.status_code == 200
    assert escape(t("en", "decline.no_answer")) in declined.text
    assert 'class="answer"' not in declined.text
    # The chats' own decision: a request for advice on one's own situation gets no fact, and a
    # question of function words alone is asked what it means.
    advice = await site.client.post(
        "/search", data={"q": "I was fired for joining a union, what should I do?"}
    )
    assert (
        escape(t("en", "advice.personal")) in advice.text and 'class="answer"' not in advice.text
    )
    stored = await site.client.post("/search", data={"q": "do you store my questions?"})
    assert escape(t("en", "privacy.body", days=30)[:60]) in stored.text
    vague = await site.client.post("/search", data={"q": "why?"})
    assert escape(t("en", "ask.vague")) in vague.text and 'class="answer"' not in vague.text
    empty = await site.client.post("/search", data={"q": "   "})
    assert empty.status_code == 200 and 'id="answer"' not in empty.text

    # Searches are no chat questions: nothing is counted or kept.
    assert await site.repository.question_days("2000-01-01") == []
    assert await site.repository.unanswered("2000-01-01") == []


async def test_searches_beyond_a_few_at_a_time_are_asked_to_come_back(site: Site) -> None:
    held = [site.pages._searching.acquire() for _ in range(SEARCH_CONCURRENCY)]
    await asyncio.gather(*held)
    try:
        busy = await site.client.post("/search", data={"q": "who heads the fpb?"})
        assert busy.status_code == 503 and busy.headers["Retry-After"] == "2"
        assert "Please send yours again in a moment." in busy.text
    finally:
        for _ in range(SEARCH_CONCURRENCY):
            site.pages._searching.release()
    assert (await site.client.post("/search", data={"q": "who heads the fpb?"})).status_code == 200


# -- language --------------------------------------------------------------------------------


def test_accept_language_parsing() -> None:
    assert accepted("ru-RU,ru;q=0.9,en-US;q=0.8,en;q=0.7") == ["ru", "en"]
    assert accepted("de, be;q=0.5, en;q=0.9") == ["en", "be"]
    assert accepted("en;q=0, be") == ["be"]
    assert accepted("*") == [] and accepted(None) == [] and accepted("en;q=x") == []
    assert negotiate("be", "ru", "en") == ("be", True)
    assert negotiate("xx", "ru;q=0.3, de", "en") == ("ru", False)
    assert negotiate(None, "fr", "ru") == ("ru", False)


async def test_language_comes_from_query_then_header_then_default(
    kb: KnowledgeBase, db: Database
) -> None:
    async with running_site(kb, db, default_language="ru") as site:
        asked = await site.get("/timeline?lang=be", headers={"Accept-Language": "en"})
        assert parse(asked.text).lang == "be" and asked.headers["Content-Language"] == "be"
        header = await site.get("/timeline", headers={"Accept-Language": "be-BY,en;q=0.5"})
        assert parse(header.text).lang == "be"
        assert "Accept-Language" in header.headers["Vary"]
        # Negotiated, not chosen: the links stay clean, only the language menu names one.
        assert 'href="/quotes"' in header.text and 'href="/quotes?lang=be"' not in header.text
        assert 'href="/timeline?lang=en" hreflang="en"' in header.text
        fallback = await site.get("/timeline?lang=xx", headers={"Accept-Language": "de"})
        assert parse(fallback.text).lang == "ru"
        english = await site.get("/timeline", headers={"Accept-Language": "en-GB"})
        assert parse(english.text).lang == "en"


# -- permalinks, retraction, 404 -------------------------------------------------------------


async def test_retracted_fact_keeps_its_page_and_leaves_every_list(
    site: Site, kb: KnowledgeBase
) -> None:
    neighbour, fact_id = next((f, r) for f in kb.facts for r in f.related if r != f.id)
    fact = next(f for f in kb.facts if f.id == fact_id)
    topic = fact.topics[0]
    source = fact.sources[0]
    assert f'href="/facts/{fact.id}"' in (await site.get(f"/facts/{neighbour.id}")).text
    link = f'href="/facts/{fact.id}"'
    assert link in (await site.get(f"/topics/{topic}")).text
    await site.retract(fact.id, "the date was wrong <b>")
    for lang in LANGUAGES:
        page = await site.get(f"/facts/{fact.id}", params={"lang": lang})
        assert page.status_code == 200
        assert RETRACTED[lang] in page.text
        assert "the date was wrong &lt;b&gt;" in page.text
        assert ADMIN not in page.text and "telegram:" not in page.text
        assert 'name="robots" content="noindex"' in page.text
    english = (await site.get(f"/facts/{fact.id}")).text
    assert "Retracted on: March 15, 2026" in english
    assert "15 сакавіка 2026" in (await site.get(f"/facts/{fact.id}?lang=be")).text
    for path in ("/", f"/topics/{topic}", "/sources", f"/facts/{neighbour.id}"):
        assert link not in (await site.get(path)).text, path
    assert f"/facts/{fact.id}" not in "".join((await crawl(site, "/")).values())
    assert source in site.library.sources  # the source itself is still listed


async def test_fact_retracted_in_the_files_says_so_without_a_date(
    kb: KnowledgeBase, db: Database
) -> None:
    library = Library(kb, MatchSettings(embedder="none"))
    fact = next(iter(library.facts.values()))
    library.put_fact(fact.model_copy(update={"retracted": True}))
    async with running_site(kb, db, library=library) as site:
        page = (await site.get(f"/facts/{fact.id}")).text
        assert "This fact was retracted" in page and "No reason was given." in page
        assert "Retracted on" not in page


@pytest.mark.parametrize(
    "path", ["/facts/no-such-fact", "/topics/nothing", "/no/such/page", "/facts/%3Cscript%3E"]
)
async def test_unknown_addresses_are_a_friendly_404(site: Site, path: str) -> None:
    for lang in LANGUAGES:
        response = await site.get(path, headers={"Accept-Language": lang})
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("text/html")
        well_formed_page(response.text, lang)
        assert NOT_FOUND[lang] in response.text
        assert 'href="/"' in response.text
        assert "<script>" not in response.text


# -- caching ---------------------------------------------------------------------------------


async def test_etag_304_and_an_admin_change_changes_the_etag(
    site: Site, kb: KnowledgeBase
) -> None:
    fact = next(f for f in kb.facts if not f.retracted)
    path = f"/facts/{fact.id}"
    first = await site.get(path)
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"] == "public, no-cache"
    again = await site.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert (await site.get(path, headers={"If-None-Match": f'"x", W/{etag}'})).status_code == 304
    other_language = await site.get(path + "?lang=ru", headers={"If-None-Match": etag})
    assert other_language.status_code == 200 and other_language.headers["ETag"] != etag
    topic_etag = (await site.get(f"/topics/{fact.topics[0]}")).headers["ETag"]

    await site.retract(fact.id, "superseded")
    changed = await site.get(path, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert "superseded" in changed.text
    topic = await site.get(f"/topics/{fact.topics[0]}", headers={"If-None-Match": topic_etag})
    assert topic.status_code == 200

    css = await site.get("/static/style.css")
    assert css.headers["content-type"].startswith("text/css")
    assert (
        await site.get("/static/style.css", headers={"If-None-Match": css.headers["ETag"]})
    ).status_code == 304


async def test_an_admin_edit_is_visible_on_the_next_request(site: Site, kb: KnowledgeBase) -> None:
    fact = next(f for f in kb.facts if not f.retracted)
    edited = fact.model_copy(
        update={
            "answer": Localized(en="Edited answer <script>alert(1)</script> & more"),
            "corrected": date(2026, 11, 27),
        }
    )
    admin = Incoming(
        chat=ChatRef(platform=Platform.TELEGRAM, chat_id=ADMIN), sender_id=ADMIN, text="/confirm"
    )
    await site.curation.save(admin, "fact", edited, fact, "edit")
    page = (await site.get(f"/facts/{fact.id}?lang=ru")).text
    assert "Edited answer &lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in page
    assert "<script>" not in page
    # Not translated yet: shown in English, and marked as English for screen readers.
    assert '<h1 class="answer" lang="en">' in page and "Ещё не переведено" in page
    assert f"Исправлено {format_date(date(2026, 11, 27), 'long', locale='ru')}</p>" in page

    new = Fact(
        id="brand-new-fact",
        topics=[fact.topics[0]],
        answer=Localized(en="A brand new fact.", ru="Совсем новый факт.", be="Зусім новы факт."),
        sources=[fact.sources[0]],
        evidence="brand new evidence",
    )
    await site.curation.save(admin, "fact", new, None, "add")
    topic = (await site.get(f"/topics/{fact.topics[0]}?lang=be")).text
    assert 'href="/facts/brand-new-fact?lang=be"' in topic and "Зусім новы факт." in topic
    assert (await site.get("/facts/brand-new-fact")).status_code == 200


# -- reverse proxy ---------------------------------------------------------------------------


def test_fact_url_and_prefix() -> None:
    assert fact_url("https://example.org/kb/", "ilo-case-2090") == (
        "https://example.org/kb/facts/ilo-case-2090"
    )
    assert fact_url("https://example.org", "x1") == "https://example.org/facts/x1"
    assert prefix_of("https://example.org/kb/") == "/kb"
    assert prefix_of("https://example.org") == "" and prefix_of(None) == ""


async def test_links_carry_the_prefix_of_public_url(kb: KnowledgeBase, db: Database) -> None:
    async with running_site(kb, db, public_url="https://example.org/union-facts/") as site:
        for start in ("/", "/union-facts/"):
            html = (await site.get(start)).text
            hrefs = parse(html).hrefs
            ours = [h for h in hrefs if not h.startswith(("http://", "https://", "#"))]
            assert ours and all(h.startswith("/union-facts/") for h in ours), ours
        # A proxy that strips the prefix and one that passes it on both reach every page.
        fact = next(f for f in kb.facts if not f.retracted)
        assert (await site.get(f"/facts/{fact.id}")).status_code == 200
        assert (await site.get(f"/union-facts/facts/{fact.id}")).status_code == 200
        assert (await site.get("/union-facts")).status_code == 200
        css = re.search(r'href="(/union-facts/static/style\.css\?v=\w+)"', html)
        assert css and (await site.get(css.group(1))).status_code == 200


# -- privacy ---------------------------------------------------------------------------------


async def test_pages_show_no_user_question_subscriber_or_admin(
    kb: KnowledgeBase, db: Database, settings: Settings
) -> None:
    library = Library(kb, MatchSettings(embedder="none"))
    user = "5557777123"
    chat = ChatRef(platform=Platform.TELEGRAM, chat_id=user)
    core = Core(library, settings, Repository(db))
    for text in ("zebracrossing unicornium question", "/subscribe history", "Article 33"):
        await core.handle(Incoming(chat=chat, sender_id=user, text=text, is_chat_admin=True))
    assert await Repository(db).count_subscribers(["history"]) == 1
    async with running_site(kb, db, library=library) as site:
        fact = next(iter(site.library.live_facts()))
        await site.retract(fact.id, "checked")
        pages = await crawl(site, "/")
        pages[f"/facts/{fact.id}"] = (await site.get(f"/facts/{fact.id}")).text
        pages["404"] = (await site.get("/facts/zebracrossing")).text
    everything = "\n".join(pages.values())
    for planted in (user, "zebracrossing unicornium", ADMIN, "telegram:", "subscri"):
        assert planted.lower() not in everything.lower(), planted


# -- the bot's own start-up, settings, catalogues --------------------------------------------


async def test_run_serves_pages_without_any_platform(
    kb: KnowledgeBase, settings: Settings, unused_port: int
) -> None:
    configured = settings.model_copy(
        update={
            "http": HttpSettings(port=unused_port, public_pages=True),
            "search": MatchSettings(embedder="none"),
        }
    )
    stop = asyncio.Event()
    bot = asyncio.create_task(serve(configured, kb, stop))
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{unused_port}", trust_env=False
        ) as client:
            response = None
            for _ in range(400):  # until the server accepts, or the bot has exited
                assert not bot.done(), "the bot stopped instead of serving the pages"
                try:
                    response = await client.get("/")
                    break
                except httpx.ConnectError:
                    await asyncio.sleep(0.025)
            assert response is not None and response.status_code == 200
            assert "<main" in response.text
    finally:
        stop.set()
        assert await bot == 0


@pytest.fixture
def unused_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    yield port


def test_public_url_must_be_an_http_address(monkeypatch: pytest.MonkeyPatch) -> None:
    assert HttpSettings(public_url="https://example.org/kb/").public_url == (
        "https://example.org/kb/"
    )
    assert HttpSettings(public_url=" ").public_url is None
    for bad in ("ftp://example.org/", "example.org/kb", "https:///nohost", "https://x.org/?a=1"):
        with pytest.raises(ValidationError):
            HttpSettings(public_url=bad)
    monkeypatch.setenv("BOT_HTTP__PUBLIC_URL", "javascript:alert(1)")
    with pytest.raises(ConfigError) as error:
        Settings.from_environment()
    message = str(error.value)
    assert "BOT_HTTP__PUBLIC_URL" in message and "\n" not in message


def test_page_catalogues_are_complete_and_translated() -> None:
    keys = {lang: set(catalogue(lang)) for lang in LANGUAGES}
    assert keys["en"] == keys["ru"] == keys["be"]
    used: set[str] = set()
    for template in (HERE / "templates").glob("*.html"):
        used |= set(
            re.findall(r"""t\(["'](web\.[a-z_.]*[a-z_])["']""", template.read_text("utf-8"))
        )
    used |= {f"web.nav.{name}" for name in ("home", "timeline", "quotes", "sources")}
    assert used <= keys["en"], used - keys["en"]
    for key, english in catalogue("en").items():
        wanted = set(re.findall(r"{(\w+)}", english))
        for lang in ("ru", "be"):
            assert set(re.findall(r"{(\w+)}", catalogue(lang)[key])) == wanted, (lang, key)
            assert catalogue(lang)[key] != english or not re.search(r"[a-z]{4}", english)
