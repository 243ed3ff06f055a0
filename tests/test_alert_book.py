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
from zoneinfo import ZoneInfo

from detectors.alerts import MAX_SPANS, AlertBook, alert_id, opened_at, records_in
from detectors.base import Finding
from detectors.windows import ActorRef
from models.alert import Alert, Severity
from models.event import ActorKind, format_utc

HOUR = 3600.0
DAY_START = datetime(2026, 10, 20, 16, 0, tzinfo=UTC)  # midnight in Asia/Shanghai: a local day's window
ACTOR = ActorRef(id="emp-0134", kind=ActorKind.EMPLOYEE)


def _finding(
    start: datetime, hours: float, score: float = 5.0, severity: Severity = Severity.HIGH, records: int | None = None
) -> Finding:
    evidence: dict = {"event_ids": [f"e-{start:%d%H}"]}
    if records is not None:
        evidence["records"] = records
    return Finding(
        detector="bulk_read",
        actor=ACTOR,
        window_start=start.timestamp(),
        window_end=start.timestamp() + hours * HOUR,
        score=score,
        severity=severity,
        summary=f"Read a lot from {start:%H:%M}.",
        evidence=evidence,
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


# -- what a grown alert tells ---------------------------------------------------------------------------------
def test_a_grown_alert_tells_its_whole_span_and_the_records_of_all_its_windows():
    # two hours of 70 ID-document reads each: the strongest hour's sentence alone would say 70 for a two-hour alert
    book = AlertBook(merge_gap=2 * HOUR, max_sample_events=20, zone=ZoneInfo("Asia/Shanghai"))
    two = DAY_START + timedelta(hours=14)  # 06:00Z: 14:00 in Shanghai
    opened = book.add(_finding(two, 1, score=5.3, records=70))
    assert opened.summary == "Read a lot from 06:00." and "records_in_alert" not in opened.evidence
    grown = book.add(_finding(two + timedelta(hours=1), 1, score=5.9, records=70))
    assert grown.summary == (
        "Read a lot from 07:00; the strongest of 2 findings on Wed 21 Oct 14:00-16:00 Asia/Shanghai,"
        " 140 records read in their windows in all."
    )
    assert grown.evidence["records_in_alert"] == 140
    # a weaker finding keeps the strongest's sentence, told once, with the new span and total
    third = book.add(_finding(two + timedelta(hours=2), 1, score=2.0, records=5))
    assert third.summary == (
        "Read a lot from 07:00; the strongest of 3 findings on Wed 21 Oct 14:00-17:00 Asia/Shanghai,"
        " 145 records read in their windows in all."
    )


def test_records_are_counted_once_where_a_day_holds_its_hours():
    hours = [_finding(DAY_START + timedelta(hours=h), 1, records=100) for h in (14, 15)]
    day = _finding(DAY_START, 24, score=9.0, records=230)
    assert _merged(*hours, day).evidence["records_in_alert"] == 230
    next_morning = _finding(DAY_START + timedelta(hours=25), 1, records=7)
    assert _merged(*hours, day, next_morning).evidence["records_in_alert"] == 237


def test_no_total_is_told_where_it_is_not_known():
    start = DAY_START
    # a finding without a count
    alert = _merged(_finding(start, 1, records=3), _finding(start + timedelta(hours=1), 1, score=6.0))
    assert "records_in_alert" not in alert.evidence and " read in their windows" not in alert.summary
    assert "the strongest of 2 findings" in alert.summary
    # runs that overlap without one holding the other (a ramp's)
    spans = [
        ["2026-10-20T00:00:00.000Z", "2026-10-23T00:00:00.000Z", 1, "low", 10],
        ["2026-10-21T00:00:00.000Z", "2026-10-24T00:00:00.000Z", 2, "low", 10],
    ]
    assert records_in(spans, 2) is None
    # findings cut from the spans, and spans kept before they carried a count
    assert records_in(spans[:1], 2) is None
    assert records_in([span[:4] for span in spans[:1]], 1) is None
    assert records_in(spans[:1], 1) == 10


def test_an_alert_is_documented_only_while_every_finding_is():
    """The pager holds back documented work alone (``notify.page_documented``): undocumented accesses joining a
    month-end job's alert, even weaker ones, make it news again."""
    cited = {"share": 1.0, "purposes": ["month-end-close-2026-10"]}
    job = _finding(DAY_START, 1, score=9.0, severity=Severity.MEDIUM)
    job.evidence["documented"] = cited
    again = _finding(DAY_START + timedelta(hours=1), 1, score=4.0, severity=Severity.MEDIUM)
    again.evidence["documented"] = cited
    assert _merged(job, again).documented_purposes == ["month-end-close-2026-10"]
    weaker = _finding(DAY_START + timedelta(hours=1), 1, score=4.0, severity=Severity.MEDIUM)
    assert _merged(job, weaker).documented_purposes == []
    assert _merged(weaker, job).documented_purposes == []
