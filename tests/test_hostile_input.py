"""Hostile and broken input: never a crash or a hang, every line accounted for (issue 7).

Property-based (hypothesis) over ``ingest.parse.Parser`` and the whole
pipeline: arbitrary bytes, invalid UTF-8, deep nesting, wrong types, NaN and
Infinity, timestamps outside the configured skew, lines over the size limit,
and event ids seen before with other content, which must become a stored
``tampering`` finding.  The invariant always: lines read = stored +
duplicates + dead letters.
"""

from __future__ import annotations

import io
import json
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from accesswatch import app
from configs.loader import load_settings
from detectors.classify import Classifier
from ingest.parse import Parser
from ingest.sources import OVERSIZE_KEEP, FileSource, LineReader, RawRecord
from models.event import AccessEvent
from models.fast_event import decode_event
from store.base import AlertQuery, EventQuery
from store.sqlite import SqliteStore
from tests.factories import T0, event_dict

NOW = (T0 + timedelta(hours=1)).timestamp()
SLOW = hypothesis_settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def default_settings():
    return load_settings(env={})


@pytest.fixture(scope="module")
def parser(default_settings):
    return Parser(Classifier(default_settings.classification), default_settings.ingest, wall_clock=lambda: NOW)


def _record(data: bytes, number: int = 1) -> RawRecord:
    return RawRecord(data, "test", f"line {number}", len(data))


def _one(parser: Parser, data: bytes):
    """Parse one line: (event or None, dead letter reason or None); exactly one of them is set."""
    batch = parser.parse([_record(data)])
    assert len(batch.events) + len(batch.dead_letters) == 1
    if batch.events:
        return batch.events[0], None
    letter = batch.dead_letters[0]
    assert letter.raw == data and letter.reason and "\n" not in letter.reason
    return None, letter.reason


# -- the parser ------------------------------------------------------------------------------
@given(st.lists(st.binary(max_size=400), max_size=30))
@hypothesis_settings(max_examples=400, deadline=None)
def test_any_bytes_become_an_event_or_a_dead_letter(parser, lines):
    batch = parser.parse([_record(data, i) for i, data in enumerate(lines, 1)])
    assert len(batch.events) + len(batch.dead_letters) == len(lines)
    assert [letter.position for letter in batch.dead_letters] == sorted(
        (letter.position for letter in batch.dead_letters), key=lambda p: int(p.split()[1])
    )


@given(st.binary(min_size=1, max_size=200).filter(lambda b: not _is_utf8(b)))
@hypothesis_settings(max_examples=200, deadline=None)
def test_invalid_utf8_is_dead_lettered_with_the_offending_byte(parser, data):
    event, reason = _one(parser, data)
    assert event is None
    if data.strip():
        assert reason.startswith(("not valid UTF-8", "not valid JSON")), reason


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def test_invalid_utf8_inside_a_valid_event_names_its_offset(parser):
    data = orjson.dumps(event_dict(actor={"name": "Zhang"})).replace(b"Zhang", b"Zh\xe9ng")
    _, reason = _one(parser, data)
    offset = data.index(b"\xe9")
    assert reason == f"not valid UTF-8: byte 0xe9 at offset {offset}"


@pytest.mark.parametrize("depth", [150, 300, 10_000, 200_000])
@pytest.mark.parametrize("kind", ["object", "array"])
def test_deep_nesting_neither_crashes_nor_recurses_without_end(parser, depth, kind):
    opener, closer = (b'{"a":', b"}") if kind == "object" else (b"[", b"]")
    nested = opener * depth + b"1" + closer * depth
    base = orjson.dumps(event_dict())
    for data in (nested, base[:-1] + b',"extra":{"deep":' + nested + b"}}"):
        event, reason = _one(parser, data)
        if depth > 200:  # past the JSON parser's recursion limit
            assert event is None and "recursion limit" in reason
    assert _one(parser, nested)[0] is None  # not an event object at all


WRONG_TYPES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


@given(
    key=st.sampled_from(
        [
            "event_id",
            "timestamp",
            "actor",
            "action",
            "resource",
            "record_count",
            "customer_ids",
            "fields",
            "outcome",
            "source_ip",
        ]
    ),
    value=WRONG_TYPES,
)
@hypothesis_settings(max_examples=300, deadline=None)
def test_a_field_of_the_wrong_type_is_refused_and_named(parser, key, value):
    data = event_dict()
    if key in ("actor", "resource") and isinstance(value, dict) and not value:
        value = None  # an empty object is an "other type" only by being incomplete: covered below
    data[key] = value
    event, reason = _one(parser, json.dumps(data).encode())  # the standard library: ints past 64 bits too
    if event is not None:
        # what the schema allows of these types is accepted unchanged: e.g. a whole float record count
        assert getattr(event.event, key) is not None
        return
    assert reason.startswith(key) or "event" in reason or "JSON" in reason, reason


