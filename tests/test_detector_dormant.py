"""``dormant``: an account silent for weeks comes back and reads in volume.

Stories run on the real engine (``tests.detector_harness``): the team works
office hours on weekdays from Monday 2 November; the agent stops after its
first two weeks (last seen Wednesday 11 November) and comes back later.
"""

from __future__ import annotations

import pytest

from detectors.dormant import Dormant
from models.alert import Severity
from tests.detector_contract import DetectorContract
from tests.detector_harness import (
    EVERY_DAY,
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

NAME = "dormant"
TEAM = team(3)
AGENT = TEAM[0]


def before_leaving(days: int = 10):
    """The agent's routine until it goes quiet: weekdays from day 0, the last one Wednesday 11 November."""
    return history(AGENT, days=days, per_hour=3, records=2)


def colleagues(days: int = 31):
    return [history(a, days=days, per_hour=3, records=2) for a in TEAM[1:]]


def insider(day: int = 30, records: int = 1000):
    """Silent since Wednesday 11 November, the agent comes back on day ``day`` and reads ``records`` in an hour."""
    return stream(*colleagues(), before_leaving(), burst(AGENT, local(day, 10), events=5, records=records // 5))


# -- the shared interface ------------------------------------------------------


class TestContract(DetectorContract):
    detector = Dormant
    scales = ("short",)
    bad_values = [
        ("silent_days", 0, "greater than 0"),
        ("silent_days", "two weeks", "a valid number"),
        ("min_records", 0, "greater than or equal to 1"),
    ]

    def story(self):
        return insider()


# -- what it exists for --------------------------------------------------------


def test_an_account_back_after_three_weeks_reading_a_thousand_records_raises_one_alert():
    alert = run(insider(day=30, records=1000), NAME).only()
    # last seen Wednesday 11 November at ~17:55, back Wednesday 2 December at 10:00
    assert alert.evidence["silent_days"] == pytest.approx(20.7, abs=0.05)
    assert alert.evidence["records"] == 1000
    assert "silent for 21 days, read 1,000 records" in alert.summary
    # 2 log10(1000 / 100) + 20.7 / 14 = 3.5: high under the configured [1.0, 2.5, 4.0]
    assert alert.score == pytest.approx(3.48, abs=0.01) and alert.severity is Severity.HIGH
    assert alert.window_start == local(30, 10)


@pytest.mark.parametrize(
    "day, records, severity",
    [
        (30, 50, None),  # under min_records
        (26, 100, Severity.MEDIUM),  # 0 + 14.7 / 14 = 1.05
        (30, 1000, Severity.HIGH),  # 2 + 1.48
        (30, 100_000, Severity.CRITICAL),  # 6 + 1.48
    ],
)
def test_severity_grows_with_the_volume_and_the_silence(day, records, severity):
    alerts = run(insider(day=day, records=records), NAME).alerts
    assert [a.severity for a in alerts] == ([severity] if severity else []), [describe(a) for a in alerts]


def test_a_quiet_first_hour_back_does_not_hide_the_bulk_read_that_follows():
    comeback = [
        *burst(AGENT, local(30, 10, 55), events=1, records=5),
        *burst(AGENT, local(30, 11, 5), events=5, records=1000),
    ]
    alert = run(stream(*colleagues(), before_leaving(), comeback), NAME).only()
    assert alert.evidence["records"] == 5000


# -- what it must leave alone --------------------------------------------------


def test_back_from_a_ten_day_holiday_is_not_dormant():
    assert run(insider(day=21), NAME).alerts == []
    assert run(insider(day=21), NAME, config={NAME: {"silent_days": 7}}).only().window_start == local(21, 10)


def test_back_after_weeks_doing_the_usual_small_work_is_not_flagged():
    assert run(insider(day=30, records=50), NAME).alerts == []


def test_a_new_hire_has_no_silence_to_come_back_from():
    hire = Actor("emp-0099", ip="10.9.9.9")
    first_day = burst(hire, local(30, 10), events=5, records=200)
    assert run(stream(*colleagues(), first_day), NAME).alerts == []


def test_a_weekend_is_not_a_silence():
    monday = burst(AGENT, local(14, 10), events=5, records=200)
    assert run(stream(*colleagues(), history(AGENT, days=14, per_hour=3), monday), NAME).alerts == []


# -- alerts as an analyst sees them --------------------------------------------


def test_the_return_is_one_alert_however_long_the_account_then_reads():
    # the silence ends with the first hour back: the hours after it are not a return
    comeback = [burst(AGENT, local(30, hour), events=5, records=200) for hour in (10, 11, 12, 13)]
    result = run(stream(*colleagues(), before_leaving(), *comeback), NAME)
    alert = result.only()
    assert alert.window_start == local(30, 10) and alert.evidence["findings"] == 1


def test_two_returns_from_two_silences_are_separate_alerts():
    first_return = burst(AGENT, local(30, 10), events=5, records=200)
    second_return = burst(AGENT, local(51, 10), events=5, records=200)
    events = stream(*colleagues(56), before_leaving(), first_return, second_return)
    alerts = run(events, NAME).alerts
    assert [a.window_start for a in alerts] == [local(30, 10), local(51, 10)], [describe(a) for a in alerts]
    assert len({a.alert_id for a in alerts}) == 2


def test_no_alert_during_the_system_warm_up():
    # with a two-day silence counting as dormant, a return on day 5 is dormant, but inside the 7-day warm-up
    events = stream(
        *[history(a, days=6, per_hour=3, records=2, weekdays=EVERY_DAY) for a in TEAM[1:]],
        history(AGENT, days=2, per_hour=3, records=2, weekdays=EVERY_DAY),
        burst(AGENT, local(5, 10), events=5, records=200),
    )
    two_days = {NAME: {"silent_days": 2}}
    assert run(events, NAME, config=two_days).alerts == []
    shorter = settings_with(baselines__system_warmup="4d")
    assert run(events, NAME, config=two_days, settings=shorter).only().window_start == local(5, 10)
