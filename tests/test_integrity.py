"""Tamper evidence and retention: the hash chain, signed digests, and purging (issue 7).

Tampering is done as an intruder would: straight into the SQLite file with
``sqlite3``, behind the product's back.
"""

from __future__ import annotations

import hashlib
import io
import logging
import sqlite3
import subprocess
import sys
import time
from contextlib import redirect_stderr, redirect_stdout
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from accesswatch import cli, integrity
from accesswatch.chain_heads import ChainHeadLog
from models.alert import AlertStatus
from models.incident import TriageAction, TriageActionKind
from store import retention
from store.base import EventQuery
from store.chain import GENESIS, PURGE_SEQS_FORMAT, ROW_COLUMNS, entry_digest, leaf_hash, purged_runs
from store.retention import RetentionLoop, RetentionPolicy
from store.sqlite import SqliteStore
from tests import factories
from tests.detector_harness import Actor, burst, history, local
from tests.factories import at, event_dict


def aw(*args: str) -> subprocess.CompletedProcess:
    """The command in a process of its own: the real entry point."""
    return subprocess.run([sys.executable, "-m", "accesswatch.cli", *args], capture_output=True, timeout=300, text=True)


def command(*args: str) -> subprocess.CompletedProcess:
    """The command's handler in this process (as ``main`` runs it, without its process-wide GC tuning):
    a process start costs seconds on a loaded machine, and these tests make many calls."""
    parsed = cli._parser().parse_args(args)
    out, err = io.StringIO(), io.StringIO()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level  # the command configures logging: put it back
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = parsed.handler(parsed)
        except SystemExit as exc:  # the commands' one-line refusals
            code = exc.code if isinstance(exc.code, int) else 1
            if not isinstance(exc.code, int):
                err.write(f"{exc.code}\n")
        finally:
            root.handlers, root.level = handlers, level
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def _store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "data" / "accesswatch.db", cache_mb=8)


def _fill(store: SqliteStore, settings, batches: int = 3, size: int = 10, days: float = 0) -> list[str]:
    ids = []
    for b in range(batches):
        batch = [
            factories.incoming(settings, at=at(hours=b * size + i, days=days), customer_ids=[f"c-{days:g}-{b}-{i}"])
            for i in range(size)
        ]
        store.write(batch)
        ids += [incoming.event.event_id for incoming in batch]
    return ids


def _raw(store: SqliteStore) -> sqlite3.Connection:
    return sqlite3.connect(store.path, isolation_level=None)


def _problems(store: SqliteStore) -> set[tuple]:
    return {(p.kind, p.seq, p.event_id) for p in store.verify_chain().problems}


# -- the chain ----------------------------------------------------------------------------------
def test_an_untouched_store_verifies_with_one_entry_per_write(tmp_path, settings):
    with _store(tmp_path) as store:
        _fill(store, settings, batches=3, size=10)
        first = factories.incoming(settings)
        store.write([first])
        store.write([first])  # a duplicate stores nothing: no entry
        report = store.verify_chain()
    assert report.intact, report.problems
    assert (report.entries, report.events_checked, report.head_entry) == (4, 31, 4)


def test_every_changed_removed_and_inserted_event_is_named(tmp_path, settings):
    with _store(tmp_path) as store:
        ids = _fill(store, settings)
        db = _raw(store)
        db.execute("UPDATE events SET record_count = 1 + record_count WHERE seq = 3")  # a column only
        db.execute("UPDATE events SET body = replace(body, '\"read\"', '\"search\"') WHERE seq = 12")  # the original
        db.execute("UPDATE events SET body = json_set(body, '$.purpose', 'forged') WHERE seq = 14")  # no column
        db.execute("DELETE FROM events WHERE seq = 17")
        db.execute(
            f"INSERT INTO events ({ROW_COLUMNS.replace('seq, ', '')})"
            f" SELECT 42, 'forged-1', {ROW_COLUMNS.split(', ', 3)[3]} FROM events WHERE seq = 5"
        )
        db.close()
        assert _problems(store) == {
            ("changed", 3, ids[2]),
            ("changed", 12, ids[11]),
            ("changed", 14, ids[13]),
            ("removed", 17, ids[16]),
            ("inserted", 31, "forged-1"),
            ("index", 31, "forged-1"),  # a row inserted by hand has no index rows: searches miss it
        }
        details = {problem.seq: problem.detail for problem in store.verify_chain().problems}
    # what changed, as far as the row tells: a column against its own body, or the body itself
    assert details[3].endswith(": its columns were changed (record_count 2, originally 1); its body is the original")
    assert details[12].endswith(
        ": its body was changed, or its body and columns (action 'search' where the column says 'read')"
    )
    assert details[14].endswith(": its columns agree with its body, so the body was changed (or both together)")


def test_an_event_replaced_under_its_seq_says_which_it_was(tmp_path, settings):
    with _store(tmp_path) as store:
        ids = _fill(store, settings, batches=1)
        db = _raw(store)
        db.execute("UPDATE events SET event_id = 'someone-else', id_key = 7 WHERE seq = 4")
        db.close()
        [problem] = store.verify_chain().problems
    assert (problem.kind, problem.seq, problem.event_id) == ("changed", 4, "someone-else")
    assert ids[3] in problem.detail


def test_altering_the_chain_itself_is_reported(tmp_path, settings):
    with _store(tmp_path) as store:
        _fill(store, settings)
        db = _raw(store)
        db.execute("UPDATE chain SET events = 9 WHERE n = 2")
        db.execute("DELETE FROM chain WHERE n = 3")
        db.close()
        problems = store.verify_chain().problems
    details = {(p.kind, p.entry) for p in problems}
    assert ("chain", 2) in details  # its digest no longer matches its header
    assert any(p.kind == "inserted" and p.seq == 21 for p in problems)  # entry 3's events are listed nowhere now


def test_deleting_the_newest_events_is_seen_even_after_new_writes(tmp_path, settings):
    with _store(tmp_path) as store:
        ids = _fill(store, settings, batches=2)
        db = _raw(store)
        db.execute("DELETE FROM events WHERE seq > 17")
        db.close()
    with _store(tmp_path) as store:  # a restart: SQLite hands out seq 18 again
        store.write([factories.incoming(settings)])
        problems = store.verify_chain().problems
    assert any(p.kind == "chain" and p.entry == 3 and "deleted" in p.detail for p in problems)
    assert ("removed", 19, ids[18]) in {(p.kind, p.seq, p.event_id) for p in problems}


def test_the_writer_connection_and_the_main_one_extend_one_chain(tmp_path, settings):
    with _store(tmp_path) as store:
        writer = store.open_writer()
        _fill(writer, settings, batches=2)
        _fill(store, settings, batches=1)
        _fill(writer, settings, batches=1)
        writer.close()
        report = store.verify_chain()
    assert report.intact and report.entries == 4 and report.events_checked == 40


