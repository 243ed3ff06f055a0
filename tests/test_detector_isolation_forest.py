"""``isolation_forest``: the behaviour model, its estimator, its calibration and its artefacts.

Detector stories run on the real engine (``tests.detector_harness``): a team
of customer-service agents with day-to-day variation reads in office hours
on weekdays from Monday 2 November; the system warms up for a week, the
model needs five days of learned history (so the first model is fit at the
close of Friday 13 November), and anomalies come after.
"""

from __future__ import annotations

import logging
import pickle
import random
import re
import subprocess
import sys
from datetime import UTC, datetime

import numpy as np
import orjson
import pytest
from pydantic import ValidationError
from sklearn.ensemble import IsolationForest

from detectors import features
from detectors.forest import Budgets, Calibration, WindowForest
from detectors.isolation_forest import IsolationForestDetector, _rarity
from detectors.model_store import (
    ArtefactError,
    FeatureMismatch,
    ModelArtefact,
    ModelStore,
    version_name,
)
from detectors.registry import build_detectors
from detectors.state_codec import decode_state, encode_state
from models.alert import Severity
from tests.detector_contract import DetectorContract
from tests.detector_harness import (
    Actor,
    burst,
    describe,
    local,
    run,
    settings_with,
    stream,
    team,
)

NAME = "isolation_forest"
# 40 agents have the 200 actor-days of history the default configuration needs within five days; a team this
# small gets budgets of its own (two alerts a week at medium), as it would in production: the default budgets
# are finer than a few hundred actor-days of history can tell apart
BUDGET = {"low": 20.0, "medium": 8.0, "high": 4.0}
CONFIG: dict = {NAME: {"budget": BUDGET, "daily_budget": BUDGET}}
TEAM = team(40)
INSIDER = TEAM[0]


def routine(agents: list[Actor], first_day: int, last_day: int, seed: int = 1) -> list[dict]:
    """Office hours on weekdays; each agent has a pace of its own, busier and quieter days, and uneven hours."""
    accesses = []
    for agent in agents:
        rng = random.Random(f"{seed}-{agent.id}")
        pace = rng.uniform(1.5, 5.0)
        for day in range(first_day, last_day):
            busy = rng.lognormvariate(0.0, 0.3)
            if local(day).weekday() >= 5:
                continue
            for hour in range(9, 18):
                events = round(pace * busy * rng.uniform(0.4, 1.6))
                if events:
                    accesses += burst(agent, local(day, hour, 5), events, rng.choice((1, 1, 1, 2, 3, 5)))
    return accesses


