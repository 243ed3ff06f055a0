"""``ramp``: an actor reads more day after day, well past its usual (a slow exfiltration).

``bulk_read`` judges one day at a time against the actor's daily baseline. A
ramp defeats that: each day is only a little above the one before, and the
baseline learns every day, so no single day stands out until the ramp is far
along (in the detection study, over eight seeds, a customer-service agent's
eight-day climb to ten times the usual was found by the rules after 278 hours
or not at all, and paged on two).

This rule adds the days up instead: a one-sided CUSUM (Page, 1954) of each
day's z against the actor's own daily baseline, after the population
allowance (so a busy day for everyone adds nothing). Each day adds its z less
``allowance``: a day above that raises the sum, a day at or under it lowers
it, and the run ends when the sum falls to zero (a long run takes days of
usual work to end), or at a silence longer than ``max_gap_days`` (a ramp is
sustained work, not two busy weeks a month apart). Noise and a single busy day stay
under ``min_sum``; several days each well above the usual do not. The sum is
the score (``severity_scores`` apply to it).

A sum alone also grows on a plateau (an actor at twice its usual for two weeks,
which the learning baseline has not caught up with), and carries one huge day
(a month-end report) past the gate. A ramp climbs, step by step, so a finding
also needs the day to be the run's busiest so far, ``min_growth`` times its
first day, and at most ``max_step`` times the day before (a one-day jump is a
bulk read: ``bulk_read`` judges it); and the run ``min_days`` long, the day
``min_ratio`` times the usual.

A finding covers the run: its window runs from the start of the run's first
day to the end of the day judged, so its alert, its incident and the report
filed from it count every day read (the judged day alone left a ramp's report
with its last day's customers). The run's findings overlap each other, so they
grow one alert; it stays open while the run goes on (``may_grow``), over a
weekend or a day that found nothing, and a ramp is one alert and one incident.
Its sample events are the judged days' (the run's earlier days are not kept).

Actors are judged on their own baseline only: a peer group's spread is not the
actor's, and a new hire's first weeks would read as a ramp.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Annotated, Any

from pydantic import Field

from detectors import wording
from detectors.base import Detector, DetectorSettings, Expectation, Finding, Period
from detectors.kind_baseline import KIND_BASES
from detectors.windows import WindowStats
from models.alert import Severity

DAY = 86400.0
MAX_DAILY_KEPT = 14  # the run's latest days shown in the evidence (and kept in the state)


class RampSettings(DetectorSettings):
    documented_max_severity: Severity | None = Severity.MEDIUM  # a documented bulk job's ramp: reviewed, not paged
    allowance: Annotated[float, Field(ge=0)] = 0.5  # z a day must exceed to add to the sum
    min_sum: Annotated[float, Field(gt=0)] = 3.0  # the sum that makes a finding (CUSUM's decision interval)
    min_days: Annotated[int, Field(ge=1)] = 3  # days in the run, the judged one included
    min_growth: Annotated[float, Field(ge=1)] = 2.0  # the judged day's records, times the run's first day's
    max_step: Annotated[float, Field(ge=1)] = 4.0  # the judged day's records, times the day before's, at most
    min_ratio: Annotated[float, Field(ge=1)] = 2.0  # the judged day, times the actor's usual
    min_records: Annotated[int, Field(ge=0)] = 200  # records on the judged day
    max_gap_days: Annotated[float, Field(gt=0)] = 4.0  # a longer silence ends a run (a weekend and a day off do not)
    severity_scores: list[float] = Field(default=[3.0, 5.0, 8.0], min_length=3, max_length=3)  # on the sum


@dataclass(frozen=True, slots=True)
class Run:
    """An actor's days above its usual, so far: the CUSUM and what it was made of."""

    total: float  # the sum of (z - allowance) over the run's days
    first_day: float  # start of its first day
    last_day: float  # start of its latest day
    first_records: int  # records on its first day: the climb is measured from it
    daily_records: tuple[int, ...]  # records on each of its latest MAX_DAILY_KEPT days
    days: int

    def to_state(self) -> list[Any]:
        return [self.total, self.first_day, self.last_day, self.first_records, list(self.daily_records), self.days]

    @classmethod
    def from_state(cls, state: list[Any]) -> Run:
        total, first_day, last_day, first_records, daily, days = state
        return cls(total, first_day, last_day, first_records, tuple(daily), days)


@dataclass(frozen=True, slots=True)
class _Step:
    """One actor's day as this rule saw it: the run after it (None: no run) and the day's expectation."""

    run: Run | None
    expectation: Expectation


