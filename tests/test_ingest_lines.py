"""Sources and parsing: every line becomes an event or a dead letter with its reason and bytes."""

from __future__ import annotations

import io
import json
import os
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from accesswatch import app
from detectors.classify import Classifier
from ingest import sources
from ingest.parse import Parser
from ingest.simulated_source import SimulatorSource
from ingest.simulator import SimulationSettings
from ingest.sources import OVERSIZE_KEEP, UTF8_BOM, FileSource, LineReader
from models.config import LARGEST_EVENT_LINE
from models.event import AccessEvent
from store.base import EventQuery
from tests.factories import T0, event_dict


@pytest.fixture
def parser(settings):
    now = (T0 + timedelta(hours=1)).timestamp()
    return Parser(Classifier(settings.classification), settings.ingest, wall_clock=lambda: now)


def _records(lines: list[bytes], limit: int = 1 << 20):
    return list(LineReader(io.BytesIO(b"\n".join(lines) + b"\n"), "test", limit))


def test_line_reader_numbers_lines_and_strips_endings():
    records = _records([b'{"a":1}\r', b"", b"x"])
    assert [(r.data, r.position) for r in records] == [(b'{"a":1}', "line 1"), (b"", "line 2"), (b"x", "line 3")]


def test_an_oversize_line_is_reported_without_being_kept_whole():
    huge = b"x" * 5_000_000
    records = _records([b"{}", huge, b"{}"], limit=8192)
    assert [r.oversize for r in records] == [False, True, False]
    assert records[1].size == 5_000_000 and len(records[1].data) == OVERSIZE_KEEP
    assert records[2].position == "line 3"


def test_a_followed_log_never_splits_a_half_written_line(tmp_path):
    path = tmp_path / "live.jsonl"
    path.write_bytes(b'{"n":1}\n{"n":')
    with open(path, "rb") as handle:
        reader = LineReader(handle, "live", 1 << 20, wait_for_newline=True)
        assert [r.data for r in reader] == [b'{"n":1}']
        with open(path, "ab") as writer:
            writer.write(b"2}\n")
        assert [r.data for r in reader] == [b'{"n":2}']
        assert reader.line_number == 2


def test_parser_sorts_good_lines_from_bad_with_reasons(parser):
    good = orjson.dumps(event_dict(fields=["passport_number", "phone"]))
    future = orjson.dumps(event_dict(timestamp="2099-01-01T00:00:00Z"))
    lines = [good, b"{", b"[1]", b"", b"\xff\xfe{}", b'{"event_id":"x"}', future]
    batch = parser.parse(_records(lines) + _records([b"y" * 3000], limit=1024))
    assert len(batch.events) == 1
    assert batch.events[0].classes == frozenset({"government_id", "contact"})
    reasons = [d.reason for d in batch.dead_letters]
    assert reasons[0].startswith("not valid JSON")
    assert reasons[1] == "not a JSON object"
    assert reasons[2] == "empty line"
    assert reasons[3] == "not valid UTF-8: byte 0xff at offset 0"
    assert reasons[4] == "timestamp: Field required (and 4 more problems: actor, action, resource, ...)"
    assert "is further in the future than ingest.max_future_skew (1 day) allows" in reasons[5]
    assert reasons[6] == f"line of 3,000 bytes is over the limit of {parser.settings.max_line_bytes:,}"
    assert [d.raw for d in batch.dead_letters[:4]] == [b"{", b"[1]", b"", b"\xff\xfe{}"]
    assert len(batch.events) + len(batch.dead_letters) == 8


def test_file_source_reads_several_files_in_batches(tmp_path):
    paths = []
    for name, count in (("a", 7), ("b", 5)):
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps(event_dict()) + "\n" for _ in range(count)))
        paths.append(str(path))
    batches = list(FileSource(paths, 1 << 20).batches(3))
    # one stream merged by event time (ingest.merge), batched across the files; all at one instant: a's first
    assert [len(b) for b in batches] == [3, 3, 3, 3]
    assert batches[-1][-1].source.endswith("b.jsonl") and batches[-1][-1].position == "line 5"


@pytest.mark.parametrize("files", [1, 2], ids=["one file", "files merged"])
def test_a_batch_of_large_lines_ends_at_its_byte_bound_not_its_line_count(tmp_path, files):
    # Valid lines near ingest.max_line_bytes (20 MiB) are allowed: 5,000 of them to a batch would be 100 GB.
    # Scaled down here: lines of about 3,000 bytes, batches of at most 100 lines and 10,000 bytes.
    padded = [json.dumps(event_dict(event_id=f"e{n:03}", purpose="p" * 2800)) for n in range(60)]
    paths = []
    for part in range(files):
        path = tmp_path / f"{part}.jsonl"
        path.write_text("".join(line + "\n" for line in padded[part::files]))
        paths.append(str(path))
    batches = [list(batch) for batch in FileSource(paths, 1 << 20, max_batch_bytes=10_000).batches(100)]
    # each batch ends with the line that takes it to the bound (or just before one that would pass it)
    assert all(sum(record.size for record in batch[:-1]) < 10_000 for batch in batches)
    assert max(len(batch) for batch in batches) <= 4 and len(batches) >= 15
    read = [json.loads(record.data)["event_id"] for batch in batches for record in batch]
    assert sorted(read) == [f"e{n:03}" for n in range(60)]  # every line once


