"""What the dashboard reads from the store beyond events, alerts and incidents: figures, and the audit of auditors.

These are the answers of the store port's dashboard methods
(``store.base.Store``, section "dashboard"): aggregations that every adapter
computes where the data lives (SQL, Elasticsearch aggregations), so that a
page never loads a month of events to draw one chart.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from models.alert import UtcTime


class _Figures(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HourActivity(_Figures):
    """One hour (UTC, aligned) of one actor's or everyone's activity; hours without events are absent."""

    hour: UtcTime
    events: int
    records: int
    egress_records: int  # exported, downloaded, printed or shared
    denied: int  # events refused by the system of record
    # records and egress_records count served accesses only (a refused or failed one read nothing); True: they may
    # also count refused or failed ones, purged before the store counted served records only (store.dash_served)
    records_include_refused: bool = False


class PeerHour(_Figures):
    """One hour of the actor's peer group (same kind, role and organisation), the actor left out."""

    hour: UtcTime
    active_peers: int  # peers with any event in the hour
    records: int  # all active peers' records together
    median_records: float  # the median over the active peers


class PeerActivity(_Figures):
    peers: int  # the size of the peer group, the actor left out
    hours: list[PeerHour]


class Usage(_Figures):
    """How much of one thing (a data class, a resource ``system/type``, an action) an actor touched."""

    name: str
    events: int
    records: int


class ActorProfile(_Figures):
    actor_id: str
    kind: str
    name: str | None = None
    role: str | None = None
    department: str | None = None
    organization: str | None = None
    first_seen: UtcTime | None = None
    last_seen: UtcTime | None = None
    # over the asked span, most records first
    data_classes: list[Usage] = []
    resources: list[Usage] = []
    actions: list[Usage] = []


class AlertDayCount(_Figures):
    """Alerts that started on one local day, for one severity, detector and actor kind."""

    day: date
    severity: str
    detector: str
    actor_kind: str
    alerts: int


class ClassDay(_Figures):
    """Records of one data class read on one local day (an event reading several classes counts in each), by one
    kind of actor (``ActorKind``'s value) or, None, by every kind."""

    day: date
    data_class: str
    actor_kind: str | None = None
    events: int
    records: int


class TriageSummary(_Figures):
    """How the incidents raised in a span were handled: what the privacy programme is judged by."""

    incidents: int  # raised in the span
    reviewed: int  # of those, acknowledged, resolved or marked false positive since
    median_seconds_to_acknowledge: float | None  # raised -> first acknowledge/resolve/false positive
    open_past_deadline: int  # still open (any time of raising) and raised before ``now - deadline``
    overdue_incident_ids: list[str]  # the oldest of those, at most 50


class Health(_Figures):
    events: int  # stored in all
    newest_event: UtcTime | None  # event time of the newest stored event
    dead_letters: int
    unfolded_events: int = 0  # stored but not yet in the hourly figures (an adapter that pre-aggregates)
    # wall-clock samples of the stored-event count, oldest first: the ingestion rate is their slope
    marks: list[tuple[UtcTime, int]] = []


class FoldProgress(_Figures):
    """How far an adapter's pre-aggregated hourly figures (SQLite's roll-ups) have folded the stored events in.

    Until they have, a figure read from them for a span the fold has not reached is short (a flat zero
    on a first look at a store just replayed): the pages say so rather than draw it as data.
    """

    events: int  # stored (the last seq: rows are only ever added)
    folded: int  # of them in the hourly figures

    @property
    def unfolded(self) -> int:
        return max(0, self.events - self.folded)


class DataAccessKind(StrEnum):
    SEARCH = "search"  # an auditor's event search
    EXPORT = "export"  # a CSV of events, or a report with its customer list
    UNMASK = "unmask"  # customer identifiers shown unmasked
    CUSTOMER_LIST = "customer_list"  # the affected customers of an incident shown
    VIEW = "view"  # a page showed customer ids in clear (an unmasked session): which, in ``customer_ids``


class UnlistedMatch(StrEnum):
    """How a customer filter found an access whose list of customers was cut (``DataAccess.customers_unlisted``)."""

    FOUND = "found"  # its query, read again for this customer, finds events of theirs the access held
    # not found in the events kept now, but some the access held were deleted since (retention): they may have been
    POSSIBLY_DELETED = "possibly, in events deleted since"
    # it kept no query to read again (a report's customer list, a page), or its events could not tell
    POSSIBLY = "possibly"


class DataAccess(_Figures):
    """A person of the dashboard reading customer data: the auditors are audited too. Never edited."""

    at: UtcTime  # wall-clock
    by: str = Field(min_length=1, max_length=128)
    role: str = Field(max_length=32)
    kind: DataAccessKind
    reason: str = Field(min_length=1, max_length=1000)
    what: dict[str, Any] = {}  # the query, or the incident, as asked
    results: int = 0  # how many events (or customers) were shown or exported
    incident_id: str | None = None
    # the customer ids this access showed or exported in clear, each once, at most ``CUSTOMERS_LISTED`` of them;
    # ``customers_in_clear`` counts them all (more than listed: the ``what`` re-derives the rest)
    customer_ids: list[str] = []
    customers_in_clear: int = 0
    # not part of the record: set on an answer to ``DataAccessQuery.customer_id`` found beyond the listed ids
    unlisted_match: UnlistedMatch | None = Field(default=None, exclude=True)

    @property
    def customers_unlisted(self) -> int:
        return max(0, self.customers_in_clear - len(self.customer_ids))


CUSTOMERS_LISTED = 1000  # customer ids one access record lists: a page shows far fewer, an export may hold millions


class DataAccessQuery(_Figures):
    by: str | None = None
    # the accesses that showed this customer in clear, or searched for them; of those whose list was cut, the ones
    # whose query still finds them, or that may have held them (``DataAccess.unlisted_match``: store.unlisted)
    customer_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = Field(default=100, ge=1, le=10_000)
