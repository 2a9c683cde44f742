"""Reply -> HTML (Telegram's subset, also valid Matrix ``formatted_body``), split to a size limit."""

from __future__ import annotations

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


def _hard_split(piece: str, limit: int) -> list[str]:
    """Cut an over-long paragraph at the last line break or space before the limit."""
    out: list[str] = []
    while len(piece) > limit:
        cut = piece.rfind("\n", 0, limit)
        if cut <= 0:
            cut = piece.rfind(" ", 0, limit)
        if cut <= 0:
            cut = limit
        out.append(piece[:cut])
        piece = piece[cut:].lstrip()
    return [*out, piece] if piece else out


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
