"""Long replies are split into parts that are each well-formed HTML within Telegram's limit."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from hypothesis import given
from hypothesis import strategies as st

from bot.domain import Paragraph, Reply, Style
from bot.transports.html import reply_html, split_message

LIMIT = 4096


def open_tags_left(html: str) -> list[str]:
    """The tags still open at the end (an error if one closes out of order)."""
    stack: list[str] = []

    class Checker(HTMLParser):
        def handle_starttag(self, tag: str, attrs: object) -> None:
            stack.append(tag)

        def handle_endtag(self, tag: str) -> None:
            assert stack and stack[-1] == tag, (tag, stack)
            stack.pop()

    Checker().feed(html)
    return stack


def words(html: str) -> list[str]:
    return re.sub(r"<[^>]*>", " ", html).split()


@given(
    st.lists(
        st.tuples(st.sampled_from(list(Style)), st.text(min_size=1, max_size=6000)),
        min_size=1,
        max_size=4,
    )
)
def test_every_part_is_balanced_and_within_the_limit(
    paragraphs: list[tuple[Style, str]],
) -> None:
    reply = Reply(paragraphs=tuple(Paragraph(text=text, style=s) for s, text in paragraphs))
    html = reply_html(reply)
    parts = split_message(html, LIMIT)
    for part in parts:
        assert len(part) <= LIMIT
        assert open_tags_left(part) == []
        assert not re.search(r"&#?\w*$", part)  # no entity cut in half
    assert "".join(words(" ".join(parts))) == "".join(words(html))


def test_a_quote_of_990_ampersands_is_two_well_formed_parts() -> None:
    html = reply_html(Reply(paragraphs=(Paragraph(text="&" * 990, style=Style.QUOTE),)))
    assert len(html) > LIMIT
    parts = split_message(html, LIMIT)
    assert len(parts) == 2
    assert all(p.startswith("<blockquote>") and p.endswith("</blockquote>") for p in parts)