def test_small_lines_are_batched_by_their_count(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text("".join(json.dumps(event_dict()) + "\n" for _ in range(250)))
    assert [len(batch) for batch in FileSource([str(path)], 1 << 20).batches(100)] == [100, 100, 50]


def test_simulator_source_paces_event_time_on_its_clock():
    now = [0.0]
    slept = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    source = SimulatorSource(
        SimulationSettings(days=1, employees=20, scenarios=False), speed=3600.0, clock=lambda: now[0], sleep=sleep
    )
    records = [r for batch in source.batches(1000) for r in batch]
    assert records and all(r.source == "simulator" for r in records)
    # one simulated day at an hour a second takes about 24 seconds of the (fake) wall clock
    assert 20 <= now[0] <= 25
    first = orjson.loads(records[0].data)
    assert first["event_id"] and first["timestamp"]


# -- lines read a chunk at a time (ingest.sources.LineReader) ---------------------------------------------
LIMIT = 16
LINE = st.binary(max_size=3 * LIMIT).map(lambda b: b.replace(b"\n", b"")) | st.sampled_from(
    [b"", b"\r", b"x\r\r", UTF8_BOM + b"{}", UTF8_BOM + b"z" * LIMIT]
)


def _expected(content: bytes, follow: bool = False) -> list[tuple]:
    """The records a line at a time, as ``bytes.split`` and the rules say: what reading in chunks must give."""
    lines = content.split(b"\n")
    last = lines.pop()
    if last and not follow:
        lines.append(last)
    if lines:  # a byte order mark at the very start is not part of the first line
        lines[0] = lines[0].removeprefix(UTF8_BOM)
    records = []
    for number, line in enumerate(lines, 1):
        if len(line) > LIMIT:  # over by its bytes before the newline
            records.append((line[:OVERSIZE_KEEP], f"line {number}", len(line), True))
        else:
            records.append((line.rstrip(b"\r"), f"line {number}", len(line.rstrip(b"\r")), False))
    return records


def _as_tuples(records) -> list[tuple]:
    return [(r.data, r.position, r.size, r.oversize) for r in records]


@given(lines=st.lists(LINE, max_size=12), newline_at_end=st.booleans(), chunk=st.integers(1, 40))
def test_lines_read_in_chunks_of_any_size_are_the_lines_read_whole(lines, newline_at_end, chunk):
    content = b"\n".join(lines) + (b"\n" if newline_at_end and lines else b"")
    with _chunks_of(chunk):
        assert _as_tuples(LineReader(io.BytesIO(content), "test", LIMIT)) == _expected(content)


@given(lines=st.lists(LINE, max_size=12), cuts=st.lists(st.integers(0, 400), max_size=6), chunk=st.integers(1, 40))
def test_a_followed_log_written_in_any_pieces_gives_each_finished_line_once(lines, cuts, chunk):
    content = b"\n".join(lines) + b"\n" if lines else b""
    handle = io.BytesIO()
    reader = LineReader(handle, "live", LIMIT, wait_for_newline=True)
    seen = []
    with _chunks_of(chunk):
        for cut in [*sorted(cuts), len(content)]:  # the writer appends up to each cut; the reader reads what is there
            where = handle.seek(0, io.SEEK_END)
            handle.write(content[where : max(cut, where)])
            handle.seek(where)  # the reader read to the end last time: it goes on from there
            seen += _as_tuples(reader)
    assert seen == _expected(content, follow=True)


@contextmanager
def _chunks_of(size: int):
    kept, sources.CHUNK_BYTES = sources.CHUNK_BYTES, size
    try:
        yield
    finally:
        sources.CHUNK_BYTES = kept


def test_a_pipe_is_read_as_its_lines_arrive_without_waiting_for_a_whole_chunk():
    reading, writing = os.pipe()
    with open(reading, "rb") as handle, open(writing, "wb", buffering=0) as writer:
        writer.write(b'{"n":1}\n{"n":')
        reader = LineReader(handle, "stdin", 1 << 20, wait_for_newline=True).chunks()
        assert [r.data for r in next(reader)] == [b'{"n":1}']  # the pipe still open: a chunk would wait forever
        writer.write(b"2}\n")
        assert [r.data for r in next(reader)] == [b'{"n":2}']


# -- a UTF-8 byte order mark (RFC 8259: a parser may ignore it at the start) -----------------------------------
BOM = UTF8_BOM


@given(chunk=st.integers(1, 40))
def test_a_byte_order_mark_at_the_start_is_not_part_of_the_first_line(chunk):
    content = BOM + b'{"a":1}\n' + BOM + b'{"b":2}\n'  # one further on is a line's own bytes
    with _chunks_of(chunk):
        records = list(LineReader(io.BytesIO(content), "test", 1 << 20))
    assert [(r.data, r.position, r.size) for r in records] == [
        (b'{"a":1}', "line 1", 7),
        (BOM + b'{"b":2}', "line 2", 10),
    ]


def test_a_byte_order_mark_does_not_count_against_the_line_limit():
    with _chunks_of(4):  # the first line still unfinished when the limit is checked
        records = list(LineReader(io.BytesIO(BOM + b"x" * LIMIT + b"\n" + b"y" * 20 + b"\n"), "test", LIMIT))
    assert [(r.data, r.oversize) for r in records] == [(b"x" * LIMIT, False), (b"y" * 20, True)]


def test_a_file_saved_with_a_byte_order_mark_loses_no_event(tmp_path, parser):
    path = tmp_path / "windows.jsonl"
    path.write_bytes(BOM + orjson.dumps(event_dict()) + b"\r\n" + orjson.dumps(event_dict()) + b"\r\n")
    records = [r for batch in FileSource([str(path)], 1 << 20).batches(10) for r in batch]
    batch = parser.parse(records)
    assert len(batch.events) == 2 and not batch.dead_letters


def test_inputs_are_anything_readable_but_a_directory(tmp_path):
    from ingest.sources import unreadable_reason

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert unreadable_reason(str(fifo)) is None and unreadable_reason("/dev/null") is None
    assert unreadable_reason("-") is None
    assert unreadable_reason(str(tmp_path)) == f"is a directory: {tmp_path}"
    assert unreadable_reason(str(tmp_path / "nope")) == f"no such file: {tmp_path / 'nope'}"


# -- the largest valid event ------------------------------------------------------------------------------------
WIDE = "\U0001f600"  # outside the BMP: an escaped surrogate pair, 12 bytes, the most JSON spends on one character


def _escaped(text: str) -> str:
    """``text`` as a JSON string with every character escaped: 6 bytes each, 12 for one outside the BMP."""
    units = text.encode("utf-16-be")
    return '"' + "".join(f"\\u{units[i]:02x}{units[i + 1]:02x}" for i in range(0, len(units), 2)) + '"'


def _written(value: Any) -> str:
    """JSON separated as json.dumps separates it (", ", ": "), every string (keys too) escaped whole."""
    if isinstance(value, str):
        return _escaped(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(map(_written, value)) + "]"
    return "{" + ", ".join(f"{_escaped(key)}: {_written(item)}" for key, item in value.items()) + "}"


def _largest(schema: dict, now: datetime) -> Any:
    """The value of ``schema`` whose JSON is the longest, ``extra`` (its size unbounded) left out."""
    if "enum" in schema:
        return max(schema["enum"], key=lambda value: len(_written(value)))
    kind = schema["type"]
    if kind == "object":
        return {key: _largest(inner, now) for key, inner in schema["properties"].items() if key != "extra"}
    if kind == "array":
        return [_largest(schema["items"], now)] * schema["maxItems"]
    if kind == "integer":
        return schema.get("maximum", 2**64 - 1)  # ``bytes`` has none: the largest 64-bit count
    assert kind == "string", schema
    if schema.get("format") == "date-time":  # unbounded too (the fraction): to the nanosecond, with an offset
        return now.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000+00:00"
    return WIDE * schema["maxLength"]  # a bounded field with no maxLength: a KeyError here, to be counted


def test_the_largest_valid_event_is_stored_and_judged_and_a_longer_line_is_a_dead_letter(contract, settings, tmp_path):
    schema = json.loads((contract / "access-event.schema.json").read_text())
    now = datetime.now(UTC)
    line = _written(_largest(schema, now)).encode()
    Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER).validate(json.loads(line))
    # the figure the configuration holds the limit to (models.config), and the default is above it
    assert len(line) == LARGEST_EVENT_LINE < settings.ingest.max_line_bytes
    over = b"x" * (settings.ingest.max_line_bytes + 1)
    path = tmp_path / "large.jsonl"
    path.write_bytes(line + b"\n" + over + b"\n")
    with app.open_store(settings) as store:
        pipeline = app.build_pipeline(settings, store, notifier=None)
        report = pipeline.run(FileSource([str(path)], settings.ingest.max_line_bytes), close_windows=True)
        assert (report.stored, report.dead_letters, report.late_events) == (1, 1, 0)
        (stored,) = store.query_events(EventQuery(limit=10)).items
        assert stored.event == AccessEvent.model_validate_json(line)
        (letter,) = store.dead_letters()
        assert (letter.position, letter.raw_size, letter.raw) == ("line 2", len(over), over[:OVERSIZE_KEEP])
        assert letter.reason == f"line of {len(over):,} bytes is over the limit of {settings.ingest.max_line_bytes:,}"
    assert pipeline.engine.max_event_time == stored.event.timestamp.timestamp()  # judged: the detectors saw it
