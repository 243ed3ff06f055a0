"""The actor index led by the day (store.actor_days, migration 0008): pages in time order, and cheap to write."""

from __future__ import annotations

import random
import subprocess
import sys
from datetime import timedelta

import pytest

from store.base import EventQuery, StoreNeedsUpgrade
from store.sqlite import SqliteStore
from tests import factories as f
from tests.factories import at

ACTORS = [f"emp-{n:04d}" for n in range(6)]


def _events(settings, count: int = 160, seed: int = 3):
    """Several actors over three weeks, out of order, with several at one instant, and two at the ends of time."""
    rng = random.Random(seed)
    events = [
        f.incoming(settings, actor={"id": rng.choice(ACTORS)}, at=at(hours=rng.choice([5.0, rng.uniform(-30, 500)])))
        for _ in range(count)
    ]
    for when in ("0001-01-01T09:00:00Z", "9999-12-31T23:00:00Z"):
        events.append(f.incoming(settings, actor={"id": ACTORS[0]}, timestamp=when))
    return events


def _expected(store: SqliteStore, actor: str, since, until, newest_first: bool) -> list[int]:
    rows = store._db.execute("SELECT seq, ts, body FROM events WHERE actor_id = ?", (actor,)).fetchall()
    low = -(2**63) if since is None else round(since.timestamp() * 1e6)
    high = 2**63 if until is None else round(until.timestamp() * 1e6)
    kept = sorted((ts, seq) for seq, ts, _ in rows if low <= ts < high)
    return [seq for _, seq in (reversed(kept) if newest_first else kept)]


def _paged(store: SqliteStore, **query) -> list[int]:
    seqs, cursor = [], None
    while True:
        page = store.query_events(EventQuery(limit=7, cursor=cursor, **query))
        seqs += [item.seq for item in page.items]
        if page.next_cursor is None:
            return seqs
        cursor = page.next_cursor


@pytest.mark.parametrize("newest_first", [False, True])
@pytest.mark.parametrize(
    "since, until",
    [
        (None, None),
        (at(hours=20), None),
        (None, at(hours=300)),
        (at(hours=47.5), at(hours=120)),
        (at(hours=99), at(hours=1)),
    ],
)
def test_an_actors_events_are_paged_in_time_order_across_days(tmp_path, settings, since, until, newest_first):
    with SqliteStore(tmp_path / "a.db") as store:
        events = _events(settings)
        store.write(events[:90])
        store.write(events[90:])
        for actor in ACTORS[:3]:
            got = _paged(store, actor_id=actor, since=since, until=until, newest_first=newest_first)
            assert got == _expected(store, actor, since, until, newest_first)
        assert _paged(store, actor_id="nobody", since=since, until=until, newest_first=newest_first) == []


@pytest.mark.parametrize("newest_first", [False, True])
def test_an_actor_query_reads_the_day_led_index_in_order_without_sorting(tmp_path, settings, newest_first):
    with SqliteStore(tmp_path / "a.db") as store:
        store.write(_events(settings, count=20))
        statements: list[str] = []
        store._db.set_trace_callback(statements.append)
        store.query_events(EventQuery(actor_id=ACTORS[1], action="read", since=at(), newest_first=newest_first))
        store._db.set_trace_callback(None)
        (query,) = [s for s in statements if s.lstrip().startswith("SELECT e.seq")]
        plan = " | ".join(row[-1] for row in store._db.execute("EXPLAIN QUERY PLAN " + query))
        assert "INDEX events_actor_day (<expr>=? AND actor_id=? AND ts>?)" in plan, plan
        assert "TEMP B-TREE" not in plan, plan  # a page of an actor with millions of events sorts nothing
        assert "SCAN e" not in plan and "SCAN events" not in plan, plan


def _index_pages(store: SqliteStore, index: str) -> dict[int, tuple]:
    rows = store._db.execute("SELECT pageno, ncell, unused FROM dbstat WHERE name = ?", (index,)).fetchall()
    return {pageno: rest for pageno, *rest in rows}


