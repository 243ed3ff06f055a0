"""``accesswatch incidents``: the incidents ``ack``, ``resolve`` and ``pages --incident`` take, as the queue lists them.

On the embedded store for real, and on Elasticsearch against the protocol-level test server.
"""

from __future__ import annotations

import io
import sqlite3
import subprocess
import sys
import uuid
from contextlib import closing
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import orjson
import pytest

from accesswatch import cli, incidents_cli
from configs.loader import load_settings
from dashboard import queries
from dashboard.auth import Identity, Role
from models.alert import AlertStatus, Severity
from models.incident import TriageAction, TriageActionKind
from store.base import IncidentQuery
from store.sqlite import SqliteStore
from tests import factories as f
from tests.fakes.es_server import FakeElasticsearch
from tests.store_contract import _incident

NOW = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)


def _incidents() -> list:
    """Four incidents of three actors; T0 is 09:00 in Asia/Shanghai, the default organisation's zone."""
    return [
        _incident(incident_id="inc-low", severity=Severity.LOW, risk_score=10.0, actor_id="emp-0002"),
        _incident(
            incident_id="inc-crit",
            severity=Severity.CRITICAL,
            risk_score=100.0,
            window_start=f.at(hours=-9),  # 00:00 local, a whole local day
            window_end=f.at(hours=15),
            alert_ids=["aw-1", "aw-2", "aw-3"],
            detectors=["bulk_read", "egress", "sensitive_access"],
            summary="Employee emp-0001 exported 48,843 records on Mon 02 Nov, including financial data.",
        ),
        _incident(incident_id="inc-high-old", window_start=f.at(days=-3), window_end=f.at(days=-3, hours=2)),
        _incident(incident_id="inc-high-new", actor_id="ptn-swift-logistics-01", actor_kind="partner"),
    ]


def _filled(store) -> None:
    # inc-crit's alerts stored with it, as the pipeline stores them: ``verify`` names an alert an incident lists that
    # is gone
    alerts = [
        f.alert(
            alert_id=f"aw-{n}",
            detector=detector,
            severity=Severity.CRITICAL if n == 1 else Severity.HIGH,
            window_start=f.at(hours=-9),  # its incident's whole local day
            window_end=f.at(hours=15),
        )
        for n, detector in enumerate(("bulk_read", "egress", "sensitive_access"), start=1)
    ]
    store.upsert_alerts(alerts, _incidents())
    for incident_id, kind in (("inc-high-new", TriageActionKind.ACKNOWLEDGE), ("inc-low", TriageActionKind.RESOLVE)):
        store.record_action(TriageAction(incident_id=incident_id, kind=kind, by="ana", at=NOW))


def _run(*argv: str) -> int:
    """The command in this process, as ``main`` runs it but without its process-wide garbage collector tuning."""
    args = cli._parser().parse_command(["incidents", *argv])
    return args.handler(args)


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    for key in ("ACCESSWATCH_DATA_DIR", "ACCESSWATCH_STORE__KIND", "ACCESSWATCH_ORGANISATION__TIMEZONE"):
        monkeypatch.delenv(key, raising=False)
    store = SqliteStore(tmp_path / "accesswatch.db", cache_mb=16)
    _filled(store)
    store.close()
    return tmp_path


def _ids(out: str) -> list[str]:
    return [line.split()[0] for line in out.splitlines()[1:-1]]


def test_the_incidents_are_listed_as_the_queue_lists_and_counts_them(data_dir, capsys):
    assert _run("--data-dir", str(data_dir)) == 0
    out = capsys.readouterr().out
    with SqliteStore(data_dir / "accesswatch.db", cache_mb=16, readonly=True) as store:
        view = queries.queue(store, IncidentQuery())
    assert _ids(out) == [i.incident_id for i in view.incidents]
    assert _ids(out) == ["inc-crit", "inc-high-new", "inc-high-old", "inc-low"]
    by_severity = ", ".join(f"{count} {severity}" for severity, count in view.by_severity.items())
    assert out.splitlines()[-1] == f"{view.total} incidents: {by_severity}; 2 open, 1 acknowledged, 1 resolved"


def test_the_table_shows_status_risk_the_local_span_alerts_and_detectors(data_dir, capsys):
    _run("--data-dir", str(data_dir))
    header, crit, acknowledged, old, low, _ = capsys.readouterr().out.splitlines()
    assert header.split()[:6] == ["incident", "id", "status", "severity", "risk", "actor"]
    assert header.split()[6:] == ["flagged", "activity", "(Asia/Shanghai)", "alerts", "detectors", "summary"]
    assert crit.split()[:5] == ["inc-crit", "open", "critical", "100", "emp-0001"]
    assert " 2026-11-02 00:00 to 2026-11-03 00:00 +08:00      3 bulk_read,egress,sensitive_access  Employee " in crit
    assert acknowledged.split()[:5] == ["inc-high-new", "acknowledged", "high", "60", "ptn-swift-logistics-01"]
    assert " 2026-11-02 09:00-10:00 +08:00 " in acknowledged and low.split()[1] == "resolved"
    assert " 2026-10-30 09:00-11:00 +08:00 " in old
    # the columns in line: each row's summary starts where the header's does
    assert {row.index("Employee") for row in (crit, acknowledged, old, low)} == {header.index("summary")}


