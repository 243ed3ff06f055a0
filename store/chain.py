"""The hash chain over stored events: an audit trail that cannot be edited without trace.

Every write transaction that stores new events appends one *entry* to the
``chain`` table, inside the same transaction: the entry lists, for each event
it stored (in store order), its event time, its event id and a *leaf*, the
SHA-256 of the whole stored row (every column, the original bytes included).
The entry's digest covers its header, the SHA-256 of that list and the
previous entry's digest, so changing any stored event, the list, or an
earlier entry changes every digest after it.

``verify`` recomputes it all and names each event changed (its row no longer
hashes to its leaf), removed (a leaf with no row) or inserted (a row no
entry lists), and each entry whose own record was altered.  The chain
proves nothing against someone who rewrites the whole chain consistently,
so the head is anchored outside: ``accesswatch export-digest`` signs it with
the auditors' key (``accesswatch.integrity``), and ``verify-digest`` checks
that the store still has that head.

Retention (``store.retention``) deletes old events on purpose: it appends a
``purge`` entry recording its horizon, so an event missing from an entry
written before the purge and stamped before its horizon is reported as
purged, not removed; and once every event of an entry is gone its list is
dropped (the entry's digest keeps the list's digest, so the chain still
verifies).

SQLite-specific on purpose (a mixin of ``SqliteStore``): the leaves are the
rows just written, hashed within the writing transaction on the writing
connection, so what is chained is exactly what is stored and no state is
shared with another connection.
"""

from __future__ import annotations

import bisect
import hashlib
import sqlite3
import struct
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Literal

import orjson

# The stored row, as the leaf hashes it: every column of ``events``.
ROW_COLUMNS = (
    "seq, id_key, event_id, ts, actor_id, actor_kind, action, outcome, system, resource_type,"
    " resource_id, record_count, classes, source_ip, body"
)
GENESIS = bytes(32)  # the "previous digest" of the first entry
_LEAF = struct.Struct(">q32sH")  # event time (µs), leaf hash, length of the event id that follows
_VERIFY_CHUNK = 5000


def leaf_hash(row: tuple) -> bytes:
    """SHA-256 of a stored row; a JSON array is an unambiguous encoding of the columns."""
    return hashlib.sha256(orjson.dumps(row)).digest()


def entry_digest(prev: bytes, header: list, leaves_digest: bytes) -> bytes:
    return hashlib.sha256(prev + orjson.dumps(header) + leaves_digest).digest()


@dataclass(frozen=True, slots=True)
class Leaf:
    seq: int
    ts: int  # event time, µs since the epoch
    digest: bytes
    event_id: str


@dataclass(frozen=True, slots=True)
class Entry:
    n: int
    kind: Literal["events", "purge"]
    first_seq: int
    last_seq: int
    events: int  # events: how many it stored; purge: how many it deleted
    min_ts: int | None
    max_ts: int | None  # purge: the horizon (events stamped before it may be gone)
    written_at: str
    leaves: bytes | None  # None once every event of the entry is purged
    leaves_digest: bytes
    prev: bytes
    digest: bytes

    def header(self) -> list:
        return [
            self.n,
            self.kind,
            self.first_seq,
            self.last_seq,
            self.events,
            self.min_ts,
            self.max_ts,
            self.written_at,
        ]

    def expected_digest(self) -> bytes:
        return entry_digest(self.prev, self.header(), self.leaves_digest)

    def iter_leaves(self) -> Iterator[Leaf]:
        data, offset, seq = self.leaves or b"", 0, self.first_seq
        while offset < len(data):
            ts, digest, size = _LEAF.unpack_from(data, offset)
            offset += _LEAF.size
            yield Leaf(seq, ts, digest, data[offset : offset + size].decode())
            offset += size
            seq += 1


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing ``verify`` found: an event changed, removed or inserted, or an entry altered."""

    kind: Literal["changed", "removed", "inserted", "chain"]
    detail: str
    seq: int | None = None
    event_id: str | None = None
    entry: int | None = None


@dataclass(slots=True)
class ChainReport:
    entries: int = 0
    events_checked: int = 0
    purged: int = 0  # events listed in the chain and gone through retention
    unchained: int = 0  # events stored before the chain was kept (an older version): not verifiable
    head: bytes | None = None
    head_entry: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems


@dataclass(frozen=True, slots=True)
class ChainHead:
    entry: int
    last_seq: int
    digest: bytes


@dataclass(frozen=True, slots=True)
class PeriodDigest:
    """The events stamped in [since, until) that the chain had up to ``up_to_seq``, as one digest."""

    events: int
    digest: bytes


class ChainedStore(ABC):
    """What a store that keeps the chain offers the ``verify``, ``export-digest`` and ``purge`` commands."""

    @abstractmethod
    def verify_chain(self) -> ChainReport: ...

    @abstractmethod
    def chain_head(self, entry: int | None = None) -> ChainHead | None:
        """The latest entry's head (or that of entry ``entry``); None for an empty chain."""

    @abstractmethod
    def period_digest(self, since: datetime, until: datetime, up_to_seq: int) -> PeriodDigest: ...


