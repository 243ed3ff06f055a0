"""Retention: raw events go after ``retention.events_days``, alerts after ``retention.alerts_days``.

Storage limitation (PIPL, GDPR): the raw access events, and the dead letters
(raw lines too), are deleted once older than the configured days.  Alerts,
with the figures of their evidence, are kept longer, and so are the few raw
events an alert kept cites as its sample evidence, until the alert itself
goes.  An incident still open is never purged, however old.  A closed one is
the record of a case, kept ``alerts_days`` from when the case was closed:
its days count from the later of the activity's end and its last close (a
resolve or false-positive action in the triage log, wall clock).  Its closed
status counts only where its triage log backs it (its latest action that
sets a status leaves it so): one closed by hand, behind the product's back,
is kept and named (``PurgeReport.incidents_unbacked``, a warning in the
log), not deleted under a chained purge that would cover it.  An alert
goes with its incident, and only with it: it is kept while an incident that
lists it (or that its body names) is kept, whatever its own days, so no
incident kept lists an alert that is gone, and goes when every such incident
goes, so none outlives its case.  Only an alert that no stored incident
claims is judged by its own status and days.  Which incidents go is decided
in the transaction that deletes them: one reopened (or closed again) on the
dashboard while a purge runs is kept, with its alerts.  Likewise which
events an alert kept cites is read in each transaction that deletes events:
an alert stored meanwhile (a replay beside the purge) keeps its evidence.

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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import ClassVar, Protocol

from models.incident import CLOSED, STATUS_AFTER
from store import class_postings, customer_postings, event_keys
from store.base import KeptHistory, PurgeRecord
from store.chain import append_purge, drop_purged_leaves
from store.chain_audit import TRIAGE_ACTIONS, record_purge
from store.chain_incidents import record_purge as record_incident_purge

log = logging.getLogger(__name__)

_CLOSED = ("resolved", "false_positive")
_CLOSING = ("resolve", "false_positive")  # the triage actions that close an incident (``models.incident``)
_NAMED = 20  # incidents a log line names; past it, it counts the rest
_CHUNK = 5000  # events per purge transaction: the pipeline's writer waits for one chunk at most (and its evidence read)


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
    # closed and past keeping, kept: no stored triage action closes them (a status set behind the product's back)
    incidents_unbacked: list[str] = field(default_factory=list)
    chain_lists_dropped: int = 0
    dry_run: bool = True


class RetainingStore(ABC):
    @abstractmethod
    def purge(self, policy: RetentionPolicy, dry_run: bool = False) -> PurgeReport:
        """Delete (or, dry, count) what the policy says is past keeping."""


class SqliteRetention(RetainingStore):
    """``RetainingStore`` on the embedded store's connection (a mixin of ``store.sqlite.SqliteStore``)."""

    _db: sqlite3.Connection
    records_purges: ClassVar[bool] = True  # each purge that deleted events is in the chain (``purges``)

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
    try:
        _purge_alerts(db, alerts_before, report, dry_run)
        newest = db.execute("SELECT seq, ts FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        if newest is None:
            return report
        report.newest_kept = newest[1] < horizon
        old = "ts < ? AND seq < ?"
        if dry_run:
            _load_evidence(db, alerts_before)
            report.events = db.execute(f"SELECT count(*) FROM events WHERE {old}", (horizon, newest[0])).fetchone()[0]
        else:
            report.events = _purge_events(db, horizon, newest[0])
        # the evidence as last read: in a purge, under the lock of its last transaction
        report.events_kept_as_evidence = db.execute(
            f"SELECT count(*) FROM events e JOIN temp.evidence k ON k.event_id = e.event_id WHERE {old}",
            (horizon, newest[0]),
        ).fetchone()[0]
        if dry_run:
            report.events -= report.events_kept_as_evidence
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
        for table in ("evidence", "going", "listed"):
            db.execute(f"DROP TABLE IF EXISTS temp.{table}")
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


# An incident's closed status counts only if its triage log backs it: its latest action that sets a status is the
# one that leaves it so.  Only such an action closes an incident in the product (``store.chain_status``); a status
# set by hand (``UPDATE incidents SET status='resolved'``) would otherwise have the purge delete the case and chain
# that deletion, covering it.  One lookup on the index (incident_id, id), newest first.
_SETS_STATUS = ",".join(f"'{kind.value}'" for kind, status in STATUS_AFTER.items() if status is not None)
_CLOSED_BY = " ".join(
    f"WHEN '{status.value}' THEN '{kind.value}'" for kind, status in STATUS_AFTER.items() if status in CLOSED
)
_BACKED = (
    "coalesce((SELECT json_extract(t.body, '$.kind') FROM triage_actions t WHERE t.incident_id = incidents.incident_id"
    f" AND json_extract(t.body, '$.kind') IN ({_SETS_STATUS}) ORDER BY t.id DESC LIMIT 1)"
    f" = CASE incidents.status {_CLOSED_BY} END, 0)"
)
_INCIDENTS_PAST = f"{_past_keeping('incidents', 'incidents.incident_id')} AND {_BACKED}"
# closed and past keeping but for their triage log: kept, and named (``PurgeReport.incidents_unbacked``)
_INCIDENTS_UNBACKED = f"{_past_keeping('incidents', 'incidents.incident_id')} AND NOT {_BACKED}"
# the alerts that go, once ``_list_going`` has listed the incidents that go (temp.going) and, for each alert an
# incident lists, whether one kept lists it (temp.listed): an alert is judged by its incidents, not by its own
# days, which end before theirs (an incident's window spans its alerts').  Both the incidents that list it and
# the one its body names count: an alert that grew after its case was closed moved to another incident, open,
# while the closed one still lists it; and a store written by an earlier version holds alerts of closed cases
# moved, closed, into open incidents (``ingest.pipeline`` now moves only an alert that grew, open).
_HOLDER = "json_extract(alerts.body, '$.incident_id')"
_ALERTS_PAST = (
    "NOT EXISTS (SELECT 1 FROM temp.listed l WHERE l.alert_id = alerts.alert_id AND l.kept)"
    f" AND NOT EXISTS (SELECT 1 FROM incidents held WHERE held.incident_id = {_HOLDER}"
    " AND held.incident_id NOT IN (SELECT incident_id FROM temp.going))"
    # claimed by incidents that all go, or by none (its own status and days, then)
    " AND (alerts.alert_id IN (SELECT alert_id FROM temp.listed)"
    f" OR {_HOLDER} IN (SELECT incident_id FROM temp.going) OR ({_past_keeping('alerts', _HOLDER)}))"
)


def _list_going(db: sqlite3.Connection, horizon: dict[str, str], report: PurgeReport) -> list[str]:
    """The incidents past keeping, listed in temp.going, and the alerts incidents list in temp.listed; those kept
    only for want of a triage action closing them in ``report`` (and the log)."""
    unbacked = [row for (row,) in db.execute(f"SELECT incident_id FROM incidents WHERE {_INCIDENTS_UNBACKED}", horizon)]
    report.incidents_unbacked = sorted(unbacked)
    if unbacked:
        named = ", ".join(report.incidents_unbacked[:_NAMED])
        more = f" and {len(unbacked) - _NAMED} more" if len(unbacked) > _NAMED else ""
        log.warning(
            "retention: kept %d closed incidents past keeping that no stored triage action closes (%s%s): their"
            " status was not set by a triage action; `accesswatch verify` names them",
            len(unbacked), named, more,
        )  # fmt: skip
    db.execute("CREATE TEMP TABLE IF NOT EXISTS going (incident_id TEXT PRIMARY KEY) WITHOUT ROWID")
    db.execute("CREATE TEMP TABLE IF NOT EXISTS listed (alert_id TEXT PRIMARY KEY, kept INTEGER) WITHOUT ROWID")
    db.execute("DELETE FROM temp.going")
    db.execute("DELETE FROM temp.listed")
    db.execute(f"INSERT INTO temp.going SELECT incident_id FROM incidents WHERE {_INCIDENTS_PAST}", horizon)
    db.execute(
        "INSERT INTO temp.listed SELECT j.value, max(i.incident_id NOT IN (SELECT incident_id FROM temp.going))"
        " FROM incidents i, json_each(i.body, '$.alert_ids') j WHERE j.type = 'text' GROUP BY j.value"
    )
    return [incident_id for (incident_id,) in db.execute("SELECT incident_id FROM temp.going")]


def _purge_alerts(db: sqlite3.Connection, before: str, report: PurgeReport, dry_run: bool) -> None:
    """Closed incidents that ended and were closed before the horizon go, with their alerts and triage log (the
    purge of the incidents and of their log chained)."""
    horizon = {"before": before}
    if dry_run:
        report.incidents = len(_list_going(db, horizon, report))
        report.alerts = db.execute(f"SELECT count(*) FROM alerts WHERE {_ALERTS_PAST}", horizon).fetchone()[0]
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        # listed under the write lock, not before it: an incident reopened (or closed again) by the dashboard
        # between a listing and the deletion would be deleted open, its alerts kept with no incident
        incidents = _list_going(db, horizon, report)
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


def _load_evidence(db: sqlite3.Connection, kept_before: str | None = None) -> None:
    """The event ids that alerts still kept cite as evidence, in temp.evidence: those raw events stay with them.

    ``kept_before``: a dry run's alerts horizon, its alerts past keeping still stored (``_list_going`` listed
    them); a purge has deleted those, and every alert stored keeps what it cites.  Read in SQL, not alert by
    alert in Python: a purge beside a writer reads it again for each chunk (``_purge_events``), and 20,000
    alerts take a quarter of a second so, five times longer the other way.
    """
    db.execute("CREATE TEMP TABLE IF NOT EXISTS evidence (event_id TEXT PRIMARY KEY) WITHOUT ROWID")
    db.execute("DELETE FROM temp.evidence")
    kept = "" if kept_before is None else f" AND NOT ({_ALERTS_PAST})"
    db.execute(
        "INSERT OR IGNORE INTO temp.evidence SELECT j.value"
        f" FROM alerts, json_each(alerts.body, '$.evidence.event_ids') j WHERE j.type = 'text'{kept}",
        {"before": kept_before},
    )


def _purge_events(db: sqlite3.Connection, horizon: int, below_seq: int) -> int:
    """Delete the events past keeping but the evidence, a chunk per transaction; how many went.

    Which events the alerts cite is read in the transaction that deletes them, under its write lock: read
    before it, an alert another connection stored in between (a replay of old logs beside the purge, its
    alert citing events stored before the purge began) would lose the events it cites.  It is read again only
    when another connection has committed since (``PRAGMA data_version``): a purge beside no writer reads the
    alerts once, as it did before.
    """
    deleted, after, read_at = 0, 0, None
    while True:
        db.execute("BEGIN IMMEDIATE")
        try:
            version = db.execute("PRAGMA data_version").fetchone()[0]
            if version != read_at:
                _load_evidence(db)
                read_at = version
            rows = db.execute(
                "SELECT e.seq, e.id_key, e.event_id FROM events e WHERE e.seq > ? AND e.seq < ? AND e.ts < ?"
                " AND NOT EXISTS (SELECT 1 FROM temp.evidence k WHERE k.event_id = e.event_id)"
                " ORDER BY e.seq LIMIT ?",
                (after, below_seq, horizon, _CHUNK),
            ).fetchall()
            if rows:
                _delete_events(db, rows, horizon)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        if not rows:
            return deleted
        deleted += len(rows)
        after = rows[-1][0]


def _delete_events(db: sqlite3.Connection, rows: list[tuple], horizon: int) -> None:
    """Delete one chunk with its index rows, and record it in the chain, in the caller's transaction."""
    seqs = [(row[0],) for row in rows]
    db.executemany("DELETE FROM events WHERE seq = ?", seqs)
    # the keys stay, marked: a replay of the original log must not store the events again
    event_keys.keep_purged(db, [(row[1], row[2]) for row in rows])
    # postings that still cover a kept event stay: queries re-check every event they find
    customer_postings.drop_purged(db, rows[0][0], rows[-1][0])
    class_postings.drop_purged(db, rows[0][0], rows[-1][0])
    append_purge(db, horizon, [row[0] for row in rows])


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