def test_the_activity_is_the_flagged_hours_not_the_day_the_incident_grew_to(data_dir, capsys):
    # the critical incident's day (00:00 to 00:00) holds an hour's theft at 03:00-04:00 local: its alert says so
    spans = [
        [f.at(hours=-6).isoformat(), f.at(hours=-5).isoformat(), 9.0, "critical", 48843],
        [f.at(hours=-9).isoformat(), f.at(hours=15).isoformat(), 6.0, "high", 48843],
    ]
    theft = f.alert(alert_id="aw-1", severity="critical", window_start=f.at(hours=-9), window_end=f.at(hours=15))
    theft = theft.model_copy(update={"evidence": {**theft.evidence, "spans": spans}})
    with SqliteStore(data_dir / "accesswatch.db", cache_mb=16) as store:
        store.upsert_alerts([theft], [])
    _run("--data-dir", str(data_dir))
    crit = capsys.readouterr().out.splitlines()[1]
    assert " 2026-11-02 03:00-04:00 +08:00 " in crit and "00:00 to" not in crit


def test_newest_is_the_newest_flagged_activity_as_in_the_queue(data_dir, capsys):
    # a high incident whose window is its whole local day (00:00), flagged 16:00-17:00: above the one flagged at
    # 09:00-10:00 of that day, where the window's start put it below
    spans = [[f.at(hours=7).isoformat(), f.at(hours=8).isoformat(), 7.0, "high", 9000]]
    day = f.alert(
        actor_id="emp-0003", window_start=f.at(hours=-9), window_end=f.at(hours=15), evidence={"spans": spans}
    )
    with SqliteStore(data_dir / "accesswatch.db", cache_mb=16) as store:
        store.upsert_alerts([day], [f.incident_of(day, "inc-high-day", 60.0)])
    _run("--data-dir", str(data_dir))
    out = capsys.readouterr().out
    assert _ids(out) == ["inc-crit", "inc-high-day", "inc-high-new", "inc-high-old", "inc-low"]
    assert " 2026-11-02 16:00-17:00 +08:00 " in out.splitlines()[2]


@pytest.mark.parametrize(
    ("statuses", "listed"),
    [
        (["open"], ["inc-crit", "inc-high-old"]),
        (["acknowledged"], ["inc-high-new"]),
        (["not_closed"], ["inc-crit", "inc-high-new", "inc-high-old"]),
        (["closed"], ["inc-low"]),
        (["false_positive"], []),
        (["resolved", "acknowledged"], ["inc-high-new", "inc-low"]),
    ],
)
def test_status_filters_follow_the_incident_statuses(data_dir, capsys, statuses, listed):
    argv = [arg for status in statuses for arg in ("--status", status)]
    assert _run("--data-dir", str(data_dir), *argv) == 0
    out = capsys.readouterr().out
    assert _ids(out) == listed if listed else out == "no incidents\n"


def test_severity_and_actor_filters(data_dir, capsys):
    _run("--data-dir", str(data_dir), "--min-severity", "high", "--actor", "emp-0001")
    assert _ids(capsys.readouterr().out) == ["inc-crit", "inc-high-old"]


def test_jsonl_is_the_incident_as_the_store_holds_it_with_who_acted_last(data_dir, capsys):
    _run("--data-dir", str(data_dir), "--format", "jsonl", "--status", "acknowledged", "--status", "open")
    lines = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    with SqliteStore(data_dir / "accesswatch.db", cache_mb=16, readonly=True) as store:
        held = store.get_incident("inc-high-new")
    acknowledged = next(line for line in lines if line["incident_id"] == "inc-high-new")
    assert held.status is AlertStatus.ACKNOWLEDGED
    # the morning analyst's script: who acknowledged it, and when, without a command per incident
    last = {"kind": "acknowledge", "by": "ana", "at": "2026-11-03T09:00:00.000Z", "note": None, "assignee": None}
    assert acknowledged == {**held.model_dump(mode="json"), "last_action": last}
    assert {line["incident_id"]: line["last_action"] for line in lines if line is not acknowledged} == {
        "inc-crit": None,
        "inc-high-old": None,
    }


# -- one incident and its triage log: the hand-over -----------------------------------------------
EXFIL = (
    "Sales emp-0134 exported ~32k records incl. government ids 15:00-16:00; looks like exfil. Disabled account via"
    " IT ticket IT-5521, HR informed. SOC please review evidence in the morning."
)


def _handed_over(data_dir) -> None:
    """The night's triage of inc-crit: an acknowledgement with its why, an assignment, a note of two lines."""
    with SqliteStore(data_dir / "accesswatch.db", cache_mb=16) as store:
        for minutes, kind, by, extra in (
            (0, TriageActionKind.ACKNOWLEDGE, "oncall-sam", {"note": EXFIL}),
            (2, TriageActionKind.ASSIGN, "sam", {"assignee": "lee"}),
            (5, TriageActionKind.NOTE, "sam", {"note": "03:20 called IT on-call.\nMorning: ask the sales manager."}),
        ):
            at = NOW + timedelta(minutes=minutes, seconds=7)
            store.record_action(TriageAction(incident_id="inc-crit", kind=kind, by=by, at=at, **extra))


def _run_incident(*argv: str) -> int:
    args = cli._parser().parse_command(["incident", *argv])
    return args.handler(args)


