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

The same chain holds the dashboard's audit log (``store.chain_audit``): each
transaction that adds a data access or a triage action appends an entry
listing its rows, and a purge of triage actions an entry listing the ids it
deleted, so the heads ``run`` logs and the digests exported anchor that log
too.  It holds each incident's creation and each rise of its severity as
well (``store.chain_incidents``), and each purge of incidents as an entry
listing them.

SQLite-specific on purpose (``store.sqlite_chain`` makes it a mixin of
``SqliteStore``): the leaves are the rows just written, hashed within the
writing transaction on the writing connection, so what is chained is exactly
what is stored and no state is shared with another connection.

This module holds the format (rows, leaves, entries, the purge records) and
what writes and reads it; ``store.chain_verify`` holds ``verify``,
``store.chain_purges`` what purges account for (in ``verify`` and in a signed
period), and ``store.sqlite_chain`` offers it all to ``SqliteStore``.
"""

from __future__ import annotations

import hashlib
import itertools
import sqlite3
import struct
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from operator import itemgetter, methodcaller
from typing import Literal

import orjson

# The stored row, as the leaf hashes it: every column of ``events``.
ROW_COLUMNS = (
    "seq, id_key, event_id, ts, actor_id, actor_kind, action, outcome, system, resource_type,"
    " resource_id, record_count, classes, source_ip, body"
)
GENESIS = bytes(32)  # the "previous digest" of the first entry
_LEAF = struct.Struct(">q32sH")  # event time (µs), leaf hash, length of the event id that follows
VERIFY_CHUNK = 5000
LISTED = 100  # problems of one sort listed (index rows, suspects); past it one line counts the rest
PURGE_SEQS_FORMAT = 1  # the first byte of a purge entry's ``leaves``: the runs of seqs it deleted follow
_RUN = struct.Struct(">qq")  # a run of seqs a purge deleted: the first, how many
_DIGEST = methodcaller("digest")
_EVENT_ID, _TS = itemgetter(2), itemgetter(3)  # of a row of ``ROW_COLUMNS``


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


# events, purge: of events; data_accesses, triage_actions: of the dashboard's audit log (``store.chain_audit``), rows
# added to its table, or a purge of them; incidents: incidents created or raised in severity, or a purge of them
# (``store.chain_incidents``)
EntryKind = Literal[
    "events",
    "purge",
    "data_accesses",
    "triage_actions",
    "data_accesses purge",
    "triage_actions purge",
    "incidents",
    "incidents purge",
]


@dataclass(frozen=True, slots=True)
class Entry:
    n: int
    kind: EntryKind
    first_seq: int  # an audit log's entry: the lowest row id it lists (and last_seq the highest)
    last_seq: int
    events: int  # events: how many it stored; purge: how many it deleted (an audit log's entry: rows)
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


# status: an incident or alert stored in a status its chained triage log does not leave it in (``store.chain_status``);
# severity: an incident stored at a severity below the one the chain recorded for it (``store.chain_incidents``);
# moved: an alert or incident stored under an actor its id was not made from, or whose alerts are another's
# (``store.chain_ids``)
ProblemKind = Literal["changed", "removed", "inserted", "chain", "index", "status", "severity", "moved"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing ``verify`` found: an event (or an audit log's row) changed, removed or inserted, an entry altered,
    an index wrong, an incident's status not the one its triage log leaves it in, or an incident gone or lowered
    in severity that the chain recorded."""

    kind: ProblemKind
    detail: str
    seq: int | None = None
    event_id: str | None = None
    entry: int | None = None
    count: int = 1  # what the line stands for: one that counts the rest of its kind, not listed, stands for them
    table: str | None = None  # a row of the dashboard's audit log (``store.chain_audit``), not an event: its table
    row: int | None = None  # ... and its id
    incident_id: str | None = None  # an incident (or its alert) whose status or severity the chain does not account for
    alert_id: str | None = None  # ... and the alert, where it is one of its alerts


