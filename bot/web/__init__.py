"""Public, read-only HTML pages of the knowledge base (served by bot/ops.py when enabled)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.web.links import fact_url, prefix_of

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.library import Library
    from bot.store.repositories import Repository
    from bot.web.pages import Answerer, PublicPages

__all__ = ["fact_url", "prefix_of", "public_pages"]


def public_pages(
    settings: Settings, library: Library, repository: Repository, answer: Answerer
) -> PublicPages | None:
    """The pages over the running bot's library, asking ``answer`` (the core's) what a searched
    question gets; None unless ``http.public_pages`` is set."""
    if not settings.http.public_pages:
        return None
    # Imported here: `ask` links to pages (bot.web.links) but never serves them, and the
    # pages bring aiohttp, a tenth of its start-up.
    from bot.web.pages import PublicPages

    return PublicPages(
        library,
        repository,
        answer,
        public_url=settings.http.public_url,
        default_language=settings.default_language,
    )