def test_incident_prints_its_status_assignee_and_triage_log_with_the_notes_whole(data_dir, capsys):
    _handed_over(data_dir)
    assert _run_incident("inc-crit", "--data-dir", str(data_dir)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "inc-crit: critical, acknowledged, assigned to lee"
    assert lines[1] == "actor: emp-0001 (employee)"
    assert lines[2] == "flagged activity: 2026-11-02 00:00 to 2026-11-03 00:00 +08:00"
    assert lines[3] == "alerts: 3 (bulk_read, egress, sensitive_access)"
    # when in local time with its offset, who, what; each note whole, under its action, a line of it a line
    assert lines[lines.index("triage log (3, oldest first):") :] == [
        "triage log (3, oldest first):",
        "  2026-11-03 17:00:07 +08:00  oncall-sam  acknowledge",
        f"      {EXFIL}",
        "  2026-11-03 17:02:07 +08:00  sam         assign to lee",
        "  2026-11-03 17:05:07 +08:00  sam         note",
        "      03:20 called IT on-call.",
        "      Morning: ask the sales manager.",
    ]


def test_incident_lists_its_alerts_and_the_actor_s_related_incidents(data_dir, capsys):
    """Tester T24: the page's "Look" command printed "alerts: 5 (bulk_read, isolation_forest, ramp)" and one
    summary, where README promises its alerts: no alert id, no finding of each, no related incident."""
    read = f.alert(alert_id="aw-1", window_start=f.at(hours=-9), window_end=f.at(hours=15), revision=3)
    exported = f.alert(
        alert_id="aw-2",
        detector="egress",
        severity=Severity.CRITICAL,
        summary="Employee emp-0001 exported 4,000 records, 80x their usual.",
    )
    with SqliteStore(data_dir / "accesswatch.db", cache_mb=16) as store:
        store.upsert_alerts([a.model_copy(update={"incident_id": "inc-crit"}) for a in (exported, read)], [])
    with closing(sqlite3.connect(data_dir / "accesswatch.db")) as db, db:  # its third, gone behind the store's back
        db.execute("DELETE FROM alerts WHERE alert_id = 'aw-3'")
    assert _run_incident("inc-crit", "--data-dir", str(data_dir)) == 0
    out = capsys.readouterr().out.splitlines()
    listed = out[out.index("alerts (2, by window):") :]
    assert listed[:6] == [
        "alerts (2, by window):",
        "  aw-1  bulk_read, high, 2026-11-02 00:00 to 2026-11-03 00:00 +08:00, revision 3",
        f"      {read.summary}",
        "  aw-2  egress, critical, 2026-11-02 09:00-10:00 +08:00",
        f"      {exported.summary}",
        "  1 more not in the store",  # inc-crit names three alerts
    ]
    # the dashboard's Related tab: the actor's other incident (the partner's and emp-0002's are not)
    assert listed[6:9] == [
        "related incidents (1, newest first):",
        "  inc-high-old  emp-0001, high, open, 2026-10-30 09:00-11:00 +08:00",
        "      Employee emp-0001 read 5,000 records.",
    ]
    assert _run_incident("inc-low", "--data-dir", str(data_dir)) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[5:7] == ["alerts (0, by window):", "related incidents: none (this actor's)"]


def test_incident_says_when_it_is_documented_work_that_pages_nobody(data_dir, capsys, monkeypatch):
    """Tester: an incident of documented work alone paged nobody, and ``incident ID`` did not say why."""
    cited = {"documented": {"share": 1.0, "purposes": ["month-end-close-2026-10"]}}
    close = f.alert(
        alert_id="aw-close",
        severity=Severity.MEDIUM,
        actor_id="emp-0005",
        summary="Employee emp-0005 (finance) read 9,000 records; the accesses cite month-end-close-2026-10.",
        evidence={"records": 9000, "event_ids": ["evt-1"], **cited},
    )
    incident = f.incident_of(close, "inc-close", 30.0).model_copy(update={"documented": True})
    with SqliteStore(data_dir / "accesswatch.db", cache_mb=16) as store:
        store.upsert_alerts([close.model_copy(update={"incident_id": "inc-close"})], [incident])
    assert _run_incident("inc-close", "--data-dir", str(data_dir)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[4].startswith("summary: Employee emp-0005 (finance) read 9,000 records")
    assert lines[5] == (
        "documented work: every finding cites a purpose (month-end-close-2026-10); documented work alone is not"
        " paged (notify.page_documented = false): it waits in the queue for review"
    )
    monkeypatch.setenv("ACCESSWATCH_NOTIFY__PAGE_DOCUMENTED", "true")
    assert _run_incident("inc-close", "--data-dir", str(data_dir)) == 0
    assert (
        capsys.readouterr()
        .out.splitlines()[5]
        .endswith("documented work alone is paged as any other (notify.page_documented = true)")
    )
    assert _run_incident("inc-high-old", "--data-dir", str(data_dir)) == 0  # undocumented: no such line
    assert "documented" not in capsys.readouterr().out


def test_documented_work_lists_first_the_purposes_its_summary_cites(data_dir, capsys):
    """Tester: the summary said "the accesses cite month-end-close-2026-10" and the documented-work line listed
    "(inv-123695, inv-139116, inv-440187, ...)": another finding's invoices hid the cited purpose behind the "..."."""
    invoices = [f"inv-{n}" for n in range(100001, 100008)]
    day = f.alert(
        alert_id="aw-a-day",
        severity=Severity.MEDIUM,
        actor_id="emp-0002",
        summary="Employee emp-0002 (finance) accessed 158,181 records; the accesses cite inv-100001, inv-100002.",
        evidence={"records": 158181, "documented": {"share": 0.999, "purposes": invoices}},
    )
    hour = f.alert(
        alert_id="aw-b-hour",
        severity=Severity.MEDIUM,
        actor_id="emp-0002",
        detector="egress",
        summary="Employee emp-0002 (finance) exported 52,689 records; the accesses cite month-end-close-2026-10.",
        evidence={"records": 52689, "documented": {"share": 1.0, "purposes": ["month-end-close-2026-10"]}},
    )
    incident = f.incident_of(hour, "inc-month-end", 30.0).model_copy(
        update={"documented": True, "alert_ids": ["aw-a-day", "aw-b-hour"], "detectors": ["bulk_read", "egress"]}
    )
    with SqliteStore(data_dir / "accesswatch.db", cache_mb=16) as store:
        joined = [alert.model_copy(update={"incident_id": "inc-month-end"}) for alert in (day, hour)]
        store.upsert_alerts(joined, [incident])
    assert _run_incident("inc-month-end", "--data-dir", str(data_dir)) == 0
    (line,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("documented work:")]
    assert line.startswith(
        "documented work: every finding cites a purpose (month-end-close-2026-10, inv-100001, inv-100002,"
        " inv-100003, inv-100004 and 3 more); "
    )


def test_incident_in_jsonl_is_the_stored_incident_with_its_whole_triage_log(data_dir, capsys):
    _handed_over(data_dir)
    _run_incident("inc-crit", "--data-dir", str(data_dir), "--format", "jsonl")
    (line,) = capsys.readouterr().out.splitlines()
    with SqliteStore(data_dir / "accesswatch.db", cache_mb=16, readonly=True) as store:
        held, actions = store.get_incident("inc-crit"), store.actions("inc-crit")
    record = orjson.loads(line)
    assert record.pop("triage_log") == [a.model_dump(mode="json", exclude={"incident_id"}) for a in actions]
    assert record == held.model_dump(mode="json") and len(actions) == 3


def test_incident_of_an_alert_id_nobody_acted_on_and_an_unknown_id(data_dir, capsys):
    alert = f.alert(alert_id="aw-9", window_start=f.at(days=-3), window_end=f.at(days=-3, hours=2))
    with SqliteStore(data_dir / "accesswatch.db", cache_mb=16) as store:
        store.upsert_alerts([alert.model_copy(update={"incident_id": "inc-high-old"})], [])
    assert _run_incident("aw-9", "--data-dir", str(data_dir)) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "inc-high-old: high, open" and out[-1] == "triage log: nobody has acted on it yet"
    assert _run_incident("inc-typo", "--data-dir", str(data_dir)) == 1
    assert capsys.readouterr().err == "accesswatch: no incident or alert 'inc-typo'\n"


def _command(*argv: str) -> int:
    args = cli._parser().parse_command(list(argv))
    return args.handler(args)


def test_assign_records_what_the_dashboards_assign_records_and_incident_shows_it(data_dir, capsys):
    """Tester: the command line had no assign; the dashboard's Assign is an ``assign`` action in the triage log."""
    where = ("--data-dir", str(data_dir))
    assert _command("assign", "inc-crit", "--to", " lee ", "--by", "sam", "--note", "yours till Monday", *where) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "inc-crit (emp-0001, critical) is now assigned to lee (open)",
        "  receivers are not told of an assignment: 'accesswatch incident ID' shows it",
    ]
    settings = load_settings(env={"ACCESSWATCH_DATA_DIR": str(data_dir)})
    with SqliteStore(data_dir / "accesswatch.db", cache_mb=16) as store:
        (by_command,) = store.actions("inc-crit")
        # the dashboard's Assign, on another incident: the same action but for the incident and the time
        queries.triage(
            store,
            settings,
            Identity("sam", Role.ANALYST, "Sam", "password"),
            "inc-high-old",
            TriageActionKind.ASSIGN,
            "yours till Monday",
            " lee ",
        )
        (by_dashboard,) = store.actions("inc-high-old")
        assert store.get_incident("inc-crit").assignee == store.get_incident("inc-high-old").assignee == "lee"
        chain = store.verify_chain()  # both in the chained triage log
        assert chain.intact and chain.rows_checked["triage_actions"] == 4  # the fixture's two, and these
    differs = {"incident_id", "at"}
    assert by_command.model_dump(exclude=differs) == by_dashboard.model_dump(exclude=differs)
    assert by_command.kind is TriageActionKind.ASSIGN and by_command.by == "sam" and by_command.assignee == "lee"
    assert _run_incident("inc-crit", *where) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "inc-crit: critical, open, assigned to lee"
    assert lines[-2].endswith("  sam  assign to lee") and lines[-1] == "      yours till Monday"


def test_assign_takes_a_closed_incident_as_the_dashboard_does_and_refuses_no_one(data_dir, capsys):
    where = ("--data-dir", str(data_dir))
    # the dashboard offers Assign whatever the status: a resolved case may still get an owner for its follow-up
    assert _command("assign", "inc-low", "--to", "lee", "--by", "sam", *where) == 0
    assert capsys.readouterr().out.startswith("inc-low (emp-0002, low) is now assigned to lee (resolved)\n")
    assert _command("assign", "inc-crit", "--to", "  ", "--by", "sam", *where) == 1
    assert capsys.readouterr().err == "accesswatch: name the person to assign it to (--to)\n"
    assert _command("assign", "inc-typo", "--to", "lee", "--by", "sam", *where) == 1
    assert capsys.readouterr().err == "accesswatch: no incident or alert 'inc-typo'\n"
    with SqliteStore(data_dir / "accesswatch.db", cache_mb=16, readonly=True) as store:
        assert store.actions("inc-crit") == [] and store.get_incident("inc-crit").assignee is None
        assert store.get_incident("inc-low").status is AlertStatus.RESOLVED


def test_note_records_what_the_dashboards_add_a_note_records_and_incident_shows_it(data_dir, capsys):
    """Tester: the command line had no note; the dashboard's Add a note is a ``note`` action in the triage log."""
    where = ("--data-dir", str(data_dir))
    written = "  03:20 called IT on-call.\nMorning: ask the sales manager.\n\n"
    assert _command("note", "inc-crit", "--note", written, "--by", "sam", *where) == 0
    assert capsys.readouterr().out.splitlines() == [
        "inc-crit (emp-0001, critical, open): note added to its triage log",
        "  receivers are not told of a note: 'accesswatch incident ID' shows it",
    ]
    settings = load_settings(env={"ACCESSWATCH_DATA_DIR": str(data_dir)})
    with SqliteStore(data_dir / "accesswatch.db", cache_mb=16) as store:
        (by_command,) = store.actions("inc-crit")
        # the dashboard's Add a note, on another incident: the same action but for the incident and the time
        sam = Identity("sam", Role.ANALYST, "Sam", "password")
        queries.triage(store, settings, sam, "inc-high-old", TriageActionKind.NOTE, written)
        (by_dashboard,) = store.actions("inc-high-old")
        assert store.get_incident("inc-crit").status is AlertStatus.OPEN  # a note changes no status
        chain = store.verify_chain()  # both in the chained triage log
        assert chain.intact and chain.rows_checked["triage_actions"] == 4  # the fixture's two, and these
    differs = {"incident_id", "at"}
    assert by_command.model_dump(exclude=differs) == by_dashboard.model_dump(exclude=differs)
    assert by_command.kind is TriageActionKind.NOTE and by_command.by == "sam"
    assert by_command.note == "03:20 called IT on-call.\nMorning: ask the sales manager."  # its blanks dropped
    assert _run_incident("inc-crit", *where) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-3].endswith("  sam  note")
    assert lines[-2:] == ["      03:20 called IT on-call.", "      Morning: ask the sales manager."]


