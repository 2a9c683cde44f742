"""Admins are platform-scoped numeric/user ids from settings, never usernames."""

from __future__ import annotations

from bot.domain import Incoming


def actor(incoming: Incoming) -> str:
    """How an admin appears in the audit log: ``telegram:12345`` or ``matrix:@alice:example.org``."""
    return f"{incoming.chat.platform.value}:{incoming.sender_id}"


def is_admin(admins: list[str], incoming: Incoming) -> bool:
    """Admin commands work only for listed admins, and only in a private chat with the bot."""
    return incoming.is_private and actor(incoming) in admins
