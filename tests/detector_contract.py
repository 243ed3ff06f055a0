"""The shared interface every detector's test file exercises, written once.

A detector's test file subclasses ``DetectorContract`` with its detector, a
story that raises its alert and the settings it must refuse::

    class TestContract(DetectorContract):
        detector = Dormant
        scales = ("short",)
        bad_values = [("silent_days", 0, "greater than 0"), ("silent_for", "14d", "unknown key")]

        def story(self):
            return insider()

and pytest runs every test below for it: registered under its name, its
settings refused in one line (a bad value, an unknown key), three ascending
severity scores and nothing else, its alerts contract records built from well-formed findings, severity
from ``severity_scores``, disabled it is not built and raises nothing, and
the same alerts however the stream is cut into batches or restarted.
``tests/test_config.py`` checks that every registered detector's test file
has such a class.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

import pytest

from detectors.base import Detector
from detectors.registry import DETECTORS, build_detectors
from models.alert import Severity
from models.event import AccessEvent
from models.page import Page, PageKind
from notify.base import FIRST_LINE_CHARS, headline
from notify.gist import from_figures
from tests.detector_harness import (
    ZONE,
    Run,
    assert_contract_alert,
    assert_findings_well_formed,
    assert_rejected,
    assert_stable_alerts,
    run,
    scores_placing,
)
from tests.factories import incident_of

# anything but three scores: fewer silently cap the severity (none: every finding is low and nothing is paged)
NOT_THREE_SCORES = ([], [2.0, 4.0], [1.0, 2.0, 3.0, 4.0])


class DetectorContract:
    """Subclass as ``TestContract`` (pytest collects ``Test*`` classes) and set the class attributes below."""

    detector: ClassVar[type[Detector[Any]]]
    scales: ClassVar[tuple[Literal["short", "long"], ...]]  # stated again here: a change must be deliberate
    # (key, value, words the one-line error must hold): values of its own keys its Settings must refuse
    bad_values: ClassVar[list[tuple[str, Any, str]]]
    # passed to ``tests.detector_harness.run`` with the story (a ``config`` of the detector's keys...)
    run_options: ClassVar[dict[str, Any]] = {}
    # False for a detector whose severity is not its score through ``severity_scores`` (a calibrated model)
    severity_from_scores: ClassVar[bool] = True

    def story(self) -> list[AccessEvent]:
        """Events on which the detector raises at least one alert; built afresh on each call, the same each time."""
        raise NotImplementedError

    @property
    def name(self) -> str:
        return self.detector.name

    @pytest.fixture(scope="class")
    @classmethod
    def told(cls) -> tuple[list[AccessEvent], Run]:
        """The story, and what the engine said of it: told once for the class's tests."""
        events = cls().story()
        return events, run(events, cls.detector.name, **cls.run_options)

    def _run_with(self, events: list[AccessEvent], **keys: Any) -> Run:
        """The story again, with these keys of the detector's section changed."""
        options = dict(self.run_options)
        config = dict(options.pop("config", {}))
        config[self.name] = {**config.get(self.name, {}), **keys}
        return run(events, self.name, config=config, **options)

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        # each subclass's own cases, one test each (pytest asks the class, once per test function)
        if "severity" in metafunc.fixturenames:
            # a calibrated model's severity is its own: changing the scores changes none (one case)
            metafunc.parametrize("severity", list(Severity) if self.severity_from_scores else [None], ids=str)
        if "bad_value" in metafunc.fixturenames:
            metafunc.parametrize(
                "bad_value", self.bad_values, ids=[f"{key}={value!r}" for key, value, _ in self.bad_values]
            )

    # -- the tests --------------------------------------------------------------

    def test_is_registered_under_its_name(self) -> None:
        assert DETECTORS[self.name] is self.detector
        assert self.detector.scales == self.scales

    def test_settings_reject_a_bad_value_in_one_line(self, bad_value: tuple[str, Any, str]) -> None:
        key, value, expected = bad_value
        assert_rejected(self.name, key, value, expected)

    @pytest.mark.parametrize(
        "key, value, expected",
        [
            ("no_such_key", 1, "unknown key"),
            ("enabled", "maybe", "boolean"),
            ("documented_max_severity", "urgent", "'low', 'medium', 'high' or 'critical'"),
        ],
    )
    def test_settings_reject_a_bad_shared_value_in_one_line(self, key: str, value: Any, expected: str) -> None:
        assert_rejected(self.name, key, value, expected)

    @pytest.mark.parametrize("scores", NOT_THREE_SCORES, ids=lambda scores: f"{len(scores)} scores")
    def test_settings_reject_anything_but_three_severity_scores(self, scores: list[float]) -> None:
        assert_rejected(self.name, "severity_scores", scores, "3 items")

    def test_settings_reject_severity_scores_not_ascending(self) -> None:
        assert_rejected(self.name, "severity_scores", [5.0, 3.0, 7.0], "ascending")

    def test_the_alerts_are_contract_records_built_from_well_formed_findings(self, told: tuple[list, Run]) -> None:
        events, result = told
        alerts = [alert for alert in result.alerts if alert.detector == self.name]
        assert alerts, "the story raises no alert of the detector"
        for alert in alerts:
            assert_contract_alert(alert, self.name, events)
        if self.severity_from_scores:
            assert_findings_well_formed(result, self.name)

    def test_severity_follows_the_configured_severity_scores(
        self, severity: Severity | None, told: tuple[list, Run]
    ) -> None:
        events, result = told
        first = result.findings[0]
        if severity is None:  # not ``severity_from_scores``
            placed = self._run_with(events, severity_scores=[90.0, 95.0, 99.0])
            assert [f.severity for f in placed.findings] == [f.severity for f in result.findings]
            return
        placed_first = self._run_with(events, severity_scores=scores_placing(first.score, severity)).findings[0]
        assert (placed_first.score, placed_first.severity) == (first.score, severity)

    def test_disabled_it_is_not_built_and_raises_nothing(self, told: tuple[list, Run]) -> None:
        assert build_detectors({self.name: {"enabled": False}}) == []
        assert self._run_with(told[0], enabled=False).alerts == []

    def test_alert_ids_and_records_do_not_depend_on_the_run_or_the_batch_cutting(self) -> None:
        assert_stable_alerts(self.story, self.name, **self.run_options)

    def test_a_page_says_its_alerts_in_a_first_line_of_their_own_figures(self, told: tuple[list, Run]) -> None:
        """Tester T24: the pages led with the whole summary, 600 characters of the isolation forest's. The first
        line says who did what and how much from the alert's figures (``notify.gist``), each figure as its summary
        says it, within what a phone shows."""
        _, result = told
        for alert in (alert for alert in result.alerts if alert.detector == self.name):
            said = from_figures(alert)
            assert said is not None, f"notify.gist reads no figures of {self.name}'s alert: {alert.evidence}"
            for figure in re.findall(r"\d[\d,.]*x?", said):
                assert re.search(rf"(?<![\d,.]){re.escape(figure)}(?![\d,])", alert.summary), (figure, alert.summary)
            incident = incident_of(alert, "inc-1", 50.0)
            page = Page(kind=PageKind.TRIGGER, dedup_key="inc-1", incident=incident, alert=alert, zone=ZONE.key)
            assert len(headline(page)) <= FIRST_LINE_CHARS and said in headline(page)