def test_note_refuses_an_empty_note_as_the_dashboard_does_and_takes_a_closed_incident(data_dir, capsys):
    where = ("--data-dir", str(data_dir), "--by", "sam")
    assert _command("note", "inc-crit", "--note", " \n\t ", *where) == 1
    assert capsys.readouterr().err == "accesswatch: the note is empty (--note)\n"  # the dashboard's refusal
    # the dashboard offers Add a note whatever the status: a closed case's follow-up is noted too
    assert _command("note", "inc-low", "--note", "HR confirmed the export was approved.", *where) == 0
    assert capsys.readouterr().out.startswith("inc-low (emp-0002, low, resolved): note added to its triage log\n")
    with pytest.raises(SystemExit) as parsed:  # a note command without its note is a wrong command: exit 2
        _command("note", "inc-crit", *where)
    assert parsed.value.code == 2
    with SqliteStore(data_dir / "accesswatch.db", cache_mb=16, readonly=True) as store:
        assert store.actions("inc-crit") == []
        assert [a.kind for a in store.actions("inc-low")] == [TriageActionKind.RESOLVE, TriageActionKind.NOTE]


def test_a_note_too_long_for_the_triage_log_is_one_line_not_a_traceback(data_dir, capsys):
    where = ("--data-dir", str(data_dir), "--by", "sam")
    assert _command("note", "inc-crit", "--note", "x" * 4001, *where) == 1
    assert capsys.readouterr().err == "accesswatch: --note: at most 4,000 characters, and it has 4,001\n"
    assert _command("ack", "inc-crit", "--note", "  " + "x" * 4000 + "\n", *where) == 0  # the blanks not counted
    with SqliteStore(data_dir / "accesswatch.db", cache_mb=16, readonly=True) as store:
        assert [a.kind for a in store.actions("inc-crit")] == [TriageActionKind.ACKNOWLEDGE]


