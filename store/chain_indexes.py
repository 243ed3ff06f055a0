"""``verify``'s check of the search indexes against the stored rows the chain covers.

The chain covers the ``events`` rows, but the auditors' searches
(``SqliteStore.query_events``) find events through two indexes beside them:
by data class through ``event_classes`` (class, ts, seq), by customer through
``customer_postings`` (32-bit hashes of the ids, ``store.customer_postings``).
Deleting an index row hides its event from those searches while the row
itself still verifies; so ``verify`` rebuilds what each index must hold from
the rows (their ``classes`` column and the ``customer_ids`` of their body,
both under the leaf) and names every event the indexes disagree about.

- ``event_classes``: a stored event has one row per class, at its own time
  (a search bounded in time reads the index's ``ts``).  One SQL join counts
  the rows that are right; only when the counts differ are the events
  looked for, chunk by chunk.  Rows of seqs no longer stored are ignored:
  searches join the events, so they find nothing, and they are what an
  event removed behind the product's back leaves (``verify`` names that).
- ``customer_postings``: the (hash, seq) pairs a search can find, compared
  with those of the stored bodies a chunk of seqs at a time.  A row a search
  cannot read right (not sorted by hash, ids filed under another bucket,
  seqs outside its range) is reported, and its pairs count as absent.
  Pairs of seqs no longer stored are expected after a purge (a row that
  still covers a kept event stays whole: searches re-check each event).

The dashboard's ``dash_*`` roll-ups are aggregates, not checked here.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import orjson

from store.customer_postings import BUCKETS, hashes, stored_pairs

_CHUNK = 10_000  # seqs compared at a time: memory holds one chunk's rows and postings
_RIGHT_CLASS_ROWS = (
    "FROM event_classes k JOIN events e ON e.seq = k.seq AND e.ts = k.ts"
    " AND instr(',' || e.classes || ',', ',' || k.class || ',') > 0"
)


@dataclass(frozen=True, slots=True)
class IndexProblem:
    group: str  # what is wrong, the same for every event it is wrong for: the listing is capped per group
    detail: str
    seq: int | None = None
    event_id: str | None = None


def check_indexes(db: sqlite3.Connection) -> Iterator[IndexProblem]:
    """Every disagreement between the rows and the two indexes (call inside verify's read snapshot)."""
    classes, postings = _ClassesExpected(), _Postings(db)
    low, high = db.execute("SELECT min(seq), max(seq) FROM events").fetchone()
    for start in range(low // _CHUNK * _CHUNK, high + 1, _CHUNK) if low is not None else ():
        rows = db.execute(
            "SELECT seq, event_id, ts, classes, body FROM events WHERE seq BETWEEN ? AND ? ORDER BY seq",
            (start, start + _CHUNK - 1),
        ).fetchall()
        if rows:
            classes.add(start // _CHUNK, rows)
            yield from postings.compare(rows)
    yield from postings.malformed
    yield from _compare_classes(db, classes)


# -- event_classes -----------------------------------------------------------------------------------
@dataclass(slots=True)
class _ClassesExpected:
    """How many ``event_classes`` rows the stored events need, in all and per chunk of seqs."""

    total: int = 0
    per_chunk: Counter[int] = field(default_factory=Counter)

    def add(self, chunk: int, rows: list[tuple]) -> None:
        """The rows of one chunk of seqs (``seq // _CHUNK``)."""
        # counted per combination of classes, of which there are a few dozen: this runs for every event
        size = sum(len(_names(classes)) * count for classes, count in Counter(row[3] for row in rows).items())
        self.total += size
        self.per_chunk[chunk] += size


def _names(classes: str) -> set[str]:
    return {name for name in classes.split(",") if name}


def _compare_classes(db: sqlite3.Connection, expected: _ClassesExpected) -> Iterator[IndexProblem]:
    (right,) = db.execute(f"SELECT count(*) {_RIGHT_CLASS_ROWS}").fetchone()
    (rows,) = db.execute("SELECT count(*) FROM event_classes").fetchone()
    if rows > right:  # wrong rows, or rows of seqs no longer stored (ignored: see the module doc)
        yield from _wrong_class_rows(db)
    if expected.total > right:
        yield from _missing_class_rows(db, expected)


def _wrong_class_rows(db: sqlite3.Connection) -> Iterator[IndexProblem]:
    """Rows that make a search find a stored event under a class it lacks, or at another time."""
    cursor = db.execute(
        "SELECT k.seq, e.event_id, k.class, k.ts != e.ts FROM event_classes k JOIN events e ON e.seq = k.seq"
        " WHERE k.ts != e.ts OR instr(',' || e.classes || ',', ',' || k.class || ',') = 0 ORDER BY k.seq, k.class"
    )
    for (seq, event_id), wrong in _by_event(cursor):
        lacks = sorted(name for name, moved in wrong if not moved)
        moved = sorted(name for name, moved in wrong if moved)
        parts = [f"{', '.join(lacks)} (classes it does not have)"] if lacks else []
        parts += [f"{', '.join(moved)} at another time than its own"] if moved else []
        yield IndexProblem(
            "events with extra rows in event_classes",
            f"extra in event_classes: {'; '.join(parts)}: a search by class finds it where it should not",
            seq,
            event_id,
        )


def _missing_class_rows(db: sqlite3.Connection, expected: _ClassesExpected) -> Iterator[IndexProblem]:
    """The events a search by class misses: looked for only in the chunks whose count falls short."""
    right = dict(db.execute(f"SELECT k.seq / ?, count(*) {_RIGHT_CLASS_ROWS} GROUP BY 1", (_CHUNK,)).fetchall())
    for chunk in sorted(expected.per_chunk):
        if expected.per_chunk[chunk] <= right.get(chunk, 0):
            continue
        rows = db.execute(
            "SELECT seq, event_id, ts, classes FROM events WHERE seq BETWEEN ? AND ? ORDER BY seq",
            (chunk * _CHUNK, chunk * _CHUNK + _CHUNK - 1),
        ).fetchall()
        for seq, event_id, ts, classes in rows:
            missing = sorted(
                name
                for name in _names(classes)
                if db.execute(
                    "SELECT 1 FROM event_classes WHERE class = ? AND ts = ? AND seq = ?", (name, ts, seq)
                ).fetchone()
                is None
            )
            if missing:
                yield IndexProblem(
                    "events missing from event_classes",
                    f"missing from event_classes: {', '.join(missing)}: a search by"
                    f" {'that class' if len(missing) == 1 else 'those classes'} does not find it",
                    seq,
                    event_id,
                )


def _by_event(cursor: sqlite3.Cursor) -> Iterator[tuple[tuple[int, str], list[tuple[str, int]]]]:
    """Rows (seq, event id, a, b) ordered by seq, grouped per event: ((seq, event id), [(a, b), ...])."""
    key: tuple[int, str] | None = None
    items: list[tuple[str, int]] = []
    for seq, event_id, a, b in cursor:
        if key is not None and key[0] != seq:
            yield key, items
            items = []
        key = (seq, event_id)
        items.append((a, b))
    if key is not None:
        yield key, items


# -- customer_postings ----------------------------------------------------------------------------------
class _Postings:
    """The postings a search can find, read a chunk of seqs at a time (each row decoded once)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        # where each row is, without its blob: about 128 rows a 10,000 events
        meta = np.array(db.execute("SELECT id, first_seq, last_seq FROM customer_postings").fetchall(), np.int64)
        meta = meta.reshape(-1, 3)
        meta = meta[np.argsort(meta[:, 1], kind="stable")]
        self._ids, self._firsts, self._lasts = meta[:, 0], meta[:, 1], meta[:, 2]
        self._span = int((self._lasts - self._firsts).max()) if len(meta) else 0
        self._keys: dict[int, np.ndarray] = {}  # row id -> its readable pairs as keys (seq << 32 | hash)
        self.malformed: list[IndexProblem] = []

    def compare(self, rows: list[tuple]) -> Iterator[IndexProblem]:
        """The stored events of ``rows`` (seq order) whose customer ids the postings miss or add to."""
        seqs = np.fromiter((row[0] for row in rows), np.int64, len(rows))
        expected = _expected_keys(rows, seqs)
        found = self._found(int(seqs[0]), int(seqs[-1]), seqs)
        if np.array_equal(expected, found):
            return
        ids = {row[0]: row[1] for row in rows}
        wanted = Counter((expected >> np.uint64(32)).tolist())
        missing = Counter((np.setdiff1d(expected, found, assume_unique=True) >> np.uint64(32)).tolist())
        for seq, count in sorted(missing.items()):
            yield IndexProblem(
                "events missing from customer_postings",
                f"missing from customer_postings: {count} of its {wanted[seq]} customer ids:"
                " a search by those customers does not find it",
                seq,
                ids[seq],
            )
        extra = Counter((np.setdiff1d(found, expected, assume_unique=True) >> np.uint64(32)).tolist())
        for seq, count in sorted(extra.items()):
            yield IndexProblem(
                "events with extra postings in customer_postings",
                f"extra in customer_postings: {count} customer id hashes it does not have"
                " (searches re-check the ids, so they find nothing more)",
                seq,
                ids[seq],
            )

    def _found(self, first: int, last: int, seqs: np.ndarray) -> np.ndarray:
        """The keys of seqs ``seqs`` (within first..last) that the postings rows hold, sorted, once each."""
        low = np.searchsorted(self._firsts, first - self._span, "left")
        high = np.searchsorted(self._firsts, last, "right")
        rows = [i for i in range(low, high) if self._lasts[i] >= first]
        wanted = {int(self._ids[i]) for i in rows}
        for row_id in [row_id for row_id in self._keys if row_id not in wanted]:
            del self._keys[row_id]  # a row behind the chunks read: its seqs are done
        self._load(sorted(wanted - self._keys.keys()))
        parts = [self._keys[int(self._ids[i])] for i in rows]
        keys = np.concatenate(parts) if parts else np.empty(0, np.uint64)
        return _unique(keys[np.isin((keys >> np.uint64(32)).astype(np.int64), seqs)])

    def _load(self, row_ids: list[int]) -> None:
        for start in range(0, len(row_ids), 500):
            part = row_ids[start : start + 500]
            for row_id, bucket, first, last, blob in self._db.execute(
                "SELECT id, bucket, first_seq, last_seq, postings FROM customer_postings"
                f" WHERE id IN ({','.join('?' * len(part))})",
                part,
            ):
                self._keys[row_id] = self._readable(row_id, bucket, first, last, blob)

    def _readable(self, row_id: int, bucket: int, first: int, last: int, blob: bytes) -> np.ndarray:
        """A row's pairs as a search reads them; what it cannot read right is reported and dropped."""
        where = f"customer_postings row {row_id} (bucket {bucket}, seqs {first} to {last})"
        try:
            pairs = stored_pairs(blob)
        except ValueError:
            return self._unreadable(where, "its postings are not whole (hash, offset) pairs")
        if len(pairs) > 1 and bool((pairs["hash"][1:] < pairs["hash"][:-1]).any()):
            return self._unreadable(where, "its postings are not sorted by hash: searches miss some of its ids")
        readable = (pairs["hash"] % np.uint32(BUCKETS) == bucket) & (pairs["offset"] <= last - first)
        if not readable.all():
            self.malformed.append(
                IndexProblem(
                    "malformed customer_postings rows",
                    f"{where}: {int((~readable).sum())} of its postings belong to another bucket or lie outside"
                    " its seqs, where searches do not look for them",
                )
            )
            pairs = pairs[readable]
        return ((pairs["offset"].astype(np.uint64) + np.uint64(first)) << np.uint64(32)) | pairs["hash"]

    def _unreadable(self, where: str, why: str) -> np.ndarray:
        self.malformed.append(IndexProblem("malformed customer_postings rows", f"{where}: {why}"))
        return np.empty(0, np.uint64)


def _expected_keys(rows: list[tuple], seqs: np.ndarray) -> np.ndarray:
    """The keys (seq << 32 | hash) the stored bodies call for, sorted, once each."""
    loads = orjson.loads
    try:  # the bodies as the product stores them: a list of strings, or none; this runs for every event
        ids = [loads(row[4]).get("customer_ids") or () for row in rows]
        if not set(map(type, ids)) <= {list, tuple}:
            raise TypeError("customer_ids is not a list")
        flat = [customer for each in ids for customer in each]
        found = hashes(flat)  # TypeError for an id that is not a string
    except (orjson.JSONDecodeError, AttributeError, TypeError):  # a changed row (verify names it): one by one
        ids = [_customer_ids(row[4]) for row in rows]
        flat = [customer for each in ids for customer in each]
        found = hashes(flat)
    counts = np.fromiter(map(len, ids), np.int64, len(ids))
    owners = np.repeat(seqs, counts).astype(np.uint64)
    return _unique((owners << np.uint64(32)) | found)


def _unique(keys: np.ndarray) -> np.ndarray:
    """Sorted, each once (``np.unique`` hashes: slower than sorting these mostly sorted keys)."""
    keys = np.sort(keys)
    return keys[np.concatenate(([True], keys[1:] != keys[:-1]))] if len(keys) else keys


def _customer_ids(body: str) -> list[str]:
    """The customer ids of a stored body, as ``query_events`` re-checks them (JSON strings in customer_ids)."""
    try:
        ids = orjson.loads(body).get("customer_ids")
    except (orjson.JSONDecodeError, AttributeError):  # not an object: a changed row, which verify names
        return []
    return [customer for customer in ids if isinstance(customer, str)] if isinstance(ids, list) else []
