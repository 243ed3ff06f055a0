"""The embedded store against the shared store contract, plus what only SQLite has."""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from models.dashboard import FoldProgress
from store.base import AlertQuery, EventQuery, EventTotal
from store.sqlite import SqliteStore, customer_token
from store.sqlite_schema import MIGRATIONS
from tests import factories as f
from tests.store_contract import StoreContract, _incident


class TestSqliteStore(StoreContract):
    @pytest.fixture
    def store(self, sqlite_store):
        return sqlite_store


def test_an_actor_s_exact_activity_counts_the_events_not_folded_yet_once(sqlite_store, settings, monkeypatch):
    # a dashboard's first look at a store just replayed: the roll-ups hold part of the events, or none
    import store.sqlite_dashboard as module

    monkeypatch.setattr(module, "FOLD_ON_READ", 0)  # no reading folds: the fold is behind, as long as it takes
    crew = {"kind": "employee", "role": "sales", "department": "sales"}

    def event(hours: float, actor: str = "emp-a", **more):
        return f.incoming(settings, at=f.at(hours=hours), actor={"id": actor, **crew}, **more)

    sqlite_store.write([event(0, record_count=5), event(0.5, record_count=7), event(0, "emp-b", record_count=3)])
    sqlite_store.fold()
    # written after the last fold: into an hour the roll-ups hold already, and into hours they do not
    sqlite_store.write(
        [
            event(0.75, action="export", record_count=100),
            event(0.9, record_count=9, outcome="denied"),
            event(5, record_count=30_000),
            event(5, "emp-b", record_count=1),
        ]
    )
    assert sqlite_store.fold_progress() == FoldProgress(events=7, folded=3)
    span = (f.at(hours=0), f.at(hours=6))
    short = sqlite_store.activity(*span, actor_id="emp-a")
    assert [(h.hour, h.records) for h in short] == [(f.at(hours=0), 12)]  # the 30,000 not there yet
    exact = sqlite_store.exact_activity("emp-a", *span, at_most=3)
    assert [(h.hour, h.events, h.records, h.egress_records, h.denied) for h in exact or []] == [
        (f.at(hours=0), 4, 112, 100, 1),  # the refused 9 records not read
        (f.at(hours=5), 1, 30_000, 0, 0),
    ]
    assert sqlite_store.exact_activity("emp-a", *span, at_most=2) is None  # three of its events wait
    assert sqlite_store.exact_activity("emp-a", f.at(hours=1), f.at(hours=2), at_most=0) == []
    sqlite_store.fold()
    assert sqlite_store.fold_progress() == FoldProgress(events=7, folded=7)
    assert sqlite_store.activity(*span, actor_id="emp-a") == exact
    assert sqlite_store.exact_activity("emp-a", *span, at_most=0) == exact  # nothing waits: the roll-ups alone


def test_opening_again_applies_no_migration_twice(tmp_path, settings):
    path = tmp_path / "a.db"
    with SqliteStore(path) as store:
        store.write([f.incoming(settings)])
        assert store.migrations == [name for name, _ in MIGRATIONS]
    with SqliteStore(path) as store:
        assert store.migrations == [name for name, _ in MIGRATIONS]
        assert store.stats().events == 1


def test_wal_lets_a_reader_read_while_a_writer_holds_a_transaction(tmp_path, settings):
    path = tmp_path / "a.db"
    with SqliteStore(path) as writer:
        writer.write([f.incoming(settings)])
        raw = sqlite3.connect(path, isolation_level=None)
        raw.execute("BEGIN IMMEDIATE")
        raw.execute("DELETE FROM events")  # uncommitted
        with SqliteStore(path, readonly=True) as reader:
            assert reader.stats().events == 1
        raw.execute("ROLLBACK")
        raw.close()


def test_a_hash_collision_still_stores_both_events(sqlite_store, settings, monkeypatch):
    f.keyed_by(monkeypatch, lambda event_id: 7)  # every id collides
    first, second = f.incoming(settings), f.incoming(settings)
    assert len(sqlite_store.write([first]).stored) == 1
    result = sqlite_store.write([second])
    assert [i.event.event_id for i in result.stored] == [second.event.event_id]
    again = sqlite_store.write([first, second])
    assert again.stored == [] and again.duplicates == 2
    # an id is found whether it holds its key or was stored without one
    for incoming in (first, second):
        page = sqlite_store.query_events(EventQuery(event_id=incoming.event.event_id))
        assert [item.event.event_id for item in page.items] == [incoming.event.event_id]


