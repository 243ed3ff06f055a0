"""Routing: which receivers an incident pages, what holds a page back, and what is planned to escalate.

These tests look at the outbox rows the pager plans (receivers of the file
kind, so nothing leaves the machine); delivery is ``test_notify_delivery``.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from configs.loader import load_settings
from models.alert import Severity
from models.config import ConfigError
from models.page import NotificationStatus
from notify.outbox import Pager
from notify.registry import build_receivers
from store.outbox import OutboxQuery
from tests.paging_factories import NOW, Clock, alert_for, documented_alert, finding, joined, settings_with

FILES = {name: {"kind": "file", "path": f"{name}.jsonl"} for name in ("soc", "oncall", "partners", "dpo", "lead")}


@pytest.fixture
def clock():
    return Clock()


def pager(tmp_path, store, clock, **notify) -> Pager:
    settings = settings_with(tmp_path, **{"receivers": ["soc"], "settings": FILES, **notify})
    return Pager(store, settings.notify, build_receivers(settings), clock=clock)


def planned(store, **query) -> list[tuple[str, str, str]]:
    """(receiver, kind, status) of every row, in planning order."""
    rows = store.notifications(OutboxQuery(newest_first=False, **query))
    return [(row.receiver, row.kind.value, row.status.value) for row in rows]


def test_without_routes_the_default_receivers_get_medium_and_above(tmp_path, sqlite_store, clock):
    paging = pager(tmp_path, sqlite_store, clock, receivers=["soc", "oncall"], min_severity="medium")
    paging.page([finding("emp-0001", Severity.LOW)])
    assert planned(sqlite_store) == []
    paging.page([finding("emp-0002", Severity.MEDIUM)])
    assert planned(sqlite_store) == [("soc", "trigger", "pending"), ("oncall", "trigger", "pending")]


ROUTES = [
    {"name": "critical", "receivers": ["oncall"], "min_severity": "critical", "continue": True},
    {"name": "partners", "receivers": ["partners"], "actor_kinds": ["partner"], "organizations": ["blue-sky-travel"]},
    {"name": "exfiltration", "receivers": ["dpo"], "detectors": ["egress"]},
]


@pytest.mark.parametrize(
    ("severity", "overrides", "receivers"),
    [
        (Severity.CRITICAL, {}, ["oncall"]),  # continue: on to the others, none matches; a route took it
        (Severity.HIGH, {}, ["soc"]),  # no route: the default route
        (Severity.LOW, {}, []),  # and the default route's floor
        (Severity.HIGH, {"actor_kind": "partner", "actor_organization": "blue-sky-travel"}, ["partners"]),
        (Severity.HIGH, {"actor_kind": "partner", "actor_organization": "other-agency"}, ["soc"]),
        (Severity.MEDIUM, {"detector": "egress"}, ["dpo"]),
        (
            Severity.CRITICAL,
            {"detector": "egress", "actor_kind": "partner", "actor_organization": "blue-sky-travel"},
            ["oncall", "partners"],  # the first match without continue ends the search
        ),
    ],
)
def test_routes_by_severity_detector_actor_kind_and_organisation(
    tmp_path, sqlite_store, clock, severity, overrides, receivers
):
    paging = pager(tmp_path, sqlite_store, clock, routes=ROUTES)
    paging.page([finding("ptn-0001" if overrides.get("actor_kind") else "emp-0001", severity, **overrides)])
    assert [receiver for receiver, _, _ in planned(sqlite_store)] == receivers


def test_the_route_is_recorded_for_the_operator(tmp_path, sqlite_store, clock):
    paging = pager(tmp_path, sqlite_store, clock, routes=ROUTES)
    paging.page([finding(severity=Severity.CRITICAL)])
    paging.page([finding("emp-0002", severity=Severity.HIGH)])
    assert [row.route for row in sqlite_store.notifications(OutboxQuery(newest_first=False))] == [
        "critical",
        "default",
    ]


def test_a_receiver_named_by_two_matching_routes_is_paged_once(tmp_path, sqlite_store, clock):
    routes = [
        {"receivers": ["soc", "oncall"], "continue": True},
        {"receivers": ["oncall", "dpo"]},
    ]
    paging = pager(tmp_path, sqlite_store, clock, routes=routes)
    paging.page([finding()])
    assert [receiver for receiver, _, _ in planned(sqlite_store)] == ["soc", "oncall", "dpo"]


def test_continue_tries_the_next_routes_but_never_falls_through_to_the_default_route(tmp_path, sqlite_store, clock):
    # as the README says: the default route takes only incidents no route matched
    alone = [{"name": "oncall", "receivers": ["oncall"], "continue": True}]
    paging = pager(tmp_path, sqlite_store, clock, receivers=["soc"], routes=alone)
    paging.page([finding("emp-0001")])
    assert [receiver for receiver, _, _ in planned(sqlite_store)] == ["oncall"]
    # to page the default receivers as well, a last route without conditions names them
    with_catch_all = [*alone, {"name": "everything else", "receivers": ["soc"]}]
    paging = pager(tmp_path, sqlite_store, clock, receivers=["soc"], routes=with_catch_all)
    paging.page([finding("emp-0002")])
    assert [receiver for receiver, _, _ in planned(sqlite_store, actor_id="emp-0002")] == ["oncall", "soc"]


def test_findings_of_one_incident_in_one_batch_are_one_page(tmp_path, sqlite_store, clock):
    paging = pager(tmp_path, sqlite_store, clock)
    alert, incident = finding(severity=Severity.MEDIUM)
    second = alert.model_copy(update={"alert_id": "aw-second", "severity": Severity.HIGH, "detector": "egress"})
    grown = incident.model_copy(update={"severity": Severity.HIGH, "detectors": ["bulk_read", "egress"]})
    paging.page([(alert, grown), (second, grown)])
    (row,) = sqlite_store.notifications(OutboxQuery())
    assert row.page.alert.alert_id == "aw-second" and row.page.severity is Severity.HIGH


def test_planning_the_same_finding_again_adds_nothing(tmp_path, sqlite_store, clock):
    paging = pager(tmp_path, sqlite_store, clock, receivers=["soc", "oncall"])
    found = finding()
    assert len(paging.page([found])) == 2
    clock.advance(3600)
    assert paging.page([found]) == []
    assert len(planned(sqlite_store)) == 2


# -- silences -------------------------------------------------------------------------------------------------
def silence(**overrides) -> dict:
    return {"name": "db migration", "ends_at": "2026-11-02T10:00:00+08:00", "comment": "CHG-1234", **overrides}


def test_a_silence_holds_back_pages_about_activity_before_its_end_and_says_why(tmp_path, sqlite_store, clock):
    # the findings' windows: 01:00-02:00 UTC (09:00-10:00 in Shanghai) and a day later
    paging = pager(tmp_path, sqlite_store, clock, silences=[silence(actor_ids=["svc-migrate"])])
    alert, incident = finding("svc-migrate", actor_kind="service")
    paging.page([(alert, incident)])
    (row,) = sqlite_store.notifications(OutboxQuery())
    assert row.status is NotificationStatus.SUPPRESSED and row.settled_at == NOW
    assert row.last_error == "silenced by 'db migration' until 2026-11-02T02:00:00.000Z (CHG-1234)"
    later = finding(
        "svc-migrate",
        actor_kind="service",
        window_start=alert.window_start + timedelta(days=1),
        window_end=alert.window_end + timedelta(days=1),
    )
    paging.page([later])
    assert planned(sqlite_store)[-1] == ("soc", "trigger", "pending")  # after the window: paged


def test_a_silence_matches_only_what_it_names(tmp_path, sqlite_store, clock):
    paging = pager(
        tmp_path, sqlite_store, clock, silences=[silence(detectors=["egress"], starts_at="2026-11-02T08:00:00+08:00")]
    )
    paging.page([finding("emp-0001", detector="egress")])  # 09:00 local, inside the window
    paging.page([finding("emp-0002", detector="bulk_read")])
    early = finding(
        "emp-0003", detector="egress", window_start=NOW - timedelta(hours=4), window_end=NOW - timedelta(hours=3)
    )
    paging.page([early])  # before starts_at
    assert [status for _, _, status in planned(sqlite_store)] == ["suppressed", "pending", "pending"]


def test_a_silenced_detector_holds_back_its_own_findings_not_another_detectors_in_the_same_incident(
    tmp_path, sqlite_store, clock
):
    # "silence my new rule while I tune it": the actor's incident also holds another rule's critical finding
    paging = pager(tmp_path, sqlite_store, clock, silences=[silence(detectors=["egress"])])
    tuned, incident = finding("emp-0001", Severity.MEDIUM, detector="egress")
    both = incident.model_copy(update={"detectors": ["egress", "off_hours"]})
    paging.page([(tuned, both)])
    other = tuned.model_copy(update={"alert_id": "aw-other", "detector": "off_hours", "severity": Severity.CRITICAL})
    paging.page([(other, both.model_copy(update={"severity": Severity.CRITICAL}))])
    assert [(kind, status) for _, kind, status in planned(sqlite_store)] == [
        ("trigger", "suppressed"),
        ("trigger", "pending"),
    ]


def test_silences_need_times_with_an_offset_in_order(tmp_path):
    with pytest.raises(ConfigError, match=re.escape("notify.silences.0")):
        settings_with(tmp_path, silences=[silence(ends_at="2026-11-02T10:00:00")])
    with pytest.raises(ConfigError, match=re.escape("notify.silences.0")):
        settings_with(tmp_path, silences=[silence(starts_at="2026-11-03T10:00:00+08:00")])


# -- a severity rise ------------------------------------------------------------------------------------------------
# the on-call tester's configuration: a detector's own route before the catch-all
PROBING = [
    {"name": "probing", "receivers": ["oncall"], "detectors": ["denied_burst"]},
    {"name": "everything-medium", "receivers": ["soc", "oncall", "partners"], "min_severity": "medium"},
]


def risen(alert, incident, severity=Severity.HIGH, detector="denied_burst"):
    """The finding that makes the incident more severe, from a detector of its own."""
    later = alert.model_copy(update={"alert_id": f"{alert.alert_id}-{detector}", "detector": detector})
    later = later.model_copy(update={"severity": severity})
    grown = incident.model_copy(
        update={
            "severity": severity,
            "detectors": sorted({*incident.detectors, detector}),
            "alert_ids": [*incident.alert_ids, later.alert_id],
            "revision": incident.revision + 1,
        }
    )
    return later, grown


def test_a_rise_that_changes_the_route_still_tells_every_receiver_paged_before(tmp_path, sqlite_store, clock):
    paging = pager(tmp_path, sqlite_store, clock, routes=PROBING)
    alert, incident = finding(severity=Severity.MEDIUM)
    paging.page([(alert, incident)])
    clock.advance(600)
    paging.page([risen(alert, incident)])  # now "probing" matches first, and names only oncall
    rows = sqlite_store.notifications(OutboxQuery(newest_first=False))
    assert [(r.receiver, r.kind.value, r.route, r.page.severity, r.page.previous_severity) for r in rows] == [
        ("soc", "trigger", "everything-medium", Severity.MEDIUM, None),
        ("oncall", "trigger", "everything-medium", Severity.MEDIUM, None),
        ("partners", "trigger", "everything-medium", Severity.MEDIUM, None),
        ("oncall", "update", "probing", Severity.HIGH, Severity.MEDIUM),
        # the route that paged them: why they hear of the incident at all
        ("soc", "update", "everything-medium", Severity.HIGH, Severity.MEDIUM),
        ("partners", "update", "everything-medium", Severity.HIGH, Severity.MEDIUM),
    ]
    assert {r.status for r in rows} == {NotificationStatus.PENDING}
    paging.page([risen(alert, incident)])  # the same news again: nobody hears it twice
    assert len(planned(sqlite_store)) == 6


def test_a_rise_a_silence_covers_is_held_back_for_every_receiver_told_before(tmp_path, sqlite_store, clock):
    quiet = silence(detectors=["denied_burst"], ends_at="2026-11-03T10:00:00+08:00")
    paging = pager(tmp_path, sqlite_store, clock, routes=PROBING, silences=[quiet])
    alert, incident = finding(severity=Severity.MEDIUM)
    paging.page([(alert, incident)])
    paging.page([risen(alert, incident)])
    assert planned(sqlite_store)[3:] == [
        ("oncall", "update", "suppressed"),
        ("soc", "update", "suppressed"),
        ("partners", "update", "suppressed"),
    ]


# -- throttle: event time, whatever the batches -----------------------------------------------------------------
def found_at(hours: float, actor_id: str = "emp-0001", severity: Severity = Severity.HIGH, **overrides):
    """A finding whose activity started ``hours`` after the first finding's (event time)."""
    start = NOW - timedelta(hours=1) + timedelta(hours=hours)
    return finding(actor_id, severity, window_start=start, window_end=start + timedelta(hours=1), **overrides)


