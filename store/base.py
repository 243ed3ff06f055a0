"""The store port: what the pipeline, the CLI and the dashboard need of storage.

Two adapters implement it: SQLite (embedded, ``store.sqlite``) and
Elasticsearch (production).  Both pass the same contract tests
(``tests/store_contract.py``).  Every write is idempotent, so that a retried
batch, a replay or a restart after a crash never stores anything twice.
"""

from __future__ import annotations

import base64
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar, Literal, NamedTuple
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from models.alert import Alert, AlertStatus, Severity
from models.dashboard import (  # the dashboard section's answers
    ActorProfile,
    AlertDayCount,
    ClassDay,
    DataAccess,
    DataAccessQuery,
    FoldProgress,
    Health,
    HourActivity,
    PeerActivity,
    TriageSummary,
)
from models.deadletter import DeadLetter
from models.event import AccessEvent, Action, Outcome
from models.fast_event import FastEvent
from models.incident import Incident, TriageAction
from models.page import Notification
from store.outbox import OutboxStore  # paging (issue 5)
from store.readers import ReadersSummary, Tally


class IncomingEvent(NamedTuple):
    """A validated event with the bytes it arrived as (kept as the auditors' original).

    A named tuple, not a frozen dataclass: one is made for every event, and a
    tuple is built in a third of the time (0.3 µs against 0.9), as immutable.
    """

    event: FastEvent  # ``models.fast_event.from_model`` makes one of an ``AccessEvent``
    raw: bytes
    classes: frozenset[str]  # the data classes its fields belong to, as classified at ingest
    # Where it arrived, when the source has positions ("kafka:topic/partition@offset").  A store
    # that keeps it can tell the same message delivered again (after a consumer crashed between
    # storing a batch and checkpointing it: to be judged again) from a duplicate (never judged twice).
    origin: str | None = None


@dataclass(slots=True)
class WriteResult:
    stored: list[IncomingEvent] = field(default_factory=list)  # new to the store, in store order
    duplicates: int = 0  # stored before: still, or since deleted by retention where the store keeps their keys
    dead_letters_stored: int = 0  # new dead letters (a replayed bad line is not stored twice)
    conflicts: list[str] = field(default_factory=list)  # event ids seen before with other content
    refused: list[IncomingEvent] = field(default_factory=list)  # issue 7: the versions behind ``conflicts``
    last_seq: int = 0  # the store position after this write (for checkpoints)
    # duplicates whose stored copy has the same origin: the same message again (see IncomingEvent.origin)
    redelivered: list[IncomingEvent] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Detector state as of a store position: recovery re-feeds the events after ``seq``."""

    name: str
    seq: int
    state: bytes
    saved_at: datetime


class StoreNeedsUpgrade(Exception):
    """A reader opened a store written by an older accesswatch: its schema migrations are a writer's to apply.

    Read as it is, its queries would fail, or (on an index a migration
    changes) scan the whole store for every page.
    """


class StoreTooNew(Exception):
    """The store was upgraded by a newer accesswatch than this one: its schema is one this code does not know.

    Written to, it would be changed in ways that version does not expect (tables this one writes may be gone);
    read, its answers may be wrong.  Going back is restoring a copy of the data dir made before the upgrade.
    """


class StoreUnavailable(Exception):
    """The store could not be reached, or kept refusing, for longer than its retries allow.

    Nothing of the failed call may be assumed durable; what a caller does
    next (stop, or fall back to its last checkpoint and try again) is its own.
    """


class CheckpointConflict(Exception):
    """Someone else saved this checkpoint since this store last loaded or saved it.

    A store shared by several instances fences checkpoints this way: the
    process that gets it no longer owns that state (its partition moved to
    another instance) and must drop it, never overwrite the new owner's.
    """


class EventQuery(BaseModel):
    """An auditor's question: who read what, when.  Every filter is optional; all given must hold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str | None = None  # exact: the event an alert's evidence cites
    actor_id: str | None = None
    customer_id: str | None = None
    data_class: str | None = None  # as the event was classified when stored
    # a name in the event's ``fields`` (exact: passport_number, not its class), whatever its class; a
    # store may narrow by ``data_class`` first, so giving the field's class too makes the search cheaper
    field: str | None = None
    resource: str | None = None  # "system", "system/type" or "system/type/id"
    action: Action | None = None
    outcome: Outcome | None = None
    # with an offset: a naive time would be taken in whatever zone the machine runs in
    since: AwareDatetime | None = None  # inclusive, event time
    until: AwareDatetime | None = None  # exclusive, event time
    limit: int = Field(default=100, ge=1, le=10_000)
    cursor: str | None = None  # from the previous page's ``next_cursor``
    newest_first: bool = True