# -- writing ------------------------------------------------------------------------------------
def append_events(db: sqlite3.Connection, first_seq: int, rows: Sequence[tuple]) -> None:
    """Chain the rows just stored at seqs ``first_seq`` on; call inside the transaction that stored them.

    Each row is as it was inserted: the columns of ``ROW_COLUMNS`` but ``seq``.  Hashing them as
    they are in hand, not read back, hashes what is stored: each value was bound with its column's
    own type (int to INTEGER, str to TEXT, or NULL), so SQLite keeps it unconverted and it reads
    back as itself (``verify`` reads it back and would say so).
    """
    pack, parts = _LEAF.pack, []
    for seq, row in enumerate(rows, first_seq):
        event_id = row[1].encode()
        parts.append(pack(row[2], leaf_hash((seq, *row)), len(event_id)))
        parts.append(event_id)
    times = [row[2] for row in rows]
    leaves = b"".join(parts)
    _append(db, "events", first_seq, first_seq + len(rows) - 1, len(rows), min(times), max(times), leaves)


def append_purge(db: sqlite3.Connection, horizon_ts: int, deleted: int, first_seq: int, last_seq: int) -> None:
    """Record a retention purge of events stamped before ``horizon_ts`` (inside its transaction)."""
    _append(db, "purge", first_seq, last_seq, deleted, None, horizon_ts, None)


def _append(
    db: sqlite3.Connection,
    kind: str,
    first_seq: int,
    last_seq: int,
    events: int,
    min_ts: int | None,
    max_ts: int | None,
    leaves: bytes | None,
) -> None:
    # the previous digest is read here, in the caller's transaction: writers are serialised by SQLite
    last = db.execute("SELECT n, digest FROM chain ORDER BY n DESC LIMIT 1").fetchone()
    n, prev = (last[0] + 1, bytes(last[1])) if last else (1, GENESIS)
    written_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    leaves_digest = hashlib.sha256(leaves or b"").digest()
    header = [n, kind, first_seq, last_seq, events, min_ts, max_ts, written_at]
    db.execute(
        "INSERT INTO chain (n, kind, first_seq, last_seq, events, min_ts, max_ts, written_at, leaves,"
        " leaves_digest, prev, digest) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        (*header, leaves, leaves_digest, prev, entry_digest(prev, header, leaves_digest)),
    )


def drop_purged_leaves(db: sqlite3.Connection) -> int:
    """Forget the event lists of entries none of whose events is left (the digests keep what they were)."""
    cursor = db.execute(
        "UPDATE chain SET leaves = NULL WHERE kind = 'events' AND leaves IS NOT NULL"
        " AND max_ts < (SELECT max(p.max_ts) FROM chain p WHERE p.kind = 'purge' AND p.n > chain.n)"
        " AND NOT EXISTS (SELECT 1 FROM events e WHERE e.seq BETWEEN chain.first_seq AND chain.last_seq)"
    )
    return cursor.rowcount


# -- reading --------------------------------------------------------------------------------------
def _entry(row: tuple, leaves: bytes | None) -> Entry:
    """An ``Entry`` from a chain row selected in column order (leaves read by the caller)."""
    n, kind, first_seq, last_seq, events, min_ts, max_ts, written_at = row[:8]
    leaves_digest, prev, digest = bytes(row[9]), bytes(row[10]), bytes(row[11])
    return Entry(n, kind, first_seq, last_seq, events, min_ts, max_ts, written_at, leaves, leaves_digest, prev, digest)


def entries(db: sqlite3.Connection) -> Iterator[Entry]:
    cursor = db.execute(
        "SELECT n, kind, first_seq, last_seq, events, min_ts, max_ts, written_at, leaves, leaves_digest, prev, digest"
        " FROM chain ORDER BY n"
    )
    for row in cursor:
        yield _entry(row, None if row[8] is None else bytes(row[8]))