def statuses(store) -> list[tuple[str, str]]:
    return [(row.actor_id, row.status.value) for row in store.notifications(OutboxQuery(newest_first=False))]


def test_a_new_incident_of_an_actor_paged_recently_is_throttled(tmp_path, sqlite_store, clock):
    paging = pager(tmp_path, sqlite_store, clock, throttle="30m")
    paging.page([found_at(0)])
    paging.page([found_at(0.25, detector="egress")])  # another incident of the same actor, 15 minutes later
    paging.page([found_at(0.25, "emp-0002")])  # another actor: not throttled
    paging.page([found_at(0.5, detector="off_hours")])  # 30 minutes after the one paged: the throttle has passed
    assert statuses(sqlite_store) == [
        ("emp-0001", "pending"),
        ("emp-0001", "suppressed"),
        ("emp-0002", "pending"),
        ("emp-0001", "pending"),
    ]
    rows = sqlite_store.notifications(OutboxQuery(newest_first=False))
    assert rows[1].last_error == (
        f"throttled: emp-0001 was paged for {rows[0].incident_id}, which started at 2026-11-02T01:00:00.000Z,"
        " less than notify.throttle = 1800 s before this one"
    )


def test_the_throttle_counts_event_time_not_when_the_pages_are_planned(tmp_path, sqlite_store, clock):
    # a replay plans a month of pages within seconds: incidents days apart are not "too soon"
    paging = pager(tmp_path, sqlite_store, clock, throttle="1d")
    paging.page([found_at(0)])
    clock.advance(1)
    paging.page([found_at(50, detector="egress")])
    # and live, an incident an hour after the last page is too soon even when its page is planned later
    clock.advance(86400 * 3)
    paging.page([found_at(51, detector="off_hours")])
    assert statuses(sqlite_store) == [("emp-0001", "pending"), ("emp-0001", "pending"), ("emp-0001", "suppressed")]


