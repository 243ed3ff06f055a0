"""Stores of other versions: an older one is upgraded only by a command that writes, a newer one by none.

An operator upgrading looks first (`alerts`, `pages`, `purge --dry-run`) and
only then lets a writer migrate; one who went back to an older version must
be stopped before it writes to tables the newer one moved (tester T6: an
old version "went back" rewrote stored alerts, then crashed on a dropped
table).
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from contextlib import closing

import pytest

from store.base import IncidentQuery, StoreNeedsUpgrade, StoreTooNew
from store.sqlite import SqliteStore
from tests import factories as f


def _store(settings, tmp_path):
    data = tmp_path / "data"
    path = data / settings.store.sqlite.filename
    with SqliteStore(path) as store:
        store.write([f.incoming(settings, at=f.at(hours=h)) for h in range(3)])
    return data, path


def _migrations(path) -> list[str]:
    with SqliteStore(path, readonly=True) as store:
        return store.migrations


def _cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "accesswatch.cli", *args], capture_output=True, timeout=300)


def _as_if_upgraded_by_a_newer_version(path) -> None:
    with SqliteStore(path) as store:
        store._db.execute("INSERT INTO schema_migrations VALUES ('0099-from-the-future', '2027-01-01T00:00:00Z')")


def _as_if_written_before_0011(path) -> None:
    with SqliteStore(path) as store:
        for table in ("event_keys", "event_keys_recent"):  # what 0011 added, taken away
            store._db.execute(f"ALTER TABLE {table} DROP COLUMN purged_check")
        store._db.execute("DELETE FROM schema_migrations WHERE name = '0011-purged-keys'")


def test_a_store_a_newer_version_upgraded_is_refused_by_readers_and_writers_alike(settings, tmp_path):
    _, path = _store(settings, tmp_path)
    _as_if_upgraded_by_a_newer_version(path)
    before = path.read_bytes()
    for readonly in (True, False):
        with pytest.raises(StoreTooNew, match=r"upgraded by a newer accesswatch \(0099-from-the-future\)"):
            SqliteStore(path, readonly=readonly)
    assert path.read_bytes() == before


def test_the_commands_refuse_a_newer_store_in_one_line_and_store_nothing(settings, tmp_path):
    data, path = _store(settings, tmp_path)
    _as_if_upgraded_by_a_newer_version(path)
    log = tmp_path / "more.jsonl"
    log.write_bytes(f.incoming(settings, at=f.at(hours=9)).raw + b"\n")
    for args in (("alerts",), ("replay", str(log))):
        done = _cli(*args, "--data-dir", str(data))
        assert done.returncode == 1 and b"Traceback" not in done.stderr, done.stderr
        [line] = done.stderr.decode().splitlines()
        assert "upgraded by a newer accesswatch (0099-from-the-future)" in line and "restore the copy" in line
    with closing(sqlite3.connect(path)) as db:  # read past the version check: the replay stored nothing
        assert db.execute("SELECT count(*) FROM events").fetchone()[0] == 3


@pytest.mark.parametrize("command", [("pages",), ("purge", "--dry-run")])
def test_a_listing_refuses_an_older_store_rather_than_upgrading_it(settings, tmp_path, command):
    data, path = _store(settings, tmp_path)
    _as_if_written_before_0011(path)
    done = _cli(*command, "--data-dir", str(data))
    assert done.returncode == 1 and b"needs upgrading (0011-purged-keys)" in done.stderr, done.stderr
    with pytest.raises(StoreNeedsUpgrade):  # still as it was: looking changed nothing
        SqliteStore(path, readonly=True)


def test_a_writer_says_it_upgrades_the_store(settings, tmp_path):
    data, path = _store(settings, tmp_path)
    _as_if_written_before_0011(path)
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    done = _cli("replay", str(empty), "--data-dir", str(data))
    assert done.returncode == 0, done.stderr
    assert f"upgrading the store at {path}: 0011-purged-keys" in done.stderr.decode()
    assert _migrations(path)[-1] == "0011-purged-keys"
    again = _cli("replay", str(empty), "--data-dir", str(data))
    assert "upgrading" not in again.stderr.decode()  # once


def _as_if_written_before_0013(path) -> None:
    with SqliteStore(path) as store:
        db = store._db
        for index in ("incidents_severity_flagged", "incidents_flagged"):  # what 0013 added, taken away
            db.execute(f"DROP INDEX {index}")
        db.execute("ALTER TABLE incidents DROP COLUMN flagged_end")
        db.execute("UPDATE incidents SET body = json_remove(body, '$.flagged_end')")
        db.execute("CREATE INDEX incidents_severity ON incidents(severity_rank, window_start)")
        db.execute("DELETE FROM schema_migrations WHERE name = '0013-incidents-flagged-end'")


def test_the_incidents_of_an_older_store_are_given_when_their_flagged_activity_ended(settings, tmp_path):
    # a day's incident flagged 16:00-17:00 (its alert's spans), and others flagged 09:00-10:00 and 18:00-19:00: the
    # queue sorted the day's at its 00:00 start, below the morning's; by its window's end, above the evening's
    _, path = _store(settings, tmp_path)
    alerts = f.incidents_flagged_at_three_hours()
    with SqliteStore(path) as store:
        store.upsert_alerts(list(alerts.values()), [f.incident_of(a, name, 60.0) for name, a in alerts.items()])
    _as_if_written_before_0013(path)
    with SqliteStore(path) as store:
        assert store.migrations[-1] == "0013-incidents-flagged-end"
        queue = store.query_incidents(IncidentQuery())
    assert [i.incident_id for i in queue] == ["inc-evening", "inc-day", "inc-morning"]
    assert [i.flagged_end for i in queue] == [f.at(hours=19), f.at(hours=17), f.at(hours=10)]


def test_the_class_roll_up_of_an_older_store_is_split_by_actor_kind(settings, tmp_path):
    # folded before the split was kept: made again from the events folded, each set of classes split
    _, path = _store(settings, tmp_path)
    partner = {"id": "ptn-1", "kind": "partner", "organization": "blue-sky"}
    zone = settings.organisation.tz
    with SqliteStore(path) as store:
        store.write(
            [
                f.incoming(
                    settings, at=f.at(hours=4), actor=partner, fields=["passport_number", "name"], record_count=7
                ),
                f.incoming(settings, at=f.at(hours=5), fields=["passport_number"], record_count=3),
            ]
        )
        before = store.class_days(f.T0, f.at(days=1), zone, by_kind=True)  # folds them all
        store._db.execute("DROP TABLE dash_class_kind_hours")  # what 0014 made, taken away
        store._db.execute("CREATE TABLE dash_class_hours (hour, class, events, records)")
        store._db.execute("DELETE FROM schema_migrations WHERE name = '0014-dash-class-kind-hours'")
    with SqliteStore(path) as store:
        assert store.migrations[-1] == "0014-dash-class-kind-hours"
        after = store.class_days(f.T0, f.at(days=1), zone, by_kind=True)
    assert after == before
    assert {(d.data_class, d.actor_kind, d.records) for d in after if d.actor_kind == "partner"} == {
        ("government_id", "partner", 7),
        ("identity", "partner", 7),
    }


def _refused_and_failed(settings) -> list:
    """emp-a's day: a refused read at 09:30 (purged below), reads, a refused export and a failed read later."""
    a, b = {"id": "emp-a", "kind": "employee", "role": "sales"}, {"id": "emp-b", "kind": "employee", "role": "sales"}
    passports = {"fields": ["passport_number", "name"]}
    return [
        f.incoming(settings, at=f.at(hours=0.5), actor=a, outcome="denied", record_count=20, **passports),
        f.incoming(settings, at=f.at(hours=4), actor=a, record_count=10, **passports),
        f.incoming(
            settings, at=f.at(hours=4.5), actor=a, action="export", outcome="denied", record_count=500, **passports
        ),
        f.incoming(settings, at=f.at(hours=5), actor=a, outcome="error", record_count=7, **passports),
        f.incoming(settings, at=f.at(hours=5), actor=b, record_count=3, **passports),
    ]