def test_the_verify_command_names_the_tampered_events_and_fails(tmp_path):
    data = tmp_path / "data"
    lines = [event_dict(event_id=f"evt-cli-{i}", timestamp=f"2026-11-02T0{i}:00:00Z") for i in range(6)]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    assert aw("replay", str(path), "--data-dir", str(data)).returncode == 0
    clean = aw("verify", "--data-dir", str(data))
    assert clean.returncode == 0 and clean.stdout.startswith("intact: 1 chain entry, 6 events checked"), clean
    db = sqlite3.connect(data / "accesswatch.db", isolation_level=None)
    db.execute("UPDATE events SET actor_id = 'emp-9999' WHERE event_id = 'evt-cli-2'")
    db.execute("DELETE FROM events WHERE event_id = 'evt-cli-4'")
    db.close()
    done = aw("verify", "--data-dir", str(data), "--format", "json")
    assert done.returncode == 1
    report = orjson.loads(done.stdout)
    assert not report["intact"]
    assert {(p["kind"], p["event_id"]) for p in report["problems"]} == {
        ("changed", "evt-cli-2"),
        ("removed", "evt-cli-4"),
    }
    changed = next(p for p in report["problems"] if p["kind"] == "changed")
    assert "its columns were changed (actor_id 'emp-9999', originally " in changed["detail"]
    # what "intact" rests on, and what it does not: an auditor took it for the whole store
    assert "summaries, scores, evidence)" in " ".join(report["not_covered"])
    assert "the audit log (data accesses, triage actions)" in report["covered"]


def test_the_verify_verdict_says_what_it_covers_and_what_it_does_not(tmp_path, settings):
    data = tmp_path / "data"
    with _store(tmp_path) as store:
        _fill(store, settings, batches=1)
    done = command("verify", "--data-dir", str(data))
    assert done.returncode == 0 and done.stdout.startswith("intact: 1 chain entry, 10 events checked"), done.stdout
    covered = done.stdout.splitlines()[1]
    assert covered.startswith("covered: events and their search indexes; the audit log"), covered
    assert "Not covered: the rest of alerts and incidents (summaries, scores, evidence); dead letters;" in covered


def test_the_verify_verdict_counts_one_problem_in_the_singular(tmp_path):
    # it said "1 problems", in the one line an auditor quotes
    data = tmp_path / "data"
    lines = [event_dict(event_id=f"evt-one-{i}", timestamp=f"2026-11-02T0{i}:00:00Z") for i in range(2)]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    assert aw("replay", str(path), "--data-dir", str(data)).returncode == 0
    db = sqlite3.connect(data / "accesswatch.db", isolation_level=None)
    db.execute("DELETE FROM events WHERE event_id = 'evt-one-1'")
    db.close()
    done = aw("verify", "--data-dir", str(data))
    assert done.returncode == 1
    verdict = done.stdout.splitlines()[0]
    assert verdict.startswith("TAMPERED: 1 chain entry, 1 event checked,") and ", 1 problem; head " in verdict, verdict


# -- chain heads logged while running (accesswatch.chain_heads) ------------------------------------------
def _head_arg(head) -> str:
    return f"{head.entry}:{head.digest.hex()}"


def test_a_chain_cut_back_at_its_end_verifies_intact_except_against_a_head_logged_before(tmp_path, settings):
    data, cut = tmp_path / "data", tmp_path / "cut"
    cut.mkdir()
    with _store(tmp_path) as store:
        _fill(store, settings, batches=2)
        backup = sqlite3.connect(cut / "accesswatch.db")
        store._db.backup(backup)  # what a perfect cut leaves: the chain and events as they were two writes ago
        backup.close()
        _fill(store, settings, batches=1)
        logged = store.chain_head()
        earlier = store.chain_head(2)
    assert logged is not None and logged.entry == 3 and earlier is not None
    # the README's limit: the shorter chain is consistent, and verifies intact
    assert command("verify", "--data-dir", str(cut)).returncode == 0
    done = command("verify", "--data-dir", str(cut), "--head", _head_arg(logged))
    assert done.returncode == 1
    assert done.stdout.startswith("TAMPERED:")
    assert "(chain entry 3): the chain has no such entry, logged as its head earlier: it was cut back" in done.stdout
    # heads the store still has, the earlier one included, verify
    assert (
        command("verify", "--data-dir", str(data), "--head", _head_arg(logged), "--head", _head_arg(earlier)).returncode
        == 0
    )
    assert command("verify", "--data-dir", str(cut), "--head", _head_arg(earlier)).returncode == 0
    # verify says the head it found in the form --head takes: kept away from the store, it is the next check's
    assert f"; head {_head_arg(logged)}" in command("verify", "--data-dir", str(data)).stdout


def test_a_chain_cut_back_with_its_last_events_is_told_by_what_the_indexes_still_hold(tmp_path, settings):
    data = str(tmp_path / "data")
    with _store(tmp_path) as store:
        _fill(store, settings, batches=3)
        last = store.chain_head()
        assert last is not None
        store._db.execute("DELETE FROM events WHERE seq > (SELECT last_seq FROM chain WHERE n = ?)", (last.entry - 1,))
        store._db.execute("DELETE FROM chain WHERE n = ?", (last.entry,))
    done = command("verify", "--data-dir", data)
    assert done.returncode == 1 and done.stdout.startswith("TAMPERED:")
    assert "the indexes hold events past the chain's last seq" in done.stdout
    assert "the chain was cut back" in done.stdout and "event_keys_recent up to seq" in done.stdout


def test_a_chain_rewritten_whole_differs_from_the_head_logged(tmp_path, settings):
    data = tmp_path / "data"
    with _store(tmp_path) as store:
        _fill(store, settings, batches=2)
        logged = store.chain_head()
    db = sqlite3.connect(data / "accesswatch.db", isolation_level=None)
    db.execute("UPDATE events SET record_count = 5000 WHERE seq = 7")
    db.close()
    _forge_chain(data / "accesswatch.db")
    assert command("verify", "--data-dir", str(data)).returncode == 0  # recomputed: consistent
    done = command("verify", "--data-dir", str(data), "--head", _head_arg(logged), "--format", "json")
    assert done.returncode == 1
    problems = orjson.loads(done.stdout)["problems"]
    assert [(p["kind"], p["entry"]) for p in problems] == [("chain", 2)]
    assert "differs from the head logged earlier: the chain was rewritten" in problems[0]["detail"]


