"""``off_hours``: activity in an hour the actor does not usually work, above all outside business hours.

Stories run on the real engine (``tests.detector_harness``).  Business hours
are 08:00-20:00 Monday to Friday (the default configuration); day shifts
work 09:00-18:00 on weekdays, night shifts 22:00-06:00 every night.
"""

from __future__ import annotations

import pytest

from detectors.off_hours import OffHours
from models.alert import Severity
from tests.detector_contract import DetectorContract
from tests.detector_harness import (
    EVERY_DAY,
    EVERYDAY_FIELDS,
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

NAME = "off_hours"
AGENT = Actor("emp-0001")
NIGHT_HOURS = [22, 23, 0, 1, 2, 3, 4, 5]
NIGHT_DESK = team(4, role="night_desk", first=60)


def insider(accesses: int = 30, records: int = 2, day: int = 15, hour: int = 2, fields=EVERYDAY_FIELDS):
    """A day-shift agent for two weeks, then ``accesses`` accesses at ``hour`` on day ``day`` (a Tuesday)."""
    return stream(
        history(AGENT, days=14, per_hour=3, records=2),
        burst(AGENT, local(day, hour), events=accesses, records=records, fields=fields),
    )


def night_desk_routine(days: int = 14):
    return [history(a, days=days, per_hour=3, records=2, hours=NIGHT_HOURS, weekdays=EVERY_DAY) for a in NIGHT_DESK]


# -- the shared interface ------------------------------------------------------


class TestContract(DetectorContract):
    detector = OffHours
    scales = ("short",)
    bad_values = [
        ("min_events", 0, "greater than or equal to 1"),
        ("min_records", 0, "greater than or equal to 1"),
        ("max_events_score", -1, "greater than or equal to 0"),
        ("sensitive_weight", 0.5, "greater than or equal to 1"),
        ("max_usual_level", 1.5, "less than 1"),
        ("max_usual_level", 0, "greater than 0"),
    ]

    def story(self):
        return insider()


# -- what it exists for --------------------------------------------------------


def test_a_day_shift_agent_at_two_in_the_morning_raises_one_alert():
    alert = run(insider(accesses=30), NAME).only()
    evidence = alert.evidence
    assert alert.window_start == local(15, 2)
    assert evidence["events"] == 30 and evidence["usual_level"] == 0
    assert evidence["outside_business_hours"] is True and evidence["baseline_from"] == "own"
    assert "30 accesses" in alert.summary and "they never work, outside business hours" in alert.summary
    # never in this hour (2), twice the minimum activity (1), outside business hours (1)
    assert alert.score == 4.0 and alert.severity is Severity.HIGH


@pytest.mark.parametrize(
    "accesses, records, severity",
    [
        (14, 2, None),  # under min_events, and 28 records under min_records
        (3, 300, None),  # 900 records: under both
        (15, 2, Severity.MEDIUM),  # never in this hour (2) + 0 at the gate + outside business hours (1)
        (30, 2, Severity.HIGH),  # 2 + 1 + 1
        (60, 1, Severity.HIGH),  # 2 + 2 + 1
        (60, 2, Severity.HIGH),  # 120 records do not add to it (they made it critical, like a theft)
        (120, 1, Severity.HIGH),  # 2 + 2.5 (the most accesses add) + 1: a crowd of small accesses is not critical
        (3, 400, Severity.MEDIUM),  # 1,200 records in 3 accesses: 2 + log2(1.2) + 1
        (120, 100, Severity.CRITICAL),  # 12,000 records: 2 + log2(12) + 1
    ],
)
def test_severity_grows_with_how_much_was_done(accesses, records, severity):
    alerts = run(insider(accesses=accesses, records=records), NAME).alerts
    assert [a.severity for a in alerts] == ([severity] if severity else []), [describe(a) for a in alerts]


@pytest.mark.parametrize("hour", [2, 21])
def test_a_few_accesses_that_read_a_great_deal_off_hours_are_a_critical_finding(hour):
    # three accesses, far under min_events: at 02:00 a theft of 180,000 records, at 21:00 an evening export
    alert = run(insider(accesses=3, records=60_000, hour=hour), NAME).only()
    evidence = alert.evidence
    assert alert.window_start == local(15, hour)
    assert evidence["events"] == 3 and evidence["records"] == 180_000 and evidence["judged_on"] == "records"
    assert "made 3 accesses to 180,000 records on " in alert.summary
    assert alert.severity is Severity.CRITICAL and alert.score >= 2 + 7 + 1  # log2(180) = 7.5 past the gate


def test_a_few_big_accesses_in_an_odd_hour_of_the_working_day_are_left_to_the_volume_rules():
    # a night-shift agent's report at 14:00 on a weekday: an hour they never work, but the office is open
    report = burst(NIGHT_DESK[0], local(15, 14), events=3, records=60_000)
    assert run(stream(*night_desk_routine(), report), NAME).alerts == []
    # fifteen accesses make it an off-hours finding as before, and then their 180,000 records count
    busy = burst(NIGHT_DESK[0], local(15, 14), events=15, records=12_000)
    alert = run(stream(*night_desk_routine(), busy), NAME).only()
    assert alert.evidence["outside_business_hours"] is False and alert.evidence["judged_on"] == "records"
    assert alert.severity is Severity.CRITICAL


def test_a_nightly_service_account_reading_a_great_deal_at_noon_is_a_finding():
    # T13: a batch account's credentials used at noon for six big reads: a service keeps no office hours
    batch = Actor("svc-batch", kind="service", role="batch", ip="10.0.0.9")
    nightly = history(batch, days=14, per_hour=2, records=5000, hours=[1, 2, 3], weekdays=EVERY_DAY)
    alert = run(stream(nightly, burst(batch, local(15, 12), events=6, records=5000)), NAME).only()
    assert alert.window_start == local(15, 12) and alert.evidence["outside_business_hours"] is False
    assert alert.evidence["judged_on"] == "records" and alert.severity.at_least(Severity.HIGH)


def test_many_small_accesses_are_critical_only_when_the_records_are_sensitive():
    # 120 accesses of 20 records at 02:00: 2,400 everyday records are high; as passports they weigh four times
    everyday = run(insider(accesses=120, records=20), NAME).only()
    passports = run(insider(accesses=120, records=20, fields=PASSPORT_FIELDS), NAME).only()
    assert everyday.severity is Severity.HIGH and everyday.evidence["judged_on"] == "accesses"
    assert passports.severity is Severity.CRITICAL and passports.evidence["judged_on"] == "records"
    assert passports.evidence["high_records"] == 2400 and "to 2,400 records (2,400 of high sensitivity) on" in (
        passports.summary
    )
    assert "high sensitivity" not in everyday.summary
    # the weight is a setting: at 1, a passport is a record like any other
    plain = run(insider(accesses=120, records=20, fields=PASSPORT_FIELDS), NAME, config={NAME: {"sensitive_weight": 1}})
    assert plain.only().severity is Severity.HIGH


def test_an_unusual_hour_inside_business_hours_weighs_less():
    # a night-shift agent at 14:00 on a weekday: unusual for them, but the office is open
    alert = run(stream(*night_desk_routine(), burst(NIGHT_DESK[0], local(15, 14), events=30)), NAME).only()
    assert alert.evidence["outside_business_hours"] is False
    assert alert.score == 3.0 and alert.severity is Severity.MEDIUM
    assert "outside business hours" not in alert.summary


# -- what it must leave alone --------------------------------------------------


def test_a_night_shift_worker_at_night_raises_nothing():
    busy_night = burst(NIGHT_DESK[0], local(15, 2), events=30)
    assert run(stream(*night_desk_routine(), busy_night), NAME).alerts == []


def test_a_day_shift_agent_on_a_saturday_at_the_usual_hour_raises_nothing():
    # the same hour on other days counts: a weekend shift is not news
    assert run(insider(day=19, hour=10), NAME).alerts == []


def test_staying_an_hour_late_raises_nothing():
    assert run(insider(day=15, hour=18), NAME).alerts == []  # the hour beside the usual last one


def test_a_new_hire_is_judged_on_the_peers_rhythm():
    night_hire = Actor("emp-0099", role="night_desk", ip="10.9.9.9")
    first_nights = history(night_hire, days=2, start_day=14, per_hour=20, hours=[0, 1, 2, 3])
    assert run(stream(*night_desk_routine(16), first_nights), NAME).alerts == []

    day_team = [history(a, days=16, per_hour=3, records=2) for a in team(4)]
    day_hire = Actor("emp-0098", ip="10.9.9.8")
    at_night = burst(day_hire, local(15, 2), events=20)
    alert = run(stream(*day_team, at_night), NAME).only()
    assert alert.actor_id == day_hire.id and alert.evidence["baseline_from"] == "peers"
    assert "their peers never work" in alert.summary


def test_an_actor_with_neither_history_nor_peers_is_not_judged():
    stranger = Actor("emp-0777", role="auditor", ip="10.7.7.7")
    events = stream(history(AGENT, days=16, per_hour=3), burst(stranger, local(15, 2), events=30))
    assert run(events, NAME).alerts == []


def test_a_purpose_does_not_soften_it():
    # documented_max_severity is unset for this rule: a ticket does not explain working at 2 a.m.
    events = insider()
    cited = stream(history(AGENT, days=14, per_hour=3, records=2), burst(AGENT, local(15, 2), 30, 2, purpose="T-1"))
    assert run(cited, NAME).only().severity is run(events, NAME).only().severity is Severity.HIGH


# -- alerts as an analyst sees them --------------------------------------------


def test_a_finding_that_continues_grows_one_alert():
    # back at it after an hour's pause, within the merge gap: the same night, one alert
    session = [burst(AGENT, local(15, hour), events=30) for hour in (2, 4)]
    result = run(stream(history(AGENT, days=16, per_hour=3), *session), NAME)
    alert = result.only()
    assert (alert.window_start, alert.window_end) == (local(15, 2), local(15, 5))
    assert alert.evidence["findings"] == alert.revision == len(result.findings) == 2


def test_a_night_session_of_three_hours_grows_one_alert_over_all_three():
    session = [burst(AGENT, local(15, hour), events=30) for hour in (2, 3, 4)]
    result = run(stream(history(AGENT, days=16, per_hour=3), *session), NAME)
    alert = result.only()
    assert (alert.window_start, alert.window_end) == (local(15, 2), local(15, 5))
    assert alert.evidence["findings"] == alert.revision == 3


def test_nights_days_apart_are_separate_alerts():
    nights = [burst(AGENT, local(day, 2), events=30) for day in (15, 17)]
    alerts = run(stream(history(AGENT, days=21, per_hour=3), *nights), NAME).alerts
    assert [a.window_start for a in alerts] == [local(15, 2), local(17, 2)], [describe(a) for a in alerts]


def test_no_alert_during_the_system_warm_up():
    events = stream(
        history(AGENT, days=6, per_hour=3, weekdays=EVERY_DAY),
        burst(AGENT, local(6, 2), events=30),
    )
    assert run(events, NAME).alerts == []
    shorter = settings_with(baselines__system_warmup="5d")
    assert run(events, NAME, settings=shorter).only().window_start == local(6, 2)
