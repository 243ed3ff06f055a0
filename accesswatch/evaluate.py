"""Detection quality against a simulation's labels: what was caught, how fast, and at what cost.

Definitions (they decide the figures, so they are spelled out):
- an alert grows by merging findings (``evidence.spans``: each finding's
  window and severity); a severity counts from the finding that reached it,
  not from the alert's first finding, and a merged alert's end is its last
  finding's, not when it was first raised.  An alert without spans is one
  finding over its window;
- a scenario is *detected* at a severity floor when a finding on its actor,
  at or above the floor, overlaps the scenario's span (extended by one day,
  for day windows that close after it); *hours to detect* run from the
  scenario's first event to the end of the earliest such finding's window,
  the earliest event time at which it could be raised;
- a *false actor-day* is an actor and local day covered by a finding at or
  above the floor, of an alert that overlaps no scenario of that actor;
- *active actor-days* are the actors and local days with any event;
- an alert *on benign work* overlaps no scenario of its actor, and one of
  its findings at or above the floor overlaps a labelled benign span of its
  actor (for the busy day, of anyone).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Protocol, TextIO

from models.alert import Alert, Severity
from models.event import parse_rfc3339

FLOORS = (Severity.LOW, Severity.MEDIUM, Severity.HIGH)
SLACK = timedelta(days=1)


class _Stats(Protocol):
    @property
    def dead_letters(self) -> int: ...


class _Store(Protocol):
    def stats(self) -> _Stats: ...


def dead_letter_warning(count: int) -> str | None:
    """One line for stderr when the store holds dead letters (None when it holds none).

    Lines that became dead letters never reached the detectors: a replay
    whose tail was dead-lettered (events too far in the future, under
    ``ingest.max_future_skew``) scores as clean as if the tail were benign.
    """
    if count <= 0:
        return None
    letters = "1 dead letter" if count == 1 else f"{count:,} dead letters"
    return (
        f"accesswatch evaluate: warning: the store holds {letters}, lines never judged: the figures leave them out"
        " (`accesswatch deadletters` says why; events past the clock need simulate --start earlier, or a larger"
        " ingest.max_future_skew)"
    )


# how far the store's events may run past the labels' span (a simulation's shipping jitter carries its last
# seconds over), and how far short of it they may end (a quiet last night) before the figures are in doubt
SPAN_OUTSIDE = timedelta(hours=1)
SPAN_SHORT = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class SpanCheck:
    """The labels' span against the store's events: ``refused`` (another log) or ``warning`` (part of it)."""

    refused: str | None = None
    warning: str | None = None


def check_span(start: datetime, end: datetime, first: datetime | None, last: datetime | None) -> SpanCheck:
    """Labels of ``[start, end)`` against a store whose events run from ``first`` to ``last``.

    Events outside the labels' span are another log's (10-day labels over a 30-day store scored its other
    20 days as "99 false actor-days"): refused.  A store holding part of the span (30-day labels over a
    10-day replay, or a replay whose tail was dead-lettered) would score the scenarios it lacks as missed:
    a warning that says so.
    """
    labels = f"the labels cover {_day(start)} to {_day(end)}"
    if first is None or last is None:
        return SpanCheck(refused=f"{labels}, and the store holds no events: replay the simulation's events first")
    stored = f"the store's events run from {_day(first)} to {_day(last)}"
    if first < start - SPAN_OUTSIDE or last > end + SPAN_OUTSIDE:
        return SpanCheck(
            refused=f"{labels}, {stored}: not the simulation replayed into this store (give its labels.json)"
        )
    if first > start + SPAN_SHORT or last < end - SPAN_SHORT:
        return SpanCheck(warning=f"{labels}, {stored}: scenarios outside the store's events count as missed")
    return SpanCheck()


def _day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def warn_dead_letters(store: _Store, stream: TextIO | None = None) -> int:
    """Write ``dead_letter_warning`` for the store's dead letters to ``stream`` (stderr); their count."""
    count = store.stats().dead_letters
    message = dead_letter_warning(count)
    if message is not None:
        print(message, file=stream if stream is not None else sys.stderr)
    return count


