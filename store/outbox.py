"""The outbox port: pages kept in the store until a receiver has them.

Every page goes through here (``notify.outbox``): it is written before the
alerts it is about, so a crash never loses it; it is taken out for delivery
under a lease, so two processes never send it at once; and once a receiver
accepted it, it is settled as sent and never sent again.  Deliveries to one
receiver about one incident go in the order they were planned (a resolve
never overtakes the trigger it resolves).

Small on purpose: SQLite implements it in ``store.sqlite_outbox``, and the
Elasticsearch adapter with a create-only index and optimistic concurrency.
The behaviour both must have is ``tests/outbox_contract.py``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from models.page import Notification, NotificationStatus, PageKind


class OutboxQuery(BaseModel):
    """Which notifications to list; every filter is optional, all given must hold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    statuses: list[NotificationStatus] | None = None
    kinds: list[PageKind] | None = None
    incident_id: str | None = None
    actor_id: str | None = None
    receiver: str | None = None
    created_since: datetime | None = None  # inclusive, wall-clock
    limit: int = Field(default=100, ge=1, le=100_000)
    newest_first: bool = True


class Settlement(BaseModel):
    """What became of a notification taken out for delivery (or held back)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: NotificationStatus
    at: datetime  # wall-clock
    error: str | None = None  # the last error, or why it was suppressed or cancelled
    retry_at: datetime | None = None  # status PENDING: when to try again
    attempted: bool = True  # counts as a delivery attempt (not for a receiver skipped while it is down)


class OutboxStore(ABC):
    @abstractmethod
    def enqueue(self, notifications: Sequence[Notification]) -> list[str]:
        """Add the notifications whose ids are new, durably; return the ids added (a known id is left as it is)."""

    @abstractmethod
    def claim_due(
        self,
        now: datetime,
        lease_seconds: float,
        limit: int = 1,
        incident_id: str | None = None,
        skip_receivers: Sequence[str] = (),
    ) -> list[Notification]:
        """Take pending notifications due by ``now`` for delivery, oldest due first.

        Only the earliest pending notification of each (receiver, dedup key)
        is due; one taken is not given out again until ``settle`` or until
        the lease runs out (a delivering process that died).
        """

    @abstractmethod
    def settle(self, notification_id: str, settlement: Settlement) -> None:
        """Record the outcome and release the lease; KeyError if unknown."""

    @abstractmethod
    def notifications(self, query: OutboxQuery) -> list[Notification]:
        """Notifications matching the query, by creation time (newest first by default)."""

    @abstractmethod
    def outbox_counts(self) -> dict[NotificationStatus, int]:
        """How many notifications are in each status (absent: none)."""
