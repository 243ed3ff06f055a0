"""Each incident's creation and each rise of its severity, in the hash chain (store.chain_incidents).

An incident no one has triaged yet has no chained triage log for ``verify`` to hold it to (test_incident_status_audit):
deleted with its alerts, or lowered out of the pager's reach, straight in the file, it is named all the same.  And
nothing the product does itself is: a replay, a replay again, alerts judged again, retention.  The alerts are
published through the pipeline's own step (``_publish``), as a replay publishes them; tampering is done as an
intruder would, with ``sqlite3`` behind the product's back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from unittest import mock

import orjson

from models.alert import Alert, Severity
from models.incident import TriageActionKind
from store.base import IncidentQuery
from store.retention import RetentionPolicy
from store.sqlite import SqliteStore
from tests.factories import T0
from tests.test_incident_status_audit import _act, _alert, _incident_of, _publish
from tests.test_integrity import _insider_log, _raw, _store, command


@contextmanager
def incidents_unchained() -> Iterator[None]:
    """Writes as the versions before migration 0016 made them: incidents stored, and purged, with nothing chained."""
    with (
        mock.patch("store.sqlite.record_rises", lambda db, before: None),
        mock.patch("store.retention.record_incident_purge", lambda db, ids: None),
    ):
        yield


def _records(store: SqliteStore) -> list[list]:
    """Every incident record the chain holds, in chain order."""
    rows = _raw(store).execute("SELECT leaves FROM chain WHERE kind = 'incidents' ORDER BY n")
    return [record for (leaves,) in rows for record in orjson.loads(leaves)]


def _problems(store: SqliteStore) -> set[tuple]:
    return {(p.kind, p.incident_id) for p in store.verify_chain().problems}


def _data(tmp_path: Path) -> str:
    return str(tmp_path / "data")


def _grown(alert: Alert, severity: Severity) -> Alert:
    """The alert's next revision, an hour longer and at ``severity``: how an incident's severity rises."""
    return alert.model_copy(
        update={
            "window_end": alert.window_end + timedelta(hours=1),
            "revision": alert.revision + 1,
            "severity": severity,
        }
    )


# -- found --------------------------------------------------------------------------------------------
def test_an_incident_no_one_triaged_deleted_with_its_alerts_is_named(tmp_path, settings):
    with _store(tmp_path) as store:
        deleted, kept = _alert(0, actor="emp-0001"), _alert(0, actor="emp-0002")
        _publish(store, settings, deleted, kept)
        incident = _incident_of(store, deleted)
        assert store.verify_chain().intact
        db = _raw(store)
        db.execute("DELETE FROM incidents WHERE incident_id = ?", (incident.incident_id,))
        db.execute("DELETE FROM alerts WHERE alert_id = ?", (deleted.alert_id,))
        [problem] = store.verify_chain().problems
        assert (problem.kind, problem.incident_id, problem.entry) == ("removed", incident.incident_id, 1)
    done = command("verify", "--data-dir", _data(tmp_path))
    assert done.returncode == 1 and done.stdout.startswith("TAMPERED:")
    assert (
        f"removed  incident {incident.incident_id} (chain entry 1): no longer stored, though the chain recorded it"
        " created at high (activity up to 2026-11-02T02:00:00.000Z), and no purge recorded deleting it"
    ) in done.stdout.splitlines()
    [problem] = orjson.loads(command("verify", "--data-dir", _data(tmp_path), "--format", "json").stdout)["problems"]
    assert (problem["kind"], problem["incident_id"], problem["entry"]) == ("removed", incident.incident_id, 1)


def test_an_incident_lowered_in_its_column_its_body_or_both_is_named(tmp_path, settings):
    with _store(tmp_path) as store:
        column, body, both = (_alert(0, actor=f"emp-000{n}", severity=Severity.CRITICAL) for n in (1, 2, 3))
        _publish(store, settings, column, body, both)
        ids = {
            name: _incident_of(store, alert).incident_id
            for name, alert in zip(("column", "body", "both"), (column, body, both), strict=True)
        }
        db = _raw(store)
        # the queue sorts by the column, the pages read the body: each alone hides the case from someone
        db.execute("UPDATE incidents SET severity_rank = 0 WHERE incident_id = ?", (ids["column"],))
        db.execute(
            "UPDATE incidents SET body = json_set(body, '$.severity', 'medium') WHERE incident_id = ?", (ids["body"],)
        )
        db.execute(
            "UPDATE incidents SET severity_rank = 2, body = json_set(body, '$.severity', 'high') WHERE incident_id = ?",
            (ids["both"],),
        )
        problems = {p.incident_id: (p.kind, p.detail) for p in store.verify_chain().problems}
    said = "but the chain recorded it created at critical (activity up to 2026-11-02T02:00:00.000Z)"
    assert problems == {
        ids["column"]: ("severity", f"stored as low (its severity column) and critical (its body), {said}"),
        ids["body"]: ("severity", f"stored as critical (its severity column) and medium (its body), {said}"),
        ids["both"]: ("severity", f"stored as high, {said}"),
    }
    done = command("verify", "--data-dir", _data(tmp_path))
    assert done.returncode == 1
    assert f"severity incident {ids['both']} (chain entry 1): stored as high, {said}" in done.stdout.splitlines()


def test_an_incident_lowered_back_to_the_severity_it_was_created_at_is_named_with_its_rise(tmp_path, settings):
    with _store(tmp_path) as store:
        first = _alert(0, severity=Severity.LOW)
        _publish(store, settings, first)
        incident_id = _incident_of(store, first).incident_id
        _publish(store, settings, _grown(first, Severity.HIGH))
        assert store.get_incident(incident_id).severity is Severity.HIGH
        assert [record[:3] for record in _records(store)] == [
            [incident_id, "created", "low"],
            [incident_id, "raised", "high"],
        ]
        _raw(store).execute(
            "UPDATE incidents SET severity_rank = 0, body = json_set(body, '$.severity', 'low') WHERE incident_id = ?",
            (incident_id,),
        )
        [problem] = store.verify_chain().problems
    assert (problem.kind, problem.incident_id, problem.entry) == ("severity", incident_id, 2)
    assert problem.detail == (
        "stored as low, but the chain recorded it created at low (activity up to 2026-11-02T02:00:00.000Z) and"
        " raised to high (activity up to 2026-11-02T03:00:00.000Z)"
    )


def test_incidents_deleted_in_bulk_are_listed_a_hundred_then_counted(tmp_path, settings):
    with _store(tmp_path) as store:
        _publish(store, settings, *(_alert(0, actor=f"emp-{n:04d}") for n in range(103)))
        db = _raw(store)
        db.execute("DELETE FROM alerts")
        db.execute("DELETE FROM incidents")
        report = store.verify_chain()
    assert report.problem_count == 103 and len(report.problems) == 101
    assert report.problems[-1].detail == "3 more incidents gone that the chain recorded, not listed one by one"


def test_an_incident_a_purge_deleted_then_stored_again_and_lowered_is_named_by_its_new_record(tmp_path, settings):
    # retention purged the case; the log replayed makes it again, recorded afresh: that record is what holds now
    with _store(tmp_path) as store:
        first = _alert(0, severity=Severity.MEDIUM)
        _publish(store, settings, first)
        incident_id = _incident_of(store, first).incident_id
        _act(store, incident_id, TriageActionKind.RESOLVE, at=T0 + timedelta(days=1))
        assert store.purge(RetentionPolicy(events_before=T0, alerts_before=T0 + timedelta(days=30))).incidents == 1
        _publish(store, settings, first.model_copy(update={"severity": Severity.LOW}))
        assert store.get_incident(incident_id).severity is Severity.LOW
        assert store.verify_chain().intact
        _raw(store).execute("UPDATE incidents SET severity_rank = 0 WHERE incident_id = ?", (incident_id,))
        assert store.verify_chain().intact  # low, as recorded since the purge
        _raw(store).execute("DELETE FROM incidents WHERE incident_id = ?", (incident_id,))
        assert _problems(store) == {("removed", incident_id)}


def test_an_incident_deleted_then_made_again_by_the_pipeline_is_named_by_its_second_creation(tmp_path, settings):
    # deleted with its alerts, then judged again (a restart, a replay): stored anew, lower, and recorded so
    with _store(tmp_path) as store:
        first = _alert(0, severity=Severity.CRITICAL)
        _publish(store, settings, first)
        incident_id = _incident_of(store, first).incident_id
        db = _raw(store)
        db.execute("DELETE FROM incidents WHERE incident_id = ?", (incident_id,))
        db.execute("DELETE FROM alerts WHERE alert_id = ?", (first.alert_id,))
        _publish(store, settings, first.model_copy(update={"severity": Severity.LOW}))
        assert store.get_incident(incident_id).severity is Severity.LOW
        [problem] = store.verify_chain().problems
    assert (problem.kind, problem.incident_id, problem.entry) == ("removed", incident_id, 2)
    assert problem.detail == (
        "deleted behind the product's back, and stored again since: the chain recorded it created at critical"
        " (activity up to 2026-11-02T02:00:00.000Z), then created again at low (activity up to"
        " 2026-11-02T02:00:00.000Z), and no purge recorded deleting it between"
    )


def test_an_incidents_entry_whose_list_was_rewritten_is_told_by_its_digest(tmp_path, settings):
    with _store(tmp_path) as store:
        first = _alert(0, severity=Severity.CRITICAL)
        _publish(store, settings, first)
        incident_id = _incident_of(store, first).incident_id
        db = _raw(store)
        db.execute(
            "UPDATE incidents SET severity_rank = 0, body = json_set(body, '$.severity', 'low') WHERE incident_id = ?",
            (incident_id,),
        )
        # the record lowered to match: the entry's digest covers its list
        (leaves,) = db.execute("SELECT leaves FROM chain WHERE kind = 'incidents'").fetchone()
        db.execute("UPDATE chain SET leaves = ? WHERE kind = 'incidents'", (leaves.replace(b"critical", b"low"),))
        problems = {(p.kind, p.entry, p.detail) for p in store.verify_chain().problems}
    assert problems == {
        ("chain", 1, "the incidents entry: its list of incidents was altered: its digest does not match")
    }


# -- not found ----------------------------------------------------------------------------------------
def test_a_replay_records_each_incident_once_and_a_replay_again_records_nothing(tmp_path):
    log = tmp_path / "events.jsonl"
    _insider_log(log, "c-1")
    replay = ("replay", str(log), "--data-dir", _data(tmp_path))
    assert command(*replay).returncode == 0
    first = orjson.loads(command("verify", "--data-dir", _data(tmp_path), "--format", "json").stdout)
    assert first["intact"] and first["incidents_checked"] == 1, first
    with SqliteStore(tmp_path / "data" / "accesswatch.db", cache_mb=8) as store:
        [incident] = store.query_incidents(IncidentQuery())
        assert [record[:3] for record in _records(store)] == [
            [incident.incident_id, "created", incident.severity.value]
        ]
    assert command(*replay).returncode == 0
    assert orjson.loads(command("verify", "--data-dir", _data(tmp_path), "--format", "json").stdout) == first


def test_alerts_judged_again_record_nothing_and_a_rise_is_recorded_once(tmp_path, settings):
    # a restart judges again what it had judged: the same revisions, or older ones, store the same severities
    with _store(tmp_path) as store:
        first, second = _alert(0, severity=Severity.MEDIUM), _alert(1, severity=Severity.LOW)
        _publish(store, settings, first, second)
        _publish(store, settings, first, second)
        grown = _grown(second, Severity.CRITICAL)
        _publish(store, settings, grown)
        _publish(store, settings, first, second, grown)  # a restart from an earlier checkpoint
        _publish(store, settings, grown)
        incident_id = _incident_of(store, first).incident_id
        assert [record[:3] for record in _records(store)] == [
            [incident_id, "created", "medium"],
            [incident_id, "raised", "critical"],
        ]
        _act(store, incident_id, TriageActionKind.ACKNOWLEDGE, TriageActionKind.RESOLVE)  # triage records none
        assert len(_records(store)) == 2
        report = store.verify_chain()
        assert report.intact and report.incidents_checked == 1, report.problems


def test_incidents_purged_by_retention_verify_clean_and_one_deleted_beside_them_does_not(tmp_path, settings):
    with _store(tmp_path) as store:
        purged, hidden, kept = (_alert(0, actor=f"emp-000{n}") for n in (1, 2, 3))
        _publish(store, settings, purged, hidden, kept)
        purged_id, hidden_id = _incident_of(store, purged).incident_id, _incident_of(store, hidden).incident_id
        _act(store, purged_id, TriageActionKind.FALSE_POSITIVE, at=T0 + timedelta(days=1))
        report = store.purge(RetentionPolicy(events_before=T0, alerts_before=T0 + timedelta(days=30)))
        assert report.incidents == 1 and store.get_incident(purged_id) is None
        (kind, listed) = _raw(store).execute("SELECT kind, leaves FROM chain ORDER BY n DESC LIMIT 1").fetchone()
        assert (kind, orjson.loads(listed)) == ("incidents purge", [purged_id])
        report = store.verify_chain()
        assert report.intact and report.incidents_checked == 2, report.problems
        _raw(store).execute("DELETE FROM incidents WHERE incident_id = ?", (hidden_id,))
        assert _problems(store) == {("removed", hidden_id)}
    assert command("verify", "--data-dir", _data(tmp_path)).returncode == 1


def test_a_store_written_before_the_incidents_were_chained_verifies_clean_and_is_guarded_after(tmp_path, settings):
    path = tmp_path / "data" / "accesswatch.db"
    with SqliteStore(path, cache_mb=8) as store, incidents_unchained():
        first, other = _alert(0, severity=Severity.LOW), _alert(0, actor="emp-0002")
        _publish(store, settings, first, other)
        _publish(store, settings, _grown(first, Severity.HIGH))
        incident_id, other_id = _incident_of(store, first).incident_id, _incident_of(store, other).incident_id
        purged = _alert(0, actor="emp-0003")
        _publish(store, settings, purged)
        _act(store, _incident_of(store, purged).incident_id, TriageActionKind.RESOLVE, at=T0 + timedelta(days=1))
        store.purge(RetentionPolicy(events_before=T0, alerts_before=T0 + timedelta(days=30)))
        assert _records(store) == []
        _raw(store).execute("DELETE FROM schema_migrations WHERE name = '0016-incident-chain'")
    with SqliteStore(path, cache_mb=8) as store:
        assert store.migrations[-1] == "0016-incident-chain"
        report = store.verify_chain()
        assert report.intact and report.incidents_checked == 2, report.problems
        # recorded once, as they are, at their severity now
        assert sorted(record[:3] for record in _records(store)) == sorted(
            [[incident_id, "created", "high"], [other_id, "created", "high"]]
        )
        db = _raw(store)
        db.execute("UPDATE incidents SET severity_rank = 1, body = json_set(body, '$.severity', 'medium')")
        db.execute("DELETE FROM incidents WHERE incident_id = ?", (other_id,))
        assert _problems(store) == {("severity", incident_id), ("removed", other_id)}
    with SqliteStore(path, cache_mb=8) as store:  # opened again: recorded once, not twice
        assert len(_records(store)) == 2
