"""What the pages show, as plain functions over the store port: no Streamlit here.

Every function asks the store for a bounded answer (a page of incidents, an
hourly series, an aggregation), so a page costs the same over a thousand
events as over ten million.
"""

from __future__ import annotations

import csv
import io
import itertools
import logging
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta, tzinfo

import orjson

from dashboard import provenance
from dashboard.auth import Identity, Permission
from dashboard.masking import CUSTOMERS_SHOWN, Masker
from dashboard.provenance import ExportProvenance
from detectors.base import CITED
from detectors.registry import DETECTORS
from models.alert import Alert, AlertStatus, Severity
from models.config import Settings
from models.dashboard import (
    CUSTOMERS_LISTED,
    ActorProfile,
    AlertDayCount,
    ClassDay,
    DataAccess,
    DataAccessKind,
    DataAccessQuery,
    FoldProgress,
    HourActivity,
    TriageSummary,
)
from models.event import Actor, ActorKind, Outcome
from models.flagged import ALERTS_PAGE, Flagged, flagged, flagged_of
from models.incident import Incident, TransitionRefused, TriageAction, TriageActionKind
from models.local_time import local_range, local_time, utc_offset  # noqa: F401 (the views read them here)
from store.base import (
    AlertQuery,
    EventPage,
    EventQuery,
    EventTotal,
    IncidentQuery,
    PurgeRecord,
    Store,
    StoredEvent,
)
from store.readers import ReadersSummary, ReaderSummary
from store.related import related_incidents as related_incidents  # the Related tab's, shared with the CLI

log = logging.getLogger(__name__)

OPEN_STATUSES = [AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED]
CLOSING_ACTIONS = (TriageActionKind.RESOLVE, TriageActionKind.FALSE_POSITIVE)
HOUR = timedelta(hours=1)


# -- the queue -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class QueueView:
    incidents: list[Incident]
    # every severity, most severe first, under the filters but the severity one, before paging: the queue's make-up
    by_severity: dict[str, int]
    total: int  # listed: at or above the severity filter
    flagged: dict[str, Flagged]  # by incident id: when its flagged activity was, within its window
    hidden: dict[str, int]  # below the severity filter, the severities that have some: what it leaves out


def queue(store: Store, query: IncidentQuery) -> QueueView:
    counts = store.incident_counts(query.model_copy(update={"min_severity": Severity.LOW}), by="severity")
    ordered = {s.value: counts.get(s.value, 0) for s in sorted(Severity, key=lambda s: -s.rank)}
    listed = sum(count for severity, count in ordered.items() if Severity(severity).at_least(query.min_severity))
    hidden = {s: n for s, n in ordered.items() if n and not Severity(s).at_least(query.min_severity)}
    incidents = store.query_incidents(query)
    return QueueView(incidents, ordered, listed, flagged_of(store.get_alerts, incidents), hidden)


def organizations(store: Store) -> list[str]:
    """The partner organisations that have incidents: the queue's filter choices."""
    return sorted(store.incident_counts(IncidentQuery(), by="organization"))


# -- one incident ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class IncidentView:
    incident: Incident
    alerts: list[Alert]
    actions: list[TriageAction]
    raised_at: datetime | None
    deadline: datetime | None  # raised + the reporting deadline

    @property
    def is_open(self) -> bool:
        return self.incident.status in OPEN_STATUSES

    @property
    def flagged(self) -> Flagged:
        """When the activity the alerts flagged was: the incident's window may be a whole day around it."""
        return flagged(self.alerts, self.incident.window_start, self.incident.window_end)

    @property
    def closed_at(self) -> datetime | None:
        """When a person last closed it (resolved, or marked a false positive); None while it is open."""
        if self.is_open:
            return None
        return next((a.at for a in reversed(self.actions) if a.kind in CLOSING_ACTIONS), None)

    def seconds_before_deadline(self, now: datetime) -> float | None:
        """To spare before the deadline (negative: past it): now while open, at the closing once closed.

        Closing stops the clock: a resolved incident has no deadline running on.  None: no deadline,
        or closed at a time the triage log does not hold.
        """
        moment = now if self.is_open else self.closed_at
        if self.deadline is None or moment is None:
            return None
        return (self.deadline - moment).total_seconds()


def summaries_shown(store: Store, incidents: Sequence[Incident], masker: Masker) -> dict[str, str]:
    """Each incident's summary as ``masker`` shows it, by incident id: the purposes a documented finding's sentence
    quotes masked as its evidence's (``Masker.summary``).  The alerts, whose evidence holds the purposes, are read
    only for the incidents whose summary quotes some (``detectors.base.CITED``): the others' are the detectors' words.
    """
    shown = {incident.incident_id: incident.summary for incident in incidents}
    if masker.unmasked and masker.subject is None:
        return shown
    quoting = [incident for incident in incidents if CITED in incident.summary]
    for start in range(0, len(quoting), ALERTS_PAGE):
        page = quoting[start : start + ALERTS_PAGE]
        alerts = {a.alert_id: a for a in store.get_alerts([i for incident in page for i in incident.alert_ids])}
        for incident in page:
            cited = [p for i in incident.alert_ids if i in alerts for p in alerts[i].documented_purposes]
            shown[incident.incident_id] = masker.summary(incident.summary, cited)
    return shown


def view_shown(view: IncidentView, masker: Masker) -> IncidentView:
    """The incident and its alerts with their summaries as ``masker`` shows them (``Masker.summary``): for the
    page and the report only, the records keep the detectors' sentences."""
    if masker.unmasked and masker.subject is None:
        return view
    alerts = [
        alert.model_copy(update={"summary": masker.summary(alert.summary, alert.documented_purposes)})
        for alert in view.alerts
    ]
    cited = [purpose for alert in view.alerts for purpose in alert.documented_purposes]
    incident = view.incident.model_copy(update={"summary": masker.summary(view.incident.summary, cited)})
    return replace(view, incident=incident, alerts=alerts)


def incident_view(store: Store, settings: Settings, incident_id: str) -> IncidentView | None:
    incident = store.get_incident(incident_id)
    if incident is None:
        return None
    raised = store.raised_at(incident_id)
    deadline = raised + timedelta(seconds=settings.dashboard.report_deadline) if raised else None
    return IncidentView(
        incident,
        sorted(store.get_alerts(incident.alert_ids), key=lambda a: (-a.severity.rank, -a.score)),
        store.actions(incident_id),
        raised,
        deadline,
    )


