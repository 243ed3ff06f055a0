"""The product against ``shared/contract/``: the schema, the data classes, the alert record, the CLI.

The JSON Schema file and the pydantic model must accept exactly the same
events: every sample and a set of crafted invalid events go through both,
and any disagreement fails.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from configs.loader import load_settings
from models.alert import Alert
from models.event import AccessEvent


@pytest.fixture(scope="module")
def schema_validator(contract: Path) -> Draft202012Validator:
    schema = json.loads((contract / "access-event.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _model_accepts(raw: str) -> bool:
    try:
        AccessEvent.model_validate_json(raw)
    except ValidationError:
        return False
    return True


def _schema_accepts(validator: Draft202012Validator, raw: str) -> bool:
    try:
        document = json.loads(raw)
    except ValueError:
        return False
    return validator.is_valid(document)


def _samples(contract: Path) -> list[str]:
    return [line for line in (contract / "sample-events.jsonl").read_text().splitlines() if line.strip()]


def test_every_sample_event_is_valid_for_schema_and_model(contract, schema_validator):
    samples = _samples(contract)
    assert samples, "the contract ships sample events"
    for line in samples:
        assert _schema_accepts(schema_validator, line), line
        assert _model_accepts(line), line


def _mutations(base: dict) -> dict[str, object]:
    """Crafted events, each one edit away from a valid one; the label says what was done."""

    def edit(path: str, value: object = ..., delete: bool = False) -> dict:
        event = json.loads(json.dumps(base))
        target = event
        keys = path.split(".")
        for key in keys[:-1]:
            target = target[key]
        if delete:
            target.pop(keys[-1], None)
        else:
            target[keys[-1]] = value
        return event

    return {
        "missing event_id": edit("event_id", delete=True),
        "empty event_id": edit("event_id", ""),
        "long event_id": edit("event_id", "x" * 129),
        "numeric event_id": edit("event_id", 42),
        "unknown top-level key": {**base, "severity": "high"},
        "unknown actor key": edit("actor.email", "a@b.c"),
        "unknown resource key": edit("resource.owner", "x"),
        "timestamp without offset": edit("timestamp", "2026-11-02T09:15:30"),
        "timestamp with compact offset": edit("timestamp", "2026-11-02T09:15:30+0800"),
        "timestamp as a date": edit("timestamp", "2026-11-02"),
        "timestamp with a space": edit("timestamp", "2026-11-02 09:15:30Z"),
        "timestamp as a number": edit("timestamp", 1762074930),
        "impossible date": edit("timestamp", "2026-02-30T09:15:30Z"),
        "actor kind unknown": edit("actor.kind", "robot"),
        "actor without id": edit("actor.id", delete=True),
        "action unknown": edit("action", "steal"),
        "action in capitals": edit("action", "READ"),
        "record_count negative": edit("record_count", -1),
        "record_count too large": edit("record_count", 100_000_001),
        "record_count as string": edit("record_count", "5"),
        "record_count fractional": edit("record_count", 5.5),
        "record_count boolean": edit("record_count", True),
        "record_count whole float": edit("record_count", 5.0),  # valid for both: JSON Schema's integer
        "resource without system": edit("resource.system", delete=True),
        "empty resource type": edit("resource.type", ""),
        "fields not a list": edit("fields", "name"),
        "fields with a number": edit("fields", ["name", 3]),
        "too many fields": edit("fields", [f"f{i}" for i in range(513)]),
        "too many customer ids": edit("customer_ids", [f"c-{i}" for i in range(10_001)]),
        "outcome unknown": edit("outcome", "maybe"),
        "negative bytes": edit("bytes", -5),
        "extra is not an object": edit("extra", "free text"),
        "extra with anything inside": edit("extra", {"nested": {"deep": [1, 2, {"x": None}]}}),  # valid
        "null optional field": edit("purpose", None),
        "not an object": [base],
        "leap second": edit("timestamp", "2026-12-31T23:59:60Z"),
        "lower-case t and z": edit("timestamp", "2026-11-02t09:15:30.5z"),  # valid RFC 3339
        "nine fraction digits": edit("timestamp", "2026-11-02T09:15:30.123456789+05:45"),  # valid
    }


def test_schema_and_model_agree_on_crafted_events(contract, schema_validator):
    base = json.loads(_samples(contract)[2])
    disagreements = []
    for label, document in _mutations(base).items():
        raw = json.dumps(document)
        schema, model = _schema_accepts(schema_validator, raw), _model_accepts(raw)
        if schema != model:
            disagreements.append(f"{label}: schema {'accepts' if schema else 'rejects'}, model differs")
    assert not disagreements, disagreements


def test_the_crafted_set_has_both_valid_and_invalid_events(contract, schema_validator):
    base = json.loads(_samples(contract)[2])
    verdicts = [_schema_accepts(schema_validator, json.dumps(doc)) for doc in _mutations(base).values()]
    assert verdicts.count(True) >= 4 and verdicts.count(False) >= 25


def test_timestamps_are_normalised_to_utc(contract):
    event = AccessEvent.model_validate_json(_samples(contract)[0])
    assert event.timestamp.utcoffset().total_seconds() == 0
    assert event.timestamp.isoformat() == "2026-11-02T01:15:30.120000+00:00"


def _contract_classes(contract: Path) -> dict[str, tuple[str, list[str]]]:
    rows = {}
    for line in (contract / "data-classes.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[1] in {"low", "medium", "high"}:
            rows[cells[0]] = (cells[1], re.findall(r"`([^`]+)`", cells[2]))
    return rows


def test_default_classification_is_the_contracts(contract):
    expected = _contract_classes(contract)
    assert len(expected) == 6
    configured = load_settings(env={}).classification
    assert {name: (c.sensitivity, c.fields) for name, c in configured.classes.items()} == expected
    assert configured.unclassified_sensitivity == "low"


def _contract_alert_keys(contract: Path) -> set[str]:
    text = (contract / "README.md").read_text()
    section = text.split("## Output: alerts", 1)[1].split("## ", 1)[0]
    keys = set()
    for line in section.splitlines():
        for cell in re.findall(r"^\|\s*(.+?)\s*\|", line):
            keys.update(re.findall(r"`([a-z_]+)`", cell))
    return keys


def test_alert_records_carry_every_contract_key(contract):
    keys = _contract_alert_keys(contract)
    assert {"alert_id", "detector", "severity", "evidence", "window_start"} <= keys
    from tests.factories import alert

    record = alert().to_record()
    assert keys <= set(record)
    assert record["severity"] in {"low", "medium", "high", "critical"}
    assert record["actor_kind"] in {"employee", "partner", "service"}
    assert record["window_start"].endswith("Z") and isinstance(record["score"], float)
    assert Alert.model_validate(record).to_record() == record  # the record reads back as itself


def _accesswatch(*args: str, env_data: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "accesswatch.cli", *args, "--data-dir", str(env_data)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_replay_and_alerts_commands_as_the_contract_says(contract, tmp_path):
    data = tmp_path / "data"
    first = _accesswatch("replay", str(contract / "sample-events.jsonl"), env_data=data)
    assert first.returncode == 0, first.stderr
    assert "stored 5" in first.stdout and "dead letters 0" in first.stdout
    again = _accesswatch("replay", str(contract / "sample-events.jsonl"), env_data=data)
    assert again.returncode == 0 and "stored 0, duplicates 5" in again.stdout
    listed = _accesswatch("alerts", "--format", "jsonl", env_data=data)
    assert listed.returncode == 0, listed.stderr
    keys = _contract_alert_keys(contract)
    for line in filter(None, listed.stdout.splitlines()):
        assert keys <= set(json.loads(line))
    for severity in ("low", "medium", "high", "critical"):
        assert _accesswatch("alerts", "--min-severity", severity, env_data=data).returncode == 0
