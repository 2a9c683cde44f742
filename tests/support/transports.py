"""A transport stand-in for the delivery worker, for tests about the outbox, not a platform."""

from __future__ import annotations

from bot.alerts.delivery import DeliveryWorker
from bot.app import build_limiters
from bot.clock import SystemClock
from bot.config import Settings
from bot.domain import ChatRef, Platform, Reply
from bot.library import Library
from bot.store.repositories import Repository


class RecordingTransport:
    """A Telegram stand-in for the delivery worker: it keeps what it is asked to send."""

    platform = Platform.TELEGRAM

    def __init__(self) -> None:
        self.sent: list[tuple[ChatRef, Reply]] = []

    async def run(self) -> None:
        return None

    def ready(self) -> bool:
        return True

    async def send(self, chat: ChatRef, reply: Reply) -> None:
        self.sent.append((chat, reply))


def recording_worker(
    repository: Repository, library: Library, settings: Settings
) -> tuple[DeliveryWorker, RecordingTransport]:
    """A delivery worker, composed as ``bot.app`` composes one, sending to a recorder."""
    clock = SystemClock()
    telegram = RecordingTransport()
    worker = DeliveryWorker(
        repository,
        library,
        {Platform.TELEGRAM: telegram},
        build_limiters(settings, clock),
        settings.alerts,
        clock,
        poll_interval=0.1,
    )
    return worker, telegram