@dataclass(slots=True)
class ScenarioResult:
    scenario_id: str
    kind: str
    actor_id: str
    detected: bool
    hours_to_detect: float | None
    detectors: list[str]
    best_severity: str | None


@dataclass(slots=True)
class FloorResult:
    floor: Severity
    scenarios: list[ScenarioResult]
    false_actor_days: int
    active_actor_days: int
    benign_alerts: dict[str, int] = field(default_factory=dict)
    benign_examples: list[str] = field(default_factory=list)

    @property
    def detected(self) -> int:
        return sum(s.detected for s in self.scenarios)

    @property
    def false_per_1000(self) -> float:
        return 1000.0 * self.false_actor_days / self.active_actor_days if self.active_actor_days else 0.0


@dataclass(frozen=True, slots=True)
class Found:
    """One finding of an alert: its window and the severity it had."""

    start: datetime
    end: datetime
    severity: Severity


def findings(alert: Alert) -> list[Found]:
    """The alert's findings, in the order they were raised, from ``evidence.spans``.

    An alert keeps at most ``detectors.alerts.MAX_SPANS`` spans: its opening
    finding's and the latest (alerts stored before the opening one was kept
    have the latest only).  Either way the findings that fell out were raised
    before the second kept one closed.  What is known of them stands in as
    one finding from the alert's start to that close, at the alert's severity
    if no kept finding reached it (the lost ones did), else at low: a
    severity is never credited earlier than it is known to have been reached.
    """
    kept = []
    for span in alert.evidence.get("spans") or []:
        try:
            start, end, severity = parse_rfc3339(span[0]), parse_rfc3339(span[1]), Severity(span[3])
        except (AttributeError, IndexError, KeyError, TypeError, ValueError):  # not a span: skipped
            continue
        kept.append(Found(start, end, severity))
    if not kept:
        return [Found(alert.window_start, alert.window_end, alert.severity)]
    count = alert.evidence.get("findings")
    if isinstance(count, int) and count > len(kept):
        reached = max(found.severity.rank for found in kept) >= alert.severity.rank
        lost = Found(alert.window_start, kept[min(1, len(kept) - 1)].end, Severity.LOW if reached else alert.severity)
        kept.append(lost)
    return kept


def _rank(severity: Severity) -> int:
    return severity.rank


def _span(item: dict) -> tuple[datetime, datetime]:
    return parse_rfc3339(item["start"]), parse_rfc3339(item["end"])


def _overlaps(alert: Alert | Found, start: datetime, end: datetime) -> bool:
    if isinstance(alert, Found):
        return alert.start <= end and alert.end >= start
    return alert.window_start <= end and alert.window_end >= start


def _local_days(found: Found, zone: tzinfo) -> set:
    first = found.start.astimezone(zone).date()
    last = (found.end - timedelta(microseconds=1)).astimezone(zone).date()
    return {first + timedelta(days=n) for n in range((last - first).days + 1)}


