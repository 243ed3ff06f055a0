"""``verify`` checks the incidents' and alerts' statuses against the chained triage log (store.chain_status).

The incidents and alerts tables are not chained, but what a person decided is: an incident put back in the
queue, or a case hidden as a false positive, by an UPDATE straight into the file is named.  And nothing the
product does itself is: triage in any order, alerts that join after an acknowledgement, alerts judged again
after their incident was closed (a replay, a restart), retention.  The alerts are published through the
pipeline's own step (``_publish``), as a replay publishes them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import orjson

from accesswatch import app
from models.alert import Alert, AlertStatus
from models.incident import Incident, TriageAction, TriageActionKind
from store.retention import RetentionPolicy
from store.sqlite import SqliteStore
from tests import factories
from tests.factories import T0
from tests.test_integrity import _raw, _store, command

NOW = T0 + timedelta(days=2)  # when people act (wall clock), after the activity
OPEN, ACKNOWLEDGED, RESOLVED, FALSE_POSITIVE = (
    AlertStatus.OPEN,
    AlertStatus.ACKNOWLEDGED,
    AlertStatus.RESOLVED,
    AlertStatus.FALSE_POSITIVE,
)


def _alert(hour: float, hours: float = 1, actor: str = "emp-0001", **overrides) -> Alert:
    start = T0 + timedelta(hours=hour)
    return factories.alert(actor_id=actor, window_start=start, window_end=start + timedelta(hours=hours), **overrides)


def _publish(store: SqliteStore, settings, *alerts: Alert) -> None:
    """The alerts grouped into incidents and stored as the pipeline does it during a replay."""
    app.build_pipeline(settings, store, notifier=None)._publish(list(alerts))


def _act(store: SqliteStore, incident_id: str, *kinds: TriageActionKind, at: datetime = NOW) -> Incident:
    incident = None
    for n, kind in enumerate(kinds):
        note = "a duplicate of SEC-7" if kind is TriageActionKind.FALSE_POSITIVE else None
        action = TriageAction(incident_id=incident_id, kind=kind, by="bob", at=at + timedelta(minutes=n), note=note)
        incident = store.record_action(action)
    assert incident is not None
    return incident


def _incident_of(store: SqliteStore, alert: Alert) -> Incident:
    stored = store.get_alert(alert.alert_id)
    assert stored is not None and stored.incident_id is not None
    incident = store.get_incident(stored.incident_id)
    assert incident is not None
    return incident


def _statuses(store: SqliteStore) -> set[tuple]:
    return {(p.kind, p.incident_id, p.alert_id) for p in store.verify_chain().problems}


def _data(tmp_path: Path) -> str:
    return str(tmp_path / "data")


# -- found --------------------------------------------------------------------------------------------
def test_a_closed_incident_put_back_in_the_queue_by_an_update_is_named_with_both_statuses(tmp_path, settings):
    with _store(tmp_path) as store:
        first = _alert(0)
        _publish(store, settings, first, _alert(1))
        incident = _incident_of(store, first)
        _act(store, incident.incident_id, TriageActionKind.ACKNOWLEDGE, TriageActionKind.RESOLVE)
        assert store.verify_chain().intact
        # the queue filters on the column: open again there, and a page reading the body says so too
        _raw(store).execute(
            "UPDATE incidents SET status = 'open', body = json_set(body, '$.status', 'open') WHERE incident_id = ?",
            (incident.incident_id,),
        )
        assert _statuses(store) == {("status", incident.incident_id, None)}
    done = command("verify", "--data-dir", _data(tmp_path))
    assert done.returncode == 1 and done.stdout.startswith("TAMPERED:")
    assert (
        f"status   incident {incident.incident_id}: stored as open, but its triage log leaves it resolved"
        f" (triage action 2: resolve of incident {incident.incident_id} by bob at 2026-11-04T01:01:00.000000Z)"
    ) in done.stdout.splitlines()
    [problem] = orjson.loads(command("verify", "--data-dir", _data(tmp_path), "--format", "json").stdout)["problems"]
    assert (problem["kind"], problem["incident_id"], problem["alert_id"]) == ("status", incident.incident_id, None)


def test_a_case_hidden_as_a_false_positive_no_one_triaged_is_named_in_its_column_or_its_body(tmp_path, settings):
    with _store(tmp_path) as store:
        hidden, edited = _alert(0, actor="emp-0001"), _alert(0, actor="emp-0002")
        _publish(store, settings, hidden, edited)
        hidden_id, edited_id = _incident_of(store, hidden).incident_id, _incident_of(store, edited).incident_id
        db = _raw(store)
        db.execute("UPDATE incidents SET status = 'false_positive' WHERE incident_id = ?", (hidden_id,))
        db.execute(
            "UPDATE incidents SET body = json_set(body, '$.status', 'resolved') WHERE incident_id = ?", (edited_id,)
        )
        problems = {p.incident_id: p.detail for p in store.verify_chain().problems if p.kind == "status"}
    assert problems == {
        hidden_id: "stored as false_positive (its status column) and open (its body), but its triage log leaves it"
        " open (no action set its status)",
        edited_id: "stored as open (its status column) and resolved (its body), but its triage log leaves it"
        " open (no action set its status)",
    }


def test_an_alert_of_a_closed_incident_set_back_to_open_is_named(tmp_path, settings):
    with _store(tmp_path) as store:
        first, second = _alert(0), _alert(1)
        _publish(store, settings, first, second)
        incident = _incident_of(store, first)
        _act(store, incident.incident_id, TriageActionKind.FALSE_POSITIVE)
        db = _raw(store)
        db.execute(
            "UPDATE alerts SET status = 'open', body = json_set(body, '$.status', 'open') WHERE alert_id = ?",
            (second.alert_id,),
        )
        [problem] = store.verify_chain().problems
        assert (problem.kind, problem.incident_id, problem.alert_id) == (
            "status",
            incident.incident_id,
            second.alert_id,
        )
        assert problem.detail == (
            f"stored as open, but incident {incident.incident_id} lists it, and its triage log leaves it"
            f" false_positive (triage action 1: false_positive of incident {incident.incident_id} by bob at"
            " 2026-11-04T01:00:00.000000Z): an alert of it can be false_positive only"
        )
    done = command("verify", "--data-dir", _data(tmp_path))
    assert done.returncode == 1
    assert any(
        line.startswith(f"status   alert {second.alert_id}: stored as open") for line in done.stdout.splitlines()
    )


def test_an_incident_deleted_while_the_chain_holds_its_triage_log_is_named(tmp_path, settings):
    with _store(tmp_path) as store:
        first = _alert(0)
        _publish(store, settings, first)
        incident = _incident_of(store, first)
        _act(store, incident.incident_id, TriageActionKind.ACKNOWLEDGE)
        _raw(store).execute("DELETE FROM incidents WHERE incident_id = ?", (incident.incident_id,))
        [problem] = store.verify_chain().problems
    assert (problem.kind, problem.incident_id) == ("removed", incident.incident_id)
    assert problem.detail.startswith("no longer stored, though the chain lists 1 triage actions of it")


def test_a_status_set_by_hand_on_many_incidents_is_listed_a_hundred_then_counted(tmp_path, settings):
    with _store(tmp_path) as store:
        _publish(store, settings, *(_alert(0, actor=f"emp-{n:04d}") for n in range(103)))
        _raw(store).execute("UPDATE incidents SET status = 'resolved', body = json_set(body, '$.status', 'resolved')")
        report = store.verify_chain()
    assert report.problem_count == 103 and len(report.problems) == 101
    assert report.problems[-1].detail == (
        "3 more incidents in a status their triage log does not leave them in, not listed one by one"
    )


# -- not found ----------------------------------------------------------------------------------------
def test_triage_through_the_product_in_any_order_verifies_clean(tmp_path, settings):
    with _store(tmp_path) as store:
        first, later = _alert(0), _alert(2)
        _publish(store, settings, first)
        incident = _incident_of(store, first)
        _act(store, incident.incident_id, TriageActionKind.ACKNOWLEDGE, TriageActionKind.ASSIGN)
        _publish(store, settings, later)  # joins the acknowledged incident, open
        assert _incident_of(store, later).incident_id == incident.incident_id
        assert store.get_alert(later.alert_id).status is OPEN
        assert store.verify_chain().intact
        for kind, status in (
            (TriageActionKind.RESOLVE, RESOLVED),
            (TriageActionKind.REOPEN, OPEN),
            (TriageActionKind.FALSE_POSITIVE, FALSE_POSITIVE),
            (TriageActionKind.NOTE, FALSE_POSITIVE),
            (TriageActionKind.REOPEN, OPEN),
            (TriageActionKind.ACKNOWLEDGE, ACKNOWLEDGED),
            (TriageActionKind.ACKNOWLEDGE, ACKNOWLEDGED),  # a repeat, recorded as the store is asked to
        ):
            assert _act(store, incident.incident_id, kind).status is status
            report = store.verify_chain()
            assert report.intact, (kind, report.problems)
    assert command("verify", "--data-dir", _data(tmp_path)).returncode == 0


def test_alerts_judged_again_after_their_incident_was_closed_verify_clean(tmp_path, settings):
    # A replay or a restart judges alerts again: one of a closed incident that grew since starts an incident of
    # its own (a closed case takes no more alerts), open in it, and others join that one.
    with _store(tmp_path) as store:
        first, second = _alert(0), _alert(1)
        _publish(store, settings, first, second)
        closed = _incident_of(store, first)
        _act(store, closed.incident_id, TriageActionKind.RESOLVE)
        grown = second.model_copy(update={"window_end": second.window_end + timedelta(hours=1), "revision": 2})
        joining = _alert(2.5)
        _publish(store, settings, grown, joining)
        carried = _incident_of(store, grown)
        assert carried.incident_id != closed.incident_id and carried.status is OPEN
        assert store.get_incident(closed.incident_id).status is RESOLVED  # a person's triage stands
        assert store.get_alert(grown.alert_id).status is OPEN  # new activity, in the new case
        assert store.get_alert(joining.alert_id).status is OPEN
        report = store.verify_chain()
        assert report.intact, report.problems
        # the same first alert judged again: nothing new, the closed incident as the person left it
        _publish(store, settings, first.model_copy(update={"incident_id": None}))
        assert store.get_incident(closed.incident_id).status is RESOLVED
        assert store.get_incident(closed.incident_id).alert_ids == [first.alert_id, second.alert_id]
        # the alert both list moves with the triage of the incident that holds it, not the closed one's
        _act(store, carried.incident_id, TriageActionKind.ACKNOWLEDGE)
        _act(store, closed.incident_id, TriageActionKind.REOPEN)
        assert store.get_alert(grown.alert_id).status is ACKNOWLEDGED
        assert store.get_alert(first.alert_id).status is OPEN
        report = store.verify_chain()
        assert report.intact, report.problems
        # still found: the alert the new incident holds, closed by hand, though that incident was acknowledged
        _raw(store).execute("UPDATE alerts SET status = 'resolved' WHERE alert_id = ?", (joining.alert_id,))
        assert _statuses(store) == {("status", carried.incident_id, joining.alert_id)}


def test_after_a_retention_purge_the_incidents_left_verify_clean(tmp_path, settings):
    with _store(tmp_path) as store:
        old, kept = _alert(0, actor="emp-0001"), _alert(0, actor="emp-0002")
        first, second = _alert(0, actor="emp-0003"), _alert(1, actor="emp-0003")
        _publish(store, settings, old, kept, first, second)
        purged = _incident_of(store, old).incident_id
        _act(store, purged, TriageActionKind.RESOLVE, at=T0 + timedelta(days=1))
        _act(store, _incident_of(store, kept).incident_id, TriageActionKind.FALSE_POSITIVE, TriageActionKind.REOPEN)
        # emp-0003's case closed, then its second alert grown a day later: it moves to an incident of its own
        closed = _incident_of(store, first).incident_id
        _act(store, closed, TriageActionKind.RESOLVE, at=T0 + timedelta(days=1))
        grown = second.model_copy(update={"window_end": T0 + timedelta(days=40), "revision": 2})
        _publish(store, settings, grown)
        carried = _incident_of(store, grown).incident_id
        report = store.purge(RetentionPolicy(events_before=T0, alerts_before=T0 + timedelta(days=30)))
        assert report.incidents == 2  # emp-0001's and emp-0003's first, closed a month before
        assert store.get_incident(purged) is None and store.get_incident(closed) is None
        # the grown alert stays, open, in the incident no one triaged yet: the one that closed it is gone
        assert store.get_alert(grown.alert_id).status is OPEN
        assert store.get_incident(carried).alert_ids == [grown.alert_id]
        report = store.verify_chain()
        assert report.intact, report.problems
        assert report.rows_purged["triage_actions"] == 2
    assert command("verify", "--data-dir", _data(tmp_path)).returncode == 0


def test_an_incident_whose_chained_log_has_an_action_of_no_readable_kind_is_not_compared(tmp_path, settings):
    # a row as the migration that chained the triage log found it, its body without a kind: what it did is not
    # known, so neither is the status it left
    path = tmp_path / "data" / "accesswatch.db"
    with SqliteStore(path, cache_mb=8) as store:
        first = _alert(0)
        _publish(store, settings, first)
        incident_id = _incident_of(store, first).incident_id
        db = store._db
        db.execute(
            "INSERT INTO triage_actions (incident_id, at, body) VALUES (?,?,?)",
            (incident_id, "2026-11-20T10:00:00.000000Z", '{"by": "bob"}'),
        )
        db.execute("UPDATE incidents SET status = 'resolved', body = json_set(body, '$.status', 'resolved')")
        db.execute("DELETE FROM schema_migrations WHERE name = '0015-audit-chain'")
    with SqliteStore(path, cache_mb=8) as store:
        report = store.verify_chain()
        assert report.intact and report.rows_checked["triage_actions"] == 1, report.problems
