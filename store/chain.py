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
or cuts its end (the latest entries and their events): so the head is
anchored outside: ``accesswatch export-digest`` signs it with
the auditors' key (``accesswatch.integrity``), and ``verify-digest`` checks
that the store still has that head.

Retention (``store.retention``) deletes old events on purpose: each purge
transaction appends a ``purge`` entry recording its horizon and the seqs it
deleted (runs of them, in the entry's ``leaves``; entries written before
format ``PURGE_SEQS_FORMAT`` recorded how many only).  ``verify`` reports an
event missing as purged only if a purge recorded deleting it, so an event a
purge kept (the evidence alerts cite) and deleted afterwards is removed;
for the older count-only entries it checks that the events missing where
they purged add up to what they recorded, and says by how many they do
not.  Once every event of an entry is gone its list is dropped (the
entry's digest keeps the list's digest, so the chain still verifies).

``verify`` also checks the search indexes beside the rows
(``store.chain_indexes``): an index row deleted hides an event from the
auditors' searches as surely as deleting the event.

SQLite-specific on purpose (a mixin of ``SqliteStore``): the leaves are the
rows just written, hashed within the writing transaction on the writing
connection, so what is chained is exactly what is stored and no state is
shared with another connection.
"""

from __future__ import annotations

import bisect
import hashlib
import heapq
import sqlite3
import struct
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Literal

import numpy as np
import orjson

from store.chain_indexes import check_indexes

# The stored row, as the leaf hashes it: every column of ``events``.
ROW_COLUMNS = (
    "seq, id_key, event_id, ts, actor_id, actor_kind, action, outcome, system, resource_type,"
    " resource_id, record_count, classes, source_ip, body"
)
GENESIS = bytes(32)  # the "previous digest" of the first entry
_LEAF = struct.Struct(">q32sH")  # event time (µs), leaf hash, length of the event id that follows
_VERIFY_CHUNK = 5000
LISTED = 100  # problems of one sort listed (index rows, suspects); past it one line counts the rest
PURGE_SEQS_FORMAT = 1  # the first byte of a purge entry's ``leaves``: the runs of seqs it deleted follow
_RUN = struct.Struct(">qq")  # a run of seqs a purge deleted: the first, how many


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


ProblemKind = Literal["changed", "removed", "inserted", "chain", "index"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing ``verify`` found: an event changed, removed or inserted, an entry altered, or an index wrong."""

    kind: ProblemKind
    detail: str
    seq: int | None = None
    event_id: str | None = None
    entry: int | None = None


@dataclass(slots=True)
class ChainReport:
    entries: int = 0
    events_checked: int = 0
    purged: int = 0  # events listed in the chain and gone through retention (a purge recorded deleting them)
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
    later: int = 0  # events stamped in the period and stored after ``up_to_seq``: not in the digest


@dataclass(slots=True)
class PeriodAccount:
    """A signed period as the store holds it now, counting the purges written after the signed entry.

    ``digest`` rebuilds the period's digest as it was signed: the rows stored now and, for the events
    purged since, their leaves, which the chain keeps until every event of their entry is gone.
    """

    stored: int = 0  # the period's events stored now (seq up to the signed one)
    purged: int = 0  # deleted by a purge after the signed entry, their leaves still listed
    purged_unlisted: int = 0  # deleted by such a purge with their whole entry, whose list went with them
    straddles: bool = False  # such an entry spans an end of the period: purged_unlisted is an upper bound
    changed: int = 0  # stored events of the period whose row no longer hashes to its leaf
    removed: int = 0  # listed events of the period that are gone and that no purge recorded deleting
    undecided: int = 0  # gone through a count-only purge that may have run before or after signing
    digest: bytes | None = None  # None: some purged events' leaves are gone, the digest cannot be rebuilt
    unpurged: list[str] = field(default_factory=list)  # count-only purges relied on that do not add up


