"""``egress``: far more records exported, downloaded, printed or shared than usual.

Stories run on the real engine (``tests.detector_harness``): office hours on
weekdays from Monday 2 November, anomalies after the week of warm-up.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from detectors.egress import Egress
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

NAME = "egress"
AGENT = Actor("emp-0001")
LEAD = Actor("emp-0100", role="analyst", department="marketing")


def insider(records: int = 4000, day: int = 14, **access):
    """An agent who only reads, ~6 records an hour, then exports ``records`` in one hour."""
    return stream(
        history(AGENT, days=day, per_hour=3, records=2),
        burst(AGENT, local(day, 10), events=2, records=records // 2, action="export", **access),
    )


def lead_routine(days: int = 28):
    """The marketing lead: reads all day, and exports about 50 records every afternoon at four."""
    return [
        history(LEAD, days=days, per_hour=3, records=5),
        history(LEAD, days=days, per_hour=1, records=50, hours=[16], action="export"),
    ]


def newsletter_export(day: float, hour: float = 10):
    """The newsletter list: 15,000 contacts exported in two accesses."""
    return burst(LEAD, local(day, hour, 10), events=2, records=7500, within=timedelta(minutes=5), action="export")


# -- the shared interface ------------------------------------------------------


class TestContract(DetectorContract):
    detector = Egress
    scales = ("short",)
    bad_values = [
        ("min_records", -1, "greater than or equal to 0"),
        ("min_ratio", 0.9, "greater than or equal to 1"),
        ("min_z", -1, "greater than or equal to 0"),
    ]

    def story(self):
        return insider()


# -- what it exists for --------------------------------------------------------


def test_an_agent_who_never_exports_exporting_thousands_raises_one_alert():
    alert = run(insider(records=4000), NAME).only()
    assert alert.evidence["egress_records"] == 4000 and alert.evidence["baseline"] == 0
    assert alert.evidence["high_sensitivity_classes"] == []
    assert "exported 4,000 records" in alert.summary and "their usual is none" in alert.summary
    assert alert.evidence["egress_by_action"] == {"export": 4000}
    assert alert.severity is Severity.CRITICAL and alert.window_start == local(14, 10)


def test_sensitive_data_leaving_weighs_one_step_more():
    plain = run(insider(), NAME).only()
    with_passports = run(insider(fields=PASSPORT_FIELDS), NAME).only()
    assert with_passports.score == pytest.approx(plain.score + 1.0)
    assert with_passports.evidence["high_sensitivity_classes"] == ["government_id"]
    assert with_passports.summary.endswith("including government id data.")


@pytest.mark.parametrize("action, counted", [("download", True), ("print", True), ("share", True), ("read", False)])
def test_every_way_out_counts_and_reading_does_not(action, counted):
    spike = burst(AGENT, local(14, 10), events=2, records=2000, action=action)
    alerts = run(stream(history(AGENT, days=14, per_hour=3, records=2), spike), NAME).alerts
    assert len(alerts) == (1 if counted else 0)


def test_the_summary_says_what_was_done_largest_first():
    # a printer is not a download folder: the analyst reads which way the records went
    printed = burst(AGENT, local(14, 10), events=2, records=1500, action="print")
    shared = burst(AGENT, local(14, 10, 30), events=1, records=1000, within=timedelta(minutes=10), action="share")
    alert = run(stream(history(AGENT, days=14, per_hour=3, records=2), printed, shared), NAME).only()
    assert "printed 3,000 and shared 1,000 records" in alert.summary, alert.summary
    assert alert.evidence["egress_by_action"] == {"print": 3000, "share": 1000}


def test_fewer_than_min_records_never_alert_even_the_first_time():
    assert run(insider(records=400), NAME).alerts == []  # under 500
    assert run(insider(records=400), NAME, config={NAME: {"min_records": 400}}).alerts


def test_an_export_six_times_the_usual_size_alerts_on_a_steady_exporter():
    steady = history(LEAD, days=14, per_hour=1, records=100, hours=[16], action="export")
    big = burst(LEAD, local(14, 16, 10), events=1, records=1500, action="export")
    alert = run(stream(steady, big), NAME).only()
    assert alert.evidence["baseline"] == pytest.approx(100, rel=0.02)
    assert alert.severity is Severity.MEDIUM  # 1,500 against 100: log2(15) = 3.9


# -- what it must leave alone --------------------------------------------------


def test_the_weekly_export_at_its_usual_hour_is_routine():
    weekly = [newsletter_export(7 * week) for week in range(4)]
    assert run(stream(*lead_routine(), *weekly), NAME).alerts == []


def test_the_weekly_export_on_another_day_and_hour_is_not_routine():
    weekly = [newsletter_export(7 * week) for week in range(3)]
    moved = newsletter_export(23, hour=15)  # Wednesday afternoon
    alert = run(stream(*lead_routine(), *weekly, moved), NAME).only()
    assert alert.window_start == local(23, 15)
    assert alert.evidence["baseline_from"] == "own" and alert.evidence["egress_records"] == 15_000


def test_a_population_wide_busy_hour_raises_nobody():
    analysts = team(6, role="analyst", first=200)
    routine = [history(a, days=14, per_hour=1, records=60, hours=[11], action="export") for a in analysts]
    month_end = [burst(a, local(14, 11, 10), events=2, records=300, action="export") for a in analysts]  # 10x
    assert run(stream(*routine, *month_end), NAME).alerts == []
    assert [a.actor_id for a in run(stream(*routine, month_end[0]), NAME).alerts] == [analysts[0].id]


def test_a_new_hire_is_judged_on_the_peers_usual():
    analysts = team(5, role="analyst", first=200)
    routine = [history(a, days=16, per_hour=1, records=200, hours=[11], action="export") for a in analysts]
    hire = Actor("emp-0299", role="analyst", ip="10.9.9.9")
    like_peers = history(hire, days=2, start_day=14, per_hour=1, records=200, hours=[11], action="export")
    assert run(stream(*routine, like_peers), NAME).alerts == []

    bulk = burst(hire, local(16, 15), events=4, records=2500, action="export")
    alert = run(stream(*routine, like_peers, bulk), NAME).only()
    assert alert.actor_id == hire.id and alert.evidence["baseline_from"] == "peers"
    assert "their peers' usual of 200" in alert.summary


def services_at_night(days: int = 14):
    """Two service accounts of their own roles: a sync exporting 500 records a night, an ETL 20,000."""
    sync = Actor("svc-0001", kind="service", role="sync", department=None, ip="10.1.0.1")
    etl = Actor("svc-0002", kind="service", role="etl", department=None, ip="10.1.0.2")
    every_night = {"hours": [2], "weekdays": range(7), "action": "export"}
    return [
        history(sync, days=days, per_hour=1, records=500, **every_night),
        history(etl, days=days, per_hour=2, records=10_000, **every_night),
    ]


@pytest.mark.parametrize("records, alerted", [(20_000, False), (400_000, True)])
def test_a_service_with_no_baseline_and_no_peers_is_judged_against_the_busiest_service(records, alerted):
    # services differ by orders of magnitude: pooled, the sync's 500 and the ETL's 20,000 would make a spread
    # that even 400,000 stays within; against the busiest, an export the ETL's size is routine, twenty times it not
    report = Actor("svc-0100", kind="service", role="regulatory_report", department=None, ip="10.1.0.100")
    month_end = burst(report, local(14, 3), events=2, records=records // 2, action="export")
    alerts = run(stream(*services_at_night(), month_end), NAME).alerts
    assert [alert.actor_id for alert in alerts] == ([report.id] if alerted else [])
    if alerted:
        assert alerts[0].evidence["baseline_from"] == "busiest service"
        assert "20x the busiest service account's usual of 20,000" in alerts[0].summary


def test_bulk_work_citing_a_purpose_is_capped_at_medium():
    alert = run(insider(purpose="DSAR-2026-118"), NAME).only()  # a data-subject access request
    assert alert.severity is Severity.MEDIUM and alert.score >= 7
    assert alert.evidence["documented"] == {"share": 1.0, "purposes": ["DSAR-2026-118"]}


# -- alerts as an analyst sees them --------------------------------------------


def test_a_finding_that_continues_grows_one_alert():
    steady = history(LEAD, days=15, per_hour=1, records=100, hours=[16], action="export")
    spikes = [burst(LEAD, local(14, hour), events=2, records=1500, action="export") for hour in (10, 11, 12)]
    result = run(stream(steady, *spikes), NAME)
    alert = result.only()
    assert (alert.window_start, alert.window_end) == (local(14, 10), local(14, 13))
    assert alert.evidence["findings"] == alert.revision == len(result.findings) == 3


def test_episodes_days_apart_are_separate_alerts():
    steady = history(LEAD, days=21, per_hour=1, records=100, hours=[16], action="export")
    spikes = [burst(LEAD, local(day, 10), events=2, records=1500, action="export") for day in (14, 17)]
    alerts = run(stream(steady, *spikes), NAME).alerts
    assert [a.window_start for a in alerts] == [local(14, 10), local(17, 10)], [describe(a) for a in alerts]


def test_no_alert_during_the_system_warm_up():
    events = stream(
        history(AGENT, days=6, per_hour=3, records=2, weekdays=range(7)),
        burst(AGENT, local(6, 10), events=2, records=2000, action="export"),
    )
    assert run(events, NAME).alerts == []
    shorter = settings_with(baselines__system_warmup="5d")
    assert run(events, NAME, settings=shorter).only().window_start == local(6, 10)
