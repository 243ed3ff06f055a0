"""``verify``'s check of the search indexes against the stored rows the chain covers.

The chain covers the ``events`` rows, but the auditors' searches
(``SqliteStore.query_events``) find events through two indexes beside them:
by data class through ``class_postings`` (times and seqs, ``store.class_postings``),
by customer through ``customer_postings`` (32-bit hashes of the ids,
``store.customer_postings``).  Deleting index entries hides their events from
those searches while the rows themselves still verify; so ``verify`` rebuilds
what each index must hold from the rows (their ``classes`` column and the
``customer_ids`` of their body, both under the leaf) and names every event
the indexes disagree about, a chunk of seqs at a time.

- ``class_postings``: a stored event has an entry per class, at its own time
  (a search bounded in time reads the postings' times).  A row a search
  cannot read right (not sorted by time, entries outside its seqs or its
  time span) is reported, and its entries count as absent.  Entries of seqs
  no longer stored are ignored: searches read the events, so they find
  nothing, and they are what a purge or an event removed behind the
  product's back leaves (``verify`` names the latter).
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
import orjson

from store.class_postings import positions_by_class, stored_postings
from store.customer_postings import BUCKETS, hashes, stored_pairs

_CHUNK = 10_000  # seqs compared at a time: memory holds one chunk's rows and postings
Decoded = TypeVar("Decoded")


@dataclass(frozen=True, slots=True)
class IndexProblem:
    group: str  # what is wrong, the same for every event it is wrong for: the listing is capped per group
    detail: str
    seq: int | None = None
    event_id: str | None = None


def check_indexes(db: sqlite3.Connection) -> Iterator[IndexProblem]:
    """Every disagreement between the rows and the two indexes (call inside verify's read snapshot)."""
    classes, postings = _ClassPostings(db), _Postings(db)
    low, high = db.execute("SELECT min(seq), max(seq) FROM events").fetchone()
    for start in range(low // _CHUNK * _CHUNK, high + 1, _CHUNK) if low is not None else ():
        rows = db.execute(
            "SELECT seq, event_id, ts, classes, body FROM events WHERE seq BETWEEN ? AND ? ORDER BY seq",
            (start, start + _CHUNK - 1),
        ).fetchall()
        if rows:
            yield from classes.compare(rows)
            yield from postings.compare(rows)
    yield from classes.malformed
    yield from postings.malformed


# -- class_postings ----------------------------------------------------------------------------------
class _ClassPostings:
    """The (class, seq, time) entries a search by class can find, compared with the rows' ``classes``."""

    def __init__(self, db: sqlite3.Connection) -> None:
        columns = "class, first_seq, last_seq, min_ts, max_ts, postings"
        self._rows = _RowWindow(db, "class_postings", columns, self._readable)
        self.malformed: list[IndexProblem] = []

    def compare(self, rows: list[tuple]) -> Iterator[IndexProblem]:
        """The stored events of ``rows`` (seq order) that the postings miss, or find where they should not."""
        seqs = np.fromiter((row[0] for row in rows), np.int64, len(rows))
        times = np.fromiter((row[2] for row in rows), np.int64, len(rows))
        expected = {
            name: (seqs[at], times[at]) for name, at in positions_by_class([row[3] for row in rows], _names).items()
        }
        found = self._found(int(seqs[0]), int(seqs[-1]), seqs)
        missing: dict[int, list[str]] = {}
        extra: dict[int, list[tuple[str, bool]]] = {}
        time_of = dict(zip(seqs.tolist(), times.tolist(), strict=True))
        for name in sorted(expected.keys() | found.keys()):
            wanted, held = expected.get(name, _NO_ENTRIES), found.get(name, _NO_ENTRIES)
            if all(np.array_equal(w, h) for w, h in zip(wanted, held, strict=True)):
                continue
            wanted_set, held_set = _entries(*wanted), _entries(*held)
            for seq, _ in wanted_set - held_set:
                missing.setdefault(seq, []).append(name)
            for seq, ts in held_set - wanted_set:
                extra.setdefault(seq, []).append((name, ts != time_of[seq]))
        ids = {row[0]: row[1] for row in rows}
        for seq in sorted(extra):
            yield _extra_classes(seq, ids[seq], extra[seq])
        for seq in sorted(missing):
            names = sorted(missing[seq])
            yield IndexProblem(
                "events missing from class_postings",
                f"missing from class_postings: {', '.join(names)}: a search by"
                f" {'that class' if len(names) == 1 else 'those classes'} does not find it",
                seq,
                ids[seq],
            )

    def _found(self, first: int, last: int, seqs: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """The (seqs, times) the rows hold for stored seqs ``seqs``, by class: sorted by seq, each once."""
        parts: dict[str, list[np.ndarray]] = {}
        for name, keys in self._rows.covering(first, last):
            parts.setdefault(name, []).append(keys)
        found = {}
        for name, each in parts.items():
            keys = np.concatenate(each)
            keys = _unique_rows(keys[np.isin(keys[:, 0], seqs)])
            if len(keys):
                found[name] = (keys[:, 0], keys[:, 1])
        return found

    def _readable(self, row: tuple) -> tuple[str, np.ndarray]:
        """A row's (seq, time) entries as a search reads them; what it cannot read right is reported and dropped."""
        row_id, name, first, last, min_ts, max_ts, blob = row
        where = f"class_postings row {row_id} ({name}, seqs {first} to {last})"
        try:
            times, offsets = stored_postings(blob)
        except ValueError:
            return name, self._unreadable(where, "its postings are not whole (time, offset) entries")
        if len(times) > 1:
            later, tie = times[1:] - times[:-1], offsets[1:] - offsets[:-1]
            if bool(((later < 0) | ((later == 0) & (tie <= 0))).any()):
                return name, self._unreadable(where, "its postings are not sorted by time: searches miss some")
        readable = (offsets <= last - first) & (times >= min_ts) & (times <= max_ts)
        if not readable.all():
            self.malformed.append(
                IndexProblem(
                    "malformed class_postings rows",
                    f"{where}: {int((~readable).sum())} of its postings lie outside its seqs or times,"
                    " where searches do not look for them",
                )
            )
        return name, np.column_stack((offsets[readable] + first, times[readable]))

    def _unreadable(self, where: str, why: str) -> np.ndarray:
        self.malformed.append(IndexProblem("malformed class_postings rows", f"{where}: {why}"))
        return np.empty((0, 2), np.int64)


_NO_ENTRIES = (np.empty(0, np.int64), np.empty(0, np.int64))


def _entries(seqs: np.ndarray, times: np.ndarray) -> set[tuple[int, int]]:
    return set(zip(seqs.tolist(), times.tolist(), strict=True))


def _names(classes: str) -> set[str]:
    return {name for name in classes.split(",") if name}


def _extra_classes(seq: int, event_id: str, wrong: list[tuple[str, bool]]) -> IndexProblem:
    """An event the postings find under a class it lacks, or at another time than its own."""
    lacks = sorted(name for name, moved in wrong if not moved)
    moved = sorted(name for name, moved in wrong if moved)
    parts = [f"{', '.join(lacks)} (classes it does not have)"] if lacks else []
    parts += [f"{', '.join(moved)} at another time than its own"] if moved else []
    return IndexProblem(
        "events with extra entries in class_postings",
        f"extra in class_postings: {'; '.join(parts)}: a search by class finds it where it should not",
        seq,
        event_id,
    )


def _unique_rows(keys: np.ndarray) -> np.ndarray:
    """(seq, time) rows sorted by seq, then time, each once."""
    keys = keys[np.lexsort((keys[:, 1], keys[:, 0]))]
    return keys[np.concatenate(([True], (keys[1:] != keys[:-1]).any(axis=1)))] if len(keys) else keys


# -- the rows of a postings table, a chunk of seqs at a time -------------------------------------------
class _RowWindow(Generic[Decoded]):
    """The rows of a postings table that cover a chunk of seqs, each read and decoded once as chunks advance."""

    def __init__(self, db: sqlite3.Connection, table: str, columns: str, decode: Callable[[tuple], Decoded]) -> None:
        self._db, self._table, self._columns, self._decode = db, table, columns, decode
        # where each row is, without its blob: a few hundred rows a million events
        meta = np.array(db.execute(f"SELECT id, first_seq, last_seq FROM {table}").fetchall(), np.int64)
        meta = meta.reshape(-1, 3)
        meta = meta[np.argsort(meta[:, 1], kind="stable")]
        self._ids, self._firsts, self._lasts = meta[:, 0], meta[:, 1], meta[:, 2]
        self._span = int((self._lasts - self._firsts).max()) if len(meta) else 0
        self._decoded: dict[int, Decoded] = {}  # row id -> the row, decoded

    def covering(self, first: int, last: int) -> list[Decoded]:
        """The rows that cover any of seqs ``first..last`` (chunks come in ascending order)."""
        low = np.searchsorted(self._firsts, first - self._span, "left")
        high = np.searchsorted(self._firsts, last, "right")
        rows = [int(self._ids[i]) for i in range(low, high) if self._lasts[i] >= first]
        wanted = set(rows)
        for row_id in [row_id for row_id in self._decoded if row_id not in wanted]:
            del self._decoded[row_id]  # a row behind the chunks read: its seqs are done
        self._load(sorted(wanted - self._decoded.keys()))
        return [self._decoded[row_id] for row_id in rows]

    def _load(self, row_ids: list[int]) -> None:
        for start in range(0, len(row_ids), 500):
            part = row_ids[start : start + 500]
            for row in self._db.execute(
                f"SELECT id, {self._columns} FROM {self._table} WHERE id IN ({','.join('?' * len(part))})", part
            ):
                self._decoded[row[0]] = self._decode(row)


# -- customer_postings ----------------------------------------------------------------------------------
class _Postings:
    """The postings a search can find, read a chunk of seqs at a time (each row decoded once)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        # each row's readable pairs as keys (seq << 32 | hash); about 128 rows a 10,000 events
        self._rows = _RowWindow(db, "customer_postings", "bucket, first_seq, last_seq, postings", self._readable)
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
        parts = self._rows.covering(first, last)
        keys = np.concatenate(parts) if parts else np.empty(0, np.uint64)
        return _unique(keys[np.isin((keys >> np.uint64(32)).astype(np.int64), seqs)])

    def _readable(self, row: tuple) -> np.ndarray:
        """A row's pairs as a search reads them; what it cannot read right is reported and dropped."""
        row_id, bucket, first, last, blob = row
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
