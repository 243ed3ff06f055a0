"""Purges in the chain: what each purge entry says it deleted, and what that accounts for.

``verify`` asks it whether an event missing was purged (and reports the
count-only purges that do not add up); ``account_period`` rebuilds a signed
period after the purges written since.  Separate from ``store.chain``, which
writes the purge entries (``append_purge``) and reads their format
(``purged_runs``), because this is the part that reasons about them.
"""

from __future__ import annotations

import bisect
import hashlib
import heapq
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import orjson

from store.chain import (
    LISTED,
    ROW_COLUMNS,
    VERIFY_CHUNK,
    ChainReport,
    Entry,
    Leaf,
    PeriodAccount,
    Problem,
    entry_headers,
    leaf_hash,
    purged_runs,
    with_leaves,
)


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


class Purges:
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
        for entry in entry_headers(db):
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
                for leaf in with_leaves(db, entry).iter_leaves()
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


def purge_horizons(db: sqlite3.Connection) -> Callable[[int], int | None]:
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


# -- a signed period, after purges --------------------------------------------------------------------------
def account_period(db: sqlite3.Connection, since: int, until: int, signed: int, up_to_seq: int) -> PeriodAccount:
    """The period [since, until) µs as signed at entry ``signed`` (position ``up_to_seq``), after later purges."""
    account = PeriodAccount()
    db.execute("BEGIN")  # one snapshot
    try:
        purges = Purges(db)
        digest = hashlib.sha256()
        stored = _stored_leaves(db, since, until, up_to_seq, account)
        gone = _purged_since(db, since, until, signed, up_to_seq, purges, account)
        for seq, leaf in heapq.merge(stored, gone):  # store order, as the signed digest was made
            digest.update(seq.to_bytes(8, "big") + leaf)
        account.digest = None if account.purged_unlisted else digest.digest()
        # count-only purges: each event missing where they ran looked purged; do their counts add up?
        for counted in purges.settle(db, purge_horizons(db)):
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
    purges: Purges,
    account: PeriodAccount,
) -> Iterator[tuple[int, bytes]]:
    """The (seq, leaf) of the period's events deleted by purges after entry ``signed``, in store order."""
    for entry in entry_headers(db):
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
            leaf for leaf in with_leaves(db, entry).iter_leaves() if since <= leaf.ts < until and leaf.seq <= up_to_seq
        ]
        for start in range(0, len(leaves), VERIFY_CHUNK):
            chunk = leaves[start : start + VERIFY_CHUNK]
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
    purges: Purges,
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
