"""``verify`` checks the search indexes against the chained rows (store.chain_indexes).

The auditors' searches find events by data class through ``class_postings`` and by customer through
``customer_postings``: an index entry deleted hides an event as surely as deleting the event, while
the event itself still verifies.  Tampering is done as in test_integrity: straight into the file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import numpy as np

from accesswatch import integrity
from store import class_postings
from store.base import EventQuery
from store.chain import LISTED, Problem
from store.customer_postings import BUCKETS, customer_hash
from store.sqlite import SqliteStore
from tests import factories
from tests.factories import at
from tests.test_integrity import _fill, _raw, _store


def _index_problems(store: SqliteStore) -> list[Problem]:
    report = store.verify_chain()
    assert all(p.kind == "index" for p in report.problems), report.problems  # the rows themselves verify
    return report.problems


def test_an_untouched_store_has_its_indexes_as_its_rows_call_for(tmp_path, settings):
    with _store(tmp_path) as store:
        _fill(store, settings, batches=3, size=10)
        store.write([factories.incoming(settings, customer_ids=None, fields=[])])  # no customer, no class
        store.write([factories.incoming(settings, customer_ids=["a", "a", "b"])])  # an id given twice
        assert store.verify_chain().intact


Entries = tuple[np.ndarray, np.ndarray]  # a class postings row's (times, seqs)


def _rewrite_class_rows(db: sqlite3.Connection, change: Callable[[str, Entries], Entries], where: str = "1") -> None:
    """Each class postings row given what ``change`` makes of its entries, written as the store writes them."""
    for row_id, name, first, last, blob in db.execute(
        f"SELECT id, class, first_seq, last_seq, postings FROM class_postings WHERE {where}"
    ).fetchall():
        times, offsets = class_postings.stored_postings(blob)
        [(*_, low, high, _, changed)] = class_postings._rows(
            first, last, {name: change(name, (times, offsets + first))}, merged=True
        )
        db.execute(
            "UPDATE class_postings SET min_ts = ?, max_ts = ?, postings = ? WHERE id = ?", (low, high, changed, row_id)
        )


def _class_seqs(store: SqliteStore, name: str) -> set[int]:
    return {item.seq for item in store.query_events(EventQuery(data_class=name, limit=100)).items}


def test_a_class_entry_deleted_is_named_with_its_class(tmp_path, settings):
    with _store(tmp_path) as store:
        ids = _fill(store, settings, batches=2, size=10)
        [name, *_] = sorted(store.query_events(EventQuery(event_id=ids[2])).items[0].classes)
        assert 3 in _class_seqs(store, name)
        db = _raw(store)
        _rewrite_class_rows(
            db, lambda _, entries: tuple(a[~np.isin(entries[1], [3, 14])] for a in entries), f"class = '{name}'"
        )
        db.close()
        assert 3 not in _class_seqs(store, name)
        problems = _index_problems(store)
    assert {(p.seq, p.event_id) for p in problems} == {(3, ids[2]), (14, ids[13])}
    assert all(f"missing from class_postings: {name}" in p.detail for p in problems)


def test_a_class_entry_for_a_class_it_lacks_or_at_another_time_is_named(tmp_path, settings):
    with _store(tmp_path) as store:
        ids = _fill(store, settings, batches=1, size=10)
        db = _raw(store)
        [(ts2,)] = db.execute("SELECT ts FROM events WHERE seq = 2").fetchall()
        health = class_postings._rows(2, 2, {"health": (np.array([ts2]), np.array([2]))}, merged=True)
        never = class_postings._rows(9999, 9999, {"health": (np.array([ts2]), np.array([9999]))}, merged=True)
        db.executemany(  # and an entry of a seq never stored, past the chain: what a cut at its end leaves
            "INSERT INTO class_postings (class, first_seq, last_seq, min_ts, max_ts, merged, postings)"
            " VALUES (?,?,?,?,?,?,?)",
            health + never,
        )

        def moved(_: str, entries: Entries) -> Entries:  # a search bounded in time misplaces seq 5
            times, seqs = entries
            return times + (seqs == 5), seqs

        _rewrite_class_rows(db, moved)
        db.close()
        report = store.verify_chain()
    (past,) = [p for p in report.problems if p.kind != "index"]
    assert "past the chain's last seq 10 (class_postings up to seq 9999)" in past.detail
    problems = report.problems
    extra = {(p.seq, p.event_id) for p in problems if "extra in class_postings" in p.detail}
    assert extra == {(2, ids[1]), (5, ids[4])}
    assert any("health (classes it does not have)" in p.detail for p in problems if p.seq == 2)
    assert any("at another time" in p.detail for p in problems if p.seq == 5)
    # seq 5's entries moved: at its own time it has none, so the same event is also missing from the index
    assert {p.seq for p in problems if "missing from class_postings" in p.detail} == {5}


def test_a_class_postings_row_searches_cannot_read_right_is_reported(tmp_path, settings):
    with _store(tmp_path) as store:
        store.write([factories.incoming(settings, at=at(hours=n), fields=["name"]) for n in range(20)])
        db = _raw(store)
        [(row_id, blob)] = db.execute("SELECT id, postings FROM class_postings").fetchall()
        times, offsets = class_postings.stored_postings(blob)
        backwards = times[::-1].tobytes() + offsets[::-1].astype("<u4").tobytes()
        db.execute("UPDATE class_postings SET postings = ? WHERE id = ?", (backwards, row_id))
        db.close()
        problems = _index_problems(store)
    [malformed] = [p for p in problems if p.seq is None]
    assert f"class_postings row {row_id}" in malformed.detail and "not sorted by time" in malformed.detail
    assert len(problems) == 1 + 20  # and each of its events is missing from the index


def test_customer_postings_deleted_are_named_per_event_and_searches_miss_those_events(tmp_path, settings):
    customers = [f"c-{n}" for n in range(40)]
    with _store(tmp_path) as store:
        batch = [
            factories.incoming(settings, at=at(hours=n), customer_ids=[c, "c-shared"]) for n, c in enumerate(customers)
        ]
        store.write(batch)
        bucket = customer_hash("c-7") % BUCKETS
        db = _raw(store)
        db.execute("DELETE FROM customer_postings WHERE bucket = ?", (bucket,))
        db.close()
        assert store.query_events(EventQuery(customer_id="c-7")).items == []
        problems = _index_problems(store)
    hidden = {seq for seq, c in enumerate(customers, start=1) if customer_hash(c) % BUCKETS == bucket}
    if customer_hash("c-shared") % BUCKETS == bucket:
        hidden = set(range(1, len(customers) + 1))
    assert {p.seq for p in problems} == hidden and 8 in hidden
    by_seq = {p.seq: p for p in problems}
    assert by_seq[8].event_id == batch[7].event.event_id
    assert "missing from customer_postings: 1 of its 2 customer ids" in by_seq[8].detail


def test_a_postings_row_searches_cannot_read_right_is_reported(tmp_path, settings):
    with _store(tmp_path) as store:
        store.write([factories.incoming(settings, at=at(hours=n), customer_ids=[f"c-{n}"]) for n in range(200)])
        db = _raw(store)
        row_id, blob = db.execute(
            "SELECT id, postings FROM customer_postings WHERE length(postings) >= 16 LIMIT 1"
        ).fetchone()
        reversed_pairs = np.frombuffer(blob, np.uint64)[::-1].tobytes()  # each pair whole, their order backwards
        db.execute("UPDATE customer_postings SET postings = ? WHERE id = ?", (reversed_pairs, row_id))
        db.close()
        problems = _index_problems(store)
    [malformed] = [p for p in problems if p.seq is None]
    assert f"customer_postings row {row_id}" in malformed.detail and "not sorted by hash" in malformed.detail
    assert len(problems) == 1 + len(blob) // 8  # and each of its events is missing from the index


def test_extra_postings_for_a_stored_event_are_named_those_of_seqs_gone_are_not(tmp_path, settings):
    with _store(tmp_path) as store:
        ids = _fill(store, settings, batches=1, size=5)
        db = _raw(store)
        # c-0-0-0's pairs for seq 1, copied as if seq 2 had it too; and seq 5 deleted with its postings left
        row_id, first, blob = db.execute(
            "SELECT id, first_seq, postings FROM customer_postings WHERE bucket = ?",
            (customer_hash("c-0-0-0") % BUCKETS,),
        ).fetchone()
        pairs = np.frombuffer(blob, [("hash", "<u4"), ("offset", "<u4")]).copy()
        mine = pairs[pairs["hash"] == customer_hash("c-0-0-0")]
        mine["offset"] = 2 - first
        forged = np.sort(np.concatenate([pairs, mine]), order=["hash", "offset"])
        db.execute("UPDATE customer_postings SET postings = ? WHERE id = ?", (forged.tobytes(), row_id))
        db.close()
        [problem] = _index_problems(store)
        assert (problem.seq, problem.event_id) == (2, ids[1]) and "extra in customer_postings" in problem.detail


def test_many_index_problems_are_listed_up_to_a_limit_then_counted_in_one_line(tmp_path, settings):
    with _store(tmp_path) as store:
        store.write([factories.incoming(settings, at=at(hours=n), fields=["name"]) for n in range(LISTED + 30)])
        db = _raw(store)
        db.execute("DELETE FROM class_postings")
        db.close()
        report = store.verify_chain()
        problems = _index_problems(store)
    # the verdict counts every problem, the ones counted on the last line too (not LISTED + 1 lines)
    assert report.problem_count == LISTED + 30
    assert integrity.describe(report)[0].startswith(f"TAMPERED: 1 chain entry, {LISTED + 30} events checked")
    assert f", {LISTED + 30} problems; head " in integrity.describe(report)[0]
    assert len(problems) == LISTED + 1
    assert [p.seq for p in problems[:LISTED]] == list(range(1, LISTED + 1))
    assert problems[-1].seq is None
    assert problems[-1].detail == (
        f"30 more events missing from class_postings (seqs {LISTED + 1} to {LISTED + 30}), not listed one by one"
    )


def test_a_purge_leaves_indexes_that_verify_whatever_it_kept(tmp_path, settings):
    """Postings rows that still cover a kept event keep the pairs of purged ones: expected, not reported."""
    from store.retention import RetentionPolicy

    with _store(tmp_path) as store:
        old = _fill(store, settings, batches=2, size=10)
        _fill(store, settings, batches=1, size=5, days=390)
        store.upsert_alerts([factories.alert(evidence={"event_ids": [old[3]]}, window_end=at(days=300))])
        assert store.purge(RetentionPolicy.of(events_days=180, alerts_days=365, now=at(days=400))).events == 19
        report = store.verify_chain()
    assert report.intact, report.problems
