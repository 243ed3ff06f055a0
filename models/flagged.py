"""When an incident's flagged activity was: its findings' own windows, inside the incident's wider one.

An alert grows over its episode (``detectors.alerts``): an hour's finding and its day's finding make one
alert whose window is the whole local day, though what made it severe took an hour.  The alert keeps
each finding's span (``evidence.spans``: start, end, score, severity, records), and these are what the
pages show as the flagged hours; the incident's window stays the span around them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from models.alert import Alert, Severity
from models.incident import Incident


@dataclass(frozen=True, slots=True)
class FlaggedSpan:
    """One finding's window (or several findings' on the same window), at the worst of their severities."""

    start: datetime
    end: datetime
    severity: Severity
    detectors: tuple[str, ...]

    def holds(self, other: FlaggedSpan) -> bool:
        """Wider than ``other`` and around it: a day around its hour."""
        return (
            self.start <= other.start and other.end <= self.end and (self.start, self.end) != (other.start, other.end)
        )


@dataclass(frozen=True, slots=True)
class Flagged:
    """The flagged spans, in time order, and the activity to tell first: the span of the most severe of them."""

    spans: list[FlaggedSpan]
    start: datetime
    end: datetime
    severity: Severity


def finding_spans(alerts: Sequence[Alert]) -> list[FlaggedSpan]:
    """Every finding's window of the alerts, one per distinct window, in time order; an alert that kept no
    spans (stored before they were kept) counts as one finding on its whole window."""
    found: dict[tuple[datetime, datetime], tuple[Severity, set[str]]] = {}
    for alert in alerts:
        for start, end, severity in _spans_of(alert):
            known, detectors = found.get((start, end), (severity, set()))
            found[start, end] = (max(known, severity, key=lambda s: s.rank), detectors | {alert.detector})
    return [
        FlaggedSpan(start, end, severity, tuple(sorted(detectors)))
        for (start, end), (severity, detectors) in sorted(found.items())
    ]


def _spans_of(alert: Alert) -> list[tuple[datetime, datetime, Severity]]:
    spans = []
    for span in alert.evidence.get("spans") or ():
        try:
            start, end = datetime.fromisoformat(span[0]), datetime.fromisoformat(span[1])
            severity = Severity(span[3]) if len(span) > 3 else alert.severity
        except (TypeError, ValueError, IndexError):
            continue
        spans.append((start, end, severity))
    return spans or [(alert.window_start, alert.window_end, alert.severity)]


def narrowest(spans: list[FlaggedSpan]) -> list[FlaggedSpan]:
    """The spans less those around a narrower one at least as severe: a day's finding adds no hour to the
    hours flagged inside it, unless it is more severe than they are (then the day itself is what was flagged)."""
    return [
        span
        for span in spans
        if not any(span.holds(inner) and inner.severity.rank >= span.severity.rank for inner in spans)
    ]


def runs(spans: list[FlaggedSpan]) -> list[FlaggedSpan]:
    """Spans of one severity that touch or overlap, joined (three flagged hours in a row: one run), the most
    severe first, then in time order: what a sentence lists."""
    joined: list[FlaggedSpan] = []
    for span in sorted(spans, key=lambda s: (-s.severity.rank, s.start)):
        last = joined[-1] if joined else None
        if last is not None and last.severity is span.severity and span.start <= last.end:
            detectors = tuple(sorted(set(last.detectors) | set(span.detectors)))
            joined[-1] = FlaggedSpan(last.start, max(last.end, span.end), span.severity, detectors)
        else:
            joined.append(span)
    return joined


def flagged(alerts: Sequence[Alert], window_start: datetime, window_end: datetime) -> Flagged:
    """The incident's flagged spans, and the first and last moment of those at the worst severity among them, with
    the findings at medium or more that run on from them."""
    spans = narrowest(finding_spans(alerts))
    if not spans:  # an incident without alerts: nothing narrower than its window is known
        return Flagged([], window_start, window_end, Severity.LOW)
    worst = max(spans, key=lambda s: s.severity.rank).severity
    top = [span for span in spans if span.severity is worst]
    start, end = min(s.start for s in top), max(s.end for s in top)
    # and the findings at medium or more that continue it without a break: a pull flagged critical from 10:00
    # and high from 11:00 to 11:30 is one activity, 10:00 to 12:00, not the critical hour alone
    grown = True
    while grown:
        grown = False
        for span in spans:
            if span.severity.rank >= Severity.MEDIUM.rank and span.start <= end and start <= span.end:
                if span.start < start or span.end > end:
                    start, end, grown = min(start, span.start), max(end, span.end), True
    return Flagged(spans, start, end, worst)


# incidents whose alerts are read in one call (a store's ``get_alerts``)
ALERTS_PAGE = 500


def flagged_of(get_alerts: Callable[[Sequence[str]], list[Alert]], incidents: Sequence[Incident]) -> dict[str, Flagged]:
    """When each incident's flagged activity was, by incident id: their alerts read (``get_alerts``, a store's)
    a page of incidents at a time, for their spans."""
    found = {}
    for start in range(0, len(incidents), ALERTS_PAGE):
        page = incidents[start : start + ALERTS_PAGE]
        alerts = {a.alert_id: a for a in get_alerts([i for incident in page for i in incident.alert_ids])}
        for incident in page:
            found[incident.incident_id] = flagged(
                [alerts[i] for i in incident.alert_ids if i in alerts], incident.window_start, incident.window_end
            )
    return found
