"""``ramp``: an actor reads more day after day, well past its usual (a slow exfiltration).

Stories run on the real engine (``tests.detector_harness``): a team of four
customer-service agents reads 10 records three times an hour in office hours
on weekdays from Monday 2 November (270 records a day); from Monday 23
November one of them also reads an afternoon's extra, growing geometrically
over eight working days to ten times the usual, as the simulator's slow ramp
does.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import orjson

from accesswatch import cli
from dashboard.queries import impact
from detectors.alerts import alert_id
from detectors.base import Finding
from detectors.ramp import DAY, Ramp
from models.alert import Severity
from store.base import IncidentQuery
from store.sqlite import SqliteStore
from tests.detector_contract import DetectorContract
from tests.detector_harness import (
    EVERY_DAY,
    ZONE,
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

NAME = "ramp"
TEAM = team(4)
AGENT = TEAM[0]
USUAL = 9 * 3 * 10  # records a day: nine office hours, three accesses of ten records


def working_days(first: int, count: int) -> list[int]:
    return [day for day in range(first, first + 3 * count) if local(day).weekday() < 5][:count]


def extra_reads(days: list[int], factors: list[float]) -> list[list[dict]]:
    """On each day, an afternoon's reads on top of the routine, to ``factor`` times the usual day."""
    extra = []
    for day, factor in zip(days, factors, strict=True):
        more = round(USUAL * (factor - 1.0))
        if more > 0:
            extra.append(burst(AGENT, local(day, 14), events=max(1, more // 50), records=50, within=timedelta(hours=3)))
    return extra


def ramp_factors(days: int = 8, target: float = 10.0) -> list[float]:
    return [target ** ((n + 1) / days) for n in range(days)]


def routine(days: int = 35, actors=TEAM):
    return [history(actor, days=days, per_hour=3, records=10) for actor in actors]


def insider(days: int = 8, target: float = 10.0):
    return stream(*routine(), *extra_reads(working_days(21, days), ramp_factors(days, target)))


# -- the shared interface ------------------------------------------------------


class TestContract(DetectorContract):
    detector = Ramp
    scales = ("long",)  # a ramp is a matter of days
    bad_values = [
        ("allowance", -0.5, "greater than or equal to 0"),
        ("min_sum", 0, "greater than 0"),
        ("min_days", 0, "greater than or equal to 1"),
        ("min_growth", 0.5, "greater than or equal to 1"),
        ("max_step", 0.9, "greater than or equal to 1"),
        ("min_ratio", 0.5, "greater than or equal to 1"),
        ("min_records", "many", "a valid integer"),
        ("max_gap_days", 0, "greater than 0"),
    ]

    def story(self):
        return insider()


# -- what it exists for --------------------------------------------------------


def test_an_eight_day_ramp_is_found_by_its_fifth_day_and_escalates():
    result = run(insider(), NAME)
    alerts = result.alerts
    assert all(alert.actor_id == AGENT.id for alert in alerts), [describe(a) for a in alerts]
    first = result.findings[0]
    # the ramp's first day (Monday, 1.3x) is within the usual, so its run starts on Tuesday (1.8x); Friday, the
    # fifth day, is the first at twice that
    assert datetime.fromtimestamp(first.window_end, ZONE) <= local(26)
    assert first.severity.rank >= Severity.MEDIUM.rank and first.evidence["days"] >= 3
    assert max(alert.severity.rank for alert in alerts) == Severity.CRITICAL.rank
    last = result.findings[-1]
    daily = last.evidence["daily_records"]
    assert daily == sorted(daily) and daily[0] == last.evidence["first_day_records"]  # it climbed every day
    assert daily[-1] >= 9 * USUAL


def test_the_summary_names_the_days_and_the_climb():
    first = run(insider(), NAME).findings[0]
    daily = first.evidence["daily_records"]
    assert f"on each of the {len(daily)} days worked from " in first.summary
    assert f"(records a day: {', '.join(f'{records:,}' for records in daily)})" in first.summary
    assert f"their usual of {round(first.evidence['baseline']):,}" in first.summary
    # a longer run: its last week's figures, said to be the last ones (not five figures for six days)
    later = [f for f in run(insider(days=10), NAME).findings if f.evidence["days"] > 7]
    assert later
    for finding in later:
        shown = finding.evidence["daily_records"][-7:]
        assert f"(records a day, the last 7: {', '.join(f'{records:,}' for records in shown)})" in finding.summary


def test_it_finds_the_ramp_where_the_daily_bulk_read_rule_is_still_silent():
    events = insider()
    first = run(events, NAME).findings[0]
    judged = first.window_end - DAY  # the day it was raised on (its window starts with the run)
    bulk = [f for f in run(events, "bulk_read").findings if f.actor.id == AGENT.id]
    assert all(f.window_start > judged for f in bulk), [describe(a) for a in run(events, "bulk_read").alerts]


def test_a_finding_covers_the_run_from_its_first_day_to_the_day_judged():
    # what a report filed from it counts: every day of the run, not the judged day's reads alone
    findings = run(insider(), NAME).findings
    assert len(findings) >= 3
    for finding in findings:
        # Tuesday 24 November, the run's first day (the module's docstring), at local midnight
        assert finding.window_start == local(22).timestamp(), describe_finding(finding)
        judged = datetime.fromtimestamp(finding.window_end, ZONE) - timedelta(days=1)
        assert judged.hour == 0 and judged.weekday() < 5, describe_finding(finding)
    assert [f.window_end for f in findings] == sorted({f.window_end for f in findings})  # a day each, in turn
    assert datetime.fromtimestamp(findings[0].window_end, ZONE) == local(26)  # Friday, the first found


def test_a_run_goes_on_over_a_weekend_as_one_alert():
    result = run(insider(), NAME)
    # Tuesday 24 November to Wednesday 2 December: the days either side of the weekend are one run
    days = [f.evidence["days"] for f in result.findings]
    assert days == sorted(days) and days[-1] >= 6
    # its findings overlap: one alert grows over the run, kept open over the weekend (merge_gap is 2h), under
    # the id its first finding gave it; a new alert after the weekend would have taken the same id
    alert = result.only()
    assert alert.evidence["findings"] == len(alert.evidence["spans"]) == len(result.findings) >= 3
    assert alert.alert_id == alert_id(NAME, AGENT.id, local(22).timestamp())
    last = datetime.fromtimestamp(result.findings[-1].window_end, ZONE)
    assert (alert.window_start, alert.window_end) == (local(22), last)


def test_the_alert_is_let_go_once_the_run_is_over():
    # the ramp, then the agent away for a fortnight while the team works on: the silence ends the run
    events = stream(*routine(35, [AGENT]), *routine(49, TEAM[1:]), *extra_reads(working_days(21, 8), ramp_factors()))
    result = run(events, NAME)
    engine = result.engine
    assert result.only().actor_id == AGENT.id and engine is not None
    assert not engine.detectors[0].may_grow(AGENT.id)
    assert [key for key in engine.book.open if key[0] == NAME] == []  # nothing held for it any more


def test_the_incident_report_counts_every_day_of_the_run(tmp_path):
    # the report a privacy officer files from the ramp's incident: every record and customer of the run's days
    parts = [*routine(), *extra_reads(working_days(21, 8), ramp_factors())]
    merged = sorted(itertools.chain.from_iterable(parts), key=lambda data: data["timestamp"])
    events = tmp_path / "events.jsonl"
    events.write_bytes(
        b"".join(orjson.dumps({**data, "event_id": f"e{n:07d}"}) + b"\n" for n, data in enumerate(merged))
    )
    config = tmp_path / "replay.toml"
    config.write_text('[ingest]\nmax_future_skew = "3650d"\n')  # the story's weeks, whenever the test runs
    data = tmp_path / "data"
    assert cli.main(["replay", str(events), "--data-dir", str(data), "--config", str(config)]) == 0
    with SqliteStore(data / "accesswatch.db") as store:
        found = [i for i in store.query_incidents(IncidentQuery(limit=100)) if NAME in i.detectors]
        assert len(found) == 1, [(i.window_start, i.window_end, i.detectors) for i in found]
        incident = found[0]
        ramp = next(alert for alert in store.get_alerts(incident.alert_ids) if alert.detector == NAME)
        read = impact(store, incident)
    daily = ramp.evidence["daily_records"]
    assert ramp.evidence["days"] == len(daily) >= 6 and incident.window_start == ramp.window_start == local(22)
    assert read.records == sum(daily) and read.customers  # the run's days, the first included, and nothing else


def describe_finding(finding: Finding) -> str:
    start, end = datetime.fromtimestamp(finding.window_start, ZONE), datetime.fromtimestamp(finding.window_end, ZONE)
    return f"{start:%a %d %b %H:%M}-{end:%a %d %b %H:%M} local, {finding.evidence['days']} days: {finding.summary}"


# -- what it must leave alone --------------------------------------------------


def test_one_very_busy_day_is_not_a_ramp():
    events = stream(*routine(), *extra_reads([23], [8.0]))
    assert run(events, NAME).alerts == []


def test_two_busy_days_are_not_a_ramp():
    events = stream(*routine(), *extra_reads([22, 23], [5.0, 8.0]))
    assert run(events, NAME).alerts == []


def test_a_steady_slightly_busier_stretch_is_not_a_ramp():
    # taking over a colleague's share: 1.6x the usual for two weeks, each day a little over it (z under 1),
    # which the allowance takes away
    events = stream(*routine(), *extra_reads(working_days(21, 10), [1.6] * 10))
    assert run(events, NAME).alerts == []
    lower = run(events, NAME, config={NAME: {"allowance": 0.2, "min_ratio": 1.2, "min_growth": 1.0}})
    assert lower.alerts and all(a.actor_id == AGENT.id for a in lower.alerts)


def test_a_plateau_is_not_a_ramp_however_long():
    # three times the usual from one day to the next, for two weeks: the sum grows, but nothing climbs
    events = stream(*routine(), *extra_reads(working_days(21, 10), [3.0] * 10))
    assert run(events, NAME).alerts == []
    flat = run(events, NAME, config={NAME: {"min_growth": 1.0}})
    assert flat.alerts and all(a.actor_id == AGENT.id for a in flat.alerts)


def test_a_jump_in_one_day_is_a_bulk_read_not_a_ramp():
    # two busier days, then twelve times the usual (over five times the day before): bulk_read's to judge
    events = stream(*routine(), *extra_reads(working_days(21, 3), [1.8, 2.2, 12.0]))
    assert run(events, NAME).alerts == []
    assert run(events, NAME, config={NAME: {"max_step": 6.0}}).alerts
    assert [a.actor_id for a in run(events, "bulk_read").alerts] == [AGENT.id]


def test_a_day_below_the_runs_busiest_raises_nothing_new():
    # up to five times the usual, then a quieter day still well above it: the run goes on, the climb does not
    days = working_days(21, 5)
    events = stream(*routine(), *extra_reads(days, [2.0, 3.0, 5.0, 3.5, 3.5]))
    found = run(events, NAME).findings
    assert found and {f.window_end for f in found} == {local(days[2] + 1).timestamp()}


def test_the_whole_team_busier_day_after_day_is_not_a_ramp():
    # every agent climbs alike (a campaign): the population allowance takes it away
    climbing = [
        burst(
            actor,
            local(day, 14),
            events=max(1, round(USUAL * (factor - 1.0)) // 50),
            records=50,
            within=timedelta(hours=3),
        )
        for actor in TEAM
        for day, factor in zip(working_days(21, 8), ramp_factors(), strict=True)
    ]
    assert run(stream(*routine(), *climbing), NAME).alerts == []


def test_an_actor_judged_against_all_employees_has_no_ramp():
    # a contractor, a role nobody else has, climbing over its first days: judged on employees' usual, not its own
    contractor = Actor("emp-0800", role="contractor", ip="10.8.0.1")
    days = working_days(21, 4)
    climb = [
        burst(contractor, local(day, 10), events=max(1, records // 50), records=50, within=timedelta(hours=6))
        for day, records in zip(days, [300, 700, 1500, 3000], strict=True)
    ]
    assert run(stream(*routine(), *climb), NAME).alerts == []


def test_a_long_silence_ends_a_run():
    # three days up (Tuesday to Thursday), a week and a half away, three days further up: never four days of one run
    away = [
        history(AGENT, days=25, per_hour=3, records=10),
        history(AGENT, days=7, start_day=35, per_hour=3, records=10),
    ]
    up = extra_reads([22, 23, 24], [2.0, 2.6, 3.2]) + extra_reads([35, 36, 37], [3.5, 4.2, 5.0])
    events = stream(*routine(42, TEAM[1:]), *away, *up)
    assert run(events, NAME, config={NAME: {"min_days": 4}}).alerts == []
    longer = run(events, NAME, config={NAME: {"min_days": 4, "max_gap_days": 14}})
    assert longer.alerts, "the control: with a longer allowed silence the two stretches are one run"


def test_no_alert_during_the_system_warm_up():
    # the agent climbs on days 4 to 6, inside the week of system warm-up
    early = stream(
        *[history(actor, days=12, per_hour=3, records=10, weekdays=EVERY_DAY) for actor in TEAM],
        *extra_reads([4, 5, 6], [3.0, 4.0, 9.0]),
    )
    two_days = {NAME: {"min_days": 2}}
    assert run(early, NAME, config=two_days).alerts == []
    shorter = settings_with(baselines__system_warmup="5d")
    assert run(early, NAME, config=two_days, settings=shorter).only().window_end == local(7)
