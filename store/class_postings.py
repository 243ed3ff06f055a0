"""Which events have a data class: postings written in segments, one row per class per write.

Until migration 0009 the store kept a B-tree row (class, ts, seq) per data
class of each event: 2.57 rows an event in the simulated log, about 20,000
of the 146,000 instructions an event the store's write cost (each part
left out in turn, ``bench.instructions``).  Here a write adds, for each class
its events have, one row holding their event times and seq offsets sorted
by (time, seq): a batch of 10,000 events is a dozen rows, built with numpy.

A search by class (``SqliteStore.query_events``) reads the rows of its class
whose time span meets the search's, cuts each to that span with a binary
search and merges their heads (``seqs_in_order``): the page's order, time
then seq, comes from the postings, so a page costs about the page's size
in every row read, not a sort of the whole class.  The events are then read
by seq; an event purged since is not found, which makes the postings of
purged events harmless (a row goes once none of its events is stored).

Small live writes merge as in ``store.customer_postings``: rows start as
pending; once the pending rows and a new write span ``MERGE_EVENTS``
events, they become one merged row per class.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Callable, Collection, Hashable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from store.sqlite_bulk import insert_all

MERGE_EVENTS = 10_000
CHUNK_GROWTH, LARGEST_CHUNK = 4, 8192  # ``seqs_in_order``: how the chunks grow after the first
_TIME, _OFFSET = np.dtype("<i8"), np.dtype("<u4")  # a row's postings: its times, then its offsets
_ENTRY_BYTES = _TIME.itemsize + _OFFSET.itemsize
_INSERT = "INSERT INTO class_postings (class, first_seq, last_seq, min_ts, max_ts, merged, postings)"
_Entries = tuple[np.ndarray, np.ndarray]  # (event times, seqs) of one class, in no particular order
Key = TypeVar("Key", bound=Hashable)


def index_classes(db: sqlite3.Connection, first_seq: int, classes: Sequence[frozenset[str]], times: np.ndarray) -> None:
    """Index the data classes of events ``first_seq``, ``first_seq + 1``, ... stamped ``times`` (µs)."""
    if not classes:
        return
    last_seq = first_seq + len(classes) - 1
    new = {name: (times[at], at + first_seq) for name, at in positions_by_class(classes, _itself).items()}
    # the pending rows' blobs are read only to merge them: a live source writes often, a few events a time
    (oldest,) = db.execute("SELECT min(first_seq) FROM class_postings WHERE merged = 0").fetchone()
    start = first_seq if oldest is None else oldest
    if last_seq - start + 1 < MERGE_EVENTS:
        insert_all(db, _INSERT, _rows(first_seq, last_seq, new, merged=False))
        return
    pending = db.execute("SELECT id, class, first_seq, postings FROM class_postings WHERE merged = 0").fetchall()
    segments = {name: [segment] for name, segment in new.items()}
    for _, name, row_first, blob in pending:
        row_times, offsets = stored_postings(blob)
        segments.setdefault(name, []).append((row_times, offsets + row_first))
    db.executemany("DELETE FROM class_postings WHERE id = ?", [(row_id,) for row_id, *_ in pending])
    whole = {name: _joined(parts) for name, parts in segments.items()}
    insert_all(db, _INSERT, _rows(start, last_seq, whole, merged=True))


def positions_by_class(keys: Sequence[Key], names_of: Callable[[Key], Collection[str]]) -> dict[str, np.ndarray]:
    """The positions in ``keys`` of the events of each class, ascending, by class name.

    ``keys`` are the events' sets of classes, or anything naming one (``names_of`` gives its names): a
    few dozen distinct ones in all, so the work per event is a dictionary look-up and numpy's.
    """
    distinct = list(dict.fromkeys(keys))
    names = sorted({name for key in distinct for name in names_of(key)})
    row = {name: j for j, name in enumerate(names)}
    member = np.zeros((len(names), len(distinct)), bool)  # which distinct keys name each class
    for i, key in enumerate(distinct):
        member[[row[name] for name in names_of(key)], i] = True
    code = {key: i for i, key in enumerate(distinct)}
    codes = np.fromiter(map(code.__getitem__, keys), np.intp, len(keys))
    # a class at a time, each a 1-D take: a 2-D one, or np.nonzero over all, took 3 to 6 times longer
    return {name: np.flatnonzero(member[j][codes]) for j, name in enumerate(names)}


def seqs_in_order(
    db: sqlite3.Connection,
    data_class: str,
    earliest: int,
    latest: int,
    newest_first: bool,
    after: tuple[int, int] | None,
    first_chunk: int,
) -> Iterator[list[int]]:
    """The seqs indexed under ``data_class`` stamped ``earliest..latest`` (µs, both included), in chunks.

    In a page's order: (time, seq) ascending, or descending if ``newest_first``; past ``after`` (a
    page's cursor: time and seq) if given.  The first chunk holds ``first_chunk`` seqs, the next ones more.
    Call it inside a read transaction: it reads the rows' blobs one by one, as the chunks need them.
    """
    span = _Span.of(earliest, latest, newest_first, after)
    rows = db.execute(
        "SELECT id, first_seq, min_ts, max_ts FROM class_postings WHERE class = ? AND max_ts >= ? AND min_ts <= ?",
        (data_class, span.earliest, span.latest),
    ).fetchall()
    # A row's blob is read only once a chunk may need it, in the order its times reach the page's: a page
    # of a class in most events would otherwise read every row the span meets (10 MB at a million events).
    unread = deque(sorted(rows, key=span.reached_at))
    runs: list[_Entries] = []  # each row read, from its first entry not yet given, in the page's order
    size = first_chunk
    while runs or unread:
        times, seqs, run_of = _heads(runs, size)
        order = np.lexsort((seqs, times))
        chosen = (order[::-1] if newest_first else order)[:size]
        if unread and (len(chosen) < size or span.may_come_before(unread[0], int(times[chosen[-1]]))):
            row_id, first_seq, *_ = unread.popleft()
            (blob,) = db.execute("SELECT postings FROM class_postings WHERE id = ?", (row_id,)).fetchone()
            run = span.run(first_seq, blob)
            if len(run[0]):
                runs.append(run)
            continue
        taken = np.bincount(run_of[chosen], minlength=len(runs)).tolist()
        runs = [(t[n:], s[n:]) for (t, s), n in zip(runs, taken, strict=True) if len(t) > n]
        yield seqs[chosen].tolist()
        size = min(size * CHUNK_GROWTH, max(size, LARGEST_CHUNK))


def _heads(runs: list[_Entries], size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first ``size`` entries of each run, together: times, seqs, and the run each is from."""
    heads = [(times[:size], seqs[:size]) for times, seqs in runs]
    if not heads:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.intp)
    run_of = np.repeat(np.arange(len(heads)), [len(times) for times, _ in heads])
    return np.concatenate([t for t, _ in heads]), np.concatenate([s for _, s in heads]), run_of


