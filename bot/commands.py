"""The command table (name, role, help key) and the parser every transport's text goes through."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from rapidfuzz.distance import OSA

from bot.small_talk import SmallTalk, small_talk


class Role(StrEnum):
    """Who may run a command."""

    USER = "user"
    CHAT_ADMIN = "chat_admin"
    ASKER = "asker"  # in a group: the person who asked the question, or a chat admin
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Command:
    """One command users can type; ``help_key`` names its line in /help."""

    name: str
    help_key: str
    role: Role = Role.USER
    menu: bool = True

    @property
    def checks_chat_admin(self) -> bool:
        """Whether a transport must tell the core if a group's sender is a chat admin."""
        return self.role in (Role.CHAT_ADMIN, Role.ASKER)


COMMANDS: tuple[Command, ...] = (
    Command("start", "help.cmd.start", menu=False),
    Command("help", "help.cmd.help"),
    Command("ask", "help.cmd.ask"),
    Command("topics", "help.cmd.topics"),
    Command("timeline", "help.cmd.timeline"),
    Command("quote", "help.cmd.quote"),
    Command("sources", "help.cmd.sources"),
    Command("subscribe", "help.cmd.subscribe", Role.CHAT_ADMIN),
    Command("unsubscribe", "help.cmd.unsubscribe", Role.CHAT_ADMIN),
    Command("subscriptions", "help.cmd.subscriptions"),
    Command("toggle", "help.cmd.toggle", Role.CHAT_ADMIN, menu=False),
    Command("language", "help.cmd.language", Role.CHAT_ADMIN),
    Command("privacy", "help.cmd.privacy"),
    Command("forgetme", "help.cmd.forgetme", Role.CHAT_ADMIN),
    Command("fact", "help.cmd.fact", menu=False),
    Command("evidence", "help.cmd.evidence", menu=False),
    Command("notifyme", "help.cmd.notifyme", Role.ASKER, menu=False),
    Command("addfact", "help.cmd.addfact", Role.ADMIN, menu=False),
    Command("editfact", "help.cmd.editfact", Role.ADMIN, menu=False),
    Command("retract", "help.cmd.retract", Role.ADMIN, menu=False),
    Command("restore", "help.cmd.restore", Role.ADMIN, menu=False),
    Command("addquote", "help.cmd.addquote", Role.ADMIN, menu=False),
    Command("addsource", "help.cmd.addsource", Role.ADMIN, menu=False),
    Command("addevent", "help.cmd.addevent", Role.ADMIN, menu=False),
    Command("unanswered", "help.cmd.unanswered", Role.ADMIN, menu=False),
    Command("stats", "help.cmd.stats", Role.ADMIN, menu=False),
    Command("audit", "help.cmd.audit", Role.ADMIN, menu=False),
    Command("export", "help.cmd.export", Role.ADMIN, menu=False),
    Command("cancel", "help.cmd.cancel", Role.ADMIN, menu=False),
    Command("skip", "help.cmd.skip", Role.ADMIN, menu=False),
    Command("confirm", "help.cmd.confirm", Role.ADMIN, menu=False),
    Command("edit", "help.cmd.edit", Role.ADMIN, menu=False),
    Command("field", "help.cmd.field", Role.ADMIN, menu=False),
    Command("step", "help.cmd.step", Role.ADMIN, menu=False),
)
ADMIN_HELP = (
    "addfact",
    "editfact",
    "retract",
    "restore",
    "addquote",
    "addsource",
    "addevent",
    "unanswered",
    "stats",
    "audit",
    "export",
    "cancel",
)
BY_NAME = {c.name: c for c in COMMANDS}
# What a mistyped command may be taken for: what /help lists for everyone (and /start).
_SUGGESTED = tuple(
    c.name for c in COMMANDS if c.role is not Role.ADMIN and (c.menu or c.name == "start")
)


def closest_command(name: str) -> str | None:
    """The command a mistyped name most likely meant ("source" -> "sources", "lang" ->
    "language"), or None when no command is that close."""
    if len(name) < 3:
        return None
    starting = [c for c in _SUGGESTED if c.startswith(name)]
    if len(starting) == 1:
        return starting[0]
    allowed = 1 if len(name) < 7 else 2
    distance, meant = min((OSA.distance(name, c), c) for c in _SUGGESTED)
    return meant if distance <= allowed else None


