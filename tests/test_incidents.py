"""Alerts to incidents: what an incident says does not depend on the order its alerts were published in.

Batching, restarts and Kafka rebalances change the order in which the
alerts of one episode reach ``attach`` (a day's alert may be published
before an hour's).  Of the alerts that make an incident, the incident's
figures must be the same whatever that order; only its id is fixed by the
first (it is stored and paged under it before the others arrive).

And what people may do to an incident: the triage state machine that the
command line and the dashboard both go through (``notify.outbox.Pager``).
"""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest

from detectors.incidents import attach
from models.alert import Alert, AlertStatus, Severity
from models.incident import Incident, TransitionRefused, TriageActionKind
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


def test_it_keeps_when_its_flagged_activity_ended_for_the_queue_to_sort_by():
    # a day's window (its day's finding merged in) around the hour that was flagged: the queue's "newest" is
    # that hour's end, not the day's start nor its end (``Incident.newest_flagged``)
    hour = alert(window_start=T0 + timedelta(hours=16), window_end=T0 + timedelta(hours=17), severity=Severity.CRITICAL)
    day = alert(detector="egress", window_start=T0, window_end=T0 + timedelta(hours=24), severity=Severity.MEDIUM)
    incident = _attach_all([hour, day])
    assert (incident.window_start, incident.window_end) == (T0, T0 + timedelta(hours=24))
    assert incident.flagged_end == incident.newest_flagged == T0 + timedelta(hours=17)
    assert attach(None, day, GAP, {}).flagged_end == T0 + timedelta(hours=24)  # nothing narrower flagged: its window


# -- triage: the state machine the command line and the dashboard share ---------------------------------------
OPEN, ACKED, RESOLVED, FALSE = (
    AlertStatus.OPEN,
    AlertStatus.ACKNOWLEDGED,
    AlertStatus.RESOLVED,
    AlertStatus.FALSE_POSITIVE,
)
ACK, RESOLVE, FP, REOPEN = (
    TriageActionKind.ACKNOWLEDGE,
    TriageActionKind.RESOLVE,
    TriageActionKind.FALSE_POSITIVE,
    TriageActionKind.REOPEN,
)


def _in(status: AlertStatus) -> Incident:
    return attach(None, _episode()[0], GAP, {}).model_copy(update={"status": status})


@pytest.mark.parametrize(
    ("status", "kind", "after"),
    [
        (OPEN, ACK, ACKED),
        (OPEN, RESOLVE, RESOLVED),
        (ACKED, RESOLVE, RESOLVED),
        (OPEN, FP, FALSE),
        (ACKED, FP, FALSE),
        (RESOLVED, FP, FALSE),  # reclassified after the fact, as the dashboard allows
        (RESOLVED, REOPEN, OPEN),
        (FALSE, REOPEN, OPEN),
    ],
)
def test_what_the_dashboard_offers_is_allowed(status, kind, after):
    incident = _in(status)
    assert not incident.repeats(kind) and incident.status_after(kind) is after


@pytest.mark.parametrize(
    ("status", "kind", "says"),
    [
        (RESOLVED, ACK, "is closed as resolved: reopen it before you acknowledge it"),
        (FALSE, ACK, "is closed as a false positive: reopen it before you acknowledge it"),
        (FALSE, RESOLVE, "is closed as a false positive: reopen it before you resolve it"),
        (ACKED, REOPEN, "is acknowledged, not closed: there is nothing to reopen"),
    ],
)
def test_a_closed_incident_is_reopened_before_it_is_acknowledged_or_resolved_again(status, kind, says):
    incident = _in(status)
    with pytest.raises(TransitionRefused) as refused:
        incident.status_after(kind)
    assert str(refused.value) == f"{incident.incident_id} {says}"


@pytest.mark.parametrize(("status", "kind"), [(ACKED, ACK), (RESOLVED, RESOLVE), (FALSE, FP), (OPEN, REOPEN)])
def test_repeating_a_transition_changes_nothing(status, kind):
    incident = _in(status)
    assert incident.repeats(kind) and incident.status_after(kind) is status


def test_notes_and_assignments_go_with_any_status():
    for status in AlertStatus:
        for kind in (TriageActionKind.NOTE, TriageActionKind.ASSIGN):
            incident = _in(status)
            assert not incident.repeats(kind) and incident.status_after(kind) is status
