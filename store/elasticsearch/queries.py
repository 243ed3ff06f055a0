"""The store port's questions in the query DSL: the same answers as SQLite's, to the row.

Filters are ``term``/``terms``/``range`` clauses in a ``bool`` filter (no
scoring: the answer is a set, ordered by explicit sorts).  Times are
compared on microsecond integers, as SQLite compares them, so a boundary
falls on the same side in both stores.
"""

from __future__ import annotations

from typing import Any

from store.base import AlertQuery, EventQuery, IncidentQuery
from store.elasticsearch.documents import micros


def _term(field: str, value: Any) -> dict[str, Any]:
    return {"term": {field: value}}


def _range(field: str, gte: int | None = None, lt: int | None = None) -> dict[str, Any] | None:
    bounds = {key: value for key, value in (("gte", gte), ("lt", lt)) if value is not None}
    return {"range": {field: bounds}} if bounds else None


def _bool(filters: list[dict[str, Any] | None]) -> dict[str, Any]:
    clauses = [clause for clause in filters if clause is not None]
    return {"bool": {"filter": clauses}} if clauses else {"match_all": {}}


def event_filter(query: EventQuery) -> dict[str, Any]:
    filters: list[dict[str, Any] | None] = []
    if query.event_id is not None:
        filters.append(_term("event.id", query.event_id))
    if query.actor_id is not None:
        filters.append(_term("user.id", query.actor_id))
    if query.customer_id is not None:
        filters.append(_term("accesswatch.customer_ids", query.customer_id))
    if query.data_class is not None:
        filters.append(_term("accesswatch.data_classes", query.data_class))
    if query.field is not None:  # a keyword of its own: no narrowing by class needed here
        filters.append(_term("accesswatch.fields", query.field))
    if query.resource is not None:
        fields = ("accesswatch.resource.system", "accesswatch.resource.type", "accesswatch.resource.id")
        for field, value in zip(fields, query.resource.split("/", 2), strict=False):
            filters.append(_term(field, value))
    if query.action is not None:
        filters.append(_term("event.action", query.action.value))
    if query.outcome is not None:
        filters.append(_term("accesswatch.outcome", query.outcome.value))
    filters.append(
        _range(
            "accesswatch.time_us",
            micros(query.since) if query.since is not None else None,
            micros(query.until) if query.until is not None else None,
        )
    )
    return _bool(filters)


def event_sort(newest_first: bool) -> list[dict[str, Any]]:
    order = "desc" if newest_first else "asc"
    return [{"accesswatch.time_us": order}, {"accesswatch.seq": order}]


def alert_filter(query: AlertQuery) -> dict[str, Any]:
    filters: list[dict[str, Any] | None] = [{"range": {"accesswatch.severity_rank": {"gte": query.min_severity.rank}}}]
    if query.statuses:
        filters.append({"terms": {"accesswatch.status": [status.value for status in query.statuses]}})
    if query.detector:
        filters.append(_term("accesswatch.detector", query.detector))
    if query.actor_id:
        filters.append(_term("accesswatch.actor_id", query.actor_id))
    if query.since is not None:
        filters.append(_range("accesswatch.window_end_us", gte=micros(query.since)))
    if query.until is not None:
        filters.append(_range("accesswatch.window_start_us", lt=micros(query.until)))
    return _bool(filters)


def alert_sort(newest_first: bool) -> list[dict[str, Any]]:
    order = "desc" if newest_first else "asc"
    return [{"accesswatch.window_start_us": order}, {"accesswatch.alert_id": order}]


def incident_filter(query: IncidentQuery) -> dict[str, Any]:
    filters: list[dict[str, Any] | None] = [{"range": {"accesswatch.severity_rank": {"gte": query.min_severity.rank}}}]
    if query.statuses:
        filters.append({"terms": {"accesswatch.status": [status.value for status in query.statuses]}})
    if query.actor_id:
        filters.append(_term("accesswatch.actor_id", query.actor_id))
    if query.actor_kind:
        filters.append(_term("accesswatch.actor_kind", query.actor_kind))
    if query.organization:
        filters.append(_term("accesswatch.organization", query.organization))
    if query.detector:
        filters.append(_term("accesswatch.detectors", query.detector))
    if query.since is not None:
        filters.append(_range("accesswatch.window_end_us", gte=micros(query.since)))
    if query.until is not None:
        filters.append(_range("accesswatch.window_start_us", lt=micros(query.until)))
    return _bool(filters)


# newest: by when their flagged activity ended (``Incident.newest_flagged``).  An index made before migration 0003
# has no mapping of it (``unmapped_type``), and its incidents no value until a writer upgrades the store: after
# the others, then
_NEWEST_FLAGGED = "accesswatch.flagged_end_us"
INCIDENT_SORTS: dict[str, list[dict[str, Any]]] = {
    "severity": [
        {"accesswatch.severity_rank": "desc"},
        {_NEWEST_FLAGGED: {"order": "desc", "unmapped_type": "long"}},
        {"accesswatch.incident_id": "asc"},
    ],
    "newest": [{_NEWEST_FLAGGED: {"order": "desc", "unmapped_type": "long"}}, {"accesswatch.incident_id": "asc"}],
    "oldest": [{_NEWEST_FLAGGED: {"order": "asc", "unmapped_type": "long"}}, {"accesswatch.incident_id": "asc"}],
}
