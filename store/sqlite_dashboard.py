"""The dashboard section of the store port, for SQLite: roll-ups and the audit of auditors.

A page must answer in well under two seconds over ten million events, so
the figures come from roll-up tables (per actor and hour, per hour, per hour
and data class, per actor, day and data class/resource/action), never from
the events themselves.  The roll-ups are folded incrementally: each reading
first folds the events stored past the remembered position, in chunks that
hold the write lock briefly, so the dashboard never waits for the pipeline
and the pipeline's hot write path stays as it is.  Folding is additive and
keyed by the last folded ``seq``, inside one transaction per chunk, so two
dashboards folding at once never count an event twice.
"""

from __future__ import annotations

import sqlite3
import statistics
from collections import defaultdict
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, date, datetime, timedelta
from typing import cast
from zoneinfo import ZoneInfo

from models.alert import Severity
from models.dashboard import (
    ActorProfile,
    AlertDayCount,
    ClassDay,
    DataAccess,
    DataAccessQuery,
    FoldProgress,
    Health,
    HourActivity,
    PeerActivity,
    PeerHour,
    TriageSummary,
    Usage,
)
from models.event import Action, format_utc
from models.incident import TriageActionKind
from store import actor_days
from store.base import IncidentFacet, IncidentQuery, Store
from store.chain_audit import DATA_ACCESSES, add_row
from store.dash_served import REFUSED_BEFORE
from store.local_days import local_day_sql, offsets_between
from store.unlisted import listed_or_found

FOLD_CHUNK = 50_000  # events per fold transaction: the pipeline waits at most one chunk's fold
# A reading folds the backlog itself only when it is small; a larger one (a
# first look at a big store, a replay running) is folded in the background by
# the dashboard (``fold()``), and the figures say how far behind they are.
FOLD_ON_READ = 100_000
MARK_EVERY = timedelta(seconds=10)  # wall-clock samples of the event count, for the ingestion rate
MARKS_KEPT = timedelta(days=2)
_HOUR_US = 3_600_000_000
_DAY_US = 86_400_000_000
_EGRESS = tuple(action.value for action in Action if action.is_egress)
# An event's records read: only data actually served, as the detectors count them (``detectors.windows``); a
# refused or failed access's records were asked for, not read (its events are counted, a refusal as denied).
SERVED_RECORDS = "CASE WHEN outcome = 'success' THEN record_count ELSE 0 END"
_REVIEW_KINDS = (
    TriageActionKind.ACKNOWLEDGE.value,
    TriageActionKind.RESOLVE.value,
    TriageActionKind.FALSE_POSITIVE.value,
)
_OPEN = ("open", "acknowledged")


def _micros(moment: datetime) -> int:
    return round(moment.timestamp() * 1_000_000)


def _hour(moment: datetime) -> int:
    return _micros(moment) // _HOUR_US


def _from_hour(hour: int) -> datetime:
    return datetime.fromtimestamp(hour * 3600, UTC)


def _hour_activity(
    hour: int, events: int, records: int, egress: int, denied: int, *, refused_before: int
) -> HourActivity:
    """An hour's roll-up figures (``hour``: UTC hours since the epoch); before ``refused_before``, its records may
    include purged refused events' (``store.dash_served``)."""
    return HourActivity(
        hour=_from_hour(hour),
        events=events,
        records=records,
        egress_records=egress,
        denied=denied,
        records_include_refused=hour < refused_before,
    )


def _from_micros(micros: int | None) -> datetime | None:
    return None if micros is None else datetime.fromtimestamp(micros / 1_000_000, UTC)


