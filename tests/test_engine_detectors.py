"""What the engine does with what a detector declares: when it is asked to judge, and what its findings do to the
baselines (``detectors.base.Detector``'s ``judges_during_warmup`` and ``marks_window_suspect``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from detectors.base import Detector, DetectorSettings, Finding, Period
from detectors.engine import DetectionEngine
from models.alert import Alert
from models.event import AccessEvent
from tests.detector_harness import history, settings_with, stream, team

AGENT, COLLEAGUE = team(2)
WARMUP = timedelta(days=7)  # the default configuration's baselines.system_warmup


class FindsEverything(Detector[DetectorSettings]):
    """A finding on every window it is shown; notes each period's start and whether the system was ready."""

    name = "finds_everything"

    def __init__(self) -> None:
        super().__init__(DetectorSettings())
        self.shown: list[tuple[float, bool]] = []

    def detect(self, period: Period) -> Iterator[Finding]:
        self.shown.append((period.start, period.system_ready))
        for window in period.windows:
            if window.actor.id == AGENT.id:
                yield self.finding(window, 5.0, "Something.", {})


class JudgesDuringWarmup(FindsEverything):
    judges_during_warmup = True


class LeavesWindowsUnsuspected(FindsEverything):
    marks_window_suspect = False


def two_weeks() -> list[AccessEvent]:
    return stream(*[history(actor, days=14, per_hour=3, records=2) for actor in (AGENT, COLLEAGUE)])


def engine_after(events: list[AccessEvent], *detectors: Detector, alerts: list[Alert] | None = None) -> DetectionEngine:
    """The engine once it has judged the events; what it raised is added to ``alerts``."""
    engine = DetectionEngine(settings_with(), list(detectors))
    raised = engine.process(events).alerts + engine.flush().alerts
    if alerts is not None:
        alerts += raised
    return engine


def test_a_detector_judges_only_past_the_warm_up_and_is_told_so():
    events = two_weeks()
    ready_from = events[0].timestamp.timestamp() + WARMUP.total_seconds()
    detector = FindsEverything()
    engine_after(events, detector)
    assert detector.shown and all(ready and start >= ready_from for start, ready in detector.shown)


def test_a_detector_that_judges_during_the_warm_up_is_shown_those_periods_as_not_ready():
    events = two_weeks()
    ready_from = events[0].timestamp.timestamp() + WARMUP.total_seconds()
    detector, alerts = JudgesDuringWarmup(), []
    engine_after(events, detector, alerts=alerts)
    assert any(not ready for _, ready in detector.shown)
    assert all(ready is (start >= ready_from) for start, ready in detector.shown)
    # its findings in the warm-up are alerts like any other
    assert alerts and min(alert.window_start.timestamp() for alert in alerts) < ready_from


def test_findings_make_the_window_suspect_unless_the_detector_says_they_do_not():
    events = two_weeks()
    unjudged = engine_after(events).profiles.to_state()
    # learned at reduced weight: the agent's baselines are not those of a run with no finding
    assert engine_after(events, FindsEverything()).profiles.to_state() != unjudged
    # a detector whose findings say nothing of whether the work is normal leaves them learned at full weight
    assert engine_after(events, LeavesWindowsUnsuspected()).profiles.to_state() == unjudged
