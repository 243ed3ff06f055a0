"""``verify`` re-derives the alerts' and incidents' ids from what they were made of (store.chain_ids).

A tester moved an acknowledged critical incident and its alerts to another employee with an UPDATE of their
actor columns and bodies, and deleted a critical alert from an incident and its list: ``verify`` said "intact".
The alerts here carry ids as ``detectors.alerts`` derives them, and cite stored events of their actor, as the
pipeline's do; they are grouped into incidents by the pipeline's own step (``_publish``).
"""

from __future__ import annotations

from datetime import timedelta

from detectors.alerts import alert_id
from models.alert import Alert, Severity
from models.event import format_utc
from models.incident import TriageActionKind
from store.retention import RetentionPolicy
from store.sqlite import SqliteStore
from tests import factories
from tests.factories import T0
from tests.test_incident_status_audit import _act, _incident_of, _publish
from tests.test_integrity import _raw, _store, command


def _derived(store: SqliteStore, settings, detector: str, actor: str, hour: float, severity: Severity) -> Alert:
    """An alert as ``AlertBook`` opens one, with its first finding grown to a day that starts earlier (so its
    window no longer starts where its id was made from), citing an event of its actor stored beside it."""
    opened = T0 + timedelta(hours=hour)
    event = factories.incoming(
        settings, at=opened, actor={"id": actor}, event_id=f"evt-{detector}-{actor}-{hour:g}", customer_ids=["c-1"]
    )
    store.write([event])
    start, end = opened - timedelta(hours=3), opened + timedelta(hours=1)
    return factories.alert(
        alert_id=alert_id(detector, actor, opened.timestamp()),
        detector=detector,
        actor_id=actor,
        severity=severity,
        window_start=start,
        window_end=end,
        evidence={
            "event_ids": [event.event.event_id],
            "spans": [
                [format_utc(opened), format_utc(end), 5.0, severity.value, 10],
                [format_utc(start), format_utc(end), 4.0, severity.value, 12],
            ],
        },
        revision=2,
    )


def _moved(store: SqliteStore) -> set[tuple]:
    return {(p.kind, p.incident_id, p.alert_id) for p in store.verify_chain().problems}


def test_an_acknowledged_incident_moved_with_its_alerts_to_another_employee_is_named(tmp_path, settings):
    with _store(tmp_path) as store:
        bulk = _derived(store, settings, "bulk_read", "emp-0001", 0, Severity.CRITICAL)
        night = _derived(store, settings, "off_hours", "emp-0001", 1, Severity.HIGH)
        other = _derived(store, settings, "bulk_read", "emp-0002", 0, Severity.HIGH)
        _publish(store, settings, bulk, night, other)
        incident = _incident_of(store, bulk)
        _act(store, incident.incident_id, TriageActionKind.ACKNOWLEDGE)
        assert store.verify_chain().intact  # ids as derived, an earlier window start included
        db = _raw(store)
        for table in ("incidents", "alerts"):
            db.execute(
                f"UPDATE {table} SET actor_id = 'emp-0999', body = json_set(body, '$.actor_id', 'emp-0999')"
                " WHERE actor_id = 'emp-0001'"
            )
        assert _moved(store) == {
            ("moved", None, bulk.alert_id),
            ("moved", None, night.alert_id),
            ("moved", incident.incident_id, None),
        }
    done = command("verify", "--data-dir", str(tmp_path / "data"))
    assert done.returncode == 1 and done.stdout.startswith("TAMPERED:"), done.stdout
    lines = done.stdout.splitlines()
    assert (
        f"moved    alert {bulk.alert_id}: stored under emp-0999, but its id was made from emp-0001's (the actor"
        " of the events it cites)"
    ) in lines
    assert (
        f"moved    incident {incident.incident_id}: stored under emp-0999, but its alerts are emp-0001's and its id"
        " was made from emp-0001's"
    ) in lines


