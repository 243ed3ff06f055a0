"""What the subcommands share about their arguments: the types (named for argparse's message, "invalid count
value: 'abc'") and the exception for an argument found wrong once the command runs."""

from __future__ import annotations

import argparse
from datetime import datetime, tzinfo


class WrongArgument(Exception):
    """An argument the command cannot take (a labels file that is not one): one line, and exit 2."""


def count(text: str) -> int:
    """A whole number, 0 or more (``--limit``: 0 lists none, and the summary still counts them all)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, 0 or more, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {value}")
    return value


def moment(command: str, option: str, text: str, zone: tzinfo) -> datetime:
    """``--from``, ``--to``, ``--as-of``: RFC 3339, or a date in the organisation's time zone (``integrity``)."""
    from accesswatch.integrity import parse_moment

    try:
        return parse_moment(text, zone)
    except ValueError as exc:
        raise WrongArgument(f"accesswatch {command}: {option} {text!r}: {exc}, or a date such as 2026-11-02") from None
