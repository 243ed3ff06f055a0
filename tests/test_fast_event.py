"""The pipeline's fast decoder against the model: whatever it accepts, the model accepts with equal values.

``models.fast_event`` decodes lines with msgspec instead of the pydantic
model (2 µs an event against 9 to 16).  It may refuse more than the model
(a refused line is then asked of the model), never less, and what it
accepts must read exactly as the model reads it: same values, same types,
same enum members.  Checked on the contract's samples, the crafted events
the contract test uses, edge cases of JSON itself, and random mutations.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from models.event import AccessEvent, Actor, Resource
from models.fast_event import (
    MAX_EXTRA_DEPTH,
    DetectionEvent,
    FastEvent,
    decode_event,
    decode_events,
    decode_for_detection,
    encode_events,
    from_model,
    validate_event,
)
from tests.contract_cases import crafted_events
from tests.factories import event_dict

BASE = {
    "event_id": "e-1",
    "timestamp": "2026-11-02T09:15:30.250+08:00",
    "actor": {"id": "emp-1", "kind": "employee", "name": "A", "role": "agent", "department": "sales"},
    "action": "export",
    "resource": {"system": "crm", "type": "customer_record", "id": "R1"},
    "record_count": 12,
    "customer_ids": ["c-1", "c-2"],
    "fields": ["name", "passport_number"],
    "bytes": 2048,
    "source_ip": "10.0.0.1",
    "user_agent": "curl/8",
    "session_id": "s-1",
    "purpose": "TICKET-9",
    "outcome": "denied",
    "extra": {"n": 1.5, "list": [1, "a", None, True], "deep": {"x": {"y": []}}},
}


def _line(**changes: Any) -> bytes:
    return orjson.dumps({**BASE, **changes})


def _with(path: str, value: Any) -> bytes:
    document = json.loads(json.dumps(BASE))
    target = document
    *parents, last = path.split(".")
    for key in parents:
        target = target[key]
    target[last] = value
    return json.dumps(document, ensure_ascii=False).encode()


# Lines that probe where two JSON decoders can differ, valid and not.
EDGE_CASES: dict[str, bytes] = {
    "every field": _line(),
    "minimal": orjson.dumps(
        {
            "event_id": "e",
            "timestamp": "2026-11-02T09:15:30Z",
            "actor": {"id": "a", "kind": "service"},
            "action": "read",
            "resource": {"system": "s", "type": "t"},
            "record_count": 0,
        }
    ),
    "repeated top-level key": _line()[:-1] + b',"action":"read","event_id":"e-2"}',
    "repeated actor key": _line()[:-1].replace(b'"kind":"employee"', b'"kind":"employee","kind":"partner"') + b"}",
    "repeated key inside extra": _line()[:-1] + b',"extra":{"k":1,"k":2}}',
    "escapes": _line(event_id='e-\u00e9\n\t"\\/', purpose="\u0000 nul"),
    "escaped astral character": _line()[:-1] + b',"purpose":"\\ud83d\\ude00"}',
    "lone high surrogate": _line()[:-1] + b',"purpose":"\\ud800"}',
    "lone low surrogate": _line()[:-1] + b',"purpose":"\\udc80x"}',
    "NaN in extra": _line()[:-1] + b',"extra":{"n":NaN}}',
    "Infinity in extra": _line()[:-1] + b',"extra":{"n":-Infinity}}',
    "huge integer in extra": _line()[:-1] + b',"extra":{"n":123456789012345678901234567890}}',
    "long floats in extra": _line()[:-1]
    + b',"extra":{"f":0.30000000000000004441,"g":1.7976931348623157e308,"h":2.2250738585072011e-308,"i":1E-400}}',
    "escaped key": _line().replace(b'"action"', b'"\\u0061ction"'),
    "escaped unknown key": _line()[:-1] + b',"\\u0078":1}',
    "huge exponent in extra": _line()[:-1] + b',"extra":{"n":1e400}}',
    "negative zero": _with("record_count", 0)[:-1].replace(b'"record_count": 0', b'"record_count": -0') + b"}",
    "exponent as a record count": _line().replace(b'"record_count":12', b'"record_count":1e1'),
    "whole float as a record count": _line(record_count=7.0),
    "whole float as bytes": _line(bytes=7.0),
    "boolean as bytes": _line(bytes=True),
    "record count at its maximum": _line(record_count=100_000_000),
    "byte order mark": b"\xef\xbb\xbf" + _line(),
    "surrounding white space": b" \t" + _line() + b" \r",
    "trailing garbage": _line() + b"x",
    "two objects": _line() + _line(),
    "invalid UTF-8": _line(purpose="x").replace(b'"x"', b'"\xff"'),
    "128 CJK characters": _with("actor.id", "中" * 128),
    "129 CJK characters": _with("actor.id", "中" * 129),
    "128 astral characters": _with("actor.id", "😀" * 128),
    "129 astral characters": _with("actor.id", "😀" * 129),
    "empty actor id": _with("actor.id", ""),
    "null actor role": _with("actor.role", None),
    "empty string optionals": _line(purpose="", source_ip="", session_id=""),
    "empty lists": _line(fields=[], customer_ids=[]),
    "extra as a list": _line(extra=[1]),
    "extra null": _line(extra=None),
    "outcome absent": orjson.dumps({k: v for k, v in BASE.items() if k != "outcome"}),
    "year 1 east of UTC": _line(timestamp="0001-01-01T00:00:00+01:00"),
    "year 9999 west of UTC": _line(timestamp="9999-12-31T23:59:59-01:00"),
    "negative zero offset": _line(timestamp="2026-11-02T09:15:30-00:00"),
    "seven fraction digits": _line(timestamp="2026-11-02T09:15:30.1234567Z"),
    "fraction without digits": _line(timestamp="2026-11-02T09:15:30.Z"),
    "leap second": _line(timestamp="2026-12-31T23:59:60Z"),
    "hour 24": _line(timestamp="2026-11-02T24:00:00Z"),
    "timestamp as an object": _line(timestamp={"at": 1}),
    "not an object": b"[1]",
    "empty": b"",
}


def _crafted(contract: Path) -> dict[str, bytes]:
    samples = [line for line in (contract / "sample-events.jsonl").read_bytes().splitlines() if line.strip()]
    cases = {f"sample {n}": line for n, line in enumerate(samples)}
    base = json.loads(samples[2])
    cases |= {f"crafted: {label}": json.dumps(doc).encode() for label, doc in crafted_events(base).items()}
    return cases | EDGE_CASES


def _model(raw: bytes) -> AccessEvent | None:
    try:
        return AccessEvent.model_validate_json(raw)
    except ValidationError:
        return None


def _fast(raw: bytes) -> FastEvent | None:
    try:
        return decode_event(raw)
    except ValueError:
        return None


def assert_reads_as_the_model(fast: FastEvent, model: AccessEvent, label: object = "") -> None:
    """Every attribute of the model, equal and of the same type (an enum member is the same member)."""
    for name in AccessEvent.model_fields:
        if name in ("actor", "resource"):
            continue
        ours, theirs = getattr(fast, name), getattr(model, name)
        assert ours == theirs and type(ours) is type(theirs), (label, name, ours, theirs)
    for ours_of, theirs_of, fields in ((fast.actor, model.actor, Actor.model_fields),
                                       (fast.resource, model.resource, Resource.model_fields)):  # fmt: skip
        for name in fields:
            ours, theirs = getattr(ours_of, name), getattr(theirs_of, name)
            assert ours == theirs and type(ours) is type(theirs), (label, name, ours, theirs)
    assert fast.resource.kind == model.resource.kind and fast.resource.key == model.resource.key, label
    assert fast.is_egress == model.is_egress, label
    assert fast.timestamp.tzinfo is model.timestamp.tzinfo, label  # both in UTC, the same object
    assert fast.outcome is model.outcome and fast.action is model.action and fast.actor.kind is model.actor.kind


def _check_agreement(raw: bytes, label: object = "") -> bool:
    """The fast decoder accepts only what the model accepts, and reads it alike; True if it accepted."""
    fast, model = _fast(raw), _model(raw)
    if fast is None:
        # refused here: the model's verdict stands, through validate_event as through the parser
        if model is None:
            with pytest.raises(ValidationError):
                validate_event(raw)
        else:
            assert repr(validate_event(raw)) == repr(from_model(model)), label  # repr: NaN is not equal to itself
        return False
    assert model is not None, f"{label}: the fast decoder accepts what the model refuses: {raw!r}"
    assert_reads_as_the_model(fast, model, label)
    assert from_model(model) == fast, label
    return True


def test_what_the_fast_decoder_accepts_reads_exactly_as_the_model_reads_it(contract: Path) -> None:
    verdicts = {label: _check_agreement(raw, label) for label, raw in _crafted(contract).items()}
    # the set must hold both kinds, or it proves nothing
    assert sum(verdicts.values()) >= 15 and list(verdicts.values()).count(False) >= 40, verdicts


def test_json_schema_forms_the_fast_decoder_is_strict_about_still_pass_through_the_model() -> None:
    for label in ("whole float as a record count", "whole float as bytes", "exponent as a record count"):
        raw = EDGE_CASES[label]
        assert _fast(raw) is None, label
        event = validate_event(raw)
        assert type(event.record_count) is int and (event.bytes is None or type(event.bytes) is int), label


def test_the_contract_samples_take_the_fast_path(contract: Path) -> None:
    valid = [raw for label, raw in _crafted(contract).items() if label.startswith("sample") and _model(raw)]
    assert valid and all(_fast(raw) is not None for raw in valid)


def test_from_model_gives_what_decoding_gives() -> None:
    raw = _line()
    assert from_model(AccessEvent.model_validate_json(raw)) == decode_event(raw)
    assert from_model(AccessEvent.model_validate_json(raw)) != decode_event(_line(purpose="other"))


def test_events_are_immutable() -> None:
    event = decode_event(_line())
    with pytest.raises(AttributeError):
        event.record_count = 1  # type: ignore[misc]
    with pytest.raises(AttributeError):
        event.actor.id = "someone else"  # type: ignore[misc]


# -- random mutations ----------------------------------------------------------------------------
_json_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["2026-11-02T09:15:30Z", "2026-11-02t09:15:30+05:45", "employee", "export", "denied", ""])
)
_json_values = st.recursive(
    _json_leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
_paths = st.sampled_from(
    [*BASE, "actor.id", "actor.kind", "actor.role", "actor.extra", "resource.system", "resource.id", "resource.x", "z"]
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=_paths, value=_json_values, drop=st.booleans())
def test_random_values_anywhere_in_an_event(path: str, value: Any, drop: bool) -> None:
    document = json.loads(json.dumps(BASE))
    target = document
    *parents, last = path.split(".")
    for key in parents:
        target = target[key]
    if drop:
        target.pop(last, None)
    else:
        target[last] = value
    _check_agreement(json.dumps(document).encode(), (path, value, drop))


@settings(max_examples=400, deadline=None)
@given(position=st.integers(min_value=0), replacement=st.binary(max_size=3), width=st.integers(0, 3))
def test_random_bytes_anywhere_in_a_line(position: int, replacement: bytes, width: int) -> None:
    raw = _line()
    at = position % (len(raw) + 1)
    _check_agreement(raw[:at] + replacement + raw[at + width :], (at, replacement, width))


# -- downstream: the detectors read it as they read the model -------------------------------------
@pytest.mark.parametrize("raw", [_line(), EDGE_CASES["minimal"], orjson.dumps(event_dict())])
def test_the_engine_judges_both_alike(raw: bytes, settings) -> None:
    from accesswatch.app import build_engine

    by_model, by_fast = build_engine(settings), build_engine(settings)
    by_model.process([AccessEvent.model_validate_json(raw)])
    by_fast.process([decode_event(raw)])
    assert by_model.to_state() == by_fast.to_state()


@pytest.mark.parametrize("depth", [1, 62, 63, 64, 150, 198, 199, 1000])
@pytest.mark.parametrize("kind", ["object", "array"])
def test_deeply_nested_extra_is_left_to_the_model(depth: int, kind: str) -> None:
    opener, closer = (b'{"a":', b"}") if kind == "object" else (b"[", b"]")
    nested = opener * depth + b"1" + closer * depth
    raw = _line()[:-1] + b',"extra":{"deep":' + nested + b"}}"  # extra is one level, the nesting inside it more
    assert _check_agreement(raw, depth) == (1 + depth <= MAX_EXTRA_DEPTH)


# -- to the detection worker: msgpack carries them equal ------------------------------------------------
def test_events_carried_to_the_detection_worker_arrive_equal(contract: Path) -> None:
    cases = {label: event for label, raw in _crafted(contract).items() if (event := _fast(raw)) is not None}
    with pytest.raises(OverflowError):  # past 64 bits: the one thing msgpack cannot carry (the line goes instead)
        encode_events([cases.pop("huge integer in extra")])
    accepted = list(cases.values())
    accepted.append(from_model(AccessEvent.model_validate_json(EDGE_CASES["whole float as a record count"])))
    assert len(accepted) >= 15
    assert decode_events(encode_events(accepted)) == accepted
    for event in accepted:
        (arrived,) = decode_events(encode_events([event]))
        assert repr(arrived) == repr(event)  # the same types too (an int stays an int, a tz stays UTC)
        assert arrived.timestamp.tzinfo is event.timestamp.tzinfo and arrived.outcome is event.outcome


def test_the_worker_reads_what_the_detectors_use_of_them_equal(contract: Path, settings) -> None:
    from accesswatch.app import build_engine

    cases = {label: event for label, raw in _crafted(contract).items() if (event := _fast(raw)) is not None}
    cases.pop("huge integer in extra")  # goes as its line (above)
    sent = [
        *cases.values(),
        *(decode_event(line) for line in contract.joinpath("sample-events.jsonl").read_bytes().splitlines()),
    ]
    arrived = decode_for_detection(encode_events(sent))
    assert len(arrived) == len(sent) >= 15
    for slim, event in zip(arrived, sent, strict=True):
        for name in DetectionEvent.__struct_fields__:
            # the same values of the same types (an int stays an int, a tz stays UTC, an enum its member)
            assert repr(getattr(slim, name)) == repr(getattr(event, name)), name
        assert slim.timestamp.tzinfo is event.timestamp.tzinfo and slim.outcome is event.outcome
        assert (slim.resource.key, slim.resource.kind, slim.is_egress) == (
            event.resource.key,
            event.resource.kind,
            event.is_egress,
        )
    by_fast, by_slim = build_engine(settings), build_engine(settings)
    assert by_fast.process(sent) == by_slim.process(arrived)
    assert by_fast.flush() == by_slim.flush()
    assert by_fast.to_state() == by_slim.to_state()


@settings(max_examples=300, deadline=None)
@given(extra=st.dictionaries(st.text(max_size=6), _json_values, max_size=4))
def test_any_extra_is_carried_equal_or_refused_for_the_lines_to_go_instead(extra: dict) -> None:
    event = decode_event(json.dumps({**BASE, "extra": extra}))
    try:
        data = encode_events([event])
    except (OverflowError, ValueError):
        return  # a 65-bit integer: the worker is sent the line instead (ingest.detection_worker)
    assert decode_events(data) == [event]


def test_an_integer_msgpack_cannot_hold_is_refused_not_mangled() -> None:
    event = decode_event(json.dumps({**BASE, "extra": {"n": 2**70}}))
    with pytest.raises(OverflowError):
        encode_events([event])