def incident_events(
    store: Store,
    incident: Incident,
    page_size: int,
    cursor: str | None = None,
    span: tuple[datetime, datetime] | None = None,
) -> EventPage:
    """The actor's events over ``span`` (the incident's window unless given), newest first, one page."""
    since, until = span or (incident.window_start, incident.window_end)
    return store.query_events(
        EventQuery(actor_id=incident.actor_id, since=since, until=until, limit=page_size, cursor=cursor)
    )


EVENTS_COUNTED = 10_000  # a page of events says how many match, to this many ("more than" past it)


def events_in(store: Store, actor_id: str, since: datetime, until: datetime) -> EventTotal:
    """How many events the actor has in a span (counted by the store, no event read)."""
    return store.count_events(EventQuery(actor_id=actor_id, since=since, until=until), EVENTS_COUNTED)


# -- the timeline: records per hour against the usual band and the peers ----------------------
@dataclass(frozen=True, slots=True)
class TimelinePoint:
    hour: datetime  # UTC
    records: int
    usual_low: float  # the actor's own 10th-90th percentile for this kind of hour
    usual_high: float
    peer_median: float | None  # the median over the peers active in the hour


def timeline_span(incident: Incident, newest: datetime | None) -> tuple[datetime, datetime]:
    """Two days before the incident to a day after it (not past the newest event), at most two weeks."""
    start = (incident.window_start - timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    end = incident.window_end + timedelta(days=1)
    if newest is not None:
        end = max(min(end, newest + HOUR), incident.window_end)
    return max(start, end - timedelta(days=14)), end


def _hours(start: datetime, end: datetime) -> Iterator[datetime]:
    hour = start.replace(minute=0, second=0, microsecond=0)
    while hour < end:
        yield hour
        hour += HOUR


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _kind_of_hour(moment: datetime, settings: Settings) -> tuple[bool, int]:
    local = moment.astimezone(settings.organisation.tz)
    return local.weekday() in settings.organisation.business_days, local.hour


def usual_band(
    history: list[HourActivity], start: datetime, end: datetime, settings: Settings
) -> dict[tuple[bool, int], tuple[float, float]]:
    """Per (business day?, local hour): the 10th and 90th percentile of the actor's records, idle hours as 0."""
    by_hour = {h.hour: h.records for h in history}
    samples: dict[tuple[bool, int], list[float]] = defaultdict(list)
    for hour in _hours(start, end):
        samples[_kind_of_hour(hour, settings)].append(float(by_hour.get(hour, 0)))
    return {key: (_percentile(values, 0.1), _percentile(values, 0.9)) for key, values in samples.items()}


# An actor's events not yet in the hourly figures that a timeline counts from the events themselves: an
# employee's month is a few thousand; a service account's nightly millions would make the page the fold's wait.
UNFOLDED_COUNTED = 100_000


@dataclass(frozen=True, slots=True)
class Timeline:
    points: list[TimelinePoint]  # empty while behind with more of the actor's events waiting than are counted
    behind: FoldProgress | None  # the hourly figures are still being folded: the page says so


def fold_behind(store: Store) -> FoldProgress | None:
    """How far the hourly figures are from the stored events, when they are behind (None: caught up)."""
    progress = store.fold_progress()
    return progress if progress is not None and progress.unfolded else None


def timeline(store: Store, settings: Settings, incident: Incident, newest: datetime | None) -> Timeline:
    """The actor's records per hour, its usual band and its peers' median.

    While the hourly figures are behind (a first look at a store just replayed), the actor's own hours
    are counted exactly (``Store.exact_activity``): the roll-ups alone would draw the incident as a flat
    zero.  Its peers' hours are many actors' events: their median is left out until the fold catches up.
    """
    # asked before the figures are read: a fold ending meanwhile leaves a notice too many, never a short chart
    behind = fold_behind(store)
    start, end = timeline_span(incident, newest)
    profile = store.actor_profile(incident.actor_id, start, end)
    first_seen = profile.first_seen if profile is not None else None
    if behind is not None:  # the profile knows the folded events only: the actor's first stored one may be older
        first = store.query_events(EventQuery(actor_id=incident.actor_id, limit=1, newest_first=False)).items
        if first:
            first_seen = min(first_seen or first[0].event.timestamp, first[0].event.timestamp)
    history_start = start - timedelta(days=settings.dashboard.timeline_days)
    if first_seen is not None:
        history_start = max(history_start, first_seen.replace(minute=0, second=0, microsecond=0))
    if behind is None:
        history: list[HourActivity] | None = (
            store.activity(history_start, start, actor_id=incident.actor_id) if history_start < start else []
        )
        own: list[HourActivity] | None = store.activity(start, end, actor_id=incident.actor_id)
        peers = {p.hour: p.median_records for p in store.peer_activity(incident.actor_id, start, end).hours}
    else:
        history = (
            store.exact_activity(incident.actor_id, history_start, start, UNFOLDED_COUNTED)
            if history_start < start
            else []
        )
        own = store.exact_activity(incident.actor_id, start, end, UNFOLDED_COUNTED)
        peers = {}
    if history is None or own is None:
        return Timeline([], behind)
    band = usual_band(history, history_start, start, settings)
    actor = {h.hour: h.records for h in own}
    points = []
    for hour in _hours(start, end):
        low, high = band.get(_kind_of_hour(hour, settings), (0.0, 0.0))
        points.append(TimelinePoint(hour, actor.get(hour, 0), low, high, peers.get(hour, 0.0 if peers else None)))
    return Timeline(points, behind)


# -- what was read: customers and data classes ------------------------------------------------------
SOURCE_KINDS = ("source address", "user agent", "session")  # the contract's source_ip, user_agent, session_id


@dataclass(slots=True)
class CustomerTrace:
    """One customer id as the incident's events logged it: a row of the privacy officer's list."""

    first: datetime
    last: datetime
    events: int = 0
    exported: bool = False  # in an egress event (exported, downloaded, printed or shared), not only read
    flagged: bool = False  # in an event of the flagged hours (``Impact.flagged``), not only in the rest of the window


@dataclass(slots=True)
class Impact:
    """Whose data and which kinds were read in the incident: what a breach report must say."""

    events: int = 0
    records: int = 0
    egress_records: int = 0
    denied: int = 0
    failed: int = 0  # accesses that ended in an error: asked, nothing served, as a refused one
    # the ids the events logged; the contract lets an event log a sample of its records' customers
    customers: dict[str, CustomerTrace] = field(default_factory=dict)
    sampled_events: int = 0  # events that logged fewer customer ids than their record_count
    sampled_records: int = 0  # those events' records
    unlisted: int = 0  # records of those events beyond the ids they logged: customers not known by id
    records_by_class: Counter = field(default_factory=Counter)
    fields: Counter = field(default_factory=Counter)  # field name -> records of the events that read it
    resources: Counter = field(default_factory=Counter)
    actions: Counter = field(default_factory=Counter)
    # where the events came from, as they say it: (SOURCE_KINDS item, value or "" when not given) -> events
    sources: Counter = field(default_factory=Counter)
    egress_sources: Counter = field(default_factory=Counter)  # the same, egress events only
    first: datetime | None = None
    last: datetime | None = None
    egress_first: datetime | None = None  # the exfiltration's own span, within the day's
    egress_last: datetime | None = None
    complete: bool = True  # False when more events matched than were read
    # The hours the detectors flagged, where the incident's window is wider (a day's finding merged in): what
    # the rest of the window holds was judged the actor's usual work.  ``in_flagged`` totals their events.
    flagged: tuple[datetime, datetime] | None = None
    in_flagged: Impact | None = None

    @property
    def exported_customers(self) -> int:
        return sum(1 for trace in self.customers.values() if trace.exported)


def impact(
    store: Store, incident: Incident, max_events: int = 50_000, flagged: tuple[datetime, datetime] | None = None
) -> Impact:
    """Read the incident's events page by page (bounded) and total what they touched; those of the ``flagged``
    hours (when narrower than the window) also apart (``Impact.in_flagged``)."""
    result = Impact()
    if flagged is not None and flagged != (incident.window_start, incident.window_end):
        result.flagged, result.in_flagged = flagged, Impact()
    cursor = None
    while True:
        page = store.query_events(
            EventQuery(
                actor_id=incident.actor_id,
                since=incident.window_start,
                until=incident.window_end,
                limit=1000,
                cursor=cursor,
                newest_first=False,
            )
        )
        for item in page.items:
            _add(result, item)
            if result.flagged is not None and result.in_flagged is not None:
                if result.flagged[0] <= item.event.timestamp < result.flagged[1]:
                    _add(result.in_flagged, item)
                    for customer in item.event.customer_ids or ():
                        trace = result.customers.get(customer)  # none for a refused event: nothing was read
                        if trace is not None:
                            trace.flagged = True
        cursor = page.next_cursor
        if cursor is None:
            return result
        if result.events >= max_events:
            result.complete = False
            return result


def _add(result: Impact, item: StoredEvent) -> None:
    event = item.event
    result.events += 1
    if event.outcome is not Outcome.SUCCESS:
        # refused or failed: nothing was read (the detectors count only data served, ``detectors.windows``)
        if event.outcome is Outcome.DENIED:
            result.denied += 1
        else:
            result.failed += 1
        return
    at, egress = event.timestamp, event.is_egress
    result.records += event.record_count
    if egress:
        result.egress_records += event.record_count
        result.egress_first = at if result.egress_first is None else min(result.egress_first, at)
        result.egress_last = at if result.egress_last is None else max(result.egress_last, at)
    logged = set(event.customer_ids or ())
    if len(logged) < event.record_count:
        result.sampled_events += 1
        result.sampled_records += event.record_count
        result.unlisted += event.record_count - len(logged)
    for customer in logged:
        trace = result.customers.get(customer)
        if trace is None:
            trace = result.customers[customer] = CustomerTrace(at, at)
        trace.first, trace.last = min(trace.first, at), max(trace.last, at)
        trace.events += 1
        trace.exported = trace.exported or egress
    for name in item.classes:
        result.records_by_class[name] += event.record_count
    for name in set(event.fields or ()):
        result.fields[name] += event.record_count
    for kind, value in zip(SOURCE_KINDS, (event.source_ip, event.user_agent, event.session_id), strict=True):
        result.sources[kind, value or ""] += 1
        if egress:
            result.egress_sources[kind, value or ""] += 1
    result.resources[event.resource.kind] += event.record_count
    result.actions[event.action.value] += event.record_count
    result.first = at if result.first is None else min(result.first, at)
    result.last = at if result.last is None else max(result.last, at)


@dataclass(frozen=True, slots=True)
class Ingested:
    """An actor's figures over whole UTC hours as the store counted them at ingestion (``Store.activity``):
    retention deletes raw events, never these."""

    events: int
    records: int
    egress_records: int
    denied: int
    records_include_refused: bool = False  # some hours were counted before they left refused accesses' out

    @classmethod
    def of(cls, hours: Sequence[HourActivity]) -> Ingested:
        return cls(
            sum(h.events for h in hours),
            sum(h.records for h in hours),
            sum(h.egress_records for h in hours),
            sum(h.denied for h in hours),
            any(h.records_include_refused for h in hours),
        )


@dataclass(frozen=True, slots=True)
class Retained:
    """What retention left of an incident's window: its figures as ingested, against the events still stored."""

    window: Ingested
    flagged: Ingested | None  # the flagged hours', where narrower than the window
    kept: int  # events still stored in the window
    purges: list[PurgeRecord]  # the purges that deleted events of the window (``purges_through``)
    later_purges: int  # purges whose horizon passed its start after earlier ones had passed as far (``purges_through``)
    whole_hours: bool  # the window falls on whole UTC hours: else the hourly figures run a little past its edges
    alert_customers: int | None  # the most distinct customer ids an alert of the incident recorded

    @property
    def deleted(self) -> int:
        return self.window.events - self.kept


def retained(
    store: Store, incident: Incident, alerts: Sequence[Alert], found: Impact, flagged: tuple[datetime, datetime]
) -> Retained | None:
    """The window's figures as ingested, where fewer of its events are stored now (None where none is missing).

    The hourly roll-ups are counted as events arrive and retention leaves them: they say how many events,
    records and exports the window held once its raw events are gone.  Which customers they were is gone
    with the events; the alerts kept the count of those they saw.
    """
    if not found.complete:  # the events read stopped at the limit: fewer than stored, not fewer than ingested
        return None
    window = Ingested.of(store.activity(incident.window_start, incident.window_end, incident.actor_id))
    if window.events <= found.events:
        return None
    narrower = flagged != (incident.window_start, incident.window_end)
    counts = [alert.evidence.get("distinct_customers") for alert in alerts]
    through, later = purges_through(store.purges(), incident.window_start, incident.window_end)
    return Retained(
        window=window,
        flagged=Ingested.of(store.activity(*flagged, incident.actor_id)) if narrower else None,
        kept=found.events,
        purges=through,
        later_purges=later,
        whole_hours=all(
            moment.timestamp() % 3600 == 0 for moment in (incident.window_start, incident.window_end, *flagged)
        ),
        alert_customers=max((c for c in counts if isinstance(c, int)), default=None),
    )


def purges_through(purges: Sequence[PurgeRecord], start: datetime, end: datetime) -> tuple[list[PurgeRecord], int]:
    """Of the purges, in the order they ran, those that deleted events of ``[start, end)``, and how many later
    had a horizon past its start.

    A purge deletes the events stamped before its horizon that are still stored: those between the highest
    horizon of the purges before it and its own.  One whose horizon passes the window's start after an earlier
    one passed its end (or no further than an earlier one) found none of the window left but the few an
    earlier purge kept (the evidence of an alert since purged, the newest event) or a replay stored since: it
    is counted, not named as a purge that deleted the window's events.
    """
    through: list[PurgeRecord] = []
    later, passed = 0, None  # the highest horizon of the purges before
    for purge in purges:
        if purge.horizon > start:
            if passed is None or (passed < end and purge.horizon > passed):
                through.append(purge)
            else:
                later += 1
        passed = purge.horizon if passed is None else max(passed, purge.horizon)
    return through, later


# -- actor profile ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ActorView:
    profile: ActorProfile
    heatmap: list[tuple[int, int, float]]  # (weekday 0=Mon, local hour, mean events per week in that hour)
    volume: list[tuple[datetime, int, float | None]]  # per local day: own records, peers' median records
    incidents: list[Incident]
    flagged: dict[str, Flagged]  # by incident id
    behind: FoldProgress | None  # the hourly figures are still being folded: the profile and charts are short


def actor_view(store: Store, settings: Settings, actor_id: str, until: datetime) -> ActorView | None:
    behind = fold_behind(store)
    since = until - timedelta(days=settings.dashboard.timeline_days)
    profile = store.actor_profile(actor_id, since, until)
    if profile is None:
        return None
    zone = settings.organisation.tz
    hours = store.activity(since, until, actor_id=actor_id)
    weeks = max(1.0, (until - since).days / 7)
    cells: Counter = Counter()
    for hour in hours:
        local = hour.hour.astimezone(zone)
        cells[(local.weekday(), local.hour)] += hour.events  # when they work: events, not bulk sizes
    heatmap = [(day, hour, cells[(day, hour)] / weeks) for day in range(7) for hour in range(24)]
    own_days: Counter = Counter()
    for hour in hours:
        own_days[hour.hour.astimezone(zone).date()] += hour.records
    peer_days: dict = defaultdict(float)
    for peer in store.peer_activity(actor_id, since, until).hours:
        peer_days[peer.hour.astimezone(zone).date()] += peer.median_records
    days = sorted(set(own_days) | set(peer_days))
    volume = [(datetime(d.year, d.month, d.day, tzinfo=zone), own_days.get(d, 0), peer_days.get(d)) for d in days]
    incidents = store.query_incidents(IncidentQuery(actor_id=actor_id, order="newest", limit=50))
    return ActorView(profile, heatmap, volume, incidents, flagged_of(store.get_alerts, incidents), behind)


# -- compliance --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ComplianceView:
    since: datetime
    until: datetime
    alerts: list[AlertDayCount]
    triage: TriageSummary
    partner_out_of_scope: list[AlertDayCount]  # partners touching data, resources or places new to them
    partner_companies: list[PartnerScope]  # the same alerts by company, with the data classes they name
    contract_breaches: list[ContractBreach]  # partners reading outside their company's declared contract
    sensitive: list[ClassDay]  # high-sensitivity classes only, by actor kind (``sensitive_of`` sums them)
    # high or critical sensitive_access alerts, newest first: a breach's 40,000 records are lost in the chart
    # beside a service's nightly million, so they are listed (and their days marked on it)
    sensitive_alerts: list[SensitiveRead]
    dead_letters: int
    behind: FoldProgress | None  # the hourly figures are still being folded: the sensitive-data trend is short


@dataclass(frozen=True, slots=True)
class SensitiveRead:
    """A high or critical ``sensitive_access`` alert, with when its flagged activity was."""

    alert: Alert
    flagged: Flagged

    def day(self, zone: tzinfo) -> date:
        return self.flagged.start.astimezone(zone).date()

    @property
    def records(self) -> int | None:
        """High-sensitivity records read in the strongest window (the alert's figures are its strongest finding's)."""
        value = self.alert.evidence.get("high_sensitivity_records")
        return value if isinstance(value, int) else None


SENSITIVE_ALERTS_SHOWN = 200


def sensitive_reads(store: Store, since: datetime, until: datetime) -> list[SensitiveRead]:
    alerts = store.query_alerts(
        AlertQuery(
            detector="sensitive_access",
            min_severity=Severity.HIGH,
            since=since,
            until=until,
            newest_first=True,
            limit=SENSITIVE_ALERTS_SHOWN,
        )
    )
    return [SensitiveRead(a, flagged([a], a.window_start, a.window_end)) for a in alerts]


@dataclass(frozen=True, slots=True)
class ContractBreach:
    """A partner company's reads outside its declared contract (``partner_contract`` alerts) in a span."""

    organization: str  # as the contract names the company
    agents: int
    alerts: int
    records: int  # read outside the contract, in all the windows of its alerts (as each alert's summary adds up)
    classes: list[str]  # the data classes read outside it


CONTRACT_ALERTS_READ = 10_000  # alerts read at a time: all the span's are read, a page after another, and added up


def every_alert(store: Store, query: AlertQuery, page: int) -> Iterator[Alert]:
    """Every alert the query matches, read ``page`` at a time: a figure summed over them counts them all.

    A single read of at most 10,000 made the Compliance page's figures those of the first 10,000 alerts of the
    span, unsaid: an undercount of no stated size.  The stores keep an alert's figures in its body (Elasticsearch
    as an opaque record), so it is added up here, with the companies' totals only held in memory.
    """
    # Pages by offset, with no snapshot between them: an alert stored or grown to an earlier start meanwhile moves
    # the ones after it down a place, and the last of a page is read again at the top of the next.  Each alert is
    # given once.
    seen: set[str] = set()
    offset = 0
    while True:
        found = store.query_alerts(query.model_copy(update={"limit": page, "offset": offset}))
        for alert in found:
            if alert.alert_id not in seen:
                seen.add(alert.alert_id)
                yield alert
        if len(found) < page:
            return
        offset += len(found)


def contract_breaches(store: Store, since: datetime, until: datetime) -> list[ContractBreach]:
    """By company, the most records first: a breach of a declared contract is a figure of its own, not one more
    partner alert "outside its usual scope" (``Detector.partner_scope``)."""
    query = AlertQuery(detector="partner_contract", since=since, until=until)
    agents: dict[str, set[str]] = defaultdict(set)
    alerts: Counter[str] = Counter()
    records: Counter[str] = Counter()
    classes: dict[str, set[str]] = defaultdict(set)
    for alert in every_alert(store, query, CONTRACT_ALERTS_READ):
        company = (alert.evidence.get("contract") or {}).get("organization") or alert.actor_organization or "?"
        agents[company].add(alert.actor_id)
        alerts[company] += 1
        records[company] += records_outside_contract(alert)
        classes[company].update(alert.evidence.get("outside_contract") or {})
    breaches = [
        ContractBreach(
            organization=company,
            agents=len(agents[company]),
            alerts=count,
            records=records[company],
            classes=sorted(classes[company]),
        )
        for company, count in alerts.items()
    ]
    return sorted(breaches, key=lambda b: (-b.records, b.organization))


def records_outside_contract(alert: Alert) -> int:
    """A ``partner_contract`` alert's records read outside the contract: over all its findings' windows when it grew
    (``records_in_alert``), else its one finding's."""
    e = alert.evidence
    for key in ("records_in_alert", "records_outside_contract", "records"):
        if isinstance(e.get(key), int):
            return e[key]
    return 0


@dataclass(frozen=True, slots=True)
class PartnerScope:
    """A partner company's alerts "outside its usual scope" (``Detector.partner_scope``) in a span."""

    organization: str  # the agents' organisation as the log gives it; "?" when it gives none
    agents: int
    alerts: int
    detectors: list[str]  # the detectors' names, by most alerts
    classes: list[str]  # the data classes the alerts name, where their evidence does


PARTNER_ALERTS_READ = 10_000  # as CONTRACT_ALERTS_READ: alerts read at a time, all of them in the end


def partner_scope_by_company(store: Store, since: datetime, until: datetime) -> list[PartnerScope]:
    """By company, the most alerts first: which partner companies' agents read outside their usual scope."""
    scope = sorted(name for name, detector in DETECTORS.items() if detector.partner_scope)
    by_company: dict[str, list[Alert]] = defaultdict(list)
    for name in scope:  # the store filters alerts by detector, not by actor kind: a query a detector
        for alert in every_alert(store, AlertQuery(detector=name, since=since, until=until), PARTNER_ALERTS_READ):
            if alert.actor_kind is ActorKind.PARTNER:
                by_company[alert.actor_organization or "?"].append(alert)
    companies = [
        PartnerScope(
            organization=company,
            agents=len({alert.actor_id for alert in found}),
            alerts=len(found),
            detectors=[name for name, _ in Counter(alert.detector for alert in found).most_common()],
            classes=sorted({name for alert in found for name in classes_named(alert.evidence)}),
        )
        for company, found in by_company.items()
    ]
    return sorted(companies, key=lambda c: (-c.alerts, c.organization))


def classes_named(evidence: dict) -> set[str]:
    """The data classes an alert's evidence names: read (``classes``, ``records_by_class``) or new to the actor
    (``new_access``'s items of what ``data_class``).  Other detectors' evidence names none: their volumes or hours."""
    named = {c for c in evidence.get("classes") or () if isinstance(c, str)}
    if isinstance(evidence.get("records_by_class"), dict):
        named.update(evidence["records_by_class"])
    for item in evidence.get("new") or ():
        if isinstance(item, dict) and item.get("what") == "data_class" and isinstance(item.get("value"), str):
            named.add(item["value"])
    return named


def sensitive_of(days: list[ClassDay], kind: str | None = None) -> list[ClassDay]:
    """The records per local day and class read by one kind of actor (``ActorKind``'s value), or by every kind
    together (None): the trend a DPO asks of partners' agents alone, without a service's nightly job beside it."""
    totals: dict[tuple[date, str], list[int]] = defaultdict(lambda: [0, 0])
    for day in days:
        if kind is None or day.actor_kind == kind:
            total = totals[day.day, day.data_class]
            total[0] += day.events
            total[1] += day.records
    return [
        ClassDay(day=day, data_class=name, actor_kind=kind, events=events, records=records)
        for (day, name), (events, records) in sorted(totals.items())
    ]


def sensitive_by_kind(days: list[ClassDay]) -> dict[str, dict[str, int]]:
    """Records read in the whole span, by class then actor kind: "how much did partners read this month", a class
    at a time (an event reading two of the classes counts in each, so classes are not added up)."""
    found: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys((k.value for k in ActorKind), 0))
    for day in days:
        if day.actor_kind is not None:
            found[day.data_class][day.actor_kind] = found[day.data_class].get(day.actor_kind, 0) + day.records
    return dict(sorted(found.items()))