@dataclass(frozen=True, slots=True)
class _Span:
    """The entries a search reads: stamped ``earliest..latest`` (µs, both included), past ``after``."""

    earliest: int
    latest: int
    newest_first: bool
    after: tuple[int, int] | None  # a page's cursor: (time, seq)

    @classmethod
    def of(cls, earliest: int, latest: int, newest_first: bool, after: tuple[int, int] | None) -> _Span:
        if after is not None:  # the page starts at the cursor's time
            earliest, latest = (earliest, min(latest, after[0])) if newest_first else (max(earliest, after[0]), latest)
        return cls(earliest, latest, newest_first, after)

    def reached_at(self, row: tuple[int, int, int, int]) -> int:
        """Of a row (id, first_seq, min_ts, max_ts): where the page's order first meets its entries."""
        return -row[3] if self.newest_first else row[2]

    def may_come_before(self, row: tuple[int, int, int, int], time: int) -> bool:
        """Whether the row may hold an entry the page gives before an entry stamped ``time``."""
        return row[3] >= time if self.newest_first else row[2] <= time

    def run(self, first_seq: int, blob: bytes) -> _Entries:
        """A row's (times, seqs) within the span and past ``after``, in the page's order."""
        times, offsets = stored_postings(blob)
        low, high = np.searchsorted(times, self.earliest, "left"), np.searchsorted(times, self.latest, "right")
        times, seqs = times[low:high], offsets[low:high] + first_seq
        if self.after is not None:  # at the cursor's time, the seqs it has not passed yet (the span cuts the rest)
            at_cursor = times == self.after[0]
            passed = seqs >= self.after[1] if self.newest_first else seqs <= self.after[1]
            keep = ~(at_cursor & passed)
            times, seqs = times[keep], seqs[keep]
        return (times[::-1], seqs[::-1]) if self.newest_first else (times, seqs)


