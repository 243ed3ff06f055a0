"""Incidents: what the queue shows and the pager pages, one per actor and episode.

Alerts of every detector on the same actor whose spans overlap, or follow
within the incident gap, are one incident: analysts triage a person's
episode, not each detector's finding about it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from models.alert import AlertStatus, Severity, UtcTime
from models.event import ActorKind


class TriageActionKind(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    ASSIGN = "assign"
    NOTE = "note"
    RESOLVE = "resolve"
    FALSE_POSITIVE = "false_positive"
    REOPEN = "reopen"


# the status each action leaves an incident in (None: unchanged)
STATUS_AFTER = {
    TriageActionKind.ACKNOWLEDGE: AlertStatus.ACKNOWLEDGED,
    TriageActionKind.ASSIGN: None,
    TriageActionKind.NOTE: None,
    TriageActionKind.RESOLVE: AlertStatus.RESOLVED,
    TriageActionKind.FALSE_POSITIVE: AlertStatus.FALSE_POSITIVE,
    TriageActionKind.REOPEN: AlertStatus.OPEN,
}


class TriageAction(BaseModel):
    """Something a person did to an incident: recorded with who and when, never edited."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    incident_id: str
    kind: TriageActionKind
    by: str = Field(min_length=1, max_length=128)
    at: UtcTime  # wall-clock: when the person acted
    note: str | None = Field(default=None, max_length=4000)
    assignee: str | None = Field(default=None, max_length=128)


class Incident(BaseModel):
    model_config = ConfigDict(extra="forbid")

    incident_id: str
    actor_id: str
    actor_kind: ActorKind
    actor_role: str | None = None
    actor_department: str | None = None
    actor_organization: str | None = None
    status: AlertStatus = AlertStatus.OPEN
    severity: Severity
    risk_score: float  # 0-100, grows with the severity and the number of detectors agreeing
    window_start: UtcTime
    window_end: UtcTime
    alert_ids: list[str]
    detectors: list[str]
    summary: str  # the strongest alert's sentence
    assignee: str | None = None
    created_at: UtcTime  # event time of its first alert
    updated_at: UtcTime  # event time of its latest alert
    revision: int = 1
    evidence: dict[str, Any] = Field(default_factory=dict)  # per detector: the strongest alert's figures

    @property
    def open(self) -> bool:
        return self.status in (AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED)


def opened_at(incident: Incident) -> datetime:
    return incident.window_start
