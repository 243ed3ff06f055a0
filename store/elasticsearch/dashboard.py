"""The dashboard section of the store port, as Elasticsearch aggregations.

SQLite keeps roll-up tables for these figures; Elasticsearch computes them
where the data lives, with composite aggregations (paged, so no figure is
ever cut off at a bucket limit) over the microsecond time field.  Hours
and days are bucketed exactly as the SQLite adapter buckets them (UTC
hours; local days of a fixed offset), so both stores give the same answer.
"""

from __future__ import annotations

import hashlib
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast
from zoneinfo import ZoneInfo

import orjson

from models.alert import AlertStatus, Severity
from models.dashboard import (
    ActorProfile,
    AlertDayCount,
    ClassDay,
    DataAccess,
    DataAccessKind,
    DataAccessQuery,
    Health,
    HourActivity,
    PeerActivity,
    PeerHour,
    TriageSummary,
    Usage,
)
from models.event import format_utc
from models.incident import TriageActionKind
from store.base import IncidentFacet, IncidentQuery, Store
from store.elasticsearch import mappings as m
from store.elasticsearch import queries as q
from store.elasticsearch.bulk import BulkOp, run_bulk
from store.elasticsearch.documents import from_micros, micros
from store.local_days import local_date
from store.unlisted import listed_or_found

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch
    from store.elasticsearch.settings import ElasticsearchSettings

HOUR_US = 3_600_000_000
DAY_US = 86_400_000_000
MARK_EVERY = timedelta(seconds=10)  # wall-clock samples of the event count, for the ingestion rate
MARKS_KEPT = timedelta(days=2)
_REVIEW_KINDS = [
    TriageActionKind.ACKNOWLEDGE.value,
    TriageActionKind.RESOLVE.value,
    TriageActionKind.FALSE_POSITIVE.value,
]
_OPEN = [AlertStatus.OPEN.value, AlertStatus.ACKNOWLEDGED.value]
_FACET_FIELDS = {
    "severity": "accesswatch.severity_rank",
    "status": "accesswatch.status",
    "detector": "accesswatch.detectors",
    "organization": "accesswatch.organization",
    "actor_kind": "accesswatch.actor_kind",
}
_USAGE_FIELDS = {"class": "accesswatch.data_classes", "resource": "accesswatch.resource.kind", "action": "event.action"}


def _served(field: str) -> dict[str, Any]:
    """The sum of ``field`` over the served accesses: records read are data actually served, as the detectors
    count them (a refused or failed access asked for its records and read none); ``_sum`` reads it."""
    return {"filter": {"term": {"accesswatch.outcome": "success"}}, "aggs": {"sum": {"sum": {"field": field}}}}


def _sum(bucket: dict[str, Any]) -> int:
    return _int(bucket["sum"]["value"])