class ChainedStore(ABC):
    """What a store that keeps the chain offers the ``verify``, ``export-digest`` and ``purge`` commands."""

    @abstractmethod
    def verify_chain(self) -> ChainReport: ...

    @abstractmethod
    def chain_head(self, entry: int | None = None) -> ChainHead | None:
        """The latest entry's head (or that of entry ``entry``); None for an empty chain."""

    @abstractmethod
    def period_digest(self, since: datetime, until: datetime, up_to_seq: int) -> PeriodDigest: ...

    @abstractmethod
    def account_period(self, since: datetime, until: datetime, entry: int, up_to_seq: int) -> PeriodAccount:
        """The period as signed at chain entry ``entry`` (position ``up_to_seq``), after the purges since."""


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


def append_purge(db: sqlite3.Connection, horizon_ts: int, seqs: Sequence[int]) -> None:
    """Record a retention purge of the events at ``seqs`` (ascending), stamped before ``horizon_ts``.

    Call inside the purge's transaction.  The entry lists the seqs, as runs: ``verify`` then tells an
    event this purge deleted from one deleted behind the product's back beside it (an event it kept).
    """
    record = bytes([PURGE_SEQS_FORMAT]) + b"".join(_RUN.pack(first, count) for first, count in _runs(seqs))
    _append(db, "purge", seqs[0], seqs[-1], len(seqs), None, horizon_ts, record)


def _runs(seqs: Iterable[int]) -> list[tuple[int, int]]:
    """Ascending seqs as runs of consecutive ones: (first, how many)."""
    runs: list[tuple[int, int]] = []
    for seq in seqs:
        if runs and runs[-1][0] + runs[-1][1] == seq:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((seq, 1))
    return runs


def purged_runs(leaves: bytes | None) -> list[tuple[int, int]] | None:
    """The runs (first seq, how many) a purge entry deleted; None for one that recorded a count only.

    The format is versioned by its first byte: entries before ``PURGE_SEQS_FORMAT`` have no list at all.
    """
    if leaves is None:
        return None
    if leaves[:1] != bytes([PURGE_SEQS_FORMAT]) or (len(leaves) - 1) % _RUN.size:
        raise ValueError("not a list of purged seqs this version reads")
    return [_RUN.unpack_from(leaves, offset) for offset in range(1, len(leaves), _RUN.size)]


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
    (later,) = db.execute(
        "SELECT count(*) FROM events WHERE ts >= ? AND ts < ? AND seq > ?", (since, until, up_to_seq)
    ).fetchone()
    return PeriodDigest(count, digest.digest(), later)


# -- verifying ----------------------------------------------------------------------------------------
def verify(db: sqlite3.Connection) -> ChainReport:
    """Recompute the chain, compare every stored event with its leaf and the indexes with the rows.

    All in one read snapshot: a writer going on meanwhile does not look like tampering.
    """
    report = ChainReport()
    db.execute("BEGIN")
    try:
        _Verification(db, report).run()
    finally:
        db.execute("COMMIT")
    return report


