"""The timestamp's fast path (``models.event._timestamp``) reads exactly what ``parse_rfc3339`` reads.

Whatever string the fast path is given, it must accept it with the same UTC
instant, or leave it to ``parse_rfc3339`` (which refuses it with its own
reason): random strings built around the contract's shape, with edits in any
place, hold it to that.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import models.event as event_module
from models.event import _timestamp, parse_rfc3339


def _verdict(read: Callable[[str], datetime], text: str) -> tuple[str, object]:
    """What ``read`` makes of ``text``: the instant and its zone, or its refusal's message."""
    try:
        moment = read(text)
    except ValueError as exc:
        return "refused", str(exc)
    return "accepted", (moment, moment.tzinfo)


def _two(least: int, most: int) -> st.SearchStrategy[str]:
    return st.integers(least, most).map(lambda n: f"{n:02d}")


_DIGITS = st.sampled_from("0123456789")
_ODD = st.sampled_from(["٣", "²", "０", " ", "_", "+", "-", ":", ".", "T", "t", "Z", "z", "\n", "9", "0"])
_offsets = st.one_of(
    st.sampled_from(["Z", "z", "+00:00", "-00:00", "+14:00", "-14:00", "+23:59", "+24:00", "+08:60", "+0800", "+08"]),
    st.builds(lambda sign, hh, mm: f"{sign}{hh}:{mm}", st.sampled_from("+-"), _two(0, 25), _two(0, 61)),
)
_fractions = st.one_of(
    st.just(""),
    st.text(_DIGITS, min_size=1, max_size=12).map(lambda digits: "." + digits),
    st.sampled_from([".", ".1a", ".٣", ",5"]),
)
_stamps = st.builds(
    lambda year, month, day, t, hour, minute, second, fraction, offset: (
        f"{year:04d}-{month}-{day}{t}{hour}:{minute}:{second}{fraction}{offset}"
    ),
    st.one_of(st.integers(1, 9999), st.sampled_from([1, 2000, 2024, 2026, 9999])),
    _two(0, 13),
    _two(0, 32),
    st.sampled_from("Tt T"),
    _two(0, 25),
    _two(0, 61),
    _two(0, 61),
    _fractions,
    _offsets,
)


@st.composite
def _edited(draw: st.DrawFn) -> str:
    """A contract-shaped timestamp, sometimes with one character replaced, dropped or added anywhere."""
    text = draw(_stamps)
    edit = draw(st.sampled_from(["none", "replace", "drop", "insert", "cut"]))
    if edit == "none" or not text:
        return text
    at = draw(st.integers(0, len(text) - 1))
    if edit == "replace":
        return text[:at] + draw(_ODD) + text[at + 1 :]
    if edit == "drop":
        return text[:at] + text[at + 1 :]
    if edit == "insert":
        return text[:at] + draw(_ODD) + text[at:]
    return text[:at]


@settings(max_examples=3000, deadline=None)
@given(_edited())
@example("2024-02-29T23:59:59.999999Z")  # a leap day
@example("2023-02-29T12:00:00Z")  # not one
@example("2026-10-05T24:00:00Z")
@example("2026-10-05T23:59:60Z")  # a leap second: refused, as datetime refuses it
@example("2026-10-05T00:00:04.123456789Z")  # past microseconds: the first six digits
@example("2026-10-05T00:00:04.9999999+14:00")
@example("0001-01-01T00:59:59+00:30")  # its hour starts before year 1 in UTC, the moment does not
@example("0001-01-01T00:00:00+01:00")
@example("9999-12-31T23:30:00-00:29")
@example("9999-12-31T23:59:59.999999-00:00")
@example("9999-12-31T23:59:59-00:30")
@example("2026-10-05t00:00:04z")
@example("2026-10-05T00:00:04.130Z\n")
@example("2026-10-05T00:00:04Z+08:00")
@example("2026-10-05T00:00:04.+08:00")
@example("2026-10-05T00:00:04.12.3456z")  # two fractions: the fast path once took the last six as an offset
@example("2026-10-05T0٣:00:04Z")
@example("2026-10-05T00:00:0٣Z")
@example("")
@example("Z")
@example("+08:00")
def test_the_fast_path_reads_every_string_as_parse_rfc3339_does(text: str) -> None:
    # twice: the first meets an unseen hour, the second the cached one
    assert _verdict(_timestamp, text) == _verdict(parse_rfc3339, text), text
    assert _verdict(_timestamp, text) == _verdict(parse_rfc3339, text), text


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-02T09:15:30.120Z",
        "2026-11-02T17:15:30+08:00",
        "2026-11-02T17:15:30.5-03:30",
        "2026-11-02t09:15:30.123456z",
    ],
)
def test_a_timestamp_in_an_hour_already_seen_is_read_without_parsing_it_again(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = parse_rfc3339(text)
    _timestamp(text)  # its hour is now known

    def refuse(value: str) -> datetime:
        raise AssertionError(f"parsed again: {value}")

    monkeypatch.setattr(event_module, "parse_rfc3339", refuse)
    if text.endswith("z"):  # the lowercase "z" is left to the full parser, which is rare enough
        with pytest.raises(AssertionError):
            _timestamp(text)
        return
    moment = _timestamp(text)
    assert moment == expected and moment.tzinfo is UTC
