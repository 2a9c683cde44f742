"""Addresses of the public pages: the path prefix behind a reverse proxy, and permalinks."""

from __future__ import annotations

from urllib.parse import quote, urlsplit


def prefix_of(public_url: str | None) -> str:
    """The path prefix of every link: ``https://example.org/bot/`` -> ``/bot``; none -> ``""``."""
    if not public_url:
        return ""
    path = urlsplit(public_url).path.rstrip("/")
    return quote(path, safe="/%") if path else ""


def fact_url(public_url: str, fact_id: str) -> str:
    """The permanent address of a fact's page, e.g. ``https://example.org/bot/facts/<id>``."""
    return public_url.rstrip("/") + "/facts/" + quote(fact_id, safe="")
