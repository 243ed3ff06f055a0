"""The data-class index (store.class_postings): a search by class pages through exactly the events of it.

Each is checked against the plain definition: the stored events whose classes hold the class, in the
page's order (time, then seq), within the span and past the cursor.
"""

from __future__ import annotations

import random
import sqlite3

import numpy as np
import pytest

from store import class_postings
from store.base import EventQuery, IncomingEvent, encode_cursor
from store.class_postings import MERGE_EVENTS, index_classes, seqs_in_order
from store.retention import RetentionPolicy
from store.sqlite import SqliteStore
from store.sqlite_schema import MIGRATIONS
from tests import factories as f
from tests.factories import at

CLASSES = ["contact", "identity", "financial", "government_id", "a,b", ""]


def _db() -> sqlite3.Connection:
    """Only the postings table, as migration 0009 makes it."""
    db = sqlite3.connect(":memory:", isolation_level=None)
    script = dict(MIGRATIONS)["0009-class-postings"]
    db.executescript(script[: script.index("INSERT INTO class_postings")])
    return db


def _events(rng: random.Random, count: int) -> tuple[list[frozenset[str]], np.ndarray]:
    """Classes and times of ``count`` events: none, one or several classes; times out of order, with ties."""
    classes = [frozenset(rng.sample(CLASSES, rng.randrange(0, 4))) for _ in range(count)]
    return classes, np.array([rng.randrange(0, 500) for _ in range(count)], np.int64)


def _truth(classes, times, name, earliest, latest, newest_first, after) -> list[int]:
    found = [
        (int(ts), seq)
        for seq, (names, ts) in enumerate(zip(classes, times, strict=True), start=1)
        if name in names and earliest <= ts <= latest
    ]
    if after is not None:
        found = [key for key in found if (key < after if newest_first else key > after)]
    return [seq for _, seq in sorted(found, reverse=newest_first)]


def _write(db: sqlite3.Connection, rng: random.Random, sizes: list[int]):
    classes: list[frozenset[str]] = []
    times = np.empty(0, np.int64)
    for size in sizes:
        batch, batch_times = _events(rng, size)
        index_classes(db, len(classes) + 1, batch, batch_times)
        classes, times = classes + batch, np.concatenate([times, batch_times])
    return classes, times


@pytest.mark.parametrize("sizes", [[1] * 40, [7, 3, 250, 1, 90], [MERGE_EVENTS + 5, 3], [4000, 4000, 4000, 1, 900]])
def test_the_chunks_give_every_event_of_the_class_in_the_pages_order_whatever_the_writes(sizes):
    rng = random.Random(sum(sizes))
    db = _db()
    classes, times = _write(db, rng, sizes)
    for name in [*CLASSES, "never-seen"]:
        for newest_first in (False, True):
            for earliest, latest, after in [(0, 500, None), (100, 300, None), (100, 300, (200, 50)), (250, 250, None)]:
                chunks = list(seqs_in_order(db, name, earliest, latest, newest_first, after, first_chunk=3))
                assert [seq for chunk in chunks for seq in chunk] == _truth(
                    classes, times, name, earliest, latest, newest_first, after
                ), (name, newest_first, earliest, latest, after)
                assert all(len(chunk) >= 3 for chunk in chunks[:-1])  # a full page's worth each, then more


def test_small_writes_are_merged_once_they_span_enough_events():
    rng, db = random.Random(7), _db()
    step = MERGE_EVENTS // 8
    classes, times = _write(db, rng, [step] * 7)
    pending = db.execute(
        "SELECT count(DISTINCT class), min(first_seq), max(last_seq) FROM class_postings WHERE merged = 0"
    )
    assert pending.fetchone() == (len(CLASSES), 1, 7 * step)
    more, more_times = _events(rng, step)
    index_classes(db, len(classes) + 1, more, more_times)
    classes, times = classes + more, np.concatenate([times, more_times])
    rows = db.execute("SELECT merged, first_seq, last_seq, count(*) FROM class_postings GROUP BY 1, 2, 3").fetchall()
    assert rows == [(1, 1, 8 * step, len(CLASSES))]  # one row per class, spanning all eight writes
    chunks = seqs_in_order(db, "identity", 0, 500, True, None, first_chunk=MERGE_EVENTS)
    assert [seq for chunk in chunks for seq in chunk] == _truth(classes, times, "identity", 0, 500, True, None)


def _batch(settings, count: int, seed: int) -> list[IncomingEvent]:
    """Events at a few repeated times, out of order, by two actors, with a few classes each."""
    rng = random.Random(seed)
    fields = [["passport_number"], ["email", "iban"], [], ["email"], ["iban", "passport_number", "email"]]
    return [
        f.incoming(settings, at=at(hours=rng.randrange(0, 30)), fields=rng.choice(fields), actor={"id": f"u-{n % 2}"})
        for n in range(count)
    ]


def _paged(store: SqliteStore, limit: int = 7, **query) -> list[int]:
    seqs, cursor = [], None
    while True:
        page = store.query_events(EventQuery(limit=limit, cursor=cursor, **query))
        seqs += [item.seq for item in page.items]
        if page.next_cursor is None:
            return seqs
        cursor = page.next_cursor