def _after_the_purge(store: SqliteStore, zone) -> tuple:
    """The figures of the hours the purge left whole (from 11:00 local): everyone's, emp-a's, its peers', by class."""
    span = (f.at(hours=2), f.at(days=1))
    return (
        store.activity(*span),
        store.activity(*span, actor_id="emp-a"),
        store.peer_activity("emp-b", *span),
        store.class_days(*span, zone, by_kind=True),
    )


def test_the_roll_ups_of_an_older_store_count_served_records_only_and_mark_the_hours_purged_before(
    settings, tmp_path, monkeypatch
):
    """Folded before 0017, a refused or failed access's records were counted as read (a refused export's as
    exported): the stored events' are taken out; the purged ones' cannot be, and their hours say so."""
    import store.sqlite_dashboard as rollups
    from store.retention import RetentionPolicy

    zone = settings.organisation.tz
    events = _refused_and_failed(settings)
    policy = RetentionPolicy(f.at(hours=2), f.at(hours=-1))
    with SqliteStore(tmp_path / "now.db") as store:  # the same events, folded as this version folds them
        store.write(events)
        store.purge(policy)
        served = _after_the_purge(store, zone)
    path = tmp_path / "older.db"
    with SqliteStore(path) as store:
        monkeypatch.setattr(rollups, "SERVED_RECORDS", "record_count")  # as folded before: every event's records
        store.write(events)
        assert store.purge(policy).events == 1  # the refusal at 09:30, folded first, then deleted
        monkeypatch.undo()
        old = store.activity(f.T0, f.at(days=1), actor_id="emp-a")
        assert [(h.records, h.egress_records) for h in old] == [(20, 0), (510, 500), (7, 0)]
        store._db.execute("DELETE FROM schema_migrations WHERE name = '0017-dash-served-records'")
    with SqliteStore(path) as store:
        assert store.migrations[-1] == "0017-dash-served-records"
        upgraded = _after_the_purge(store, zone)
        mine = store.activity(f.T0, f.at(days=1), actor_id="emp-a")
        profile = store.actor_profile("emp-a", f.T0, f.at(days=1))
    assert upgraded == served  # every table, as this version folds the same events
    # the purged refusal's 20 records stay in its hour, marked: nothing says any more which events they were
    assert [(h.hour, h.records, h.egress_records, h.denied, h.records_include_refused) for h in mine] == [
        (f.at(hours=0), 20, 0, 1, True),
        (f.at(hours=4), 10, 0, 1, False),
        (f.at(hours=5), 0, 0, 0, False),
    ]
    assert profile is not None and {(u.name, u.records) for u in profile.actions} == {("read", 30), ("export", 0)}
