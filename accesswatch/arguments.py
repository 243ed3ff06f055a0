"""What the subcommands share about their arguments: the types (named for argparse's message, "invalid count
value: 'abc'") and the exception for an argument found wrong once the command runs."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import NoReturn

from models.alert import Severity


class Parser(argparse.ArgumentParser):
    """argparse's parser with its mistakes (an unknown option, a missing argument, a wrong value) told in one line
    that names the problem and points at ``--help``, and exit 2: the product's rule for a wrong value.

    argparse printed its usage first, and the reason came second, under lines of options; ``--help`` itself is
    unchanged.  The subcommands' parsers are of this class too (``add_subparsers`` makes them so).
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {' '.join(message.split())}; see {self.prog} --help\n")

    def parse_command(self, argv: Sequence[str] | None = None) -> argparse.Namespace:
        """``parse_args``, with an unknown option told by the subcommand it was given to (``accesswatch alerts``):
        argparse leaves it to the top parser, which would name only ``accesswatch``."""
        args, unknown = self.parse_known_args(argv)
        if unknown:
            command = getattr(args, "command", None)
            prog = f"{self.prog} {command}" if command else self.prog
            self.exit(2, f"{prog}: unrecognized arguments: {' '.join(unknown)}; see {prog} --help\n")
        return args


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


def add_min_severity(parser: argparse.ArgumentParser) -> None:
    """``--min-severity S``: the floor of what a listing shows, as ``alerts`` and ``incidents`` take it."""
    parser.add_argument(
        "--min-severity",
        choices=[s.value for s in Severity],
        default="low",
        metavar="S",
        help="low, medium, high or critical (default: low)",
    )