class _Verification:
    """One run of ``verify``: the entries in order, each entry's events a chunk at a time, then the indexes."""

    def __init__(self, db: sqlite3.Connection, report: ChainReport) -> None:
        self.db, self.report = db, report
        self.purges = _Purges(db, report.problems)
        self.horizon_after = _purge_horizons(db)

    def run(self) -> None:
        db, report = self.db, self.report
        prev, expected_n, chained_to, chain_start = GENESIS, 1, 0, 0
        lost: tuple[int, int] | None = None  # entries missing since the last events entry (first, last)
        for entry in _headers(db):
            _check_link(entry, prev, expected_n, chained_to, report)
            if entry.n > expected_n:
                lost = (lost[0] if lost else expected_n, entry.n - 1)
            prev, expected_n = entry.digest, entry.n + 1
            report.head, report.head_entry = entry.digest, entry.n
            if entry.kind != "events":
                continue
            if chain_start or lost:
                self._report_gap(chained_to + 1, entry.first_seq - 1, lost)
            else:  # events older than the chain (stored before this version kept one)
                report.unchained = _count(db, 1, entry.first_seq - 1)
            chain_start, lost = chain_start or entry.first_seq, None
            self._check_entry(_with_leaves(db, entry), self.horizon_after(entry.n))
            chained_to = max(chained_to, entry.last_seq)
        if chain_start or lost:
            self._report_gap(chained_to + 1, None, lost)
        else:
            report.unchained = _count(db, 1, None)
        self.purges.close(report, chain_start or 1)
        listing = _Listing(report)
        for problem in check_indexes(db):
            listing.add(problem.group, Problem("index", problem.detail, problem.seq, problem.event_id))
        listing.close()

    def _report_gap(self, first: int, last: int | None, lost: tuple[int, int] | None) -> None:
        """Stored events between entries: each one named, or one line if entries are missing there."""
        if lost is None:
            _report_inserted(self.db, first, last, self.report)
            return
        where, params = _range(first, last)
        count, low, high = self.db.execute(
            f"SELECT count(*), min(seq), max(seq) FROM events WHERE {where}", params
        ).fetchone()
        if count:
            entries = f"entry {lost[0]} is" if lost[0] == lost[1] else f"entries {lost[0]} to {lost[1]} are"
            self.report.problems.append(
                Problem(
                    "chain",
                    f"the events at seqs {low} to {high} ({count} stored) are not covered: chain {entries} missing",
                    entry=lost[0],
                )
            )

    def _check_entry(self, entry: Entry, horizon: int | None) -> None:
        db, report = self.db, self.report
        if entry.leaves is None:
            self._check_dropped(entry, horizon)
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
            purged_here = self.purges.any_listed(start, stop)
            for seq in range(start, stop + 1):
                self._compare(rows.get(seq), leaves.get(seq), seq, entry.n, horizon, purged_here)

    def _check_dropped(self, entry: Entry, horizon: int | None) -> None:
        """An entry whose list is gone: legitimate once a purge's horizon passed all its events and purges
        recorded deleting them all (the list is dropped only once none is stored: any stored is inserted)."""
        stored = self.db.execute(
            "SELECT seq, event_id FROM events WHERE seq BETWEEN ? AND ? ORDER BY seq", (entry.first_seq, entry.last_seq)
        ).fetchall()
        if horizon is None or entry.max_ts is None or entry.max_ts >= horizon:
            self.report.problems.append(
                Problem("chain", "the entry's list of events was removed, but no purge covers it", entry=entry.n)
            )
        else:
            every = np.arange(entry.first_seq, entry.last_seq + 1, dtype=np.int64)
            for seq in self.purges.account_unlisted(np.setdiff1d(every, [seq for seq, _ in stored])):
                self.report.problems.append(
                    Problem(
                        "removed",
                        "no longer stored, and no purge recorded deleting it (its entry's list went with the"
                        " purged events: its event id is not known)",
                        seq,
                        None,
                        entry.n,
                    )
                )
        for seq, event_id in stored:
            purge = self.purges.deleted_by(seq)
            self.report.problems.append(
                Problem("inserted", "a stored event no chain entry lists", seq, event_id)
                if purge is None
                else self._stored_again(seq, event_id, entry.n, purge)
            )

    @staticmethod
    def _stored_again(seq: int, event_id: str, n: int, purge: int) -> Problem:
        return Problem(
            "inserted",
            f"stored, though purge entry {purge} recorded deleting it: stored again behind the product's back",
            seq,
            event_id,
            n,
        )

    def _compare(
        self, row: tuple | None, leaf: Leaf | None, seq: int, n: int, horizon: int | None, purged_here: bool
    ) -> None:
        report = self.report
        if leaf is None:
            if row is not None:
                report.problems.append(Problem("inserted", "a stored event no chain entry lists", seq, row[2], n))
        elif row is None:
            if not self.purges.account_missing(seq, leaf, n, horizon):
                report.problems.append(
                    Problem(
                        "removed",
                        "the event is listed in the chain but no longer stored, and no purge recorded deleting it",
                        seq,
                        leaf.event_id,
                        n,
                    )
                )
        else:
            report.events_checked += 1
            if leaf_hash(row) != leaf.digest:
                was = f" (it was event {leaf.event_id})" if row[2] != leaf.event_id else ""
                report.problems.append(
                    Problem("changed", f"the stored row differs from what was stored{was}", seq, row[2], n)
                )
            purge = self.purges.deleted_by(seq) if purged_here else None
            if purge is not None:
                report.problems.append(self._stored_again(seq, row[2], n, purge))


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


