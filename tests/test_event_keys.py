"""Idempotency keys in two levels (store.event_keys): an event is stored once whichever level holds its key."""

from __future__ import annotations

import pytest

from store import event_keys
from store import sqlite as sqlite_module
from store.base import EventQuery
from store.retention import RetentionPolicy
from store.sqlite import SqliteStore, id_key
from tests import factories as f
from tests.factories import at


@pytest.fixture
def small_merges(monkeypatch):
    monkeypatch.setattr(event_keys, "MERGE_KEYS", 25)


def _levels(store: SqliteStore) -> tuple[int, int]:
    tables = ("event_keys_recent", "event_keys")
    return tuple(store._db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in tables)


def test_recent_keys_are_merged_in_bulk_and_every_level_refuses_a_repeat(tmp_path, settings, small_merges):
    with SqliteStore(tmp_path / "a.db") as store:
        batches = [[f.incoming(settings) for _ in range(10)] for _ in range(4)]
        store.write(batches[0])
        store.write(batches[1])
        assert _levels(store) == (20, 0)
        store.write(batches[2])  # 30 recent keys: past the limit, all merged
        assert _levels(store) == (0, 30)
        store.write(batches[3])
        assert _levels(store) == (10, 30)
        # one event of each batch again: two keys are in the merged level, one recent, one in this batch
        again = [batch[3] for batch in batches] + [batches[3][3]]
        result = store.write(again)
        assert (result.stored, result.duplicates, result.conflicts) == ([], 5, [])
        assert store.stats().events == 40
        stored = store._db.execute("SELECT seq, event_id FROM events").fetchall()
        assert all(event_keys.seq_of(store._db, id_key(event_id)) == seq for seq, event_id in stored)


def test_a_changed_event_under_a_merged_key_is_a_conflict(tmp_path, settings, small_merges):
    with SqliteStore(tmp_path / "a.db") as store:
        first = [f.incoming(settings, event_id=f"e-{n}", record_count=1) for n in range(30)]
        store.write(first)
        assert _levels(store) == (0, 30)
        result = store.write([f.incoming(settings, event_id="e-4", record_count=999)])
        assert (result.stored, result.duplicates, result.conflicts) == ([], 1, ["e-4"])


def test_the_keys_are_looked_up_by_primary_key_in_both_levels(tmp_path):
    with SqliteStore(tmp_path / "a.db") as store:
        for table in ("event_keys_recent", "event_keys"):
            query = "EXPLAIN QUERY PLAN " + event_keys._KNOWN.format(table=table)
            plan = " ".join(row[-1] for row in store._db.execute(query, ("[]",)))
            assert "SCAN j" in plan and "SEARCH k USING PRIMARY KEY" in plan, plan  # never a scan of the keys


def _purged_marks(store: SqliteStore) -> tuple[int, int]:
    tables = ("event_keys_recent", "event_keys")
    query = "SELECT count(*) FROM {} WHERE purged_check IS NOT NULL"
    return tuple(store._db.execute(query.format(table)).fetchone()[0] for table in tables)


def test_retention_keeps_the_keys_of_the_events_it_deletes_in_either_level(tmp_path, settings, small_merges):
    with SqliteStore(tmp_path / "a.db") as store:
        old = [f.incoming(settings, at=at(hours=n)) for n in range(33)]
        new = [f.incoming(settings, at=at(days=60, hours=n)) for n in range(5)]
        store.write(old[:30])
        store.write([*old[30:], *new])
        assert _levels(store) == (8, 30)
        report = store.purge(RetentionPolicy.of(events_days=30, alerts_days=30, now=at(days=61)))
        assert report.events == 33 and store.stats().events == 5
        assert _levels(store) == (8, 30) and _purged_marks(store) == (3, 30)
        # a purged event that comes back was seen: a duplicate, whichever level keeps its key
        result = store.write(old)
        assert (result.stored, result.duplicates, result.conflicts) == ([], 33, [])
        # merged, the recent level's marks go with their keys
        store.write([f.incoming(settings, at=at(days=60, hours=10 + n)) for n in range(20)])
        assert _levels(store) == (0, 58) and _purged_marks(store) == (0, 33)
        assert (store.write(old[30:]).duplicates, store.stats().events) == (3, 25)


