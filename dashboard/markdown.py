"""Text from the access log shown as Markdown: literal, whatever characters it holds.

Whoever writes the access log writes its purposes, ids and names; a page or a
report that renders them as Markdown must show them as written, never as a
heading, a table cell, emphasis or a link an analyst might click.
"""

from __future__ import annotations

import re

from models.visible import visible


def markdown_text(value: str) -> str:
    """``value`` as literal Markdown text: an id or a note that cannot format, link, break a table or a line.

    Its line breaks become spaces (as the HTML shows them); the characters Markdown (with GitHub's tables,
    strikethrough and maths) gives a meaning get a backslash, as does a list's mark or a rule at its start.
    An underscore between letters or digits (``passport_number``) cannot emphasise, and stays as it is; an
    invisible character shows as its escape (``\\u200b``).  A web
    address goes in a code span: GitHub's Markdown (and Streamlit's) makes a bare one a link, escaped or not.
    """
    # whitespace runs made one space, then what is left unprintable (a zero-width space, a right-to-left
    # override: an id made to look like another) shown as an escape, as the command line shows it
    flat = visible(" ".join(value.split()))
    pieces, done = [], 0
    for address in _ADDRESS.finditer(flat):
        pieces += [_escaped(flat[done : address.start()]), _code(address[0])]
        done = address.end()
    pieces.append(_escaped(flat[done:]))
    return _BLOCK_START.sub(lambda mark: mark[0][:-1] + "\\" + mark[0][-1], "".join(pieces))


def _escaped(text: str) -> str:
    last = len(text) - 1
    return "".join(
        "\\" + char
        if char in _MARKDOWN_ACTIVE
        or (char == "_" and not (0 < at < last and text[at - 1].isalnum() and text[at + 1].isalnum()))
        else char
        for at, char in enumerate(text)
    )


def _code(text: str) -> str:
    """``text`` as a code span, whatever backticks it holds: fenced by one more than its longest run."""
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    return f"{fence} {text} {fence}"


_MARKDOWN_ACTIVE = frozenset("\\`*[]<>|~&$#")
# at a line's start, a list's mark or a rule: "- x", "+ x", "---", "2026. x", "1) x"
_BLOCK_START = re.compile(r"^(?:[-+](?=[\s-]|$)|\d{1,9}[.)](?=\s|$))")
# what GitHub's Markdown makes a link of its own: an address from its scheme or "www." to the next space
_ADDRESS = re.compile(r"(?i)(?:(?:https?|ftp)://|www\.)\S*")
