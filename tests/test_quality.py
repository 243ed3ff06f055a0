"""Detection quality, measured: a simulated month replayed through the real pipeline, scored on its labels.

Two seeds the detectors were not tuned on (the budgets were set on seeds
7, 11 and 23), an organisation of 120 employees (about 110,000 events a
month: big enough for the behaviour model's histories, small enough for a
test).  The floors are generous enough to be stable and strict enough to
fail on a regression: on these seeds the rules alone miss the slow ramp at
medium, and the behaviour model is what finds it.

Figures at the time of writing, for the record (seed 3 / seed 5): false
actor-days per 1,000 at >= medium 1.00 / 1.02 (the rules alone 0.33 / 0.68;
9.86 on seed 5 before the volume rules compared an hour with the actor's
usual peak hour), at >= high 0.00 / 0.00; the naive z-score rule 41 / 51
at >= medium.  The ceilings are the issue's targets.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from accesswatch import app
from accesswatch.evaluate import MODEL_DETECTOR, FloorResult, evaluate
from configs.loader import load_settings
from detectors.model_store import ModelStore
from detectors.zscore_baseline import replay_alerts
from ingest.simulator import SimulationSettings, write_simulation
from ingest.sources import FileSource
from models.alert import Alert, Severity
from store.base import AlertQuery

SEEDS = (3, 5)
EMPLOYEES = 120


@dataclass
class Outcome:
    labels: dict
    alerts: list[Alert]
    product: dict[Severity, FloorResult]  # rules and the behaviour model, as shipped
    rules: dict[Severity, FloorResult]  # the same alerts without the behaviour model's
    naive: dict[Severity, FloorResult]  # the naive per-actor z-score rule on the same events
    models: int


def _by_floor(results: list[FloorResult]) -> dict[Severity, FloorResult]:
    return {result.floor: result for result in results}


@pytest.fixture(scope="module", params=SEEDS, ids=[f"seed{seed}" for seed in SEEDS])
def outcome(request, tmp_path_factory) -> Outcome:
    root = tmp_path_factory.mktemp(f"quality{request.param}")
    write_simulation(root / "sim", SimulationSettings(seed=request.param, days=30, employees=EMPLOYEES))
    settings = load_settings(env={}, overrides={"data_dir": str(root / "data")})
    zone = settings.organisation.tz
    with app.open_store(settings) as store:
        pipeline = app.build_pipeline(settings, store, notifier=None)
        source = FileSource([str(root / "sim" / "events.jsonl")], settings.ingest.max_line_bytes)
        report = pipeline.run(source, close_windows=True)
        assert report.balanced and report.dead_letters == 0
        alerts = store.query_alerts(AlertQuery(limit=1_000_000))
        active = store.active_actor_days(zone)
        naive = replay_alerts(settings, store)
    labels = orjson.loads((root / "sim" / "labels.json").read_bytes())
    rules = [alert for alert in alerts if alert.detector != MODEL_DETECTOR]
    return Outcome(
        labels=labels,
        alerts=alerts,
        product=_by_floor(evaluate(labels, alerts, active, zone)),
        rules=_by_floor(evaluate(labels, rules, active, zone)),
        naive=_by_floor(evaluate(labels, naive, active, zone)),
        models=len(ModelStore(Path(settings.data_dir) / "models").artefacts(MODEL_DETECTOR)),
    )


@pytest.mark.slow
def test_every_scenario_is_detected_at_medium_or_above(outcome):
    medium = outcome.product[Severity.MEDIUM]
    assert len(medium.scenarios) == 7
    assert [s.kind for s in medium.scenarios if not s.detected] == []


@pytest.mark.slow
def test_false_alarms_stay_under_the_ceilings(outcome):
    assert outcome.product[Severity.MEDIUM].false_per_1000 <= 3.0
    assert outcome.product[Severity.HIGH].false_per_1000 <= 1.0


@pytest.mark.slow
def test_no_high_alert_on_benign_periodic_work_new_hires_or_the_busy_day(outcome):
    high = outcome.product[Severity.HIGH]
    assert high.benign_alerts == {}, high.benign_examples


@pytest.mark.slow
def test_the_behaviour_model_finds_the_slow_ramp_the_rules_miss(outcome):
    ramp = next(s for s in outcome.product[Severity.MEDIUM].scenarios if s.kind == "slow_ramp")
    assert ramp.detected and MODEL_DETECTOR in ramp.detectors, ramp
    rules_ramp = next(s for s in outcome.rules[Severity.MEDIUM].scenarios if s.kind == "slow_ramp")
    if rules_ramp.detected:  # should the rules learn to see it, the model must not be the slower one by days
        assert ramp.hours_to_detect <= rules_ramp.hours_to_detect + 24
    assert outcome.models >= 4  # hourly and daily models, refit weekly, written to the data dir


@pytest.mark.slow
def test_the_behaviour_model_adds_few_false_alarms_to_the_rules(outcome):
    for floor, allowance in ((Severity.MEDIUM, 1.5), (Severity.HIGH, 0.5)):
        added = outcome.product[floor].false_per_1000 - outcome.rules[floor].false_per_1000
        assert added <= allowance, (floor, added)
    # it never pages as critical: the model says "unusual", not "malicious"
    assert not [a for a in outcome.alerts if a.detector == MODEL_DETECTOR and a.severity is Severity.CRITICAL]


@pytest.mark.slow
def test_the_product_beats_a_naive_zscore_rule_on_recall_and_false_alarms(outcome):
    for floor in (Severity.MEDIUM, Severity.HIGH):
        product, naive = outcome.product[floor], outcome.naive[floor]
        assert product.detected >= naive.detected, floor
        assert product.false_per_1000 * 3 <= naive.false_per_1000, floor
    assert outcome.product[Severity.MEDIUM].detected > outcome.naive[Severity.MEDIUM].detected


def test_the_comparison_table_sets_alert_sets_side_by_side():
    from datetime import UTC, datetime, timedelta

    from accesswatch.evaluate import format_comparison
    from tests.factories import alert

    start = datetime(2026, 10, 20, 2, tzinfo=UTC)
    labels = {
        "scenarios": [
            {"scenario_id": "s", "kind": "slow_ramp", "actor_id": "emp-0001", "start": "2026-10-20T01:00:00Z",
             "end": "2026-10-21T01:00:00Z"},
        ],
        "benign": [],
    }
    hour = {"window_start": start, "window_end": start + timedelta(hours=1)}
    caught = alert(actor_id="emp-0001", severity=Severity.MEDIUM, **hour)
    noise = alert(actor_id="emp-0002", severity=Severity.HIGH, **hour)
    zone = UTC
    table = format_comparison(
        {
            "rules only": evaluate(labels, [], 1000, zone),
            "rules + model": evaluate(labels, [caught], 1000, zone),
            "naive z-score": evaluate(labels, [noise], 1000, zone),
        }
    )
    lines = table.splitlines()
    assert lines[0].split("|")[2:5] == ["    rules only ", " rules + model ", " naive z-score "]
    row = {line.split("|")[1].strip(): [cell.strip() for cell in line.split("|")[2:5]] for line in lines[2:]}
    assert row["scenarios detected at >= medium"] == ["0/1", "1/1", "0/1"]
    assert row["false actor-days per 1,000 at >= high"] == ["0.00", "0.00", "1.00"]
    assert row["slow_ramp: hours to detect at >= medium"] == ["missed", "2.0 h", "missed"]
