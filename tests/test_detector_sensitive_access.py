"""``sensitive_access``: far more records with ID documents, financial or special-category data than usual.

Stories run on the real engine (``tests.detector_harness``): office hours on
weekdays from Monday 2 November, anomalies after the week of warm-up.
"""

from __future__ import annotations

import pytest

from detectors.sensitive_access import SensitiveAccess
from models.alert import Severity
from tests.detector_contract import DetectorContract
from tests.detector_harness import (
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

NAME = "sensitive_access"
AGENT = Actor("emp-0001")
VISA_DESK = team(4, role="visa_desk", first=50)
BANK_FIELDS = ("name", "bank_account", "payment_card")  # financial: high sensitivity


def insider(passports: int = 600, day: int = 14):
    """An agent who reads names and phones all day, then ``passports`` passport numbers in one hour."""
    return stream(
        history(AGENT, days=day, per_hour=3, records=2),
        burst(AGENT, local(day, 10), events=10, records=passports // 10, fields=PASSPORT_FIELDS),
    )


def visa_desk_routine(days: int = 14):
    """Each visa-desk agent checks ~40 passports an hour."""
    return [history(a, days=days, per_hour=5, records=8, fields=PASSPORT_FIELDS) for a in VISA_DESK]


# -- the shared interface ------------------------------------------------------


class TestContract(DetectorContract):
    detector = SensitiveAccess
    scales = ("short",)
    bad_values = [
        ("min_records", -5, "greater than or equal to 0"),
        ("min_ratio", 0, "greater than or equal to 1"),
        ("min_z", "x", "a valid number"),
        ("min_peak_ratio", -1, "greater than or equal to 0"),
    ]

    def story(self):
        return insider()


# -- what it exists for --------------------------------------------------------


def test_an_agent_who_never_reads_passports_reading_hundreds_raises_one_alert():
    alert = run(insider(passports=600), NAME).only()
    evidence = alert.evidence
    assert evidence["high_sensitivity_records"] == 600 and evidence["classes"] == ["government_id"]
    assert evidence["baseline"] == 0 and evidence["baseline_from"] == "own"
    assert "600 records with government id data" in alert.summary and "their usual is none" in alert.summary
    assert alert.severity is Severity.CRITICAL  # log2(601) = 9.2
    assert alert.window_start == local(14, 10)


def test_a_visa_desk_agent_reading_fifty_times_the_usual_passports_raises_one_alert():
    spike = burst(VISA_DESK[0], local(14, 10), events=20, records=100, fields=PASSPORT_FIELDS)
    alert = run(stream(*visa_desk_routine(), spike), NAME).only()
    assert alert.actor_id == VISA_DESK[0].id
    assert alert.evidence["baseline"] == pytest.approx(40, rel=0.05)
    assert alert.severity is Severity.HIGH  # 2,000 against ~40: log2(49) = 5.6


def test_every_high_sensitivity_class_read_is_named():
    spike = [
        *burst(AGENT, local(14, 10), events=5, records=60, fields=PASSPORT_FIELDS),
        *burst(AGENT, local(14, 10, 30), events=5, records=60, fields=BANK_FIELDS),
    ]
    alert = run(stream(history(AGENT, days=14, per_hour=3, records=2), spike), NAME).only()
    assert alert.evidence["classes"] == ["financial", "government_id"]
    assert "financial, government id data" in alert.summary


def test_fewer_than_min_records_never_alert_even_the_first_time():
    small = burst(AGENT, local(14, 10), events=4, records=10, fields=PASSPORT_FIELDS)  # 40 < 50
    assert run(stream(history(AGENT, days=14, per_hour=3, records=2), small), NAME).alerts == []
    lower = {NAME: {"min_records": 40}}
    assert run(stream(history(AGENT, days=14, per_hour=3, records=2), small), NAME, config=lower).alerts


# -- what it must leave alone --------------------------------------------------


def test_the_visa_desk_routine_raises_nothing():
    usual = burst(VISA_DESK[0], local(14, 10), events=6, records=10, fields=PASSPORT_FIELDS)  # 60, a busy hour
    assert run(stream(*visa_desk_routine(), usual), NAME).alerts == []


def test_a_weekly_review_of_bank_details_at_its_usual_hour_is_routine():
    # compliance checks 2,000 customers' bank details every Friday at 15:00, and reads little else
    officer = Actor("emp-0070", role="compliance", department="risk")
    weekly = [burst(officer, local(4 + 7 * week, 15), events=4, records=500, fields=BANK_FIELDS) for week in range(4)]
    routine = history(officer, days=28, per_hour=3, records=2)
    assert run(stream(routine, *weekly), NAME).alerts == []
    # a review ten times the usual size is not the routine one
    bigger = [*weekly[:3], burst(officer, local(25, 15), events=4, records=5000, fields=BANK_FIELDS)]
    assert run(stream(routine, *bigger), NAME).only().window_start == local(25, 15)


def bursty_partner_routine(days: int = 14):
    """A booking agent who reads a passport or two an hour, and exports 150 of them once on most days."""
    agent = Actor("ptn-0005", kind="partner", role="booking_agent", organization="sky", department=None)
    reads = history(agent, days=days, per_hour=3, records=1, fields=PASSPORT_FIELDS, weekdays=range(7))
    exports = [
        burst(agent, local(day, 9 + day % 7), events=1, records=150, fields=PASSPORT_FIELDS, action="export")
        for day in range(days)
        if day % 5 != 4  # four days in five
    ]
    return agent, [reads, *exports]


def test_a_partner_whose_routine_comes_in_bursts_is_judged_by_its_usual_bursts():
    agent, routine = bursty_partner_routine()
    # two exports in one hour: ~90x the usual hour, but within twice the busiest hour of a busier day
    busy = burst(agent, local(14, 16), events=2, records=140, fields=PASSPORT_FIELDS, action="export")
    assert run(stream(*routine, busy), NAME).alerts == []
    # without the comparison with the usual busiest hour, the same hour would be paged
    plain = run(stream(*routine, busy), NAME, config={NAME: {"min_peak_ratio": 0}}).alerts
    assert local(14, 16) in [a.window_start for a in plain if a.severity.at_least(Severity.MEDIUM)]
    # an export ten times the usual burst is not routine
    bulk = burst(agent, local(14, 16), events=4, records=400, fields=PASSPORT_FIELDS, action="export")
    alert = run(stream(*routine, bulk), NAME).only()
    assert alert.actor_id == agent.id and alert.severity.at_least(Severity.HIGH)


def booking_desk_story(exported: int):
    """Four booking agents who read a passport or two an hour and export ~250 passports in one hour on most days;
    the newest exported only 60 a day in its first week, and on its first judged day exports ``exported``."""
    agents = team(4, role="booking_agent", prefix="ptn", kind="partner", organization="sky", department=None)
    newcomer, others = agents[0], agents[1:]
    parts = [history(a, days=8, per_hour=3, records=1, fields=PASSPORT_FIELDS, weekdays=range(7)) for a in agents]
    parts += [
        burst(a, local(day, 11 + n), events=1, records=250, fields=PASSPORT_FIELDS, action="export")
        for n, a in enumerate(others)
        for day in range(8)
        if day % 5 != 4  # four days in five
    ]
    parts += [
        burst(newcomer, local(day, 16), events=1, records=60, fields=PASSPORT_FIELDS, action="export")
        for day in range(7)
    ]
    parts.append(
        burst(newcomer, local(7, 10), events=3, records=exported // 3, fields=PASSPORT_FIELDS, action="export")
    )
    return newcomer, stream(*parts)


def test_an_export_the_size_of_the_roles_usual_burst_is_routine_for_a_newly_judged_agent():
    # 345 passports: over five times the newcomer's own usual burst (60, from its first week), within twice
    # the bursts its fellow agents export on most days
    newcomer, events = booking_desk_story(345)
    assert run(events, NAME).alerts == []
    # four times the role's usual burst is not routine
    newcomer, events = booking_desk_story(1200)
    alert = run(events, NAME).only()
    assert alert.actor_id == newcomer.id and alert.window_start == local(7, 10)


def test_a_population_wide_busy_hour_raises_nobody():
    rush = [burst(a, local(14, 10), events=20, records=20, fields=PASSPORT_FIELDS) for a in VISA_DESK]  # 10x each
    assert run(stream(*visa_desk_routine(), *rush), NAME).alerts == []
    # one agent alone at that volume is news
    assert [a.actor_id for a in run(stream(*visa_desk_routine(), rush[0]), NAME).alerts] == [VISA_DESK[0].id]


def test_a_new_hire_is_judged_on_the_peers_usual():
    hire = Actor("emp-0099", role="visa_desk", ip="10.9.9.9")
    like_peers = history(hire, days=2, start_day=14, per_hour=5, records=8, fields=PASSPORT_FIELDS)
    assert run(stream(*visa_desk_routine(16), like_peers), NAME).alerts == []

    bulk = burst(hire, local(16, 10), events=20, records=100, fields=PASSPORT_FIELDS)
    alert = run(stream(*visa_desk_routine(16), like_peers, bulk), NAME).only()
    assert alert.actor_id == hire.id and alert.evidence["baseline_from"] == "peers"


def test_a_new_hire_in_a_team_that_never_reads_passports_is_judged_on_that():
    agents = team(5)
    routine = [history(a, days=16, per_hour=3, records=2) for a in agents]
    hire = Actor("emp-0099", ip="10.9.9.9")
    bulk = burst(hire, local(15, 10), events=10, records=60, fields=PASSPORT_FIELDS)
    alert = run(stream(*routine, bulk), NAME).only()
    assert alert.evidence["baseline_from"] == "peers" and "their peers' usual is none" in alert.summary


def test_an_actor_with_no_baseline_and_no_peers_is_judged_against_all_employees():
    contractor = Actor("emp-x001", role="contractor", ip="10.9.9.9")  # a role nobody else has, never seen
    passports = burst(contractor, local(14, 14, 5), events=4, records=500, fields=PASSPORT_FIELDS)
    alert = run(stream(*visa_desk_routine(), passports), NAME).only()
    assert alert.actor_id == contractor.id and alert.evidence["baseline_from"] == "employees"
    assert "50x employees' usual of 40" in alert.summary and alert.severity is Severity.HIGH


def test_bulk_work_citing_a_purpose_is_capped_at_medium():
    spike = burst(AGENT, local(14, 10), events=10, records=60, fields=PASSPORT_FIELDS, purpose="CASE-2291")
    alert = run(stream(history(AGENT, days=14, per_hour=3, records=2), spike), NAME).only()
    assert alert.severity is Severity.MEDIUM and alert.score > 7  # critical by its figures
    assert alert.evidence["documented"]["purposes"] == ["CASE-2291"]


# -- alerts as an analyst sees them --------------------------------------------


def test_a_finding_that_continues_grows_one_alert():
    agent = VISA_DESK[0]
    spikes = [burst(agent, local(14, hour), events=20, records=100, fields=PASSPORT_FIELDS) for hour in (10, 11, 12)]
    result = run(stream(*visa_desk_routine(15), *spikes), NAME)
    alert = result.only()
    assert (alert.window_start, alert.window_end) == (local(14, 10), local(14, 13))
    assert alert.evidence["findings"] == alert.revision == len(result.findings) == 3


def test_a_sustained_read_of_data_never_read_before_keeps_growing_the_alert():
    hours = range(10, 16)
    spikes = [burst(AGENT, local(14, hour), events=10, records=60, fields=PASSPORT_FIELDS) for hour in hours]
    result = run(stream(history(AGENT, days=15, per_hour=3, records=2), *spikes), NAME)
    alert = result.only()
    assert (alert.window_start, alert.window_end) == (local(14, 10), local(14, 16))
    assert alert.evidence["findings"] == len(hours)


def test_episodes_days_apart_are_separate_alerts():
    spikes = [burst(AGENT, local(day, 10), events=10, records=60, fields=PASSPORT_FIELDS) for day in (14, 17)]
    alerts = run(stream(history(AGENT, days=21, per_hour=3, records=2), *spikes), NAME).alerts
    assert [a.window_start for a in alerts] == [local(14, 10), local(17, 10)], [describe(a) for a in alerts]


def test_no_alert_during_the_system_warm_up():
    events = stream(
        history(AGENT, days=6, per_hour=3, records=2, weekdays=range(7)),
        burst(AGENT, local(6, 10), events=10, records=60, fields=PASSPORT_FIELDS),
    )
    assert run(events, NAME).alerts == []
    shorter = settings_with(baselines__system_warmup="5d")
    assert run(events, NAME, settings=shorter).only().window_start == local(6, 10)