def partner_out_of_scope(alerts: list[AlertDayCount]) -> list[AlertDayCount]:
    """The partners' alerts of detectors whose finding means "outside its usual scope" (``Detector.partner_scope``:
    every registered detector says for itself, so a new one is counted without a list here to keep)."""
    scope = {name for name, detector in DETECTORS.items() if detector.partner_scope}
    return [count for count in alerts if count.actor_kind == "partner" and count.detector in scope]


def compliance(store: Store, settings: Settings, until: datetime, days: int, now: datetime) -> ComplianceView:
    since = until - timedelta(days=days)
    zone = settings.organisation.tz
    behind = fold_behind(store)
    alerts = store.alerts_per_day(since, until, zone)
    high = {name for name, c in settings.classification.classes.items() if c.sensitivity == "high"}
    return ComplianceView(
        since=since,
        until=until,
        alerts=alerts,
        triage=store.triage_summary(since, now + HOUR, now, settings.dashboard.report_deadline),
        partner_out_of_scope=partner_out_of_scope(alerts),
        partner_companies=partner_scope_by_company(store, since, until),
        contract_breaches=contract_breaches(store, since, until),
        sensitive=[d for d in store.class_days(since, until, zone, by_kind=True) if d.data_class in high],
        sensitive_alerts=sensitive_reads(store, since, until),
        dead_letters=store.health().dead_letters,
        behind=behind,
    )


