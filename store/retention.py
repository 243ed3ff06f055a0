"""Retention: raw events go after ``retention.events_days``, alerts after ``retention.alerts_days``.

Storage limitation (PIPL, GDPR): the raw access events, and the dead letters
(raw lines too), are deleted once older than the configured days.  Alerts,
with the figures of their evidence, are kept longer, and so are the few raw
events an alert kept cites as its sample evidence, until the alert itself
goes.  An incident still open is never purged, however old.  A closed one is
the record of a case, kept ``alerts_days`` from when the case was closed:
its days count from the later of the activity's end and its last close (a
resolve or false-positive action in the triage log, wall clock), and its
alerts' with it.  Which incidents go is decided in the transaction that
deletes them: one reopened (or closed again) on the dashboard while a purge
runs is kept, with its alerts.

A purge erases: SQLite's ``secure_delete`` is on while it runs, so the
deleted rows' bytes are overwritten with zeros in the file, not left in
their pages or on the free list.  Older copies of those pages in the
write-ahead log are overwritten as the log is reused after the next
checkpoint.

Each purge transaction appends a ``purge`` entry to the hash chain
(``store.chain``) recording its horizon and the seqs it deleted, so
``verify`` tells events purged from events removed behind the product's
back (the evidence a purge kept included), and the chain stays verifiable
for what remains.  A purge of incidents appends entries listing the
incidents and the triage actions it deleted (``store.chain_incidents``,
``store.chain_audit``).  The purged events' idempotency keys stay, marked
(``store.event_keys``): replaying the original log afterwards stores none
of them again, and ``verify`` counts each once, purged.  The newest stored
event is always kept: store positions (checkpoints, the dashboard's
roll-ups, the chain) count on its seq never going back, which SQLite
guarantees only while a row holds it.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import orjson

from store import class_postings, customer_postings, event_keys
from store.base import KeptHistory, PurgeRecord
from store.chain import append_purge, drop_purged_leaves
from store.chain_audit import TRIAGE_ACTIONS, record_purge
from store.chain_incidents import record_purge as record_incident_purge

log = logging.getLogger(__name__)

_CLOSED = ("resolved", "false_positive")
_CLOSING = ("resolve", "false_positive")  # the triage actions that close an incident (``models.incident``)
_CHUNK = 5000  # events per purge transaction: the pipeline's writer waits for no longer than one chunk


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    events_before: datetime  # raw events stamped before this go (event time)
    alerts_before: datetime  # closed alerts and incidents that ended, and were closed, before this go

    @classmethod
    def of(cls, events_days: int, alerts_days: int, now: datetime) -> RetentionPolicy:
        return cls(now - timedelta(days=events_days), now - timedelta(days=alerts_days))


@dataclass(slots=True)
class PurgeReport:
    """What a purge removed, or (dry run) would remove."""

    events: int = 0
    events_kept_as_evidence: int = 0  # older than the horizon, cited by an alert kept
    newest_kept: bool = False  # the newest event is older than the horizon and kept (see the module doc)
    dead_letters: int = 0
    alerts: int = 0
    incidents: int = 0
    chain_lists_dropped: int = 0
    dry_run: bool = True


class RetainingStore(ABC):
    @abstractmethod
    def purge(self, policy: RetentionPolicy, dry_run: bool = False) -> PurgeReport:
        """Delete (or, dry, count) what the policy says is past keeping."""


class SqliteRetention(RetainingStore):
    """``RetainingStore`` on the embedded store's connection (a mixin of ``store.sqlite.SqliteStore``)."""

    _db: sqlite3.Connection

    def purge(self, policy: RetentionPolicy, dry_run: bool = False) -> PurgeReport:
        return purge(self._db, policy, dry_run)

    def kept_history(self, now: datetime) -> KeptHistory:
        """The oldest event kept, and the horizon and time of the latest purge that deleted any (``purges``)."""
        oldest = self._db.execute("SELECT min(ts) FROM events").fetchone()[0]  # from the index on ts
        purges = self.purges()
        return KeptHistory(
            oldest=None if oldest is None else datetime.fromtimestamp(oldest / 1_000_000, UTC),
            deleted_before=max((p.horizon for p in purges), default=None),
            deleted_at=max((p.at for p in purges), default=None),
        )

    def purges(self) -> list[PurgeRecord]:
        """From the chain's purge entries (one a transaction, each holding its horizon as max_ts and the time it
        ran): a run's entries joined by their horizon.  A purge that deleted nothing wrote none, and left nothing
        older than its horizon but evidence and the newest event."""
        rows = self._db.execute(
            "SELECT min(written_at), max_ts, sum(events) FROM chain WHERE kind = 'purge'"
            " GROUP BY max_ts ORDER BY min(n)"
        ).fetchall()
        return [
            PurgeRecord(datetime.fromisoformat(at), datetime.fromtimestamp(horizon / 1_000_000, UTC), events)
            for at, horizon, events in rows
        ]


