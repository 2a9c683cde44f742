"""Read-only pages of the live knowledge base, served by the operations server (bot/ops.py).

Every request reads the running bot's ``Library``, so an admin's change in chat shows on the
next request. Pages are rendered from Jinja2 templates (autoescaped), without JavaScript, and
carry an ETag (a digest of the page), so a proxy may keep them but asks again each time.
They show the knowledge only: never a user, a question, a count of subscribers or an admin. The
search page answers a question with the bot's own matcher and shows it back to its asker only:
it is posted, never stored nor logged, and its answer page is not kept by caches.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from datetime import date as Date
from pathlib import Path
from urllib.parse import quote

from aiohttp import web
from babel.dates import format_date, format_skeleton
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from bot.domain import Reply, visible
from bot.knowledge.models import Event, Fact, Localized, Precision, Quote, Source, Topic
from bot.library import Library
from bot.store.repositories import Repository
from bot.texts import LANGUAGE_NAMES, LANGUAGES, language_name
from bot.web import i18n
from bot.web.links import prefix_of

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# ``Core.answer``: a question and the language asked for (None: the question's) -> the reply.
Answerer = Callable[[str, str | None], Awaitable[Reply]]

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
# A proxy may store a page but must ask again (If-None-Match) before reusing it: an admin's
# change is then seen on the very next request.
PAGE_CACHE = "public, no-cache"
# Searches run the bot's matcher (an embedding each): a few at a time, the rest told to retry,
# so that a flood of searches cannot slow the chats down.
SEARCH_CONCURRENCY = 4
MAX_SEARCH_CHARS = 300
CLOSE_FACTS = 5


@dataclass(frozen=True, slots=True)
class Shown:
    """A text as shown, with the language it is really in (a missing translation is English)."""

    text: str
    lang: str


@dataclass(frozen=True, slots=True)
class Retraction:
    """When and why a fact was retracted, from the audit log (never who did it)."""

    day: Date | None
    reason: str | None


class View:
    """What a template needs to know about the request: its language and how to link."""

    def __init__(
        self, lang: str, explicit: bool, prefix: str, path: str, assets: dict[str, str]
    ) -> None:
        self.lang = lang
        self.explicit = explicit
        self.prefix = prefix
        self.path = path
        self.assets = assets
        self.languages = [(code, LANGUAGE_NAMES[code]) for code in LANGUAGES]

    def t(self, key: str, **params: object) -> str:
        return i18n.text(self.lang, key, **params)

    def url(self, path: str, anchor: str = "") -> str:
        """A link to one of our pages; a language chosen in the address is kept."""
        query = f"?lang={self.lang}" if self.explicit else ""
        return self.prefix + path + query + (f"#{anchor}" if anchor else "")

    def fact(self, fact_id: str) -> str:
        return self.url("/facts/" + quote(fact_id, safe=""))

    def topic(self, topic_id: str) -> str:
        return self.url("/topics/" + quote(topic_id, safe=""))

    def source(self, source_id: str) -> str:
        return self.url("/sources", "source-" + source_id)

    def lang_url(self, code: str) -> str:
        return self.prefix + quote(self.path, safe="/") + f"?lang={code}"

    def loc(self, value: Localized | None) -> Shown:
        if value is None:
            return Shown("", self.lang)
        own = getattr(value, self.lang, None) if self.lang in LANGUAGES else None
        return Shown(own, self.lang) if isinstance(own, str) else Shown(value.en, "en")

    def own(self, value: Localized | None) -> str | None:
        """The text in the page's language only (no English fallback), or None."""
        own = getattr(value, self.lang, None) if value is not None else None
        return own if isinstance(own, str) else None

    def language(self, code: str) -> str:
        return language_name(code, self.lang)

    def day(self, value: Date) -> str:
        return str(format_date(value, "long", locale=self.lang))

    def event_date(self, event: Event) -> str:
        if event.precision is Precision.YEAR:
            return event.date
        if event.precision is Precision.MONTH:
            year, month = (int(x) for x in event.date.split("-"))
            return str(format_skeleton("yMMMM", Date(year, month, 1), locale=self.lang))
        return self.day(Date.fromisoformat(event.date))


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def not_modified(request: web.Request, etag: str) -> bool:
    """Whether the client's If-None-Match names ``etag`` (weak comparison, as RFC 9110 says)."""
    header = request.headers.get("If-None-Match")
    if not header:
        return False
    if header.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in header.split(","))


