"""The SQLite write path's shortcuts keep what is stored, chained and indexed exactly as a read-back says.

The chain hashes the rows as they were inserted rather than reading them
back: these tests write rows of every awkward shape (absent optional
columns, a whole-float record count, ids that are not ASCII, hash
collisions, batches that are partly stored already) and let ``verify``,
which does read every row back, judge the result.
"""

from __future__ import annotations

import _sqlite3
import ctypes
import sqlite3
import zlib

import orjson
import pytest

import store.sqlite as sqlite_module
from detectors.classify import Classifier
from models.event import AccessEvent
from models.fast_event import from_model
from store.base import EventQuery, IncomingEvent
from store.retention import RetentionPolicy
from store.sqlite import SqliteStore
from tests import factories as f
from tests.factories import at


def _without_resource_id(settings, **overrides) -> IncomingEvent:
    data = f.event_dict(**overrides)
    del data["resource"]["id"]
    raw = orjson.dumps(data)
    event = AccessEvent.model_validate_json(raw)
    return IncomingEvent(from_model(event), raw, Classifier(settings.classification).touch(event.fields).classes)


def _awkward(settings, n: int = 0) -> list:
    return [
        _without_resource_id(settings, at=at(hours=n), source_ip=None),
        f.incoming(settings, at=at(hours=n, days=-2), record_count=5.0, customer_ids=["客户-7", "a b", 'x"y']),
        f.incoming(settings, event_id=f"ünï\u0000cödé-{n}", actor={"id": "emp-ü"}, fields=None, customer_ids=None),
        f.incoming(settings, at=at(hours=n + 1), outcome="denied", action="export", fields=["passport_number"]),
    ]


def _assert_intact(store: SqliteStore, events: int) -> None:
    report = store.verify_chain()
    assert report.intact, report.problems
    assert report.events_checked == events


def test_rows_of_every_shape_verify(tmp_path, settings):
    with SqliteStore(tmp_path / "a.db") as store:
        result = store.write(_awkward(settings))
        assert len(result.stored) == 4
        stored = store._db.execute("SELECT record_count, resource_id, source_ip FROM events ORDER BY seq").fetchall()
        assert stored[0][1:] == (None, None) and stored[1][0] == 5
        _assert_intact(store, 4)


def test_a_batch_partly_stored_already_chains_only_its_new_rows_in_store_order(tmp_path, settings):
    with SqliteStore(tmp_path / "a.db") as store:
        old = _awkward(settings, 0)
        store.write(old[1:3])
        new = _awkward(settings, 10)
        result = store.write([new[0], old[1], new[1], old[2], new[2], new[2], old[0], new[3]])
        expected = [new[0], new[1], new[2], old[0], new[3]]
        assert [i.event.event_id for i in result.stored] == [i.event.event_id for i in expected]
        assert result.duplicates == 3
        _assert_intact(store, 7)


def test_hash_collisions_are_chained_with_their_null_key_in_store_order(tmp_path, settings, monkeypatch):
    real = sqlite_module.id_key
    f.keyed_by(monkeypatch, lambda event_id: 7 if event_id.startswith("clash") else real(event_id))
    with SqliteStore(tmp_path / "a.db") as store:
        store.write([f.incoming(settings, event_id="clash-1")])
        mixed = [f.incoming(settings, event_id=f"clash-{n}") if n % 2 else f.incoming(settings) for n in range(2, 8)]
        batch = mixed + _awkward(settings, 5)
        result = store.write(batch)
        # the colliding ids go in in the batch's order, with no key
        assert [i.event.event_id for i in result.stored] == [i.event.event_id for i in batch]
        stored = store._db.execute("SELECT event_id, id_key FROM events ORDER BY seq").fetchall()
        assert [event_id for event_id, key in stored if key is None] == ["clash-3", "clash-5", "clash-7"]
        assert stored[0] == ("clash-1", 7) and sum(key is None for _, key in stored) == 3
        _assert_intact(store, 11)
        # and each is a duplicate when it comes again, under its own id and not the key's owner
        again = store.write([*mixed[1::2], f.incoming(settings, event_id="clash-1")])
        assert (again.stored, again.duplicates, again.conflicts) == ([], 4, [])


@pytest.mark.parametrize("batches", [1, 3])
def test_a_changed_row_is_still_caught(tmp_path, settings, batches):
    with SqliteStore(tmp_path / "a.db") as store:
        for n in range(batches):
            store.write(_awkward(settings, n * 10))
        store._db.execute("UPDATE events SET record_count = record_count + 1 WHERE seq = 2")
        problems = store.verify_chain().problems
        assert [(p.kind, p.seq) for p in problems] == [("changed", 2)]


def _tokens_before_0005(customer_id: str) -> str:
    """The customer token as stores before migration 0005 have it (two checksums of the id)."""
    data = customer_id.encode()
    return f"k{zlib.crc32(data):08x}{zlib.adler32(data):08x}"