def drop_purged(db: sqlite3.Connection, first_seq: int, last_seq: int) -> None:
    """Delete the rows about seqs ``first_seq..last_seq`` that no longer cover any stored event (retention)."""
    db.execute(
        "DELETE FROM class_postings WHERE last_seq >= ? AND first_seq <= ?"
        " AND NOT EXISTS (SELECT 1 FROM events e WHERE e.seq BETWEEN first_seq AND last_seq)",
        (first_seq, last_seq),
    )


def stored_postings(blob: bytes) -> tuple[np.ndarray, np.ndarray]:
    """A stored row's event times and seq offsets, as int64 (ValueError if the blob is not whole entries)."""
    count, rest = divmod(len(blob), _ENTRY_BYTES)
    if rest:
        raise ValueError(f"class postings of {len(blob)} bytes are not whole entries of {_ENTRY_BYTES}")
    times = np.frombuffer(blob, _TIME, count).astype(np.int64)
    offsets = np.frombuffer(blob, _OFFSET, count, offset=count * _TIME.itemsize).astype(np.int64)
    return times, offsets


def _joined(segments: list[_Entries]) -> _Entries:
    return np.concatenate([times for times, _ in segments]), np.concatenate([seqs for _, seqs in segments])


def _itself(classes: frozenset[str]) -> frozenset[str]:
    return classes


def _rows(first_seq: int, last_seq: int, segments: dict[str, _Entries], merged: bool) -> list[tuple]:
    """One row per class: its entries sorted by time, then seq."""
    if last_seq - first_seq >= 1 << 32:  # pragma: no cover - 4 billion events in one write or merge
        raise ValueError("a postings row cannot span 2^32 seqs")
    rows = []
    for name, (times, seqs) in sorted(segments.items()):
        blob, earliest, latest = _postings(first_seq, times, seqs)
        rows.append((name, first_seq, last_seq, earliest, latest, int(merged), blob))
    return rows


def _postings(first_seq: int, times: np.ndarray, seqs: np.ndarray) -> tuple[bytes, int, int]:
    """The ``postings`` blob of a row from ``first_seq`` holding these entries, and their earliest and latest time."""
    order = np.lexsort((seqs, times))
    times, offsets = times[order], seqs[order] - first_seq
    return times.astype(_TIME).tobytes() + offsets.astype(_OFFSET).tobytes(), int(times[0]), int(times[-1])


class PostingsOf:
    """SQL aggregate ``class_postings_of(ts, seq)``: the postings blob of one class's rows (migration 0009
    builds the table from ``event_classes`` with it, a row per class and 10,000 seqs)."""

    def __init__(self) -> None:
        self.times: list[int] = []
        self.seqs: list[int] = []

    def step(self, ts: int, seq: int) -> None:
        self.times.append(ts)
        self.seqs.append(seq)

    def finalize(self) -> bytes:
        seqs = np.asarray(self.seqs, np.int64)
        blob, _, _ = _postings(int(seqs.min()), np.asarray(self.times, np.int64), seqs)
        return blob


def register(db: sqlite3.Connection) -> None:
    """The SQL function migration 0009 uses, on a store connection."""
    # typeshed types aggregates as one int argument returning int; sqlite3 takes any arity and SQLite values
    db.create_aggregate("class_postings_of", 2, PostingsOf)  # type: ignore[arg-type]