class StoredEvent(BaseModel):
    seq: int
    event: AccessEvent
    classes: list[str]


class EventPage(BaseModel):
    items: list[StoredEvent]
    next_cursor: str | None = None  # None when there is no further page


@dataclass(frozen=True, slots=True)
class EventTotal:
    """How many events match a query: ``events`` exactly, or, when ``more``, more than ``events``."""

    events: int
    more: bool = False


class AlertQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_severity: Severity = Severity.LOW
    statuses: list[AlertStatus] | None = None
    detector: str | None = None
    actor_id: str | None = None
    since: datetime | None = None  # on window_end
    until: datetime | None = None  # on window_start
    limit: int = Field(default=1000, ge=1, le=1_000_000)
    offset: int = Field(default=0, ge=0)
    newest_first: bool = False


class IncidentQuery(BaseModel):
    """The queue: filters of the analysts' view; newest and most severe first by default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_severity: Severity = Severity.LOW
    statuses: list[AlertStatus] | None = None
    actor_id: str | None = None
    actor_kind: str | None = None
    organization: str | None = None
    detector: str | None = None
    since: datetime | None = None  # on window_end
    until: datetime | None = None  # on window_start
    order: Literal["severity", "newest", "oldest"] = "severity"  # newest: by ``Incident.newest_flagged``
    limit: int = Field(default=100, ge=1, le=100_000)
    offset: int = Field(default=0, ge=0)


# what ``Store.incident_counts`` may count by (dashboard section)
IncidentFacet = Literal["severity", "status", "detector", "organization", "actor_kind"]


@dataclass(frozen=True, slots=True)
class StoreStats:
    events: int
    dead_letters: int
    alerts: int
    first_event: datetime | None
    last_event: datetime | None


@dataclass(frozen=True, slots=True)
class KeptHistory:
    """How far back the access log goes: what an answer about a customer's accesses can cover.

    A person who asks who read their data is told the period the answer covers and that older
    accesses were deleted under the retention policy, not a shorter list as though it were all.
    """

    oldest: datetime | None  # the oldest event kept (None: none yet)
    deleted_before: datetime | None  # retention deleted (or, by ILM, deletes) the events stamped before this
    deleted_at: datetime | None  # when the latest purge deleted any (None: none did, or ILM's time is unknown)


@dataclass(frozen=True, slots=True)
class PurgeRecord:
    """One retention purge as the store recorded it: when it ran, its horizon, how many events it deleted."""

    at: datetime  # wall-clock, when it began
    horizon: datetime  # events stamped before this were deleted (those alerts cite as evidence kept)
    events: int


def encode_cursor(*parts: int) -> str:
    return base64.urlsafe_b64encode(":".join(map(str, parts)).encode()).decode()


def decode_cursor(cursor: str) -> list[int]:
    try:
        return [int(part) for part in base64.urlsafe_b64decode(cursor.encode()).decode().split(":")]
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("not a cursor this store gave out") from exc


# plans a triage action's pages (``notify.outbox.Pager``) from the incident before it and after it
ActionPages = Callable[[Incident, Incident], Sequence[Notification]]


def held_by(alert: Alert, incident: Incident) -> bool:
    """Whether the incident, which lists the alert, holds it now: a triage action on it may change the alert.

    An alert that grew after its case was closed moved to a follow-up incident of its own, open
    (``ingest.pipeline``), while the closed case still lists it: reclassifying that case must not close the
    alert the follow-up holds.  One naming no incident (an older store's) is held by the incident listing it.
    """
    return alert.incident_id in (None, incident.incident_id)


class Store(OutboxStore, ABC):
    """Storage of events, dead letters, alerts and detector state."""

    # ``purges`` lists every retention purge that deleted events, so that none listed means none did; False for an
    # adapter whose retention records none (ILM): the kept log's start is all a page can say of what went
    records_purges: ClassVar[bool] = False

    # -- ingestion ------------------------------------------------------------
    @abstractmethod
    def write(self, events: Sequence[IncomingEvent], dead_letters: Sequence[DeadLetter] = ()) -> WriteResult:
        """Store what is new, durably, and say which events were new (in store order)."""

    @abstractmethod
    def upsert_alerts(self, alerts: Sequence[Alert], incidents: Sequence[Incident] = ()) -> None:
        """Insert or grow alerts and their incidents by id, together; a status set by a person is kept.

        Each alert and incident is given once: the triage kept is read before any is written.
        """

    @abstractmethod
    def save_checkpoint(self, name: str, seq: int, state: bytes) -> None: ...

    @abstractmethod
    def load_checkpoint(self, name: str) -> Checkpoint | None: ...

    @abstractmethod
    def events_after(self, seq: int, batch: int = 10_000) -> Iterator[list[IncomingEvent]]:
        """Stored events past ``seq`` in store order: what recovery feeds the detectors again."""

    # -- reading ----------------------------------------------------------------
    @abstractmethod
    def query_events(self, query: EventQuery) -> EventPage: ...

    def count_events(self, query: EventQuery, at_most: int) -> EventTotal:
        """How many events match ``query`` (its cursor and limit aside), counted to ``at_most`` at most.

        An adapter may stop sooner where counting would cost a long scan (a filter few events pass, over a
        long span), and say "more than" the events it had counted then.  This default reads the events a
        page at a time: an adapter that can count without reading them does.
        """
        counted, cursor = 0, None
        while True:
            page = self.query_events(
                query.model_copy(update={"limit": min(1000, at_most + 1 - counted), "cursor": cursor})
            )
            counted += len(page.items)
            cursor = page.next_cursor
            if counted > at_most:
                return EventTotal(at_most, more=True)
            if cursor is None:
                return EventTotal(counted)

    def readers(self, query: EventQuery, top: int, at_most: int, top_purposes: int = 3) -> ReadersSummary:
        """The events matching ``query`` (its cursor and limit aside) by actor: the ``top`` with most records.

        Reads the matching events a page at a time, newest first, and folds them here: at most ``at_most`` of
        them (then ``complete`` is False), so that a broad search costs a bounded read.  An adapter that can
        group where its filter runs (SQL) answers alike without reading the events into Python.
        """
        tally, cursor = Tally(), None
        while True:
            page = self.query_events(
                query.model_copy(
                    update={"limit": min(1000, at_most + 1 - tally.events), "cursor": cursor, "newest_first": True}
                )
            )
            for item in page.items:
                if tally.events == at_most:  # one past the bound: there are more
                    return tally.summary(top, top_purposes, complete=False)
                tally.add(item.event)
            cursor = page.next_cursor
            if cursor is None:
                return tally.summary(top, top_purposes, complete=True)

    @abstractmethod
    def query_alerts(self, query: AlertQuery) -> list[Alert]: ...

    @abstractmethod
    def get_alert(self, alert_id: str) -> Alert | None: ...

    @abstractmethod
    def set_alert_status(self, alert_id: str, status: AlertStatus) -> Alert | None: ...

    @abstractmethod
    def get_alerts(self, alert_ids: Sequence[str]) -> list[Alert]: ...

    # -- incidents and triage ----------------------------------------------------
    @abstractmethod
    def get_incident(self, incident_id: str) -> Incident | None: ...

    @abstractmethod
    def latest_incident(self, actor_id: str) -> Incident | None:
        """The actor's incident with the latest end: the one a new alert may continue."""

    def latest_incidents(self, actor_ids: Sequence[str]) -> dict[str, Incident]:
        """``latest_incident`` of each actor that has one, by actor id: a store may answer in one request."""
        found = {actor_id: self.latest_incident(actor_id) for actor_id in dict.fromkeys(actor_ids)}
        return {actor_id: incident for actor_id, incident in found.items() if incident is not None}

    @abstractmethod
    def query_incidents(self, query: IncidentQuery) -> list[Incident]: ...

    def record_action(self, action: TriageAction) -> Incident:
        """Add a triage action to the log and apply it to the incident and the alerts it holds (``held_by``);
        KeyError if unknown, TransitionRefused if the stored status does not allow it (nothing recorded)."""
        return self.record_action_paged(action, lambda before, after: [])[0]

    @abstractmethod
    def record_action_paged(self, action: TriageAction, pages: ActionPages) -> tuple[Incident, list[str]]:
        """``record_action``, and the pages that tell the receivers of it added to the outbox in the same write,
        with the ids added (a known id is left as it is).

        ``pages`` plans them from the incident as stored before the action and as the action leaves it, once
        the stored status allowed it: an interruption (Ctrl-C, a crash) must not leave the action recorded and
        the receivers never told of it.  SQLite writes both in one transaction; Elasticsearch, which has none,
        in one bulk request.
        """

    @abstractmethod
    def actions(self, incident_id: str) -> list[TriageAction]:
        """The incident's triage log, oldest first."""

    @abstractmethod
    def dead_letters(self, limit: int = 100, offset: int = 0) -> list[DeadLetter]: ...

    @abstractmethod
    def stats(self) -> StoreStats: ...

    @abstractmethod
    def active_actor_days(self, zone: ZoneInfo) -> int:
        """How many (actor, day) pairs have any event; days as the zone's calendar has them, daylight saving
        included (the denominator of false alarms per actor-day: ``accesswatch evaluate``)."""

    # == dashboard (issue 6): aggregations for the pages, and the audit of auditors ==========
    # Every figure is computed where the data lives (SQL, an Elasticsearch
    # aggregation) so a page never loads a month of events.  Local days are the
    # organisation's zone's calendar days, daylight saving included.  Records are
    # those of served accesses only, as the detectors count them: a refused or
    # failed access is an event (a refused one denied) that read no record.
    @abstractmethod
    def incident_counts(self, query: IncidentQuery, by: IncidentFacet = "severity") -> dict[str, int]:
        """How many incidents match the query's filters (limit and offset ignored), per value of ``by``."""

    @abstractmethod
    def alerts_per_day(self, since: datetime, until: datetime, zone: ZoneInfo) -> list[AlertDayCount]:
        """Alerts starting in [since, until), counted per local day, severity, detector and actor kind."""

    @abstractmethod
    def activity(self, since: datetime, until: datetime, actor_id: str | None = None) -> list[HourActivity]:
        """Per UTC hour in [since, until): one actor's events and records, or everyone's; idle hours absent."""

    def fold_progress(self) -> FoldProgress | None:
        """How far the pre-aggregated hourly figures behind ``activity``, ``peer_activity``, ``actor_profile``
        and ``class_days`` have folded the stored events in; None for an adapter that computes them from the
        events as they are (never behind)."""
        return None

    def exact_activity(
        self, actor_id: str, since: datetime, until: datetime, at_most: int
    ) -> list[HourActivity] | None:
        """``activity`` of one actor, exact while the hourly figures are still being folded: its events not in
        them yet are counted from the events themselves.  None when more than ``at_most`` of those wait in the
        span (counting them would be the long read the fold is).  An adapter never behind answers ``activity``."""
        return self.activity(since, until, actor_id)

    @abstractmethod
    def peer_activity(self, actor_id: str, since: datetime, until: datetime) -> PeerActivity:
        """Per hour, the actor's peers (same kind, role and organisation, the actor left out)."""

    @abstractmethod
    def actor_profile(self, actor_id: str, since: datetime, until: datetime, top: int = 10) -> ActorProfile | None:
        """Who the actor is, and the data classes, resources and actions it touched in the span; None if unseen."""

    @abstractmethod
    def class_days(self, since: datetime, until: datetime, zone: ZoneInfo, by_kind: bool = False) -> list[ClassDay]:
        """Records read per local day and data class in [since, until); an hour counts on the day it starts.
        ``by_kind``: per actor kind too (employees, partners' agents, service accounts), else every kind's together."""

    @abstractmethod
    def triage_summary(self, since: datetime, until: datetime, now: datetime, deadline_seconds: float) -> TriageSummary:
        """Incidents raised in [since, until), how they were handled, and those open past the deadline."""

    @abstractmethod
    def raised_at(self, incident_id: str) -> datetime | None:
        """Wall-clock time the incident was first stored: when the product knew, and the deadline starts."""

    @abstractmethod
    def health(self, marks_since: datetime | None = None) -> Health:
        """Counts cheap to get at any size, and the samples of the event count since ``marks_since``."""

    @abstractmethod
    def kept_history(self, now: datetime) -> KeptHistory:
        """Where the kept access log starts, and what retention deleted before it, as of ``now``."""

    @abstractmethod
    def record_data_access(self, access: DataAccess) -> None:
        """Keep a person's reading of customer data in the dashboard (append only)."""

    @abstractmethod
    def data_accesses(self, query: DataAccessQuery) -> list[DataAccess]:
        """The dashboard's record of who read customer data, newest first."""

    def sampled_events(self, since: datetime | None, until: datetime, at_most: int) -> EventTotal | None:
        """How many events stamped in [since, until) served data (succeeded) and listed fewer customer ids than
        records, counted to ``at_most``: the contract lets an event log a sample of its customers, and a customer
        past the sample cannot be told that no access served their data.  None: this adapter does not count them
        (the answer then says it may be so)."""
        return None

    def purges(self) -> list[PurgeRecord]:
        """The retention purges the store recorded, oldest first: a report tells events retention deleted from
        events never stored.  An adapter whose retention keeps no record of them (ILM drops whole indices)
        has none to give."""
        return []

    # == end of the dashboard section ==========================================================

    def open_writer(self) -> Store:
        """A handle for a writer thread (``write`` only) beside this one; thread-safe adapters return self."""
        return self

    def close(self) -> None:
        """Release connections."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