class Ramp(Detector[RampSettings]):
    name = "ramp"
    title = "steady climb"
    Settings = RampSettings
    scales = ("long",)

    def __init__(self, settings: RampSettings) -> None:
        super().__init__(settings)
        self._runs: dict[str, Run] = {}
        # the steps ``detect`` worked out for a period, taken up by ``observe`` for the same period
        self._stepped: tuple[Period, dict[str, _Step]] | None = None

    def detect(self, period: Period) -> Iterator[Finding]:
        settings = self.settings
        steps = self._steps(period)
        self._stepped = (period, steps)
        for window in period.windows:
            step = steps.get(window.actor.id)
            if step is None or step.run is None:
                continue
            run, expectation = step.run, step.expectation
            if (
                run.total < settings.min_sum
                or run.days < settings.min_days
                or expectation.ratio < settings.min_ratio
                or window.records < settings.min_records
                or not _climbs(run, settings)
            ):
                continue
            found = self.finding(
                window, run.total, _summary(period, window, run, expectation), _evidence(window, run, expectation)
            )
            yield replace(found, window_start=run.first_day)  # the whole run (the module's docstring)

    def observe(self, period: Period) -> None:
        stepped = self._stepped
        steps = stepped[1] if stepped is not None and stepped[0] is period else self._steps(period)
        self._stepped = None
        for actor_id, step in steps.items():
            if step.run is None:
                self._runs.pop(actor_id, None)
            else:
                self._runs[actor_id] = step.run
        # the runs of actors gone quiet for longer than a run survives: kept, they would only take memory
        settings = self.settings
        horizon = period.start - settings.max_gap_days * DAY
        for actor_id in [actor_id for actor_id, run in self._runs.items() if run.last_day < horizon]:
            del self._runs[actor_id]

    def _steps(self, period: Period) -> dict[str, _Step]:
        """Each judged actor's run after this day: the day's excess added to the run it continues."""
        settings = self.settings
        steps: dict[str, _Step] = {}
        for window in period.windows:
            actor_id = window.actor.id
            expectation = period.expectation(window, "records", window.records)
            # own baselines only (the module's docstring): not its peers', nor everyone of its kind's
            if expectation is None or expectation.basis == "peers" or expectation.basis in KIND_BASES:
                continue
            earlier = self._runs.get(actor_id)
            if earlier is not None and period.start - earlier.last_day > settings.max_gap_days * DAY:
                earlier = None
            total = (earlier.total if earlier is not None else 0.0) + expectation.z - settings.allowance
            if total <= 0.0 or not math.isfinite(total):
                steps[actor_id] = _Step(None, expectation)
            elif earlier is None:
                steps[actor_id] = _Step(
                    Run(total, period.start, period.start, window.records, (window.records,), 1), expectation
                )
            else:
                daily = (*earlier.daily_records, window.records)[-MAX_DAILY_KEPT:]
                steps[actor_id] = _Step(
                    Run(total, earlier.first_day, period.start, earlier.first_records, daily, earlier.days + 1),
                    expectation,
                )
        return steps

    def may_grow(self, actor_id: str) -> bool:
        """A run still going on may find again: its finding continues the run's alert (its window starts where
        the alert's does), which must not be forgotten over a weekend (``detectors.alerts.AlertBook.expire``)."""
        return actor_id in self._runs

    def to_state(self) -> Any:
        return {"runs": {actor_id: self._runs[actor_id].to_state() for actor_id in sorted(self._runs)}}

    def load_state(self, state: Any) -> None:
        self._runs = {actor_id: Run.from_state(item) for actor_id, item in state["runs"].items()}
        self._stepped = None


def _climbs(run: Run, settings: RampSettings) -> bool:
    """Whether the run's latest day is its busiest, well above its first, and no jump from the day before."""
    daily = run.daily_records
    today = daily[-1]
    return (
        today >= max(daily)
        and today >= settings.min_growth * run.first_records
        and (len(daily) < 2 or today <= settings.max_step * daily[-2])
    )


def _summary(period: Period, window: WindowStats, run: Run, expectation: Expectation) -> str:
    shown = run.daily_records[-7:]  # a week's figures read at a glance; the evidence keeps what the run kept
    daily = ", ".join(wording.count(records) for records in shown)
    label = "records a day" if len(shown) == run.days else f"records a day, the last {len(shown)}"
    days = wording.span(run.first_day, window.end, period.clock.zone)
    return (
        f"{wording.who(window.actor).capitalize()} read more than usual on each of the {run.days} days worked "
        f"{days} ({label}: {daily}), "
        f"{wording.against(expectation)} on the last."
    )


def _evidence(window: WindowStats, run: Run, expectation: Expectation) -> dict[str, Any]:
    return {
        "figure": "records",
        "cusum": round(run.total, 2),
        "days": run.days,
        "first_day_records": run.first_records,
        "daily_records": list(run.daily_records),
        "value": expectation.value,
        "baseline": round(expectation.expected, 1),
        "baseline_from": expectation.basis,
        "ratio": round(expectation.ratio, 2),
        "z": round(expectation.z, 2),
        "population_factor": round(expectation.population_factor, 2),
        "distinct_customers": window.distinct_customers,
        "records_by_class": dict(sorted(window.class_records.items())),
    }