class _Listing:
    """Adds problems to a report, at most ``LISTED`` of each group; past that, one line counts the rest."""

    def __init__(self, report: ChainReport) -> None:
        self._report = report
        self._listed: Counter[str] = Counter()
        self._more: dict[str, tuple[ProblemKind, int, int | None, int | None]] = {}  # kind, count, seq span

    def add(self, group: str, problem: Problem) -> None:
        if self._listed[group] < LISTED:
            self._listed[group] += 1
            self._report.problems.append(problem)
            return
        _, count, low, high = self._more.get(group, (problem.kind, 0, None, None))
        if problem.seq is not None:
            low, high = min(low or problem.seq, problem.seq), max(high or problem.seq, problem.seq)
        self._more[group] = (problem.kind, count + 1, low, high)

    def close(self) -> None:
        for group, (kind, count, low, high) in self._more.items():
            span = f" (seqs {low} to {high})" if low is not None else ""
            self._report.problems.append(Problem(kind, f"{count} more {group}{span}, not listed one by one"))


# -- purges ---------------------------------------------------------------------------------------------
@dataclass(slots=True)
class _CountedRange:
    """Purge entries that recorded a count only (written before they listed seqs) with overlapping seq ranges."""

    first_seq: int
    last_seq: int
    recorded: int  # how many events they say they deleted
    entries: list[int]
    missing: int = 0  # listed events missing in the range, stamped before a later purge's horizon
    cited: list[tuple[int, str, int]] = field(default_factory=list)  # of those, (seq, id, entry) alerts cite

    def where(self) -> str:
        entries = (
            f"entry {self.entries[0]}" if len(self.entries) == 1 else f"entries {self.entries[0]} to {self.entries[-1]}"
        )
        return f"seqs {self.first_seq} to {self.last_seq} (purge {entries})"