def test_the_triage_commands_take_a_note_as_the_dashboard_takes_it(data_dir, capsys):
    """Tester: ``ack --note " on it"`` kept its blanks, and ``--note " "`` recorded a blank note: the dashboard
    strips a note, and a blank one is none."""
    where = ("--data-dir", str(data_dir), "--by", "sam")
    assert _command("ack", "inc-crit", "--note", "  on it \n", *where) == 0
    assert _command("assign", "inc-crit", "--to", "lee", "--note", "   ", *where) == 0
    assert _command("resolve", "inc-crit", "--note", "\tcontained\n", *where) == 0
    assert _command("reopen", "inc-crit", "--note", " more came in ", *where) == 0
    settings = load_settings(env={"ACCESSWATCH_DATA_DIR": str(data_dir)})
    with SqliteStore(data_dir / "accesswatch.db", cache_mb=16) as store:
        assert [a.note for a in store.actions("inc-crit")] == ["on it", None, "contained", "more came in"]
        sam = Identity("sam", Role.ANALYST, "Sam", "password")
        queries.triage(store, settings, sam, "inc-high-old", TriageActionKind.ACKNOWLEDGE, "  on it \n")
        (by_dashboard,) = store.actions("inc-high-old")
        by_command = store.actions("inc-crit")[0]
    differs = {"incident_id", "at"}
    assert by_command.model_dump(exclude=differs) == by_dashboard.model_dump(exclude=differs)


def test_a_false_positive_without_its_reason_is_refused_as_the_dashboard_refuses_it(data_dir, capsys):
    """Reviewer: the dashboard asks why an incident is a false positive, ``resolve --false-positive`` did not."""
    where = ("--data-dir", str(data_dir), "--by", "sam")
    refused = "accesswatch: say why this is a false positive (--note): the reason is kept for the auditors\n"
    assert _command("resolve", "inc-crit", "--false-positive", *where) == 1
    assert capsys.readouterr().err == refused
    assert _command("resolve", "inc-low", "--false-positive", "--note", " \n ", *where) == 1  # a reclassification
    assert capsys.readouterr().err == refused
    with SqliteStore(data_dir / "accesswatch.db", cache_mb=16, readonly=True) as store:
        assert store.actions("inc-crit") == [] and store.get_incident("inc-crit").status is AlertStatus.OPEN
        assert store.get_incident("inc-low").status is AlertStatus.RESOLVED
    assert _command("resolve", "inc-crit", "--false-positive", "--note", "an approved audit export", *where) == 0
    with SqliteStore(data_dir / "accesswatch.db", cache_mb=16, readonly=True) as store:
        (action,) = store.actions("inc-crit")
        assert action.kind is TriageActionKind.FALSE_POSITIVE and action.note == "an approved audit export"