@dataclass(slots=True)
class ChainReport:
    entries: int = 0
    events_checked: int = 0
    purged: int = 0  # events listed in the chain and gone through retention (a purge recorded deleting them)
    unchained: int = 0  # events stored before the chain was kept (an older version): not verifiable
    rows_checked: dict[str, int] = field(default_factory=dict)  # the audit log's rows checked, by table
    rows_purged: dict[str, int] = field(default_factory=dict)  # ... and those gone through retention
    rows_later: dict[str, int] = field(default_factory=dict)  # a signed head's check: rows added after it, unchecked
    incidents_checked: int = 0  # stored incidents whose severity was compared with what the chain recorded
    head: bytes | None = None
    head_entry: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems

    @property
    def problem_count(self) -> int:
        """The problems found, those counted on one line past ``LISTED`` of their kind included."""
        return sum(problem.count for problem in self.problems)


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

    @abstractmethod
    def check_signed(self, entry: int) -> ChainReport:
        """What a head signed at chain entry ``entry`` commits to beyond its period's events: the chain up to it
        recomputed, and the audit rows and incidents it records compared with the store (``store.chain_signed``)."""


# -- writing ------------------------------------------------------------------------------------
def append_events(db: sqlite3.Connection, rows: Sequence[tuple]) -> None:
    """Chain the rows just stored (at consecutive seqs); call inside the transaction that stored them.

    Each row is as it was inserted: the columns of ``ROW_COLUMNS``, seq first.  Hashing them as
    they are in hand, not read back, hashes what is stored: each value was bound with its column's
    own type (int to INTEGER, str to TEXT, or NULL), so SQLite keeps it unconverted and it reads
    back as itself (``verify`` reads it back and would say so).
    """
    # Chained maps over C functions, no Python loop: this runs for every event, holding the
    # interpreter lock.  Each leaf is ``leaf_hash(row)``, inlined.
    digests = map(_DIGEST, map(hashlib.sha256, map(orjson.dumps, rows)))
    event_ids = list(map(str.encode, map(_EVENT_ID, rows)))
    times = list(map(_TS, rows))
    heads = map(_LEAF.pack, times, digests, map(len, event_ids))
    leaves = b"".join(itertools.chain.from_iterable(zip(heads, event_ids, strict=True)))
    first_seq, last_seq = rows[0][0], rows[-1][0]
    append_entry(db, "events", first_seq, last_seq, len(rows), min(times), max(times), leaves)


def append_purge(db: sqlite3.Connection, horizon_ts: int, seqs: Sequence[int]) -> None:
    """Record a retention purge of the events at ``seqs`` (ascending), stamped before ``horizon_ts``.

    Call inside the purge's transaction.  The entry lists the seqs, as runs: ``verify`` then tells an
    event this purge deleted from one deleted behind the product's back beside it (an event it kept).
    """
    record = bytes([PURGE_SEQS_FORMAT]) + b"".join(_RUN.pack(first, count) for first, count in _runs(seqs))
    append_entry(db, "purge", seqs[0], seqs[-1], len(seqs), None, horizon_ts, record)


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


def append_entry(
    db: sqlite3.Connection,
    kind: EntryKind,
    first_seq: int,
    last_seq: int,
    events: int,
    min_ts: int | None,
    max_ts: int | None,
    leaves: bytes | None,
) -> None:
    """Append an entry of any kind (``store.chain_audit`` writes those of the dashboard's audit log)."""
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


def entries(db: sqlite3.Connection, after: int = 0, kinds: Collection[str] | None = None) -> Iterator[Entry]:
    """The entries past entry ``after``, of ``kinds`` only if given, with their lists."""
    of_kinds = "" if kinds is None else f" AND kind IN ({','.join('?' * len(kinds))})"
    cursor = db.execute(
        "SELECT n, kind, first_seq, last_seq, events, min_ts, max_ts, written_at, leaves, leaves_digest, prev, digest"
        f" FROM chain WHERE n > ?{of_kinds} ORDER BY n",
        (after, *(kinds or ())),
    )
    for row in cursor:
        yield _entry(row, None if row[8] is None else bytes(row[8]))


def entry_headers(db: sqlite3.Connection, up_to: int | None = None) -> Iterator[Entry]:
    """Entries (up to entry ``up_to`` if given) without their (large) event lists, read one entry at a time."""
    cursor = db.execute(
        "SELECT n, kind, first_seq, last_seq, events, min_ts, max_ts, written_at, leaves IS NULL, leaves_digest,"
        " prev, digest FROM chain WHERE n <= ? ORDER BY n",
        (2**63 - 1 if up_to is None else up_to,),
    )
    for row in cursor:
        yield _entry(row, None if row[8] else b"")


def with_leaves(db: sqlite3.Connection, entry: Entry) -> Entry:
    if entry.leaves is None:
        return entry
    (leaves,) = db.execute("SELECT leaves FROM chain WHERE n = ?", (entry.n,)).fetchone()
    return replace(entry, leaves=bytes(leaves))


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
