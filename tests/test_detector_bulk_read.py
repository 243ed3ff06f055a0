"""``bulk_read``: far more records, or distinct customers, than the actor usually reads.

Stories run on the real engine (``tests.detector_harness``); the team reads
in office hours on weekdays, from Monday 2 November; anomalies come after
the week of system warm-up and the actor's five active days.
"""

from __future__ import annotations

from datetime import UTC, timedelta, timezone

import pytest
from pydantic import ValidationError

from detectors import wording
from detectors.bulk_read import BulkRead
from detectors.registry import DETECTORS
from detectors.windows import MAX_TRACKED_CUSTOMERS, ActorRef, WindowStats
from models.alert import Severity
from models.event import ActorKind, format_utc
from tests.detector_contract import DetectorContract
from tests.detector_harness import (
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

NAME = "bulk_read"
AGENT = Actor("emp-0001")


def insider(records: int = 3000, day: int = 14):
    """An agent who reads ~3 records an hour for two weeks, then ``records`` in one hour of day ``day``."""
    return stream(
        history(AGENT, days=day, per_hour=3),
        burst(AGENT, local(day, 10), events=10, records=records // 10),
    )


# -- the shared interface ------------------------------------------------------


class TestContract(DetectorContract):
    detector = BulkRead
    scales = ("short", "long")  # days too: the slow ramp
    bad_values = [
        ("min_records", -1, "greater than or equal to 0"),
        ("min_ratio", 0.5, "greater than or equal to 1"),
        ("daily_min_z", "high", "a valid number"),
        ("absolute_limits", {"robot": 10}, "'employee', 'partner' or 'service'"),
    ]

    def story(self):
        return insider()


# -- what it exists for --------------------------------------------------------


def test_an_hour_of_bulk_reading_raises_one_alert_naming_the_volume_and_the_usual():
    alert = run(insider(records=3000), NAME).only()
    evidence = alert.evidence
    assert alert.actor_id == "emp-0001"
    assert evidence["records"] == 3000 and evidence["value"] == 3000
    assert evidence["baseline"] == pytest.approx(3, abs=0.5)
    assert evidence["baseline_from"] in ("own", "own rhythm", "own weekday")
    assert "3,000" in alert.summary and "of 3" in alert.summary
    # records are summed over accesses: the sentence says so, beside the customers the accesses logged
    assert "accessed 3,000 records in 10 accesses (3,000 distinct customer ids logged) on " in alert.summary
    # 750 times the usual: log2(750) = 9.6, past the critical threshold of 7
    assert alert.severity is Severity.CRITICAL and alert.score == pytest.approx(9.55, abs=0.1)
    # the hour at 10:00 opened it; the day's finding grew it, and the window covers both (the contract's span)
    assert alert.evidence["spans"][0][0] == format_utc(local(14, 10))
    assert (alert.window_start, alert.window_end) == (local(14), local(15))
    assert set(evidence["event_ids"]) >= {e.event_id for e in insider()[-10:]}


def test_the_summary_names_the_zone_of_its_local_times():
    """Read beside times in UTC (a page's "When"), an unlabelled "10:00-11:00" is wrong by the zone's offset."""
    alert = run(insider(records=3000), NAME).only()
    assert f"on {local(14, 10):%a %d %b} 10:00-11:00 Asia/Shanghai, " in alert.summary
    assert wording.span(0, 3600, timezone(timedelta(hours=-5, minutes=-30))) == "on Wed 31 Dec 18:30-19:30 UTC-05:30"
    assert wording.span(0, 3600, UTC) == "on Thu 01 Jan 00:00-01:00 UTC"
    assert wording.span(0, 86400, UTC) == "on Thu 01 Jan"  # a whole local day: no time of day to label


@pytest.mark.parametrize(
    "records, severity",
    [
        (240, None),  # 7.7x the usual 30: under min_ratio 8
        (400, Severity.MEDIUM),  # 13x: log2 = 3.7
        (1500, Severity.HIGH),  # 48x: 5.6
        (8000, Severity.CRITICAL),  # 258x: 8.0
    ],
)
def test_severity_grows_with_how_many_times_the_usual_was_read(records, severity):
    analyst = Actor("emp-0002", role="analyst")
    events = stream(
        history(analyst, days=14, per_hour=3, records=10),  # ~30 records an hour
        burst(analyst, local(14, 10), events=20, records=records // 20),
    )
    alerts = run(events, NAME).alerts
    assert [a.severity for a in alerts] == ([severity] if severity else []), [describe(a) for a in alerts]


def test_a_whole_day_of_over_reading_alerts_on_the_day_when_no_hour_stands_out():
    analyst = Actor("emp-0002", role="analyst")
    events = stream(
        history(analyst, days=14, per_hour=3, records=10),  # ~30 an hour, ~270 a day
        history(analyst, days=1, start_day=14, per_hour=10, records=20),  # 200 every hour: 6.5x, 1,800 in the day
    )
    alert = run(events, NAME).only()
    assert alert.evidence["scale"] == "long" and alert.evidence["records"] == 1800
    assert (alert.window_start, alert.window_end) == (local(14), local(15))


def test_over_the_absolute_limit_alerts_even_when_the_actor_usually_reads_a_lot():
    partner = Actor("ptn-0001", kind="partner", role="booking_agent", organization="blue-sky-travel", department=None)
    events = stream(
        history(partner, days=14, per_hour=5, records=1000),  # 5,000 an hour
        burst(partner, local(14, 10), events=25, records=1000),  # 25,000: 5x, over the partner limit of 20,000
    )
    alert = run(events, NAME).only()
    assert alert.evidence["limit"] == 20_000 and alert.evidence["value"] == 25_000
    assert alert.severity is Severity.MEDIUM
    assert run(events, NAME, config={NAME: {"absolute_limits": {"partner": 0}}}).alerts == []


NEWSLETTER = Actor("emp-0100", role="analyst", department="marketing")


def one_list_in_steps(records: int, steps=("search", "export", "download"), same_ids: bool = True):
    """The newsletter job: one list of ``records`` customers handled in ``steps`` accesses, at 10:00 on day 14.

    Each access logs the list's ids (the contract takes at most 10,000 an access: the first 10,000), the same
    ones each time; else (``same_ids`` False) each access logs customers of its own, as a theft does.
    """
    job = [access for action in steps for access in burst(NEWSLETTER, local(14, 10), records=records, action=action)]
    if same_ids:
        for access in job:
            access["customer_ids"] = job[0]["customer_ids"]
    else:
        for n, access in enumerate(job):
            access["customer_ids"] = [f"{n}-{customer}" for customer in access["customer_ids"]]
    return job


def newsletter_routine(records_an_hour: int = 9000):
    return history(NEWSLETTER, days=14, per_hour=3, records=records_an_hour // 3)


def test_a_list_searched_exported_and_downloaded_counts_once_against_the_hard_limit():
    """The newsletter job searches, exports and downloads the same 17,982 customers: 53,946 records summed.

    Summed, they cross the employee limit of 50,000, a false page every week; the limit is on customer data read,
    and the logged ids show the same customers three times: 17,982 records counted once.
    """
    job = one_list_in_steps(17_982)
    assert sum(access["record_count"] for access in job) == 53_946
    assert run(stream(newsletter_routine(), job), NAME).alerts == []  # 53,946 is 6x the usual 9,000: not 8x
    # a list of 60,000 handled in two steps is over the limit once: the sentence says both figures
    alert = run(stream(newsletter_routine(18_000), one_list_in_steps(60_000, ("search", "export"))), NAME).only()
    assert alert.evidence["limit"] == 50_000 and alert.evidence["records"] == 120_000
    assert alert.evidence["value"] == 60_000 and alert.evidence["figure"] == "records counted once per customer"
    assert alert.summary == (
        "Employee emp-0100 (analyst) accessed 120,000 records in 2 accesses (10,000 distinct customer ids logged) "
        f"on {local(14, 10):%a %d %b} 10:00-11:00 Asia/Shanghai, 60,000 with each customer counted once, over the "
        "limit of 50,000 for an employee."
    )


@pytest.mark.parametrize("logged", ["distinct ids", "no ids"])
def test_a_theft_of_many_customers_in_a_few_accesses_still_trips_the_hard_limit(logged):
    # three accesses of 18,000 records, each of other customers (past the 20,000 ids a window counts), or logging
    # none: nothing shows a repeat, and 54,000 records count whole, as a bulk theft must
    job = one_list_in_steps(18_000, same_ids=False)
    if logged == "no ids":
        for access in job:
            del access["customer_ids"]
    alert = run(stream(newsletter_routine(), job), NAME).only()
    assert alert.evidence["limit"] == 50_000 and alert.evidence["value"] == alert.evidence["records"] == 54_000
    assert alert.evidence["figure"] == "records" and "counted once" not in alert.summary
    assert alert.severity is Severity.MEDIUM
    if logged == "distinct ids":
        assert "accessed 54,000 records in 3 accesses (at least 20,000 distinct customer ids logged) on " in (
            alert.summary
        )


def test_the_customers_beside_the_records_are_left_out_when_none_were_logged_and_a_floor_past_the_count():
    window = WindowStats(ActorRef("emp-0001", ActorKind.EMPLOYEE), 0.0, 3600.0)
    window.records, window.events = 1, 1
    assert wording.accessed(window) == "accessed 1 record in 1 access"  # a table export that names no customer
    window.records, window.events = 45_000, 3
    window.customers = {f"c-{n}" for n in range(MAX_TRACKED_CUSTOMERS)}  # the window stopped counting here
    assert wording.accessed(window) == (
        "accessed 45,000 records in 3 accesses (at least 20,000 distinct customer ids logged)"
    )


def test_the_summary_names_each_actor_kind_with_its_article():
    assert [wording.a_kind(kind) for kind in ActorKind] == ["an employee", "a partner", "a service account"]
    # and the actor itself: a service is a "service account" wherever the product speaks of one
    assert wording.who(ActorRef("svc-17", ActorKind.SERVICE)).capitalize() == "Service account svc-17"


# -- what it must leave alone --------------------------------------------------


def weekly_export(actor: Actor, weeks: int, with_customers: bool = True, hour: float = 10):
    """Every Monday at ``hour``: 15,000 contacts searched and exported in two accesses."""
    accesses = []
    for week in range(weeks):
        for access in burst(actor, local(7 * week, hour, 10), events=2, records=7500, within=timedelta(minutes=5)):
            if not with_customers:
                access.pop("customer_ids", None)
            accesses.append(access)
    return accesses


LEAD = Actor("emp-0100", role="analyst", department="marketing")


def test_the_weekly_export_at_its_usual_hour_is_routine_by_its_record_count():
    # a table export that names no customers: judged on records only, against the Monday-10:00 rhythm
    events = stream(history(LEAD, days=28, per_hour=3, records=5), weekly_export(LEAD, 4, with_customers=False))
    assert run(events, NAME).alerts == []


def test_the_weekly_export_at_another_hour_is_not_routine():
    events = stream(
        history(LEAD, days=28, per_hour=3, records=5),
        weekly_export(LEAD, 3, with_customers=False),
        burst(LEAD, local(23, 15), events=2, records=7500),  # the fourth one on Tuesday afternoon
    )
    alert = run(events, NAME).only()
    # the hour opened it; grown by the day's finding, its window covers that day
    assert alert.evidence["spans"][0][0] == format_utc(local(23, 15))
    assert (alert.window_start, alert.window_end) == (local(23), local(24))


def test_the_weekly_export_at_its_usual_hour_is_routine_when_it_names_its_customers():
    events = stream(history(LEAD, days=28, per_hour=3, records=5), weekly_export(LEAD, 4))
    alerts = run(events, NAME).alerts
    assert alerts == [], [describe(a) for a in alerts]


def test_a_population_wide_busy_hour_raises_nobody():
    agents = team(8)
    routine = [history(a, days=14, per_hour=3, records=10) for a in agents]
    sale = [burst(a, local(14, 10), events=30, records=20) for a in agents]  # everyone reads 20x
    assert run(stream(*routine, *sale), NAME).alerts == []
    # the same hour for one agent alone is news
    assert [a.actor_id for a in run(stream(*routine, sale[0]), NAME).alerts] == ["emp-0001"]


def test_an_insider_does_not_hide_in_a_busy_hour():
    agents = team(8)
    routine = [history(a, days=14, per_hour=3, records=10) for a in agents]
    sale = [burst(a, local(14, 10), events=30, records=20) for a in agents[1:]]  # the others read 20x
    insider_too = burst(agents[0], local(14, 10), events=30, records=400)  # 400x: 20x the busy level
    alert = run(stream(*routine, *sale, insider_too), NAME).only()
    assert alert.actor_id == agents[0].id
    assert alert.evidence["population_factor"] == pytest.approx(20, rel=0.1)


def test_a_new_hire_is_judged_on_the_peers_usual():
    agents = team(6)
    routine = [history(a, days=14, per_hour=3, records=10) for a in agents]
    hire = Actor("emp-0900", ip="10.9.9.9")
    like_peers = history(hire, days=2, start_day=14, per_hour=3, records=10)
    assert run(stream(*routine, like_peers), NAME).alerts == []

    bulk = burst(hire, local(16, 10), events=10, records=500)
    alert = run(stream(*routine, like_peers, bulk), NAME).only()
    assert alert.actor_id == "emp-0900" and alert.evidence["baseline_from"] == "peers"
    assert "peers' usual of 30" in alert.summary


@pytest.mark.parametrize("purpose", [None, "CHG-2026-0042"])
def test_an_actor_with_no_baseline_and_no_peers_is_judged_against_all_employees(purpose):
    # a contractor, a role nobody else has, never seen before: neither its own baseline nor peers to judge it on
    contractor = Actor("emp-x001", role="contractor", ip="10.9.9.9")
    routine = [history(a, days=14, per_hour=3, records=10) for a in team(6)]
    dump = burst(contractor, local(14, 14, 5), records=40_000, **({"purpose": purpose} if purpose else {}))
    alerts = run(stream(*routine, dump), NAME).alerts
    if purpose is not None:
        # documented work, judged only against everyone of its kind: no news (detectors.kind_baseline)
        assert alerts == []
        return
    (alert,) = alerts
    assert alert.actor_id == contractor.id and alert.severity is Severity.CRITICAL
    assert alert.evidence["baseline_from"] == "employees"
    assert "1,333x employees' usual of 30" in alert.summary

    like_everyone = burst(contractor, local(14, 14, 5), events=3, records=10)
    assert run(stream(*routine, like_everyone), NAME).alerts == []


@pytest.mark.parametrize("documented, severity", [(10, Severity.MEDIUM), (8, Severity.CRITICAL)])
def test_bulk_work_citing_a_purpose_is_capped_at_medium(documented, severity):
    # 10 accesses of 300 records; ``documented`` of them cite the ticket (the cap needs 90% of the records)
    spike = burst(AGENT, local(14, 10), events=10, records=300)
    for access in spike[:documented]:
        access["purpose"] = "TICKET-4411"
    alert = run(stream(history(AGENT, days=14, per_hour=3), spike), NAME).only()
    assert alert.severity is severity
    if severity is Severity.MEDIUM:
        assert alert.evidence["documented"] == {"share": 1.0, "purposes": ["TICKET-4411"]}
        assert "TICKET-4411" in alert.summary
    else:
        assert "documented" not in alert.evidence


@pytest.mark.parametrize("purpose", ["x", "see ticket", "case #1 **urgent**", "TICKET 4411"])
def test_a_purpose_that_is_no_reference_does_not_lower_the_severity(purpose):
    # the log's writer chooses its purposes: any text would otherwise cap a bulk theft at medium (tester T9)
    spike = burst(AGENT, local(14, 10), events=10, records=300)
    for access in spike:
        access["purpose"] = purpose
    alert = run(stream(history(AGENT, days=14, per_hour=3), spike), NAME).only()
    assert alert.severity is Severity.CRITICAL and "documented" not in alert.evidence


def test_the_form_of_a_reference_is_a_setting():
    settings = DETECTORS[NAME].Settings(documented_purpose=r"CS-\d{4}")
    assert settings.documents(["CS-4411", "CS-0001"]) and not settings.documents(["CS-4411", "TICKET-4411"])
    with pytest.raises(ValidationError, match="a regular expression"):
        DETECTORS[NAME].Settings(documented_purpose="(unclosed")


def test_a_lasting_change_of_duties_becomes_the_norm_within_two_weeks():
    analyst = Actor("emp-0002", role="analyst")
    events = stream(
        history(analyst, days=14, per_hour=3, records=10),  # ~30 records an hour
        history(analyst, days=28, start_day=14, per_hour=3, records=100),  # from day 14 on, ~300 an hour for good
    )
    result = run(events, NAME)
    assert result.findings, "the change itself should be noticed"
    last = max(finding.window_start for finding in result.findings)
    assert last < local(28).timestamp(), [describe(a) for a in result.alerts]


# -- alerts as an analyst sees them --------------------------------------------


def test_a_finding_that_continues_grows_one_alert():
    events = stream(
        history(AGENT, days=14, per_hour=3),
        *(burst(AGENT, local(14, hour), events=10, records=300) for hour in (10, 11, 12)),
    )
    result = run(events, NAME, config={NAME: {"daily_min_records": 10**9}})  # hours only
    alert = result.only()
    assert (alert.window_start, alert.window_end) == (local(14, 10), local(14, 13))
    assert alert.evidence["findings"] == alert.revision == len(result.findings) == 3
    assert [span[0] for span in alert.evidence["spans"]] == [
        "2026-11-16T02:00:00.000Z",
        "2026-11-16T03:00:00.000Z",
        "2026-11-16T04:00:00.000Z",
    ]
    # each growth was sent on under the same id
    assert {update.alert_id for update in result.updates} == {alert.alert_id}


def test_the_day_finding_of_the_same_spike_grows_the_hour_alert():
    events = stream(
        history(AGENT, days=15, per_hour=3),  # the spike day goes on as usual, and so does the next
        burst(AGENT, local(14, 10), events=10, records=300),
    )
    result = run(events, NAME)
    assert {f.evidence["scale"] for f in result.findings} == {"short", "long"}
    alert = result.only()
    assert alert.evidence["findings"] == 2


def test_episodes_days_apart_are_separate_alerts():
    events = stream(
        history(AGENT, days=21, per_hour=3),
        burst(AGENT, local(14, 10), events=10, records=300),
        burst(AGENT, local(17, 10), events=10, records=300),
    )
    hours_only = {NAME: {"daily_min_records": 10**9}}  # the day findings are another test's business
    alerts = run(events, NAME, config=hours_only).alerts
    assert [a.window_start for a in alerts] == [local(14, 10), local(17, 10)]
    assert len({a.alert_id for a in alerts}) == 2


def test_during_the_system_warm_up_only_the_hard_limit_alerts():
    # every day from the start, so the agent is past its own five-day warm-up on day 6
    events = stream(
        history(AGENT, days=6, per_hour=3, weekdays=range(7)),
        burst(AGENT, local(6, 10), events=10, records=300),
    )
    assert run(events, NAME).alerts == []  # day 6 is inside the 7-day system warm-up: no baseline to judge by
    # a theft in a deployment's first days is over the employee limit of 50,000 whatever the baseline
    theft = stream(history(AGENT, days=6, per_hour=3), burst(AGENT, local(2, 10), events=12, records=5000))
    alert = run(theft, NAME).only()
    assert alert.window_start == local(2, 10) and alert.evidence["limit"] == 50_000
    assert 60_000 <= alert.evidence["value"] <= 60_003 and alert.severity is Severity.MEDIUM  # the hour's routine, once
    shorter = settings_with(baselines__system_warmup="5d")
    alert = run(events, NAME, settings=shorter).only()
    assert alert.evidence["spans"][0][0] == format_utc(local(6, 10))  # the hour opened it (the day grew it)


def finance_team_story(size: int = 6, records: int = 3000):
    """A finance team whose members run a report of ~2,500 records in one afternoon hour every working day;
    the newest member ran smaller ones (500) in its first week, and on its first judged day reads ``records``
    in one morning hour."""
    members = team(size, role="finance", department="finance")
    newcomer, others = members[0], members[1:]
    parts = [history(a, days=8, per_hour=3, records=1) for a in members]
    parts += [burst(a, local(day, 15), events=5, records=500) for a in others for day in range(8) if day % 7 < 5]
    parts += [burst(newcomer, local(day, 14), events=1, records=500) for day in range(5)]
    parts.append(burst(newcomer, local(7, 10), events=6, records=records // 6))
    return newcomer, stream(*parts)


@pytest.mark.parametrize("size", [6, 3])
def test_an_hour_routine_for_the_role_is_not_bulk_however_few_days_the_actors_own_peak_rests_on(size):
    newcomer, events = finance_team_story(size)
    # 3,000 records: hundreds of times the newcomer's usual hour and four times its own usual peak (500, from
    # the five days of its first week), but the size of the report its peers run every day
    assert run(events, NAME).alerts == []
    # twice the role's usual peak and more is not the role's routine
    newcomer, bigger = finance_team_story(size, records=9000)
    alert = run(bigger, NAME).only()
    assert alert.actor_id == newcomer.id and alert.window_start == local(7, 10)


def test_a_pair_is_not_a_role_whose_routine_excuses_an_hour():
    # with one peer, the other's reports are not a role's routine: judged on its own usual peak, the hour alerts
    newcomer, events = finance_team_story(2)
    alert = run(events, NAME).only()
    assert alert.actor_id == newcomer.id and alert.window_start == local(7, 10)


@pytest.mark.parametrize(
    "records, severity",
    [
        (1600, Severity.MEDIUM),  # 3.1x the usual peak of ~500: 1.6x the gate of twice it
        (2300, Severity.HIGH),  # 4.5x: 2.2x the gate
        (4500, Severity.CRITICAL),  # 8.8x: 4.4x the gate
    ],
)
def test_an_hour_past_the_usual_peak_is_as_loud_as_how_far_past_it_is(records, severity):
    # an auditor, alone in their role, reads a few records an hour and runs a 500-record report most afternoons;
    # every one of these hours is hundreds of times their usual hour (critical by that alone), but the first is
    # barely past their usual busy hour
    auditor = Actor("emp-0300", role="auditor", department="audit")
    events = stream(
        history(auditor, days=14, per_hour=3, records=1),
        *(burst(auditor, local(day, 14), events=2, records=250) for day in range(14) if day % 7 < 5 and day % 5 != 4),
        burst(auditor, local(14, 10), events=10, records=records // 10),
    )
    alert = run(events, NAME, config={NAME: {"daily_min_records": 10**9}}).only()
    assert alert.window_start == local(14, 10)
    assert alert.evidence["ratio"] > 128  # log2: past 7, critical by the ratio to the usual hour
    assert alert.severity is severity, describe(alert)


def test_a_day_judged_against_its_day_of_the_week_says_so_not_its_hour():
    # Mondays are heavy for this agent (a weekly list): a Monday far past even that is compared with Mondays
    routine = history(AGENT, days=21, per_hour=3, records=2)
    mondays = history(AGENT, days=21, per_hour=2, records=20, weekdays=[0])
    spike = burst(AGENT, local(21, 10), events=30, records=2000, within=timedelta(hours=6))
    result = run(stream(routine, mondays, spike), NAME)
    by_weekday = [f for f in result.findings if f.evidence.get("baseline_from") == "own weekday"]
    assert by_weekday, [(f.evidence.get("scale"), f.evidence.get("baseline_from")) for f in result.findings]
    for finding in by_weekday:
        assert finding.evidence["scale"] == "long"
        assert "their usual for this day of the week" in finding.summary and "hour of the week" not in finding.summary


def test_the_multiple_in_a_summary_is_the_figure_over_the_usual_it_prints():
    # T12: "355 records ... 48x their usual of 6" (the score's smoothed ratio) did not divide out
    assert wording.compared(355, 6.4, "own") == "55x their usual of 6.4"
    assert wording.compared(8003, 6.0, "peers") == "1,334x their peers' usual of 6"
    assert wording.compared(3800, 95.4, "own rhythm") == "40x their usual for this hour of the week of 95"
    assert wording.compared(40, 0.2, "own") == "where their usual is none"
    # an allowance for a busy day lowered the score: said, so the multiple and the severity agree to a reader
    assert wording.compared(600, 20.0, "own", population_factor=3.0) == (
        "30x their usual of 20, while their peers read 3.0x their own usual"
    )


def test_documented_work_that_scores_below_the_cap_is_marked_and_cites_its_purpose():
    """Tester T17: only a finding the cap lowered was marked documented, so a month-end close that scored medium on
    its own paged on-call without naming its purpose (and the pager could not tell it was documented work)."""
    spike = burst(AGENT, local(14, 10), events=10, records=300, purpose="TICKET-4411")
    history_ = history(AGENT, days=14, per_hour=3)
    alert = run(stream(history_, spike), NAME, config={NAME: {"severity_scores": [3.0, 1e6, 2e6]}}).only()
    assert alert.severity is Severity.MEDIUM and alert.score < 1e6  # medium by its score: the cap lowered nothing
    assert alert.evidence["documented"] == {"share": 1.0, "purposes": ["TICKET-4411"]}
    assert "the accesses cite TICKET-4411" in alert.summary
