"""Routing: which receivers an incident goes to, and what holds a page back.

Routes (``[[notify.routes]]``) are tried in order; the first whose
conditions all hold chooses the receivers, unless it says ``continue =
true`` and the next ones are tried too.  An incident no route takes goes to
the default route: ``notify.receivers`` at ``notify.min_severity`` and above.
``continue`` never falls through to the default route (as Alertmanager's
``continue`` never reaches the parent's receiver): a configuration that wants
the default receivers too names them in a last route without conditions.
An incident of documented work alone goes to no route, unless
``notify.page_documented``: it waits in the queue for review.

Silences (``[[notify.silences]]``) hold back pages about activity in a
maintenance window: they match on the incident (actor, kind, organisation),
on the finding's detector and on the finding's event time, so the findings
about the maintenance itself stay silent even when their windows close after
it ends, and a silenced rule's finding holds back no other rule's.

Plain data and pure functions: what the outbox does with the answer is
``notify.outbox``.
"""

from __future__ import annotations

from dataclasses import dataclass

from models.alert import Alert
from models.config import Escalation, Notify, Route, Silence
from models.incident import Incident

DEFAULT_ROUTE = "default"


@dataclass(frozen=True, slots=True)
class Match:
    """A route that took the incident: its receivers, and whom to escalate to if nobody acknowledges."""

    route: str
    receivers: tuple[str, ...]
    escalate: tuple[Escalation, ...] = ()


def route_name(route: Route, position: int) -> str:
    return route.name or f"route {position + 1}"


def matches(route: Route, incident: Incident) -> bool:
    return (
        incident.severity.at_least(route.min_severity)
        and (not route.detectors or any(detector in route.detectors for detector in incident.detectors))
        and (not route.actor_kinds or incident.actor_kind in route.actor_kinds)
        and (not route.organizations or incident.actor_organization in route.organizations)
    )


def silences(silence: Silence, incident: Incident, alert: Alert) -> bool:
    """Does the silence hold back pages about this finding?"""
    return (
        (silence.starts_at is None or alert.window_end > silence.starts_at)
        and alert.window_start < silence.ends_at
        and (not silence.actor_ids or incident.actor_id in silence.actor_ids)
        and (not silence.actor_kinds or incident.actor_kind in silence.actor_kinds)
        and (not silence.organizations or incident.actor_organization in silence.organizations)
        # the finding's own detector, not the incident's others: silencing a rule being tuned must not hold
        # back another rule's finding about the same actor (an off-hours critical beside it)
        and (not silence.detectors or alert.detector in silence.detectors)
    )


class Router:
    def __init__(self, notify: Notify) -> None:
        self.notify = notify
        self.default = Match(DEFAULT_ROUTE, tuple(notify.receivers))

    def routes_for(self, incident: Incident) -> list[Match]:
        """The routes that take the incident, in order; the default route if none does.

        None for an incident of documented work alone, unless ``notify.page_documented``: capped at
        medium, it would wake on-call for a month-end job its tickets explain; it waits in the queue.
        """
        if incident.documented and not self.notify.page_documented:
            return []
        found = []
        for position, route in enumerate(self.notify.routes):
            if matches(route, incident):
                found.append(Match(route_name(route, position), tuple(route.receivers), tuple(route.escalate)))
                if not route.continue_matching:
                    break
        if found:
            return found
        if self.default.receivers and incident.severity.at_least(self.notify.min_severity):
            return [self.default]
        return []

    def silence_for(self, incident: Incident, alert: Alert) -> Silence | None:
        return next((s for s in self.notify.silences if silences(s, incident, alert)), None)
