"""Detection quality, measured: a simulated month replayed through the real pipeline, scored on its labels.

Two seeds the detectors were not tuned on (the budgets were set on seeds
7, 11 and 23), an organisation of 120 employees (about 110,000 events a
month: big enough for the behaviour model's histories, small enough for a
test).  The floors are generous enough to be stable and strict enough to
fail on a regression: on these seeds the behaviour model finds the slow ramp
first, at medium; the ``ramp`` rule finds it a day or so later and is what
pages it (before that rule the rules alone missed it, and nothing paged it).

Figures at the time of writing, for the record (seed 3 / seed 5): false
actor-days per 1,000 at >= medium 1.00 / 0.68 (the rules alone 0.33 / 0.34;
9.86 on seed 5 before the volume rules compared an hour with the actor's
usual peak hour, 0.68 before that peak was its peer group's where higher),
at >= high 0.00 / 0.00; the naive z-score rule 41 / 51 at >= medium.  The
``ramp`` rule added nothing to them; it found the slow ramp at >= high after
182.3 / 155.4 hours, which nothing found at high before.  The ceilings are the
issue's targets.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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
from models.event import format_utc, parse_rfc3339
from store.base import AlertQuery
from tests.factories import alert as make_alert

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
def test_alerts_are_listed_oldest_first_by_the_start_they_grew_to(outcome):
    # the contract's order for ``alerts``; an hour's finding merged into its day starts earlier than it did
    starts = [alert.window_start for alert in outcome.alerts]
    assert starts == sorted(starts)
    assert any(alert.revision > 1 for alert in outcome.alerts)


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
def test_the_ramp_rule_pages_the_slow_ramp(outcome):
    ramp = next(s for s in outcome.product[Severity.HIGH].scenarios if s.kind == "slow_ramp")
    assert ramp.detected and "ramp" in ramp.detectors, ramp
    # the scenario climbs over eight working days (about eleven calendar days): found within twelve of its start
    assert ramp.hours_to_detect <= 12 * 24, ramp
    ramp_alerts = [a for a in outcome.alerts if a.detector == "ramp"]
    assert {a.actor_id for a in ramp_alerts} <= {s["actor_id"] for s in outcome.labels["scenarios"]}


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
            {
                "scenario_id": "s",
                "kind": "slow_ramp",
                "actor_id": "emp-0001",
                "start": "2026-10-20T01:00:00Z",
                "end": "2026-10-21T01:00:00Z",
            },
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


# -- how evaluate counts (no replay: alerts built by hand) ------------------------------------------------------------
def _grown(actor_id: str, *findings: tuple[str, str, Severity], kept_of: int | None = None) -> Alert:
    """An alert grown from ``findings`` (start, end, severity; UTC 'MM-DDTHH', in the order raised), as
    ``detectors.alerts.AlertBook`` grows one; ``kept_of``: the findings there were, when some after the first
    fell out of the evidence."""

    def at(text: str) -> datetime:
        return parse_rfc3339(f"2026-{text}:00:00Z")

    spans = [[format_utc(at(start)), format_utc(at(end)), 5.0, severity.value] for start, end, severity in findings]
    return make_alert(
        actor_id=actor_id,
        severity=max((severity for _, _, severity in findings), key=lambda severity: severity.rank),
        window_start=min(at(start) for start, _, _ in findings),
        window_end=max(at(end) for _, end, _ in findings),
        evidence={"event_ids": ["e1"], "findings": kept_of or len(findings), "spans": spans},
    )


HOUR = timedelta(hours=1)
SCENARIO = {
    "scenario_id": "s",
    "kind": "bulk_exfiltration",
    "actor_id": "emp-0001",
    "start": "2026-10-20T01:00:00Z",
    "end": "2026-10-20T03:00:00Z",
}
LABELS = {"scenarios": [SCENARIO], "benign": []}


def _scenario_at(alerts: list[Alert]) -> dict:
    return {result.floor: result.scenarios[0] for result in evaluate(LABELS, alerts, 1000, UTC)}


def test_hours_to_detect_run_to_the_earliest_finding_at_the_floor_not_to_the_merged_alerts_end():
    grown = _grown(
        "emp-0001",
        ("10-20T02", "10-20T03", Severity.LOW),
        ("10-20T03", "10-20T04", Severity.MEDIUM),
        ("10-20T04", "10-20T05", Severity.HIGH),
        ("10-20T05", "10-20T06", Severity.MEDIUM),
    )
    found = _scenario_at([grown])
    # the alert ends at 06:00; each floor was reached by a finding closing at 03:00, 04:00 and 05:00
    assert [found[floor].hours_to_detect for floor in (Severity.LOW, Severity.MEDIUM, Severity.HIGH)] == [2.0, 3.0, 4.0]
    assert found[Severity.MEDIUM].best_severity == "high"


def test_a_severity_counts_only_from_the_finding_that_reached_it():
    # medium while the scenario runs; high two days later, past the day of slack: not a detection at high
    late = _grown("emp-0001", ("10-20T02", "10-20T03", Severity.MEDIUM), ("10-22T10", "10-22T11", Severity.HIGH))
    found = _scenario_at([late])
    assert found[Severity.MEDIUM].detected and found[Severity.MEDIUM].best_severity == "medium"
    assert not found[Severity.HIGH].detected
    # someone else's alert, medium for three days and high on the third: three false days at medium, one at high
    noise = _grown(
        "emp-0002",
        ("10-24T02", "10-24T03", Severity.MEDIUM),
        ("10-25T02", "10-25T03", Severity.MEDIUM),
        ("10-26T02", "10-26T03", Severity.HIGH),
    )
    by_floor = {result.floor: result for result in evaluate(LABELS, [noise], 1000, UTC)}
    assert (by_floor[Severity.MEDIUM].false_actor_days, by_floor[Severity.HIGH].false_actor_days) == (3, 1)


def test_findings_that_fell_out_of_the_alert_count_only_for_what_is_known_of_them():
    # 10 findings: the opening one (low), two that fell out of the evidence, then seven kept, all medium
    opening = ("10-20T02", "10-20T03", Severity.LOW)
    kept = [(f"10-20T{hour:02d}", f"10-20T{hour + 1:02d}", Severity.MEDIUM) for hour in range(5, 12)]
    medium = _grown("emp-0001", opening, *kept, kept_of=10)
    found = _scenario_at([medium])
    assert found[Severity.LOW].hours_to_detect == 2.0  # the opening finding
    # the lost ones (04:00-05:00 at the latest) may have been medium too, but that is not known: medium counts
    # from the first kept medium finding, which closed at 06:00
    assert found[Severity.MEDIUM].hours_to_detect == 5.0
    # an alert that is high with no kept finding at high reached it among the lost ones, by the time the first
    # finding kept after them closed
    high = medium.model_copy(update={"severity": Severity.HIGH})
    assert _scenario_at([high])[Severity.HIGH].hours_to_detect == 5.0


def test_an_alert_without_findings_is_one_finding_over_its_window():
    start = parse_rfc3339("2026-10-20T02:00:00Z")
    plain = make_alert(actor_id="emp-0001", severity=Severity.HIGH, window_start=start, window_end=start + 3 * HOUR)
    assert _scenario_at([plain])[Severity.HIGH].hours_to_detect == 4.0


@pytest.mark.parametrize("count, expected", [(0, None), (1, "1 dead letter,"), (55_668, "55,668 dead letters")])
def test_evaluate_warns_in_one_line_when_the_store_holds_dead_letters(count, expected):
    import io
    from types import SimpleNamespace

    from accesswatch.evaluate import dead_letter_warning, warn_dead_letters

    message = dead_letter_warning(count)
    stream = io.StringIO()
    store = SimpleNamespace(stats=lambda: SimpleNamespace(dead_letters=count))
    assert warn_dead_letters(store, stream) == count
    if expected is None:
        assert message is None and stream.getvalue() == ""
    else:
        assert message is not None and expected in message and "\n" not in message
        assert stream.getvalue() == message + "\n"
        assert "max_future_skew" in message  # the usual cause in a replay of a simulation