def head(db: sqlite3.Connection, entry: int | None = None) -> ChainHead | None:
    if entry is None:
        row = db.execute("SELECT n, digest FROM chain ORDER BY n DESC LIMIT 1").fetchone()
    else:
        row = db.execute("SELECT n, digest FROM chain WHERE n = ?", (entry,)).fetchone()
    if row is None:
        return None
    last_seq = db.execute(
        "SELECT coalesce(max(last_seq), 0) FROM chain WHERE kind = 'events' AND n <= ?", (row[0],)
    ).fetchone()[0]
    return ChainHead(row[0], last_seq, bytes(row[1]))


def period_digest(db: sqlite3.Connection, since: int, until: int, up_to_seq: int) -> PeriodDigest:
    """SHA-256 over (seq, leaf) of the stored events stamped in [since, until) µs with seq <= up_to_seq."""
    digest, count = hashlib.sha256(), 0
    rows = db.execute(
        f"SELECT {ROW_COLUMNS} FROM events WHERE ts >= ? AND ts < ? AND seq <= ? ORDER BY seq",
        (since, until, up_to_seq),
    )
    for row in rows:
        digest.update(row[0].to_bytes(8, "big") + leaf_hash(row))
        count += 1
    return PeriodDigest(count, digest.digest())


# -- verifying ----------------------------------------------------------------------------------------
def verify(db: sqlite3.Connection) -> ChainReport:
    """Recompute the chain and compare every stored event with its leaf, in one read snapshot."""
    report = ChainReport()
    db.execute("BEGIN")  # one snapshot: a writer going on meanwhile does not look like tampering
    try:
        horizon_after = _purge_horizons(db)
        prev, expected_n, chained_to, first = GENESIS, 1, 0, True
        for entry in _headers(db):
            _check_link(entry, prev, expected_n, chained_to, report)
            prev, expected_n = entry.digest, entry.n + 1
            report.head, report.head_entry = entry.digest, entry.n
            if entry.kind != "events":
                continue
            if first:  # events older than the chain (stored before this version kept one)
                report.unchained = _count(db, 1, entry.first_seq - 1)
                first = False
            else:
                _report_inserted(db, chained_to + 1, entry.first_seq - 1, report)
            _check_entry(db, _with_leaves(db, entry), horizon_after(entry.n), report)
            chained_to = max(chained_to, entry.last_seq)
        if first:
            report.unchained = _count(db, 1, None)
        else:
            _report_inserted(db, chained_to + 1, None, report)
    finally:
        db.execute("COMMIT")
    return report


def _headers(db: sqlite3.Connection) -> Iterator[Entry]:
    """Entries without their (large) event lists, which are read one entry at a time."""
    cursor = db.execute(
        "SELECT n, kind, first_seq, last_seq, events, min_ts, max_ts, written_at, leaves IS NULL, leaves_digest,"
        " prev, digest FROM chain ORDER BY n"
    )
    for row in cursor:
        yield _entry(row, None if row[8] else b"")


def _with_leaves(db: sqlite3.Connection, entry: Entry) -> Entry:
    if entry.leaves is None:
        return entry
    (leaves,) = db.execute("SELECT leaves FROM chain WHERE n = ?", (entry.n,)).fetchone()
    return replace(entry, leaves=bytes(leaves))


def _check_link(entry: Entry, prev: bytes, expected_n: int, chained_to: int, report: ChainReport) -> None:
    report.entries += 1
    if entry.n != expected_n:
        report.problems.append(
            Problem("chain", f"entries {expected_n} to {entry.n - 1} are missing from the chain", entry=entry.n)
        )
    if entry.prev != prev:
        report.problems.append(
            Problem("chain", "the entry does not link to the digest of the entry before it", entry=entry.n)
        )
    if entry.expected_digest() != entry.digest:
        report.problems.append(
            Problem("chain", "the entry's record was altered: its digest does not match its contents", entry=entry.n)
        )
    if entry.kind == "events" and entry.first_seq <= chained_to:
        report.problems.append(
            Problem(
                "chain",
                f"the entry starts at seq {entry.first_seq}, inside earlier entries (up to {chained_to}):"
                " the latest events were deleted before it was written",
                entry=entry.n,
            )
        )


