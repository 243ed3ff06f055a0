"""Several files given to one replay are one stream in event time (``ingest.merge``)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from detectors.classify import Classifier
from ingest.merge import MergedBatch, instants
from ingest.parse import Parser
from ingest.sources import OVERSIZE_KEEP, FileSource, LineBatch
from models.fast_event import decode_lines
from tests.factories import T0, event_dict


def _line(at: str, name: str) -> bytes:
    return orjson.dumps(event_dict(timestamp=at, event_id=name))


def _write(path: Path, lines: list[bytes]) -> str:
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return str(path)


def _read(paths: list[str], per_batch: int = 1000, limit: int = 1 << 20) -> list:
    return [record for batch in FileSource(paths, limit).batches(per_batch) for record in batch]


def test_files_each_in_time_order_come_out_as_one_stream_in_time_order(tmp_path):
    # b's times carry an offset: 09:30+08:00 is 01:30Z, between a's 01:00Z and 02:00Z
    a = _write(tmp_path / "a.jsonl", [_line("2026-11-02T01:00:00Z", "a1"), _line("2026-11-02T02:00:00Z", "a2")])
    b = _write(tmp_path / "b.jsonl", [_line("2026-11-02T00:30:00.5Z", "b1"), _line("2026-11-02T09:30:00+08:00", "b2")])
    c = _write(tmp_path / "c.jsonl", [_line("2026-11-02T01:00:00Z", "c1")])  # the same instant as a1: after it
    records = _read([a, b, c])
    assert [orjson.loads(r.data)["event_id"] for r in records] == ["b1", "a1", "c1", "b2", "a2"]
    assert [(Path(r.source.removeprefix("file:")).name, r.position) for r in records] == [
        ("b.jsonl", "line 1"),
        ("a.jsonl", "line 1"),
        ("c.jsonl", "line 1"),
        ("b.jsonl", "line 2"),
        ("a.jsonl", "line 2"),
    ]


def test_a_line_without_a_readable_timestamp_keeps_its_place_its_file_and_its_number(tmp_path):
    unreadable = [b"{oops", b"", b"\xff\xfe", b'{"timestamp": 5}', b'{"timestamp": "yesterday"}', b"[1]"]
    a_lines = [_line("2026-11-02T01:00:00Z", "a1"), *unreadable, _line("2026-11-02T03:00:00Z", "a2")]
    a = _write(tmp_path / "a.jsonl", a_lines)
    b = _write(tmp_path / "b.jsonl", [b"not json first", _line("2026-11-02T02:00:00Z", "b1")])
    records = _read([a, b], per_batch=3)
    named = [(Path(r.source).name, r.position, r.data) for r in records]
    assert named == [
        ("b.jsonl", "line 1", b"not json first"),  # before any timestamp of its file: at the start
        ("a.jsonl", "line 1", a_lines[0]),
        *[("a.jsonl", f"line {number}", line) for number, line in enumerate(unreadable, start=2)],
        ("b.jsonl", "line 2", _line("2026-11-02T02:00:00Z", "b1")),
        ("a.jsonl", "line 8", a_lines[-1]),
    ]


def test_the_parser_dead_letters_a_merged_line_with_its_own_file_and_line(tmp_path, settings):
    a = _write(
        tmp_path / "a.jsonl", [_line("2026-11-02T01:00:00Z", "a1"), b"{broken", _line("2026-11-02T03:00:00Z", "a2")]
    )
    b = _write(tmp_path / "b.jsonl", [_line("2026-11-02T00:00:00Z", "b1"), b"y" * 5000])
    batches = list(FileSource([a, b], 1024).batches(1000))
    assert len(batches) == 1 and isinstance(batches[0], MergedBatch)
    now = (T0 + timedelta(hours=3)).timestamp()
    parsed = Parser(Classifier(settings.classification), settings.ingest, wall_clock=lambda: now).parse(batches[0])
    assert [incoming.event.event_id for incoming in parsed.events] == ["b1", "a1", "a2"]
    letters = [(Path(d.source).name, d.position, d.raw[:7], d.raw_size) for d in parsed.dead_letters]
    assert letters == [("b.jsonl", "line 2", b"y" * 7, 5000), ("a.jsonl", "line 2", b"{broken", 7)]
    assert len(parsed.dead_letters[0].raw) == OVERSIZE_KEEP  # a line over the limit: its head, as from one file
    assert parsed.dead_letters[0].reason.startswith("line of 5,000 bytes is over the limit")


def test_one_file_is_read_as_it_always_was(tmp_path):
    path = _write(tmp_path / "a.jsonl", [_line("2026-11-02T02:00:00Z", "late"), _line("2026-11-02T01:00:00Z", "x")])
    batches = list(FileSource([path], 1 << 20).batches(10))
    assert all(type(batch) is LineBatch for batch in batches)  # no merge: no timestamp read, order untouched
    assert [orjson.loads(r.data)["event_id"] for batch in batches for r in batch] == ["late", "x"]


@pytest.mark.parametrize(
    "stamp",
    [
        "2026-11-02T01:00:00Z",
        "2026-11-02t01:00:00z",
        "2026-11-02T09:00:00.123456+08:00",
        "2026-11-01T20:59:59.9-04:00",
        "2026-11-02T01:00:00.1234567Z",
        "2026-02-30T01:00:00Z",  # not a date: unreadable to both
        "2026-11-02 01:00:00Z",  # not RFC 3339's form: unreadable to both
    ],
)
def test_the_merge_reads_a_timestamp_as_the_pipeline_does(stamp):
    lines = [_line(stamp, "x")]
    events, _ = decode_lines(lines)
    pipeline_reads = [event.timestamp if event is not None else None for event in events]
    assert instants(lines) == pipeline_reads
    assert instants([*lines, _line("2026-11-02T01:00:00Z", "y")])[:1] == pipeline_reads  # one by one, the same