def _hour_span(since: datetime, until: datetime) -> dict[str, Any]:
    """Whole UTC hours overlapping [since, until), as the roll-ups of the SQLite store count them."""
    first = micros(since) // HOUR_US * HOUR_US
    end = -(-micros(until) // HOUR_US) * HOUR_US
    return {"range": {"accesswatch.time_us": {"gte": first, "lt": end}}}


def _int(value: float | None) -> int:
    return 0 if value is None else round(value)


class ElasticsearchDashboardMixin:
    """Mixed into ``ElasticsearchStore``; uses its search helpers."""

    settings: ElasticsearchSettings
    client: Elasticsearch
    clock: Callable[[], datetime]
    _written: Callable[..., None]
    _search: Callable[[str, dict[str, Any]], dict[str, Any]]
    _scan: Callable[..., Iterator[dict[str, Any]]]
    _count: Callable[..., int]
    _locate: Callable[[str, Any], dict[str, dict[str, Any]]]
    _composite: Callable[..., Iterator[dict[str, Any]]]
    _reserve: Callable[[str, int], int]
    _call: Callable[[str, Callable[[], Any]], Any]

    # -- incidents and alerts -----------------------------------------------------------------
    def incident_counts(self, query: IncidentQuery, by: IncidentFacet = "severity") -> dict[str, int]:
        field = _FACET_FIELDS.get(by)
        if field is None:
            raise ValueError(f"cannot count incidents by {by!r}")
        sources = [{"value": {"terms": {"field": field}}}]
        counts = {}
        for bucket in self._composite(m.INCIDENTS, q.incident_filter(query), sources):
            value = bucket["key"]["value"]
            name = Severity.from_rank(int(value)).value if by == "severity" else str(value)
            counts[name] = bucket["doc_count"]
        return counts

    def alerts_per_day(self, since: datetime, until: datetime, zone: ZoneInfo) -> list[AlertDayCount]:
        query = {"range": {"accesswatch.window_start_us": {"gte": micros(since), "lt": micros(until)}}}
        sources = [
            {"start": {"terms": {"field": "accesswatch.window_start_us"}}},
            {"rank": {"terms": {"field": "accesswatch.severity_rank"}}},
            {"detector": {"terms": {"field": "accesswatch.detector"}}},
            {"kind": {"terms": {"field": "accesswatch.actor_kind"}}},
        ]
        # distinct window starts (a few a day), dated here in the zone
        counts: dict[tuple[date, int, str, str], int] = defaultdict(int)
        for bucket in self._composite(m.ALERTS, query, sources):
            key = bucket["key"]
            day = local_date(int(key["start"]), zone)
            counts[(day, int(key["rank"]), key["detector"], key["kind"])] += bucket["doc_count"]
        return [
            AlertDayCount(
                day=day, severity=Severity.from_rank(rank).value, detector=detector, actor_kind=kind, alerts=count
            )
            for (day, rank, detector, kind), count in sorted(counts.items())
        ]

    # -- activity ---------------------------------------------------------------------------------
    def activity(self, since: datetime, until: datetime, actor_id: str | None = None) -> list[HourActivity]:
        filters: list[dict[str, Any]] = [_hour_span(since, until)]
        if actor_id is not None:
            filters.append({"term": {"user.id": actor_id}})
        sources = [{"hour": {"histogram": {"field": "accesswatch.time_us", "interval": HOUR_US}}}]
        sub = {
            "records": _served("accesswatch.record_count"),
            "egress": _served("accesswatch.egress"),
            "denied": {"filter": {"term": {"accesswatch.outcome": "denied"}}},
        }
        return [
            HourActivity(
                hour=from_micros(int(bucket["key"]["hour"])),
                events=bucket["doc_count"],
                records=_sum(bucket["records"]),
                egress_records=_sum(bucket["egress"]),
                denied=bucket["denied"]["doc_count"],
            )
            for bucket in self._composite(m.EVENTS, {"bool": {"filter": filters}}, sources, sub)
        ]

    def _identity(self, actor_id: str) -> dict[str, Any] | None:
        """Who the actor is, as the latest stored of its events says."""
        body = {
            "query": {"term": {"user.id": actor_id}},
            "sort": [{"accesswatch.seq": "desc"}],
            "size": 1,
            "track_total_hits": False,
            "_source": ["accesswatch.actor", "user.name", "organization.name"],
        }
        hits = self._search(m.EVENTS, body)["hits"]["hits"]
        if not hits:
            return None
        source = hits[0]["_source"]
        actor = source.get("accesswatch", {}).get("actor", {})
        return {
            "kind": actor.get("kind"),
            "role": actor.get("role"),
            "department": actor.get("department"),
            "name": source.get("user", {}).get("name"),
            "organization": (source.get("organization") or {}).get("name"),
        }

    def peer_activity(self, actor_id: str, since: datetime, until: datetime) -> PeerActivity:
        me = self._identity(actor_id)
        if me is None:
            return PeerActivity(peers=0, hours=[])
        group: list[dict[str, Any]] = [{"term": {"accesswatch.actor.kind": me["kind"]}}]
        for field, value in (("accesswatch.actor.role", me["role"]), ("organization.name", me["organization"])):
            group.append(
                {"term": {field: value}} if value is not None else {"bool": {"must_not": {"exists": {"field": field}}}}
            )
        group_query = {"bool": {"filter": group, "must_not": {"term": {"user.id": actor_id}}}}
        peers = [
            bucket["key"]["actor"]
            for bucket in self._composite(m.EVENTS, group_query, [{"actor": {"terms": {"field": "user.id"}}}])
        ]
        by_hour: dict[int, list[int]] = defaultdict(list)
        for start in range(0, len(peers), 10_000):
            chunk = peers[start : start + 10_000]
            query = {"bool": {"filter": [_hour_span(since, until), {"terms": {"user.id": chunk}}]}}
            sources = [
                {"hour": {"histogram": {"field": "accesswatch.time_us", "interval": HOUR_US}}},
                {"actor": {"terms": {"field": "user.id"}}},
            ]
            sub = {"records": _served("accesswatch.record_count")}
            for bucket in self._composite(m.EVENTS, query, sources, sub):
                by_hour[int(bucket["key"]["hour"])].append(_sum(bucket["records"]))
        return PeerActivity(
            peers=len(peers),
            hours=[
                PeerHour(
                    hour=from_micros(hour),
                    active_peers=len(values),
                    records=sum(values),
                    median_records=float(statistics.median(values)),
                )
                for hour, values in sorted(by_hour.items())
            ],
        )

    def actor_profile(self, actor_id: str, since: datetime, until: datetime, top: int = 10) -> ActorProfile | None:
        me = self._identity(actor_id)
        if me is None:
            return None
        mine = {"term": {"user.id": actor_id}}
        span = self._search(
            m.EVENTS,
            {
                "size": 0,
                "query": mine,
                "track_total_hits": False,
                "aggs": {
                    "first": {"min": {"field": "accesswatch.time_us"}},
                    "last": {"max": {"field": "accesswatch.time_us"}},
                },
            },
        )["aggregations"]
        days = {
            "range": {
                "accesswatch.time_us": {
                    "gte": micros(since) // DAY_US * DAY_US,
                    "lt": -(-micros(until) // DAY_US) * DAY_US,
                }
            }
        }

        def usage(facet: str) -> list[Usage]:
            sources = [{"value": {"terms": {"field": _USAGE_FIELDS[facet]}}}]
            sub = {"records": _served("accesswatch.record_count")}
            found = [
                Usage(name=str(b["key"]["value"]), events=b["doc_count"], records=_sum(b["records"]))
                for b in self._composite(m.EVENTS, {"bool": {"filter": [mine, days]}}, sources, sub)
            ]
            found.sort(key=lambda u: (-u.records, -u.events, u.name))
            return found[:top]

        first, last = span["first"]["value"], span["last"]["value"]
        return ActorProfile(
            actor_id=actor_id,
            kind=me["kind"],
            name=me["name"],
            role=me["role"],
            department=me["department"],
            organization=me["organization"],
            first_seen=from_micros(int(first)) if first is not None else None,
            last_seen=from_micros(int(last)) if last is not None else None,
            data_classes=usage("class"),
            resources=usage("resource"),
            actions=usage("action"),
        )

    def class_days(self, since: datetime, until: datetime, zone: ZoneInfo, by_kind: bool = False) -> list[ClassDay]:
        sources = [
            {"hour": {"histogram": {"field": "accesswatch.time_us", "interval": HOUR_US}}},
            {"class": {"terms": {"field": "accesswatch.data_classes"}}},
        ]
        if by_kind:
            sources.append({"kind": {"terms": {"field": "accesswatch.actor.kind"}}})
        sub = {"records": _served("accesswatch.record_count")}
        totals: dict[tuple[date, str, str | None], list[int]] = defaultdict(lambda: [0, 0])
        for bucket in self._composite(m.EVENTS, _hour_span(since, until), sources, sub):
            # the day of the hour's start, as the SQLite roll-up dates it
            found = bucket["key"]
            key = (local_date(int(found["hour"]), zone), found["class"], found.get("kind"))
            totals[key][0] += bucket["doc_count"]
            totals[key][1] += _sum(bucket["records"])
        return [
            ClassDay(day=day, data_class=name, actor_kind=kind, events=events, records=records)
            for (day, name, kind), (events, records) in sorted(
                totals.items(), key=lambda item: (*item[0][:2], item[0][2] or "")
            )
        ]

    # -- triage and the 48-hour deadline --------------------------------------------------------
    def triage_summary(self, since: datetime, until: datetime, now: datetime, deadline_seconds: float) -> TriageSummary:
        raised_in_span = {"range": {"accesswatch.raised_at_us": {"gte": micros(since), "lt": micros(until)}}}
        raised = {
            hit["_id"]: hit["_source"]["accesswatch"]["raised_at_us"]
            for hit in self._scan(
                m.INCIDENTS, raised_in_span, [{"accesswatch.incident_id": "asc"}], source=["accesswatch.raised_at_us"]
            )
        }
        waits = []
        ids = list(raised)
        for start in range(0, len(ids), 10_000):
            chunk = ids[start : start + 10_000]
            query = {
                "bool": {
                    "filter": [
                        {"terms": {"accesswatch.incident_id": chunk}},
                        {"terms": {"accesswatch.kind": _REVIEW_KINDS}},
                    ]
                }
            }
            sources = [{"incident": {"terms": {"field": "accesswatch.incident_id"}}}]
            sub = {"first": {"min": {"field": "accesswatch.at_us"}}}
            for bucket in self._composite(m.ACTIONS, query, sources, sub):
                acted = int(bucket["first"]["value"])
                waits.append(max(0.0, (acted - raised[bucket["key"]["incident"]]) / 1_000_000))
        cutoff = micros(now - timedelta(seconds=deadline_seconds))
        overdue_query = {
            "bool": {
                "filter": [
                    {"range": {"accesswatch.raised_at_us": {"lt": cutoff}}},
                    {"terms": {"accesswatch.status": _OPEN}},
                ]
            }
        }
        oldest = self._scan(
            m.INCIDENTS,
            overdue_query,
            [{"accesswatch.raised_at_us": "asc"}, {"accesswatch.incident_id": "asc"}],
            limit=50,
            source=False,
        )
        return TriageSummary(
            incidents=len(raised),
            reviewed=len(waits),
            median_seconds_to_acknowledge=statistics.median(waits) if waits else None,
            open_past_deadline=self._count(m.INCIDENTS, overdue_query),
            overdue_incident_ids=[hit["_id"] for hit in oldest],
        )

    def raised_at(self, incident_id: str) -> datetime | None:
        hit = self._locate(m.INCIDENTS, [incident_id]).get(incident_id)
        if hit is None:
            return None
        return from_micros(hit["_source"]["accesswatch"]["raised_at_us"])

    # -- health -----------------------------------------------------------------------------------
    def health(self, marks_since: datetime | None = None) -> Health:
        response = self._search(
            m.EVENTS,
            {
                "size": 0,
                "track_total_hits": True,
                "aggs": {"newest": {"max": {"field": "accesswatch.time_us"}}},
            },
        )
        events = response["hits"]["total"]["value"]
        newest = (response.get("aggregations") or {}).get("newest", {}).get("value")
        self._mark(events)
        marks_query: dict[str, Any] = {"bool": {"filter": [{"term": {"name": "mark"}}]}}
        if marks_since is not None:
            marks_query["bool"]["filter"].append({"range": {"saved_at": {"gte": format_utc(marks_since)}}})
        marks = [
            (datetime.fromisoformat(hit["_source"]["saved_at"].replace("Z", "+00:00")), hit["_source"]["value"])
            for hit in self._scan(m.STATE, marks_query, [{"saved_at": "asc"}], source=["saved_at", "value"])
        ]
        return Health(
            events=events,
            newest_event=from_micros(int(newest)) if newest is not None else None,
            dead_letters=self._count(m.DEAD_LETTERS),
            marks=marks,
        )

    def _mark(self, events: int) -> None:
        """Sample the event count at most every ten seconds, keeping two days of samples."""
        now = self.clock()
        recent = {
            "bool": {
                "filter": [{"term": {"name": "mark"}}, {"range": {"saved_at": {"gt": format_utc(now - MARK_EVERY)}}}]
            }
        }
        if self._count(m.STATE, recent):
            return
        index = m.state_index(self.settings)
        document = {"name": "mark", "value": events, "saved_at": format_utc(now)}
        self._call(
            "sample the event count",
            lambda: self.client.index(index=index, id=f"mark:{format_utc(now)}", document=document),
        )
        self._written(m.STATE)
        old = {
            "bool": {
                "filter": [{"term": {"name": "mark"}}, {"range": {"saved_at": {"lt": format_utc(now - MARKS_KEPT)}}}]
            }
        }
        self._call(
            "drop old samples",
            lambda: self.client.delete_by_query(index=index, query=old, conflicts="proceed", refresh=True),
        )

    # -- the audit of auditors ---------------------------------------------------------------------
    def record_data_access(self, access: DataAccess) -> None:
        record = access.model_dump_json()
        seq = self._reserve("accesses", 1)
        document = orjson.dumps(
            {
                "@timestamp": format_utc(access.at),
                "accesswatch": {
                    "seq": seq,
                    "by": access.by,
                    "kind": access.kind.value,
                    "at_us": micros(access.at),
                    "incident_id": access.incident_id,
                    # searched by ``DataAccessQuery.customer_id``: the ids shown in clear, and the customer searched
                    "customer_ids": [*access.customer_ids, *_searched_customer(access)],
                    "record": record,
                },
            }
        )
        doc_id = hashlib.sha256(record.encode()).hexdigest()[:32]  # the same access retried is kept once
        index = m.dated_index(self.settings, m.ACCESSES, access.at)
        self._written(m.ACCESSES)
        run_bulk(
            self.client,
            self.settings,
            [BulkOp({"create": {"_index": index, "_id": doc_id}}, document)],
            accepted=frozenset({201, 409}),
        )

    def data_accesses(self, query: DataAccessQuery) -> list[DataAccess]:
        filters: list[dict[str, Any]] = []
        if query.by is not None:
            filters.append({"term": {"accesswatch.by": query.by}})
        if query.customer_id is not None:
            # and the kinds whose list may be cut (kept unindexed in the record): read to see, and those cut read
            # again by their query (store.unlisted); the people's reading, thousands of records a year
            either = [
                {"term": {"accesswatch.customer_ids": query.customer_id}},
                {"terms": {"accesswatch.kind": _LISTING}},
            ]
            filters.append({"bool": {"should": either, "minimum_should_match": 1}})
        bounds = {}
        if query.since is not None:
            bounds["gte"] = micros(query.since)
        if query.until is not None:
            bounds["lt"] = micros(query.until)
        if bounds:
            filters.append({"range": {"accesswatch.at_us": bounds}})
        hits = self._scan(
            m.ACCESSES,
            {"bool": {"filter": filters}},
            [{"accesswatch.at_us": "desc"}, {"accesswatch.seq": "desc"}],
            limit=query.limit if query.customer_id is None else None,
        )
        accesses = (DataAccess.model_validate_json(hit["_source"]["accesswatch"]["record"]) for hit in hits)
        if query.customer_id is None:
            return list(accesses)
        return listed_or_found(cast(Store, self), accesses, query.customer_id, query.limit)


# the kinds of access that list customer ids, and so may have cut their list (``DataAccess.customers_unlisted``)
_LISTING = [DataAccessKind.EXPORT.value, DataAccessKind.CUSTOMER_LIST.value, DataAccessKind.VIEW.value]


def _searched_customer(access: DataAccess) -> list[str]:
    """The customer an access searched for by id (``what.customer_id``), masked or not: the auditor typed it."""
    searched = access.what.get("customer_id")
    return [searched] if isinstance(searched, str) and searched not in access.customer_ids else []