def insider_story(day: int = 16, customers: int = 2000) -> list:
    """Three weeks of routine; on ``day`` at 10:00 the insider reads ``customers`` distinct customers."""
    return stream(
        routine(TEAM, 0, 21),
        burst(INSIDER, local(day, 10, 10), events=20, records=customers // 20),
    )


def forest_alerts(result, actor_id: str | None = None):
    return [a for a in result.alerts if a.detector == NAME and (actor_id is None or a.actor_id == actor_id)]


@pytest.fixture(scope="module")
def insider_run():
    return run(insider_story(), NAME, config=CONFIG)


# -- the shared interface ---------------------------------------------------------------------------------


class TestContract(DetectorContract):
    detector = IsolationForestDetector
    scales = ("short", "long")  # hours and days
    bad_values = [
        ("n_estimators", 0, "greater than or equal to 10"),
        ("max_samples", 1, "greater than or equal to 16"),
        ("random_state", -1, "greater than or equal to 0"),
        ("history", "soon", "a duration"),
        ("budget", {"low": 1.0, "medium": 2.0, "high": 0.1}, "must not grow with severity"),
        ("daily_budget", {"low": 0.0, "medium": 0.0, "high": 0.0}, "greater than 0"),
        ("explain", 0, "greater than or equal to 1"),
    ]
    # restarts go through the JSON checkpoint with no model directory: the models are fit again, identically
    run_options = {"config": CONFIG}
    severity_from_scores = False  # calibrated to the budgets on the training history

    def story(self):
        return insider_story()


# -- what it finds and how it says it -------------------------------------------------------------------------


def test_an_unusual_hour_is_flagged_and_explained_by_value_baseline_and_peers(insider_run):
    alerts = forest_alerts(insider_run, INSIDER.id)
    assert len(alerts) == 1, [describe(a) for a in insider_run.alerts]
    alert = alerts[0]
    assert alert.severity.at_least(Severity.MEDIUM), describe(alert)
    assert alert.window_start <= local(16, 10) < alert.window_end
    figures = {item["figure"]: item for item in alert.evidence["explanation"]}
    customers = figures["customers"]  # the burst's 2,000 and a few of the hour's routine reads
    assert 2000 <= customers["value"] <= 2020 and customers["value"] == alert.evidence["distinct_customers"]
    assert customers["baseline_from"] in ("own", "own rhythm", "own weekday") and 1 <= customers["baseline"] <= 40
    assert customers["ratio"] > 50
    assert customers["peer_percentile"] == 100.0 and customers["peers_active"] == 39
    # the count beside the percentile: "more than all 39 others", where "above 100% of the 39" read oddly
    assert customers["peers_below"] == 39
    shown = f"{customers['value']:,.0f}"
    # the multiple is the figure over the usual as printed: a reader's own division agrees with the sentence
    said = re.search(rf"read {shown} distinct customers, ([\d,.]+)x their usual[^,]* of ([\d,.]+)", alert.summary)
    assert said is not None, alert.summary
    multiple, usual = (float(group.replace(",", "")) for group in said.groups())
    assert usual == pytest.approx(customers["baseline"], abs=0.51)
    assert multiple == pytest.approx(customers["value"] / usual, rel=0.02)
    assert "more than every other customer service employee active that hour" in alert.summary
    assert alert.evidence["model"].startswith("isolation_forest-short-")
    assert alert.evidence["training_actor_days"] >= 200
    assert 0 < alert.evidence["anomaly_score"] <= 1
    # the score is the rarity: one actor-day in 10 ** score, beyond all 240 the model learned from
    assert alert.score == pytest.approx(np.log10(1000 / alert.evidence["expected_per_1000_actor_days"]), abs=1e-3)
    assert alert.score > np.log10(alert.evidence["training_actor_days"])


def test_routine_work_stays_within_the_budget():
    result = run(stream(routine(TEAM, 0, 21)), NAME, config=CONFIG)
    judged = 40 * 5  # actor-days scored: the week after the first model
    for severity in (Severity.LOW, Severity.MEDIUM, Severity.HIGH):
        flagged = {(a.actor_id, a.window_start.date()) for a in forest_alerts(result) if a.severity.at_least(severity)}
        # the budget holds on the training history; on new days, allow twice as much (and one) for chance
        assert len(flagged) <= 2 * BUDGET[severity.value] * judged / 1000 + 1, [describe(a) for a in result.alerts]


def test_no_alert_before_the_minimum_history():
    # day 9 is within the five days of learned history the first model waits for (the hourly model is fit at
    # the close of Friday 13 November, day 11; the daily one when it has 200 actor-days, on Monday 16)
    result = run(insider_story(day=9), NAME, config=CONFIG)
    alerts = forest_alerts(result)
    assert not forest_alerts(result, INSIDER.id), [describe(a) for a in alerts]
    assert all(a.window_start >= local(12) for a in alerts), [describe(a) for a in alerts]


def test_a_new_actor_is_scored_against_its_peers():
    newcomer = Actor("emp-0100", ip="10.0.9.9")
    events = stream(
        routine(TEAM, 0, 21),
        routine([newcomer], 15, 21),
        burst(newcomer, local(16, 10, 10), events=20, records=100),
    )
    alerts = forest_alerts(run(events, NAME, config=CONFIG), newcomer.id)
    assert alerts, "the newcomer's bulk read went unseen"
    explained = [item for alert in alerts for item in alert.evidence["explanation"] if item["baseline"] is not None]
    assert explained and {item["baseline_from"] for item in explained} == {"peers"}
    assert "their peers' usual" in alerts[0].summary


def test_alone_the_model_asks_for_review_and_it_pages_only_when_a_rule_agrees(insider_run):
    said = [f.severity for f in insider_run.findings if f.actor.id == INSIDER.id and f.evidence["scale"] == "short"]
    assert said == [Severity.HIGH]  # what the model made of the hour: rarer than anything it learned from
    alert = forest_alerts(insider_run, INSIDER.id)[0]
    assert alert.severity is Severity.MEDIUM, describe(alert)
    assert alert.evidence["alone"] == {"severity": "high", "at_most": "medium"}
    assert "; no rule found anything on them then, so medium" in alert.summary
    # with the volume rule, which pages the same hour, the model's alert is high, whichever detector runs first
    for detectors in ([NAME, "bulk_read"], ["bulk_read", NAME]):
        both = run(insider_story(), detectors, config=CONFIG)
        rule = [a for a in both.alerts if a.detector == "bulk_read" and a.actor_id == INSIDER.id]
        assert rule and rule[0].severity.at_least(Severity.MEDIUM), [describe(a) for a in both.alerts]
        model = forest_alerts(both, INSIDER.id)
        assert [a.severity for a in model] == [Severity.HIGH] and "alone" not in model[0].evidence, detectors


@pytest.mark.parametrize(
    "rule_hours, rule_severity, agrees",
    [
        ((9, 10), Severity.MEDIUM, True),  # ended an hour before the model's hour: within the merge gap
        ((14, 15), Severity.HIGH, True),  # began two hours after it: within the gap too (an open alert)
        ((6, 7), Severity.CRITICAL, False),  # ended four hours before
        ((11, 12), Severity.LOW, False),  # a rule's low finding (a first touch peers share) is no agreement
    ],
)
def test_a_rule_agrees_with_a_finding_on_the_same_actor_at_medium_or_more_within_the_merge_gap(
    rule_hours, rule_severity, agrees
):
    from detectors.base import Finding
    from detectors.engine import DetectionEngine
    from detectors.windows import ActorRef
    from models.event import ActorKind
    from tests.detector_harness import detectors_for

    settings = settings_with()
    actor = ActorRef("emp-0001", ActorKind.EMPLOYEE, "customer_service")

    def engine() -> DetectionEngine:
        return DetectionEngine(settings, detectors_for(settings, [NAME, "bulk_read"]))

    def finding(detector: str, hours: tuple[int, int], severity: Severity, who: ActorRef = actor) -> Finding:
        start, end = (local(16, hour).timestamp() for hour in hours)
        return Finding(detector, who, start, end, 5.0, severity, "Something.", {"event_ids": ["e1"]})

    model = finding(NAME, (11, 12), Severity.HIGH)
    expected = Severity.HIGH if agrees else Severity.MEDIUM
    # the rule's alert is still open, from an earlier period
    earlier = engine()
    earlier.book.add(finding("bulk_read", rule_hours, rule_severity))
    assert [f.severity for f in earlier._corroborated([model])] == [expected]
    # the rule's finding is in the same period
    same = engine()._corroborated([finding("bulk_read", rule_hours, rule_severity), model])
    assert [f.severity for f in same] == [rule_severity, expected]
    # about someone else, it agrees with nothing
    someone = ActorRef("emp-0002", ActorKind.EMPLOYEE, "customer_service")
    apart = engine()._corroborated([finding("bulk_read", rule_hours, rule_severity, someone), model])
    assert apart[1].severity is Severity.MEDIUM


# -- artefacts and checkpoints ----------------------------------------------------------------------------------


def test_models_are_written_with_their_description_and_loaded_after_a_restart(tmp_path):
    settings = settings_with()
    section = {**settings.detectors[NAME], **CONFIG[NAME]}
    (detector,) = build_detectors({NAME: section}, data_dir=tmp_path)
    from detectors.engine import DetectionEngine

    engine = DetectionEngine(settings, [detector])
    engine.process(insider_story())
    engine.flush()
    store = ModelStore(tmp_path / "models")
    artefacts = store.artefacts(NAME)
    assert {a.scale for a in artefacts} == {"short", "long"}
    first = artefacts[0]
    assert first.features == list(features.FEATURES)
    assert first.params == {"n_estimators": 100, "max_samples": 256, "random_state": 7}
    # the hourly model at the close of Friday 13 (local), five days after the warm-up; the daily model once its
    # history holds 200 actor-days (the warm-up ended on Monday morning: Monday 9 is not a whole learned day)
    assert first.scale == "short" and first.trained_to == datetime(2026, 11, 13, 16, tzinfo=UTC)
    assert next(a.trained_to for a in artefacts if a.scale == "long") == datetime(2026, 11, 16, 16, tzinfo=UTC)
    assert first.trained_from < first.trained_to and first.windows >= first.actor_days >= 200
    assert set(first.thresholds) == {"low", "medium", "high"} and first.sha256

    state = decode_state(encode_state(engine.to_state()))
    (restarted,) = build_detectors({NAME: section}, data_dir=tmp_path)
    restarted.load_state(state["detectors"][NAME])
    for scale in ("short", "long"):
        assert restarted.artefacts[scale] == detector.artefacts[scale]  # read back, not fit again
        window = np.random.default_rng(0).random((5, len(features.FEATURES))).astype(np.float32)
        np.testing.assert_array_equal(
            restarted.models[scale].forest.score_samples(window), detector.models[scale].forest.score_samples(window)
        )

    # ``accesswatch models`` lists them, newest last
    listed = subprocess.run(
        [sys.executable, "-m", "accesswatch.cli", "models", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert [line.split()[0] for line in listed.splitlines()[1 : 1 + len(artefacts)]] == [a.version for a in artefacts]
    assert f"{len(artefacts)} models in {tmp_path / 'models'}" in listed and "features: records, customers" in listed


def test_a_model_file_of_other_features_is_refused_at_restart_and_fit_again(tmp_path, caplog):
    settings = settings_with()
    section = {**settings.detectors[NAME], **CONFIG[NAME]}
    (detector,) = build_detectors({NAME: section}, data_dir=tmp_path)
    from detectors.engine import DetectionEngine

    engine = DetectionEngine(settings, [detector])
    engine.process(insider_story())
    state = decode_state(encode_state(engine.to_state()))["detectors"][NAME]
    version = detector.artefacts["short"].version
    description = tmp_path / "models" / f"{version}.json"
    altered = orjson.loads(description.read_bytes())
    altered["features"] = altered["features"][:-1]  # as if written by a build without unusual_hours
    description.write_bytes(orjson.dumps(altered))

    (restarted,) = build_detectors({NAME: section}, data_dir=tmp_path)
    with caplog.at_level(logging.WARNING, logger="detectors.isolation_forest"):
        restarted.load_state(state)
    assert f"model {version} was trained on {len(features.FEATURES) - 1} features" in caplog.text
    assert "gone" not in caplog.text and "new: unusual_hours" in caplog.text
    # not used: fit again from the checkpointed history, the same trees as before
    window = np.random.default_rng(1).random((5, len(features.FEATURES))).astype(np.float32)
    np.testing.assert_array_equal(
        restarted.models["short"].forest.score_samples(window), detector.models["short"].forest.score_samples(window)
    )


def test_a_checkpoint_of_other_features_is_refused_and_the_model_starts_afresh(insider_run, caplog):
    state = decode_state(encode_state(insider_run.engine.to_state()))["detectors"][NAME]
    state["features"] = [*state["features"], "records_on_tuesdays"]
    (detector,) = build_detectors({NAME: CONFIG[NAME]})
    with caplog.at_level(logging.WARNING, logger="detectors.isolation_forest"):
        detector.load_state(state)
    assert detector.models == {"short": None, "long": None}
    assert detector.last_fit == {"short": None, "long": None}
    assert "refusing the checkpointed history and models" in caplog.text


def test_the_checkpointed_history_is_bounded():
    settings = {"max_training_windows": 1000, "history": "14d", "min_training_actor_days": 50}
    result = run(insider_story(), NAME, config={NAME: settings})
    (detector,) = [d for d in result.engine.detectors if d.name == NAME]
    per_day = 1000 / 14
    for history in detector.histories.values():
        whole_days = list(history.buckets.values())[:-1]  # the day still open may run over until it closes
        for bucket in whole_days:
            assert len(bucket) <= 1.5 * per_day + 10  # whole actor-days, so about its share
        assert sum(len(bucket) for bucket in whole_days) <= 1.2 * 1000
    short = detector.histories["short"]
    assert min(bucket.keep_rate for bucket in short.buckets.values()) < 0.5  # it did have to choose


# -- the estimator ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def windows() -> np.ndarray:
    rng = np.random.default_rng(7)
    X = rng.gamma(2.0, 1.0, size=(3000, 6)).astype(np.float32)
    X[:5] += 12.0  # five obvious outliers
    return X


@pytest.mark.parametrize(
    "params, name",
    [
        ({"n_estimators": 0}, "n_estimators"),
        ({"max_samples": 1}, "max_samples"),
        ({"random_state": -3}, "random_state"),
    ],
)
def test_estimator_parameters_are_validated(windows, params, name):
    with pytest.raises(ValidationError, match=name):
        WindowForest(**params).fit(windows)


def test_scores_are_scikit_learns_isolation_forest_scores(windows):
    forest = WindowForest(n_estimators=50, max_samples=128, random_state=3).fit(windows)
    reference = IsolationForest(n_estimators=50, max_samples=128, random_state=3).fit(windows)
    np.testing.assert_array_equal(forest.score_samples(windows), reference.score_samples(windows))
    few = windows[:40]  # fewer windows than max_samples: scikit-learn's own rule
    np.testing.assert_array_equal(
        WindowForest(max_samples=256, random_state=3).fit(few).score_samples(windows),
        IsolationForest(max_samples=40, random_state=3).fit(few).score_samples(windows),
    )


def test_the_outliers_score_highest(windows):
    anomaly = WindowForest(random_state=1).fit(windows).anomaly(windows)
    assert set(np.argsort(-anomaly)[:5]) == {0, 1, 2, 3, 4}


def test_the_same_random_state_fits_the_same_trees_and_another_does_not(windows):
    first = WindowForest(random_state=11).fit(windows).score_samples(windows)
    np.testing.assert_array_equal(first, WindowForest(random_state=11).fit(windows).score_samples(windows))
    assert not np.array_equal(first, WindowForest(random_state=12).fit(windows).score_samples(windows))


def test_a_pickled_forest_scores_the_same(windows):
    forest = WindowForest(random_state=5).fit(windows)
    restored = pickle.loads(pickle.dumps(forest))
    np.testing.assert_array_equal(restored.score_samples(windows), forest.score_samples(windows))


def test_the_estimator_refuses_windows_it_cannot_score(windows):
    forest = WindowForest().fit(windows)
    with pytest.raises(ValueError, match="6"):
        forest.score_samples(windows[:, :5])
    broken = windows[:3].copy()
    broken[0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        forest.score_samples(broken)


# -- calibration -------------------------------------------------------------------------------------------------------


def test_the_threshold_keeps_to_the_budget_counting_each_actor_day_once():
    rng = np.random.default_rng(1)
    days = 4000
    groups = np.repeat(np.arange(days), 8)  # eight windows per actor-day
    anomaly = rng.uniform(0.3, 0.6, size=len(groups))
    budgets = Budgets(low=5.0, medium=1.0, high=0.25)
    calibration = Calibration.fit(anomaly, groups, budgets)
    for severity, budget in budgets.by_severity().items():
        flagged = {g for g, a in zip(groups, anomaly, strict=True) if a >= calibration.thresholds[severity]}
        assert len(flagged) == int(budget * days / 1000)
    assert calibration.actor_days == days
    assert (
        calibration.thresholds[Severity.LOW]
        < calibration.thresholds[Severity.MEDIUM]
        < calibration.thresholds[Severity.HIGH]
    )


def test_severity_and_rate_follow_the_rank_in_the_training_history():
    maxima = np.linspace(0.40, 0.70, 1000)
    calibration = Calibration.fit(maxima, np.arange(1000), Budgets(low=10.0, medium=2.0, high=1.0))
    assert calibration.severity(0.30) is None
    # the top values are 0.7000, 0.6997, 0.6994, ...: one actor-day in 1,000 is allowed at high, two at medium
    assert calibration.severity(0.6980) is Severity.LOW  # among the top 10 actor-days
    assert calibration.severity(0.6995) is Severity.MEDIUM  # among the top 2
    assert calibration.severity(0.6999) is Severity.HIGH  # above all but one
    assert calibration.severity(0.71) is Severity.HIGH  # beyond every one
    assert calibration.rate(0.40) == 1000.0 and calibration.rate(float(maxima[-10])) == pytest.approx(10.0)
    # beyond the highest, fewer than one in the 1,000 actor-days, by how far out in the tail
    assert calibration.rate(0.75) < calibration.rate(0.71) <= 1.0


def test_a_budget_finer_than_the_history_is_extrapolated_from_its_tail():
    maxima = np.linspace(0.40, 0.70, 1000)
    calibration = Calibration.fit(maxima, np.arange(1000), Budgets(low=10.0, medium=2.0, high=0.1))
    assert calibration.severity(0.722) is Severity.MEDIUM
    assert _rarity(calibration, 0.722, Severity.MEDIUM, Budgets()).endswith("short of the 1 in 5,000 that high takes")
    high = calibration.thresholds[Severity.HIGH]
    # one in 10,000 cannot be read off 1,000 actor-days: not just past the highest one, but further out
    assert high > 0.70 + 0.01
    assert calibration.severity(0.705) is Severity.MEDIUM and calibration.severity(high) is Severity.HIGH
    assert calibration.rate(high) == pytest.approx(0.1)


def test_past_every_actor_day_learned_a_low_finding_says_why_it_is_no_louder():
    # 610 actor-days cannot resolve medium's 1 in 2,000: its threshold is extrapolated past the highest of them,
    # and a window just past that highest is low; "more unusual than any" alone read as a contradiction
    calibration = Calibration.fit(np.linspace(0.40, 0.70, 610), np.arange(610), Budgets())
    assert calibration.severity(0.71) is Severity.LOW
    assert _rarity(calibration, 0.71, Severity.LOW, Budgets()) == (
        "more unusual than any of the 610 actor-days the model learned from, though its estimated 1 in 610"
        " is short of the 1 in 2,000 that medium takes"
    )
    assert calibration.severity(0.722) is Severity.MEDIUM
    assert _rarity(calibration, 0.722, Severity.MEDIUM, Budgets()).endswith("short of the 1 in 5,000 that high takes")
    high = calibration.thresholds[Severity.HIGH]
    assert _rarity(calibration, high, Severity.HIGH, Budgets()) == (
        "more unusual than any of the 610 actor-days the model learned from"  # nothing louder to explain
    )
    assert _rarity(calibration, 0.69, Severity.LOW, Budgets()) == (
        "as unusual as 1 in 29 of the 610 actor-days the model learned from"
    )
    # Tester T24: "as unusual as 1 in 979 of the 979 actor-days", of the highest of them
    assert _rarity(calibration, 0.70, Severity.LOW, Budgets()) == (
        "as unusual as the most unusual of the 610 actor-days the model learned from"
    )


def test_budgets_must_not_grow_with_severity():
    with pytest.raises(ValidationError, match="must not grow"):
        Budgets(low=1.0, medium=2.0, high=0.5)


# -- the model store ---------------------------------------------------------------------------------------------


def artefact(version: str = "isolation_forest-short-20261113T160000Z-0a1b2c3d", **changes) -> ModelArtefact:
    values = {
        "detector": NAME,
        "scale": "short",
        "version": version,
        "trained_from": datetime(2026, 11, 9, tzinfo=UTC),
        "trained_to": datetime(2026, 11, 13, 16, tzinfo=UTC),
        "windows": 3000,
        "actor_days": 400,
        "features": list(features.FEATURES),
        "params": {"n_estimators": 100, "max_samples": 256, "random_state": 7},
        "budgets": {"low": 5.0, "medium": 0.5, "high": 0.2},
        "thresholds": {"low": 0.6, "medium": 0.7, "high": 0.75},
        "library": {"scikit-learn": "1.x"},
    }
    return ModelArtefact(**{**values, **changes})


def test_an_artefact_round_trips(tmp_path, windows):
    store = ModelStore(tmp_path)
    forest = WindowForest(random_state=2).fit(windows)
    saved = store.save(artefact(), forest)
    described, loaded = store.load(saved.version, features.FEATURES)
    assert described == saved and len(saved.sha256) == 64
    np.testing.assert_array_equal(loaded.score_samples(windows), forest.score_samples(windows))
    assert store.artefacts() == [saved]


def test_a_model_trained_on_other_features_is_refused_with_a_clear_message(tmp_path):
    store = ModelStore(tmp_path)
    old = [name for name in features.FEATURES if name != "unusual_hours"] + ["records_by_weekday"]
    saved = store.save(artefact(features=old), object())
    with pytest.raises(FeatureMismatch) as refused:
        store.load(saved.version, features.FEATURES)
    message = str(refused.value)
    assert saved.version in message and "\n" not in message
    assert f"trained on {len(old)} features" in message
    assert "new: unusual_hours" in message and "gone: records_by_weekday" in message
    assert "retrained" in message


def test_a_model_file_that_does_not_match_its_checksum_is_refused(tmp_path, windows):
    store = ModelStore(tmp_path)
    saved = store.save(artefact(), WindowForest().fit(windows))
    (tmp_path / f"{saved.version}.pkl").write_bytes(pickle.dumps("something else"))
    with pytest.raises(ArtefactError, match="checksum"):
        store.load(saved.version, features.FEATURES)
    with pytest.raises(ArtefactError, match="no description"):
        store.load("isolation_forest-short-19700101T000000Z-00000000", features.FEATURES)


def test_pruning_keeps_the_newest_and_the_protected(tmp_path):
    store = ModelStore(tmp_path)
    versions = []
    for day in range(10, 15):
        trained_to = datetime(2026, 11, day, 16, tzinfo=UTC)
        version = version_name(NAME, "short", trained_to.timestamp(), str(day).encode())
        versions.append(store.save(artefact(version, trained_to=trained_to), object()).version)
    removed = store.prune(NAME, "short", keep=2, protect=[versions[0]])
    assert removed == versions[1:3]
    assert [a.version for a in store.artefacts()] == [versions[0], *versions[3:]]


def test_version_names_come_from_event_time_and_the_training_data():
    at = datetime(2026, 11, 13, 16, tzinfo=UTC).timestamp()
    assert version_name(NAME, "long", at, b"x").startswith("isolation_forest-long-20261113T160000Z-")
    assert version_name(NAME, "long", at, b"x") == version_name(NAME, "long", at, b"x")
    assert version_name(NAME, "long", at, b"x") != version_name(NAME, "long", at, b"y")


# -- features ---------------------------------------------------------------------------------------------------------


class _Probe(IsolationForestDetector):
    """The detector, recording each ready period's features and, as they are then, the rules' expectations."""

    def __init__(self, settings) -> None:
        super().__init__(settings)
        self.seen: list[tuple] = []
        self.compared: list[tuple[float, float]] = []  # (feature, log2 of the expectation's ratio)

    def observe(self, period) -> None:
        if period.system_ready and period.windows:
            X = self._features(period)
            self.seen.append((period, X.copy()))
            for row, window in enumerate(period.windows):
                values = features.volume_values(window)
                for metric in features.RATIO_VOLUMES:
                    expectation = period.expectation(window, metric, values[features.VOLUMES.index(metric)])
                    expected = 0.0 if expectation is None else min(max(np.log2(expectation.ratio), 0.0), 16.0)
                    self.compared.append((float(X[row, features.FEATURES.index(f"{metric}_vs_own")]), expected))
        super().observe(period)


@pytest.fixture(scope="module")
def probed():
    from detectors.engine import DetectionEngine

    probe = _Probe(IsolationForestDetector.Settings(**CONFIG[NAME]))
    engine = DetectionEngine(settings_with(), [probe])
    engine.process(insider_story())
    engine.flush()
    return probe


def test_the_ratio_to_the_own_baseline_is_the_rules_expectation(probed):
    # computed for a whole period at once, it must say what Period.expectation says window by window
    got, expected = np.array(probed.compared).T
    assert len(got) > 10_000 and (expected > 0).sum() > 1000
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_every_feature_is_finite_and_never_negative(probed):
    matrix = np.vstack([X for _, X in probed.seen])
    assert matrix.shape[1] == len(features.FEATURES)
    assert np.isfinite(matrix).all() and (matrix >= 0).all()
    # the insider's hour stands out against its peers in it
    moment = local(16, 10).timestamp()
    (hour,) = [
        X[row]
        for period, X in probed.seen
        if period.scale == "short" and period.start <= moment < period.end
        for row, window in enumerate(period.windows)
        if window.actor.id == INSIDER.id
    ]
    assert hour[features.FEATURES.index("customers_vs_peers")] > 5  # over 32 times the team's median


def test_usual_levels_are_the_rhythms_own():
    from detectors.profiles import Rhythm

    rng = random.Random(4)
    rhythm = Rhythm()
    for _ in range(300):
        rhythm.activity[rng.randrange(168)] = rhythm.activity.get(rng.randrange(168), 0.0) + rng.random()
    slots = list(range(168))
    assert features.usual_levels(rhythm.activity, slots) == [rhythm.usual_level(slot) for slot in slots]


def test_the_training_history_round_trips_through_its_checkpoint_and_keeps_whole_actor_days():
    from detectors.training import TrainingHistory

    rng = np.random.default_rng(3)
    history = TrainingHistory(max_windows=600, history_days=3)
    for day in range(5):
        for _ in range(8):  # eight hours a day
            actors = [f"emp-{n:03d}" for n in range(50)]
            history.add(day * 86400.0, actors, rng.random((50, 4)).astype(np.float32))
    restored = TrainingHistory(max_windows=600, history_days=3)
    restored.load_state(decode_state(encode_state({"history": history.to_state()}))["history"])
    for got, expected in zip(restored.training(0, 5 * 86400.0), history.training(0, 5 * 86400.0), strict=True):
        np.testing.assert_array_equal(got, expected)
    X, groups, first = history.training(86400.0, 4 * 86400.0)
    assert first == 86400.0 and len(X) == len(groups)
    # every kept actor-day has all eight of its hours: the budget counts actor-days, it must never see half of one
    assert set(np.bincount(groups)) == {8}
    assert len(X) <= 3 * 600 / 3 * 1.5


def test_group_medians_are_the_medians_of_each_group_ignoring_what_is_missing():
    from statistics import median

    rng = np.random.default_rng(5)
    ids = rng.integers(0, 6, 200)
    ids[ids == 5] = 4  # group 5 stays empty
    values = rng.random((200, 3))
    values[rng.random((200, 3)) < 0.3] = np.nan
    medians, counts = features.group_medians(values, ids, 6)
    for group in range(6):
        for col in range(3):
            present = [v for v in values[ids == group, col] if not np.isnan(v)]
            assert counts[group, col] == len(present)
            if present:
                assert medians[group, col] == pytest.approx(median(present), abs=1e-12)
            else:
                assert np.isnan(medians[group, col])
