"""Event-time detection: windows close on the watermark, detectors judge, alerts grow.

The engine sees each event once, in the order the pipeline stored them.  The
watermark is the newest event time seen minus the allowed lateness; it moves
event by event (not batch by batch), so how a stream is cut into batches
changes nothing, and a replay of history raises exactly the alerts the live
stream raised.  An event whose window has already closed is late: it is
stored and counted by the pipeline, but not judged.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from detectors.alerts import AlertBook
from detectors.base import Detector, Finding, Period
from detectors.classify import Classifier
from detectors.profiles import ProfileBook
from detectors.windows import ActorRef, LocalClock, WindowStats
from models.alert import Alert, Severity
from models.config import Settings
from models.fast_event import EventView

STATE_VERSION = 1


@dataclass(slots=True)
class EngineOutput:
    alerts: list[Alert] = field(default_factory=list)  # created or grown, latest revision of each
    late_events: int = 0
    late_event_ids: list[str] = field(default_factory=list)  # a sample, for the report


class DetectionEngine:
    def __init__(self, settings: Settings, detectors: Sequence[Detector[Any]]) -> None:
        self.settings = settings
        self.detectors = list(detectors)
        self._by_name = {detector.name: detector for detector in self.detectors}
        self.classifier = Classifier(settings.classification)
        self.clock = LocalClock(settings.organisation.tz)
        baselines = settings.baselines
        self.profiles = ProfileBook(
            list(baselines.peer_group), baselines.half_life, baselines.max_known_items, baselines.actor_warmup_days
        )
        self.book = AlertBook(settings.alerts.merge_gap, settings.alerts.max_sample_events, settings.organisation.tz)
        self.short = settings.windows.short
        self.long = settings.windows.long
        self.lateness = settings.windows.allowed_lateness
        self.watermark = -math.inf
        self.max_event_time = -math.inf
        self.late_events = 0
        self._open: dict[Literal["short", "long"], dict[float, dict[str, WindowStats]]] = {"short": {}, "long": {}}
        self._next_close = math.inf  # earliest end of an open window
        self._actors: dict[str, ActorRef] = {}
        self._pending: dict[str, Alert] = {}
        self._flagged_today: set[str] = set()  # actors with findings in the day still open
        # detectors whose findings need another's agreement above a severity (``Detector.alone_max_severity``)
        self._alone: dict[str, Severity] = {
            d.name: d.alone_max_severity for d in self.detectors if d.alone_max_severity is not None
        }
        # detectors whose findings leave the window learned at full weight (``Detector.marks_window_suspect``)
        self._not_suspect = {d.name for d in self.detectors if not d.marks_window_suspect}
        # which actors' windows keep records by touch (``Detector.touch_records_for``): none unless a detector asks
        self._keeps_touch_records = [keeps for d in self.detectors if (keeps := d.touch_records_for()) is not None]

    # -- the hot path -------------------------------------------------------
    def process(self, events: Iterable[EventView]) -> EngineOutput:
        output = EngineOutput()
        clock, classifier, profiles = self.clock, self.classifier, self.profiles
        touches = classifier.touches  # read here: a call per event costs
        short, lateness = self.short, self.lateness
        open_short = self._open["short"]
        organisation = self.settings.organisation
        business_days = set(organisation.business_days)
        first_hour, last_hour = organisation.business_hours_start, organisation.business_hours_end
        # of the latest event: its UTC hour and the zone's offset in it, its local hour and that hour of the week
        # (NaN: unequal to any hour, so the first event sets them)
        utc_hour = local_hour = math.nan
        offset = slot = 0
        in_business = False
        # the span of event time [span_from, span_to) in which all of those and the short window stay as they are
        # (``_span``): most events fall in the one before, and skip the float arithmetic that finds them
        span_from = span_to = math.nan
        short_start = short_end = 0.0
        actors: dict[str, WindowStats] | None = None
        spans = float(short).is_integer()  # a window's bounds whole seconds: exact sums (``_span``)
        # locals, written through to the engine and the profiles as they change (nothing else changes them here)
        watermark, max_event_time, first_event_time = self.watermark, self.max_event_time, profiles.first_event_time
        for event in events:
            ts = event.timestamp.timestamp()
            if ts > max_event_time:
                self.max_event_time = max_event_time = ts
                if ts - lateness > watermark:
                    self.watermark = watermark = ts - lateness
                    if watermark >= self._next_close:
                        self._close_until(watermark)
            if ts < first_event_time:
                profiles.first_event_time = first_event_time = ts
            # local time: window start (aligned to local midnight) and hour of the week
            if not span_from <= ts < span_to:  # events come in time order: mostly in the span of the one before
                if ts // 3600 != utc_hour:
                    utc_hour = ts // 3600
                    offset = clock.offset(ts)  # the same in the whole UTC hour
                local = ts + offset
                short_start = local // short * short - offset
                short_end = short_start + short
                if local // 3600 != local_hour:
                    local_hour = local // 3600
                    slot = int(((local // 86400) + 3) % 7) * 24 + int(local % 86400 // 3600)  # 1970-01-01: Thursday
                    in_business = slot // 24 in business_days and first_hour <= slot % 24 < last_hour
                if spans:
                    span_from, span_to = _span(utc_hour, offset, local_hour, short_start, short_end)
                actors = open_short.get(short_start)  # its open windows: the same for the span, unless one opens
            if short_end <= watermark:
                self.late_events += 1
                output.late_events += 1
                if len(output.late_event_ids) < 20:
                    output.late_event_ids.append(event.event_id)
                continue
            # the open window, looked up here: a call per event costs (the span's windows closed, its events are late)
            window = actors.get(event.actor.id) if actors is not None else None
            if window is None:
                # who the actor is matters only to a new window (it keeps the first event's): asked only then
                window = self._window(open_short, short_start, short, self._actor(event))
                window.hours.add(slot)
                actors = open_short[short_start]
            fields = event.fields
            touch = touches.get(tuple(fields) if fields else ())
            if touch is None:
                touch = classifier.touch(fields)
            window.add(event, ts, touch, in_business)
        output.alerts = self._take_pending()
        return output

    def flush(self) -> EngineOutput:
        """Close every open window (the end of a replay)."""
        self._close_until(math.inf)
        return EngineOutput(alerts=self._take_pending())

    def _actor(self, event: EventView) -> ActorRef:
        actor = event.actor
        known = self._actors.get(actor.id)
        if (
            known is None
            or known.role != actor.role
            or known.kind is not actor.kind
            or known.organization != actor.organization
            or known.department != actor.department
        ):
            known = self._actors[actor.id] = ActorRef.of(event)
        return known

    def _window(
        self, table: dict[float, dict[str, WindowStats]], start: float, size: float, actor: ActorRef
    ) -> WindowStats:
        actors = table.get(start)
        if actors is None:
            actors = table[start] = {}
            self._next_close = min(self._next_close, start + size)
        window = actors.get(actor.id)
        if window is None:
            window = actors[actor.id] = WindowStats(actor, start, start + size)
            keeps = self._keeps_touch_records
            if keeps and any(keeps_for(actor) for keeps_for in keeps):
                window.touch_records = {}
        return window

    def _adopt(self, table: dict[float, dict[str, WindowStats]], window: WindowStats) -> None:
        """Open ``window`` (the actor's first of its span) in ``table``, as ``_window`` opens a new one."""
        actors = table.get(window.start)
        if actors is None:
            actors = table[window.start] = {}
            self._next_close = min(self._next_close, window.end)
        actors[window.actor.id] = window

    def _note_first_touches(self, window: WindowStats) -> None:
        """What the window touched that its actor never had: judged at close, against the profile as it was."""
        if not self.profiles.is_mature(window.actor.id):
            return  # before its warm-up, everything is new to an actor
        self.profiles.actors[window.actor.id].note_new(window.first_ids, window.new_items)

    # -- closing windows ----------------------------------------------------
    def _close_until(self, watermark: float) -> None:
        while True:
            candidates = [
                (start + (self.short if scale == "short" else self.long), scale == "long", scale, start)
                for scale, table in self._open.items()
                for start in table
            ]
            due = [item for item in candidates if item[0] <= watermark]
            if not due:
                self._next_close = min((item[0] for item in candidates), default=math.inf)
                break
            _, _, scale, start = min(due)
            windows = self._open[scale].pop(start)
            self._close(scale, start, windows)
        # an alert stays open to growth until no window that could overlap it can still close:
        # the day that holds an hour's spike closes at midnight
        self.book.expire(watermark - self.long, self._may_grow)

    def _close(self, scale: Literal["short", "long"], start: float, windows: dict[str, WindowStats]) -> None:
        size = self.short if scale == "short" else self.long
        ordered = [windows[actor_id] for actor_id in sorted(windows)]  # a fixed order: replays must match
        if scale == "short":
            for window in ordered:
                self._note_first_touches(window)
        ready = start - self.profiles.first_event_time >= self.settings.baselines.system_warmup
        period = Period(
            scale,
            start,
            start + size,
            ordered,
            self.profiles,
            self.clock,
            self.settings.organisation,
            self.classifier,
            ready,
        )
        suspects: set[str] = set()
        found: list[Finding] = []
        for detector in self.detectors:
            if scale in detector.scales:
                if ready or detector.judges_during_warmup:
                    found.extend(finding for finding in detector.detect(period) if not finding.explained)
                detector.observe(period)
        for finding in self._corroborated(found) if self._alone and found else found:
            self._raise(finding)
            if finding.detector not in self._not_suspect:
                suspects.add(finding.actor.id)
        # learn only after judging: a window is never its own baseline
        if scale == "short":
            open_long = self._open["long"]
            self._flagged_today |= suspects
            learn, slot = self.profiles.learn_window, period.slot
            # the day gathers its hours as they close: each event is added once
            day_start = self.clock.window_start(start, self.long)
            day_end = day_start + self.long
            for window in ordered:
                learn(window, slot, suspect=window.actor.id in suspects)
                days = open_long.get(day_start)
                day = days.get(window.actor.id) if days is not None else None
                if day is None:
                    # the actor's first hour of the day becomes its day: merged into an empty day it would make
                    # the very same window, and the hour is done with (most actors work a few hours a day: this
                    # spares a window and a copy of every set for each of their days)
                    window.start, window.end = day_start, day_end
                    self._adopt(open_long, window)
                else:
                    day.merge(window)
        else:
            flagged = self._flagged_today | suspects
            for window in ordered:
                self.profiles.learn_day(window, period.slot // 24, suspect=window.actor.id in suspects)
                self.profiles.note_flagged_day(window.actor.id, window.actor.id in flagged)
            self._flagged_today = set()

    def _corroborated(self, found: list[Finding]) -> list[Finding]:
        """The period's findings, each above its detector's ``alone_max_severity`` lowered to it unless another
        detector agrees: a finding at medium or more, of a detector with no such limit, on the same actor, in this
        period or in an alert still open, within the merge gap of it."""
        gap = self.book.merge_gap
        alone = self._alone
        judged = []
        for finding in found:
            cap = alone.get(finding.detector)
            if cap is None or finding.severity.rank <= cap.rank:
                judged.append(finding)
                continue
            actor, start, end = finding.actor.id, finding.window_start - gap, finding.window_end + gap
            agrees = any(
                other.actor.id == actor
                and other.detector not in alone
                and other.severity.rank >= Severity.MEDIUM.rank
                and other.window_start <= end
                and other.window_end >= start
                for other in found
            ) or any(
                alert.actor_id == actor
                and alert.detector not in alone
                and alert.severity.rank >= Severity.MEDIUM.rank
                and alert.window_start.timestamp() <= end
                and alert.window_end.timestamp() >= start
                for alert in self.book.open.values()
            )
            if agrees:
                judged.append(finding)
                continue
            summary = f"{finding.summary.rstrip('.')}; no rule found anything on them then, so {cap.value}."
            evidence = {**finding.evidence, "alone": {"severity": finding.severity.value, "at_most": cap.value}}
            judged.append(replace(finding, severity=cap, summary=summary, evidence=evidence))
        return judged

    def _may_grow(self, detector: str, actor_id: str) -> bool:
        found = self._by_name.get(detector)
        return found is not None and found.may_grow(actor_id)

    def _raise(self, finding: Finding) -> None:
        alert = self.book.add(finding)
        self._pending[alert.alert_id] = alert

    def _take_pending(self) -> list[Alert]:
        alerts = sorted(self._pending.values(), key=Alert.listing_order)
        self._pending = {}
        return alerts

    # -- state ----------------------------------------------------------------
    def to_state(self) -> dict:
        """The engine's state, for ``detectors.state_codec.encode_state``.

        Its baselines are handed over, not copied: encode it before the engine judges anything more.
        """
        return {
            "version": STATE_VERSION,
            "watermark": _finite(self.watermark),
            "max_event_time": _finite(self.max_event_time),
            "late_events": self.late_events,
            "profiles": self.profiles.to_state(),
            "open": {
                scale: {repr(start): [w.to_state() for w in actors.values()] for start, actors in table.items()}
                for scale, table in self._open.items()
            },
            "alerts": self.book.to_state(),
            "flagged_today": sorted(self._flagged_today),
            "detectors": {d.name: state for d in self.detectors if (state := d.to_state()) is not None},
        }

    def load_state(self, state: dict) -> None:
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"detector state version {state.get('version')} is not {STATE_VERSION}")
        self.watermark = _infinite(state["watermark"], -math.inf)
        self.max_event_time = _infinite(state["max_event_time"], -math.inf)
        self.late_events = state["late_events"]
        self.profiles.load_state(state["profiles"])
        self._open = {"short": {}, "long": {}}
        for scale, table in state["open"].items():
            for start, windows in table.items():
                restored = [WindowStats.from_state(item) for item in windows]
                self._open[scale][float(start)] = {w.actor.id: w for w in restored}
        self.book.load_state(state["alerts"])
        self._flagged_today = set(state.get("flagged_today", []))
        for detector in self.detectors:
            if detector.name in state.get("detectors", {}):
                detector.load_state(state["detectors"][detector.name])
        ends = [
            start + (self.short if scale == "short" else self.long)
            for scale, table in self._open.items()
            for start in table
        ]
        self._next_close = min(ends, default=math.inf)


def _span(utc_hour: float, offset: int, local_hour: float, short_start: float, short_end: float) -> tuple[float, float]:
    """The instants ``ts`` for which ``process`` finds this UTC hour, local hour and short window again: the three
    intersected, as ``[from, to)``; an empty span (NaN) where that might not hold.

    In it, ``ts // 3600`` is ``utc_hour`` (floor division of floats is exact), and ``ts + offset`` is exact
    when no such sum is in a higher binade than ``ts`` itself (then every float it could round to is one it
    equals), so ``local // short`` and ``local // 3600`` are what they were (the window's size whole seconds, its
    bounds are exact too).  Outside that (before 1970, or a sum past a power of two: an hour every few decades)
    the span is empty, and each event computes them.
    """
    span_from = max(utc_hour * 3600, short_start, local_hour * 3600 - offset)
    span_to = min(utc_hour * 3600 + 3600, short_end, local_hour * 3600 + 3600 - offset)
    if (
        not 0.0 < span_from < span_to < 2.0**52
        or span_from + offset <= 0.0
        or math.frexp(span_to + offset)[1] > math.frexp(span_from)[1]
    ):
        return math.nan, math.nan
    return span_from, span_to


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _infinite(value: float | None, default: float) -> float:
    return default if value is None else value