def test_a_batch_writes_into_its_own_days_part_of_the_actor_index_whatever_the_number_of_actors(tmp_path, settings):
    actors = [f"emp-{n:04d}" for n in range(200)]
    with SqliteStore(tmp_path / "a.db") as store:
        for day in range(10):  # history: every actor, a dozen accesses a day
            hours = [1 + n / 2 for n in range(12)]
            store.write(
                [f.incoming(settings, actor={"id": a}, at=at(days=day, hours=h)) for a in actors for h in hours]
            )
        before = _index_pages(store, "events_actor_day")
        store.write([f.incoming(settings, actor={"id": a}, at=at(days=10, hours=2)) for a in actors])
        after = _index_pages(store, "events_actor_day")
    touched = [page for page, shape in after.items() if before.get(page) != shape]
    # a day of 200 actors fills a few leaves, and only they (and their parent) change; keyed by actor
    # first, the batch would write into every one of the index's leaves (about 50 here)
    assert len(before) >= 40, len(before)
    assert len(touched) <= 6, (len(touched), len(before))


def _as_before_0008(path) -> None:
    with SqliteStore(path) as store:
        db = store._db
        db.execute("DROP INDEX events_actor_day")
        db.execute("CREATE INDEX events_actor_ts ON events(actor_id, ts)")
        db.execute("DELETE FROM schema_migrations WHERE name = '0008-actor-day-index'")


def test_a_store_indexed_by_actor_first_moves_to_the_day_led_index_with_the_same_answers(tmp_path, settings):
    path = tmp_path / "a.db"
    with SqliteStore(path) as store:
        store.write(_events(settings, count=60))
        expected = {actor: _paged(store, actor_id=actor, newest_first=True) for actor in ACTORS}
    _as_before_0008(path)
    with SqliteStore(path) as store:
        assert store.migrations[-1] == "0008-actor-day-index"
        indexes = {name for (name,) in store._db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert "events_actor_day" in indexes and "events_actor_ts" not in indexes
        assert {actor: _paged(store, actor_id=actor, newest_first=True) for actor in ACTORS} == expected
        later = f.incoming(settings, actor={"id": ACTORS[2]}, at=at(days=40) + timedelta(minutes=1))
        store.write([later])
        assert store.query_events(EventQuery(actor_id=ACTORS[2], newest_first=True, limit=1)).items[0].seq == 63


def test_a_reader_refuses_a_store_not_yet_upgraded_and_reads_it_once_a_writer_has(tmp_path, settings):
    path = tmp_path / "a.db"
    with SqliteStore(path) as store:
        store.write(_events(settings, count=10))
    _as_before_0008(path)
    # read as it is, an actor's page would scan the whole store once per day it holds
    with pytest.raises(StoreNeedsUpgrade, match="0008-actor-day-index"):
        SqliteStore(path, readonly=True)
    SqliteStore(path).close()  # any writer upgrades it at start
    with SqliteStore(path, readonly=True) as reader:
        assert reader.stats().events == 12
        assert _paged(reader, actor_id=ACTORS[0], newest_first=False) == _expected(reader, ACTORS[0], None, None, False)


def test_the_command_line_says_what_to_do_with_a_store_not_yet_upgraded(tmp_path, settings):
    data = tmp_path / "data"
    with SqliteStore(data / settings.store.sqlite.filename) as store:
        store.write(_events(settings, count=3))
    _as_before_0008(data / settings.store.sqlite.filename)
    done = subprocess.run(
        [sys.executable, "-m", "accesswatch.cli", "alerts", "--data-dir", str(data)],
        capture_output=True,
        timeout=300,
    )
    assert done.returncode == 1 and b"Traceback" not in done.stderr, done.stderr
    assert b"needs upgrading (0008-actor-day-index)" in done.stderr and b"accesswatch run" in done.stderr