@pytest.mark.parametrize("cut", ["one call", "one call, out of order", "a call each, a day apart"])
def test_the_throttle_holds_back_the_same_incidents_however_the_findings_are_batched(
    tmp_path, sqlite_store, clock, cut
):
    findings = [
        found_at(0),
        found_at(2, detector="egress"),  # held back: 2 h after the page
        found_at(3.5, detector="off_hours"),  # paged: 3.5 h after it (the one held back does not count)
        found_at(4, "emp-0002"),  # another actor
        found_at(5, detector="new_access"),  # held back: 1.5 h after the second page
    ]
    paging = pager(tmp_path, sqlite_store, clock, throttle="3h")
    if cut == "one call":
        paging.page(findings)
    elif cut == "one call, out of order":
        paging.page(findings[::-1])
    else:
        for one in findings:
            paging.page([one])
            clock.advance(86400)
    by_incident = {row.incident_id: row.status.value for row in sqlite_store.notifications(OutboxQuery())}
    assert [by_incident[incident.incident_id] for _, incident in findings] == [
        "pending",
        "suppressed",
        "pending",
        "pending",
        "suppressed",
    ]


def test_the_throttle_never_holds_back_an_incident_more_severe_than_the_last_one_paged(tmp_path, sqlite_store, clock):
    paging = pager(tmp_path, sqlite_store, clock, throttle="1d")
    paging.page(
        [
            found_at(0, severity=Severity.MEDIUM),
            found_at(1, severity=Severity.MEDIUM, detector="egress"),  # as severe: held back
            found_at(2, severity=Severity.HIGH, detector="off_hours"),  # more severe: paged
            found_at(3, severity=Severity.HIGH, detector="new_access"),  # as severe as the last page: held back
            found_at(4, severity=Severity.CRITICAL, detector="denied_burst"),  # more severe: paged
        ]
    )
    rows = sqlite_store.notifications(OutboxQuery(newest_first=False))
    assert [(row.page.severity.value, row.status.value) for row in rows] == [
        ("medium", "pending"),
        ("medium", "suppressed"),
        ("high", "pending"),
        ("high", "suppressed"),
        ("critical", "pending"),
    ]


