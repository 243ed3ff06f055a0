"""Which events touched a customer: an inverted index written in segments, one per write.

Until migration 0006 the store kept customer ids in an FTS5 table.  At 5.8
ids an event that cost the store writer about 15 µs of the 38 it spends on
an event (schema variants timed over 300,000 simulated events), the largest
single part of the replay's critical path.  Here a write adds, for each of
``BUCKETS`` buckets of customer-id hashes, one row holding the sorted
(hash, seq offset) pairs of its events: a batch of 10,000 events is at most
128 rows whatever its number of ids, built with numpy in about 3 µs an event.

A query for one customer reads only its bucket's rows (1/128 of the
postings) and binary-searches each for the hash.  The hash has 32 bits, so
the store re-checks the id in every event found (``SqliteStore.query_events``);
that re-check also makes postings of events deleted since harmless.

A live source writes a few events at a time, which would leave many tiny
rows to read per query.  Rows start as pending; once the pending rows and a
new write span ``MERGE_EVENTS`` events they become one merged row per bucket
(one level of an LSM tree: at 10 M events a query reads 1,000 small rows).
A replay's batches are that large already and go straight in merged.
"""

from __future__ import annotations

import array
import itertools
import sqlite3
import zlib
from collections.abc import Sequence
from operator import length_hint

import numpy as np

from store.sqlite_bulk import insert_all

BUCKETS = 128  # part of the schema: a different number needs a migration that rebuilds the table
_BUCKET_BITS = BUCKETS.bit_length() - 1  # a bucket is the hash's low bits (``_rows``)
assert BUCKETS == 1 << _BUCKET_BITS, "a power of two"
MERGE_EVENTS = 10_000
_PAIR = np.dtype([("hash", "<u4"), ("offset", "<u4")])  # offset: seq - the row's first_seq
_INSERT = "INSERT INTO customer_postings (bucket, first_seq, last_seq, merged, postings)"  # ``insert_all``


def customer_hash(customer_id: str) -> int:
    """The 32-bit hash a customer id is indexed under (CRC-32 of its UTF-8: the same in every process)."""
    return zlib.crc32(customer_id.encode())


def index_customers(db: sqlite3.Connection, first_seq: int, customer_ids: Sequence[Sequence[str] | None]) -> None:
    """Index the customer ids of events ``first_seq``, ``first_seq + 1``, ... (``None``: an event without any)."""
    if not customer_ids:
        return
    last_seq = first_seq + len(customer_ids) - 1
    # the pending rows' blobs are read only to merge them: a live source writes often, a few events a time
    (oldest,) = db.execute("SELECT min(first_seq) FROM customer_postings WHERE merged = 0").fetchone()
    start = first_seq if oldest is None else oldest
    if last_seq - start + 1 < MERGE_EVENTS:
        insert_all(db, _INSERT, _rows(first_seq, last_seq, _pairs(customer_ids), merged=False))
        return
    pending = db.execute("SELECT id, first_seq, postings FROM customer_postings WHERE merged = 0").fetchall()
    parts = [_pairs(customer_ids, first_seq - start)]
    parts += [_rebased(np.frombuffer(blob, _PAIR), row_first - start) for _, row_first, blob in pending]
    db.executemany("DELETE FROM customer_postings WHERE id = ?", [(row_id,) for row_id, _, _ in pending])
    insert_all(db, _INSERT, _rows(start, last_seq, np.concatenate(parts), merged=True))


def seqs_of(db: sqlite3.Connection, customer_id: str) -> list[int]:
    """The seqs of the events indexed under this customer's hash, ascending: a superset, to be re-checked."""
    wanted = customer_hash(customer_id)
    found: list[np.ndarray] = []
    for first_seq, blob in db.execute(
        "SELECT first_seq, postings FROM customer_postings WHERE bucket = ?", (wanted % BUCKETS,)
    ):
        pairs = stored_pairs(blob)
        low, high = np.searchsorted(pairs["hash"], [wanted, wanted + 1])
        if high > low:
            found.append(pairs["offset"][low:high].astype(np.int64) + first_seq)
    return np.unique(np.concatenate(found)).tolist() if found else []


def drop_purged(db: sqlite3.Connection, first_seq: int, last_seq: int) -> None:
    """Delete the rows about seqs ``first_seq..last_seq`` that no longer cover any stored event (retention)."""
    db.execute(
        "DELETE FROM customer_postings WHERE last_seq >= ? AND first_seq <= ?"
        " AND NOT EXISTS (SELECT 1 FROM events e WHERE e.seq BETWEEN first_seq AND last_seq)",
        (first_seq, last_seq),
    )


