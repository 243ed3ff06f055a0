"""The event model's fast paths say what the slower ones said: bounds, timestamps, blank lines.

Integer bounds are checked natively on the int a ``JsonInt`` yields (not as
Python validators on the union), and a line is asked whether it is blank only
once it failed to parse: the dead letters' reasons must not change for it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from pydantic import ValidationError

from detectors.classify import Classifier
from ingest.parse import Parser, describe
from ingest.sources import RawRecord
from models.event import AccessEvent, parse_rfc3339
from tests.factories import T0, event_dict


def _reason(**overrides) -> str:
    raw = orjson.dumps(event_dict(**overrides))
    with pytest.raises(ValidationError) as caught:
        AccessEvent.model_validate_json(raw)
    return describe(caught.value, raw)


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("record_count", -1, "record_count: Input should be greater than or equal to 0"),
        ("record_count", -1.0, "record_count: Input should be greater than or equal to 0"),
        ("record_count", 100_000_001, "record_count: Input should be less than or equal to 100000000"),
        ("record_count", 1e30, "record_count: Input should be less than or equal to 100000000"),
        ("record_count", 5.5, "record_count: Input should be a valid integer"),  # its union branches: one key
        ("record_count", "5", "record_count: Input should be a valid integer"),
        ("bytes", -5, "bytes: Input should be greater than or equal to 0"),
        ("bytes", -5.0, "bytes: Input should be greater than or equal to 0"),
    ],
)
def test_integer_bounds_give_one_problem_with_the_constraint_message(field, value, reason):
    assert _reason(**{field: value}) == reason


@pytest.mark.parametrize(("value", "expected"), [(0, 0), (100_000_000, 100_000_000), (5.0, 5), (1e8, 100_000_000)])
def test_integers_in_bounds_are_ints(value, expected):
    event = AccessEvent.model_validate_json(orjson.dumps(event_dict(record_count=value, bytes=value)))
    assert type(event.record_count) is int and event.record_count == expected
    assert type(event.bytes) is int and event.bytes == expected


@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_a_timestamp_outside_the_datetime_range_in_utc_is_a_dead_letter_not_a_crash(settings, stamp):
    assert _reason(timestamp=stamp) == "timestamp: is out of range once converted to UTC"
    parser = Parser(Classifier(settings.classification), settings.ingest, wall_clock=lambda: T0.timestamp())
    line = orjson.dumps(event_dict(timestamp=stamp))
    batch = parser.parse([RawRecord(line, "test", "line 1", len(line))])
    assert batch.events == [] and batch.dead_letters[0].reason == "timestamp: is out of range once converted to UTC"


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2026-11-02t09:15:30.5z", datetime(2026, 11, 2, 9, 15, 30, 500000, UTC)),  # RFC 3339 allows lower case
        ("2026-11-02T09:15:30.1234567+08:00", datetime(2026, 11, 2, 1, 15, 30, 123456, UTC)),  # cut to µs
        ("2026-11-02T09:15:30-00:00", datetime(2026, 11, 2, 9, 15, 30, tzinfo=UTC)),
    ],
)
def test_rfc3339_forms_are_read_as_the_same_instant_in_utc(stamp, expected):
    assert parse_rfc3339(stamp) == expected and parse_rfc3339(stamp).tzinfo is UTC


@pytest.mark.parametrize(
    "stamp",
    [
        "2026-11-02T09:15:30Z\n",  # a trailing newline
        "\u0662\u0660\u0662\u0666-11-02T09:15:30Z",  # digits, but not ASCII ones
        "2026-11-02 09:15:30Z",  # ISO 8601 takes a space; the contract does not
        "2026-11-02T09:15:30+0800",
        "2026-11-02T09:15Z",
        "2026-11-02T09:15:30,5Z",
        "2026-11-02T09:15:30",
    ],
)
def test_other_date_time_forms_are_refused_with_the_rfc3339_reason(stamp):
    assert _reason(timestamp=stamp) == (
        "timestamp: must be an RFC 3339 date-time with an explicit offset, e.g. 2026-11-02T09:15:30Z"
    )


def test_timestamps_are_utc_whichever_way_they_come():
    eight = timezone(timedelta(hours=8))
    parsed = AccessEvent.model_validate_json(orjson.dumps(event_dict(timestamp="2026-11-02T09:15:30.5+08:00")))
    fields = parsed.model_dump(exclude_none=True)  # enum members, as code building events has them
    built = AccessEvent.model_validate({**fields, "timestamp": datetime(2026, 11, 2, 9, 15, 30, 500000, eight)})
    for event in (parsed, built):
        assert event.timestamp == datetime(2026, 11, 2, 1, 15, 30, 500000, UTC) and event.timestamp.tzinfo is UTC
    with pytest.raises(ValidationError, match="must carry a UTC offset"):
        AccessEvent.model_validate({**fields, "timestamp": datetime(2026, 11, 2, 9, 15)})
    with pytest.raises(ValidationError, match="must be a string"):
        AccessEvent.model_validate({**fields, "timestamp": 1762074930})


def test_blank_lines_are_named_as_such_and_other_bad_lines_described(settings):
    parser = Parser(Classifier(settings.classification), settings.ingest, wall_clock=lambda: T0.timestamp())
    lines = [b"", b"  \t ", b"{", b" {} "]
    batch = parser.parse([RawRecord(line, "test", f"line {n}", len(line)) for n, line in enumerate(lines, 1)])
    reasons = [d.reason for d in batch.dead_letters]
    assert reasons[:2] == ["empty line", "empty line"]
    assert reasons[2].startswith("not valid JSON") and reasons[3].startswith("event_id: Field required")
