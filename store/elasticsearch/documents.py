"""Models to Elasticsearch documents and back.

Each document has the Elastic Common Schema fields that fit (so Kibana and
Elastic Security read them as they are used to) and accesswatch's own under
``accesswatch.*``.  The product reads back only what it wrote as the record:
an event's original bytes (``event.original``), an alert's or incident's
JSON (``accesswatch.record``).  What a person sets (an alert's status, an
incident's status and assignee) lives outside the record, so that the
pipeline growing a finding updates the record and never touches them.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from typing import Any

import orjson

from models.alert import Alert, AlertStatus
from models.deadletter import DeadLetter
from models.event import Outcome, format_utc
from models.fast_event import validate_event
from models.incident import Incident, TriageAction
from store.base import IncomingEvent

# the contract's outcomes in ECS terms (event.outcome: success | failure | unknown)
_ECS_OUTCOME = {Outcome.SUCCESS: "success", Outcome.DENIED: "failure", Outcome.ERROR: "failure"}
# what a person may set on an alert or incident: kept out of the record the pipeline rewrites
ALERT_PERSON_FIELDS = frozenset({"status"})
INCIDENT_PERSON_FIELDS = frozenset({"status", "assignee"})


def micros(moment: datetime) -> int:
    return round(moment.timestamp() * 1_000_000)


def from_micros(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1_000_000, UTC)


# -- events ------------------------------------------------------------------------------------
def event_document(incoming: IncomingEvent, seq: int) -> bytes:
    event = incoming.event
    actor, resource = event.actor, event.resource
    ecs: dict[str, Any] = {
        "id": event.event_id,
        "action": event.action.value,
        "outcome": _ECS_OUTCOME[event.outcome],
        "kind": "event",
        "category": ["database"],
        "type": ["access"],
        "dataset": "accesswatch.access",
        "original": incoming.raw.decode(),
    }
    if event.purpose is not None:
        ecs["reason"] = event.purpose
    user: dict[str, Any] = {"id": actor.id}
    if actor.name is not None:
        user["name"] = actor.name
    if actor.role is not None:
        user["roles"] = [actor.role]
    own: dict[str, Any] = {
        "seq": seq,
        "time_us": micros(event.timestamp),
        "actor": {"kind": actor.kind.value, "role": actor.role, "department": actor.department},
        "outcome": event.outcome.value,
        "resource": {"system": resource.system, "type": resource.type, "id": resource.id, "kind": resource.kind},
        "record_count": event.record_count,
        "egress": event.record_count if event.is_egress else 0,
        "data_classes": sorted(incoming.classes),
    }
    if incoming.origin is not None:
        own["origin"] = incoming.origin
    if event.customer_ids:
        own["customer_ids"] = event.customer_ids
    if event.fields:
        own["fields"] = event.fields
    if event.bytes is not None:
        own["bytes"] = event.bytes
    if event.session_id is not None:
        own["session_id"] = event.session_id
    doc: dict[str, Any] = {"@timestamp": format_utc(event.timestamp), "event": ecs, "user": user, "accesswatch": own}
    if actor.organization is not None:
        doc["organization"] = {"name": actor.organization}
    if event.source_ip is not None:
        doc["source"] = {"ip": event.source_ip}
    if event.user_agent is not None:
        doc["user_agent"] = {"original": event.user_agent}
    return orjson.dumps(doc)


def incoming_from(source: dict[str, Any]) -> IncomingEvent:
    original = source["event"]["original"]
    own = source["accesswatch"]
    return IncomingEvent(
        validate_event(original),
        original.encode(),
        frozenset(own.get("data_classes") or ()),
        own.get("origin"),
    )


# -- dead letters ------------------------------------------------------------------------------
def dead_letter_id(letter: DeadLetter) -> str:
    """Of source, position and bytes, as SQLite's digest: a replayed bad line is kept once."""
    return hashlib.sha256(f"{letter.source}\x1f{letter.position}\x1f".encode() + letter.raw).hexdigest()


def dead_letter_document(letter: DeadLetter, seq: int) -> bytes:
    return orjson.dumps(
        {
            "@timestamp": format_utc(letter.received_at),
            "event": {"kind": "pipeline_error", "dataset": "accesswatch.deadletter"},
            "error": {"message": letter.reason},
            "accesswatch": {
                "seq": seq,
                "source": letter.source,
                "position": letter.position,
                "reason": letter.reason,
                "raw": base64.b64encode(letter.raw).decode(),
                "raw_size": letter.raw_size,
                "received_at": letter.received_at.isoformat(),
            },
        }
    )