# -- health ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class HealthView:
    events: int
    newest_event: datetime | None
    lag_seconds: float | None  # wall-clock now minus the newest event time
    rate_per_second: float | None  # stored events per wall-clock second, over the last minutes
    dead_letters: int
    unfolded_events: int  # stored events not yet in the hourly figures (they are being folded in)
    outbox: dict[str, int] | None  # notifications per status, when the store has the paging outbox
    events_per_hour: list[HourActivity]


def health(store: Store, now: datetime, window: timedelta = timedelta(minutes=5)) -> HealthView:
    figures = store.health(marks_since=now - window)
    rate = None
    if len(figures.marks) >= 2:
        (t0, n0), (t1, n1) = figures.marks[0], figures.marks[-1]
        if (t1 - t0).total_seconds() > 0:
            rate = (n1 - n0) / (t1 - t0).total_seconds()
    outbox = None
    counts = getattr(store, "outbox_counts", None)  # paging (issue 5) adds it
    if callable(counts):
        outbox = {str(getattr(status, "value", status)): n for status, n in counts().items()}
    newest = figures.newest_event
    recent = store.activity(newest - timedelta(days=2), newest + HOUR) if newest else []
    return HealthView(
        events=figures.events,
        newest_event=newest,
        lag_seconds=(now - newest).total_seconds() if newest else None,
        rate_per_second=rate,
        dead_letters=figures.dead_letters,
        unfolded_events=figures.unfolded_events,
        outbox=outbox,
        events_per_hour=recent,
    )


