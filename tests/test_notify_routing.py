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
from tests.paging_factories import NOW, Clock, finding, settings_with

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


def test_silences_need_times_with_an_offset_in_order(tmp_path):
    with pytest.raises(ConfigError, match=re.escape("notify.silences.0")):
        settings_with(tmp_path, silences=[silence(ends_at="2026-11-02T10:00:00")])
    with pytest.raises(ConfigError, match=re.escape("notify.silences.0")):
        settings_with(tmp_path, silences=[silence(starts_at="2026-11-03T10:00:00+08:00")])


# -- throttle -------------------------------------------------------------------------------------------------------
def test_a_new_incident_of_an_actor_paged_recently_is_throttled(tmp_path, sqlite_store, clock):
    paging = pager(tmp_path, sqlite_store, clock, throttle="30m")
    paging.page([finding("emp-0001")])
    clock.advance(10 * 60)
    paging.page([finding("emp-0001", detector="egress")])  # another incident of the same actor
    paging.page([finding("emp-0002")])  # another actor: not throttled
    clock.advance(30 * 60)
    paging.page([finding("emp-0001", detector="off_hours")])  # the throttle has passed
    rows = sqlite_store.notifications(OutboxQuery(newest_first=False))
    assert [(row.actor_id, row.status.value) for row in rows] == [
        ("emp-0001", "pending"),
        ("emp-0001", "suppressed"),
        ("emp-0002", "pending"),
        ("emp-0001", "pending"),
    ]
    assert rows[1].last_error.startswith(f"throttled: emp-0001 was paged for {rows[0].incident_id}")


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
