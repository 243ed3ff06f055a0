"""Index names, index templates (Elastic Common Schema where it has a field) and ILM policies.

Why daily indices named by the event's own day, and not a data stream:

* idempotency: ``_id`` is the event id and the write is ``create``, so a
  duplicate is refused by the index that holds the original.  A data stream
  rolls over by write time, and a duplicate arriving after a rollover would
  land in the new backing index beside its original.  An event's day never
  changes, so its duplicate always meets it.
* storage limitation: ILM reads each index's date from its name
  (``parse_origination_date``) and deletes a day of events when that day is
  older than the retention, whenever the events arrived (a backfill of
  last year's log is not kept for another N days).

Alerts, incidents and the triage log are kept longer, in monthly indices
named by a date the document never changes (an alert's window start, an
incident's creation, an action's time), so an update always finds its
document's index and ILM can drop whole months.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from store.elasticsearch.settings import ElasticsearchSettings

# the families of indices: name -> (how each index is dated, retention setting)
EVENTS, DEAD_LETTERS, ALERTS, INCIDENTS, ACTIONS, ACCESSES, STATE = (
    "events",
    "deadletters",
    "alerts",
    "incidents",
    "actions",
    "accesses",
    "state",
)
DAILY = (EVENTS, DEAD_LETTERS)
MONTHLY = (ALERTS, INCIDENTS, ACTIONS, ACCESSES)

KEYWORD = {"type": "keyword", "ignore_above": 1024}
LONG = {"type": "long"}
DATE = {"type": "date"}
# kept for reading back, never searched: no index, no doc values
STORED_TEXT = {"type": "keyword", "index": False, "doc_values": False}
STORED_OBJECT = {"type": "object", "enabled": False}


def dated_index(settings: ElasticsearchSettings, family: str, moment: datetime) -> str:
    """The index a document dated ``moment`` lives in (UTC day, or the month's first day)."""
    moment = moment.astimezone(UTC)
    day = moment.day if family in DAILY else 1
    return f"{settings.prefix}-{family}-{moment.year:04d}.{moment.month:02d}.{day:02d}"


def pattern(settings: ElasticsearchSettings, family: str) -> str:
    """What a search of the family reads: every dated index of it (the state index is one)."""
    return state_index(settings) if family == STATE else f"{settings.prefix}-{family}-*"


def state_index(settings: ElasticsearchSettings) -> str:
    return f"{settings.prefix}-{STATE}"


def _props(**fields: Any) -> dict[str, Any]:
    return {"properties": fields}


_EVENT_MAPPING: dict[str, Any] = {
    "dynamic": False,  # an unexpected field is kept in _source, never a mapping error
    "properties": {
        "@timestamp": DATE,
        "event": _props(
            id=KEYWORD,
            action=KEYWORD,
            outcome=KEYWORD,  # ECS: success | failure | unknown
            kind=KEYWORD,
            category=KEYWORD,
            type=KEYWORD,
            dataset=KEYWORD,
            reason=KEYWORD,  # the purpose the access cites (ticket, case, contract)
            original=STORED_TEXT,
        ),
        "user": _props(id=KEYWORD, name=KEYWORD, roles=KEYWORD),
        "organization": _props(name=KEYWORD),
        "source": _props(ip={"type": "ip", "ignore_malformed": True}),
        "user_agent": _props(original=KEYWORD),
        "accesswatch": _props(
            seq=LONG,  # store order
            time_us=LONG,  # event time in microseconds: exact ranges and paging (dates are milliseconds)
            origin=KEYWORD,  # "kafka:topic/partition@offset": tells a redelivery from a duplicate
            actor=_props(kind=KEYWORD, role=KEYWORD, department=KEYWORD),
            outcome=KEYWORD,  # the contract's value: success | denied | error
            resource=_props(system=KEYWORD, type=KEYWORD, id=KEYWORD, kind=KEYWORD),
            record_count=LONG,
            bytes=LONG,
            egress=LONG,  # records moved out of the system of record (export, download, print, share)
            customer_ids=KEYWORD,
            fields=KEYWORD,
            data_classes=KEYWORD,
            session_id=KEYWORD,
        ),
    },
}

_DEAD_LETTER_MAPPING: dict[str, Any] = {
    "dynamic": False,
    "properties": {
        "@timestamp": DATE,  # when the product received it (wall clock)
        "event": _props(kind=KEYWORD, dataset=KEYWORD),
        "error": _props(message=KEYWORD),
        "accesswatch": _props(
            seq=LONG,
            source=KEYWORD,
            position=KEYWORD,
            reason=KEYWORD,
            raw={"type": "binary"},
            raw_size=LONG,
            received_at=STORED_TEXT,
        ),
    },
}

_ALERT_MAPPING: dict[str, Any] = {
    "dynamic": False,
    "properties": {
        "@timestamp": DATE,
        "message": {"type": "text"},
        "event": _props(kind=KEYWORD, start=DATE, end=DATE, severity=LONG, risk_score={"type": "double"}),
        "rule": _props(name=KEYWORD),
        "user": _props(id=KEYWORD, roles=KEYWORD),
        "organization": _props(name=KEYWORD),
        "accesswatch": _props(
            alert_id=KEYWORD,
            detector=KEYWORD,
            severity=KEYWORD,
            severity_rank=LONG,
            status=KEYWORD,
            actor_id=KEYWORD,
            actor_kind=KEYWORD,
            incident_id=KEYWORD,
            window_start_us=LONG,
            window_end_us=LONG,
            revision=LONG,
            record=STORED_TEXT,
        ),
    },
}

_INCIDENT_MAPPING: dict[str, Any] = {
    "dynamic": False,
    "properties": {
        "@timestamp": DATE,
        "message": {"type": "text"},
        "event": _props(kind=KEYWORD, start=DATE, end=DATE, severity=LONG, risk_score={"type": "double"}),
        "user": _props(id=KEYWORD, roles=KEYWORD),
        "organization": _props(name=KEYWORD),
        "accesswatch": _props(
            incident_id=KEYWORD,
            actor_id=KEYWORD,
            actor_kind=KEYWORD,
            organization=KEYWORD,
            detectors=KEYWORD,
            severity=KEYWORD,
            severity_rank=LONG,
            risk_score={"type": "double"},
            status=KEYWORD,
            assignee=KEYWORD,
            window_start_us=LONG,
            window_end_us=LONG,
            flagged_end_us=LONG,  # ``Incident.newest_flagged``: what the queue sorts by (since 0003)
            raised_at_us=LONG,  # wall clock: when the product first stored it
            revision=LONG,
            record=STORED_TEXT,
        ),
    },
}

_ACTION_MAPPING: dict[str, Any] = {
    "dynamic": False,
    "properties": {
        "@timestamp": DATE,
        "accesswatch": _props(
            seq=LONG,
            incident_id=KEYWORD,
            kind=KEYWORD,
            by=KEYWORD,
            at_us=LONG,
            record=STORED_TEXT,
        ),
    },
}

_ACCESS_MAPPING: dict[str, Any] = {
    "dynamic": False,
    "properties": {
        "@timestamp": DATE,
        "accesswatch": _props(
            seq=LONG,
            by=KEYWORD,
            kind=KEYWORD,
            at_us=LONG,
            incident_id=KEYWORD,
            customer_ids=KEYWORD,  # shown in clear, or searched for: who saw this customer (migration 0004)
            record=STORED_TEXT,
        ),
    },
}

_STATE_MAPPING: dict[str, Any] = {
    "dynamic": False,
    "properties": {
        "name": KEYWORD,
        "seq": LONG,
        "value": LONG,
        "state": {"type": "binary"},
        "saved_at": DATE,
    },
}

MAPPINGS = {
    EVENTS: _EVENT_MAPPING,
    DEAD_LETTERS: _DEAD_LETTER_MAPPING,
    ALERTS: _ALERT_MAPPING,
    INCIDENTS: _INCIDENT_MAPPING,
    ACTIONS: _ACTION_MAPPING,
    ACCESSES: _ACCESS_MAPPING,
}


def policy_name(settings: ElasticsearchSettings, family: str) -> str:
    kind = "events" if family in DAILY else "records"
    return f"{settings.prefix}-{kind}"


def policies(settings: ElasticsearchSettings) -> dict[str, dict[str, Any]]:
    """ILM: an index is deleted when the date in its name is older than the retention."""

    def deleting_after(seconds: float) -> dict[str, Any]:
        return {
            "phases": {
                "hot": {"min_age": "0ms", "actions": {}},
                "delete": {"min_age": f"{int(seconds)}s", "actions": {"delete": {}}},
            }
        }

    return {
        policy_name(settings, EVENTS): deleting_after(settings.events_retention),
        policy_name(settings, ALERTS): deleting_after(settings.alerts_retention),
    }


def templates(settings: ElasticsearchSettings) -> dict[str, dict[str, Any]]:
    """One composable index template per family; priority above the built-in ``logs-*-*`` (100)."""
    out = {}
    for family, mapping in MAPPINGS.items():
        out[f"{settings.prefix}-{family}"] = {
            "index_patterns": [pattern(settings, family)],
            "priority": 200,
            "template": {
                "settings": {
                    "index": {
                        "number_of_shards": settings.shards,
                        "number_of_replicas": settings.replicas,
                        "lifecycle": {"name": policy_name(settings, family), "parse_origination_date": True},
                    }
                },
                "mappings": mapping,
            },
            "_meta": {"managed_by": "accesswatch", "description": f"accesswatch {family}"},
        }
    return out


def state_index_body(settings: ElasticsearchSettings) -> dict[str, Any]:
    return {
        "settings": {"index": {"number_of_shards": 1, "number_of_replicas": settings.replicas}},
        "mappings": _STATE_MAPPING,
    }
