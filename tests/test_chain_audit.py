"""The dashboard's audit log in the hash chain (store.chain_audit): data accesses and triage actions.

Who unmasked a customer's data, who closed an incident: a row deleted, edited or slipped in behind the
product's back is named by ``verify``, as an event is.  Tampering is done as in test_integrity: straight
into the file.
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from models.dashboard import DataAccess, DataAccessKind
from models.incident import TriageAction, TriageActionKind
from store.chain import leaf_hash
from store.retention import RetentionPolicy
from store.sqlite import SqliteStore
from tests import factories
from tests.factories import at
from tests.test_incident_chain import incidents_unchained
from tests.test_integrity import _fill, _head_arg, _raw, _store, command
from tests.test_integrity import keys as keys  # a fixture

MOMENT = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def _access(by: str, minutes: int = 0) -> DataAccess:
    return DataAccess(
        at=MOMENT + timedelta(minutes=minutes),
        by=by,
        role="auditor",
        kind=DataAccessKind.UNMASK,
        reason="ticket SEC-12",
        what={"customer_ids": ["cust-celebrity"]},
        incident_id="inc-1",
    )


def _incident(store: SqliteStore, incident_id: str = "inc-1", ended_days_ago: float = 0) -> None:
    end = MOMENT - timedelta(days=ended_days_ago)
    alert = factories.alert(window_start=end - timedelta(hours=1), window_end=end)
    store.upsert_alerts([alert], [factories.incident_of(alert, incident_id, 60.0)])


def _act(store: SqliteStore, kind: TriageActionKind, by: str, incident_id: str = "inc-1", days_ago: float = 0) -> None:
    at = MOMENT - timedelta(days=days_ago)
    store.record_action(TriageAction(incident_id=incident_id, kind=kind, by=by, at=at, note="a friend's"))


def _audit_problems(store: SqliteStore) -> set[tuple]:
    return {(p.kind, p.table, p.row) for p in store.verify_chain().problems}


def _audit_log(store: SqliteStore, settings) -> None:
    """Three data accesses (ids 1 to 3) and three triage actions (ids 1 to 3), among events."""
    _fill(store, settings, batches=1)
    _incident(store)
    for n, by in enumerate(("audrey", "bob", "carol")):
        store.record_data_access(_access(by, n))
    _fill(store, settings, batches=1)
    _act(store, TriageActionKind.ACKNOWLEDGE, "bob")
    _act(store, TriageActionKind.NOTE, "bob")
    _act(store, TriageActionKind.FALSE_POSITIVE, "bob")


def test_a_clean_store_verifies_with_its_audit_log_chained_one_entry_per_write(tmp_path, settings):
    with _store(tmp_path) as store:
        _audit_log(store, settings)
        report = store.verify_chain()
        assert report.intact, report.problems
        # two event batches, the incident's creation (store.chain_incidents), and one entry per access and per action
        assert report.entries == 2 + 1 + 3 + 3
        assert report.rows_checked == {"data_accesses": 3, "triage_actions": 3}
        kinds = [kind for (kind,) in _raw(store).execute("SELECT kind FROM chain ORDER BY n")]
        assert kinds == ["events", "incidents"] + ["data_accesses"] * 3 + ["events"] + ["triage_actions"] * 3
    done = command("verify", "--data-dir", str(tmp_path / "data"))
    assert done.returncode == 0
    assert "3 data accesses and 3 triage actions checked, 0 problems" in done.stdout.splitlines()[0]


def test_each_data_access_deleted_altered_or_inserted_is_named(tmp_path, settings):
    with _store(tmp_path) as store:
        _audit_log(store, settings)
        db = _raw(store)
        db.execute("DELETE FROM data_accesses WHERE id = 2")  # bob's unmasking, gone
        db.execute("UPDATE data_accesses SET body = replace(body, 'SEC-12', 'SEC-99') WHERE id = 1")  # a reason
        db.execute("UPDATE data_accesses SET by_user = 'mallory' WHERE id = 3")
        db.execute(
            "INSERT INTO data_accesses (at, by_user, kind, incident_id, body) VALUES (?,?,?,?,?)",
            ("2026-11-20T11:00:00.000000Z", "eve", "search", None, _access("eve").model_dump_json()),
        )
        db.close()
        assert _audit_problems(store) == {
            ("removed", "data_accesses", 2),
            ("changed", "data_accesses", 1),
            ("changed", "data_accesses", 3),
            ("inserted", "data_accesses", 4),
        }
    done = command("verify", "--data-dir", str(tmp_path / "data"))
    assert done.returncode == 1 and done.stdout.startswith("TAMPERED:")
    lines = done.stdout.splitlines()
    assert (
        "removed  data access 2 (chain entry 4): unmask by bob at 2026-11-20T10:01:00.000000Z, incident inc-1:"
        " listed in the chain but no longer stored, and no purge recorded deleting it"
    ) in lines
    assert any(
        line.startswith("changed  data access 1 (chain entry 3): the stored row differs from what was recorded:")
        and line.endswith("; a field not shown here was changed")
        for line in lines
    ), lines
    assert any(
        line.startswith("changed  data access 3 ") and "it now reads unmask by mallory" in line for line in lines
    )
    assert (
        "inserted data access 4: search by eve at 2026-11-20T11:00:00.000000Z: a stored row no chain entry lists"
        in lines
    )
    problems = orjson.loads(command("verify", "--data-dir", str(tmp_path / "data"), "--format", "json").stdout)
    removed = next(p for p in problems["problems"] if p["kind"] == "removed")
    assert (removed["table"], removed["row"], removed["entry"], removed["seq"]) == ("data_accesses", 2, 4, None)


def test_each_triage_action_deleted_altered_or_inserted_is_named(tmp_path, settings):
    with _store(tmp_path) as store:
        _audit_log(store, settings)
        db = _raw(store)
        db.execute("DELETE FROM triage_actions WHERE id = 3")  # the dismissal: the incident looks never closed
        db.execute("UPDATE triage_actions SET body = replace(body, '\"bob\"', '\"carol\"') WHERE id = 1")
        db.execute(
            "INSERT INTO triage_actions (id, incident_id, at, body) VALUES (?,?,?,?)",
            (10, "inc-1", "2026-11-20T12:00:00.000000Z", '{"kind": "note", "by": "eve"}'),
        )
        db.close()
        assert _audit_problems(store) == {
            ("removed", "triage_actions", 3),
            ("changed", "triage_actions", 1),
            ("inserted", "triage_actions", 10),
        }
        lines = [p.detail for p in store.verify_chain().problems]
    assert "false_positive of incident inc-1 by bob at 2026-11-20T10:00:00.000000Z: listed in the chain but no" in (
        " ".join(lines)
    )
    assert any("it now reads acknowledge of incident inc-1 by carol" in line for line in lines)


def test_a_row_edited_with_its_leaf_in_the_chain_is_told_by_the_entry(tmp_path, settings):
    with _store(tmp_path) as store:
        _audit_log(store, settings)
        db = _raw(store)
        db.execute("UPDATE data_accesses SET by_user = 'mallory' WHERE id = 2")
        row = db.execute("SELECT id, at, by_user, kind, incident_id, body FROM data_accesses WHERE id = 2").fetchone()
        (leaves,) = db.execute("SELECT leaves FROM chain WHERE n = 4").fetchone()
        [[row_id, _, summary]] = orjson.loads(leaves)
        db.execute(
            "UPDATE chain SET leaves = ? WHERE n = 4", (orjson.dumps([[row_id, leaf_hash(row).hex(), summary]]),)
        )
        db.close()
        problems = store.verify_chain().problems
        assert {(p.kind, p.entry, p.detail) for p in problems} == {
            ("chain", 4, "the data_accesses entry: its list of rows was altered: its digest does not match")
        }


def test_a_new_row_never_takes_the_id_of_one_deleted_so_a_deletion_is_not_a_change(tmp_path, settings):
    with _store(tmp_path) as store:
        _audit_log(store, settings)
        _raw(store).execute("DELETE FROM data_accesses WHERE id = 3")
        store.record_data_access(_access("dave", 10))
        assert _audit_problems(store) == {("removed", "data_accesses", 3)}
        assert [row for (row,) in _raw(store).execute("SELECT id FROM data_accesses ORDER BY id")] == [1, 2, 4]


def test_triage_actions_purged_with_their_incident_are_recorded_as_purged_not_removed(tmp_path, settings):
    with _store(tmp_path) as store:
        _incident(store, "inc-old", ended_days_ago=400)
        _act(store, TriageActionKind.RESOLVE, "bob", "inc-old", days_ago=399)  # closed past alerts_days too
        _incident(store, "inc-new")
        _act(store, TriageActionKind.ACKNOWLEDGE, "bob", "inc-new")
        store.purge(RetentionPolicy.of(events_days=180, alerts_days=365, now=MOMENT))
        assert store.actions("inc-old") == []
        report = store.verify_chain()
        assert report.intact, report.problems
        assert report.rows_purged == {"data_accesses": 0, "triage_actions": 1}
        assert report.rows_checked["triage_actions"] == 1
        # the purge's transaction ends with what it deleted: the triage log's rows, then the incidents
        purged = _raw(store).execute("SELECT kind, leaves FROM chain ORDER BY n DESC LIMIT 2").fetchall()
        assert [(kind, orjson.loads(ids)) for kind, ids in purged] == [
            ("incidents purge", ["inc-old"]),
            ("triage_actions purge", [1]),
        ]
        # the purged row put back behind the product's back
        _raw(store).execute(
            "INSERT INTO triage_actions (id, incident_id, at, body) VALUES (1, 'inc-old', 'then', '{}')"
        )
        [problem] = store.verify_chain().problems
        assert (problem.kind, problem.table, problem.row) == ("inserted", "triage_actions", 1)
        assert "though purge entry 5 recorded deleting it" in problem.detail


def test_an_incident_closed_by_hand_is_kept_by_retention_and_named(tmp_path, settings, caplog):
    # an intruder's UPDATE closing a case, then retention's purge deleting it under a chained record that covers it
    data = tmp_path / "data"
    with _store(tmp_path) as store:
        for incident_id in ("inc-real", "inc-forged", "inc-reopened"):
            _incident(store, incident_id, ended_days_ago=800)
        _act(store, TriageActionKind.RESOLVE, "bob", "inc-real", days_ago=799)
        _act(store, TriageActionKind.RESOLVE, "bob", "inc-reopened", days_ago=799)
        _act(store, TriageActionKind.REOPEN, "bob", "inc-reopened", days_ago=798)  # its close no longer counts
        _raw(store).execute(
            "UPDATE incidents SET status = 'resolved', body = json_set(body, '$.status', 'resolved')"
            " WHERE incident_id IN ('inc-forged', 'inc-reopened')"
        )
        dry = store.purge(RetentionPolicy.of(events_days=180, alerts_days=730, now=MOMENT), dry_run=True)
        assert (dry.incidents, dry.incidents_unbacked) == (1, ["inc-forged", "inc-reopened"])
    with caplog.at_level(logging.WARNING, logger="store.retention"):
        done = command("purge", "--data-dir", str(data), "--as-of", "2026-11-20T10:00:00Z")
    assert done.returncode == 0, done.stderr
    assert "purged 1 closed incident that ended" in done.stdout
    assert (
        "kept although closed and past keeping: 2 incidents that no stored triage action closes (inc-forged,"
        " inc-reopened): their status was not set by a triage action" in done.stdout
    ), done.stdout
    assert "kept 2 closed incidents past keeping that no stored triage action closes (inc-forged, inc-reopened)" in (
        caplog.text
    )
    with _store(tmp_path) as store:
        assert store.get_incident("inc-real") is None  # a real close: purged
        assert store.get_incident("inc-forged") is not None and store.get_incident("inc-reopened") is not None
        # still there for verify to name, their status forged
        problems = {(p.kind, p.incident_id) for p in store.verify_chain().problems}
        assert problems == {("status", "inc-forged"), ("status", "inc-reopened")}


def _as_before_0015(path: Path, settings) -> None:
    """A store as the version before migration 0015 left it: audit rows added, written as it wrote them, unchained
    (its incident too: migration 0016 came later)."""
    with SqliteStore(path, cache_mb=8) as store, incidents_unchained():
        _fill(store, settings, batches=2)
        _incident(store)
        db = store._db
        for by in ("audrey", "bob"):
            db.execute(
                "INSERT INTO data_accesses (at, by_user, kind, incident_id, body) VALUES (?,?,?,?,?)",
                ("2026-11-20T10:00:00.000000Z", by, "unmask", "inc-1", _access(by).model_dump_json()),
            )
        action = TriageAction(incident_id="inc-1", kind=TriageActionKind.RESOLVE, by="bob", at=MOMENT)
        db.execute(
            "INSERT INTO triage_actions (incident_id, at, body) VALUES (?,?,?)",
            ("inc-1", "2026-11-20T10:00:00.000000Z", action.model_dump_json()),
        )
        for table in ("incidents", "alerts"):  # with the status it sets, as its ``record_action`` did too
            db.execute(f"UPDATE {table} SET status = 'resolved', body = json_set(body, '$.status', 'resolved')")
        db.execute("DELETE FROM schema_migrations WHERE name IN ('0015-audit-chain', '0016-incident-chain')")


def test_an_older_store_has_its_audit_log_chained_once_by_the_migration(tmp_path, settings):
    path = tmp_path / "data" / "accesswatch.db"
    _as_before_0015(path, settings)
    with SqliteStore(path, cache_mb=8) as store:
        assert store.migrations[-2:] == ["0015-audit-chain", "0016-incident-chain"]
        report = store.verify_chain()
        assert report.intact, report.problems
        assert report.entries == 5 and report.rows_checked == {"data_accesses": 2, "triage_actions": 1}
        _raw(store).execute("DELETE FROM data_accesses WHERE by_user = 'bob'")
        assert _audit_problems(store) == {("removed", "data_accesses", 2)}
        store.record_data_access(_access("carol"))  # after the upgrade, a row of its own entry
        assert _audit_problems(store) == {("removed", "data_accesses", 2)}
    with SqliteStore(path, cache_mb=8) as store:  # opened again: chained once, not twice
        assert store.verify_chain().entries == 6


def test_a_signed_digest_and_a_logged_head_still_check_and_anchor_the_audit_log(tmp_path, settings, keys):
    _, private, public = keys
    data, cut = tmp_path / "data", tmp_path / "cut"
    with _store(tmp_path) as store:
        _fill(store, settings, batches=2, size=24)
        store.record_data_access(_access("audrey"))  # the head the digest signs is this data access's entry
        head = store.chain_head()
        assert head is not None and head.entry == 3 and head.last_seq == 48
    document = tmp_path / "digest.json"
    done = command(
        "export-digest", "--data-dir", str(data), "--from", "2026-11-02T00:00:00Z", "--to", "2026-11-03T00:00:00Z",
        "--key", str(private), "--out", str(document),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    cut.mkdir()
    with _store(tmp_path) as store:
        copy = sqlite3.connect(cut / "accesswatch.db")
        store._db.backup(copy)  # the store as signed, for the cut below
        copy.close()
        _incident(store)  # more audit rows and events after signing
        _act(store, TriageActionKind.ACKNOWLEDGE, "bob")
        store.write([factories.incoming(settings, at=at(days=3))])
    check = ["verify-digest", str(document), "--public-key", str(public), "--check-store"]
    done = command(*check, "--data-dir", str(data))
    assert done.returncode == 0 and "the store holds the period's 23 events as signed" in done.stdout
    assert command("verify", "--data-dir", str(data), "--head", _head_arg(head)).returncode == 0

    # the signed data access cut from the chain's end with its entry: a consistent chain that verifies
    # alone, but not against the head logged or the digest signed
    db = sqlite3.connect(cut / "accesswatch.db", isolation_level=None)
    db.execute("DELETE FROM data_accesses")
    db.execute("DELETE FROM chain WHERE n = 3")
    db.close()
    assert command("verify", "--data-dir", str(cut)).returncode == 0
    done = command("verify", "--data-dir", str(cut), "--head", _head_arg(head))
    assert done.returncode == 1 and "(chain entry 3): the chain has no such entry" in done.stdout
    done = command(*check, "--data-dir", str(cut))
    assert done.returncode == 1 and "the store's chain has no entry 3" in done.stdout
