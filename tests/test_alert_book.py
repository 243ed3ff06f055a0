"""Findings to alerts (``detectors.alerts.AlertBook``): one growing alert per episode, its window covering it all.

The contract's ``window_start``/``window_end`` are "the event-time span the
finding covers"; a merged alert is the union of its findings, so its window
runs from their earliest start to their latest end, whatever order they came
in.  Its id stays the one its first finding gave it, and ``opened_at``, the
start of that finding, stays put as an anchor that does not move with the
window.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from detectors.alerts import MAX_SPANS, AlertBook, alert_id, opened_at
from detectors.base import Finding
from detectors.windows import ActorRef
from models.alert import Alert, Severity
from models.event import ActorKind, format_utc

HOUR = 3600.0
DAY_START = datetime(2026, 10, 20, 16, 0, tzinfo=UTC)  # midnight in Asia/Shanghai: a local day's window
ACTOR = ActorRef(id="emp-0134", kind=ActorKind.EMPLOYEE)


def _finding(start: datetime, hours: float, score: float = 5.0, severity: Severity = Severity.HIGH) -> Finding:
    return Finding(
        detector="bulk_read",
        actor=ACTOR,
        window_start=start.timestamp(),
        window_end=start.timestamp() + hours * HOUR,
        score=score,
        severity=severity,
        summary=f"read a lot from {start:%H:%M}",
        evidence={"event_ids": [f"e-{start:%d%H}"]},
    )


def _merged(*findings: Finding) -> Alert:
    book = AlertBook(merge_gap=2 * HOUR, max_sample_events=20)
    alerts = [book.add(finding) for finding in findings]
    assert len({alert.alert_id for alert in alerts}) == 1, "one episode, one alert"
    return alerts[-1]


def _span_bounds(alert: Alert) -> tuple[datetime, datetime]:
    spans = alert.evidence["spans"]
    return min(datetime.fromisoformat(s[0]) for s in spans), max(datetime.fromisoformat(s[1]) for s in spans)


def test_a_days_finding_that_began_before_the_hours_widens_the_window_at_the_start():
    six, seven = DAY_START + timedelta(hours=14), DAY_START + timedelta(hours=15)  # 06:00Z and 07:00Z of the 21st
    alert = _merged(_finding(six, 1), _finding(seven, 1), _finding(DAY_START, 24, score=9.0))
    assert (alert.window_start, alert.window_end) == (DAY_START, DAY_START + timedelta(hours=24))
    assert (alert.window_start, alert.window_end) == _span_bounds(alert)
    # the id is still the one the first finding gave it, under which it was stored and paged
    assert alert.alert_id == alert_id("bulk_read", ACTOR.id, six.timestamp())
    assert opened_at(alert) == six  # the anchor that does not move with the window


def test_the_window_is_the_union_of_the_findings_in_any_order():
    findings = [
        _finding(DAY_START + timedelta(hours=14), 1),
        _finding(DAY_START, 24, score=9.0),
        _finding(DAY_START + timedelta(hours=25), 1),  # the next morning, within the merge gap of the day
    ]
    for order in (findings, findings[::-1], [findings[1], findings[0], findings[2]]):
        alert = _merged(*order)
        assert (alert.window_start, alert.window_end) == (DAY_START, DAY_START + timedelta(hours=26))
        assert alert.evidence["findings"] == 3


def test_the_window_covers_findings_whose_spans_were_cut_from_the_evidence():
    # more findings than MAX_SPANS: the evidence keeps the opening span and the latest, the window covers all
    first = DAY_START
    findings = [_finding(first + timedelta(hours=n), 1, score=1.0 + n / 100) for n in range(60)]
    alert = _merged(*findings)
    assert alert.window_start == first and alert.window_end == first + timedelta(hours=60)
    starts = [span[0] for span in alert.evidence["spans"]]
    assert len(starts) == MAX_SPANS and starts[0] == format_utc(first)
    assert starts[1:] == [format_utc(first + timedelta(hours=n)) for n in range(60 - MAX_SPANS + 1, 60)]
    assert opened_at(alert) == first


def test_an_alert_not_grown_by_the_book_is_anchored_at_its_window():
    alert = _merged(_finding(DAY_START, 1)).model_copy(update={"evidence": {}})
    assert opened_at(alert) == alert.window_start == DAY_START


def test_an_alert_its_detector_may_still_grow_outlives_the_merge_gap():
    # a ramp's findings all start on the run's first day: Friday's, then Monday's after a weekend without one
    friday = DAY_START
    book = AlertBook(merge_gap=2 * HOUR, max_sample_events=20)
    opened = book.add(_finding(friday - timedelta(days=3), 4 * 24))
    monday_close = (friday + timedelta(days=4)).timestamp()
    running = {("bulk_read", ACTOR.id)}
    book.expire(monday_close - 24 * HOUR, lambda detector, actor_id: (detector, actor_id) in running)
    grown = book.add(_finding(friday - timedelta(days=3), 7 * 24, score=9.0))
    assert grown.alert_id == opened.alert_id and grown.evidence["findings"] == 2 and grown.revision > opened.revision
    assert (grown.window_start, grown.window_end) == (friday - timedelta(days=3), friday + timedelta(days=4))
    # once the detector says nothing can continue it, the alert goes as any other
    running.clear()
    book.expire(monday_close + 24 * HOUR, lambda detector, actor_id: (detector, actor_id) in running)
    assert book.open == {}


def test_without_a_detector_to_hold_it_an_alert_past_the_merge_gap_is_forgotten():
    book = AlertBook(merge_gap=2 * HOUR, max_sample_events=20)
    book.add(_finding(DAY_START, 24))
    book.expire((DAY_START + timedelta(hours=26, seconds=1)).timestamp())
    assert book.open == {}