_COMMAND = re.compile(
    r"^([/!])([A-Za-z][A-Za-z0-9_]{0,31})(?:@([A-Za-z0-9_]{1,64}))?(?:\s+(.*))?$", re.S
)


@dataclass(frozen=True, slots=True)
class ParsedCommand:
    """A command as typed: lower-cased name, the bot it was addressed to, the rest of the text,
    and the mark it started with ("/", or "!" on Matrix), to echo it as typed."""

    name: str
    addressee: str | None
    args: str
    mark: str = "/"


def parse(text: str) -> ParsedCommand | None:
    """``/name@Bot args`` or ``!name args`` -> ParsedCommand; anything else -> None."""
    m = _COMMAND.match(text.strip())
    if not m:
        return None
    return ParsedCommand(m.group(2).lower(), m.group(3), (m.group(4) or "").strip(), m.group(1))


# A command's name typed as a word ("topics", "menu", "темы"): what the person wants is the
# command, not a search that a word like "start" would match to "from the very beginning".
# Never a command that deletes or stops something.
_BARE_WORDS = {
    "start": "start",
    "menu": "topics",
    "topics": "topics",
    "timeline": "timeline",
    "quotes": "quote",
    "subscribe": "subscribe",
    "subscriptions": "subscriptions",
    "privacy": "privacy",
    "language": "language",
    "меню": "topics",
    "темы": "topics",
    "тэмы": "topics",
    "хронология": "timeline",
    "храналогія": "timeline",
    "chronology": "timeline",
    "timeline of events": "timeline",
    "chronology of events": "timeline",
    "list of events": "timeline",
    "all events": "timeline",
    "хронология событий": "timeline",
    "все события": "timeline",
    "храналогія падзей": "timeline",
    "усе падзеі": "timeline",
    "ўсе падзеі": "timeline",
    "цитаты": "quote",
    "цытаты": "quote",
    "подписаться": "subscribe",
    "падпісацца": "subscribe",
    "приватность": "privacy",
    "прыватнасць": "privacy",
    "язык": "language",
    "мова": "language",
}


def bare_command(text: str) -> ParsedCommand | None:
    """A message that is only a command's name without its slash, as a command."""
    name = _BARE_WORDS.get(text.strip().strip(".!?").strip().casefold())
    return ParsedCommand(name, None, "") if name else None


FOLLOW_UPS = ("evidence", "notifyme")

# A command named in a reply's text ("type /privacy"): not a path or a link ("/topics/x" is).
_NAMED_COMMAND = re.compile(
    r"(?<![\w/!.:<])/(" + "|".join(sorted(BY_NAME, key=len, reverse=True)) + r")\b(?!/)"
)


def with_prefix(text: str, prefix: str) -> str:
    """``text`` with the commands it names as typed where commands start with ``prefix``
    (``!`` on Matrix, whose clients keep ``/`` for their own commands)."""
    return _NAMED_COMMAND.sub(lambda m: prefix + m.group(1), text)


# "2", "2.", "#2": the number of a choice on a list. A year ("1995") is a question.
_CHOICE_NUMBER = re.compile(r"#?(\d{1,2})[.)]?")


def choice_number(text: str) -> int | None:
    """The number ``text`` is, if it is a bare choice number."""
    found = _CHOICE_NUMBER.fullmatch(text.strip())
    return int(found.group(1)) if found else None


def resolve_follow_up(text: str, offered: Sequence[str]) -> str:
    """A bare ``/evidence`` or ``/notifyme`` (``!evidence`` on Matrix) is about the last reply,
    which offered it as a choice; transports that remember the last choices resolve it here.
    So is a message that only asks for the source ("source?", "откуда это?")."""
    command = parse(text)
    if command is None and small_talk(text) is SmallTalk.SOURCE:
        command = ParsedCommand("evidence", None, "")
    if command is None or command.name not in FOLLOW_UPS or command.args:
        return text
    return next((c for c in offered if c.startswith(f"/{command.name} ")), text)
