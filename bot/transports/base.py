"""The `Transport` protocol every platform adapter implements."""

from __future__ import annotations

from typing import Protocol

from bot.domain import ChatRef, Platform, Reply


class Transport(Protocol):
    """Runs until stopped; can send a reply to any chat of its platform (alerts)."""

    platform: Platform

    async def run(self) -> None: ...

    def ready(self) -> bool:
        """Connected to the platform and taking updates."""
        ...

    async def send(self, chat: ChatRef, reply: Reply) -> None: ...