class _Purges:
    """What the chain's purge entries say they deleted: each seq, or (count-only entries) how many, where."""

    def __init__(self, db: sqlite3.Connection, problems: list[Problem] | None = None) -> None:
        self._db = db
        runs: list[tuple[int, int, int]] = []  # first seq, last seq, purge entry
        counted: list[tuple[int, int, int, int, int]] = []  # purge entry, first seq, last seq, events, horizon
        for n, first, last, events, horizon, leaves, leaves_digest in db.execute(
            "SELECT n, first_seq, last_seq, events, max_ts, leaves, leaves_digest FROM chain WHERE kind = 'purge'"
            " ORDER BY n"
        ):
            listed = _listed_runs(n, events, leaves, bytes(leaves_digest), problems)
            if listed is None:
                counted.append((n, first, last, events, horizon))
            else:
                runs += [(start, start + count - 1, n) for start, count in listed]
        table = np.array(sorted(runs), np.int64).reshape(-1, 3)
        self._starts, self._ends, self._numbers = table[:, 0], table[:, 1], table[:, 2]
        self._counted = np.array(counted, np.int64).reshape(-1, 5)
        self.ranges = _counted_ranges(counted)
        self._range_bounds = np.array([(r.first_seq, r.last_seq) for r in self.ranges], np.int64).reshape(-1, 2)
        self._cited: set[str] | None = None
        self.purged = 0  # missing events that a purge listing its seqs deleted
        self.relied_on: set[int] = set()  # count-only ranges ``when`` said purged events after signing

    def deleted_by(self, seq: int) -> int | None:
        """The purge entry that recorded deleting ``seq`` (None: none that lists its seqs did)."""
        index = int(np.searchsorted(self._starts, seq, "right")) - 1
        return int(self._numbers[index]) if index >= 0 and seq <= self._ends[index] else None

    def any_listed(self, first: int, last: int) -> bool:
        """Whether a purge recorded deleting any seq in first..last (its runs are disjoint and sorted)."""
        index = int(np.searchsorted(self._starts, last, "right")) - 1
        return index >= 0 and bool(self._ends[index] >= first)

    def account_missing(self, seq: int, leaf: Leaf, n: int, horizon: int | None) -> bool:
        """Whether a purge accounts for this listed event missing (count-only purges settle in ``close``)."""
        if self.deleted_by(seq) is not None:
            self.purged += 1
            return True
        counted = self._range_of(seq) if horizon is not None and leaf.ts < horizon else None
        if counted is None:
            return False
        counted.missing += 1
        if len(counted.cited) < LISTED and leaf.event_id in self._cited_ids():
            counted.cited.append((seq, leaf.event_id, n))
        return True

    def account_unlisted(self, seqs: np.ndarray) -> list[int]:
        """Account for missing seqs of an entry whose list was dropped; return those no purge accounts for."""
        exact = self._covered(self._starts, self._ends, seqs)
        self.purged += int(exact.sum())
        rest = seqs[~exact]
        inside = self._covered(self._range_bounds[:, 0], self._range_bounds[:, 1], rest)
        index = np.searchsorted(self._range_bounds[:, 0], rest[inside], "right") - 1
        for i, count in zip(*np.unique(index, return_counts=True), strict=True):
            self.ranges[int(i)].missing += int(count)
        return [int(seq) for seq in rest[~inside]]

    def when(self, seq: int, ts: int, n: int, signed: int) -> Literal["before", "since", "undecided", "removed"]:
        """Whether the event (entry ``n``, stamped ``ts``) was purged by entry ``signed`` or after, if at all."""
        by = self.deleted_by(seq)
        if by is not None:
            return "since" if by > signed else "before"
        counted = self._counted
        could = counted[(counted[:, 1] <= seq) & (counted[:, 2] >= seq) & (counted[:, 0] > n) & (counted[:, 4] > ts), 0]
        before, after = bool((could <= signed).any()), bool((could > signed).any())
        relied_on = self._range_index(seq) if after and not before else None
        if relied_on is not None:
            self.relied_on.add(relied_on)
        return "undecided" if before and after else "before" if before else "since" if after else "removed"

    def settle(self, db: sqlite3.Connection, horizon_after: Callable[[int], int | None]) -> list[_CountedRange]:
        """Recount the events missing in each count-only range relied on; return those missing more than recorded.

        As ``verify`` counts them, but only over the ranges relied on (the period's seqs, about).
        """
        ranges = [self.ranges[i] for i in sorted(self.relied_on)]
        for counted in ranges:
            counted.missing = 0
        for entry in _headers(db):
            for counted in ranges:
                if (
                    entry.kind == "events"
                    and entry.first_seq <= counted.last_seq
                    and entry.last_seq >= counted.first_seq
                ):
                    counted.missing += self._missing_in(db, entry, counted, horizon_after(entry.n))
        return [counted for counted in ranges if counted.missing > counted.recorded]

    def _missing_in(self, db: sqlite3.Connection, entry: Entry, counted: _CountedRange, horizon: int | None) -> int:
        """How many of the entry's events in the range are gone with no purge that lists seqs accounting for them."""
        low, high = max(entry.first_seq, counted.first_seq), min(entry.last_seq, counted.last_seq)
        stored = {seq for (seq,) in db.execute("SELECT seq FROM events WHERE seq BETWEEN ? AND ?", (low, high))}
        if entry.leaves is None:  # its list went once a purge's horizon passed them all
            gone = [seq for seq in range(low, high + 1) if seq not in stored]
        else:
            gone = [
                leaf.seq
                for leaf in _with_leaves(db, entry).iter_leaves()
                if low <= leaf.seq <= high and leaf.seq not in stored and horizon is not None and leaf.ts < horizon
            ]
        return sum(1 for seq in gone if self.deleted_by(seq) is None)

    def close(self, report: ChainReport, chain_start: int) -> None:
        """Add what purges account for to the report, and each count-only range that does not add up."""
        report.purged += self.purged
        for counted in self.ranges:
            report.purged += min(counted.missing, counted.recorded)
            if counted.missing > counted.recorded:
                report.problems.append(
                    Problem(
                        "removed",
                        f"{counted.missing - counted.recorded} of the {counted.missing} listed events missing at"
                        f" {counted.where()} were not purged: the purges recorded deleting {counted.recorded}"
                        " there (a count only, as purges did before they listed seqs, so the chain cannot"
                        " name them)",
                        entry=counted.entries[0],
                    )
                )
                for seq, event_id, n in counted.cited:
                    report.problems.append(
                        Problem(
                            "removed",
                            f"likely one of those at seqs {counted.first_seq} to {counted.last_seq}: a stored alert"
                            " cites it as evidence, and purges keep those",
                            seq,
                            event_id,
                            n,
                        )
                    )
            elif counted.missing < counted.recorded and counted.first_seq >= chain_start:
                report.problems.append(
                    Problem(
                        "chain",
                        f"the purges at {counted.where()} recorded deleting {counted.recorded} events, but only"
                        f" {counted.missing} listed ones are missing there: purged events were stored again",
                        entry=counted.entries[0],
                    )
                )

    def _range_of(self, seq: int) -> _CountedRange | None:
        index = self._range_index(seq)
        return None if index is None else self.ranges[index]

    def _range_index(self, seq: int) -> int | None:
        index = int(np.searchsorted(self._range_bounds[:, 0], seq, "right")) - 1
        return index if index >= 0 and seq <= self._range_bounds[index, 1] else None

    def _cited_ids(self) -> set[str]:
        """The event ids stored alerts cite as evidence (retention keeps those events while the alert stays)."""
        if self._cited is None:
            self._cited = set()
            for (body,) in self._db.execute("SELECT body FROM alerts"):
                ids = orjson.loads(body).get("evidence", {}).get("event_ids", [])
                self._cited.update(i for i in ids if isinstance(i, str))
        return self._cited

    @staticmethod
    def _covered(starts: np.ndarray, ends: np.ndarray, seqs: np.ndarray) -> np.ndarray:
        """Which seqs lie in one of the disjoint sorted intervals starts..ends."""
        index = np.searchsorted(starts, seqs, "right") - 1
        inside = index >= 0
        inside[inside] = seqs[inside] <= ends[index[inside]]
        return inside