def _expected(store: SqliteStore, data_class: str, newest_first: bool, actor: str | None = None) -> list[int]:
    """The plain definition, from the events table alone."""
    rows = store._db.execute("SELECT seq, ts, classes, actor_id FROM events").fetchall()
    found = [
        (ts, seq)
        for seq, ts, classes, actor_id in rows
        if data_class in classes.split(",") and actor in (None, actor_id)
    ]
    return [seq for _, seq in sorted(found, reverse=newest_first)]


@pytest.mark.parametrize("newest_first", [False, True])
def test_a_search_by_class_pages_through_its_events_in_order_with_other_filters(tmp_path, settings, newest_first):
    with SqliteStore(tmp_path / "a.db") as store:
        for n, size in enumerate([40, 1, 25]):
            store.write(_batch(settings, size, seed=n))
        for name in ["identity", "financial", "government_id", "contact"]:
            assert _paged(store, data_class=name, newest_first=newest_first) == _expected(store, name, newest_first)
            assert _paged(store, limit=1, data_class=name, newest_first=newest_first, actor_id="u-1") == _expected(
                store, name, newest_first, "u-1"
            )


def test_a_page_past_a_cursor_at_a_time_many_events_share(tmp_path, settings):
    with SqliteStore(tmp_path / "a.db") as store:
        store.write([f.incoming(settings, at=at(hours=1), fields=["email"]) for _ in range(9)])
        wanted = _expected(store, "contact", newest_first=True)
        page = store.query_events(EventQuery(data_class="contact", cursor=encode_cursor(at_micros(store, 5), 5)))
        assert [item.seq for item in page.items] == [seq for seq in wanted if seq < 5]


def at_micros(store: SqliteStore, seq: int) -> int:
    return store._db.execute("SELECT ts FROM events WHERE seq = ?", (seq,)).fetchone()[0]


def test_purged_events_are_not_found_and_rows_of_purged_events_only_go(tmp_path, settings):
    with SqliteStore(tmp_path / "a.db") as store:
        store.write([f.incoming(settings, at=at(hours=n), fields=["email"]) for n in range(6)])
        store.write([f.incoming(settings, at=at(hours=n, days=390), fields=["email"]) for n in range(4)])
        assert store.purge(RetentionPolicy.of(events_days=180, alerts_days=365, now=at(days=400))).events == 6
        assert _paged(store, data_class="contact") == [10, 9, 8, 7]
        assert store._db.execute("SELECT first_seq FROM class_postings").fetchall() == [(7,)]


def _as_before_0009(path) -> None:
    """The store as the tree before migration 0009 left it: a (class, ts, seq) row per class of each event."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE event_classes (class TEXT NOT NULL, ts INTEGER NOT NULL, seq INTEGER NOT NULL,"
               " PRIMARY KEY (class, ts, seq)) WITHOUT ROWID")  # fmt: skip
    for name, first_seq, blob in db.execute("SELECT class, first_seq, postings FROM class_postings").fetchall():
        times, offsets = class_postings.stored_postings(blob)
        rows = [(name, ts, first_seq + offset) for ts, offset in zip(times.tolist(), offsets.tolist(), strict=True)]
        db.executemany("INSERT INTO event_classes VALUES (?, ?, ?)", rows)
    db.execute("DROP TABLE class_postings")
    db.execute("DELETE FROM schema_migrations WHERE name = '0009-class-postings'")
    db.close()


def test_a_store_with_class_rows_moves_to_postings_with_the_same_answers(tmp_path, settings):
    path = tmp_path / "a.db"
    with SqliteStore(path) as store:
        for n, size in enumerate([30, 2, 20]):
            store.write(_batch(settings, size, seed=n))
        expected = {name: _paged(store, data_class=name) for name in ["identity", "financial", "government_id"]}
    _as_before_0009(path)
    with SqliteStore(path) as store:
        assert store.migrations[-1] == "0009-class-postings"
        tables = {name for (name,) in store._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert "class_postings" in tables and "event_classes" not in tables
        assert {name: _paged(store, data_class=name) for name in expected} == expected
        assert store.verify_chain().intact


def test_a_page_reads_only_the_rows_its_times_reach(monkeypatch):
    # a class in most events has a row per write: a page of the newest must not read them all
    monkeypatch.setattr(class_postings, "MERGE_EVENTS", 10)
    db, read = _db(), []
    for write in range(20):  # each write stamped after the one before
        index_classes(db, write * 50 + 1, [frozenset({"contact"})] * 50, np.arange(50, dtype=np.int64) + write * 100)
    decode = class_postings.stored_postings
    monkeypatch.setattr(class_postings, "stored_postings", lambda blob: read.append(blob) or decode(blob))
    newest = next(seqs_in_order(db, "contact", 0, 10_000, True, None, first_chunk=60))
    assert newest == list(range(1000, 940, -1)) and len(read) == 2
    read.clear()
    oldest = next(seqs_in_order(db, "contact", 0, 10_000, False, (120, 71), first_chunk=10))
    assert oldest == list(range(72, 82)) and len(read) == 1
