"""The store's idempotency keys in two levels: recent keys, merged in bulk into the rest.

Every event has a 64-bit key (a hash of its id) that must be unique.  Until
migration 0007 a unique index on ``events.id_key`` held them.  Keys are
random, so each batch of 10,000 events wrote into almost every page of that
index, and the cost of a batch grew with the store: 4.5 µs an event at
100,000 events stored, 9.3 at 1 M, 13 at 2.8 M (standalone, 10,000-event
transactions), the write-ahead log growing with it.  A store kept for
months paid more for every event than the one before.

Here a batch's keys go into ``event_keys_recent``, which stays small (at most
``MERGE_KEYS`` rows), so a batch touches few pages whatever the store's size.
Once it is full it is merged into ``event_keys`` in one sorted pass and
emptied: each page of the large table is then written once per
``MERGE_KEYS`` events rather than once per batch.  A key is looked up in
both.  Both tables are ``WITHOUT ROWID`` with the key as primary key, so a
key is unique across the store: the merge would fail on a repeat.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence

import orjson

MERGE_KEYS = 200_000

# the batch's keys as the outer loop (json_each), each probed in a table's primary key
_KNOWN = "SELECT k.id_key FROM json_each(?1) AS j CROSS JOIN {table} AS k ON k.id_key = j.value"


def known(db: sqlite3.Connection, keys: Sequence[int]) -> set[int]:
    """Which of these keys the store has."""
    if not keys:
        return set()
    listed = orjson.dumps(keys).decode()
    return {
        key
        for table in ("event_keys_recent", "event_keys")
        for (key,) in db.execute(_KNOWN.format(table=table), (listed,))
    }


def seq_of(db: sqlite3.Connection, key: int) -> int | None:
    """The seq of the event stored under this key, if any."""
    row = db.execute(
        "SELECT seq FROM event_keys_recent WHERE id_key = ?1 UNION ALL SELECT seq FROM event_keys WHERE id_key = ?1",
        (key,),
    ).fetchone()
    return row[0] if row else None


def add_stored(db: sqlite3.Connection, first_seq: int, last_seq: int) -> None:
    """Record the keys of the events just stored at seqs ``first_seq..last_seq`` (a collided one has none).

    Read back from ``events`` in SQLite rather than bound from Python a pair at a time: the writer's
    per-event Python runs under the interpreter lock the parsing thread needs, SQLite's work does not.
    """
    db.execute(
        "INSERT INTO event_keys_recent (id_key, seq)"
        " SELECT id_key, seq FROM events WHERE seq BETWEEN ? AND ? AND id_key IS NOT NULL",
        (first_seq, last_seq),
    )
    if db.execute("SELECT count(*) FROM event_keys_recent").fetchone()[0] >= MERGE_KEYS:
        merge(db)


def merge(db: sqlite3.Connection) -> None:
    """Move the recent keys into the large table: in key order, so each of its pages is written once."""
    db.execute("INSERT INTO event_keys (id_key, seq) SELECT id_key, seq FROM event_keys_recent ORDER BY id_key")
    db.execute("DELETE FROM event_keys_recent")


def forget(db: sqlite3.Connection, keys: Iterable[int | None]) -> None:
    """Drop the keys of deleted events (retention)."""
    gone = [(key,) for key in keys if key is not None]
    for table in ("event_keys_recent", "event_keys"):
        db.executemany(f"DELETE FROM {table} WHERE id_key = ?", gone)
