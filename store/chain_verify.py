"""``verify``: the whole chain recomputed, every stored event compared with its leaf, the indexes checked.

Separate from ``store.chain`` (the format, and the writing and reading of it)
because only the ``verify`` command reads it all; what purges account for,
which ``verify`` asks, is in ``store.chain_purges``; the rows of the dashboard's
audit log, whose entries the same walk meets, are compared in ``store.chain_audit``;
the incidents' statuses, with the triage log that walk read, in ``store.chain_status``; their creations and
severities, whose records the walk meets too, in ``store.chain_incidents``; whether the alerts and incidents
are still the actors' their ids were made from, in ``store.chain_ids``.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections import Counter

import numpy as np
import orjson

from models.event import parse_rfc3339
from store.chain import (
    GENESIS,
    LISTED,
    ROW_COLUMNS,
    VERIFY_CHUNK,
    ChainReport,
    Entry,
    Leaf,
    Problem,
    ProblemKind,
    entry_headers,
    leaf_hash,
    with_leaves,
)
from store.chain_audit import AuditRows, is_audit_entry
from store.chain_ids import check_ids
from store.chain_incidents import IncidentRecords
from store.chain_indexes import check_indexes
from store.chain_purges import Purges, purge_horizons
from store.chain_status import check_statuses


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
        self.purges = Purges(db, report.problems)
        self.horizon_after = purge_horizons(db)
        self.audit = AuditRows(db, report)  # the dashboard's audit log, in the same chain
        self.incidents = IncidentRecords(db, report)  # the incidents' creations and rises in severity, too

    def run(self) -> None:
        db, report = self.db, self.report
        prev, expected_n, chained_to, chain_start = GENESIS, 1, 0, 0
        lost: tuple[int, int] | None = None  # entries missing since the last events entry (first, last)
        for entry in entry_headers(db):
            check_link(entry, prev, expected_n, chained_to, report)
            if entry.n > expected_n:
                lost = (lost[0] if lost else expected_n, entry.n - 1)
            prev, expected_n = entry.digest, entry.n + 1
            report.head, report.head_entry = entry.digest, entry.n
            if is_audit_entry(entry):
                self.audit.add(with_leaves(db, entry))
            elif self.incidents.owns(entry):
                self.incidents.add(with_leaves(db, entry))
            if entry.kind != "events":
                continue
            if chain_start or lost:
                self._report_gap(chained_to + 1, entry.first_seq - 1, lost)
            else:  # events older than the chain (stored before this version kept one)
                report.unchained = _count(db, 1, entry.first_seq - 1)
            chain_start, lost = chain_start or entry.first_seq, None
            self._check_entry(with_leaves(db, entry), self.horizon_after(entry.n))
            chained_to = max(chained_to, entry.last_seq)
        if chain_start or lost:
            self._report_gap(chained_to + 1, None, lost)
        else:
            report.unchained = _count(db, 1, None)
        self.purges.close(report, chain_start or 1)
        listing = Listing(report)
        for problem in check_indexes(db):
            listing.add(problem.group, Problem("index", problem.detail, problem.seq, problem.event_id))
        listing.close()
        if chain_start:
            self._report_traces_past(chained_to)
        self.audit.close()
        statuses, log = Listing(report), self.audit.triage_log()
        check_statuses(db, log, statuses.add)
        # an incident gone whose triage log the chain holds is named by ``check_statuses``: once is enough
        self.incidents.close({action.incident_id for action in log}, statuses.add)
        statuses.close()
        ids = Listing(report)
        check_ids(db, ids.add)
        ids.close()

    def _report_traces_past(self, chained_to: int) -> None:
        """Seqs the indexes and keys still hold past the chain's last: events stored, then deleted with their
        chain entries.  Such a cut at the chain's end leaves a shorter chain that is consistent in itself;
        the indexes are written in the same transaction as the events and the entry, so they tell."""
        traces = [(table, high) for table, high in _highest_seqs(self.db) if high is not None and high > chained_to]
        if traces:
            held = ", ".join(f"{table} up to seq {high}" for table, high in traces)
            self.report.problems.append(
                Problem(
                    "chain",
                    f"the indexes hold events past the chain's last seq {chained_to} ({held}): events stored after"
                    " it are gone with their chain entries (the chain was cut back), or the indexes were written"
                    " behind the product's back",
                )
            )

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
        for start in range(entry.first_seq, entry.last_seq + 1, VERIFY_CHUNK):
            stop = min(start + VERIFY_CHUNK - 1, entry.last_seq)
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
                    Problem(
                        "changed",
                        f"the stored row differs from what was stored{was}{_what_changed(row, leaf.digest)}",
                        seq,
                        row[2],
                        n,
                    )
                )
            purge = self.purges.deleted_by(seq) if purged_here else None
            if purge is not None:
                report.problems.append(self._stored_again(seq, row[2], n, purge))


# the columns a search filters on, each as the stored body says it (``ROW_COLUMNS`` order: index, body path)
_FROM_BODY = (
    (2, "event_id", ("event_id",)),
    (4, "actor_id", ("actor", "id")),
    (5, "actor_kind", ("actor", "kind")),
    (6, "action", ("action",)),
    (7, "outcome", ("outcome",)),
    (8, "system", ("resource", "system")),
    (9, "resource_type", ("resource", "type")),
    (10, "resource_id", ("resource", "id")),
    (11, "record_count", ("record_count",)),
    (13, "source_ip", ("source_ip",)),
)


def _what_changed(row: tuple, digest: bytes) -> str:
    """What changed in a row, as far as the chain's leaf tells, for the auditor.

    The columns a search filters on are derived from the body.  Where they disagree, the row is rebuilt with
    the body's values: if that is the row the leaf hashed, the columns were changed and the body is the
    original (a changed ``actor_id`` moves the event to another actor's searches); if not, the body was
    changed (or the body and the columns), and the columns may be what it said.
    """
    try:
        body = orjson.loads(row[14])
        said: dict[int, object] = {index: _at(body, path) for index, _, path in _FROM_BODY}
        said[7] = said[7] or "success"  # the outcome's default in the schema
        said[3] = round(parse_rfc3339(body["timestamp"]).timestamp() * 1_000_000)  # ts, as the store writes it
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return ": its body is no longer the event's JSON"
    names = {index: column for index, column, _ in _FROM_BODY} | {3: "ts"}
    differ = sorted(index for index, value in said.items() if row[index] != value)
    if not differ:
        return ": its columns agree with its body, so the body was changed (or both together)"
    rebuilt = tuple(said[index] if index in said else value for index, value in enumerate(row))
    if leaf_hash(rebuilt) == digest:
        changed = "; ".join(f"{names[i]} {row[i]!r}, originally {said[i]!r}" for i in differ)
        return f": its columns were changed ({changed}); its body is the original"
    disagree = "; ".join(f"{names[i]} {said[i]!r} where the column says {row[i]!r}" for i in differ)
    return f": its body was changed, or its body and columns ({disagree})"


def _at(body: dict, path: tuple[str, ...]) -> object:
    value: object = body
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def check_link(entry: Entry, prev: bytes, expected_n: int, chained_to: int, report: ChainReport) -> None:
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


def _range(first: int, last: int | None) -> tuple[str, list[int]]:
    if last is None:
        return "seq >= ?", [first]
    return "seq BETWEEN ? AND ?", [first, last]


def _count(db: sqlite3.Connection, first: int, last: int | None) -> int:
    where, params = _range(first, last)
    return db.execute(f"SELECT count(*) FROM events WHERE {where}", params).fetchone()[0]


# where the store lists events besides their rows (their largest seq: the postings' rows hold their seq range)
_SEQ_HOLDERS = (
    ("class_postings", "SELECT max(last_seq) FROM class_postings"),
    ("customer_postings", "SELECT max(last_seq) FROM customer_postings"),
    ("event_keys", "SELECT max(seq) FROM event_keys"),
    ("event_keys_recent", "SELECT max(seq) FROM event_keys_recent"),
)


def _highest_seqs(db: sqlite3.Connection) -> list[tuple[str, int | None]]:
    return [(table, db.execute(query).fetchone()[0]) for table, query in _SEQ_HOLDERS]


def _report_inserted(db: sqlite3.Connection, first: int, last: int | None, report: ChainReport) -> None:
    where, params = _range(first, last)
    for seq, event_id in db.execute(f"SELECT seq, event_id FROM events WHERE {where} ORDER BY seq", params):
        report.problems.append(Problem("inserted", "a stored event no chain entry lists", seq, event_id))


class Listing:
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
            self._report.problems.append(
                Problem(kind, f"{count} more {group}{span}, not listed one by one", count=count)
            )
