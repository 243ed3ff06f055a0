"""A batch is read as its lines one at a time would be: the same events, dead letters, reasons and positions.

The parser decodes a batch's lines together (``models.fast_event.decode_lines``), reads their timestamps
together (``models.event.utc_timestamps``) and keeps a file's lines as bytes (``ingest.sources.LineBatch``).
Held here against the line-at-a-time reading they replace: ``decode_event`` for each line, and a parser
written the way it was before, line by line.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.classify import Classifier
from ingest import parse
from ingest.parse import ParsedBatch, Parser, _ask_the_model
from ingest.sources import OVERSIZE_KEEP, UTF8_BOM, FileSource, LineBatch, LineReader, RawRecord
from models.deadletter import DeadLetter
from models.event import _timestamp, utc_timestamps
from models.fast_event import FastEvent, decode_event, decode_lines
from store.base import IncomingEvent
from tests.factories import event_dict
from tests.test_timestamp_fast_path import _edited

NOW = datetime(2026, 11, 2, 12, tzinfo=UTC).timestamp()


def _line(**overrides: object) -> bytes:
    return orjson.dumps(event_dict(**overrides))


def _stamp(moment: datetime, offset_hours: int = 0) -> str:
    local = moment + timedelta(hours=offset_hours)
    offset = "Z" if not offset_hours else f"{'+' if offset_hours > 0 else '-'}{abs(offset_hours):02d}:00"
    return local.strftime("%Y-%m-%dT%H:%M:%S.%f") + offset


ODD_LINES = [
    b"",
    b"   ",
    b"{",
    b"[1]",
    b"\xff\xfe{}",
    b'{"event_id":"x"}',
    _line(timestamp=5),
    _line(timestamp=None) + b"",
    json.dumps({**event_dict(), "timestamp": None}).encode(),
    json.dumps({**event_dict(), "timestamp": ["2026-11-02T01:00:00Z"]}).encode(),
    _line(timestamp="2026-11-02 01:00:00Z"),
    _line(timestamp="2026-11-02T01:00:00"),
    _line(timestamp="2026-11-02T01:00:60Z"),
    _line(timestamp="2026-11-02t01:00:00.5z"),
    _line(timestamp="2026-11-02T01:00:00.12.3456z"),
    _line(timestamp="2026-11-02T09:00:00.1234567+08:00"),
    _line(timestamp="2026-11-02T01:00:00+24:00"),
    _line(record_count=5.0),  # JSON Schema's integer: the fast decoder refuses it, the model takes it
    _line(extra={"store": "SH-1"}),
    _line(extra={"a": [[{"b": {}}]]}),
    json.dumps({**event_dict(), "extra": json.loads('{"a":' * 70 + "1" + "}" * 70)}).encode(),
    _line(fields=["never_seen_before_field", "passport_number"]),
    _line(fields=[]),
    _line(fields=None),  # absent: classified as no fields
    _line(unknown=1),
]


def _one_by_one(lines: list[bytes]) -> list[FastEvent | None]:
    verdicts: list[FastEvent | None] = []
    for line in lines:
        try:
            verdicts.append(decode_event(line))
        except ValueError:
            verdicts.append(None)
    return verdicts


@pytest.mark.parametrize("odd", [[], ODD_LINES[:1], ODD_LINES[6:7], ODD_LINES[20:21], ODD_LINES])
def test_decode_lines_reads_each_line_as_decode_event_does(odd: list[bytes]) -> None:
    lines = [_line(), _line(timestamp="2026-11-02T09:00:00.250+08:00"), *odd, _line(timestamp="2026-11-02T01:00Z")]
    events, refused = decode_lines(lines)
    assert events == _one_by_one(lines)
    assert refused == [index for index, event in enumerate(events) if event is None]
    assert all(event.timestamp.tzinfo is UTC for event in events if event is not None)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(_edited(), min_size=1, max_size=8))
def test_a_batch_of_any_timestamps_is_read_as_each_alone(stamps: list[str]) -> None:
    lines = [_line(timestamp=stamp) for stamp in stamps]
    events, _ = decode_lines(lines)
    assert [(event, event.timestamp.tzinfo) if event else None for event in events] == [
        (event, event.timestamp.tzinfo) if event else None for event in _one_by_one(lines)
    ]


def test_utc_timestamps_are_the_timestamps_read_one_by_one_or_none() -> None:
    stamps = ["2026-11-02T01:00:00Z", "2026-11-02T09:15:30.5+08:00", "2026-11-01T20:00:00.123-05:00"]
    assert utc_timestamps(stamps) == [_timestamp(stamp) for stamp in stamps]
    for odd in ("2026-11-02T01:00:60Z", "2026-11-02 01:00:00Z", "2026-11-02T01:00:00.1a+08:00", 5, None, ["x"]):
        assert utc_timestamps([*stamps, odd]) is None  # then read one by one, where each is judged


# -- the parser: a batch at a time, as line by line -----------------------------------------------------------
@pytest.fixture
def parser(settings) -> Parser:
    return Parser(Classifier(settings.classification), settings.ingest, wall_clock=lambda: NOW)


def _parsed_line_by_line(parser: Parser, records: list[RawRecord]) -> ParsedBatch:
    """The parser as it was, a line at a time."""
    batch = ParsedBatch()
    now = parser.wall_clock()
    latest, earliest = now + parser.settings.max_future_skew, now - parser.settings.max_past_age
    received = datetime.fromtimestamp(now, UTC)
    for record in records:
        if record.oversize:
            reason = f"line of {record.size:,} bytes is over the limit of {parser.settings.max_line_bytes:,}"
        else:
            try:
                event: FastEvent | None = decode_event(record.data)
            except ValueError:
                event, reason = _ask_the_model(record.data)
            if event is not None:
                moment = event.timestamp.timestamp()
                if earliest <= moment <= latest:
                    batch.events.append(
                        IncomingEvent(event, record.data, parser.classifier.touch(event.fields).classes)
                    )
                    continue
                reason = f"timestamp {event.timestamp.isoformat()} is " + (
                    "further in the future than ingest.max_future_skew (1 day) allows"
                    if moment > latest
                    else "further in the past than ingest.max_past_age (3650 days) allows"
                )
        batch.dead_letters.append(
            DeadLetter(
                source=record.source,
                position=record.position,
                reason=reason,
                raw=record.data,
                received_at=received,
                raw_size=record.size,
            )
        )
    return batch


def _edges(parser: Parser) -> list[bytes]:
    """Timestamps a microsecond either side of both ends of the range the settings allow, in UTC and at +08:00."""
    lines = []
    for bound in (NOW + parser.settings.max_future_skew, NOW - parser.settings.max_past_age):
        at = datetime.fromtimestamp(bound, UTC)
        for microseconds in (-2, -1, 0, 1, 2):
            for offset in (0, 8):
                lines.append(_line(timestamp=_stamp(at + timedelta(microseconds=microseconds), offset)))
    return lines


def _as_data(batch: ParsedBatch) -> tuple[list, list]:
    return [tuple(incoming) for incoming in batch.events], batch.dead_letters


def test_a_batch_in_range_is_parsed_as_line_by_line(parser: Parser) -> None:
    lines = [_line(), _line(timestamp="2026-11-02T09:00:00.250+08:00"), _line(fields=["passport_number"])]
    records = _read(lines)
    assert _as_data(parser.parse(records)) == _as_data(_parsed_line_by_line(parser, list(records)))


@pytest.mark.parametrize("with_odd_lines", [False, True])
def test_a_batch_at_the_edges_of_the_range_is_parsed_as_line_by_line(parser: Parser, with_odd_lines: bool) -> None:
    lines = [_line(), *_edges(parser), *(ODD_LINES if with_odd_lines else [])]
    records = _read(lines)
    parsed = parser.parse(records)
    assert _as_data(parsed) == _as_data(_parsed_line_by_line(parser, list(records)))
    assert parsed.dead_letters  # some of the edges are out of range
    # records given as a list (the simulator's, Kafka's) are parsed alike
    assert _as_data(parser.parse(list(records))) == _as_data(parsed)


def test_a_batch_parsed_in_pieces_is_parsed_as_line_by_line(parser: Parser, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parse, "PIECE_LINES", 3)
    records = _read([_line(), *ODD_LINES, *_edges(parser), b"y" * 3000], limit=2048)
    assert _as_data(parser.parse(records)) == _as_data(_parsed_line_by_line(parser, list(records)))


def test_a_line_over_the_limit_is_a_dead_letter_whatever_its_head_holds(settings) -> None:
    limited = settings.ingest.model_copy(update={"max_line_bytes": 100})
    parser = Parser(Classifier(settings.classification), limited, wall_clock=lambda: NOW)
    good = _line()  # longer than the limit, and a valid event: its head is never one
    records = _read([b"{}", good + b"\r", b"{}"], limit=100)
    parsed = parser.parse(records)
    assert _as_data(parsed) == _as_data(_parsed_line_by_line(parser, list(records)))
    assert [(d.position, d.raw_size, d.raw) for d in parsed.dead_letters][1] == ("line 2", len(good) + 1, good + b"\r")


def _read(lines: list[bytes], limit: int = 1 << 20) -> LineBatch:
    """The lines as a file's batch."""
    batch = LineBatch([], "test", 1)
    for chunk in LineReader(io.BytesIO(b"\n".join(lines) + b"\n"), "test", limit).chunks():
        batch.extend(chunk)
    return batch