def _listed_runs(
    n: int, events: int, leaves: bytes | None, leaves_digest: bytes, problems: list[Problem] | None
) -> list[tuple[int, int]] | None:
    """A purge entry's runs of deleted seqs; None if it recorded a count only (or its list cannot be trusted)."""
    if leaves is None:
        return None
    leaves = bytes(leaves)
    if hashlib.sha256(leaves).digest() != leaves_digest:
        why = "its list of deleted seqs was altered: its digest does not match"
    else:
        try:
            runs = purged_runs(leaves)
        except ValueError as exc:
            why = f"its list of deleted seqs cannot be read: {exc}"
        else:
            if runs and sum(count for _, count in runs) == events:
                return runs
            why = "its list of deleted seqs does not add up to the count it records"
    if problems is not None:
        problems.append(Problem("chain", f"the purge entry's {why}; taken as a count only", entry=n))
    return None


def _counted_ranges(counted: list[tuple[int, int, int, int, int]]) -> list[_CountedRange]:
    """Count-only purge entries grouped where their seq ranges overlap (each group counted as one)."""
    ranges: list[_CountedRange] = []
    for n, first, last, events, _ in sorted(counted, key=lambda purge: purge[1]):
        if ranges and first <= ranges[-1].last_seq:
            group = ranges[-1]
            group.last_seq, group.recorded = max(group.last_seq, last), group.recorded + events
            group.entries.append(n)
        else:
            ranges.append(_CountedRange(first, last, events, [n]))
    for group in ranges:
        group.entries.sort()
    return ranges


# -- a signed period, after purges --------------------------------------------------------------------------
def account_period(db: sqlite3.Connection, since: int, until: int, signed: int, up_to_seq: int) -> PeriodAccount:
    """The period [since, until) µs as signed at entry ``signed`` (position ``up_to_seq``), after later purges."""
    account = PeriodAccount()
    db.execute("BEGIN")  # one snapshot
    try:
        purges = _Purges(db)
        digest = hashlib.sha256()
        stored = _stored_leaves(db, since, until, up_to_seq, account)
        gone = _purged_since(db, since, until, signed, up_to_seq, purges, account)
        for seq, leaf in heapq.merge(stored, gone):  # store order, as the signed digest was made
            digest.update(seq.to_bytes(8, "big") + leaf)
        account.digest = None if account.purged_unlisted else digest.digest()
        # count-only purges: each event missing where they ran looked purged; do their counts add up?
        for counted in purges.settle(db, _purge_horizons(db)):
            account.unpurged.append(
                f"{counted.missing - counted.recorded} of the {counted.missing} listed events missing at"
                f" {counted.where()} were not purged: the purges recorded deleting {counted.recorded} there"
            )
    finally:
        db.execute("COMMIT")
    return account


