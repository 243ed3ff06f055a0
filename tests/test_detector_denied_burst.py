"""``denied_burst``: many denied accesses in a short span, the sign of someone probing their privileges.

Stories run on the real engine (``tests.detector_harness``): office hours on
weekdays from Monday 2 November, anomalies after the week of warm-up.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from detectors.denied_burst import DeniedBurst
from models.alert import Severity
from tests.detector_contract import DetectorContract
from tests.detector_harness import (
    EVERY_DAY,
    PASSPORT_FIELDS,
    Actor,
    burst,
    describe,
    history,
    local,
    run,
    settings_with,
    stream,
    team,
)

NAME = "denied_burst"
TEAM = team(5)
AGENT = TEAM[0]
LEGACY = Actor("svc-legacy-sync", kind="service", role="legacy_sync", department=None, ip="10.1.1.1")


def routine(days: int = 14):
    return [history(a, days=days, per_hour=3, records=2) for a in TEAM]


def probe(actor: Actor = AGENT, day: float = 14, hour: float = 10, refusals: int = 25, minutes: float = 10, **access):
    """``refusals`` denied accesses within ``minutes``."""
    spread = timedelta(minutes=minutes)
    return burst(actor, local(day, hour), events=refusals, within=spread, outcome="denied", **access)


def insider(day: int = 14):
    """An agent with two clean weeks tries 25 passport lookups in ten minutes and is refused each time."""
    return stream(*routine(day), probe(day=day, fields=PASSPORT_FIELDS))


# -- the shared interface ------------------------------------------------------


class TestContract(DetectorContract):
    detector = DeniedBurst
    scales = ("short",)
    bad_values = [
        ("min_denied", 0, "greater than or equal to 1"),
        ("span", "soon", "a duration such as '10m'"),
        ("span", -60, "not negative"),
        ("min_ratio", 0.5, "greater than or equal to 1"),
    ]

    def story(self):
        return insider()


# -- what it exists for --------------------------------------------------------


def test_a_burst_of_refused_passport_lookups_raises_one_alert():
    alert = run(insider(), NAME).only()
    evidence = alert.evidence
    assert evidence["denied_in_burst"] == evidence["denied_in_window"] == 25
    assert evidence["denied_on_high_sensitivity"] == 25 and evidence["burst_minutes"] == 10
    assert "denied 25 times within 10 minutes" in alert.summary and "high-sensitivity" in alert.summary
    # log2(25 / 20) + 2, + 1 for high-sensitivity data
    assert alert.score == pytest.approx(3.32, abs=0.01) and alert.severity is Severity.HIGH
    assert alert.window_start == local(14, 10)


def test_a_burst_within_a_minute_is_told_in_the_singular():
    script = probe(refusals=25, minutes=0.5)  # a script: 25 refusals in 30 seconds
    alert = run(stream(*routine(), script), NAME).only()
    assert alert.evidence["burst_minutes"] == 1
    assert "was denied 25 times within 1 minute on " in alert.summary


@pytest.mark.parametrize(
    "refusals, fields, severity",
    [
        (19, ("name", "phone"), None),  # under min_denied
        (20, ("name", "phone"), Severity.MEDIUM),  # 2
        (40, ("name", "phone"), Severity.HIGH),  # 3
        (80, PASSPORT_FIELDS, Severity.CRITICAL),  # 2 + 2 + 1
    ],
)
def test_severity_grows_with_the_burst_and_the_sensitivity(refusals, fields, severity):
    alerts = run(stream(*routine(), probe(refusals=refusals, fields=fields)), NAME).alerts
    assert [a.severity for a in alerts] == ([severity] if severity else []), [describe(a) for a in alerts]


def test_refusals_spread_over_the_hour_are_not_a_burst():
    slow = probe(refusals=25, minutes=55)  # about seven in any fifteen minutes
    assert run(stream(*routine(), slow), NAME).alerts == []
    assert run(stream(*routine(), slow), NAME, config={NAME: {"span": "1h"}}).only().evidence["burst_minutes"] == 53


def test_errors_are_not_refusals():
    failing = burst(AGENT, local(14, 10), events=40, within=timedelta(minutes=10), outcome="error")
    assert run(stream(*routine(), failing), NAME).alerts == []


def test_an_account_nobody_knows_probing_is_flagged_without_any_baseline():
    stranger = Actor("emp-0777", role="auditor", ip="10.7.7.7")  # no history, no peers
    alert = run(stream(*routine(), probe(stranger)), NAME).only()
    assert alert.actor_id == stranger.id and alert.evidence["usual_denied"] is None


def test_an_account_nobody_knows_is_not_excused_by_another_teams_refusals():
    # judged against all employees for its volumes, but everyone's refusals are not its own: no broken tool known
    desk = team(4, role="ticket_desk", first=40)
    refused = [history(a, days=16, per_hour=25, within=timedelta(minutes=10), outcome="denied") for a in desk]
    stranger = Actor("emp-0777", role="auditor", ip="10.7.7.7")
    alert = run(stream(*refused, probe(stranger, day=15)), NAME).only()
    assert alert.actor_id == stranger.id and alert.evidence["usual_denied"] is None


# -- what it must leave alone --------------------------------------------------


def broken_integration(days: int = 15):
    """A sync job whose credentials lost a permission: thirty refusals in the first ten minutes of every hour."""
    every_hour = {"hours": range(24), "weekdays": EVERY_DAY}
    return history(LEGACY, days=days, per_hour=30, within=timedelta(minutes=10), outcome="denied", **every_hour)


def test_a_broken_integration_that_is_always_denied_raises_nothing():
    assert run(stream(*routine(), broken_integration()), NAME).alerts == []


def test_the_same_refusals_from_a_healthy_integration_are_news():
    healthy = history(LEGACY, days=14, per_hour=30, hours=range(24), weekdays=EVERY_DAY)
    sudden = probe(LEGACY, day=14, hour=10, refusals=30)
    alert = run(stream(*routine(), healthy, sudden), NAME).only()
    assert alert.actor_id == LEGACY.id and alert.evidence["usual_denied"] == 0


def test_a_broken_integration_that_gets_much_worse_is_news():
    worse = probe(LEGACY, day=15, hour=10, refusals=300, minutes=10)  # ten times its usual refusals
    alert = run(stream(*routine(), broken_integration(), worse), NAME).only()
    assert alert.evidence["usual_denied"] == pytest.approx(30, rel=0.05)


def test_a_new_hire_in_a_team_that_is_often_refused_is_judged_on_the_peers():
    # a team whose tool asks for a field it may not read: ~25 refusals in ten minutes, every hour
    desk = team(4, role="ticket_desk", first=40)
    refused = [
        history(a, days=16, per_hour=25, within=timedelta(minutes=10), outcome="denied", fields=PASSPORT_FIELDS)
        for a in desk
    ]
    hire = Actor("emp-0099", role="ticket_desk", ip="10.9.9.9")
    first_day = history(hire, days=1, start_day=15, per_hour=25, within=timedelta(minutes=10), outcome="denied")
    assert run(stream(*refused, first_day), NAME).alerts == []
    # the same first day in a team that is never refused is news
    assert run(stream(*routine(16), first_day), NAME).alerts


# -- alerts as an analyst sees them --------------------------------------------


def test_a_finding_that_continues_grows_one_alert():
    probes = [probe(hour=hour, fields=PASSPORT_FIELDS) for hour in (10, 11)]
    result = run(stream(*routine(15), *probes), NAME)
    alert = result.only()
    assert (alert.window_start, alert.window_end) == (local(14, 10), local(14, 12))
    assert alert.evidence["findings"] == alert.revision == len(result.findings) == 2


def test_probing_for_four_hours_grows_one_alert_over_all_four():
    probes = [probe(hour=hour, fields=PASSPORT_FIELDS) for hour in (10, 11, 12, 13)]
    result = run(stream(*routine(15), *probes), NAME)
    alert = result.only()
    assert (alert.window_start, alert.window_end) == (local(14, 10), local(14, 14))
    assert alert.evidence["findings"] == 4


def test_bursts_days_apart_are_separate_alerts():
    probes = [probe(day=day, fields=PASSPORT_FIELDS) for day in (14, 17)]
    alerts = run(stream(*routine(21), *probes), NAME).alerts
    assert [a.window_start for a in alerts] == [local(14, 10), local(17, 10)], [describe(a) for a in alerts]


def test_no_alert_during_the_system_warm_up():
    events = stream(*routine(6), probe(day=6, fields=PASSPORT_FIELDS))
    assert run(events, NAME).alerts == []
    shorter = settings_with(baselines__system_warmup="5d")
    assert run(events, NAME, settings=shorter).only().window_start == local(6, 10)