@pytest.mark.parametrize("head", ["3", "3:abc", "0:" + "a" * 64, "x:" + "a" * 64, "3:" + "g" * 64])
def test_a_head_that_is_not_entry_colon_hash_is_refused_in_one_line(tmp_path, head):
    done = aw("verify", "--data-dir", str(tmp_path / "data"), "--head", head)
    assert done.returncode == 2
    assert "is not ENTRY:HASH (a chain entry number, a colon, 64 hex digits)" in done.stderr


def test_the_head_is_logged_when_it_moved_and_a_failed_read_is_tried_again(tmp_path, settings, caplog):
    with _store(tmp_path) as store:
        _fill(store, settings, batches=1)
    path, opened = tmp_path / "data" / "accesswatch.db", []

    def open_store() -> SqliteStore:
        opened.append(1)
        if len(opened) == 2:
            raise sqlite3.OperationalError("database is locked")
        return SqliteStore(path, cache_mb=8, readonly=True)

    heads = ChainHeadLog(open_store, interval=3600)
    caplog.set_level(logging.INFO, logger="accesswatch.chain_heads")
    first = heads.log_once()
    assert heads.log_once() is None  # the failed read: logged, and nothing else changes
    assert heads.log_once() == first  # unchanged: not logged again
    with _store(tmp_path) as store:
        _fill(store, settings, batches=1)
        now = store.chain_head()
    assert heads.log_once() == now and now is not None and now.entry == 2
    logged = [r for r in caplog.records if r.getMessage() == "chain head"]
    assert [(r.chain_entry, r.chain_head) for r in logged] == [(1, first.digest.hex()), (2, now.digest.hex())]
    assert [r.levelname for r in caplog.records if r.getMessage().startswith("chain head not read")] == ["ERROR"]


def test_run_logs_the_head_at_start_and_at_its_end(tmp_path, settings, caplog):
    with _store(tmp_path) as store:
        _fill(store, settings, batches=1)
    path = tmp_path / "data" / "accesswatch.db"
    caplog.set_level(logging.INFO, logger="accesswatch.chain_heads")
    heads = ChainHeadLog(lambda: SqliteStore(path, cache_mb=8, readonly=True), interval=3600).start()
    deadline = time.monotonic() + 60
    while heads.logged is None and time.monotonic() < deadline:
        time.sleep(0.01)
    with _store(tmp_path) as store:
        _fill(store, settings, batches=1)  # written while it waits out its interval
    heads.stop()  # stopping logs the head the run ends on
    assert [r.chain_entry for r in caplog.records if r.getMessage() == "chain head"] == [1, 2]


# -- signed digests --------------------------------------------------------------------------------
@pytest.fixture
def keys(tmp_path):
    key = Ed25519PrivateKey.generate()
    private, public = tmp_path / "audit.key", tmp_path / "audit.pub"
    private.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    public.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return key, private, public


def _forge_chain(path: Path) -> None:
    """What an intruder who knows the code does after editing events: recompute the whole chain."""
    db = sqlite3.connect(path, isolation_level=None)
    prev = GENESIS
    for n, first, last, header_json in db.execute(
        "SELECT n, first_seq, last_seq, json_array(n, kind, first_seq, last_seq, events, min_ts, max_ts, written_at)"
        " FROM chain ORDER BY n"
    ).fetchall():
        parts = []
        rows = db.execute(f"SELECT {ROW_COLUMNS} FROM events WHERE seq BETWEEN ? AND ? ORDER BY seq", (first, last))
        for row in rows:
            event_id = row[2].encode()
            parts.append(row[3].to_bytes(8, "big", signed=True) + leaf_hash(row) + len(event_id).to_bytes(2, "big"))
            parts.append(event_id)
        leaves = b"".join(parts)
        leaves_digest = hashlib.sha256(leaves).digest()
        digest = entry_digest(prev, orjson.loads(header_json), leaves_digest)
        db.execute(
            "UPDATE chain SET leaves = ?, leaves_digest = ?, prev = ?, digest = ? WHERE n = ?",
            (leaves, leaves_digest, prev, digest, n),
        )
        prev = digest
    db.close()