def _stored_leaves(
    db: sqlite3.Connection, since: int, until: int, up_to_seq: int, account: PeriodAccount
) -> Iterator[tuple[int, bytes]]:
    rows = db.execute(
        f"SELECT {ROW_COLUMNS} FROM events WHERE ts >= ? AND ts < ? AND seq <= ? ORDER BY seq",
        (since, until, up_to_seq),
    )
    for row in rows:
        account.stored += 1
        yield row[0], leaf_hash(row)


def _purged_since(
    db: sqlite3.Connection,
    since: int,
    until: int,
    signed: int,
    up_to_seq: int,
    purges: _Purges,
    account: PeriodAccount,
) -> Iterator[tuple[int, bytes]]:
    """The (seq, leaf) of the period's events deleted by purges after entry ``signed``, in store order."""
    for entry in _headers(db):
        if entry.n > signed:
            return
        if entry.kind != "events" or entry.first_seq > up_to_seq:
            continue
        if entry.min_ts is None or entry.max_ts is None or entry.min_ts >= until or entry.max_ts < since:
            continue
        if entry.leaves is None:
            _count_unlisted(db, entry, since, until, signed, purges, account)
            continue
        leaves = [
            leaf for leaf in _with_leaves(db, entry).iter_leaves() if since <= leaf.ts < until and leaf.seq <= up_to_seq
        ]
        for start in range(0, len(leaves), _VERIFY_CHUNK):
            chunk = leaves[start : start + _VERIFY_CHUNK]
            rows = {
                row[0]: row
                for row in db.execute(
                    f"SELECT {ROW_COLUMNS} FROM events WHERE seq BETWEEN ? AND ?", (chunk[0].seq, chunk[-1].seq)
                )
            }
            for leaf in chunk:
                row = rows.get(leaf.seq)
                if row is not None:
                    account.changed += leaf_hash(row) != leaf.digest
                    continue
                when = purges.when(leaf.seq, leaf.ts, entry.n, signed)
                if when == "since":
                    account.purged += 1
                    yield leaf.seq, leaf.digest
                elif when == "undecided":
                    account.undecided += 1
                elif when == "removed":
                    account.removed += 1


def _count_unlisted(
    db: sqlite3.Connection,
    entry: Entry,
    since: int,
    until: int,
    signed: int,
    purges: _Purges,
    account: PeriodAccount,
) -> None:
    """Count the events of an entry whose list was dropped that purges after entry ``signed`` deleted."""
    assert entry.min_ts is not None and entry.max_ts is not None  # an events entry: the caller checked
    stored = {
        seq
        for (seq,) in db.execute("SELECT seq FROM events WHERE seq BETWEEN ? AND ?", (entry.first_seq, entry.last_seq))
    }
    # each event's time went with the list: a count-only purge that could have deleted any of them may have
    whens = Counter(
        purges.when(seq, entry.min_ts, entry.n, signed)
        for seq in range(entry.first_seq, entry.last_seq + 1)
        if seq not in stored
    )
    account.undecided += whens["undecided"]
    account.removed += whens["removed"]
    if whens["since"]:
        account.purged_unlisted += whens["since"]
        account.straddles |= not (since <= entry.min_ts and entry.max_ts < until)


class SqliteChain(ChainedStore):
    """``ChainedStore`` on the embedded store's connection (a mixin of ``store.sqlite.SqliteStore``)."""

    _db: sqlite3.Connection

    def verify_chain(self) -> ChainReport:
        return verify(self._db)

    def chain_head(self, entry: int | None = None) -> ChainHead | None:
        return head(self._db, entry)

    def period_digest(self, since: datetime, until: datetime, up_to_seq: int) -> PeriodDigest:
        return period_digest(self._db, _micros(since), _micros(until), up_to_seq)

    def account_period(self, since: datetime, until: datetime, entry: int, up_to_seq: int) -> PeriodAccount:
        return account_period(self._db, _micros(since), _micros(until), entry, up_to_seq)


def _micros(moment: datetime) -> int:
    return round(moment.timestamp() * 1_000_000)