def _micros(moment: datetime) -> int:
    return round(moment.timestamp() * 1_000_000)


def _text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def purge(db: sqlite3.Connection, policy: RetentionPolicy, dry_run: bool) -> PurgeReport:
    if dry_run:
        return _purge(db, policy, dry_run)
    # Erased, not merely unlinked: without it SQLite leaves a deleted row's bytes in its page, or the
    # whole page on the free list, where anyone with the file reads the personal data it held.  Only
    # for the purge: zeroing costs writes, and the pipeline's inserts free nothing.
    was = db.execute("PRAGMA secure_delete").fetchone()[0]
    db.execute("PRAGMA secure_delete=ON")
    try:
        return _purge(db, policy, dry_run)
    finally:
        db.execute(f"PRAGMA secure_delete={('OFF', 'ON', 'FAST')[was]}")


def _purge(db: sqlite3.Connection, policy: RetentionPolicy, dry_run: bool) -> PurgeReport:
    report = PurgeReport(dry_run=dry_run)
    horizon, alerts_before = _micros(policy.events_before), _text(policy.alerts_before)
    _purge_alerts(db, alerts_before, report, dry_run)
    newest = db.execute("SELECT seq, ts FROM events ORDER BY seq DESC LIMIT 1").fetchone()
    if newest is None:
        return report
    report.newest_kept = newest[1] < horizon
    _load_evidence(db, alerts_before)
    try:
        old = "ts < ? AND seq < ?"
        report.events_kept_as_evidence = db.execute(
            f"SELECT count(*) FROM events e JOIN temp.evidence k ON k.event_id = e.event_id WHERE {old}",
            (horizon, newest[0]),
        ).fetchone()[0]
        if dry_run:
            report.events = (
                db.execute(f"SELECT count(*) FROM events WHERE {old}", (horizon, newest[0])).fetchone()[0]
                - report.events_kept_as_evidence
            )
        else:
            for chunk in _chunks(db, horizon, newest[0]):
                report.events += _delete_events(db, chunk, horizon)
        dead = "received_at < ?"
        horizon_text = _text(policy.events_before)
        if dry_run:
            report.dead_letters = db.execute(
                f"SELECT count(*) FROM dead_letters WHERE {dead}", (horizon_text,)
            ).fetchone()[0]
        else:
            report.dead_letters = db.execute(f"DELETE FROM dead_letters WHERE {dead}", (horizon_text,)).rowcount
            db.execute("BEGIN IMMEDIATE")
            report.chain_lists_dropped = drop_purged_leaves(db)
            db.execute("COMMIT")
    finally:
        db.execute("DROP TABLE IF EXISTS temp.evidence")
    return report


def _past_keeping(table: str, incident_id: str) -> str:
    """SQL: a closed row of ``table`` past keeping, with ``before`` as its one parameter (``:before``).

    Past keeping once both its activity's end and its incident's last close are before the horizon: an
    incident closed a month after the activity is kept a month longer, its alerts with it.  A row whose
    incident has no close in the triage log (an alert without an incident) counts from its end alone.
    """
    closed, closing = (",".join(f"'{value}'" for value in values) for values in (_CLOSED, _CLOSING))
    # the triage log's times are in the form of ``window_end`` (``store.sqlite._utc_text``): as text, they sort as time
    closed_at = (
        f"(SELECT max(t.at) FROM triage_actions t WHERE t.incident_id = {incident_id}"
        f" AND json_extract(t.body, '$.kind') IN ({closing}))"
    )
    return f"{table}.status IN ({closed}) AND {table}.window_end < :before AND coalesce({closed_at}, '') < :before"


# the alerts and incidents past keeping: alerts by the incident their body names, and never while it is open:
# a store written by an earlier version holds alerts of closed cases moved, closed, into open incidents
# (``ingest.pipeline`` now moves only an alert that grew, open)
_HOLDER = "json_extract(alerts.body, '$.incident_id')"
_ALERTS_PAST = (
    f"{_past_keeping('alerts', _HOLDER)} AND NOT EXISTS (SELECT 1 FROM incidents held"
    f" WHERE held.incident_id = {_HOLDER} AND held.status NOT IN ('resolved', 'false_positive'))"
)
_INCIDENTS_PAST = _past_keeping("incidents", "incidents.incident_id")