def test_by_is_taken_without_its_blanks_and_a_blank_one_is_refused(data_dir, capsys):
    """Reviewer: ``--by " sam"`` was recorded with its space, another name than the dashboard's ``sam``."""
    where = ("--data-dir", str(data_dir))
    assert _command("ack", "inc-crit", "--by", " sam\t", *where) == 0
    assert _command("assign", "inc-crit", "--by", "sam ", "--to", " lee\n", *where) == 0
    for blank in ("", "  "):  # no one: not the login name recorded without --by
        assert _command("note", "inc-crit", "--by", blank, "--note", "checked", *where) == 1
        assert capsys.readouterr().err == "accesswatch: name the person acting (--by)\n"
    with SqliteStore(data_dir / "accesswatch.db", cache_mb=16, readonly=True) as store:
        assert [(a.by, a.assignee) for a in store.actions("inc-crit")] == [("sam", None), ("sam", "lee")]


def test_pages_of_an_incident_start_with_its_actor_and_latest_note(data_dir, capsys):
    """Tester: ``pages --incident`` showed no actor or note: the on-call person saw pages without context."""
    _handed_over(data_dir)
    assert _command("pages", "--incident", "inc-crit", "--data-dir", str(data_dir)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:4] == [
        "inc-crit: emp-0001 (employee), critical, acknowledged, assigned to lee",
        "latest note, note by sam at 2026-11-03 17:05:07 +08:00:",
        "    03:20 called IT on-call.",
        "    Morning: ask the sales manager.",
    ]
    assert lines[4] == "no pages"
    assert _command("pages", "--incident", "inc-high-new", "--data-dir", str(data_dir)) == 0
    assert capsys.readouterr().out.splitlines()[:2] == [
        "inc-high-new: ptn-swift-logistics-01 (partner), high, acknowledged",
        "no triage note yet (1 action in its log)",
    ]
    # a script's lines stay the pages alone
    assert _command("pages", "--incident", "inc-crit", "--format", "jsonl", "--data-dir", str(data_dir)) == 0
    assert capsys.readouterr().out == ""


HASH = "pbkdf2_sha256$1000$c2FsdA==$aGFzaA=="  # never checked: the commands only read the user names


def _users_config(tmp_path, *names: str, demo_sign_in: bool = False) -> str:
    config = tmp_path / "users.toml"
    config.write_text(
        f"[dashboard]\ndemo_sign_in = {str(demo_sign_in).lower()}\n"
        + "".join(f'[dashboard.users.{name}]\nrole = "analyst"\npassword_hash = "{HASH}"\n' for name in names)
    )
    return str(config)


def test_a_by_that_is_no_dashboard_user_is_warned_of_and_recorded(data_dir, tmp_path, capsys):
    """Tester: ``--by`` is free text, so the same person was ``oncall-sam`` (command line) and ``sam`` (dashboard)."""
    where = ("--data-dir", str(data_dir), "--config", _users_config(tmp_path, "sam", "lee"))
    assert _command("ack", "inc-crit", "--by", "oncall-sam", *where) == 0
    assert capsys.readouterr().err == (
        "accesswatch: warning: --by 'oncall-sam' is not a dashboard user (lee, sam): recorded as given; the triage"
        " log names a person alike only under their dashboard user name\n"
    )
    assert _command("assign", "inc-crit", "--by", "sam", "--to", "lee", *where) == 0
    assert capsys.readouterr().err == ""
    assert _command("assign", "inc-crit", "--by", "sam", "--to", "Lee", *where) == 0  # the dashboard's "lee" is not
    assert capsys.readouterr().err.startswith("accesswatch: warning: --to 'Lee' is not a dashboard user (lee, sam)")
    with SqliteStore(data_dir / "accesswatch.db", cache_mb=16, readonly=True) as store:
        assert [action.by for action in store.actions("inc-crit")] == ["oncall-sam", "sam", "sam"]


def test_the_by_warning_comes_only_with_an_action_recorded(data_dir, tmp_path, capsys):
    """Tester: the warning printed before the state machine refused the action, so it read as if it were recorded."""
    where = ("--data-dir", str(data_dir), "--config", _users_config(tmp_path, "sam", "lee"))
    assert _command("ack", "inc-low", "--by", "oncall-sam", *where) == 1  # resolved: reopen it first
    assert capsys.readouterr().err == (
        "accesswatch: inc-low is closed as resolved: reopen it before you acknowledge it\n"
    )
    assert _command("note", "inc-low", "--by", "oncall-sam", "--note", " ", *where) == 1
    assert capsys.readouterr().err == "accesswatch: the note is empty (--note)\n"
    assert _command("note", "inc-low", "--by", "oncall-sam", "--note", "checked", *where) == 0
    assert capsys.readouterr().err.startswith("accesswatch: warning: --by 'oncall-sam' is not a dashboard user")
    with SqliteStore(data_dir / "accesswatch.db", cache_mb=16, readonly=True) as store:
        assert [action.by for action in store.actions("inc-low")] == ["ana", "oncall-sam"]


