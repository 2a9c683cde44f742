"""stdin/stdout transport: the terminal chat, for local use and end-to-end tests without a network."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TextIO

from bot.commands import choice_number
from bot.core import Core
from bot.domain import ChatRef, Incoming, Platform, Reply
from bot.texts import t
from bot.transports.follow_ups import LastOffers

PROMPT = "> "


class ConsoleTransport:
    """One conversation in the terminal; numbered choices are picked by typing their number."""

    platform = Platform.CONSOLE

    def __init__(
        self, core: Core, stdin: TextIO | None = None, stdout: TextIO | None = None
    ) -> None:
        self.core = core
        self.stdin = stdin or sys.stdin
        self.stdout = stdout or sys.stdout
        self.chat = ChatRef(platform=Platform.CONSOLE, chat_id="local")
        self._offers = LastOffers(max_chats=1)
        self._lang = core.settings.default_language

    def _write(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()

    async def send(self, chat: ChatRef, reply: Reply) -> None:
        self._offers.remember(chat.chat_id, reply)
        self._lang = reply.lang or self._lang
        self._write(reply.plain_text(numbered_choices=True) + "\n\n")
        for attachment in reply.attachments:
            path = Path(attachment.filename).resolve()
            await asyncio.to_thread(path.write_bytes, attachment.content)
            self._write(f"[{path}]\n\n")

    def ready(self) -> bool:
        return True

    def resolve(self, line: str) -> str | None:
        """A bare number picks one of the last numbered choices; any other number is no
        question (None), so "2" never answers about Decree No. 2."""
        picked = self._offers.resolve(self.chat.chat_id, line, by_number=True).text
        return None if choice_number(picked) is not None else picked

    async def run(self) -> None:
        lang = self.core.settings.default_language
        for reply in await self.core.handle(self._incoming("/start")):
            await self.send(self.chat, reply)
        self._write(t(lang, "console.hint") + "\n")
        while True:
            self._write(PROMPT)
            line = await asyncio.to_thread(self.stdin.readline)
            if not line:
                self._write("\n")
                return
            line = line.strip()
            if line.lower() in ("/quit", "/exit", "quit", "exit"):
                return
            if not line:
                continue
            command = self.resolve(line)
            if command is None:
                self._write(t(self._lang, "console.not_a_choice") + "\n\n")
                continue
            for reply in await self.core.handle(self._incoming(command)):
                await self.send(self.chat, reply)

    def _incoming(self, text: str) -> Incoming:
        return Incoming(
            chat=self.chat, sender_id="local", text=text, is_private=True, language_hint=self._lang
        )
