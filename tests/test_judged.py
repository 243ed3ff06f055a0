"""The detection worker's decoding of validated lines reads every event as the model does."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from detectors.judged import decode_validated
from models.event import AccessEvent
from tests.factories import event_dict

# every attribute the engine and the windows read of an event
READ = ("event_id", "action", "record_count", "customer_ids", "fields", "purpose", "source_ip", "outcome")
ACTOR = ("id", "kind", "role", "department", "organization")
RESOURCE = ("system", "type", "id", "kind", "key")

BASE = {
    "event_id": "e-1",
    "timestamp": "2026-11-02T09:15:30.250+08:00",
    "actor": {"id": "emp-1", "kind": "employee", "role": "agent", "department": "sales", "organization": "acme"},
    "action": "export",
    "resource": {"system": "crm", "type": "customer_record", "id": "R1"},
    "record_count": 12,
    "customer_ids": ["c-1", "c-2"],
    "fields": ["name", "passport_number"],
    "source_ip": "10.0.0.1",
    "purpose": "TICKET-9",
    "outcome": "denied",
}


def _variants() -> list[bytes]:
    minimal = {key: BASE[key] for key in ("event_id", "timestamp", "actor", "action", "resource", "record_count")}
    minimal["actor"] = {"id": "svc-1", "kind": "service"}
    minimal["resource"] = {"system": "crm", "type": "export"}
    return [
        orjson.dumps(BASE),
        orjson.dumps(minimal),  # every optional field absent: the model's defaults
        orjson.dumps({**BASE, "timestamp": "2026-11-02t01:15:30z"}),  # lower-case "t" and "z"
        orjson.dumps({**BASE, "timestamp": "2026-03-29T01:59:59.999999-05:30"}),
        orjson.dumps({**BASE, "record_count": 7.0}),  # JSON Schema's integer
        orjson.dumps({**BASE, "fields": [], "customer_ids": []}),
        orjson.dumps({**BASE, "actor": {"id": "p\u00e9-\u4e2d", "kind": "partner", "organization": "blue sky"}}),
        # of a repeated key, the last: as the model reads it
        b'{"event_id":"e-2","event_id":"e-3","timestamp":"2026-11-02T09:15:30Z","actor":{"id":"a","kind":"employee"},'
        b'"action":"read","action":"print","resource":{"system":"s","type":"t"},"record_count":1}',
        b'{"event_id":"e-\\u00e9\\n","timestamp":"2026-11-02T09:15:30Z","actor":{"id":"a\\"b","kind":"employee"},'
        b'"action":"read","resource":{"system":"s","type":"t","id":"x"},"record_count":1,"extra":{"n":1.5}}',
    ]


def _lines(contract: Path) -> list[bytes]:
    samples = [line for line in (contract / "sample-events.jsonl").read_bytes().splitlines() if line.strip()]
    accepted = []
    for line in samples:
        try:
            AccessEvent.model_validate_json(line)
        except ValueError:
            continue  # the samples' invalid lines are dead letters: never sent to be judged
        accepted.append(line)
    assert accepted, "the contract's samples have valid events"
    return accepted + _variants() + [orjson.dumps(event_dict())]


def test_every_attribute_read_is_the_models(contract: Path) -> None:
    for line in _lines(contract):
        model = AccessEvent.model_validate_json(line)
        judged = decode_validated(line)
        for name in READ:
            assert getattr(judged, name) == getattr(model, name), (name, line)
            assert type(getattr(judged, name)) is type(getattr(model, name)), (name, line)
        for name in ACTOR:
            assert getattr(judged.actor, name) == getattr(model.actor, name), ("actor", name, line)
        for name in RESOURCE:
            assert getattr(judged.resource, name) == getattr(model.resource, name), ("resource", name, line)
        assert judged.timestamp.timestamp() == model.timestamp.timestamp(), line
        assert judged.action.is_egress == model.action.is_egress


def test_enum_members_are_the_models_own() -> None:
    # the windows compare outcomes by identity (``outcome is Outcome.DENIED``)
    judged = decode_validated(orjson.dumps(BASE))
    model = AccessEvent.model_validate_json(orjson.dumps(BASE))
    assert judged.outcome is model.outcome
    assert judged.action is model.action
    assert judged.actor.kind is model.actor.kind


@pytest.mark.parametrize("line", _variants()[:3])
def test_the_engine_judges_both_alike(line: bytes, settings) -> None:
    from accesswatch.app import build_engine

    by_model, by_decoding = build_engine(settings), build_engine(settings)
    by_model.process([AccessEvent.model_validate_json(line)])
    by_decoding.process([decode_validated(line)])
    assert by_model.to_state() == by_decoding.to_state()