def test_a_made_up_key_with_a_line_break_is_named_on_one_line(parser):
    # found by the property above: an actor object whose only key was "\n"
    data = event_dict()
    data["actor"] = {"\n": 0}
    event, reason = _one(parser, json.dumps(data).encode())
    assert event is None and "\n" not in reason and "actor.\\n" in reason, reason


@pytest.mark.parametrize("number", [b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e999"])
def test_nan_and_infinity_are_never_stored(parser, number):
    base = orjson.dumps(event_dict())
    as_count = base.replace(b'"record_count":1', b'"record_count":' + number)
    in_extra = base[:-1] + b',"extra":{"score":[1,{"x":' + number + b"}]}}"
    assert _one(parser, as_count)[1].startswith("record_count")
    assert _one(parser, in_extra)[1] == "extra: NaN and Infinity are not JSON numbers"
    # the parser looks for them only where the model accepted a line: the fast decoder must refuse them all
    with pytest.raises(ValueError):
        decode_event(in_extra)
    # finite numbers in extra are kept as they are
    assert _one(parser, base[:-1] + b',"extra":{"x":1.5e300}}')[0] is not None


@given(offset=st.floats(min_value=-400 * 365 * 86400.0, max_value=400 * 365 * 86400.0))
@hypothesis_settings(max_examples=300, deadline=None)
def test_timestamps_outside_the_configured_skew_are_dead_lettered(parser, offset):
    moment = datetime.fromtimestamp(NOW, UTC) + timedelta(seconds=offset)
    if not 1 <= moment.year <= 9999:
        return
    event, reason = _one(parser, orjson.dumps(event_dict(at=moment)))
    skew = parser.settings
    stamped = AccessEvent.model_validate_json(orjson.dumps(event_dict(at=moment))).timestamp.timestamp()
    inside = NOW - skew.max_past_age <= stamped <= NOW + skew.max_future_skew
    assert (event is not None) == inside
    if not inside:
        assert ("than ingest.max_future_skew" if stamped > NOW else "than ingest.max_past_age") in reason


def test_the_skew_is_the_configured_one(default_settings):
    ingest = default_settings.ingest.model_copy(update={"max_future_skew": 60.0, "max_past_age": 3600.0})
    parser = Parser(Classifier(default_settings.classification), ingest, wall_clock=lambda: NOW)
    at = datetime.fromtimestamp(NOW, UTC)
    verdicts = [
        parser.parse([_record(orjson.dumps(event_dict(at=at + timedelta(seconds=s))))]).events != []
        for s in (-3601, -3599, 59, 61)
    ]
    assert verdicts == [False, True, True, False]


# -- lines over the limit ------------------------------------------------------------------------
class _Endless(io.RawIOBase):
    """A stream of one line of ``size`` bytes, made as it is read: nothing holds it whole."""

    def __init__(self, size: int, then: bytes) -> None:
        self.left, self.then = size, then

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.left > 0:
            n = min(len(buffer), self.left)
            buffer[:n] = b"x" * n
            self.left -= n
            return n
        n = min(len(buffer), len(self.then))
        buffer[:n], self.then = self.then[:n], self.then[n:]
        return n


def test_a_line_of_hundreds_of_megabytes_is_dead_lettered_in_bounded_memory(parser):
    size = 300 * 1024 * 1024
    good = orjson.dumps(event_dict())
    stream = io.BufferedReader(_Endless(size, b"\n" + good + b"\n"), buffer_size=1 << 16)
    # a limit below the configurable one (models.config.LARGEST_EVENT_LINE): what the reader holds is bounded by it
    limited = parser.settings.model_copy(update={"max_line_bytes": 1 << 20})
    parser = Parser(parser.classifier, limited, parser.wall_clock)
    tracemalloc.start()
    try:
        records = list(LineReader(stream, "test", max_line_bytes=1 << 20))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024, f"peak {peak:,} bytes while skipping a {size:,}-byte line"
    assert [(r.oversize, r.size) for r in records] == [(True, size), (False, len(good))]
    assert len(records[0].data) == OVERSIZE_KEEP
    batch = parser.parse(records)
    assert len(batch.events) == 1 and batch.dead_letters[0].raw_size == size
    assert batch.dead_letters[0].reason == f"line of {size:,} bytes is over the limit of 1,048,576"


# -- the whole pipeline -----------------------------------------------------------------------------
def _good(n: int, **overrides) -> dict:
    return event_dict(event_id=f"evt-h-{n:04d}", at=T0 + timedelta(minutes=n), **overrides)


LINES = st.one_of(
    st.builds(lambda n: ("event", n), st.integers(0, 40)),  # the same n is the same event: a duplicate
    st.builds(lambda n, c: ("conflict", n, c), st.integers(0, 40), st.integers(2, 4)),  # same id, other count
    st.builds(lambda b: ("bytes", b), st.binary(max_size=60)),
    st.builds(lambda b: ("bytes", b), st.sampled_from([b"NaN", b"\xff\xfe", b"[" * 5000, b'{"event_id": 1}'])),
    st.just(("huge",)),
)


def _line(spec: tuple) -> bytes:
    kind = spec[0]
    if kind == "event":
        return orjson.dumps(_good(spec[1]))
    if kind == "conflict":
        return orjson.dumps(_good(spec[1], record_count=spec[2]))
    if kind == "huge":
        return b'{"event_id": "' + b"h" * 5000 + b'"}'
    return spec[1].replace(b"\n", b" ").replace(b"\r", b" ")


@given(st.lists(LINES, min_size=1, max_size=60))
@SLOW
@pytest.mark.timeout(300)
def test_the_pipeline_accounts_for_every_line_and_reports_each_refused_version(tmp_path_factory, specs):
    root = tmp_path_factory.mktemp("hostile")
    settings = load_settings(env={}, overrides={"data_dir": str(root / "data"), "ingest.max_future_skew": "3650d"})
    # below the configurable minimum (models.config.LARGEST_EVENT_LINE), so that a "huge" line stays small
    settings = settings.model_copy(update={"ingest": settings.ingest.model_copy(update={"max_line_bytes": 4096})})
    path = root / "hostile.jsonl"
    path.write_bytes(b"".join(_line(spec) + b"\n" for spec in specs))
    with app.open_store(settings) as store:
        pipeline = app.build_pipeline(settings, store, notifier=None)
        report = pipeline.run(FileSource([str(path)], settings.ingest.max_line_bytes), close_windows=True)
        assert report.lines_read == len(specs)
        assert report.balanced, report.as_dict()

        # what should have happened, line by line: the first version of an id is stored
        first: dict[int, bytes] = {}
        refused: set[bytes] = set()
        for spec in specs:
            if spec[0] in ("event", "conflict"):
                data = _line(spec)
                if first.setdefault(spec[1], data) != data:
                    refused.add(data)
        assert report.stored == len(first) == store.stats().events
        stored = {item.event.event_id for item in store.query_events(EventQuery(limit=1000)).items}
        assert stored == {f"evt-h-{n:04d}" for n in first}
        findings = store.query_alerts(AlertQuery(detector="tampering"))
        assert len(findings) == len(refused)  # one per refused version, however often it came
        assert store.verify_chain().intact


def test_an_id_seen_before_with_other_content_is_a_stored_tampering_finding(tmp_path):
    settings = load_settings(env={}, overrides={"data_dir": str(tmp_path / "data"), "ingest.max_future_skew": "3650d"})
    original = _good(1, customer_ids=["c-secret-1"])
    rewritten = {**original, "record_count": 5000, "action": "export"}
    path = tmp_path / "log.jsonl"
    path.write_bytes(orjson.dumps(original) + b"\n" + orjson.dumps(rewritten) + b"\n")

    def replay() -> tuple:
        with app.open_store(settings) as store:
            pipeline = app.build_pipeline(settings, store, notifier=None)
            report = pipeline.run(FileSource([str(path)], 1 << 20), close_windows=True)
            return report, store.query_alerts(AlertQuery(detector="tampering"))

    report, [finding] = replay()
    assert (report.stored, report.duplicates, report.conflicts, report.alerts_raised) == (1, 1, 1, 1)
    assert finding.actor_id == original["actor"]["id"] and finding.severity.value == "high"
    assert finding.evidence["event_ids"] == [original["event_id"]]
    assert finding.evidence["refused_version"]["record_count"] == 5000
    assert "c-secret-1" not in finding.model_dump_json()  # ids of events, never the customers'
    assert finding.incident_id is not None  # in the analysts' queue like any finding

    again, [same] = replay()  # the same refused version again: the same finding, not a new one
    assert again.alerts_raised == 0 and same.alert_id == finding.alert_id
    assert again.alerts_updated == 0 and same == finding  # nothing about it changed: not told as an update
    with SqliteStore(Path(settings.data_dir) / "accesswatch.db") as store:
        [kept] = store.query_events(EventQuery()).items
        assert kept.event.record_count == original["record_count"]  # the original stands
