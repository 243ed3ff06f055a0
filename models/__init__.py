"""Pydantic models at every boundary of accesswatch: events in, alerts out, configuration."""

from models.alert import Alert, AlertStatus, Severity
from models.deadletter import DeadLetter
from models.event import AccessEvent, Action, Actor, ActorKind, Outcome, Resource, format_utc, parse_rfc3339

__all__ = [
    "AccessEvent",
    "Action",
    "Actor",
    "ActorKind",
    "Alert",
    "AlertStatus",
    "DeadLetter",
    "Outcome",
    "Resource",
    "Severity",
    "format_utc",
    "parse_rfc3339",
]