def test_a_field_search_is_led_by_the_class_postings_when_the_class_is_given(sqlite_store):
    # the plan, not the answer (the contract checks that): a store of millions must not read every body
    def plan(query: EventQuery) -> list[str]:
        sql, params = sqlite_store._events_sql(query, sqlite_store._candidate_seqs(query))
        rows = sqlite_store._db.execute(f"EXPLAIN QUERY PLAN {sql}", (*params, 100))
        # the outer query's own steps (a body's check is a subquery of its own, run per row)
        return [detail for _, parent, _, detail in rows if parent == 0 and not detail.startswith("CORRELATED")]

    since = datetime(2026, 10, 1, tzinfo=UTC)
    # the class's postings give its seqs a chunk at a time, in the page's order (store.class_postings);
    # each chunk is read by seq
    narrowed = EventQuery(field="passport_number", data_class="government_id", since=since)
    sql, params = sqlite_store._events_sql(narrowed, [1, 2, 3])
    steps = sqlite_store._db.execute(f"EXPLAIN QUERY PLAN {sql}", (*params, 100)).fetchall()
    assert steps[0][3] == "SEARCH e USING INTEGER PRIMARY KEY (rowid=?)"
    assert plan(EventQuery(field="passport_number", since=since)) == ["SEARCH e USING INDEX events_ts (ts>?)"]
    by_id = plan(EventQuery(event_id="evt-1", field="passport_number", data_class="government_id"))
    assert by_id[0] == "SEARCH e USING INTEGER PRIMARY KEY (rowid=?)"


def test_customer_tokens_are_single_words_for_any_id():
    customers = ("c-1", "C-1", "a b", 'x"y', "客户-7", "")
    for customer in customers:
        token = customer_token(customer)
        assert token.isascii() and token.isalnum()
    assert len({customer_token(customer) for customer in customers}) == len(customers)


def test_the_replay_writer_leaves_checkpoints_to_a_thread_and_loses_nothing(tmp_path, settings, monkeypatch):
    import threading
    import time

    import store.sqlite as module

    monkeypatch.setattr(module, "WAL_CHECKPOINT_BYTES", 64 * 1024)  # a small log, so that it fills at once
    path = tmp_path / "a.db"
    with SqliteStore(path) as store:
        own = store._db.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        writer = store.open_writer()
        try:
            assert writer._checkpointer is not None and store._checkpointer is None
            pages = [db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] for db in (store._db, writer._db)]
            # the connections' own checkpoints are a fallback, past a larger log
            assert pages == [module.BACKGROUND_CHECKPOINT_SLACK * own] * 2
            for _ in range(20):
                writer.write([f.incoming(settings) for _ in range(50)])
            deadline = time.monotonic() + 300  # liveness, not speed: it must happen at all
            while writer._checkpointer.checkpoints == 0:
                assert time.monotonic() < deadline, "no checkpoint was done in the background"
                time.sleep(0.05)
            assert path.stat().st_size > 20 * 50 * 400  # the events are in the file itself, not only in the log
        finally:
            writer.close()
        assert not any(thread.name == "wal-checkpointer" for thread in threading.enumerate())
        assert store.stats().events == 1000
    with SqliteStore(path, readonly=True) as reader:
        assert reader.stats().events == 1000


def test_latest_incidents_of_more_actors_than_a_compound_select_holds(sqlite_store):
    # one UNION ALL term an actor, in statements of at most the connection's SQLITE_LIMIT_COMPOUND_SELECT terms
    actors = [f"emp-{n:04d}" for n in range(450)]
    sqlite_store.upsert_alerts([], [_incident(incident_id=f"inc-{a}", actor_id=a) for a in actors[::2]])
    sqlite_store._db.setlimit(sqlite3.SQLITE_LIMIT_COMPOUND_SELECT, 150)
    found = sqlite_store.latest_incidents(actors)
    assert sorted(found) == actors[::2]
    assert all(found[actor].incident_id == f"inc-{actor}" for actor in found)


def test_an_auditor_query_refuses_a_time_without_an_offset():
    # a naive time would be read in the zone of whichever machine runs the query
    with pytest.raises(ValidationError, match="timezone"):
        EventQuery(since=datetime(2026, 3, 1, 9, 0))
    assert EventQuery(until=datetime(2026, 3, 1, 9, 0, tzinfo=UTC)).until is not None