def dead_letter_from(source: dict[str, Any]) -> DeadLetter:
    own = source["accesswatch"]
    return DeadLetter(
        source=own["source"],
        position=own["position"],
        reason=own["reason"],
        raw=base64.b64decode(own["raw"]),
        received_at=datetime.fromisoformat(own["received_at"]),
        raw_size=own["raw_size"],
    )


# -- alerts and incidents ----------------------------------------------------------------------
def alert_fields(alert: Alert) -> dict[str, Any]:
    """The alert as the pipeline writes it, without what a person sets."""
    return {
        "@timestamp": format_utc(alert.window_start),
        "message": alert.summary,
        "event": {
            "kind": "alert",
            "start": format_utc(alert.window_start),
            "end": format_utc(alert.window_end),
            "severity": alert.severity.rank,
            "risk_score": alert.score,
        },
        "rule": {"name": alert.detector},
        "user": {"id": alert.actor_id, "roles": [alert.actor_role] if alert.actor_role else []},
        "organization": {"name": alert.actor_organization},
        "accesswatch": {
            "alert_id": alert.alert_id,
            "detector": alert.detector,
            "severity": alert.severity.value,
            "severity_rank": alert.severity.rank,
            "actor_id": alert.actor_id,
            "actor_kind": alert.actor_kind.value,
            "incident_id": alert.incident_id,
            "window_start_us": micros(alert.window_start),
            "window_end_us": micros(alert.window_end),
            "record": alert.model_dump_json(exclude=set(ALERT_PERSON_FIELDS)),
        },
    }


def alert_document(alert: Alert, status: str) -> bytes:
    fields = alert_fields(alert)
    fields["accesswatch"]["status"] = status
    fields["accesswatch"]["revision"] = alert.revision
    return orjson.dumps(fields)


def alert_from(source: dict[str, Any]) -> Alert:
    own = source["accesswatch"]
    record = orjson.loads(own["record"])
    record["status"] = own.get("status") or AlertStatus.OPEN.value
    return Alert.model_validate(record)


def incident_fields(incident: Incident) -> dict[str, Any]:
    return {
        "@timestamp": format_utc(incident.window_start),
        "message": incident.summary,
        "event": {
            "kind": "alert",
            "start": format_utc(incident.window_start),
            "end": format_utc(incident.window_end),
            "severity": incident.severity.rank,
            "risk_score": incident.risk_score,
        },
        "user": {"id": incident.actor_id, "roles": [incident.actor_role] if incident.actor_role else []},
        "organization": {"name": incident.actor_organization},
        "accesswatch": {
            "incident_id": incident.incident_id,
            "actor_id": incident.actor_id,
            "actor_kind": incident.actor_kind.value,
            "organization": incident.actor_organization,
            "detectors": incident.detectors,
            "severity": incident.severity.value,
            "severity_rank": incident.severity.rank,
            "risk_score": incident.risk_score,
            "window_start_us": micros(incident.window_start),
            "window_end_us": micros(incident.window_end),
            "flagged_end_us": micros(incident.newest_flagged),
            "record": incident.model_dump_json(exclude=set(INCIDENT_PERSON_FIELDS)),
        },
    }


def incident_document(incident: Incident, status: str, assignee: str | None, raised_at_us: int) -> bytes:
    fields = incident_fields(incident)
    fields["accesswatch"].update(
        status=status, assignee=assignee, raised_at_us=raised_at_us, revision=incident.revision
    )
    return orjson.dumps(fields)


def incident_from(source: dict[str, Any]) -> Incident:
    own = source["accesswatch"]
    record = orjson.loads(own["record"])
    record["status"] = own.get("status") or AlertStatus.OPEN.value
    record["assignee"] = own.get("assignee")
    return Incident.model_validate(record)


# -- the triage log ----------------------------------------------------------------------------
def action_id(action: TriageAction) -> str:
    """The same action recorded twice (a retried request) is one entry."""
    return hashlib.sha256(action.model_dump_json().encode()).hexdigest()[:32]


def action_document(action: TriageAction, seq: int) -> bytes:
    return orjson.dumps(
        {
            "@timestamp": format_utc(action.at),
            "accesswatch": {
                "seq": seq,
                "incident_id": action.incident_id,
                "kind": action.kind.value,
                "by": action.by,
                "at_us": micros(action.at),
                "record": action.model_dump_json(),
            },
        }
    )


def action_from(source: dict[str, Any]) -> TriageAction:
    return TriageAction.model_validate_json(source["accesswatch"]["record"])