def _customer_seqs(store: SqliteStore, customer: str) -> list[int]:
    return [e.seq for e in store.query_events(EventQuery(customer_id=customer, limit=100, newest_first=False)).items]


def test_a_store_indexed_with_the_old_customer_tokens_answers_by_customer_after_upgrading(tmp_path, settings):
    path = tmp_path / "a.db"
    customers = {"c-1": [1, 3], "C-1": [2], "客户-7": [3, 4], "a b": [4], 'x"y': [4], "": [2]}
    with SqliteStore(path) as store:
        store.write([
            f.incoming(settings, customer_ids=["c-1"]),
            f.incoming(settings, customer_ids=["C-1", ""]),
            f.incoming(settings, customer_ids=["c-1", "客户-7", "c-1"]),
            f.incoming(settings, customer_ids=["客户-7", "a b", 'x"y']),
            f.incoming(settings, customer_ids=None),
        ])  # fmt: skip
        # turn it into a store from before 0005: an FTS5 index with the old tokens, no postings,
        # and neither migration applied
        db = store._db
        db.execute("DROP TABLE customer_postings")
        db.execute("CREATE VIRTUAL TABLE event_customers USING fts5(tokens, content='', detail=none)")
        for seq, body in db.execute("SELECT seq, body FROM events").fetchall():
            ids = orjson.loads(body).get("customer_ids") or []
            if ids:
                tokens = " ".join({_tokens_before_0005(c) for c in ids})
                db.execute("INSERT INTO event_customers (rowid, tokens) VALUES (?, ?)", (seq, tokens))
        db.execute("DELETE FROM schema_migrations WHERE name IN ('0005-customer-tokens-hex', '0006-customer-postings')")
    with SqliteStore(path) as store:
        assert store.migrations[-2:] == ["0005-customer-tokens-hex", "0006-customer-postings"]
        assert {customer: _customer_seqs(store, customer) for customer in customers} == customers
        tables = {name for (name,) in store._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert "event_customers" not in tables
        report = store.purge(RetentionPolicy.of(events_days=1, alerts_days=1, now=at(days=30)))
        assert report.events == 4  # the newest event is kept
        assert {customer: _customer_seqs(store, customer) for customer in customers} == {c: [] for c in customers}
        # the postings of the purged events went with them
        assert store._db.execute("SELECT count(*) FROM customer_postings").fetchone() == (0,)


def test_a_new_store_has_large_pages_and_an_older_one_keeps_its_own(tmp_path, settings):
    older = tmp_path / "older.db"
    raw = sqlite3.connect(older)
    raw.execute("PRAGMA journal_mode=WAL")  # as stores were created before: 4 KiB pages, then WAL
    # an accesswatch store begun by an older version (a file of other tables is refused: tests/test_cli.py)
    raw.execute("CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    raw.close()
    for path, page_size in ((tmp_path / "new.db", sqlite_module.PAGE_SIZE), (older, 4096)):
        with SqliteStore(path) as store:
            db = store._db
            assert db.execute("PRAGMA page_size").fetchone() == (page_size,)
            # the WAL is checkpointed at the same size whatever the page size
            pages = db.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
            assert pages * page_size == sqlite_module.WAL_CHECKPOINT_BYTES
            store.write(_awkward(settings))
            _assert_intact(store, 4)


def test_a_new_store_caches_no_more_than_its_cache_mb(tmp_path):
    # SQLite's own count of the memory it holds, in the library this process's sqlite3 uses
    memory_used = ctypes.CDLL(_sqlite3.__file__).sqlite3_memory_used
    memory_used.restype = ctypes.c_int64
    before = memory_used()
    with SqliteStore(tmp_path / "new.db", cache_mb=4) as store:
        db = store._db
        db.execute("CREATE TABLE scratch (id INTEGER PRIMARY KEY, body BLOB)")
        for _ in range(40):  # 40 MB through the cache, a transaction a megabyte
            db.execute("INSERT INTO scratch (body) VALUES (zeroblob(1000000))")
        assert db.execute("SELECT sum(length(body)) FROM scratch").fetchone() == (40_000_000,)
        held = memory_used() - before
    # 4 MiB of cache and the connection's own needs; the limit counted in 4 KiB pages would hold 16 MiB
    assert held < 8 * 2**20, held


def test_while_a_writer_is_open_the_stores_own_commits_leave_checkpoints_to_its_thread(tmp_path):
    def limit(db: sqlite3.Connection) -> int:
        return db.execute("PRAGMA wal_autocheckpoint").fetchone()[0]

    with SqliteStore(tmp_path / "a.db") as store:
        own = limit(store._db)
        writer = store.open_writer()
        assert limit(store._db) == limit(writer._db) == own * sqlite_module.BACKGROUND_CHECKPOINT_SLACK
        writer.close()
        assert limit(store._db) == own  # on its own again, it copies the log itself past its usual size