def _text(moment: datetime) -> str:
    """The form of the stored wall-clock and window texts: sorts as time."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class SqliteDashboardMixin:
    """Mixed into ``SqliteStore``; uses its connection ``self._db``."""

    _db: sqlite3.Connection
    _read_snapshot: Callable[[], AbstractContextManager[None]]

    # -- folding the roll-ups -------------------------------------------------------
    def fold(self, at_most: int | None = None) -> int:
        """Fold the events stored since the last fold into the roll-ups; how many were folded.

        With ``at_most``, nothing is folded when more events than that are waiting.
        """
        db = self._db
        last = db.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
        if at_most is not None and last - self._folded_seq() > at_most:
            return 0
        folded = 0
        try:
            done = self._folded_seq()
            while done < last:
                upto = min(last, done + FOLD_CHUNK)
                db.execute("BEGIN IMMEDIATE")
                try:
                    done = self._folded_seq()  # another dashboard may have folded meanwhile
                    if done < upto:
                        self._fold_range(done, upto)
                        db.execute(
                            "INSERT INTO dash_fold VALUES ('events', ?)"
                            " ON CONFLICT(name) DO UPDATE SET seq = excluded.seq",
                            (upto,),
                        )
                        folded += upto - done
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                done = max(done, upto)
            self._mark(last)
        except sqlite3.OperationalError as exc:
            if "readonly" not in str(exc):
                raise
            # a read-only store shows the roll-ups as a writer last left them
        return folded

    def _folded_seq(self) -> int:
        row = self._db.execute("SELECT seq FROM dash_fold WHERE name = 'events'").fetchone()
        return row[0] if row else 0

    def _fold_range(self, after: int, upto: int) -> None:
        db = self._db
        egress = ",".join(f"'{action}'" for action in _EGRESS)  # enum values, not input
        # one pass over the events into groups that share actor, hour, classes,
        # action and resource (far fewer than the events); every roll-up is
        # then summed from the groups
        db.execute("DROP TABLE IF EXISTS temp.dash_batch")
        db.execute(
            "CREATE TEMP TABLE dash_batch AS SELECT actor_id, ts / ? AS hour, classes, action,"
            " system || '/' || resource_type AS resource, actor_kind, count(*) AS events,"
            f" sum({SERVED_RECORDS}) AS records, sum(outcome = 'denied') AS denied"
            " FROM events WHERE seq > ? AND seq <= ? GROUP BY 1, 2, 3, 4, 5, 6",
            (_HOUR_US, after, upto),
        )
        egress_records = f"sum(CASE WHEN action IN ({egress}) THEN records ELSE 0 END)"
        db.execute(
            f"INSERT INTO dash_actor_hours SELECT actor_id, hour, sum(events), sum(records), {egress_records},"
            " sum(denied) FROM dash_batch WHERE true GROUP BY actor_id, hour"
            " ON CONFLICT(actor_id, hour) DO UPDATE SET events = events + excluded.events,"
            " records = records + excluded.records, egress = egress + excluded.egress,"
            " denied = denied + excluded.denied",
        )
        db.execute(
            f"INSERT INTO dash_hours SELECT hour, sum(events), sum(records), {egress_records}, sum(denied)"
            " FROM dash_batch WHERE true GROUP BY hour"
            " ON CONFLICT(hour) DO UPDATE SET events = events + excluded.events, records = records + excluded.records,"
            " egress = egress + excluded.egress, denied = denied + excluded.denied",
        )
        # an event's classes are kept comma-separated on its row; the batch has
        # few distinct sets, so each set is split once and joined by equality
        sets = [row[0] for row in db.execute("SELECT DISTINCT classes FROM dash_batch")]
        db.execute("DROP TABLE IF EXISTS temp.dash_class_sets")
        db.execute("CREATE TEMP TABLE dash_class_sets (classes TEXT NOT NULL, class TEXT NOT NULL)")
        db.executemany(
            "INSERT INTO dash_class_sets VALUES (?, ?)",
            [(text, name) for text in sets for name in text.split(",") if name],
        )
        db.execute("CREATE INDEX temp.dash_class_sets_by_set ON dash_class_sets(classes)")
        by_class = "dash_batch b JOIN dash_class_sets c ON c.classes = b.classes"
        db.execute(
            f"INSERT INTO dash_class_kind_hours SELECT b.hour, c.class, b.actor_kind, sum(b.events), sum(b.records)"
            f" FROM {by_class} WHERE true GROUP BY 1, 2, 3 ON CONFLICT(hour, class, actor_kind) DO UPDATE SET"
            " events = events + excluded.events, records = records + excluded.records",
        )
        usage = (
            " GROUP BY 1, 3, 4 ON CONFLICT(actor_id, facet, value, day) DO UPDATE SET"
            " events = events + excluded.events, records = records + excluded.records"
        )
        db.execute(
            "INSERT INTO dash_usage SELECT b.actor_id, 'class', c.class, b.hour / 24, sum(b.events), sum(b.records)"
            f" FROM {by_class} WHERE true" + usage
        )
        for facet in ("resource", "action"):
            db.execute(
                f"INSERT INTO dash_usage SELECT actor_id, '{facet}', {facet}, hour / 24, sum(events), sum(records)"
                " FROM dash_batch WHERE true" + usage
            )
        db.execute("DROP TABLE temp.dash_batch")
        db.execute("DROP TABLE temp.dash_class_sets")
        # who the actor is, as its latest event in the span says
        db.execute(
            "INSERT INTO dash_actors SELECT a.actor_id, e.actor_kind, json_extract(e.body, '$.actor.name'),"
            " json_extract(e.body, '$.actor.role'), json_extract(e.body, '$.actor.department'),"
            " json_extract(e.body, '$.actor.organization'), a.first_ts, a.last_ts"
            " FROM (SELECT actor_id, max(seq) AS seq, min(ts) AS first_ts, max(ts) AS last_ts FROM events"
            "       WHERE seq > ? AND seq <= ? GROUP BY actor_id) a JOIN events e ON e.seq = a.seq WHERE true"
            " ON CONFLICT(actor_id) DO UPDATE SET kind = excluded.kind, name = coalesce(excluded.name, name),"
            " role = coalesce(excluded.role, role), department = coalesce(excluded.department, department),"
            " organization = coalesce(excluded.organization, organization),"
            " first_ts = min(first_ts, excluded.first_ts), last_ts = max(last_ts, excluded.last_ts)",
            (after, upto),
        )

    def _mark(self, events: int) -> None:
        now = datetime.now(UTC)
        db = self._db
        latest = db.execute("SELECT max(at) FROM dash_ingest_marks").fetchone()[0]
        if latest is not None and latest > _text(now - MARK_EVERY):
            return
        db.execute("INSERT OR REPLACE INTO dash_ingest_marks VALUES (?, ?)", (_text(now), events))
        db.execute("DELETE FROM dash_ingest_marks WHERE at < ?", (_text(now - MARKS_KEPT),))

    # -- incidents and alerts ----------------------------------------------------------
    def incident_counts(self, query: IncidentQuery, by: IncidentFacet = "severity") -> dict[str, int]:
        where, params = _incident_filters(query)
        key = {
            "severity": "severity_rank",
            "status": "status",
            "organization": "json_extract(body, '$.actor_organization')",
            "actor_kind": "json_extract(body, '$.actor_kind')",
        }.get(by)
        if by == "detector":
            sql = (
                "SELECT d.value, count(*) FROM incidents, json_each(incidents.body, '$.detectors') d"
                f" WHERE {' AND '.join(where)} GROUP BY d.value"
            )
        elif key is not None:
            sql = f"SELECT {key}, count(*) FROM incidents WHERE {' AND '.join(where)} GROUP BY 1"
        else:
            raise ValueError(f"cannot count incidents by {by!r}")
        counts = {}
        for value, count in self._db.execute(sql, params):
            if value is None:
                continue
            name = Severity.from_rank(value).value if by == "severity" else str(value)
            counts[name] = count
        return counts

    def alerts_per_day(self, since: datetime, until: datetime, zone: ZoneInfo) -> list[AlertDayCount]:
        rows = self._db.execute(
            "SELECT window_start, severity_rank, detector, json_extract(body, '$.actor_kind'), count(*)"
            " FROM alerts WHERE window_start >= ? AND window_start < ? GROUP BY 1, 2, 3, 4",
            (_text(since), _text(until)),
        )
        # distinct window starts (a few a day), dated here in the zone
        counts: dict[tuple[date, int, str, str], int] = defaultdict(int)
        for start, rank, detector, kind, count in rows:
            counts[(datetime.fromisoformat(start).astimezone(zone).date(), rank, detector, kind)] += count
        return [
            AlertDayCount(
                day=day, severity=Severity.from_rank(rank).value, detector=detector, actor_kind=kind, alerts=count
            )
            for (day, rank, detector, kind), count in sorted(counts.items())
        ]

    # -- activity ------------------------------------------------------------------------
    def activity(self, since: datetime, until: datetime, actor_id: str | None = None) -> list[HourActivity]:
        self.fold(at_most=FOLD_ON_READ)
        first, end = _hour(since), -(-_micros(until) // _HOUR_US)
        if actor_id is None:
            rows = self._db.execute(
                "SELECT hour, events, records, egress, denied FROM dash_hours WHERE hour >= ? AND hour < ?"
                " ORDER BY hour",
                (first, end),
            )
        else:
            rows = self._actor_hours(actor_id, first, end)
        refused_before = self._refused_before()
        return [_hour_activity(hour, *figures, refused_before=refused_before) for hour, *figures in rows]

    def _refused_before(self) -> int:
        """The first hour whose roll-ups count served records only: before it, purged refused events' may remain
        (``store.dash_served``); the earliest hour of all on a store that never counted them."""
        row = self._db.execute("SELECT seq FROM dash_fold WHERE name = ?", (REFUSED_BEFORE,)).fetchone()
        return row[0] if row else -(2**63)

    def _actor_hours(self, actor_id: str, first: int, end: int) -> sqlite3.Cursor:
        return self._db.execute(
            "SELECT hour, events, records, egress, denied FROM dash_actor_hours"
            " WHERE actor_id = ? AND hour >= ? AND hour < ? ORDER BY hour",
            (actor_id, first, end),
        )

    def fold_progress(self) -> FoldProgress:
        self.fold(at_most=FOLD_ON_READ)
        with self._read_snapshot():
            last = self._db.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
            return FoldProgress(events=last, folded=self._folded_seq())

    def exact_activity(
        self, actor_id: str, since: datetime, until: datetime, at_most: int
    ) -> list[HourActivity] | None:
        """The roll-ups' hours, and the actor's events past the folded seq summed as ``_fold_range`` sums them.

        Retention folds what it deletes first, so the two together are every event ingested, as ``activity``
        counts them once folded.  The actor's events are read through its day index (``store.actor_days``):
        an incident's span of them, not the store's backlog.
        """
        self.fold(at_most=FOLD_ON_READ)
        first, end = _hour(since), -(-_micros(until) // _HOUR_US)
        egress_actions = ",".join(f"'{action}'" for action in _EGRESS)  # enum values, not input
        # one snapshot: a fold committed meanwhile by another connection would count its chunk twice
        with self._read_snapshot():
            hours = {hour: list(figures) for hour, *figures in self._actor_hours(actor_id, first, end)}
            folded = self._folded_seq()
            refused_before = self._refused_before()
            waiting = self._db.execute(
                f"SELECT ts / ? AS hour, count(*), sum({SERVED_RECORDS}),"
                f" sum(CASE WHEN action IN ({egress_actions}) THEN {SERVED_RECORDS} ELSE 0 END),"
                " sum(outcome = 'denied')"
                " FROM (SELECT e.ts, e.record_count, e.action, e.outcome FROM events e"
                f" WHERE e.actor_id = ? AND {actor_days.WITHIN_DAYS} AND e.ts >= ? AND e.ts < ? AND e.seq > ?"
                " LIMIT ?) GROUP BY 1",
                (
                    _HOUR_US,
                    actor_id,
                    *actor_days.within_days(first * _HOUR_US, end * _HOUR_US - 1),
                    first * _HOUR_US,
                    end * _HOUR_US,
                    folded,
                    at_most + 1,
                ),
            ).fetchall()
        if sum(row[1] for row in waiting) > at_most:
            return None
        for hour, *figures in waiting:
            hours[hour] = [a + b for a, b in zip(hours.get(hour, [0, 0, 0, 0]), figures, strict=True)]
        return [
            _hour_activity(hour, *figures, refused_before=refused_before) for hour, figures in sorted(hours.items())
        ]

    def peer_activity(self, actor_id: str, since: datetime, until: datetime) -> PeerActivity:
        self.fold(at_most=FOLD_ON_READ)
        me = self._db.execute(
            "SELECT kind, role, organization FROM dash_actors WHERE actor_id = ?", (actor_id,)
        ).fetchone()
        if me is None:
            return PeerActivity(peers=0, hours=[])
        group = "a.kind = ? AND a.role IS ? AND a.organization IS ? AND a.actor_id != ?"
        peers = self._db.execute(f"SELECT count(*) FROM dash_actors a WHERE {group}", (*me, actor_id)).fetchone()[0]
        rows = self._db.execute(
            "SELECT h.hour, h.records FROM dash_actors a JOIN dash_actor_hours h"
            f" ON h.actor_id = a.actor_id AND h.hour >= ? AND h.hour < ? WHERE {group}",
            (_hour(since), -(-_micros(until) // _HOUR_US), *me, actor_id),
        )
        by_hour: dict[int, list[int]] = defaultdict(list)
        for hour, records in rows:
            by_hour[hour].append(records)
        return PeerActivity(
            peers=peers,
            hours=[
                PeerHour(
                    hour=_from_hour(hour),
                    active_peers=len(values),
                    records=sum(values),
                    median_records=float(statistics.median(values)),
                )
                for hour, values in sorted(by_hour.items())
            ],
        )

    def actor_profile(self, actor_id: str, since: datetime, until: datetime, top: int = 10) -> ActorProfile | None:
        self.fold(at_most=FOLD_ON_READ)
        row = self._db.execute(
            "SELECT kind, name, role, department, organization, first_ts, last_ts FROM dash_actors WHERE actor_id = ?",
            (actor_id,),
        ).fetchone()
        if row is None:
            return None
        kind, name, role, department, organization, first_ts, last_ts = row
        first_day, end_day = _micros(since) // _DAY_US, -(-_micros(until) // _DAY_US)

        def usage(facet: str) -> list[Usage]:
            rows = self._db.execute(
                "SELECT value, sum(events), sum(records) FROM dash_usage"
                " WHERE actor_id = ? AND facet = ? AND day >= ? AND day < ?"
                " GROUP BY value ORDER BY 3 DESC, 2 DESC, 1 LIMIT ?",
                (actor_id, facet, first_day, end_day, top),
            )
            return [Usage(name=value, events=events, records=records) for value, events, records in rows]

        return ActorProfile(
            actor_id=actor_id,
            kind=kind,
            name=name,
            role=role,
            department=department,
            organization=organization,
            first_seen=_from_micros(first_ts),
            last_seen=_from_micros(last_ts),
            data_classes=usage("class"),
            resources=usage("resource"),
            actions=usage("action"),
        )

    def class_days(self, since: datetime, until: datetime, zone: ZoneInfo, by_kind: bool = False) -> list[ClassDay]:
        self.fold(at_most=FOLD_ON_READ)
        first, end = _hour(since), -(-_micros(until) // _HOUR_US)
        day, params = local_day_sql(f"(hour * {_HOUR_US})", offsets_between(zone, first * _HOUR_US, end * _HOUR_US))
        kind = "actor_kind" if by_kind else "NULL"
        rows = self._db.execute(
            f"SELECT date({day} * 86400, 'unixepoch'), class, {kind}, sum(events), sum(records)"
            " FROM dash_class_kind_hours WHERE hour >= ? AND hour < ? GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
            (*params, first, end),
        )
        return [
            ClassDay(day=day, data_class=name, actor_kind=kind, events=events, records=records)
            for day, name, kind, events, records in rows
        ]

    # -- triage and the 48-hour deadline -----------------------------------------------------
    def triage_summary(self, since: datetime, until: datetime, now: datetime, deadline_seconds: float) -> TriageSummary:
        db = self._db
        span = (format_utc(since), format_utc(until))
        incidents = db.execute(
            "SELECT count(*) FROM dash_incident_raised WHERE raised_at >= ? AND raised_at < ?", span
        ).fetchone()[0]
        marks = ",".join("?" * len(_REVIEW_KINDS))
        reviewed = db.execute(
            "SELECT r.raised_at, min(t.at) FROM dash_incident_raised r JOIN triage_actions t"
            " ON t.incident_id = r.incident_id"
            f" WHERE r.raised_at >= ? AND r.raised_at < ? AND json_extract(t.body, '$.kind') IN ({marks})"
            " GROUP BY r.incident_id",
            (*span, *_REVIEW_KINDS),
        ).fetchall()
        waits = [
            max(0.0, (datetime.fromisoformat(acted) - datetime.fromisoformat(raised)).total_seconds())
            for raised, acted in reviewed
        ]
        cutoff = format_utc(now - timedelta(seconds=deadline_seconds))
        overdue_where = (
            "FROM dash_incident_raised r JOIN incidents i ON i.incident_id = r.incident_id"
            " WHERE r.raised_at < ? AND i.status IN (?, ?)"
        )
        overdue = db.execute(f"SELECT count(*) {overdue_where}", (cutoff, *_OPEN)).fetchone()[0]
        oldest = db.execute(
            f"SELECT r.incident_id {overdue_where} ORDER BY r.raised_at, r.incident_id LIMIT 50", (cutoff, *_OPEN)
        ).fetchall()
        return TriageSummary(
            incidents=incidents,
            reviewed=len(waits),
            median_seconds_to_acknowledge=statistics.median(waits) if waits else None,
            open_past_deadline=overdue,
            overdue_incident_ids=[incident_id for (incident_id,) in oldest],
        )

    def raised_at(self, incident_id: str) -> datetime | None:
        row = self._db.execute(
            "SELECT raised_at FROM dash_incident_raised WHERE incident_id = ?", (incident_id,)
        ).fetchone()
        return datetime.fromisoformat(row[0]) if row else None

    # -- health ------------------------------------------------------------------------------
    def health(self, marks_since: datetime | None = None) -> Health:
        self.fold(at_most=FOLD_ON_READ)
        db = self._db
        # one aggregate a query: SQLite answers a lone max() from the index, two of them by a full scan
        events = db.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
        newest = db.execute("SELECT max(ts) FROM events").fetchone()[0]
        marks = db.execute(
            "SELECT at, events FROM dash_ingest_marks WHERE at >= ? ORDER BY at",
            (_text(marks_since) if marks_since else "",),
        ).fetchall()
        return Health(
            events=events,  # rows are only ever added, so the last seq is the count, at no cost
            unfolded_events=max(0, events - self._folded_seq()),
            newest_event=_from_micros(newest),
            dead_letters=db.execute("SELECT count(*) FROM dead_letters").fetchone()[0],
            marks=[(datetime.fromisoformat(at), count) for at, count in marks],
        )

    # -- the audit of auditors ----------------------------------------------------------------
    def record_data_access(self, access: DataAccess) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            # chained (store.chain_audit): a row deleted or edited by whoever can write the file is named by verify
            add_row(
                db,
                DATA_ACCESSES,
                (_text(access.at), access.by, access.kind.value, access.incident_id, access.model_dump_json()),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def data_accesses(self, query: DataAccessQuery) -> list[DataAccess]:
        where, params = ["1"], []
        if query.by is not None:
            where.append("by_user = ?")
            params.append(query.by)
        if query.customer_id is not None:
            # read from the bodies, unindexed: the access log is the people's reading, thousands of rows a year,
            # not the events' millions, and a subject's request is asked for now and then; and those whose list
            # was cut, read again by their query (store.unlisted)
            where.append(
                "(EXISTS (SELECT 1 FROM json_each(body, '$.customer_ids') WHERE value = ?)"
                " OR json_extract(body, '$.what.customer_id') = ?"
                " OR json_extract(body, '$.customers_in_clear') > json_array_length(body, '$.customer_ids'))"
            )
            params.extend((query.customer_id, query.customer_id))
        if query.since is not None:
            where.append("at >= ?")
            params.append(_text(query.since))
        if query.until is not None:
            where.append("at < ?")
            params.append(_text(query.until))
        if query.customer_id is None:
            rows = self._db.execute(
                f"SELECT body FROM data_accesses WHERE {' AND '.join(where)} ORDER BY at DESC, id DESC LIMIT ?",
                (*params, query.limit),
            )
            return [DataAccess.model_validate_json(body) for (body,) in rows]
        # all read first: a cut one is read again by queries on this same connection
        bodies = self._db.execute(
            f"SELECT body FROM data_accesses WHERE {' AND '.join(where)} ORDER BY at DESC, id DESC", params
        ).fetchall()
        accesses = (DataAccess.model_validate_json(body) for (body,) in bodies)
        return listed_or_found(cast(Store, self), accesses, query.customer_id, query.limit)


def _incident_filters(query: IncidentQuery) -> tuple[list[str], list[str | int]]:
    """The WHERE terms of ``SqliteStore.query_incidents``, for counting under the same filters."""
    where = ["incidents.severity_rank >= ?"]
    params: list[str | int] = [query.min_severity.rank]
    if query.statuses:
        where.append(f"incidents.status IN ({','.join('?' * len(query.statuses))})")
        params.extend(status.value for status in query.statuses)
    if query.actor_id:
        where.append("incidents.actor_id = ?")
        params.append(query.actor_id)
    for key, value in (("$.actor_kind", query.actor_kind), ("$.actor_organization", query.organization)):
        if value:
            where.append(f"json_extract(incidents.body, '{key}') = ?")
            params.append(value)
    if query.detector:
        where.append("EXISTS (SELECT 1 FROM json_each(incidents.body, '$.detectors') WHERE value = ?)")
        params.append(query.detector)
    if query.since is not None:
        where.append("incidents.window_end >= ?")
        params.append(_text(query.since))
    if query.until is not None:
        where.append("incidents.window_start < ?")
        params.append(_text(query.until))
    return where, params