class PublicPages:
    """The handlers of the public pages; ``routes`` puts them on an aiohttp application."""

    def __init__(
        self,
        library: Library,
        repository: Repository,
        answer: Answerer,
        *,
        public_url: str | None = None,
        default_language: str = "en",
    ) -> None:
        self.library = library
        self.repository = repository
        self.answer = answer
        self.prefix = prefix_of(public_url)
        self.default_language = default_language
        self.env = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
        )
        self.static = {
            name: (body, etag_of(body), kind)
            for name, kind in (("style.css", "text/css"), ("icon.svg", "image/svg+xml"))
            for body in [(HERE / "static" / name).read_bytes()]
        }
        self.assets = {
            name: f"{self.prefix}/static/{name}?v={etag.strip(chr(34))[:12]}"
            for name, (_, etag, _) in self.static.items()
        }
        self._searching = asyncio.Semaphore(SEARCH_CONCURRENCY)
        i18n.preload()

    # -- routing -------------------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        """Each page at the root and, behind a proxy that keeps the prefix, under the prefix."""
        pages: list[tuple[str, Handler]] = [
            ("/", self.index),
            ("/topics/{id}", self.topic),
            ("/facts/{id}", self.fact),
            ("/timeline", self.timeline),
            ("/quotes", self.quotes),
            ("/sources", self.sources),
            ("/search", self.search),
            ("/static/{name}", self.asset),
        ]
        roots = [""] + ([self.prefix] if self.prefix else [])
        routes = [web.get(root + path, handler) for root in roots for path, handler in pages]
        # The question comes in a POST body: it stays out of addresses, so out of browser
        # history, access logs and the Referer of the links followed from the answer.
        routes += [web.post(root + "/search", self.search) for root in roots]
        if self.prefix:
            routes.append(web.get(self.prefix, self.index))
        return routes

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """An unknown address gets the friendly 404 page, not aiohttp's plain text."""
        try:
            return await handler(request)
        except web.HTTPNotFound:
            return self.not_found(request)

    # -- helpers -------------------------------------------------------------------------------

    def view(self, request: web.Request) -> View:
        lang, explicit = i18n.negotiate(
            request.query.get("lang"),
            request.headers.get("Accept-Language"),
            self.default_language,
        )
        path = request.path
        if self.prefix and (path == self.prefix or path.startswith(self.prefix + "/")):
            path = path[len(self.prefix) :] or "/"
        return View(lang, explicit, self.prefix, path, self.assets)

    def page(
        self,
        request: web.Request,
        view: View,
        template: str,
        status: int = 200,
        *,
        kept: bool = True,
        **context: object,
    ) -> web.Response:
        """A rendered page; ``kept`` False (an error, a search's answer): never stored."""
        context.setdefault("section", "")
        html = self.env.get_template(template + ".html").render(v=view, **context)
        body = html.encode("utf-8")
        headers = {
            **SECURITY_HEADERS,
            "Content-Language": view.lang,
            "Vary": "Accept-Language",
        }
        if status != 200 or not kept:
            headers["Cache-Control"] = "no-store"
            return web.Response(
                body=body,
                status=status,
                content_type="text/html",
                charset="utf-8",
                headers=headers,
            )
        etag = etag_of(body)
        headers |= {"ETag": etag, "Cache-Control": PAGE_CACHE}
        if not_modified(request, etag):
            return web.Response(status=304, headers=headers)
        return web.Response(body=body, content_type="text/html", charset="utf-8", headers=headers)

    def not_found(self, request: web.Request) -> web.Response:
        return self.page(request, self.view(request), "not_found", status=404)

    def live(self, fact_ids: list[str]) -> list[Fact]:
        facts = (self.library.facts.get(i) for i in fact_ids)
        return [f for f in facts if f is not None and not f.retracted]

    def known_sources(self, source_ids: list[str]) -> list[Source]:
        return [s for i in source_ids if (s := self.library.sources.get(i)) is not None]

    def known_topics(self, topic_ids: list[str]) -> list[Topic]:
        return [t for i in topic_ids if (t := self.library.topics.get(i)) is not None]

    async def retraction(self, fact_id: str) -> Retraction:
        """The latest "retract" in the audit log: its day and reason; the actor is never shown."""
        for row in await self.repository.audit(fact_id, limit=50):
            if row["action"] == "retract" and row["kind"] == "fact":
                at, reason = row["at"], row["reason"]
                day = datetime.fromtimestamp(at, UTC).date() if isinstance(at, int) else None
                return Retraction(day, reason.strip() or None if isinstance(reason, str) else None)
        return Retraction(None, None)

    # -- pages ---------------------------------------------------------------------------------

    async def index(self, request: web.Request) -> web.Response:
        view = self.view(request)
        topics = [
            (topic, len(self.library.live_facts(topic.id)))
            for topic in self.library.topics.values()
        ]
        return self.page(request, view, "index", section="home", topics=topics)

    async def topic(self, request: web.Request) -> web.Response:
        view = self.view(request)
        topic = self.library.topics.get(request.match_info["id"])
        if topic is None:
            return self.not_found(request)
        quotes = [q for q in self.library.quotes.values() if topic.id in q.topics]
        events = [e for e in self.library.timeline() if topic.id in e.topics]
        return self.page(
            request,
            view,
            "topic",
            topic=topic,
            facts=self.library.live_facts(topic.id),
            quotes=quotes,
            events=events,
        )

    async def fact(self, request: web.Request) -> web.Response:
        view = self.view(request)
        fact = self.library.facts.get(request.match_info["id"])
        if fact is None:
            return self.not_found(request)
        retraction = await self.retraction(fact.id) if fact.retracted else None
        sources = self.known_sources(fact.sources)
        return self.page(
            request,
            view,
            "fact",
            fact=fact,
            retraction=retraction,
            source=sources[0] if sources else None,
            more_sources=sources[1:],
            topics=self.known_topics(fact.topics),
            related=[] if fact.retracted else self.live([r for r in fact.related if r != fact.id]),
        )

    async def timeline(self, request: web.Request) -> web.Response:
        view = self.view(request)
        return self.page(
            request,
            view,
            "timeline",
            section="timeline",
            events=self.library.timeline(),
            sources_of=self.known_sources,
        )

    async def quotes(self, request: web.Request) -> web.Response:
        view = self.view(request)
        quotes: list[Quote] = list(self.library.quotes.values())
        return self.page(
            request,
            view,
            "quotes",
            section="quotes",
            quotes=quotes,
            sources_of=self.known_sources,
        )

    async def sources(self, request: web.Request) -> web.Response:
        view = self.view(request)
        live = self.library.live_facts()
        cited = [
            (source, [f for f in live if source.id in f.sources])
            for source in self.library.sources.values()
        ]
        return self.page(request, view, "sources", section="sources", sources=cited)

    async def search(self, request: web.Request) -> web.Response:
        """The search form; posted, the bot's answer to the question (or its honest "no sourced
        answer") and the close facts. The question is neither stored nor logged."""
        view = self.view(request)
        question = ""
        if request.method == "POST":
            form = await request.post()
            question = " ".join(visible(str(form.get("q", ""))).split())[:MAX_SEARCH_CHARS]
        if not question:
            return self.page(request, view, "search", section="search", question="", found=False)
        if self._searching.locked():
            busy = self.page(
                request, view, "search", 503, section="search", question=question, found=False
            )
            busy.headers["Retry-After"] = "2"
            return busy
        async with self._searching:
            # The chats' own decision (small talk, a vague question, a request for personal
            # advice, a decline), in the question's language unless the address chose one.
            reply = await self.answer(question, view.lang if view.explicit else None)
        if reply.lang != view.lang:
            view = View(reply.lang, False, view.prefix, view.path, view.assets)
        fact = self.library.facts.get(reply.fact_id or "") if reply.answered else None
        answer = fact if fact is not None and not fact.retracted else None
        offered = [c.command.removeprefix("/fact ") for c in reply.choices]
        close = [f for f in self.live(offered) if f is not answer][:CLOSE_FACTS]
        sources = self.known_sources(answer.sources) if answer else []
        return self.page(
            request,
            view,
            "search",
            section="search",
            kept=False,
            question=question,
            found=True,
            answer=answer,
            note=None if answer or not reply.paragraphs else reply.paragraphs[0].text,
            source=sources[0] if sources else None,
            close=close,
        )

    async def asset(self, request: web.Request) -> web.Response:
        """The stylesheet and the icon; their links carry a digest, so they may be kept a day."""
        found = self.static.get(request.match_info["name"])
        if found is None:
            return self.not_found(request)
        body, etag, kind = found
        headers = {
            "ETag": etag,
            "Cache-Control": "public, max-age=86400",
            "X-Content-Type-Options": "nosniff",
        }
        if not_modified(request, etag):
            return web.Response(status=304, headers=headers)
        return web.Response(body=body, content_type=kind, headers=headers)
