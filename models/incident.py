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

CLOSED = frozenset({AlertStatus.RESOLVED, AlertStatus.FALSE_POSITIVE})

# The triage state machine: the statuses each status-changing action may start from.  It is what
# the dashboard offers (Acknowledge on open incidents, Resolve on open and acknowledged ones,
# Reopen on closed ones, False positive on any), so the command line and the dashboard agree.
# A closed incident must be reopened before it is acknowledged or resolved again: an ``ack``
# typed at the wrong incident must not silently put it back in the queue, and resolving a false
# positive must not erase the classification the compliance figures count.  A resolved incident
# may still be reclassified as a false positive.
ALLOWED_FROM: dict[TriageActionKind, frozenset[AlertStatus]] = {
    TriageActionKind.ACKNOWLEDGE: frozenset({AlertStatus.OPEN}),
    TriageActionKind.RESOLVE: frozenset({AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED}),
    TriageActionKind.FALSE_POSITIVE: frozenset({AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED, AlertStatus.RESOLVED}),
    TriageActionKind.REOPEN: CLOSED,
}

_CLOSED_AS = {AlertStatus.RESOLVED: "resolved", AlertStatus.FALSE_POSITIVE: "a false positive"}


class TransitionRefused(ValueError):
    """A triage action the incident's status does not allow; the message is one line saying what to do."""


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
    # the end of its flagged activity (``models.flagged``), event time; None: stored before it was kept
    flagged_end: UtcTime | None = None
    # every alert of it is documented work (``Alert.documented_purposes``): paged only with ``notify.page_documented``;
    # False for one stored before it was kept, which pages as it did
    documented: bool = False

    @property
    def open(self) -> bool:
        return self.status in (AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED)

    @property
    def newest_flagged(self) -> datetime:
        """What "newest" means in the queue: the end of its flagged activity, its window's where that is not known.

        Not its window's start: a day's finding widens the window to the whole local day, and an incident flagged
        at 16:00 would list below one flagged at 09:00 the same day.  The end, not the flagged activity's start:
        a pull still going on is the newest thing to look at, however early it began."""
        return self.flagged_end or self.window_end

    def repeats(self, kind: TriageActionKind) -> bool:
        """Would the action move the incident to the status it is in already (acknowledging twice)?

        A repeat changes nothing and tells no receiver again.
        """
        return STATUS_AFTER[kind] is self.status

    def status_after(self, kind: TriageActionKind) -> AlertStatus:
        """The status the action leaves the incident in; TransitionRefused if its status does not allow it."""
        target = STATUS_AFTER[kind]
        if target is None or target is self.status:
            return self.status
        if self.status not in ALLOWED_FROM[kind]:
            raise TransitionRefused(self._refusal(kind))
        return target

    def _refusal(self, kind: TriageActionKind) -> str:
        if kind is TriageActionKind.REOPEN:
            return f"{self.incident_id} is {self.status.value}, not closed: there is nothing to reopen"
        verb = kind.value.replace("_", " ")
        return f"{self.incident_id} is closed as {_CLOSED_AS[self.status]}: reopen it before you {verb} it"


def opened_at(incident: Incident) -> datetime:
    return incident.window_start
