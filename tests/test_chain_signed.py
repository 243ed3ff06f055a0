"""``verify-digest --check-store`` checks what the signed head commits to beyond the period (store.chain_signed).

The signed head's digest covers every chain entry up to it: the dashboard's audit log and the incidents' records
too.  A row of that log deleted or edited after signing, or an earlier entry altered while the head's stored digest
is untouched, makes the digest NOT VALID against the store; rows added and purges run after signing do not.
Tampering is done as in test_integrity: straight into the file.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import orjson
import pytest

from models.incident import TriageActionKind
from store.chain import entry_digest, leaf_hash
from store.chain_audit import DATA_ACCESSES
from store.retention import RetentionPolicy
from tests.test_chain_audit import MOMENT, _access, _act, _audit_log, _incident
from tests.test_integrity import _store, command
from tests.test_integrity import keys as keys  # a fixture


@pytest.fixture
def signed(tmp_path, settings, keys) -> tuple[Path, list[str]]:
    """A store signed with its audit log (data accesses 1 to 3, triage actions 1 to 3 of inc-1, an old closed
    incident inc-old with triage action 4) and events; its data dir and the verify-digest command line."""
    _, private, public = keys
    data = tmp_path / "data"
    with _store(tmp_path) as store:
        _audit_log(store, settings)
        _incident(store, "inc-old", ended_days_ago=400)
        _act(store, TriageActionKind.RESOLVE, "bob", "inc-old", days_ago=399)  # past alerts_days: a purge takes it
    document = tmp_path / "digest.json"
    done = command(
        "export-digest", "--data-dir", str(data), "--from", "2026-11-02T00:00:00Z", "--to", "2026-11-03T00:00:00Z",
        "--key", str(private), "--out", str(document),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return data, ["verify-digest", str(document), "--public-key", str(public), "--check-store", "--data-dir", str(data)]


def _tamper(data: Path, *statements: str) -> None:
    db = sqlite3.connect(data / "accesswatch.db", isolation_level=None)
    for statement in statements:
        db.execute(statement)
    db.close()


def _entry_listing(data: Path, kind: str, text: str) -> int:
    db = sqlite3.connect(data / "accesswatch.db")
    [(n,)] = db.execute("SELECT n FROM chain WHERE kind = ? AND instr(leaves, ?) > 0", (kind, text.encode()))
    db.close()
    return n


def test_a_clean_signed_store_is_valid_saying_what_the_head_covers(signed):
    _, check = signed
    done = command(*check)
    assert done.returncode == 0, done.stdout
    assert "store: the store holds the period's 20 events as signed" in done.stdout
    assert "the 3 data accesses, 4 triage actions and 2 incidents it records are stored as recorded" in done.stdout, (
        done.stdout
    )


def test_a_data_access_deleted_after_signing_is_not_valid(signed):
    data, check = signed
    _tamper(data, "DELETE FROM data_accesses WHERE id = 2")
    done = command(*check)
    assert done.returncode == 1 and done.stdout.startswith("NOT VALID"), done.stdout
    assert "under the signed head, removed data access 2 (chain entry" in done.stdout
    assert "unmask by bob at" in done.stdout


def test_a_triage_action_edited_after_signing_is_not_valid(signed):
    data, check = signed
    _tamper(data, "UPDATE triage_actions SET body = json_set(body, '$.by', 'mallory') WHERE id = 3")
    done = command(*check)
    assert done.returncode == 1, done.stdout
    assert "under the signed head, changed triage action 3 (chain entry" in done.stdout
    assert "it now reads false_positive of incident inc-1 by mallory" in done.stdout


def test_an_incident_deleted_after_signing_is_not_valid(signed):
    data, check = signed
    _tamper(data, "DELETE FROM incidents WHERE incident_id = 'inc-1'")
    done = command(*check)
    assert done.returncode == 1, done.stdout
    assert "under the signed head, removed incident inc-1" in done.stdout


def test_an_earlier_entrys_list_altered_is_not_valid(signed):
    data, check = signed
    n = _entry_listing(data, "data_accesses", "unmask by bob")
    # the list rewritten to match a row edited the same way: the rows agree with it, its digest does not
    _tamper(
        data,
        "UPDATE data_accesses SET by_user = 'mallory' WHERE id = 2",
        f"UPDATE chain SET leaves = CAST(replace(CAST(leaves AS TEXT), 'by bob', 'by mallory') AS BLOB) WHERE n = {n}",
    )
    done = command(*check)
    assert done.returncode == 1, done.stdout
    assert f"under the signed head, chain (chain entry {n}): the data_accesses entry: its list of rows was altered" in (
        done.stdout
    )


def test_an_earlier_entry_rewritten_with_its_digest_is_told_by_the_next_link(signed):
    data, check = signed
    n = _entry_listing(data, "data_accesses", "unmask by bob")
    db = sqlite3.connect(data / "accesswatch.db", isolation_level=None)
    row = db.execute(
        "SELECT n, kind, first_seq, last_seq, events, min_ts, max_ts, written_at, leaves, prev FROM chain WHERE n = ?",
        (n,),
    ).fetchone()
    # bob's access edited, and its entry rewritten to list it so, consistent in itself: entry n's digest too
    db.execute("UPDATE data_accesses SET by_user = 'mallory' WHERE id = 2")
    edited = db.execute(f"SELECT {DATA_ACCESSES.columns} FROM data_accesses WHERE id = 2").fetchone()
    leaves = orjson.dumps([[2, leaf_hash(edited).hex(), DATA_ACCESSES.summary(edited)]])
    assert orjson.loads(row[8])[0][0] == 2 and b"mallory" in leaves
    leaves_digest = hashlib.sha256(leaves).digest()
    digest = entry_digest(bytes(row[9]), list(row[:8]), leaves_digest)
    db.execute(
        "UPDATE chain SET leaves = ?, leaves_digest = ?, digest = ? WHERE n = ?", (leaves, leaves_digest, digest, n)
    )
    db.close()
    done = command(*check)
    assert done.returncode == 1, done.stdout
    assert f"(chain entry {n + 1}): the entry does not link to the digest of the entry before it" in done.stdout


def test_rows_added_and_purges_run_after_signing_leave_it_valid(signed, tmp_path):
    _, check = signed
    with _store(tmp_path) as store:
        store.record_data_access(_access("dave", 10))
        _act(store, TriageActionKind.NOTE, "dave")
        report = store.purge(RetentionPolicy.of(events_days=180, alerts_days=365, now=MOMENT))
        assert report.incidents == 1 and store.actions("inc-old") == []
    done = command(*check)
    assert done.returncode == 0, done.stdout
    assert "the 3 data accesses, 3 triage actions and 1 incident it records are stored as recorded" in done.stdout
    assert "(1 audit-log row it records purged by retention)" in done.stdout
    assert "2 audit-log rows added after signing, not covered" in done.stdout
