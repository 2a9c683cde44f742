"""Reply -> HTML (Telegram's subset, also valid Matrix ``formatted_body``), split to a size limit."""

from __future__ import annotations

import re
from html import escape

from bot.domain import Paragraph, Reply, Style


def paragraph_html(p: Paragraph) -> str:
    """One paragraph; every piece of text is escaped, only our own tags remain."""
    text = escape(p.text, quote=False)
    if p.url:
        text = f'{text} <a href="{escape(p.url, quote=True)}">↗</a>'
    match p.style:
        case Style.HEADING:
            return f"<b>{text}</b>"
        case Style.QUOTE:
            return f"<blockquote>{text}</blockquote>"
        case Style.SOURCE | Style.NOTE:
            return f"<i>{text}</i>"
        case Style.ITEM:
            return f"• {text}"
        case _:
            return text


def reply_html(reply: Reply, *, numbered_choices: bool = False) -> str:
    blocks: list[str] = []
    for p in reply.paragraphs:
        html = paragraph_html(p)
        if p.style is Style.ITEM and blocks and blocks[-1].startswith("• "):
            blocks[-1] += "\n" + html
        else:
            blocks.append(html)
    if numbered_choices and reply.choices:
        blocks.append(
            "\n".join(
                f"{i}. {escape(c.label, quote=False)}" for i, c in enumerate(reply.choices, 1)
            )
        )
    return "\n\n".join(blocks)


# A tag, an entity, one space, or up to 100 other characters: a cut falls only between these.
_TOKEN = re.compile(r"<[^>]*>|&#?\w+;|\s|[^<&\s]{1,100}")
_OPEN_TAG = re.compile(r"<([a-z]+)[^>]*>")


def _after(stack: tuple[tuple[str, str], ...], token: str) -> tuple[tuple[str, str], ...]:
    """The open tags (name, opening tag) after ``token``."""
    if token.startswith("</"):
        return stack[:-1] if stack and stack[-1][0] == token[2:-1] else stack
    opening = _OPEN_TAG.fullmatch(token)
    return (*stack, (opening.group(1), token)) if opening else stack


def _hard_split(piece: str, limit: int) -> list[str]:
    """Cut an over-long paragraph, preferably at a line break or space, never inside a tag or
    an entity; tags open at a cut are closed there and opened again in the next part."""
    out: list[str] = []
    tokens = _TOKEN.findall(piece)
    stack: tuple[tuple[str, str], ...] = ()
    i = 0
    while i < len(tokens):
        chunk = "".join(tag for _, tag in stack)
        state, j = stack, i
        best: tuple[int, str, tuple[tuple[str, str], ...]] | None = None
        while j < len(tokens):
            after = _after(state, tokens[j])
            closing = "".join(f"</{name}>" for name, _ in reversed(after))
            if j > i and len(chunk) + len(tokens[j]) + len(closing) > limit:
                break
            chunk, state, j = chunk + tokens[j], after, j + 1
            if tokens[j - 1].isspace():
                best = (j, chunk, state)
        if j < len(tokens) and best is not None and len(best[1]) > limit // 2:
            j, chunk, state = best
        out.append(chunk.rstrip() + "".join(f"</{name}>" for name, _ in reversed(state)))
        stack, i = state, j
        while i < len(tokens) and tokens[i].isspace():
            i += 1
    return out


def split_message(text: str, limit: int = 4096) -> list[str]:
    """Split on paragraph boundaries, so each message stays well-formed HTML: every tag we emit
    opens and closes within one paragraph. Only a paragraph longer than the limit is cut inside."""
    chunks: list[str] = []
    current = ""
    for piece in text.split("\n\n"):
        candidate = f"{current}\n\n{piece}" if current else piece
        if len(candidate) <= limit:
            current = candidate
            continue
        if current:
            chunks.append(current)
        *full, current = _hard_split(piece, limit) or [""]
        chunks.extend(full)
    if current:
        chunks.append(current)
    return chunks