# -- triage ------------------------------------------------------------------------------------------
class TriageRefused(Exception):
    """The action is not allowed, or lacks what it needs (a reason, an assignee)."""


def triage(
    store: Store,
    settings: Settings,
    identity: Identity,
    incident_id: str,
    kind: TriageActionKind,
    note: str | None = None,
    assignee: str | None = None,
    now: datetime | None = None,
) -> Incident:
    """Record a person's triage action (who, when) and tell the pager; KeyError for an unknown incident."""
    if not identity.can(Permission.TRIAGE):
        raise TriageRefused(f"{identity.role.value}s may not change incidents")
    note = (note or "").strip() or None
    assignee = (assignee or "").strip() or None
    if kind is TriageActionKind.FALSE_POSITIVE and not note:
        raise TriageRefused("say why this is a false positive: the reason is kept for the auditors")
    if kind is TriageActionKind.NOTE and not note:
        raise TriageRefused("the note is empty")
    if kind is TriageActionKind.ASSIGN and not assignee:
        raise TriageRefused("name the person to assign it to")
    action = TriageAction(
        incident_id=incident_id,
        kind=kind,
        by=identity.username,
        at=now or datetime.now(UTC),
        note=note,
        assignee=assignee,
    )
    return _record_and_page(store, settings, action)