def test_an_incident_held_back_by_the_throttle_is_paged_once_it_becomes_more_severe(tmp_path, sqlite_store, clock):
    paging = pager(tmp_path, sqlite_store, clock, throttle="1d")
    paging.page([found_at(0)])
    alert, incident = found_at(2, detector="egress")
    paging.page([(alert, incident)])
    paging.page([risen(alert, incident, Severity.CRITICAL)])
    assert planned(sqlite_store) == [
        ("soc", "trigger", "pending"),
        ("soc", "trigger", "suppressed"),
        ("soc", "trigger", "pending"),  # critical: more than the actor was paged for
    ]


def test_the_throttle_never_holds_back_news_of_an_incident_already_paged(tmp_path, sqlite_store, clock):
    paging = pager(tmp_path, sqlite_store, clock, throttle="1h")
    alert, incident = finding(severity=Severity.MEDIUM)
    paging.page([(alert, incident)])
    clock.advance(60)
    worse = incident.model_copy(update={"severity": Severity.CRITICAL})
    paging.page([(alert.model_copy(update={"severity": Severity.CRITICAL}), worse)])
    assert planned(sqlite_store) == [("soc", "trigger", "pending"), ("soc", "update", "pending")]


# -- escalation planning -----------------------------------------------------------------------------------
ESCALATING = [
    {
        "name": "soc",
        "receivers": ["soc"],
        "escalate": [{"after": "15m", "receivers": ["oncall"]}, {"after": "1h", "receivers": ["lead"]}],
    }
]


