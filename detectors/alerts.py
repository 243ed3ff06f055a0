"""From findings to alerts: stable ids, and one growing alert per episode.

Findings of one detector about one actor that follow each other within the
merge gap are one episode: the first finding opens an alert, later ones grow
it (its window, its peak score and severity, its evidence), keeping its id.
The window is the contract's "event-time span the finding covers": from the
earliest start to the latest end of the findings merged in, so a day's
finding that began before the hours already in the alert widens it at the
start too.  The id is derived from the detector, the actor and the start of
the first finding, all event time, so a replay of the same events yields the
same ids (and an alert whose window widens keeps the id it was stored and
paged under).

An alert stays open to growth until a finding within the merge gap of its end
can no longer come, unless its detector says a later finding may still
continue it (``Detector.may_grow``: a ``ramp`` finding covers the run of days
it judged, and the run may go on after days without a finding, over a weekend):
its next finding then grows it, where a new alert would take the same id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo

from detectors import wording
from detectors.base import Finding
from models.alert import Alert, Severity
from models.event import format_utc

MAX_SPANS = 48
# what a grown alert's summary adds to its strongest finding's sentence (``_told``); found again by it (``_bare``)
_GROWN = "; the strongest of "


def alert_id(detector: str, actor_id: str, start: float) -> str:
    start_text = format_utc(datetime.fromtimestamp(start, UTC))
    digest = hashlib.sha256(f"{detector}\x1f{actor_id}\x1f{start_text}".encode()).hexdigest()
    return f"aw-{digest[:24]}"


def opened_at(alert: Alert) -> datetime:
    """The start of the alert's first finding: what its id was derived from.

    Fixed however the alert grows, where ``window_start`` may move earlier (a
    day's finding that began before the hour that opened it): an anchor that
    does not depend on which revision of the alert a process saw first.  The
    first span is the opening finding (``_kept`` never drops it); an alert
    with no spans was never grown here, and its window is its finding's.
    """
    spans = alert.evidence.get("spans")
    return datetime.fromisoformat(spans[0][0]) if spans else alert.window_start


def _kept(spans: list[list]) -> list[list]:
    """At most MAX_SPANS: the opening finding's (see ``opened_at``) and the latest."""
    return spans if len(spans) <= MAX_SPANS else [spans[0], *spans[-(MAX_SPANS - 1) :]]


def _span_of(finding: Finding) -> list:
    """A finding as its alert keeps it: ``[start, end, score, severity, records]`` (records read in its window;
    None if its detector does not count them)."""
    records = finding.evidence.get("records")
    return [
        format_utc(datetime.fromtimestamp(finding.window_start, UTC)),
        format_utc(datetime.fromtimestamp(finding.window_end, UTC)),
        finding.score,
        finding.severity.value,
        records if isinstance(records, int) and not isinstance(records, bool) else None,
    ]


def records_in(spans: list[list], findings: int) -> int | None:
    """Records read in the windows of an alert's findings, each counted once; None where that is not known.

    A day's finding holds its hours' (windows nest: a window inside another is counted in it).  Not known:
    findings dropped from ``spans`` (over MAX_SPANS), a window that overlaps another without holding it or
    being held (a ramp's runs), a finding without a count, or spans kept before they carried one.
    """
    if findings != len(spans):
        return None
    windows = []
    for span in spans:
        if len(span) < 5 or span[4] is None:
            return None
        windows.append((span[0], span[1], span[4]))  # UTC text of one format: ordered as the times are
    total = 0
    for n, (start, end, records) in enumerate(windows):
        holders = [
            (s, e)
            for m, (s, e, _) in enumerate(windows)
            if m != n and s <= start and end <= e and ((s, e) != (start, end) or m < n)
        ]
        if holders:
            continue  # counted in a wider window (or an equal one listed first)
        if any(
            s < end and start < e and not (start <= s and e <= end) for m, (s, e, _) in enumerate(windows) if m != n
        ):
            return None
        total += records
    return total


def _bare(summary: str) -> str:
    """A summary as its finding told it, without what a grown alert adds (``AlertBook._told``)."""
    told, grown, _ = summary.rpartition(_GROWN)
    return f"{told}." if grown else summary


class AlertBook:
    """The alerts that may still grow, by (detector, actor)."""

    def __init__(self, merge_gap: float, max_sample_events: int, zone: tzinfo = UTC) -> None:
        self.merge_gap = merge_gap
        self.max_sample_events = max_sample_events
        self.zone = zone  # the organisation's: a grown alert's summary tells its span in local time
        self.open: dict[tuple[str, str], Alert] = {}

    def add(self, finding: Finding) -> Alert:
        key = (finding.detector, finding.actor.id)
        current = self.open.get(key)
        if current is not None and finding.window_start <= current.window_end.timestamp() + self.merge_gap:
            grown = self._grow(current, finding)
        else:
            grown = self._open(finding)
        self.open[key] = grown
        return grown

    def expire(self, watermark: float, may_grow: Callable[[str, str], bool] | None = None) -> None:
        """Forget alerts that can no longer grow: memory stays bounded.

        ``may_grow(detector, actor_id)`` keeps an alert past ``watermark`` while its detector may still continue it.
        """
        for key in [k for k, a in self.open.items() if a.window_end.timestamp() + self.merge_gap < watermark]:
            if may_grow is None or not may_grow(*key):
                del self.open[key]

    def _open(self, finding: Finding) -> Alert:
        actor = finding.actor
        start = datetime.fromtimestamp(finding.window_start, UTC)
        end = datetime.fromtimestamp(finding.window_end, UTC)
        evidence = dict(finding.evidence)
        evidence["event_ids"] = list(evidence.get("event_ids", []))[: self.max_sample_events]
        evidence["findings"] = 1
        evidence["spans"] = [_span_of(finding)]
        return Alert(
            alert_id=alert_id(finding.detector, actor.id, finding.window_start),
            detector=finding.detector,
            severity=finding.severity,
            actor_id=actor.id,
            actor_kind=actor.kind,
            actor_role=actor.role,
            actor_department=actor.department,
            actor_organization=actor.organization,
            window_start=start,
            window_end=end,
            score=finding.score,
            summary=finding.summary,
            evidence=evidence,
            created_at=end,
            updated_at=end,
        )

    def _grow(self, alert: Alert, finding: Finding) -> Alert:
        # from the alert's own window, not from the spans kept: those are cut at MAX_SPANS
        start = min(alert.window_start, datetime.fromtimestamp(finding.window_start, UTC))
        end = max(alert.window_end, datetime.fromtimestamp(finding.window_end, UTC))
        stronger = finding.score > alert.score
        evidence = dict(finding.evidence) if stronger else dict(alert.evidence)
        old = alert.evidence
        ids = list(dict.fromkeys([*old.get("event_ids", []), *finding.evidence.get("event_ids", [])]))
        evidence["event_ids"] = ids[: self.max_sample_events]
        evidence["findings"] = old.get("findings", 1) + 1
        spans = _kept([*old.get("spans", []), _span_of(finding)])
        evidence["spans"] = spans
        if "documented" not in old or "documented" not in finding.evidence:
            # documented only while every finding is: undocumented accesses joining a month-end job's alert
            # make it news again, and the pager pages it (``notify.page_documented``)
            evidence.pop("documented", None)
        records = records_in(spans, evidence["findings"])
        if records is None:
            evidence.pop("records_in_alert", None)
        else:
            evidence["records_in_alert"] = records
        severity = Severity.from_rank(max(alert.severity.rank, finding.severity.rank))
        return alert.model_copy(
            update={
                "window_start": start,
                "window_end": end,
                "score": max(alert.score, finding.score),
                "severity": severity,
                "summary": self._told(finding.summary if stronger else _bare(alert.summary), evidence, start, end),
                "evidence": evidence,
                "updated_at": end,
                "revision": alert.revision + 1,
            }
        )

    def _told(self, strongest: str, evidence: dict, start: datetime, end: datetime) -> str:
        """The strongest finding's sentence, and what the alert holds beyond it: a grown alert's window is wider
        than the hour (or day) its strongest finding tells, and its figures are that finding's alone."""
        told = f"{strongest.rstrip('.')}{_GROWN}{evidence['findings']} findings"
        told += f" {wording.span(start.timestamp(), end.timestamp(), self.zone)}"
        records = evidence.get("records_in_alert")
        if records is not None:
            # what its findings' records are: "read", unless the detector says ("read outside the contract")
            told += (
                f", {wording.counted(records, 'record')} {evidence.get('records_are', 'read')} in their windows in all"
            )
        return told + "."

    def to_state(self) -> list[dict]:
        return [alert.model_dump(mode="json") for alert in self.open.values()]

    def load_state(self, state: list[dict]) -> None:
        alerts = [Alert.model_validate(item) for item in state]
        self.open = {(alert.detector, alert.actor_id): alert for alert in alerts}
