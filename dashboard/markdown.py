"""Text from the access log shown as Markdown: literal, whatever characters it holds.

Whoever writes the access log writes its purposes, ids and names; a page or a
report that renders them as Markdown must show them as written, never as a
heading, a table cell, emphasis or a link an analyst might click.
"""

from __future__ import annotations

import re


def markdown_text(value: str) -> str:
    """``value`` as literal Markdown text: an id or a note that cannot format, link, break a table or a line.

    Its line breaks become spaces (as the HTML shows them); the characters Markdown (with GitHub's tables,
    strikethrough and maths) gives a meaning get a backslash, as does a list's mark or a rule at its start.
    An underscore between letters or digits (``passport_number``) cannot emphasise, and stays as it is.
    """
    flat = " ".join(value.split())
    last = len(flat) - 1
    escaped = "".join(
        "\\" + char
        if char in _MARKDOWN_ACTIVE
        or (char == "_" and not (0 < at < last and flat[at - 1].isalnum() and flat[at + 1].isalnum()))
        else char
        for at, char in enumerate(flat)
    )
    escaped = _BLOCK_START.sub(lambda mark: mark[0][:-1] + "\\" + mark[0][-1], escaped)
    # a bare address would be made a link by GitHub's Markdown (and Streamlit's): its ':' or '.' escaped, it is not
    return _AUTOLINK.sub(lambda found: found[0][:-1] + "\\" + found[0][-1], escaped)


_MARKDOWN_ACTIVE = frozenset("\\`*[]<>|~&$#")
# at a line's start, a list's mark or a rule: "- x", "+ x", "---", "2026. x", "1) x"
_BLOCK_START = re.compile(r"^(?:[-+](?=[\s-]|$)|\d{1,9}[.)](?=\s|$))")


# where GitHub's Markdown starts a link of its own: a scheme's ':' ("http:", "https:", "ftp:") or "www."'s dot
_AUTOLINK = re.compile(r"(?i)(?<![\w\\])(?:(?:https?|ftp):|www\.)")