def test_escalations_are_planned_with_the_trigger_due_at_their_deadlines(tmp_path, sqlite_store, clock):
    paging = pager(tmp_path, sqlite_store, clock, routes=ESCALATING)
    paging.page([finding()])
    rows = sqlite_store.notifications(OutboxQuery(newest_first=False))
    assert [(r.receiver, r.only_if_unacknowledged, r.due_at - NOW, r.page.escalation_level) for r in rows] == [
        ("soc", False, timedelta(0), 0),
        ("oncall", True, timedelta(minutes=15), 1),
        ("lead", True, timedelta(hours=1), 2),
    ]


def test_a_held_back_page_plans_no_escalation(tmp_path, sqlite_store, clock):
    paging = pager(tmp_path, sqlite_store, clock, routes=ESCALATING, silences=[silence()])
    paging.page([finding()])
    assert planned(sqlite_store) == [("soc", "trigger", "suppressed")]


def test_a_receiver_paged_directly_is_not_escalated_to_later(tmp_path, sqlite_store, clock):
    routes = [{"receivers": ["oncall"], "min_severity": "critical", "continue": True}, *ESCALATING]
    paging = pager(tmp_path, sqlite_store, clock, routes=routes)
    alert, incident = finding(severity=Severity.HIGH)
    paging.page([(alert, incident)])
    clock.advance(60)
    critical = incident.model_copy(update={"severity": Severity.CRITICAL})
    paging.page([(alert.model_copy(update={"severity": Severity.CRITICAL}), critical)])
    oncall = sqlite_store.notifications(OutboxQuery(receiver="oncall", newest_first=False))
    assert [(row.page.escalation_level, row.status.value) for row in oncall] == [(1, "cancelled"), (0, "pending")]


