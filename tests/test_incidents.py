"""Alerts to incidents: what an incident says does not depend on the order its alerts were published in.

Batching, restarts and Kafka rebalances change the order in which the
alerts of one episode reach ``attach`` (a day's alert may be published
before an hour's).  Of the alerts that make an incident, the incident's
figures must be the same whatever that order; only its id is fixed by the
first (it is stored and paged under it before the others arrive).
"""

from __future__ import annotations

import itertools
from datetime import timedelta

from detectors.incidents import attach
from models.alert import Alert, Severity
from models.incident import Incident
from tests.factories import T0, alert

GAP = timedelta(hours=12)


def _episode() -> list[Alert]:
    """One actor's day: two hours of bulk reads, an off-hours hour, and the day's own alert, grown once."""
    return [
        alert(detector="bulk_read", window_start=T0, window_end=T0 + timedelta(hours=1), severity=Severity.MEDIUM),
        alert(detector="bulk_read", window_start=T0 + timedelta(hours=5), window_end=T0 + timedelta(hours=6)),
        alert(
            detector="off_hours",
            window_start=T0 + timedelta(hours=13),
            window_end=T0 + timedelta(hours=14),
            severity=Severity.LOW,
            score=2.0,
        ),
        alert(
            detector="egress",
            window_start=T0 - timedelta(hours=1),
            window_end=T0 + timedelta(hours=23),
            severity=Severity.HIGH,
            score=7.0,
            revision=2,
        ),
    ]


def _attach_all(alerts: list[Alert]) -> Incident:
    incident, known = None, {}
    for item in alerts:
        incident = attach(incident, item, GAP, known)
        known = {**known, item.alert_id: item}
        assert incident.incident_id == attach(None, alerts[0], GAP, {}).incident_id, "one incident for the episode"
    assert incident is not None
    return incident


def test_an_incident_says_the_same_whatever_order_its_alerts_came_in():
    episode = _episode()
    reference = _attach_all(episode).model_dump(exclude={"incident_id"})
    for order in itertools.permutations(episode):
        assert _attach_all(list(order)).model_dump(exclude={"incident_id"}) == reference, [a.detector for a in order]


def test_it_was_created_when_its_first_alert_ended_not_when_the_first_published_did():
    hour, day = _episode()[0], _episode()[3]
    incident = _attach_all([day, hour])  # the day's alert published first
    assert incident.created_at == hour.window_end < day.window_end
    assert incident.updated_at == day.window_end
    assert (incident.window_start, incident.window_end) == (day.window_start, day.window_end)
    assert incident.alert_ids == [day.alert_id, hour.alert_id]  # by window start
