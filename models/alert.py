"""The alert record of ``shared/contract/README.md``.

Every alert, wherever it goes (store, dashboard, pager, ``alerts`` command),
is this object; the keys the contract names are all here, and
``tests/test_contract.py`` checks that they stay so.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from models.event import ActorKind, format_utc


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @classmethod
    def from_rank(cls, rank: int) -> Severity:
        return _BY_RANK[max(0, min(rank, len(_BY_RANK) - 1))]

    def at_least(self, other: Severity) -> bool:
        return self.rank >= other.rank


_RANK = {Severity.LOW: 0, Severity.MEDIUM: 1, Severity.HIGH: 2, Severity.CRITICAL: 3}
_BY_RANK = sorted(_RANK, key=_RANK.__getitem__)


class AlertStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    FALSE_POSITIVE = "false_positive"


UtcTime = Annotated[datetime, PlainSerializer(format_utc, return_type=str, when_used="json")]


class Alert(BaseModel):
    """One finding about one actor over an event-time span.

    ``alert_id`` is derived from the detector, the actor and the start of its
    first finding (``detectors.alerts.alert_id``), so a replay of the same
    events gives the same id and a finding that grows keeps its id.  The
    window covers every finding merged in: it may start before that first one.
    """

    model_config = ConfigDict(extra="forbid")

    alert_id: str
    detector: str
    severity: Severity
    actor_id: str
    actor_kind: ActorKind
    window_start: UtcTime
    window_end: UtcTime
    score: float
    summary: str
    evidence: dict[str, Any] = Field(default_factory=dict)
    # Beyond the contract's minimum: what the queue and the pager need.
    status: AlertStatus = AlertStatus.OPEN
    actor_role: str | None = None
    actor_organization: str | None = None
    actor_department: str | None = None
    created_at: UtcTime | None = None  # event time of the first finding (never wall-clock: replays must match)
    updated_at: UtcTime | None = None  # event time of the latest growth
    revision: int = 1  # bumps each time the finding grows; notifiers page again only on a severity rise
    incident_id: str | None = None  # the actor's episode this finding belongs to (models.incident)

    @property
    def documented_purposes(self) -> list[str]:
        """The purposes every finding of the alert cites, when all do (documented work: ``detectors.base``); else []."""
        documented = self.evidence.get("documented")
        purposes = documented.get("purposes") if isinstance(documented, dict) else None
        return [str(purpose) for purpose in purposes] if isinstance(purposes, list) else []

    def to_record(self) -> dict[str, Any]:
        """The contract's JSON object."""
        return self.model_dump(mode="json")

    def listing_order(self) -> tuple[datetime, str]:
        """Where this alert is listed among others: by window start, then by id.

        A total order that depends only on the alerts, so the engine, every store and a replay list
        the same alerts alike: ``sorted(alerts, key=Alert.listing_order)``.
        """
        return (self.window_start, self.alert_id)