def test_with_no_dashboard_users_any_by_is_taken_silently(data_dir, tmp_path, capsys):
    # the default configuration's users are the demo's, who sign in only in the demo: nobody to compare with
    assert _command("ack", "inc-crit", "--by", "oncall-sam", "--data-dir", str(data_dir)) == 0
    assert capsys.readouterr().err == ""
    demo = ("--data-dir", str(data_dir), "--config", _users_config(tmp_path, demo_sign_in=True))
    assert _command("resolve", "inc-crit", "--by", "oncall-sam", *demo) == 0
    assert "--by 'oncall-sam' is not a dashboard user (analyst, auditor, demo)" in capsys.readouterr().err


def test_a_notes_control_characters_are_shown_as_escapes():
    note = "ok\x1b[2K\r\x1b[32mall clear\x1b[0m"
    action = TriageAction(incident_id="inc-low", kind=TriageActionKind.NOTE, by="eve\x1b[1A", at=NOW, note=note)
    out = io.StringIO()
    incidents_cli.hand_over(_incidents()[0], [action], ZoneInfo("Asia/Shanghai"), out)
    lines = out.getvalue().split("\n")
    assert lines[-1] == "" and all(line.isprintable() for line in lines)
    assert lines[-4:-1] == [
        r"  2026-11-03 17:00:00 +08:00  eve\x1b[1A  note",
        r"      ok\x1b[2K",  # the CR ends a line of the note: what follows is the next line, never over this one
        r"      \x1b[32mall clear\x1b[0m",
    ]


def test_every_incident_is_listed_past_a_page_of_the_store(data_dir, capsys, monkeypatch):
    monkeypatch.setattr(incidents_cli, "PAGE", 3)
    _run("--data-dir", str(data_dir), "--format", "jsonl")
    listed = [orjson.loads(line)["incident_id"] for line in capsys.readouterr().out.splitlines()]
    assert listed == ["inc-crit", "inc-high-new", "inc-high-old", "inc-low"]


def test_a_mistyped_data_dir_is_no_store_and_makes_none(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "accesswatch.cli", "incidents", "--data-dir", str(tmp_path / "typo")],
        capture_output=True,
        timeout=300,
    )
    assert done.returncode == 1 and done.stdout == b"" and b"Traceback" not in done.stderr
    assert done.stderr.decode().startswith(f"accesswatch: no store at {tmp_path / 'typo' / 'accesswatch.db'}")
    assert not (tmp_path / "typo").exists()
    helped = subprocess.run([sys.executable, "-m", "accesswatch.cli", "incidents", "--help"], capture_output=True)
    assert helped.returncode == 0 and b"usage: accesswatch incidents" in helped.stdout


# -- the summary, cut to a terminal ----------------------------------------------------------------
def test_on_a_terminal_the_summary_is_cut_at_a_word_to_fit_and_whole_in_a_pipe():
    incidents = _incidents()
    zone = ZoneInfo("Asia/Shanghai")
    piped = io.StringIO()
    incidents_cli.table(incidents, zone, piped)
    rows = piped.getvalue().splitlines()[1:-1]
    width = max(len(row) for row in rows) - 20  # the widest row, the critical one, must lose 20 characters
    shown = io.StringIO()
    incidents_cli.table(incidents, zone, shown, width=width)
    cut_rows = shown.getvalue().splitlines()[1:-1]
    assert all(len(row) <= width for row in cut_rows)
    crit = next(row for row in cut_rows if row.startswith("inc-crit"))
    assert crit.endswith(" records on Mon 02 Nov…"), crit
    others = [row for row in rows if not row.startswith("inc-crit")]
    assert [row for row in cut_rows if not row.startswith("inc-crit")] == others  # they fitted: whole


def test_columns_fits_the_table_to_80_columns_and_widens_the_summary_at_250(data_dir, capsys, monkeypatch):
    """Tester: at 80 columns each row was about 200 characters (it wrapped); COLUMNS, as a terminal sets it, is the
    width the table is fitted to, piped or not."""
    monkeypatch.delenv("COLUMNS", raising=False)
    _run("--data-dir", str(data_dir))
    piped = capsys.readouterr().out
    assert "including financial data." in piped and max(len(line) for line in piped.splitlines()) > 200
    monkeypatch.setenv("COLUMNS", "80")
    _run("--data-dir", str(data_dir))
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines) <= 80, lines
    # a line of figures, of activity, of summary an incident, as urgent first as the table
    assert lines[0] == "incidents, most severe and newest first (flagged activity in Asia/Shanghai):"
    assert [line.split()[0] for line in lines[1:-2:3]] == ["inc-crit", "inc-high-new", "inc-high-old", "inc-low"]
    assert lines[1].split() == ["inc-crit", "open", "critical", "risk", "100", "emp-0001"]
    assert (
        lines[2]
        == "    2026-11-02 00:00 to 2026-11-03 00:00 +08:00  3 alerts  bulk_read,egress,sensitive_access"[:79] + "…"
    )
    assert lines[3] == "    Employee emp-0001 exported 48,843 records on Mon 02 Nov, including…"
    # the counts, by severity and by status, a line each: together they would not fit
    assert (
        "; ".join(lines[-2:])
        == piped.splitlines()[-1]
        == ("4 incidents: 1 critical, 2 high, 0 medium, 1 low; 2 open, 1 acknowledged, 1 resolved")
    )
    monkeypatch.setenv("COLUMNS", "250")
    _run("--data-dir", str(data_dir))
    wide = capsys.readouterr().out
    assert wide == piped  # every row fits whole in 250
    monkeypatch.setenv("COLUMNS", "200")
    _run("--data-dir", str(data_dir))
    assert all(len(line) <= 200 for line in capsys.readouterr().out.splitlines())


