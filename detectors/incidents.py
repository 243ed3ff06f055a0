"""Alerts to incidents: one per actor and episode, with a combined risk score.

Pure functions: the pipeline fetches the actor's latest incident from the
store and stores what ``attach`` returns.  The incident id comes from the
actor and the start of its first alert's first finding (``detectors.alerts.opened_at``),
both event time, so a replay gives the same incidents.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from detectors.alerts import opened_at
from models.alert import Alert, AlertStatus, Severity
from models.event import format_utc
from models.flagged import flagged
from models.incident import Incident

# How much each detector's strongest severity adds to the risk: independent
# pieces of evidence combine as 1 - prod(1 - w), so that two detectors at
# high outweigh one, and nothing exceeds 100.
SEVERITY_WEIGHT = {Severity.LOW: 0.10, Severity.MEDIUM: 0.30, Severity.HIGH: 0.60, Severity.CRITICAL: 0.85}


def incident_id(actor_id: str, alert: Alert) -> str:
    # the start of its first finding, not its window: that may widen as the alert grows, and the
    # first revision a process publishes depends on where the stream was cut (batches, restarts)
    digest = hashlib.sha256(f"{actor_id}\x1f{format_utc(opened_at(alert))}".encode()).hexdigest()
    return f"inc-{digest[:20]}"


def follow_up_id(closed: Incident, alert: Alert) -> str:
    """The id of the case ``alert`` opens after ``closed``: each alert's its own, and the same after a replay."""
    digest = hashlib.sha256(f"{closed.incident_id}\x1f{alert.alert_id}".encode()).hexdigest()
    return f"inc-{digest[:20]}"


def risk_score(severities_by_detector: dict[str, Severity]) -> float:
    remaining = 1.0
    for severity in severities_by_detector.values():
        remaining *= 1.0 - SEVERITY_WEIGHT[severity]
    return round(100.0 * (1.0 - remaining), 1)


def belongs(incident: Incident | None, alert: Alert, gap: timedelta) -> bool:
    """Does the alert continue this incident (same actor, overlapping or within the gap, still open)?"""
    return (
        incident is not None
        and incident.actor_id == alert.actor_id
        and incident.status in (AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED)
        and alert.window_start <= incident.window_end + gap
        and alert.window_end >= incident.window_start - gap
    )


def attach(
    incident: Incident | None, alert: Alert, gap: timedelta, known: dict[str, Alert], follows: Incident | None = None
) -> Incident:
    """The incident after ``alert`` joins it, or a new one; ``known`` holds the incident's alerts by id.

    ``follows``: the closed incident ``alert`` grew out of; a new incident's id is then derived from it.
    """
    if not belongs(incident, alert, gap):
        new_id = incident_id(alert.actor_id, alert)
        if follows is None and incident is not None and new_id == incident.incident_id:
            follows = incident  # closed: the id is the case the person closed
        return Incident(
            # not the id of a closed case (the alert that opened it grew, or another started with it): the
            # store would keep the person's close over the new activity, and nobody would see it
            incident_id=new_id if follows is None else follow_up_id(follows, alert),
            actor_id=alert.actor_id,
            actor_kind=alert.actor_kind,
            actor_role=alert.actor_role,
            actor_department=alert.actor_department,
            actor_organization=alert.actor_organization,
            severity=alert.severity,
            risk_score=risk_score({alert.detector: alert.severity}),
            window_start=alert.window_start,
            window_end=alert.window_end,
            alert_ids=[alert.alert_id],
            detectors=[alert.detector],
            summary=alert.summary,
            created_at=alert.window_end,
            updated_at=alert.window_end,
            revision=alert.revision,
            evidence={alert.detector: _figures(alert)},
            flagged_end=flagged([alert], alert.window_start, alert.window_end).end,
            documented=bool(alert.documented_purposes),
        )
    assert incident is not None
    # after a restart, revisions the store already has are judged again: the newest one stays
    previous = known.get(alert.alert_id)
    newest = alert if previous is None or alert.revision >= previous.revision else previous
    alerts = {**known, alert.alert_id: newest}
    strongest = max(alerts.values(), key=lambda a: (a.severity.rank, a.score))
    by_detector: dict[str, Alert] = {}
    for item in alerts.values():
        best = by_detector.get(item.detector)
        if best is None or (item.severity.rank, item.score) > (best.severity.rank, best.score):
            by_detector[item.detector] = item
    window_start, window_end = (
        min(incident.window_start, alert.window_start),
        max(incident.window_end, alert.window_end),
    )
    return incident.model_copy(
        update={
            "severity": strongest.severity,
            "risk_score": risk_score({d: a.severity for d, a in by_detector.items()}),
            "window_start": window_start,
            "window_end": window_end,
            "alert_ids": sorted(alerts, key=lambda i: (alerts[i].window_start, i)),
            "detectors": sorted(by_detector),
            "summary": strongest.summary,
            # the earliest of its alerts, whichever was published first (batches and restarts change that)
            "created_at": min(incident.created_at, alert.window_end),
            "updated_at": max(incident.updated_at, alert.window_end),
            # one per step any of its alerts grew by: the same however the stream was cut into batches
            "revision": sum(member.revision for member in alerts.values()),
            "evidence": {d: _figures(a) for d, a in sorted(by_detector.items())},
            # kept for the queue's order, which the store sorts by (the pages read the spans from the alerts)
            "flagged_end": flagged(list(alerts.values()), window_start, window_end).end,
            # every alert's newest revision: one grown past documented work makes the incident news
            "documented": all(member.documented_purposes for member in alerts.values()),
        }
    )


def _figures(alert: Alert) -> dict:
    return {
        "alert_id": alert.alert_id,
        "severity": alert.severity.value,
        "score": alert.score,
        "summary": alert.summary,
        "window_start": format_utc(alert.window_start),
        "window_end": format_utc(alert.window_end),
    }