def _purge_alerts(db: sqlite3.Connection, before: str, report: PurgeReport, dry_run: bool) -> None:
    """Closed incidents that ended and were closed before the horizon go, with their alerts and triage log (the
    purge of the incidents and of their log chained)."""
    horizon = {"before": before}
    listing = f"SELECT incident_id FROM incidents WHERE {_INCIDENTS_PAST}"
    if dry_run:
        report.incidents = len(db.execute(listing, horizon).fetchall())
        report.alerts = db.execute(f"SELECT count(*) FROM alerts WHERE {_ALERTS_PAST}", horizon).fetchone()[0]
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        # listed under the write lock, not before it: an incident reopened (or closed again) by the dashboard
        # between a listing and the deletion would be deleted open, its alerts kept with no incident
        incidents = [row[0] for row in db.execute(listing, horizon)]
        # the alerts first: they are judged by their incident's triage log, deleted with the incident below
        alerts = db.execute(f"DELETE FROM alerts WHERE {_ALERTS_PAST}", horizon).rowcount
        actions: list[int] = []  # the triage log's rows deleted, recorded in the chain as event purges are
        for start in range(0, len(incidents), 500):
            ids = incidents[start : start + 500]
            marks = ",".join("?" * len(ids))
            db.execute(f"DELETE FROM incidents WHERE incident_id IN ({marks})", ids)
            of_them = f"FROM triage_actions WHERE incident_id IN ({marks})"
            actions += [row_id for (row_id,) in db.execute(f"SELECT id {of_them}", ids)]
            db.execute(f"DELETE {of_them}", ids)
        record_purge(db, TRIAGE_ACTIONS, actions)
        record_incident_purge(db, incidents)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    report.incidents, report.alerts = len(incidents), alerts


def _load_evidence(db: sqlite3.Connection, alerts_before: str) -> None:
    """The event ids that alerts still kept cite as evidence: those raw events stay with them."""
    db.execute("CREATE TEMP TABLE IF NOT EXISTS evidence (event_id TEXT PRIMARY KEY) WITHOUT ROWID")
    db.execute("DELETE FROM temp.evidence")
    kept = db.execute(f"SELECT body FROM alerts WHERE NOT ({_ALERTS_PAST})", {"before": alerts_before})
    for (body,) in kept:
        ids = orjson.loads(body).get("evidence", {}).get("event_ids", [])
        db.executemany("INSERT OR IGNORE INTO temp.evidence VALUES (?)", [(i,) for i in ids if isinstance(i, str)])


def _chunks(db: sqlite3.Connection, horizon: int, below_seq: int) -> Iterator[list[tuple]]:
    """Events past keeping, a chunk at a time (each deleted before the next is read)."""
    after = 0
    while True:
        rows = db.execute(
            "SELECT e.seq, e.id_key, e.event_id FROM events e WHERE e.seq > ? AND e.seq < ? AND e.ts < ?"
            " AND NOT EXISTS (SELECT 1 FROM temp.evidence k WHERE k.event_id = e.event_id)"
            " ORDER BY e.seq LIMIT ?",
            (after, below_seq, horizon, _CHUNK),
        ).fetchall()
        if not rows:
            return
        yield rows
        after = rows[-1][0]


def _delete_events(db: sqlite3.Connection, rows: list[tuple], horizon: int) -> int:
    """Delete one chunk with its index rows, and record it in the chain, in one transaction."""
    db.execute("BEGIN IMMEDIATE")
    try:
        seqs = [(row[0],) for row in rows]
        db.executemany("DELETE FROM events WHERE seq = ?", seqs)
        # the keys stay, marked: a replay of the original log must not store the events again
        event_keys.keep_purged(db, [(row[1], row[2]) for row in rows])
        # postings that still cover a kept event stay: queries re-check every event they find
        customer_postings.drop_purged(db, rows[0][0], rows[-1][0])
        class_postings.drop_purged(db, rows[0][0], rows[-1][0])
        append_purge(db, horizon, [row[0] for row in rows])
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return len(rows)


class OwnConnection(Protocol):
    """A store the retention loop opens for itself: it purges, then is closed."""

    def purge(self, policy: RetentionPolicy, dry_run: bool = False) -> PurgeReport: ...
    def close(self) -> None: ...


class RetentionLoop:
    """Applies the policy while a pipeline runs: at start, then every ``interval`` seconds, on a thread.

    It opens a store connection of its own (``open_store``), so it never
    shares one with the pipeline mid-transaction; its purges go a chunk per
    transaction, so the pipeline's writer waits for one chunk at most.  A
    purge that fails is logged and tried again at the next interval: the
    pipeline is not stopped for it.
    """

    def __init__(
        self,
        open_store: Callable[[], OwnConnection],
        policy_at: Callable[[datetime], RetentionPolicy],
        interval: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.open_store = open_store
        self.policy_at = policy_at
        self.interval = interval
        self.clock = clock
        self.purges = 0  # done, for tests and logs
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="retention", daemon=True)

    def start(self) -> RetentionLoop:
        self._thread.start()
        return self

    def stop(self, timeout: float = 60.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                store = self.open_store()
                try:
                    report = store.purge(self.policy_at(self.clock()))
                finally:
                    store.close()
                self.purges += 1
                log.info(
                    "retention: purged %d events, %d dead letters, %d alerts, %d incidents",
                    report.events, report.dead_letters, report.alerts, report.incidents,
                )  # fmt: skip
            except Exception:  # the pipeline goes on; the next interval tries again
                log.exception("retention: purge failed")
            self._stop.wait(self.interval)