def test_at_250_columns_five_detectors_leave_the_summary_its_room():
    """Tester: at 250 columns the summary was cut at about 65 characters: five detectors' names took 60."""
    five = ["bulk_read", "egress", "isolation_forest", "off_hours", "sensitive_access"]
    summary = "Employee emp-0001 (sales) exported 48,843 records with government id data on Mon 02 Nov."
    theft = _incident(
        incident_id="inc-" + "0123456789abcdef0123",  # as long as a real one
        severity=Severity.CRITICAL,
        window_start=f.at(hours=-9),
        window_end=f.at(hours=15),
        detectors=five,
        summary=summary,
    )
    out = io.StringIO()
    incidents_cli.table([theft, *_incidents()], ZoneInfo("Asia/Shanghai"), out, width=250)
    row = out.getvalue().splitlines()[1]
    assert len(row) <= 250 and row.endswith(f" bulk_read,egress +3                {summary}"), row
    piped = io.StringIO()
    incidents_cli.table([theft], ZoneInfo("Asia/Shanghai"), piped)
    assert ",".join(five) in piped.getvalue()  # whole in a pipe: grep finds every name


def test_a_narrow_terminal_still_shows_the_start_of_the_summary():
    summary = "Employee emp-0001 (sales) read 11,310 records with government id data on Fri 16 Oct 15:00-16:00."
    assert incidents_cli.cut(summary, 5) == "Employee emp-0001 (sales) read 11,310 records…"
    assert incidents_cli.cut(summary, None) == summary == incidents_cli.cut(summary, len(summary))


def test_a_span_across_a_change_of_the_clock_gives_each_end_its_offset():
    zone = ZoneInfo("America/New_York")  # back from daylight saving at 02:00 local on 1 November 2026
    start = datetime(2026, 11, 1, 4, 0, tzinfo=UTC)
    assert incidents_cli.local_span(start, start + timedelta(hours=3), zone) == (
        "2026-11-01 00:00 -04:00 to 2026-11-01 02:00 -05:00"
    )


# -- Elasticsearch ---------------------------------------------------------------------------------
def test_on_elasticsearch_the_listing_is_the_embedded_stores(data_dir, capsys, monkeypatch):
    from store.elasticsearch import ElasticsearchSettings, ElasticsearchStore

    _run("--data-dir", str(data_dir))
    embedded = capsys.readouterr().out
    _run("--data-dir", str(data_dir), "--format", "jsonl", "--status", "not_closed", "--min-severity", "high")
    embedded_jsonl = capsys.readouterr().out
    with FakeElasticsearch(realtime=False, refresh_interval=None) as server:
        prefix = f"awincidents-{uuid.uuid4().hex[:6]}"
        store = ElasticsearchStore(ElasticsearchSettings(hosts=[server.url], prefix=prefix, replicas=0))
        _filled(store)
        store.close()
        for key, value in {
            "STORE__KIND": "elasticsearch",
            "STORE__ELASTICSEARCH__HOSTS": f'["{server.url}"]',
            "STORE__ELASTICSEARCH__PREFIX": prefix,
        }.items():
            monkeypatch.setenv(f"ACCESSWATCH_{key}", value)
        empty = data_dir / "empty"  # no SQLite store here: the listing is Elasticsearch's
        empty.mkdir()
        assert _run("--data-dir", str(empty)) == 0
        assert capsys.readouterr().out == embedded
        _run("--data-dir", str(empty), "--format", "jsonl", "--status", "not_closed", "--min-severity", "high")
        assert capsys.readouterr().out == embedded_jsonl
        monkeypatch.setenv("ACCESSWATCH_STORE__ELASTICSEARCH__PREFIX", "typo")
        with pytest.raises(FileNotFoundError, match=f"no store at {server.url} with prefix 'typo'"):
            _run("--data-dir", str(empty))
        assert not [name for name in server.cluster.indices if name.startswith("typo")]


def test_control_characters_in_the_logs_words_are_shown_as_escapes_and_the_columns_stay_in_line():
    """Tester T9: an actor id's ESC sequence showed a critical incident as a green "[LOW] all clear", and its
    line breaks forged rows. The contract sets no pattern on ids: they are stored, and shown inert."""
    hostile = "emp-0077\x1b[2K\r\x1b[32m[LOW     ]    all clear\x1b[0m\n\u202egpj.exe\x9b"
    incidents = [
        _incident(
            incident_id="inc-crit",
            severity=Severity.CRITICAL,
            actor_id=hostile,
            summary=f"Employee {hostile} exported 48,843 records.",
        ),
        _incident(incident_id="inc-low", severity=Severity.LOW, actor_id="emp-0002"),
    ]
    out = io.StringIO()
    incidents_cli.table(incidents, ZoneInfo("Asia/Shanghai"), out)
    text = out.getvalue()
    lines = text.split("\n")
    assert lines[-1] == "" and all(line.isprintable() for line in lines), repr(text)
    header, crit, low, counted = lines[:-1]
    shown = r"emp-0077\x1b[2K\r\x1b[32m[LOW     ]    all clear\x1b[0m\n\u202egpj.exe\x9b"
    assert crit.startswith("inc-crit") and crit.count(shown) == 2  # the actor column and the summary
    assert counted.startswith("2 incidents: 1 critical")
    assert crit.index(" 2026-") == low.index(" 2026-") == header.index(" flagged activity")  # the span, in line