def test_a_signed_digest_checks_with_the_public_key_and_catches_a_rewritten_chain(tmp_path, settings, keys):
    _, private, public = keys
    data = tmp_path / "data"
    with _store(tmp_path) as store:
        _fill(store, settings, batches=2, size=24)  # 2026-11-02 01:00 onwards, hourly
    document_path = tmp_path / "digest.json"
    done = command(
        "export-digest", "--data-dir", str(data), "--from", "2026-11-02T00:00:00Z", "--to", "2026-11-03T00:00:00Z",
        "--key", str(private), "--out", str(document_path),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    document = integrity.read_document(document_path)
    assert document.events == 23 and document.chain.entry == 2
    check = ["verify-digest", str(document_path), "--public-key", str(public), "--data-dir", str(data)]
    assert command(*check).returncode == 0
    assert command(*check, "--check-store").returncode == 0

    # a late event of the period, stored after signing, is not in the digest: it still matches, and is counted
    with _store(tmp_path) as store:
        store.write([factories.incoming(settings, at=at(hours=5))])
    done = command(*check, "--check-store")
    assert done.returncode == 0
    assert "the store holds the period's 23 events as signed" in done.stdout
    assert "1 events stamped in the period were stored after signing: the digest does not cover them" in done.stdout

    # the document altered, or checked with another key: refused without the store
    altered = tmp_path / "altered.json"
    altered.write_text(document.model_copy(update={"events": 22}).model_dump_json())
    assert "NOT VALID" in command("verify-digest", str(altered), "--public-key", str(public)).stdout
    other = tmp_path / "other.pub"
    other.write_bytes(
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    assert command("verify-digest", str(document_path), "--public-key", str(other)).returncode == 1

    # an event of the period edited and the whole chain recomputed: the chain alone looks intact,
    # the signed head does not
    db = sqlite3.connect(data / "accesswatch.db", isolation_level=None)
    db.execute("UPDATE events SET record_count = 5000 WHERE seq = 7")
    db.close()
    _forge_chain(data / "accesswatch.db")
    assert command("verify", "--data-dir", str(data)).returncode == 0
    refused = command(*check, "--check-store")
    assert refused.returncode == 1
    assert "the chain was rewritten" in refused.stdout and "period's events differ" in refused.stdout


def test_the_digest_commands_say_the_period_in_local_time_and_the_document_keeps_utc(tmp_path, settings, keys):
    _, private, public = keys
    data, document_path = str(tmp_path / "data"), tmp_path / "digest.json"
    with _store(tmp_path) as store:
        _fill(store, settings, batches=1, size=5)  # 2026-11-02 01:00 to 05:00 UTC
    done = command(
        "export-digest", "--data-dir", data, "--from", "2026-11-02", "--to", "2026-11-03", "--key", str(private),
        "--out", str(document_path),
    )  # fmt: skip
    period = "[2026-11-02 00:00:00 +08:00, 2026-11-03 00:00:00 +08:00)"  # local days, as --from and --to took them
    assert done.stdout == f"5 events in {period} signed into {document_path}\n"
    signed = integrity.read_document(document_path).period  # the signed format is unchanged: RFC 3339 UTC
    assert (signed.since, signed.until) == ("2026-11-01T16:00:00.000Z", "2026-11-02T16:00:00.000Z")
    checked = command("verify-digest", str(document_path), "--public-key", str(public), "--data-dir", data)
    assert checked.returncode == 0 and checked.stdout.startswith(f"valid: 5 events in {period}, signed by key ")
    altered = tmp_path / "altered.json"
    altered.write_text(integrity.read_document(document_path).model_copy(update={"events": 4}).model_dump_json())
    refused = command("verify-digest", str(altered), "--public-key", str(public), "--data-dir", data)
    assert refused.returncode == 1 and refused.stdout.startswith(f"NOT VALID: the digest of {period}:")


def test_a_digest_of_an_empty_store_is_refused(tmp_path, settings, keys):
    _, private, _ = keys
    with _store(tmp_path):
        pass
    done = command("export-digest", "--data-dir", str(tmp_path / "data"), "--from", "2026-11-01", "--to", "2026-11-02",
              "--key", str(private))  # fmt: skip
    assert done.returncode == 1 and "no chain yet" in done.stderr


# -- retention -------------------------------------------------------------------------------------------
def _alert_citing(event_id: str, status: AlertStatus, days_ago_end: float, now):
    return factories.alert(
        status=status,
        window_start=now - timedelta(days=days_ago_end, hours=1),
        window_end=now - timedelta(days=days_ago_end),
        evidence={"event_ids": [event_id]},
    )


def test_purge_removes_old_events_keeps_evidence_and_the_chain_verifies(tmp_path, settings):
    now = at(days=400)
    with _store(tmp_path) as store:
        old = _fill(store, settings, batches=3, size=10)  # day 0 to day 1
        recent = _fill(store, settings, batches=1, size=5, days=390)
        kept_alert = _alert_citing(old[4], AlertStatus.OPEN, 300, now)
        gone_alert = _alert_citing(old[5], AlertStatus.RESOLVED, 370, now)
        store.upsert_alerts([kept_alert, gone_alert])
        policy = RetentionPolicy.of(events_days=180, alerts_days=365, now=now)

        dry = store.purge(policy, dry_run=True)
        assert store.stats().events == 35 and store.stats().alerts == 2  # nothing moved
        done = store.purge(policy)
        assert (dry.events, dry.alerts, dry.events_kept_as_evidence) == (done.events, done.alerts, 1)
        assert (done.events, done.alerts) == (29, 1)

        left = {item.event.event_id for item in store.query_events(EventQuery(limit=100)).items}
        assert left == {old[4], *recent}  # the evidence of the alert kept, and the recent days
        assert store.get_alert(kept_alert.alert_id) and store.get_alert(gone_alert.alert_id) is None
        # the customer index forgets the purged events too: the postings of the first batch stay with
        # old[4] (its other events are re-checked away), those of the second and third go
        db = _raw(store)
        spans = sorted(set(db.execute("SELECT first_seq, last_seq FROM customer_postings")))
        db.close()
        assert spans == [(1, 10), (31, 35)]
        assert store.query_events(EventQuery(customer_id="c-0-0-3")).items == []
        assert [i.event.event_id for i in store.query_events(EventQuery(customer_id="c-0-0-4")).items] == [old[4]]

        report = store.verify_chain()
        assert report.intact, report.problems
        assert report.purged == 29 and report.events_checked == 6
        assert done.chain_lists_dropped == 2  # entries 2 and 3 have no event left; entry 1 keeps old[4]

        # a deletion behind the product's back after the purge is still a deletion
        db = _raw(store)
        db.execute("DELETE FROM events WHERE event_id = ?", (recent[0],))
        db.close()
        assert _problems(store) == {("removed", 31, recent[0])}


def test_a_purge_erases_the_personal_data_it_deletes_from_the_file(tmp_path, settings):
    """Storage limitation means gone: a purged event's bytes must not stay readable in the file."""
    marks = [f"passport-holder-{n:04d}-erase-me" for n in range(40)]
    with _store(tmp_path) as store:
        # a few pages of rows of their own (freed whole) and rows beside kept ones (zeroed in place)
        store.write([factories.incoming(settings, at=at(hours=n), customer_ids=[m]) for n, m in enumerate(marks)])
        _fill(store, settings, batches=1, size=5, days=390)
        # as SQLite is built by default (Debian's build turns it on): deleting unlinks, and leaves the bytes
        store._db.execute("PRAGMA secure_delete=OFF")
        assert store.purge(RetentionPolicy.of(events_days=180, alerts_days=365, now=at(days=400))).events == 40
        assert store._db.execute("PRAGMA secure_delete").fetchone()[0] == 0  # only the purge pays for zeroing
        db = _raw(store)
        assert db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0  # every page in the file itself
        db.close()
        content = store.path.read_bytes()
    assert b"customer_ids" in content  # the recent events are there, as JSON
    assert [m for m in marks if m.encode() in content] == []


def _closed_incident(store: SqliteStore, event_id: str, ended: datetime, closed: datetime) -> tuple[str, str]:
    """An incident of one alert citing ``event_id``, its activity ended at ``ended``, resolved at ``closed``."""
    alert = factories.alert(
        window_start=ended - timedelta(hours=1), window_end=ended, evidence={"event_ids": [event_id]}
    )
    incident_id = f"inc-{alert.alert_id}"
    alert = alert.model_copy(update={"incident_id": incident_id})
    store.upsert_alerts([alert], [factories.incident_of(alert, incident_id, 60.0)])
    store.record_action(TriageAction(incident_id=incident_id, kind=TriageActionKind.RESOLVE, by="dpo", at=closed))
    return incident_id, alert.alert_id


def test_a_closed_incident_is_kept_its_retention_from_when_it_was_closed(tmp_path, settings):
    """A record of a case is kept ``alerts_days`` after the case was closed, not after the activity ended."""
    now = at(days=400)
    with _store(tmp_path) as store:
        cited = _fill(store, settings, batches=1, size=3)
        ended = now - timedelta(days=370)  # both activities ended 370 days ago, past the 365 days
        prompt = _closed_incident(store, cited[0], ended, closed=ended + timedelta(days=1))
        late = _closed_incident(store, cited[1], ended, closed=now - timedelta(days=30))  # closed 340 days on
        policy = RetentionPolicy.of(events_days=180, alerts_days=365, now=now)

        dry = store.purge(policy, dry_run=True)
        assert (dry.incidents, dry.alerts, dry.events_kept_as_evidence) == (1, 1, 1)
        done = store.purge(policy)
        assert (done.incidents, done.alerts, done.events) == (1, 1, 1)
        assert store.get_incident(prompt[0]) is None and store.get_alert(prompt[1]) is None
        assert store.get_incident(late[0]) is not None and store.get_alert(late[1]) is not None
        assert [action.kind for action in store.actions(late[0])] == [TriageActionKind.RESOLVE]
        left = {item.event.event_id for item in store.query_events(EventQuery(limit=100)).items}
        assert left == {cited[1], cited[2]}  # the evidence of the incident kept, and the newest event

        # 365 days after its close it goes too, with its alert and triage log
        assert store.purge(RetentionPolicy.of(180, 365, now + timedelta(days=334)), dry_run=True).incidents == 0
        gone = store.purge(RetentionPolicy.of(180, 365, now + timedelta(days=336)))
        assert (gone.incidents, gone.alerts) == (1, 1) and store.actions(late[0]) == []


class _OthersActFirst:
    """A purge's connection on which someone else acts just before the purge takes the write lock (its
    ``BEGIN IMMEDIATE`` number ``before_lock``, the first by default): what the purge read before then, it read
    before they acted."""

    def __init__(self, db: sqlite3.Connection, act, before_lock: int = 1) -> None:
        self._db, self._act, self._locks_to_go = db, act, before_lock

    def execute(self, sql: str, *args):
        if sql == "BEGIN IMMEDIATE" and self._act is not None:
            self._locks_to_go -= 1
            if not self._locks_to_go:
                act, self._act = self._act, None
                act()
        return self._db.execute(sql, *args)

    def __getattr__(self, name: str):
        return getattr(self._db, name)


def test_an_incident_reopened_or_closed_again_while_a_purge_runs_is_kept_with_its_alerts(tmp_path, settings):
    """What a purge deletes is decided under its write lock: an analyst reopening a case on the dashboard as the
    purge starts must not see it vanish, and the purge's report and chain count only what went."""
    now = at(days=400)
    with _store(tmp_path) as store:
        cited = _fill(store, settings, batches=1, size=4)
        ended = now - timedelta(days=370)  # all three ended and were closed past the 365 days
        reopened, closed_again, untouched = (
            _closed_incident(store, event_id, ended, closed=ended + timedelta(days=1)) for event_id in cited[:3]
        )
        policy = RetentionPolicy.of(events_days=180, alerts_days=365, now=now)
        assert store.purge(policy, dry_run=True).incidents == 3

        def triage_on_the_dashboard() -> None:  # its own connection, as the dashboard's process has
            with SqliteStore(store.path, cache_mb=8) as dashboard:
                for incident_id, kinds in (
                    (reopened[0], [TriageActionKind.REOPEN]),
                    (closed_again[0], [TriageActionKind.REOPEN, TriageActionKind.RESOLVE]),  # its close moves to now
                ):
                    for kind in kinds:
                        dashboard.record_action(TriageAction(incident_id=incident_id, kind=kind, by="ana", at=now))

        done = retention.purge(_OthersActFirst(store._db, triage_on_the_dashboard), policy, dry_run=False)
        assert (done.incidents, done.alerts) == (1, 1)
        assert store.get_incident(untouched[0]) is None and store.get_alert(untouched[1]) is None
        kept = {incident_id: store.get_incident(incident_id) for incident_id, _ in (reopened, closed_again)}
        assert {incident_id: incident and incident.status for incident_id, incident in kept.items()} == {
            reopened[0]: AlertStatus.OPEN,
            closed_again[0]: AlertStatus.RESOLVED,
        }
        assert store.get_alert(reopened[1]).status is AlertStatus.OPEN and store.get_alert(closed_again[1])
        assert [action.kind for action in store.actions(reopened[0])] == [
            TriageActionKind.RESOLVE,
            TriageActionKind.REOPEN,
        ]
        report = store.verify_chain()
        assert report.intact, report.problems
        assert report.rows_purged["triage_actions"] == 1  # the untouched incident's resolve, and no other
        assert report.rows_checked["triage_actions"] == 5  # two first resolves, then the dashboard's three


@pytest.mark.parametrize(
    ("chunk", "before_lock", "cited"),
    [(5000, 2, 1), (2, 3, 3)],  # before the first chunk's transaction; before the second's, the first deleted
)
def test_an_alert_stored_while_a_purge_runs_keeps_the_events_it_cites(
    tmp_path, settings, monkeypatch, chunk, before_lock, cited
):
    """Which events the alerts cite is read under the lock of each transaction that deletes events: an alert a
    replay of old logs stores beside the purge, once the purge has listed the evidence, keeps its events."""
    monkeypatch.setattr(retention, "_CHUNK", chunk)
    now = at(days=400)
    with _store(tmp_path) as store:
        old = _fill(store, settings, batches=1, size=4)  # past the 180 days
        _fill(store, settings, batches=1, size=2, days=390)
        policy = RetentionPolicy.of(events_days=180, alerts_days=365, now=now)
        late = _alert_citing(old[cited], AlertStatus.OPEN, 390, now)

        def a_replay_stores_an_alert() -> None:  # its own connection, as a replay's process has
            with SqliteStore(store.path, cache_mb=8) as replay:
                replay.upsert_alerts([late])

        # the purge's first lock deletes alerts and incidents, the next ones a chunk of events each
        done = retention.purge(_OthersActFirst(store._db, a_replay_stores_an_alert, before_lock), policy, False)
        assert (done.events, done.events_kept_as_evidence) == (3, 1)
        left = {item.event.event_id for item in store.query_events(EventQuery(limit=100)).items}
        assert old[cited] in left and not (set(old) - {old[cited]}) & left
        assert store.get_alert(late.alert_id) is not None
        assert store.verify_chain().intact


def _incident_of_alerts(store: SqliteStore, incident_id: str, alerts: list, closed: datetime) -> list:
    """One incident of ``alerts`` (its window spanning theirs), resolved at ``closed``; the alerts as stored."""
    alerts = [alert.model_copy(update={"incident_id": incident_id}) for alert in alerts]
    first = factories.incident_of(alerts[0], incident_id, 60.0)
    incident = first.model_copy(
        update={
            "alert_ids": [alert.alert_id for alert in alerts],
            "window_start": min(alert.window_start for alert in alerts),
            "window_end": max(alert.window_end for alert in alerts),
        }
    )
    store.upsert_alerts(alerts, [incident])
    store.record_action(TriageAction(incident_id=incident_id, kind=TriageActionKind.RESOLVE, by="dpo", at=closed))
    return alerts


def test_an_alert_is_kept_while_its_incident_is_and_goes_with_it(tmp_path, settings):
    """An incident's alerts are kept as long as it is, however early they ended (it lists them: the dashboard
    and ``accesswatch incident`` would show a hole), and go with it, whatever their own status."""
    now = at(days=800)
    with _store(tmp_path) as store:
        cited = _fill(store, settings, batches=1, size=3)
        # a case of a morning's finding and a day's (its window the whole day), closed at noon that day, a year
        # and six hours ago: the morning's alert ended, and the case was closed, past the 365 days; the day's
        # alert, and so the incident's window, ends six hours later
        day = now - timedelta(days=365, hours=18)
        morning = factories.alert(
            window_start=day + timedelta(hours=8),
            window_end=day + timedelta(hours=9),
            evidence={"event_ids": [cited[0]]},
        )
        whole_day = factories.alert(
            detector="off_hours",
            window_start=day,
            window_end=day + timedelta(days=1),
            evidence={"event_ids": [cited[1]]},
        )
        morning, whole_day = _incident_of_alerts(store, "inc-day", [morning, whole_day], day + timedelta(hours=12))
        policy = RetentionPolicy.of(events_days=180, alerts_days=365, now=now)

        dry = store.purge(policy, dry_run=True)
        assert (dry.incidents, dry.alerts, dry.events_kept_as_evidence) == (0, 0, 2)
        done = store.purge(policy)
        assert (done.incidents, done.alerts, done.events) == (0, 0, 0)
        # the incident kept lists the morning's alert, kept with it
        assert [a.alert_id for a in store.get_alerts(store.get_incident("inc-day").alert_ids)] == [
            whole_day.alert_id,
            morning.alert_id,
        ]

        # once the incident is past keeping, all its alerts go with it: one the store holds open (as a store
        # written before the alerts followed their incident's status may) included
        db = _raw(store)
        db.execute("UPDATE alerts SET status = 'open' WHERE alert_id = ?", (whole_day.alert_id,))
        db.close()
        gone = store.purge(RetentionPolicy.of(180, 365, now + timedelta(hours=7)))
        assert (gone.incidents, gone.alerts) == (1, 2)
        assert store.get_incident("inc-day") is None and store.get_alerts([morning.alert_id, whole_day.alert_id]) == []
        assert store.verify_chain().intact


def test_the_newest_event_is_kept_so_store_positions_never_go_back(tmp_path, settings):
    with _store(tmp_path) as store:
        ids = _fill(store, settings, batches=1, size=4)
        report = store.purge(RetentionPolicy.of(1, 1, at(days=30)))
        assert report.events == 3 and report.newest_kept
        store.write([factories.incoming(settings, at=at(days=29))])
        assert [item.seq for item in store.query_events(EventQuery(newest_first=False)).items] == [4, 5]
        assert store.verify_chain().intact
        assert ids[3] in {item.event.event_id for item in store.query_events(EventQuery()).items}


def test_purge_dry_run_command_says_what_would_go_and_moves_nothing(tmp_path, settings):
    with _store(tmp_path) as store:
        _fill(store, settings, batches=2, size=5, days=-365)  # a year before T0: --as-of may not be a later time
    data = str(tmp_path / "data")
    dry = command("purge", "--dry-run", "--as-of", "2026-06-01T00:00:00Z", "--data-dir", data)
    assert dry.returncode == 0, dry.stderr
    # the horizons in the organisation's time with its offset, as the other commands print times
    assert "would purge 9 events stamped before 2025-12-03 08:00:00 +08:00 (180 days)" in dry.stdout
    assert "the newest event" in dry.stdout
    assert dry.stdout.splitlines()[-1] == (
        "would purge 0 closed incidents that ended and were closed before 2024-06-01 08:00:00 +08:00 (730 days),"
        " and 0 alerts: theirs, and closed ones no incident holds"
    )
    with _store(tmp_path) as store:
        assert store.stats().events == 10
    done = command("purge", "--as-of", "2026-06-01T00:00:00Z", "--data-dir", data)
    assert "purged 9 events" in done.stdout
    assert command("verify", "--data-dir", data).returncode == 0


def test_run_purges_at_start_and_again_every_interval_and_survives_a_failed_purge(tmp_path, settings):
    with _store(tmp_path) as store:
        _fill(store, settings, batches=1, size=5)
    path, opened = tmp_path / "data" / "accesswatch.db", []

    def open_store() -> SqliteStore:
        opened.append(1)
        if len(opened) == 1:
            raise sqlite3.OperationalError("database is locked")  # the first try fails: logged, tried again
        return SqliteStore(path, cache_mb=8)

    loop = RetentionLoop(
        open_store, lambda now: RetentionPolicy.of(180, 365, now), interval=0.05, clock=lambda: at(days=400)
    ).start()
    try:
        deadline = time.monotonic() + 60
        while loop.purges < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        loop.stop()
    assert loop.purges >= 2 and len(opened) >= 3
    with _store(tmp_path) as store:
        assert store.stats().events == 1  # the newest stays (store positions never go back)
        assert store.verify_chain().intact


# -- purges recorded by seq; and the format before -------------------------------------------------------
def _purge_with_evidence(store: SqliteStore, settings) -> tuple[list[str], list[str]]:
    """Three old entries (one event of each kept as an alert's evidence) and a recent one; purge the old."""
    now = at(days=400)
    old = _fill(store, settings, batches=3, size=10)
    recent = _fill(store, settings, batches=1, size=5, days=390)
    store.upsert_alerts([_alert_citing(old[n], AlertStatus.OPEN, 300, now) for n in (4, 14, 24)])
    assert store.purge(RetentionPolicy.of(events_days=180, alerts_days=365, now=now)).events == 27
    return old, recent


def _count_only_purges(path: Path) -> None:
    """Turn the store's purge entries into what versions before the seq lists wrote: a count, no list."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute(
        "UPDATE chain SET leaves = NULL, leaves_digest = ? WHERE kind = 'purge'", (hashlib.sha256(b"").digest(),)
    )
    prev = GENESIS
    for n, leaves_digest, header_json in db.execute(
        "SELECT n, leaves_digest, json_array(n, kind, first_seq, last_seq, events, min_ts, max_ts, written_at)"
        " FROM chain ORDER BY n"
    ).fetchall():
        digest = entry_digest(prev, orjson.loads(header_json), bytes(leaves_digest))
        db.execute("UPDATE chain SET prev = ?, digest = ? WHERE n = ?", (prev, digest, n))
        prev = digest
    db.close()


def test_an_event_a_purge_kept_and_deleted_afterwards_is_removed_not_purged(tmp_path, settings):
    with _store(tmp_path) as store:
        old, _ = _purge_with_evidence(store, settings)
        report = store.verify_chain()
        assert report.intact and report.purged == 27, report.problems
        db = _raw(store)
        db.execute("DELETE FROM events WHERE event_id = ?", (old[14],))  # kept as evidence, stamped long ago
        db.close()
        report = store.verify_chain()
    assert {(p.kind, p.seq, p.event_id) for p in report.problems} == {("removed", 15, old[14])}
    assert report.purged == 27


def test_purge_entries_list_the_seqs_they_deleted_in_a_versioned_format(tmp_path, settings):
    with _store(tmp_path) as store:
        _purge_with_evidence(store, settings)
        db = _raw(store)
        rows = db.execute("SELECT events, leaves FROM chain WHERE kind = 'purge' ORDER BY n").fetchall()
        db.close()
    [(events, leaves)] = rows
    assert leaves[0] == PURGE_SEQS_FORMAT and events == 27
    assert purged_runs(leaves) == [(1, 4), (6, 9), (16, 9), (26, 5)]  # 5, 15 and 25 kept as evidence
    assert purged_runs(None) is None  # an entry from before: a count only
    with pytest.raises(ValueError):
        purged_runs(bytes([PURGE_SEQS_FORMAT + 1]) + leaves[1:])  # a later format is refused, not misread


def test_a_purge_record_altered_is_reported(tmp_path, settings):
    with _store(tmp_path) as store:
        old, _ = _purge_with_evidence(store, settings)
        db = _raw(store)
        db.execute("DELETE FROM events WHERE event_id = ?", (old[4],))
        # claim seq 5 too: the record no longer hashes to the digest the entry keeps
        db.execute("UPDATE chain SET leaves = ? WHERE kind = 'purge'", (bytes([PURGE_SEQS_FORMAT]) + b"".join(
            (first).to_bytes(8, "big") + (count).to_bytes(8, "big") for first, count in [(1, 9), (16, 9), (26, 5)]
        ),))  # fmt: skip
        db.close()
        problems = store.verify_chain().problems
    assert any(p.kind == "chain" and "list of deleted seqs was altered" in p.detail for p in problems)


def test_a_purged_event_stored_again_under_its_seq_is_reported(tmp_path, settings):
    with _store(tmp_path) as store:
        db = _raw(store)
        old = _fill(store, settings, batches=1, size=5)
        row = db.execute(f"SELECT {ROW_COLUMNS} FROM events WHERE seq = 2").fetchone()
        _fill(store, settings, batches=1, size=2, days=390)
        store.purge(RetentionPolicy.of(events_days=180, alerts_days=365, now=at(days=400)))
        db.execute(f"INSERT INTO events ({ROW_COLUMNS}) VALUES ({','.join('?' * len(row))})", row)  # from a backup
        db.close()
        problems = store.verify_chain().problems
    assert ("inserted", 2, old[1]) in {(p.kind, p.seq, p.event_id) for p in problems}
    assert any("recorded deleting it" in p.detail for p in problems if p.seq == 2)


def test_purges_that_recorded_a_count_only_still_verify_and_must_add_up(tmp_path, settings):
    """Stores purged by versions before the seq lists: what is missing where they purged is counted."""
    with _store(tmp_path) as store:
        old, _ = _purge_with_evidence(store, settings)
    _count_only_purges(tmp_path / "data" / "accesswatch.db")
    with _store(tmp_path) as store:
        report = store.verify_chain()
        assert report.intact and report.purged == 27, report.problems
        db = _raw(store)
        db.execute("DELETE FROM events WHERE event_id = ?", (old[14],))
        db.close()
        report = store.verify_chain()
    assert not report.intact and report.purged == 27
    count, suspect = report.problems
    assert (count.kind, count.seq) == ("removed", None)
    assert "1 of the 28 listed events missing at seqs 1 to 30 (purge entry 5) were not purged" in count.detail
    # the purge keeps the events alerts cite: the one missing is named as the likely one
    assert (suspect.kind, suspect.seq, suspect.event_id) == ("removed", 15, old[14])


def test_a_missing_chain_entry_is_one_line_for_its_events_not_one_per_event(tmp_path, settings):
    with _store(tmp_path) as store:
        _fill(store, settings, batches=4, size=10)
        db = _raw(store)
        db.execute("DELETE FROM chain WHERE n = 2")
        db.close()
        problems = store.verify_chain().problems
    assert not [p for p in problems if p.kind == "inserted"]
    assert [p.detail for p in problems if p.seq is None and "not covered" in p.detail] == [
        "the events at seqs 11 to 20 (10 stored) are not covered: chain entry 2 is missing"
    ]
    assert len(problems) == 3  # with the gap in the numbers and the broken link


# -- signed digests after purges ------------------------------------------------------------------------------
def _sign_days_0_to_2(tmp_path: Path, private: Path) -> Path:
    document = tmp_path / "digest.json"
    done = command(
        "export-digest", "--data-dir", str(tmp_path / "data"), "--from", "2026-11-01T00:00:00Z",
        "--to", "2026-11-04T00:00:00Z", "--key", str(private), "--out", str(document),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return document


def test_a_digest_signed_before_a_purge_is_rebuilt_from_the_chain_leaves(tmp_path, settings, keys):
    _, private, public = keys
    with _store(tmp_path) as store:
        old = _fill(store, settings, batches=3, size=10)
        _fill(store, settings, batches=1, size=5, days=390)
        now = at(days=400)
        store.upsert_alerts([_alert_citing(old[n], AlertStatus.OPEN, 300, now) for n in (4, 14, 24)])
    document = _sign_days_0_to_2(tmp_path, private)
    check = ["verify-digest", str(document), "--public-key", str(public), "--data-dir", str(tmp_path / "data")]
    with _store(tmp_path) as store:
        store.purge(RetentionPolicy.of(events_days=180, alerts_days=365, now=now))  # each entry keeps its list
    done = command(*check, "--check-store")
    assert done.returncode == 0, done.stdout
    assert (
        "27 of the period's events were purged by retention since signing; with them, the 3 stored match" in done.stdout
    )
    db = sqlite3.connect(tmp_path / "data" / "accesswatch.db", isolation_level=None)
    db.execute("UPDATE events SET record_count = 7 WHERE event_id = ?", (old[14],))
    db.close()
    done = command(*check, "--check-store")
    assert done.returncode == 1 and "differ from those signed, even with them" in done.stdout


def test_a_digest_whose_purged_entries_lost_their_lists_is_checked_by_counts(tmp_path, settings, keys):
    _, private, public = keys
    with _store(tmp_path) as store:
        old = _fill(store, settings, batches=3, size=10)
        _fill(store, settings, batches=1, size=5, days=390)
        now = at(days=400)
        store.upsert_alerts([_alert_citing(old[4], AlertStatus.OPEN, 300, now)])
    document = _sign_days_0_to_2(tmp_path, private)
    check = ["verify-digest", str(document), "--public-key", str(public), "--data-dir", str(tmp_path / "data")]
    with _store(tmp_path) as store:
        assert store.purge(RetentionPolicy.of(events_days=180, alerts_days=365, now=now)).chain_lists_dropped == 2
    done = command(*check, "--check-store")
    assert done.returncode == 0, done.stdout
    assert (
        "29 of the period's events were purged by retention since signing; for 20 of them the chain no longer lists"
        " the events (a list goes once all its events are purged), so the signed digest cannot be recomputed. What"
        " can be checked holds: the events still stored (1) match their records in the chain under the signed head,"
        " and with the 29 purged they make the 30 that were signed" in done.stdout
    )
    db = sqlite3.connect(tmp_path / "data" / "accesswatch.db", isolation_level=None)
    db.execute("DELETE FROM events WHERE event_id = ?", (old[4],))  # the evidence the purge kept
    db.close()
    done = command(*check, "--check-store")
    assert done.returncode == 1 and "do not make the 30 signed" in done.stdout


def test_a_digest_after_count_only_purges_fails_where_they_do_not_add_up(tmp_path, settings, keys):
    _, private, public = keys
    with _store(tmp_path) as store:
        old = _fill(store, settings, batches=3, size=10)
        _fill(store, settings, batches=1, size=5, days=390)
        now = at(days=400)
        store.upsert_alerts([_alert_citing(old[n], AlertStatus.OPEN, 300, now) for n in (4, 14, 24)])
    document = _sign_days_0_to_2(tmp_path, private)
    check = ["verify-digest", str(document), "--public-key", str(public), "--data-dir", str(tmp_path / "data")]
    with _store(tmp_path) as store:
        store.purge(RetentionPolicy.of(events_days=180, alerts_days=365, now=now))
    _count_only_purges(tmp_path / "data" / "accesswatch.db")
    assert command(*check, "--check-store").returncode == 0
    db = sqlite3.connect(tmp_path / "data" / "accesswatch.db", isolation_level=None)
    db.execute("DELETE FROM events WHERE event_id = ?", (old[14],))
    db.close()
    done = command(*check, "--check-store")
    assert done.returncode == 1 and "1 of the 28 listed events missing at seqs 1 to 30" in done.stdout


def test_a_replay_after_a_purge_stores_nothing_again_and_verify_counts_each_event_once(tmp_path, settings):
    """Erased stays erased: the purged events' keys outlive them, so the original log replayed is all duplicates."""
    with _store(tmp_path) as store:
        old = [factories.incoming(settings, at=at(hours=n)) for n in range(6)]
        store.write(old)
        _fill(store, settings, batches=1, size=2, days=390)
        policy = RetentionPolicy.of(events_days=180, alerts_days=365, now=at(days=400))
        assert store.purge(policy).events == 6
        entries = store.verify_chain().entries
        result = store.write(old)
        assert (result.stored, result.duplicates, result.conflicts) == ([], 6, [])
        assert store.query_events(EventQuery(event_id=old[0].event.event_id)).items == []
        report = store.verify_chain()
        assert report.intact and (report.purged, report.events_checked, report.entries) == (6, 2, entries), report
        assert store.purge(policy).events == 0


def test_a_purged_event_back_with_other_content_is_a_duplicate_not_a_conflict(tmp_path, settings):
    """Its body is gone and no digest of it is kept: the copy cannot be compared, so it is not called tampering."""
    with _store(tmp_path) as store:
        old = [factories.incoming(settings, at=at(hours=n)) for n in range(3)]
        store.write([*old, factories.incoming(settings, at=at(days=390))])
        assert store.purge(RetentionPolicy.of(events_days=180, alerts_days=365, now=at(days=400))).events == 3
        changed = factories.incoming(settings, event_id=old[1].event.event_id, at=at(days=395), record_count=5000)
        result = store.write([changed])
        assert (result.stored, result.duplicates, result.conflicts, result.refused) == ([], 1, [], [])
        assert store.stats().events == 1


def _insider_log(path: Path, marker: str) -> int:
    """A fortnight of routine reading, then an hour of bulk reading (a ``bulk_read`` alert); the first customer
    id is ``marker``.  Returns the number of lines."""
    agent = Actor("emp-0001")
    routine = history(agent, days=14, per_hour=3)
    routine[0]["customer_ids"] = [marker]
    story = sorted([*routine, *burst(agent, local(14, 10), events=10, records=300)], key=lambda e: e["timestamp"])
    path.write_bytes(b"".join(orjson.dumps({**e, "event_id": f"e{n:07d}"}) + b"\n" for n, e in enumerate(story)))
    return len(story)


def _file_bytes(path: Path) -> bytes:
    """The store's file with every page of its write-ahead log copied in."""
    db = sqlite3.connect(path, isolation_level=None)
    assert db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
    db.close()
    return path.read_bytes()


def test_the_log_replayed_after_a_purge_brings_back_no_event_and_judges_none(tmp_path, monkeypatch):
    data, log, marker = tmp_path / "data", tmp_path / "events.jsonl", "c-erased-after-180-days"
    lines = _insider_log(log, marker)
    replay = ("replay", str(log), "--data-dir", str(data))
    first = command(*replay)
    assert first.returncode == 0 and f"stored {lines}, duplicates 0" in first.stdout, first
    alerts = command("alerts", "--data-dir", str(data), "--format", "jsonl").stdout
    assert '"detector":"bulk_read"' in alerts, alerts
    assert marker.encode() in _file_bytes(data / "accesswatch.db")

    # the log ends on 16 November 2026: a day's retention as of the 18th purges it all (--as-of is never later
    # than now, and 180 days after the log are)
    with monkeypatch.context() as short:
        short.setenv("ACCESSWATCH_RETENTION__EVENTS_DAYS", "1")
        purge = command("purge", "--as-of", "2026-11-18", "--data-dir", str(data))
    assert purge.returncode == 0, purge
    purged = orjson.loads(command("verify", "--data-dir", str(data), "--format", "json").stdout)
    assert purged["intact"] and purged["purged"] == lines - 10, purged  # the alert's 9 evidence and the newest stay

    again = command(*replay)
    assert again.returncode == 0, again
    # every line was stored once before: a duplicate, though purged since; none judged again (not even late)
    assert f"read {lines} lines: stored 0, duplicates {lines}, dead letters 0" in again.stdout, again.stdout
    assert "late events 0, conflicting duplicates 0, alerts raised 0, alerts updated 0" in again.stdout
    assert command("alerts", "--data-dir", str(data), "--format", "jsonl").stdout == alerts
    after = orjson.loads(command("verify", "--data-dir", str(data), "--format", "json").stdout)
    assert after == purged  # the same entries, events and purges: nothing counted twice
    assert marker.encode() not in _file_bytes(data / "accesswatch.db")