def _record_and_page(store: Store, settings: Settings, action: TriageAction) -> Incident:
    """Record the action through the pager (``notify.outbox``), which tells the receivers that were paged.

    The pager records the action and plans the acknowledge/resolve pages
    into the store's outbox, in one write; one delivery is tried at once
    on a thread of its own (a slow receiver never holds up the page), and
    the pipeline's delivery loop retries whatever that try left.  A broken
    notify configuration never loses a person's triage: it is then
    recorded alone.
    """
    from accesswatch import app

    try:
        receivers = app.open_receivers(settings)
    except Exception:
        log.exception("the receivers could not be opened: %s recorded without paging", action.kind.value)
        return _record_alone(store, action)
    try:
        incident, planned = app.open_pager(settings, store, receivers).record_action(action)
    except KeyError:
        _close(receivers)
        raise
    except TransitionRefused as exc:  # the screen was stale: someone else closed or reopened it meanwhile
        _close(receivers)
        raise TriageRefused(str(exc)) from None
    except Exception:
        log.exception("paging %s of %s failed", action.kind.value, action.incident_id)
        _close(receivers)
        if action not in store.actions(action.incident_id):
            return _record_alone(store, action)
        recorded = store.get_incident(action.incident_id)
        assert recorded is not None, "the action was recorded, so its incident exists"
        return recorded
    if not planned:
        _close(receivers)
        return incident
    threading.Thread(
        target=_deliver_now, args=(settings, receivers, incident.incident_id), name="dashboard-page", daemon=True
    ).start()
    return incident


def _record_alone(store: Store, action: TriageAction) -> Incident:
    """Record the action without paging (the receivers failed); the store still holds it to the state machine."""
    try:
        return store.record_action(action)
    except TransitionRefused as exc:
        raise TriageRefused(str(exc)) from None


def _deliver_now(settings: Settings, receivers: dict, incident_id: str) -> None:
    from accesswatch import app

    try:
        with app.open_store(settings, must_exist=True) as store:  # a connection of its own: another thread
            app.open_dispatcher(settings, store, receivers).deliver_due(incident_id=incident_id)
    except Exception:  # the outbox keeps the page; the pipeline's delivery loop retries it
        log.exception("could not deliver the triage page of %s now", incident_id)
    finally:
        _close(receivers)


def _close(receivers: dict) -> None:
    for receiver in receivers.values():
        try:
            receiver.close()
        except Exception:
            log.exception("closing receiver %s", getattr(receiver, "name", receiver))


# -- the audit of auditors ------------------------------------------------------------------------------
def record_access(
    store: Store,
    identity: Identity,
    kind: DataAccessKind,
    reason: str,
    what: dict | None = None,
    results: int = 0,
    incident_id: str | None = None,
    in_clear: Iterable[str] = (),
) -> DataAccess:
    """``in_clear``: the customer ids the access showed or exported in clear (``shown_in_clear`` when collected)."""
    reason = reason.strip()
    if not reason:
        raise ValueError("a reason is required to read customer data")
    listed, count = shown_in_clear(in_clear)
    access = DataAccess(
        at=datetime.now(UTC),
        by=identity.username,
        role=identity.role.value,
        kind=kind,
        reason=reason,
        what=what or {},
        results=results,
        incident_id=incident_id,
        customer_ids=listed,
        customers_in_clear=count,
    )
    store.record_data_access(access)
    return access


def shown_in_clear(customer_ids: Iterable[str]) -> tuple[list[str], int]:
    """Each id once, in the order first shown, at most ``CUSTOMERS_LISTED`` of them; and how many in all.

    A page shows a few hundred at most, all listed; an export of a month may hold millions, which one
    record cannot keep: its query (the access's ``what``) reads them again, as long as the events are kept.
    """
    seen = dict.fromkeys(customer_ids)
    return list(itertools.islice(seen, CUSTOMERS_LISTED)), len(seen)


