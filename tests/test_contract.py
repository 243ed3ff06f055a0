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
from tests.contract_cases import crafted_events


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


def test_schema_and_model_agree_on_crafted_events(contract, schema_validator):
    base = json.loads(_samples(contract)[2])
    disagreements = []
    for label, document in crafted_events(base).items():
        raw = json.dumps(document)
        schema, model = _schema_accepts(schema_validator, raw), _model_accepts(raw)
        if schema != model:
            disagreements.append(f"{label}: schema {'accepts' if schema else 'rejects'}, model differs")
    assert not disagreements, disagreements


def test_the_crafted_set_has_both_valid_and_invalid_events(contract, schema_validator):
    base = json.loads(_samples(contract)[2])
    verdicts = [_schema_accepts(schema_validator, json.dumps(doc)) for doc in crafted_events(base).values()]
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