def hashes(customer_ids: Sequence[str]) -> np.ndarray:
    """``customer_hash`` of each id, as uint32 (``verify`` recomputes the index with it too)."""
    crc32, encode = zlib.crc32, str.encode  # map over C functions: this runs for every id stored
    # through array.array, which takes each int in C: about 90 instructions an id fewer than np.fromiter
    return np.frombuffer(array.array("I", map(crc32, map(encode, customer_ids))), np.uint32)


def stored_pairs(blob: bytes) -> np.ndarray:
    """The (hash, offset) pairs of a stored row's ``postings`` (ValueError if they are not whole pairs)."""
    return np.frombuffer(blob, _PAIR)


def _pairs(customer_ids: Sequence[Sequence[str] | None], offset: int = 0) -> np.ndarray:
    """The (hash, offset) pairs of consecutive events, unsorted; the first event at ``offset``."""
    # in C, no Python loop over the events: length_hint(None) is 0
    counts = list(map(length_hint, customer_ids))
    flat = list(itertools.chain.from_iterable(filter(None, customer_ids)))
    pairs = np.empty(len(flat), _PAIR)
    pairs["hash"] = hashes(flat)
    pairs["offset"] = np.repeat(np.arange(offset, offset + len(counts), dtype=np.uint32), counts)
    return pairs


def _rebased(pairs: np.ndarray, shift: int) -> np.ndarray:
    moved = pairs.copy()
    moved["offset"] += np.uint32(shift)
    return moved


def _rows(first_seq: int, last_seq: int, pairs: np.ndarray, merged: bool) -> list[tuple]:
    """One row per bucket that has pairs: sorted by hash, then offset, each pair once."""
    if last_seq - first_seq >= 1 << 32:  # pragma: no cover - 4 billion events in one write or merge
        raise ValueError("a postings row cannot span 2^32 seqs")
    # One sort of 64-bit keys, not lexsort's three passes (3,300 instructions an event less, counted by
    # bench.instructions over 20,000 events): the bucket is the hash's low bits, so the
    # (bucket, hash) order is the order of the hash rotated right by those bits; the offset below.
    hash64 = pairs["hash"].astype(np.uint64)
    rotated = (hash64 >> _BUCKET_BITS) | ((hash64 << (32 - _BUCKET_BITS)) & 0xFFFFFFFF)
    keys = np.sort((rotated << 32) | pairs["offset"])
    if len(keys) > 1:  # an id given twice in one event is indexed once (np.unique hashes: it costs more)
        keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]
    rotated = keys >> 32
    pairs = np.empty(len(keys), _PAIR)
    pairs["hash"] = ((rotated << _BUCKET_BITS) | (rotated >> (32 - _BUCKET_BITS))) & 0xFFFFFFFF
    pairs["offset"] = keys & 0xFFFFFFFF
    buckets = rotated >> (32 - _BUCKET_BITS)
    bounds = np.searchsorted(buckets, np.arange(BUCKETS + 1))
    return [
        (bucket, first_seq, last_seq, int(merged), pairs[bounds[bucket] : bounds[bucket + 1]].tobytes())
        for bucket in range(BUCKETS)
        if bounds[bucket + 1] > bounds[bucket]
    ]


class PostingsOf:
    """SQL aggregate ``customer_postings_of(customer_id, seq)``: the postings blob of one bucket's ids
    (migration 0006 builds the table from the stored bodies with it, grouped as ``_rows`` groups them)."""

    def __init__(self) -> None:
        self.hashes: list[int] = []
        self.seqs: list[int] = []

    def step(self, customer_id: str, seq: int) -> None:
        self.hashes.append(customer_hash(customer_id))
        self.seqs.append(seq)

    def finalize(self) -> bytes:
        first = min(self.seqs)
        pairs = np.empty(len(self.seqs), _PAIR)
        pairs["hash"] = self.hashes
        pairs["offset"] = np.asarray(self.seqs, np.int64) - first
        ((*_, blob),) = _rows(first, max(self.seqs), pairs, merged=True)
        return blob


def register(db: sqlite3.Connection) -> None:
    """The SQL functions migration 0006 uses, on a store connection."""
    db.create_function("customer_bucket", 1, lambda customer: customer_hash(customer) % BUCKETS, deterministic=True)
    # typeshed types aggregates as one int argument returning int; sqlite3 takes any arity and SQLite values
    db.create_aggregate("customer_postings_of", 2, PostingsOf)  # type: ignore[arg-type]