def test_an_alert_moved_in_its_column_only_or_an_incident_alone_is_named(tmp_path, settings):
    with _store(tmp_path) as store:
        first = _derived(store, settings, "bulk_read", "emp-0001", 0, Severity.HIGH)
        second = _derived(store, settings, "bulk_read", "emp-0002", 0, Severity.HIGH)
        _publish(store, settings, first, second)
        incident = _incident_of(store, second)
        db = _raw(store)
        db.execute("UPDATE alerts SET actor_id = 'emp-0999' WHERE alert_id = ?", (first.alert_id,))
        db.execute("UPDATE incidents SET actor_id = 'emp-0999' WHERE incident_id = ?", (incident.incident_id,))
        problems = {(p.incident_id, p.alert_id): p for p in store.verify_chain().problems}
        assert set(problems) == {(None, first.alert_id), (incident.incident_id, None)}
        assert problems[(None, first.alert_id)].detail == (
            "stored under emp-0999 (its actor_id column) and emp-0001 (its body), but its id was made from emp-0001's"
        )
        assert problems[(incident.incident_id, None)].detail == (
            "stored under emp-0999 (its actor_id column) and emp-0002 (its body), but its id was made from emp-0002's"
        )


def test_a_critical_alert_deleted_with_or_without_its_incidents_list_is_named(tmp_path, settings):
    with _store(tmp_path) as store:
        critical = _derived(store, settings, "bulk_read", "emp-0001", 0, Severity.CRITICAL)
        high = _derived(store, settings, "off_hours", "emp-0001", 1, Severity.HIGH)
        gone = _derived(store, settings, "bulk_read", "emp-0002", 0, Severity.CRITICAL)
        kept = _derived(store, settings, "off_hours", "emp-0002", 1, Severity.HIGH)
        _publish(store, settings, critical, high, gone, kept)
        unlisted, listed = _incident_of(store, critical), _incident_of(store, gone)
        assert store.verify_chain().intact
        db = _raw(store)
        db.execute("DELETE FROM alerts WHERE alert_id IN (?, ?)", (critical.alert_id, gone.alert_id))
        # and out of its incident's list, as the tester did: its evidence and its severity still tell
        db.execute(
            "UPDATE incidents SET body = json_set(body, '$.alert_ids', json_array(?)) WHERE incident_id = ?",
            (high.alert_id, unlisted.incident_id),
        )
        problems = [(p.kind, p.incident_id, p.alert_id, p.detail) for p in store.verify_chain().problems]
    assert sorted(problems, key=str) == sorted(
        [
            (
                "removed",
                listed.incident_id,
                gone.alert_id,
                f"incident {listed.incident_id} lists it, but it is no longer stored, and retention deletes no alert"
                " an incident lists",
            ),
            (
                "removed",
                unlisted.incident_id,
                critical.alert_id,
                f"incident {unlisted.incident_id}'s evidence names it (its strongest of bulk_read), but the incident"
                " does not list it (no longer stored)",
            ),
            (
                "removed",
                unlisted.incident_id,
                None,
                "stored at critical, above every alert it lists (the strongest high): its stronger alert was removed",
            ),
        ],
        key=str,
    )


def test_alerts_and_incidents_as_the_pipeline_stores_them_verify_clean_after_a_purge(tmp_path, settings):
    with _store(tmp_path) as store:
        closed = _derived(store, settings, "bulk_read", "emp-0001", 0, Severity.HIGH)
        still = _derived(store, settings, "bulk_read", "emp-0002", 0, Severity.HIGH)
        _publish(store, settings, closed, still)
        incident = _incident_of(store, closed)
        _act(store, incident.incident_id, TriageActionKind.RESOLVE, at=T0 + timedelta(days=1))
        report = store.purge(RetentionPolicy.of(1, 1, T0 + timedelta(days=400)))
        assert report.incidents == 1 and report.alerts == 1
        assert store.verify_chain().intact, store.verify_chain().problems