def customers_on_screen(items: Iterable[StoredEvent], masker: Masker) -> list[str]:
    """The customer ids ``event_row`` shows in clear for these events (their first few each); none when masked."""
    if not masker.unmasked:
        return []
    shown = (c for item in items for c in _customers_in_row(item, masker))
    return [c for c in shown if masker.customer(c) == c]


def _customers_in_row(item: StoredEvent, masker: Masker) -> list[str]:
    """Those of the customers column, then any other the resource id or the purpose names."""
    event = item.event
    customers = event.customer_ids or []
    return [*customers[:CUSTOMERS_SHOWN], *masker.names_customers(customers, event.resource.id, event.purpose)]


def audit_search(store: Store, identity: Identity, query: EventQuery, reason: str, record: bool = True) -> EventPage:
    """An auditor's event search, recorded (who, what, when, why) before its answer is shown.

    ``record=False`` for showing again a page already recorded (a page redrawn, not a new search).
    """
    if not identity.can(Permission.AUDIT_SEARCH):
        raise PermissionError(f"{identity.role.value}s may not search the access log")
    if not reason.strip():
        raise ValueError("a reason is required to search the access log (a case, a request number)")
    page = store.query_events(query)
    if record:
        asked = query.model_dump(mode="json", exclude_none=True, exclude={"limit", "newest_first"})
        record_access(store, identity, DataAccessKind.SEARCH, reason, asked, len(page.items))
    return page


# -- the search's events by reader: "who read it, and why" -------------------------------------------------
READERS_SHOWN = 50  # readers listed, the most records first; the rest are counted
READERS_FOLDED = 100_000  # events a summary reads at most (newest first): a broad search's cost stays bounded
READER_COLUMNS = ("reader", "who", "events", "records", "purposes", "no purpose", "first access", "last access")
READER_COUNTS = ("events", "records", "no purpose")  # the columns that are counts, shown with separators


def search_readers(
    store: Store, identity: Identity, query: EventQuery, reason: str, record: bool = True
) -> ReadersSummary:
    """The events a search matches, by reader; recorded as a search (its query, ``summary``: by reader).

    ``record=False`` for showing again a summary already recorded (a page redrawn, not a new search).
    """
    if not identity.can(Permission.AUDIT_SEARCH):
        raise PermissionError(f"{identity.role.value}s may not search the access log")
    if not reason.strip():
        raise ValueError("a reason is required to search the access log (a case, a request number)")
    summary = store.readers(query, READERS_SHOWN, READERS_FOLDED)
    if record:
        asked = query.model_dump(mode="json", exclude_none=True, exclude={"limit", "cursor", "newest_first"})
        what = {**asked, "summary": "by reader", "events": summary.events, "complete": summary.complete}
        record_access(store, identity, DataAccessKind.SEARCH, reason, what, len(summary.readers))
    return summary


def actor_in_words(actor: Actor) -> str:
    """``employee: customer service, support`` or ``partner: FastDelivery Ltd``: kind, role, team and company."""
    parts = (actor.role, actor.department, actor.organization)
    named = ", ".join(dict.fromkeys(part.replace("_", " ").strip() for part in parts if part))  # each once
    return f"{actor.kind.value}: {named}" if named else actor.kind.value


def reader_row(reader: ReaderSummary, masker: Masker, zone: tzinfo) -> dict:
    """One reader as a table row: the purposes most stated (events each, masked as the events' are), times local
    with their offset."""
    stated = "; ".join(f"{masker.text(purpose)} ({events:,})" for purpose, events in reader.purposes)
    if reader.distinct_purposes > len(reader.purposes):
        stated += f"; and {reader.distinct_purposes - len(reader.purposes):,} more"
    values = (
        reader.actor.id,  # as the search's rows show it
        actor_in_words(reader.actor),
        reader.events,
        reader.records,
        stated,
        reader.no_purpose,
        event_time(reader.first, zone),
        event_time(reader.last, zone),
    )
    return dict(zip(READER_COLUMNS, values, strict=True))


# -- events as rows: on screen and in the auditors' CSV ----------------------------------------------------
EVENT_COLUMNS = (
    "time",
    "actor",
    "action",
    "resource",
    "records",
    "fields",
    "classes",
    "customers",
    "outcome",
    "purpose",
    "source_ip",
    "event_id",
)
EVENT_COUNTS = ("records",)  # the columns that are counts, shown with separators on screen (the CSV keeps digits)
EXPORT_PAGE = 1000  # events read a page at a time while exporting
EXPORT_CAP = 50_000  # events in one CSV: the file is built in the server's memory for the download


def event_time(moment: datetime, zone: tzinfo) -> str:
    """Local time to the millisecond, with its UTC offset: ``2026-10-25 09:36:23.123 +08:00``.

    The offset says which clock the time is on, and the milliseconds tell apart, and order, the
    events of one second.
    """
    stamp = moment.astimezone(zone).isoformat(sep=" ", timespec="milliseconds")
    return f"{stamp[:23]} {stamp[23:]}"


def local_axis_title(zone: tzinfo, start: datetime, end: datetime | None = None) -> str:
    """A chart's time axis title: the zone by name and its offset over the span drawn (a tick says no offset).

    When the clocks changed within the span, both offsets and the day they changed: one offset for the
    whole axis would be wrong for the hours on the other side of the change.
    """
    first = start.astimezone(zone)
    last = (end or start).astimezone(zone)
    if utc_offset(first) == utc_offset(last):
        return f"local time: {zone}, UTC{utc_offset(first)}"
    changed = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    while changed < last and utc_offset(changed.astimezone(zone)) == utc_offset(first):  # in UTC: hours that exist
        changed += HOUR
    changed = changed.astimezone(zone)
    return (
        f"local time: {zone}, UTC{utc_offset(first)} then UTC{utc_offset(last)} (the clocks changed on {changed:%d %b})"
    )


def event_row(item: StoredEvent, masker: Masker, zone: tzinfo) -> dict:
    """One event as a table row for a person: local time, masked identifiers, the first few customers.

    The resource id and the purpose show the event's customer ids they hold as the customers column does.
    """
    event = item.event
    customers = event.customer_ids or ()
    values = (
        event_time(event.timestamp, zone),
        event.actor.id,
        event.action.value,
        f"{event.resource.kind}/{masker.resource_id(event.resource.id, customers)}"
        if event.resource.id
        else event.resource.kind,
        event.record_count,
        ", ".join(event.fields or ()),
        ", ".join(item.classes),
        masker.customers(event.customer_ids),
        event.outcome.value,
        masker.text(event.purpose, customers) if event.purpose else "",
        event.source_ip or "",
        event.event_id,
    )
    return dict(zip(EVENT_COLUMNS, values, strict=True))