def test_route_configuration_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match=re.escape("notify.routes.0.escalate")):
        settings_with(
            tmp_path,
            routes=[
                {
                    "receivers": ["soc"],
                    "escalate": [{"after": "1h", "receivers": ["a"]}, {"after": "5m", "receivers": ["b"]}],
                }
            ],
        )
    with pytest.raises(ConfigError, match=re.escape("unknown key notify.routes.0.severity")):
        settings_with(tmp_path, routes=[{"receivers": ["soc"], "severity": "high"}])
    with pytest.raises(ConfigError, match=re.escape("notify.routes.0.receivers")):
        settings_with(tmp_path, routes=[{"receivers": []}])


def test_routes_and_silences_load_from_toml(tmp_path):
    config = tmp_path / "paging.toml"
    config.write_text(
        """
[notify]
receivers = ["soc"]
throttle = "10m"
dashboard_url = "https://accesswatch.example.com"

[[notify.routes]]
name = "partners"
receivers = ["partners"]
actor_kinds = ["partner"]
continue = true
escalate = [{ after = "15m", receivers = ["oncall"] }]

[[notify.silences]]
name = "quarterly export"
actor_ids = ["svc-export"]
ends_at = 2026-12-01T06:00:00+08:00

[notify.settings.partners]
kind = "file"
path = "partners.jsonl"
[notify.settings.oncall]
kind = "file"
path = "oncall.jsonl"
[notify.settings.soc]
kind = "file"
path = "soc.jsonl"
"""
    )
    settings = load_settings(config, env={})
    route = settings.notify.routes[0]
    assert route.continue_matching and route.escalate[0].after == 900 and settings.notify.throttle == 600
    assert settings.notify.silences[0].ends_at.utcoffset() == timedelta(hours=8)
    assert set(build_receivers(settings)) == {"soc", "partners", "oncall"}


def test_documented_work_alone_waits_in_the_queue_unless_page_documented(tmp_path, sqlite_store, clock):
    """Tester T17: a month-end close capped at medium paged on-call at night, medium being notify.min_severity."""
    month_end = joined(documented_alert())
    assert month_end[1].documented
    routed = {"routes": [{"name": "everything", "receivers": ["oncall"]}]}
    for notify in ({}, routed):  # no route pages it either: a route without conditions would wake on-call as well
        pager(tmp_path, sqlite_store, clock, **notify).page([month_end])
        assert planned(sqlite_store) == [], notify
    pager(tmp_path, sqlite_store, clock, page_documented=True).page([month_end])
    assert planned(sqlite_store) == [("soc", "trigger", "pending")]


def test_an_undocumented_finding_joining_documented_work_pages_it(tmp_path, sqlite_store, clock):
    paging = pager(tmp_path, sqlite_store, clock)
    first, incident = joined(documented_alert())
    paging.page([(first, incident)])
    also_documented = joined(documented_alert(detector="egress"), incident, [first])
    assert also_documented[1].documented
    paging.page([also_documented])
    assert planned(sqlite_store) == []
    # the same actor at 2 a.m., no purpose cited: one alert of the incident is news, so the incident is
    off_hours = alert_for("emp-0017", Severity.MEDIUM, detector="off_hours")
    alert, grown = joined(off_hours, also_documented[1], [first, also_documented[0]])
    assert not grown.documented and grown.severity is Severity.MEDIUM
    paging.page([(alert, grown)])
    assert planned(sqlite_store) == [("soc", "trigger", "pending")]


def test_page_documented_is_a_boolean(tmp_path):
    with pytest.raises(ConfigError, match=r"notify\.page_documented"):
        load_settings(env={"ACCESSWATCH_NOTIFY__PAGE_DOCUMENTED": "1"}, overrides={"data_dir": str(tmp_path)})
    assert load_settings(env={"ACCESSWATCH_NOTIFY__PAGE_DOCUMENTED": "true"}).notify.page_documented is True