def evaluate(labels: dict, alerts: Iterable[Alert], active_actor_days: int, zone: tzinfo) -> list[FloorResult]:
    alerts = list(alerts)
    scenarios = labels.get("scenarios", [])
    spans_by_actor: dict[str, list[tuple[datetime, datetime]]] = {}
    for scenario in scenarios:
        start, end = _span(scenario)
        spans_by_actor.setdefault(scenario["actor_id"], []).append((start, end + SLACK))
    results = []
    found_in = {id(alert): findings(alert) for alert in alerts}
    for floor in FLOORS:
        # each alert that reached the floor, with its findings at or above it
        chosen = []
        for alert in alerts:
            if alert.severity.at_least(floor):
                strong = [found for found in found_in[id(alert)] if found.severity.at_least(floor)]
                chosen.append((alert, strong or [Found(alert.window_start, alert.window_end, alert.severity)]))
        scenario_results = []
        for scenario in scenarios:
            start, end = _span(scenario)
            hits = []  # (alert, its findings at or above the floor that overlap the scenario)
            for alert, strong in chosen:
                if alert.actor_id == scenario["actor_id"]:
                    overlapping = [found for found in strong if _overlaps(found, start, end + SLACK)]
                    if overlapping:
                        hits.append((alert, overlapping))
            first = min((found.end for _, overlapping in hits for found in overlapping), default=None)
            scenario_results.append(
                ScenarioResult(
                    scenario_id=scenario["scenario_id"],
                    kind=scenario["kind"],
                    actor_id=scenario["actor_id"],
                    detected=bool(hits),
                    hours_to_detect=max(0.0, (first - start).total_seconds() / 3600) if first else None,
                    detectors=sorted({alert.detector for alert, _ in hits}),
                    best_severity=max((f.severity for _, found in hits for f in found), key=_rank).value
                    if hits
                    else None,
                )
            )
        false_days: set[tuple[str, object]] = set()
        unexplained = []
        for alert, strong in chosen:
            spans = spans_by_actor.get(alert.actor_id, [])
            if any(_overlaps(alert, start, end) for start, end in spans):
                continue
            unexplained.append((alert, strong))
            for found in strong:
                false_days.update((alert.actor_id, day) for day in _local_days(found, zone))
        benign_counts: dict[str, int] = {}
        examples: list[str] = []
        for item in labels.get("benign", []):
            start, end = _span(item)
            for alert, strong in unexplained:
                on_it = any(_overlaps(found, start, end) for found in strong)
                if item.get("actor_id") in (None, alert.actor_id) and on_it:
                    benign_counts[item["kind"]] = benign_counts.get(item["kind"], 0) + 1
                    if len(examples) < 10:
                        examples.append(f"{item['kind']}: {alert.severity.value} {alert.detector} {alert.summary}")
        results.append(
            FloorResult(floor, scenario_results, len(false_days), active_actor_days, benign_counts, examples)
        )
    return results


def format_report(results: list[FloorResult]) -> str:
    lines = []
    for result in results:
        lines.append(
            f"== severity >= {result.floor.value}: {result.detected}/{len(result.scenarios)} scenarios detected,"
            f" {result.false_actor_days} false actor-days of {result.active_actor_days} active"
            f" ({result.false_per_1000:.2f} per 1,000)"
        )
        for s in result.scenarios:
            if s.detected:
                lines.append(
                    f"   detected  {s.kind:<28} {s.actor_id:<22} after {s.hours_to_detect:6.1f} h"
                    f"  best {s.best_severity:<8} by {', '.join(s.detectors)}"
                )
            else:
                lines.append(f"   MISSED    {s.kind:<28} {s.actor_id:<22}")
        benign = ", ".join(f"{k} {v}" for k, v in sorted(result.benign_alerts.items())) or "none"
        lines.append(f"   alerts on labelled benign work: {benign}")
    return "\n".join(lines)


MODEL_DETECTOR = "isolation_forest"  # the behaviour model: "rules only" is every other detector


def format_comparison(compared: dict[str, list[FloorResult]]) -> str:
    """Several alert sets on the same labels, side by side, as a Markdown table (it goes in the README)."""
    names = list(compared)
    rows: list[tuple[str, list[str]]] = []
    for position, floor in enumerate(FLOORS):
        if floor is Severity.LOW:
            continue
        results = [compared[name][position] for name in names]
        rows.append((f"scenarios detected at >= {floor.value}", [f"{r.detected}/{len(r.scenarios)}" for r in results]))
        rows.append((f"false actor-days per 1,000 at >= {floor.value}", [f"{r.false_per_1000:.2f}" for r in results]))
        benign = [str(sum(r.benign_alerts.values())) for r in results]
        rows.append((f"alerts on labelled benign work at >= {floor.value}", benign))
    medium = FLOORS.index(Severity.MEDIUM)
    for n, scenario in enumerate(compared[names[0]][medium].scenarios):
        cells = []
        for name in names:
            found = compared[name][medium].scenarios[n]
            cells.append(f"{found.hours_to_detect:.1f} h" if found.detected else "missed")
        rows.append((f"{scenario.kind}: hours to detect at >= medium", cells))
    width = max(len(label) for label, _ in rows)
    lines = [
        f"| {'':<{width}} | " + " | ".join(f"{name:>13}" for name in names) + " |",
        f"|{'-' * (width + 2)}|" + "|".join("-" * 15 for _ in names) + "|",
    ]
    lines += [f"| {label:<{width}} | " + " | ".join(f"{cell:>13}" for cell in cells) + " |" for label, cells in rows]
    return "\n".join(lines)
