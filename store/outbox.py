"""The outbox port: pages kept in the store until a receiver has them.

Every page goes through here (``notify.outbox``): it is written before the
alerts it is about, so a crash never loses it; it is taken out for delivery
under a lease, so two processes never send it at once; and once a receiver
accepted it, it is settled as sent and never sent again.  Deliveries to one
receiver about one incident go in the order they were planned (a resolve
never overtakes the trigger it resolves).  A receiver that failed rests
(``ReceiverRest``): kept here, so that every process delivering (``run``,
``pages --deliver``, ``ack``) leaves it alone until then, and ``pages`` shows it.

Small on purpose: SQLite implements it in ``store.sqlite_outbox``, and the
Elasticsearch adapter with a create-only index and optimistic concurrency.
The behaviour both must have is ``tests/outbox_contract.py``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from models.alert import UtcTime
from models.page import Notification, NotificationStatus, Page, PageKind


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
    # status SENT: the page as it went out when it was brought up to date (``notify.as_now``), kept in
    # place of the planned one, so that the outbox says what the receiver was told
    sent_page: Page | None = None


class ReceiverRest(BaseModel):
    """A receiver that failed, left alone until ``until`` by every process that delivers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    receiver: str
    until: UtcTime  # wall-clock: no page of it is taken before (the backoff, or what it asked)
    # what the receiver asked itself (HTTP Retry-After): a person ending the backoff (pages --deliver)
    # keeps it, since a receiver that rate-limits refuses what comes sooner anyway
    asked_until: UtcTime | None = None
    failures: int = Field(ge=0)  # failed attempts in a row, whichever page: the next backoff step
    error: str  # the failure that started this rest
    at: UtcTime  # wall-clock: when it failed


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
        is due; none of a receiver resting at ``now`` (``rest_receiver``) is;
        one taken is not given out again until ``settle`` or until the lease
        runs out (a delivering process that died).
        """

    @abstractmethod
    def settle(self, notification_id: str, settlement: Settlement) -> None:
        """Record the outcome and release the lease; KeyError if unknown."""

    @abstractmethod
    def release(self, notification_id: str) -> None:
        """Give back a notification taken for delivery and not settled: due again at once, to any process.

        What a process stopped cleanly in the middle of a delivery (Ctrl-C) does, so that the page
        does not wait out the lease as after a crash.  One settled meanwhile (the interrupt came just
        after) is left as it is; an unknown id is no error.
        """

    @abstractmethod
    def notifications(self, query: OutboxQuery) -> list[Notification]:
        """Notifications matching the query, by creation time (newest first by default)."""

    @abstractmethod
    def outbox_counts(self) -> dict[NotificationStatus, int]:
        """How many notifications are in each status (absent: none)."""

    @abstractmethod
    def rest_receiver(self, rest: ReceiverRest) -> None:
        """Record the receiver's rest, in place of the one it had."""

    @abstractmethod
    def end_rest(self, receiver: str, set_before: datetime | None = None) -> None:
        """Forget the receiver's rest (it accepted a page, or a person ended it).

        ``set_before``: only a rest that started before then: a failure another
        process saw while this one's page was on its way stands.
        """

    @abstractmethod
    def receiver_rests(self) -> dict[str, ReceiverRest]:
        """The rests recorded, by receiver, ended or not (``failures`` counts on after one ends)."""