# -- a file's lines, kept as lines (ingest.sources.LineBatch) ---------------------------------------------------
def _records_one_by_one(content: bytes, limit: int) -> list[tuple]:
    lines = content.split(b"\n")
    if not lines[-1]:
        lines.pop()
    lines[0] = lines[0].removeprefix(UTF8_BOM)
    return [
        (line[:OVERSIZE_KEEP], f"line {number}", len(line), True)
        if len(line) > limit
        else (line.rstrip(b"\r"), f"line {number}", len(line.rstrip(b"\r")), False)
        for number, line in enumerate(lines, 1)
    ]


@pytest.mark.parametrize("per_batch", [1, 2, 3, 7, 1000])
def test_a_file_read_in_batches_gives_each_line_its_record(tmp_path, per_batch: int) -> None:
    limit = 40
    content = UTF8_BOM + b"\n".join([b"a", b"b" * 60, b"c\r", b"", b"d" * 41 + b"\r", b"e", b"f" * 100, b"g"]) + b"\n"
    path = tmp_path / "lines.jsonl"
    path.write_bytes(content)
    batches = list(FileSource([str(path)], limit).batches(per_batch))
    assert all(isinstance(batch, LineBatch) and 0 < len(batch) <= per_batch for batch in batches)
    records = [record for batch in batches for record in batch]
    source = f"file:{path.resolve()}"
    assert all(record.source == source for record in records)
    assert [(r.data, r.position, r.size, r.oversize) for r in records] == _records_one_by_one(content, limit)
    # a batch is a sequence: by index from either end, and by slice
    last = batches[-1]
    assert last[-1] == records[-1] and last[len(last) - 1] == records[-1]
    assert batches[0][0:2] == records[: min(2, len(batches[0]))]
    with pytest.raises(IndexError):
        last[len(last)]


def test_more_new_field_lists_than_the_classifier_keeps_are_classified_alike(settings) -> None:
    parser = Parser(Classifier(settings.classification, cache_size=2), settings.ingest, wall_clock=lambda: NOW)
    fields = [["name"], ["phone"], ["passport_number"], ["iban", "name"], ["name"], []]
    records = _read([_line(fields=names) for names in fields])
    assert _as_data(parser.parse(records)) == _as_data(_parsed_line_by_line(parser, list(records)))
