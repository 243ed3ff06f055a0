"""Counts as the command line's sentences say them."""

from __future__ import annotations


def plural(count: int, noun: str, plural: str | None = None) -> str:
    """``1 line``, ``2 lines``: a summary reads as a sentence ("1 problems" reads as a slip in a line quoted)."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"