def test_the_alerts_start_column_left_stale_by_earlier_versions_is_made_again_from_the_body(tmp_path):
    # before migration 0010 a revision that started earlier changed the body but not the column
    path = tmp_path / "a.db"
    grown = f.alert(window_start=f.at(hours=1), window_end=f.at(hours=5), revision=2)
    other = f.alert(window_start=f.at(hours=2), window_end=f.at(hours=3))
    with SqliteStore(path) as store:
        store.upsert_alerts([grown, other])
        stale = f.at(hours=4).strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # its first revision's start, after other's
        store._db.execute("UPDATE alerts SET window_start = ? WHERE alert_id = ?", (stale, grown.alert_id))
        store._db.execute("DELETE FROM schema_migrations WHERE name = '0010-alerts-window-start'")
    with SqliteStore(path) as store:
        assert store.migrations[-1] == "0010-alerts-window-start"
        assert [a.alert_id for a in store.query_alerts(AlertQuery())] == [grown.alert_id, other.alert_id]
        columns = dict(store._db.execute("SELECT alert_id, window_start FROM alerts"))
    assert columns == {
        grown.alert_id: grown.window_start.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        other.alert_id: other.window_start.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }


def test_a_count_reads_no_event_and_stops_at_its_budget(sqlite_store, settings, monkeypatch):
    import store.sqlite as module

    sqlite_store.write(
        [f.incoming(settings, at=f.at(hours=m / 60), outcome="denied" if m == 0 else "success") for m in range(3000)]
    )
    monkeypatch.setattr(sqlite_store, "query_events", None)  # counted in SQL: not a page read
    denied = EventQuery(outcome="denied")
    assert sqlite_store.count_events(denied, at_most=1000) == EventTotal(1)
    # the one denied event is the oldest: counting it scans all 3,000 events, past a budget of 1,000 steps
    monkeypatch.setattr(module, "COUNT_STEPS", 1)
    assert sqlite_store.count_events(denied, at_most=1000) == EventTotal(0, more=True)
    assert sqlite_store.count_events(EventQuery(), at_most=10) == EventTotal(10, more=True)  # found at once
    monkeypatch.undo()
    assert len(sqlite_store.query_events(denied).items) == 1  # the connection is as it was: no handler left
    sqlite_store.write([f.incoming(settings, at=f.at(hours=80), outcome="denied")])
    assert sqlite_store.count_events(denied, at_most=1000) == EventTotal(2)


# -- file modes: the store holds customer ids in clear ---------------------------------------------------------
@pytest.fixture
def umask_022():
    before = os.umask(0o022)
    yield
    os.umask(before)


def _mode(path) -> int:
    return path.stat().st_mode & 0o777


def test_a_data_dir_and_store_made_here_are_their_owners_only(tmp_path, umask_022, settings):
    path = tmp_path / "data" / "accesswatch.db"
    with SqliteStore(path) as store:
        store.write([f.incoming(settings)])
        wal, shm = path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")
        assert (_mode(path.parent), _mode(path), _mode(wal), _mode(shm)) == (0o700, 0o600, 0o600, 0o600)


def test_a_data_dir_and_store_the_operator_made_keep_their_modes(tmp_path, umask_022):
    data = tmp_path / "data"
    data.mkdir(mode=0o750)
    SqliteStore(data / "accesswatch.db").close()
    (data / "accesswatch.db").chmod(0o640)  # a group that reads it, say the dashboard's
    SqliteStore(data / "accesswatch.db").close()
    assert (_mode(data), _mode(data / "accesswatch.db")) == (0o750, 0o640)


def test_a_store_every_local_user_can_read_is_warned_of_once(tmp_path, umask_022, caplog):
    from accesswatch import app
    from configs.loader import load_settings

    settings = load_settings(env={"ACCESSWATCH_DATA_DIR": str(tmp_path / "data")})
    with app.open_store(settings):
        pass
    assert not [r for r in caplog.records if "readable by every local user" in r.getMessage()]
    (tmp_path / "data" / "accesswatch.db").chmod(0o644)
    for _ in range(2):
        with app.open_store(settings):
            pass
    warned = [r.getMessage() for r in caplog.records if "readable by every local user" in r.getMessage()]
    assert len(warned) == 1 and "(mode 644)" in warned[0] and "chmod 600" in warned[0]