def _purge_horizons(db: sqlite3.Connection) -> Callable[[int], int | None]:
    """For an entry number: the latest horizon of the purges after it (events stamped before it may be gone)."""
    purges = db.execute("SELECT n, max_ts FROM chain WHERE kind = 'purge' ORDER BY n").fetchall()
    numbers = [n for n, _ in purges]
    suffix_max: list[int] = []
    latest = None
    for _, horizon in reversed(purges):
        latest = horizon if latest is None else max(latest, horizon)
        suffix_max.append(latest)
    suffix_max.reverse()

    def after(n: int) -> int | None:
        index = bisect.bisect_right(numbers, n)
        return suffix_max[index] if index < len(numbers) else None

    return after


def _check_entry(db: sqlite3.Connection, entry: Entry, horizon: int | None, report: ChainReport) -> None:
    if entry.leaves is None:
        # a dropped list is legitimate only once a later purge's horizon passed every event of the entry
        if horizon is None or entry.max_ts is None or entry.max_ts >= horizon:
            report.problems.append(
                Problem("chain", "the entry's list of events was removed, but no purge covers it", entry=entry.n)
            )
        else:
            report.purged += entry.events
        _report_inserted(db, entry.first_seq, entry.last_seq, report)
        return
    if hashlib.sha256(entry.leaves).digest() != entry.leaves_digest:
        report.problems.append(
            Problem("chain", "the entry's list of events was altered: its digest does not match", entry=entry.n)
        )
    leaves = {leaf.seq: leaf for leaf in entry.iter_leaves()}
    if len(leaves) != entry.events or max(leaves, default=entry.last_seq) != entry.last_seq:
        report.problems.append(
            Problem("chain", "the entry's list of events does not match its seq range", entry=entry.n)
        )
    for start in range(entry.first_seq, entry.last_seq + 1, _VERIFY_CHUNK):
        stop = min(start + _VERIFY_CHUNK - 1, entry.last_seq)
        rows = {
            row[0]: row
            for row in db.execute(f"SELECT {ROW_COLUMNS} FROM events WHERE seq BETWEEN ? AND ?", (start, stop))
        }
        for seq in range(start, stop + 1):
            _compare(rows.get(seq), leaves.get(seq), seq, entry.n, horizon, report)


def _compare(row: tuple | None, leaf: Leaf | None, seq: int, n: int, horizon: int | None, report: ChainReport) -> None:
    if leaf is None:
        if row is not None:
            report.problems.append(Problem("inserted", "a stored event no chain entry lists", seq, row[2], n))
    elif row is None:
        if horizon is not None and leaf.ts < horizon:
            report.purged += 1
        else:
            report.problems.append(
                Problem("removed", "the event is listed in the chain but no longer stored", seq, leaf.event_id, n)
            )
    else:
        report.events_checked += 1
        if leaf_hash(row) != leaf.digest:
            was = f" (it was event {leaf.event_id})" if row[2] != leaf.event_id else ""
            report.problems.append(
                Problem("changed", f"the stored row differs from what was stored{was}", seq, row[2], n)
            )


def _range(first: int, last: int | None) -> tuple[str, list[int]]:
    if last is None:
        return "seq >= ?", [first]
    return "seq BETWEEN ? AND ?", [first, last]


def _count(db: sqlite3.Connection, first: int, last: int | None) -> int:
    where, params = _range(first, last)
    return db.execute(f"SELECT count(*) FROM events WHERE {where}", params).fetchone()[0]


def _report_inserted(db: sqlite3.Connection, first: int, last: int | None, report: ChainReport) -> None:
    where, params = _range(first, last)
    for seq, event_id in db.execute(f"SELECT seq, event_id FROM events WHERE {where} ORDER BY seq", params):
        report.problems.append(Problem("inserted", "a stored event no chain entry lists", seq, event_id))


class SqliteChain(ChainedStore):
    """``ChainedStore`` on the embedded store's connection (a mixin of ``store.sqlite.SqliteStore``)."""

    _db: sqlite3.Connection

    def verify_chain(self) -> ChainReport:
        return verify(self._db)

    def chain_head(self, entry: int | None = None) -> ChainHead | None:
        return head(self._db, entry)

    def period_digest(self, since: datetime, until: datetime, up_to_seq: int) -> PeriodDigest:
        return period_digest(self._db, _micros(since), _micros(until), up_to_seq)


def _micros(moment: datetime) -> int:
    return round(moment.timestamp() * 1_000_000)