def test_an_id_whose_key_collides_with_a_purged_one_is_stored(tmp_path, settings, monkeypatch):
    """The key alone cannot tell the purged id from another with the same 64-bit hash: the mark can."""
    real = sqlite_module.id_key
    f.keyed_by(monkeypatch, lambda event_id: 7 if event_id.startswith("clash") else real(event_id))
    with SqliteStore(tmp_path / "a.db") as store:
        purged = f.incoming(settings, event_id="clash-1", at=at())
        store.write([purged, f.incoming(settings, at=at(days=60))])
        assert store.purge(RetentionPolicy.of(events_days=30, alerts_days=30, now=at(days=61))).events == 1
        other = f.incoming(settings, event_id="clash-2", at=at(days=60, hours=1))
        result = store.write([purged, other])
        assert (result.stored, result.duplicates) == ([other], 1)
        assert store._db.execute("SELECT id_key FROM events WHERE event_id = 'clash-2'").fetchone() == (None,)


def test_a_store_from_before_the_two_levels_keeps_its_keys(tmp_path, settings):
    path = tmp_path / "a.db"
    events = [f.incoming(settings) for _ in range(12)]
    with SqliteStore(path) as store:
        store.write(events)
        # as stores were before migration 0007: the keys in a unique index on events
        db = store._db
        db.execute("DROP TABLE event_keys")
        db.execute("DROP TABLE event_keys_recent")
        db.execute("CREATE UNIQUE INDEX events_id_key ON events(id_key)")
        db.execute("DELETE FROM schema_migrations WHERE name = '0007-event-keys'")
    with SqliteStore(path) as store:
        assert store.migrations[-1] == "0007-event-keys"
        assert _levels(store) == (0, 12)
        indexes = {name for (name,) in store._db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert "events_id_key" not in indexes
        result = store.write([*events[:3], f.incoming(settings)])
        assert (len(result.stored), result.duplicates) == (1, 3)
        assert store.query_events(EventQuery(limit=100)).items[0].seq == 13


def _as_before_0011(path) -> None:
    """The keys as stores kept them before migration 0011: no mark, and those of purged events deleted."""
    with SqliteStore(path) as store:
        db = store._db
        for table in ("event_keys_recent", "event_keys"):
            db.execute(f"DELETE FROM {table} WHERE purged_check IS NOT NULL")
            db.execute(f"ALTER TABLE {table} DROP COLUMN purged_check")
        db.execute("DELETE FROM schema_migrations WHERE name = '0011-purged-keys'")


def test_a_store_from_before_purged_keys_keeps_the_next_purges_out_but_not_the_earlier_ones(tmp_path, settings):
    path = tmp_path / "a.db"
    old = [f.incoming(settings, at=at(hours=n)) for n in range(6)]
    policy = RetentionPolicy.of(events_days=30, alerts_days=30, now=at(days=61))
    with SqliteStore(path) as store:
        store.write(old[:3])
        store.write([f.incoming(settings, at=at(days=60))])
        assert store.purge(policy).events == 3
    _as_before_0011(path)
    with SqliteStore(path) as store:
        assert store.migrations[-1] == "0011-purged-keys"
        # the keys the earlier purge deleted are gone for good: those events are stored again
        assert len(store.write(old).stored) == 6
        store.write([f.incoming(settings, at=at(days=60, hours=1))])  # the newest, which a purge keeps
        assert store.purge(policy).events == 6
        assert (store.write(old).duplicates, store.stats().events) == (6, 2)
        assert store.verify_chain().intact
