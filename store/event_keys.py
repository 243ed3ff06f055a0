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

A key outlives its event.  Retention deletes the event but keeps its key,
marked with ``purged_check`` (since migration 0011), so a replay of the
original log finds the event already seen and stores nothing again: erased
data stays erased (storage limitation).  The mark is a second 64-bit hash of
the id, independent of the key: the key alone cannot tell the purged id come
back from another id whose key collides with it (one in 2^64 per pair), and
the row to compare with is gone.  Both are hashes of the event id alone, an
opaque identifier of the log record; no field of the event enters them.  The
cost: keys are never deleted, about 28 bytes each once marked, where the
event's row took about 850 (a 465,281-event simulated log, purged whole).
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence

import numpy as np
import orjson

MERGE_KEYS = 200_000

# the batch's keys as the outer loop (json_each), each probed in a table's primary key
_KNOWN = "SELECT k.id_key FROM json_each(?1) AS j CROSS JOIN {table} AS k ON k.id_key = j.value"


def id_check(event_id: str) -> int:
    """The second hash of an id that marks its key purged: not the key's (another personalisation of BLAKE2b)."""
    digest = hashlib.blake2b(event_id.encode(), digest_size=8, person=b"purged-id").digest()
    return int.from_bytes(digest, "little", signed=True)


def known(db: sqlite3.Connection, keys: Sequence[int] | np.ndarray) -> set[int]:
    """Which of these keys the store has."""
    if not len(keys):
        return set()
    # Probed in key order: consecutive probes then land on the same pages, still in the CPU's caches.  In a
    # replay of a million events, the same batches probed in their own order and sorted, alternately: 0.44
    # and 0.31 µs an event over the first 100,000, 1.99 and 0.91 over the last (the large level then holds
    # a million keys), 1.22 and 0.64 over the run.  The keys probed grow with the store; this cost with them.
    ordered = np.sort(np.asarray(keys, np.int64))
    listed = orjson.dumps(ordered, option=orjson.OPT_SERIALIZE_NUMPY).decode()
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


def purged_check(db: sqlite3.Connection, key: int) -> int | None:
    """The ``id_check`` of the id whose event retention deleted under this key; None if none was."""
    row = db.execute(
        "SELECT purged_check FROM event_keys_recent WHERE id_key = ?1"
        " UNION ALL SELECT purged_check FROM event_keys WHERE id_key = ?1",
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
    db.execute(
        "INSERT INTO event_keys (id_key, seq, purged_check)"
        " SELECT id_key, seq, purged_check FROM event_keys_recent ORDER BY id_key"
    )
    db.execute("DELETE FROM event_keys_recent")


def keep_purged(db: sqlite3.Connection, deleted: Sequence[tuple[int | None, str]]) -> None:
    """Mark the keys of events retention deleted, (key, event id) each, as purged: they stay, and refuse a replay.

    An event stored without a key (its key was another id's: a hash collision, one in 2^64 per pair of
    ids) has nothing to mark: a replay stores it again.
    """
    marks = [(id_check(event_id), key) for key, event_id in deleted if key is not None]
    for table in ("event_keys_recent", "event_keys"):
        db.executemany(f"UPDATE {table} SET purged_check = ? WHERE id_key = ?", marks)