def export_row(item: StoredEvent, masker: Masker, zone: tzinfo) -> dict:
    """One event as a CSV row: the screen's row with every customer id and field.

    Both lists are JSON arrays: an id may hold any character (a comma, a quote), and a JSON array
    still reads back into the very ids.  Customers are masked as on screen, in clear once unmasked.
    """
    row = event_row(item, masker, zone)
    row["fields"] = orjson.dumps(item.event.fields or []).decode()
    row["customers"] = orjson.dumps([masker.customer(c) for c in item.event.customer_ids or ()]).decode()
    return {column: inert_in_spreadsheets(value) for column, value in row.items()}


# What a spreadsheet takes for the start of a formula (OWASP, "CSV injection").  The access log's text is
# written by whoever sends events: a purpose of "=HYPERLINK(...)" must reach the auditor as text, not run.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def inert_in_spreadsheets(value: object) -> object:
    """A text cell a spreadsheet would evaluate, with an apostrophe before it (shown as text, as written)."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


@dataclass(frozen=True, slots=True)
class Export:
    csv: str
    events: int
    complete: bool  # False: more events matched than the cap allowed; the CSV holds the first ``events``


@dataclass(frozen=True, slots=True)
class EventsExport(Export):
    """An auditor's export of events (``export_events``): the zip handed over, the CSV with its provenance."""

    provenance: ExportProvenance
    archive: bytes

    @property
    def archive_name(self) -> str:
        return self.provenance.file.removesuffix(".csv") + ".zip"


def export_events(
    store: Store,
    identity: Identity,
    query: EventQuery,
    reason: str,
    masker: Masker,
    zone: tzinfo,
    cap: int,
    retention_days: int | None = None,
    now: datetime | None = None,
) -> EventsExport:
    """Every event matching the query, page by page, up to ``cap``, as CSV with its provenance (``provenance``);
    recorded as an export, with the file's name and digest.  ``retention_days``: the policy, which the
    provenance states."""
    if not identity.can(Permission.AUDIT_SEARCH):
        raise PermissionError(f"{identity.role.value}s may not export the access log")
    if not reason.strip():
        raise ValueError("a reason is required to export the access log (a case, a request number)")
    if query.customer_id is not None:  # one customer's events: the others they read stay pseudonyms
        masker = masker.for_subject(query.customer_id)
    in_clear: dict[str, None] = {}  # each id once, in the order written

    def row(item: StoredEvent) -> dict:
        if masker.unmasked:  # the ids the file holds in clear: the subject alone when one customer is searched
            in_clear.update((c, None) for c in item.event.customer_ids or () if masker.customer(c) == c)
        return export_row(item, masker, zone)

    export = events_csv(store, query, EVENT_COLUMNS, row, cap)
    asked = query.model_dump(mode="json", exclude_none=True, exclude={"limit", "cursor", "newest_first"})
    # whether the ids left in clear is part of what was read
    shown = "masked" if not masker.unmasked else "in clear" if masker.subject is None else "the searched one in clear"
    now = now or datetime.now(UTC)
    customer = masker.customer(query.customer_id) if query.customer_id is not None else None
    made = provenance.describe(
        export.csv,
        export.events,
        cut_by_cap=not export.complete,
        cap=cap,
        query=query,
        query_shown=masker.asked(asked),
        customer_shown=customer,
        customer_ids=shown,
        identity=identity,
        reason=reason,
        zone=zone,
        now=now,
        history=store.kept_history(now),
        events_days=retention_days,
    )
    what = {**asked, "cap": cap, "customer_ids": shown, "file": made.file, "sha256": made.sha256}
    record_access(store, identity, DataAccessKind.EXPORT, reason, what, export.events, in_clear=in_clear)
    return EventsExport(
        export.csv, export.events, export.complete, made, provenance.archive(export.csv, made, now, zone)
    )


def download_name(stem: str, customer: str | None, moment: datetime, zone: tzinfo, extension: str = "csv") -> str:
    """``access-request-answer-cust-3fa9c2e1-2026-11-25.csv``: two requests' files, or two days', do not collide.

    ``customer`` as the viewer sees it (``Masker.customer``: a pseudonym until unmasked): a file's name is shown
    in places its content is not, a download list or a mail's subject.
    """
    parts = [stem, provenance.name_part(customer) if customer else ""]
    return "-".join([part for part in parts if part] + [moment.astimezone(zone).date().isoformat()]) + f".{extension}"


def events_csv(
    store: Store, query: EventQuery, columns: Sequence[str], row: Callable[[StoredEvent], dict], cap: int
) -> Export:
    """The events matching ``query``, read ``EXPORT_PAGE`` at a time, up to ``cap``, a CSV row each."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns)
    writer.writeheader()
    events, cursor = 0, None
    while True:
        page = store.query_events(query.model_copy(update={"limit": min(EXPORT_PAGE, cap - events), "cursor": cursor}))
        writer.writerows(map(row, page.items))
        events += len(page.items)
        cursor = page.next_cursor
        if cursor is None or events >= cap:
            break
    return Export(out.getvalue(), events, complete=cursor is None)


# -- the access log, page by page ------------------------------------------------------------------------
# Where the next page of the access log starts: the oldest time shown, and how many shown have that time.
AccessMark = tuple[datetime, int]


@dataclass(frozen=True, slots=True)
class AccessPage:
    accesses: list[DataAccess]
    older: AccessMark | None  # None: this page reaches the oldest access under the filters


def access_log(store: Store, query: DataAccessQuery, after: AccessMark | None = None) -> AccessPage:
    """One page of who read customer data, newest first; ``after`` (a page's ``older``) pages back past it.

    The store answers a time span, newest first (ties in a fixed order), so the next page is the
    span up to the oldest time shown, that time included, less the accesses at it already shown.
    """
    skip = 0
    if after is not None:
        oldest, skip = after
        until = oldest + timedelta(microseconds=1)  # times are kept to the microsecond
        query = query.model_copy(update={"until": min(query.until, until) if query.until else until})
    found = store.data_accesses(query.model_copy(update={"limit": min(10_000, query.limit + skip + 1)}))[skip:]
    shown = found[: query.limit]
    if len(found) <= query.limit:
        return AccessPage(shown, None)
    last = shown[-1].at
    at_last = sum(1 for access in shown if access.at == last)
    if after is not None and after[0] == last:  # one time spread over more than one page
        at_last += skip
    return AccessPage(shown, (last, at_last))
