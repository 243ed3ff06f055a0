"""The durable outbox, planning side: every page becomes a row in the store before anything is sent.

``Pager.page`` is called by the pipeline with the incidents that are new or
more severe, *before* their alerts are stored.  A crash in between is
harmless: recovery raises the same alerts again, plans the same pages under
the same ids (``models.page.notification_id``), and the store keeps the
rows it already has.  A crash after the alerts are stored finds them known
and plans nothing.  So a page is planned exactly once, and sent at least
once by ``notify.dispatch``.

Grouping: one page per incident and receiver.  A receiver already paged for
an incident hears of it again only when its severity rises (an ``update``:
PagerDuty and Alertmanager fold it into the same alert, whichever route
matches the incident now), and when a person acknowledges or closes it
(``Pager.record_action``).  A new incident of an actor that starts less
than ``notify.throttle`` (event time) after the start of the incident the
actor was last paged for, and is not more severe, is held back, and so is
anything a silence covers: kept as a ``suppressed`` row with the reason,
never dropped silently.  Escalations are planned with the trigger, due ``after`` later,
and sent only if the incident is still unacknowledged by then.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import NamedTuple, TypedDict, Unpack

from models.alert import Alert, AlertStatus, Severity
from models.config import Notify
from models.event import format_utc
from models.incident import CLOSED, Incident, TriageAction, TriageActionKind
from models.page import Notification, NotificationStatus, Page, PageKind, notification_id, other_findings
from notify.as_now import strongest_now
from notify.base import Notifier
from notify.routing import Match, Router
from store.base import Store
from store.outbox import OutboxQuery, Settlement

Clock = Callable[[], datetime]
# what a person's action tells the receivers
ACTION_PAGES = {
    TriageActionKind.ACKNOWLEDGE: PageKind.ACKNOWLEDGE,
    TriageActionKind.RESOLVE: PageKind.RESOLVE,
    TriageActionKind.FALSE_POSITIVE: PageKind.RESOLVE,
    TriageActionKind.REOPEN: PageKind.REOPEN,  # told to the receivers that were told it was closed
}
_TOLD = (NotificationStatus.PENDING, NotificationStatus.SENT)
_MAX_ROWS = 10_000  # of one incident's notifications


def wall_clock() -> datetime:
    return datetime.now(UTC)


def dashboard_link(notify: Notify, incident_id: str) -> str | None:
    return f"{notify.dashboard_url.rstrip('/')}/?incident={incident_id}" if notify.dashboard_url else None


class _PageDetails(TypedDict, total=False):
    """The optional fields of a ``Page`` that ``_page`` passes on."""

    previous_severity: Severity | None
    escalation_level: int
    escalated_after: float | None
    action: TriageAction | None
    strongest: Alert | None


def _page(kind: PageKind, incident: Incident, alert: Alert, link: str | None, **details: Unpack[_PageDetails]) -> Page:
    return Page(
        kind=kind,
        dedup_key=incident.incident_id,
        incident=incident,
        alert=alert,
        findings=other_findings(incident, alert),
        link=link,
        **details,
    )


def told(rows: Sequence[Notification]) -> dict[str, Severity]:
    """Receivers that were paged (or are about to be) for the incident, and the severity they were told."""
    severities: dict[str, Severity] = {}
    for row in rows:
        waiting_escalation = row.only_if_unacknowledged and row.status is NotificationStatus.PENDING
        if row.kind in (PageKind.TRIGGER, PageKind.UPDATE) and row.status in _TOLD and not waiting_escalation:
            before = severities.get(row.receiver)
            if before is None or row.page.severity.rank > before.rank:
                severities[row.receiver] = row.page.severity
    return severities


def first_headline(rows: Sequence[Notification]) -> Alert | None:
    """The finding the incident was first paged with (``rows``: newest first), or None if nobody was paged yet.

    Every later page about the incident, to every receiver and of every kind (an escalation, a rise, an
    acknowledgement, a close, a reopening), quotes it as its headline, as it was worded then: on-call staff
    recognise the incident by it, and PagerDuty keeps the first trigger's summary as its alert's title
    anyway.  What was found since is in the page's other lines (``models.page.other_findings``).
    """
    for row in reversed(rows):
        if row.kind is PageKind.TRIGGER and row.status in _TOLD:
            return row.page.alert
    return None


def _first_routes(rows: Sequence[Notification]) -> dict[str, str]:
    """The route that first paged each receiver told of the incident, in that order (``rows``: newest first)."""
    routes: dict[str, str] = {}
    for row in reversed(rows):
        if row.kind in (PageKind.TRIGGER, PageKind.UPDATE) and row.status in _TOLD:
            routes.setdefault(row.receiver, row.route)
    return routes


# what each page says the incident is: retried when it is still so, superseded when it moved on
_SAYS = {
    PageKind.TRIGGER: frozenset({AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED}),  # acknowledged: with the ack after
    PageKind.UPDATE: frozenset({AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED}),
    PageKind.REOPEN: frozenset({AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED}),
    PageKind.ACKNOWLEDGE: frozenset({AlertStatus.ACKNOWLEDGED}),
    PageKind.RESOLVE: CLOSED,
}
_DONE = {
    AlertStatus.ACKNOWLEDGED: TriageActionKind.ACKNOWLEDGE,
    AlertStatus.RESOLVED: TriageActionKind.RESOLVE,
    AlertStatus.FALSE_POSITIVE: TriageActionKind.FALSE_POSITIVE,
    AlertStatus.OPEN: TriageActionKind.REOPEN,
}


def _latest(actions: Sequence[TriageAction], kind: TriageActionKind) -> TriageAction | None:
    """The newest action of ``kind`` in a triage log (oldest first)."""
    return next((action for action in reversed(actions) if action.kind is kind), None)


def _moved_on(row: Notification, incident: Incident | None, store: Store) -> str | None:
    """Why a failed page must not be sent again (the incident moved on from what it says), or None."""
    if incident is None:
        return "the incident no longer exists"
    if incident.status in _SAYS[row.kind]:
        return None
    status = incident.status.value.replace("_", " ")
    action = _latest(store.actions(incident.incident_id), _DONE[incident.status])
    done = f" ({action.by}, {format_utc(action.at)})" if action is not None else ""
    return f"the incident is {status} now{done}: this {row.kind.value} would contradict it"


class _Paged(NamedTuple):
    """An incident of an actor as it was paged: what the throttle compares a new one with."""

    incident_id: str
    window_start: datetime
    severity: Severity


class Pager:
    """Plans pages into the store's outbox; ``wake`` tells a delivery loop there is work."""

    def __init__(
        self,
        store: Store,
        notify: Notify,
        receivers: dict[str, Notifier],
        clock: Clock = wall_clock,
        wake: Callable[[], None] | None = None,
        act_with: Sequence[str] = (),
        zone: str = "UTC",
    ) -> None:
        """``act_with``: the options a person's ``accesswatch ack`` needs to reach this store (``--data-dir``),
        given in the pages' commands (``notify.base.commands``); ``zone``: the organisation's, the clock the
        pages' times are in."""
        self.store = store
        self.notify = notify
        self.act_with = list(act_with)
        self.zone = zone
        self.router = Router(notify)
        self.receivers = receivers
        self.clock = clock
        self.wake = wake

    # -- detectors' findings ---------------------------------------------------------------
    def page(self, findings: Sequence[tuple[Alert, Incident]]) -> list[Notification]:
        """Plan the pages for incidents that are new or more severe; return the rows added."""
        strongest: dict[str, tuple[Alert, Incident]] = {}  # one page per incident per batch
        for alert, incident in findings:
            known = strongest.get(incident.incident_id)
            if known is None or (alert.severity.rank, alert.score) > (known[0].severity.rank, known[0].score):
                strongest[incident.incident_id] = (alert, incident)
        planned: list[Notification] = []
        # in the order the incidents started (event time), as a stream brings them: the throttle
        # then holds back the same incidents whether they come in one batch or in many
        for alert, incident in sorted(strongest.values(), key=lambda found: found[1].window_start):
            planned += self._plan(alert, incident, planned)
        return self._enqueue(planned)

    def _plan(self, alert: Alert, incident: Incident, batch: Sequence[Notification]) -> list[Notification]:
        """The pages for one finding; ``batch``: the rows planned before it in the same call, not yet stored."""
        now = self.clock()
        rows = self.store.notifications(OutboxQuery(incident_id=incident.incident_id, limit=_MAX_ROWS))
        already = told(rows)
        held = self._held_back(alert, incident, already, batch)  # the finding itself, which a silence may name
        found, alert = alert, first_headline(rows) or alert  # what the pages quote first
        link = dashboard_link(self.notify, incident.incident_id)
        planned: list[Notification] = []
        direct: set[str] = set()
        for match in self.router.routes_for(incident):
            triggered = False
            for receiver in match.receivers:
                if receiver in direct:
                    continue  # two routes naming one receiver: one page
                direct.add(receiver)
                before = already.get(receiver)
                if before is None:
                    page = _page(PageKind.TRIGGER, incident, alert, link)
                elif incident.severity.rank > before.rank and PageKind.UPDATE in self.receivers[receiver].handles:
                    page = _page(PageKind.UPDATE, incident, alert, link, previous_severity=before)
                else:
                    continue  # told already, and nothing more severe to tell
                row = self._row(receiver, match.route, page, now, held)
                planned.append(row)
                triggered |= page.kind is PageKind.TRIGGER and row.status is NotificationStatus.PENDING
            if triggered:
                planned += self._escalations(match, alert, incident, link, now, already, direct)
        planned += self._updates(rows, already, alert, incident, link, now, held, skip=direct)
        self._supersede_escalations(rows, direct, now)
        if not planned:
            return planned
        # read only for an incident that pages (most findings grow one told already), and once for all its pages
        strongest = strongest_now(self.store, incident, alert, found)
        return [
            row.model_copy(update={"page": row.page.model_copy(update={"strongest": strongest})}) for row in planned
        ]

    def _updates(
        self,
        rows: Sequence[Notification],
        already: dict[str, Severity],
        alert: Alert,
        incident: Incident,
        link: str | None,
        now: datetime,
        held: str | None,
        skip: set[str],
    ) -> list[Notification]:
        """The rise, for the receivers told a lower severity that no route matching now names.

        A rise can change which route matches first (a detector's own route, a
        severity floor), and whoever was paged keeps hearing of the incident.
        The row keeps the route that first paged the receiver: that route is why
        it hears of the incident at all ("why was I paged"), not the one matching now.
        """
        planned = []
        for receiver, route in _first_routes(rows).items():
            notifier, before = self.receivers.get(receiver), already.get(receiver)
            if receiver in skip or notifier is None or PageKind.UPDATE not in notifier.handles or before is None:
                continue
            if incident.severity.rank > before.rank:
                page = _page(PageKind.UPDATE, incident, alert, link, previous_severity=before)
                planned.append(self._row(receiver, route, page, now, held))
        return planned

    def _held_back(
        self, alert: Alert, incident: Incident, already: dict[str, Severity], batch: Sequence[Notification]
    ) -> str | None:
        """Why no page goes out for this finding (a silence, the actor's throttle), or None."""
        silence = self.router.silence_for(incident, alert)
        if silence is not None:
            return f"silenced by {silence.name!r} until {format_utc(silence.ends_at)}" + (
                f" ({silence.comment})" if silence.comment else ""
            )
        if already or self.notify.throttle <= 0:
            return None  # the incident was paged before: its news is not a new page to throttle
        last = self._last_paged(incident, batch)
        if last is None or incident.severity.rank > last.severity.rank:
            return None  # more severe than what the actor was last paged for: never held back
        if (incident.window_start - last.window_start).total_seconds() >= self.notify.throttle:
            return None
        return (
            f"throttled: {incident.actor_id} was paged for {last.incident_id}, which started at"
            f" {format_utc(last.window_start)}, less than notify.throttle = {self.notify.throttle:g} s before this one"
        )

    def _last_paged(self, incident: Incident, batch: Sequence[Notification]) -> _Paged | None:
        """The actor's other incident that was paged and started last, not after this one.

        Event time, as detection and silences: a replay, whole or cut in parts,
        holds back what the live stream did.  ``batch``: the rows planned earlier
        in the same call, so that a catch-up batch is throttled as the stream is.
        """
        stored = self.store.notifications(
            OutboxQuery(
                actor_id=incident.actor_id,
                kinds=[PageKind.TRIGGER, PageKind.UPDATE],
                statuses=list(_TOLD),
                limit=_MAX_ROWS,
            )
        )
        paged: dict[str, _Paged] = {}
        for row in [*stored, *batch]:
            other = row.page.incident
            if (
                row.actor_id != incident.actor_id
                or row.incident_id == incident.incident_id
                or row.kind not in (PageKind.TRIGGER, PageKind.UPDATE)
                or row.status not in _TOLD
                or row.only_if_unacknowledged  # an escalation follows a page: it is not the page
            ):
                continue
            found = _Paged(other.incident_id, other.window_start, other.severity)
            known = paged.get(other.incident_id)
            if known is not None:  # told again as it grew: its earliest start, its highest severity
                severity = max(known.severity, found.severity, key=lambda level: level.rank)
                found = _Paged(found.incident_id, min(known.window_start, found.window_start), severity)
            paged[found.incident_id] = found
        earlier = [found for found in paged.values() if found.window_start <= incident.window_start]
        return max(earlier, key=lambda found: (found.window_start, found.incident_id), default=None)

    def _escalations(
        self,
        match: Match,
        alert: Alert,
        incident: Incident,
        link: str | None,
        now: datetime,
        already: dict[str, Severity],
        direct: set[str],
    ) -> list[Notification]:
        planned = []
        targets: set[str] = set()
        for level, step in enumerate(match.escalate, start=1):
            for receiver in step.receivers:
                if receiver in already or receiver in direct or receiver in targets:
                    continue
                targets.add(receiver)
                page = _page(
                    PageKind.TRIGGER, incident, alert, link, escalation_level=level, escalated_after=step.after
                )
                due = now + timedelta(seconds=step.after)
                planned.append(self._row(receiver, match.route, page, now, None, due=due, conditional=True))
        return planned

    def _supersede_escalations(self, rows: Sequence[Notification], direct: set[str], now: datetime) -> None:
        """A receiver paged directly now needs no escalation to it later."""
        for row in rows:
            if row.only_if_unacknowledged and row.status is NotificationStatus.PENDING and row.receiver in direct:
                self.store.settle(
                    row.notification_id,
                    Settlement(
                        status=NotificationStatus.CANCELLED,
                        at=now,
                        error="paged directly: the incident reached this receiver's route",
                        attempted=False,
                    ),
                )

    # -- people's actions -------------------------------------------------------------------
    def record_action(self, action: TriageAction) -> tuple[Incident, list[Notification]]:
        """Apply a person's action to the incident, and tell the receivers that were paged and can express it.

        The incident's state machine (``Incident.status_after``) decides: an action its status does
        not allow raises TransitionRefused and records nothing; a repeat (acknowledging an
        acknowledged incident) changes nothing and tells nobody, and keeps only its note, as a
        note.  Receivers hear of an incident being acknowledged or closed once: a closed incident
        reclassified as a false positive tells nobody again.  A reopen tells the receivers that
        were told it was closed, so that the acknowledgement or resolution that follows it does not
        reach them unexplained.  The action and its pages are one write (``Store.record_action_paged``):
        a Ctrl-C or a crash never leaves the action recorded and its receivers untold.  KeyError if the
        incident is unknown.
        """
        before = self.store.get_incident(action.incident_id)
        if before is None:
            raise KeyError(action.incident_id)
        if before.repeats(action.kind):
            return self._repeat(before, action), []
        before.status_after(action.kind)  # refuses what the state machine does not allow
        now = self.clock()
        rows: list[Notification] = []  # the incident's pages, as the action's write read them
        planned: list[Notification] = []

        def plan(stored: Incident, incident: Incident) -> list[Notification]:
            # on the incident as stored, inside the store's write: what the status was then decides who is told
            kind = ACTION_PAGES.get(action.kind)
            # a closed incident reclassified: told it was closed already; a repeat meanwhile tells nobody again
            if kind is None or stored.open is (kind is PageKind.REOPEN) or stored.repeats(action.kind):
                return []
            rows[:] = self.store.notifications(OutboxQuery(incident_id=incident.incident_id, limit=_MAX_ROWS))
            planned[:] = self._action_pages(kind, incident, action, rows, now)
            return planned

        incident, added = self.store.record_action_paged(action, plan)
        if rows and ACTION_PAGES[action.kind] is not PageKind.REOPEN:
            # after the write, not in it: an escalation is checked against the incident when it falls due anyway
            self._cancel_escalations(rows, incident, action, now)
        if added and self.wake is not None:
            self.wake()
        return incident, [row for row in planned if row.notification_id in added]

    def _action_pages(
        self, kind: PageKind, incident: Incident, action: TriageAction, rows: Sequence[Notification], now: datetime
    ) -> list[Notification]:
        """The pages telling of the action: to the receivers told it was closed (a reopen), else those paged."""
        alert = first_headline(rows) or self._strongest(incident)
        if alert is None:
            return []
        strongest = strongest_now(self.store, incident, alert)  # with the status the action gave it
        link = dashboard_link(self.notify, incident.incident_id)
        planned = []
        reopening = kind is PageKind.REOPEN
        closed = [row.receiver for row in rows if row.kind is PageKind.RESOLVE and row.status in _TOLD]
        for receiver in dict.fromkeys(closed) if reopening else told(rows):
            notifier = self.receivers.get(receiver)
            if notifier is None or kind not in notifier.handles:
                continue
            page = _page(kind, incident, alert, link, action=action, strongest=strongest)
            route = next((row.route for row in rows if row.receiver == receiver), "")
            planned.append(self._row(receiver, route, page, now, None))
        return planned

    def _strongest(self, incident: Incident) -> Alert | None:
        """The headline of an incident that was never paged: its strongest alert (a reopen tells nobody then)."""
        alerts = self.store.get_alerts(incident.alert_ids)
        return max(alerts, key=lambda a: (a.severity.rank, a.score), default=None)

    def _repeat(self, incident: Incident, action: TriageAction) -> Incident:
        """A repeated action: the status stands; a note given with it is kept in the triage log as a note."""
        if not action.note:
            return incident
        note = action.model_copy(update={"kind": TriageActionKind.NOTE})
        return self.store.record_action(note)

    def _cancel_escalations(
        self, rows: Sequence[Notification], incident: Incident, action: TriageAction, now: datetime
    ) -> None:
        for row in rows:
            if row.only_if_unacknowledged and row.status is NotificationStatus.PENDING:
                self.store.settle(
                    row.notification_id,
                    Settlement(
                        status=NotificationStatus.CANCELLED,
                        at=now,
                        error=f"{incident.status.value} by {action.by} before the escalation was due",
                        attempted=False,
                    ),
                )

    # -- failed pages sent again --------------------------------------------------------------
    def retry_failed(self) -> tuple[int, int]:
        """Put the pages that failed for good back in line (a receiver was fixed); (retried, superseded).

        A page that failed missed what people did to its incident meanwhile: the
        receivers it never reached were not told of the acknowledgement or the close
        (``told``).  Sent as it was, it would leave the receiver contradicting the
        incident (a PagerDuty alert triggered and escalating for an acknowledged
        incident), so each is sent as the incident is now: a trigger, rise or reopening
        of an incident acknowledged since is followed by that acknowledgement; one of a
        closed incident is superseded, since a trigger pages on-call staff at once, even
        with its resolve a second behind; an acknowledgement, resolve or reopening the
        incident has moved on from is superseded by the page that told the receiver
        since.  A superseded page is cancelled with the reason, which ``pages`` shows.
        """
        now = self.clock()
        failed = self.store.notifications(
            OutboxQuery(statuses=[NotificationStatus.FAILED], limit=100_000, newest_first=False)
        )
        retried = superseded = 0
        planned: list[Notification] = []
        for row in failed:
            incident = self.store.get_incident(row.incident_id)
            stale = None if row.only_if_unacknowledged else _moved_on(row, incident, self.store)
            if stale is not None:  # an escalation is checked against the incident when it falls due
                error = f"superseded: {stale}"
                self.store.settle(
                    row.notification_id,
                    Settlement(status=NotificationStatus.CANCELLED, at=now, error=error, attempted=False),
                )
                superseded += 1
                continue
            again = Settlement(status=NotificationStatus.PENDING, at=now, retry_at=now, attempted=False)
            self.store.settle(row.notification_id, again)
            retried += 1
            if incident is not None and not row.only_if_unacknowledged:
                planned += self._acknowledgement_after(row, incident, failed, now)
        self._enqueue(planned)
        return retried, superseded

    def _acknowledgement_after(
        self, row: Notification, incident: Incident, failed: Sequence[Notification], now: datetime
    ) -> list[Notification]:
        """The acknowledgement a retried trigger (rise, reopening) of an acknowledged incident needs after it.

        None when one is in line behind it already (waiting, or failed and retried with it): the
        outbox sends one receiver's pages about an incident in the order they were planned.
        """
        notifier = self.receivers.get(row.receiver)
        if (
            incident.status is not AlertStatus.ACKNOWLEDGED
            or row.kind not in (PageKind.TRIGGER, PageKind.UPDATE, PageKind.REOPEN)
            or notifier is None
            or PageKind.ACKNOWLEDGE not in notifier.handles
        ):
            return []
        retried = {other.notification_id for other in failed}
        rows = self.store.notifications(
            OutboxQuery(incident_id=row.incident_id, receiver=row.receiver, limit=_MAX_ROWS)
        )
        for later in rows:
            waiting = later.status is NotificationStatus.PENDING or later.notification_id in retried
            if later.kind is PageKind.ACKNOWLEDGE and waiting and later.created_at >= row.created_at:
                return []
        action = _latest(self.store.actions(incident.incident_id), TriageActionKind.ACKNOWLEDGE)
        if action is None:
            return []
        strongest = strongest_now(self.store, incident, row.page.alert)
        page = _page(PageKind.ACKNOWLEDGE, incident, row.page.alert, row.page.link, action=action, strongest=strongest)
        # another id than the acknowledgement planned when it was taken, which this receiver may have had
        after = f"after {row.notification_id}, attempt {row.attempts}"
        return [self._row(row.receiver, row.route, page, now, None, discriminator=after)]

    # -- rows ---------------------------------------------------------------------------------
    def _row(
        self,
        receiver: str,
        route: str,
        page: Page,
        now: datetime,
        held_back: str | None,
        due: datetime | None = None,
        conditional: bool = False,
        discriminator: str = "",
    ) -> Notification:
        # the commands a page gives must reach this store as they are printed; its times are the organisation's
        page = page.model_copy(update={"act_with": self.act_with or page.act_with, "zone": self.zone})
        return Notification(
            notification_id=notification_id(receiver, page, discriminator),
            receiver=receiver,
            route=route,
            page=page,
            status=NotificationStatus.SUPPRESSED if held_back else NotificationStatus.PENDING,
            only_if_unacknowledged=conditional,
            created_at=now,
            due_at=due or now,
            settled_at=now if held_back else None,
            last_error=held_back,
        )

    def _enqueue(self, planned: list[Notification]) -> list[Notification]:
        added = set(self.store.enqueue(planned))
        if added and self.wake is not None:
            self.wake()
        return [row for row in planned if row.notification_id in added]
