"""Detection quality against a simulation's labels: what was caught, how fast, and at what cost.

Definitions (they decide the figures, so they are spelled out):
- a scenario is *detected* at a severity floor when an alert on its actor, at
  or above the floor, overlaps the scenario's span (extended by one day, for
  day windows that close after it); *hours to detect* run from the
  scenario's first event to the end of the first such alert's window, the
  earliest event time at which it could be raised;
- a *false actor-day* is an actor and local day covered by an alert at or
  above the floor that overlaps no scenario of that actor;
- *active actor-days* are the actors and local days with any event;
- an alert *on benign work* overlaps a labelled benign span of its actor
  (for the busy day, of anyone).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo

from models.alert import Alert, Severity
from models.event import parse_rfc3339

FLOORS = (Severity.LOW, Severity.MEDIUM, Severity.HIGH)
SLACK = timedelta(days=1)


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


def _span(item: dict) -> tuple[datetime, datetime]:
    return parse_rfc3339(item["start"]), parse_rfc3339(item["end"])


def _overlaps(alert: Alert, start: datetime, end: datetime) -> bool:
    return alert.window_start <= end and alert.window_end >= start


def _local_days(alert: Alert, zone: tzinfo) -> set:
    first = alert.window_start.astimezone(zone).date()
    last = (alert.window_end - timedelta(microseconds=1)).astimezone(zone).date()
    return {first + timedelta(days=n) for n in range((last - first).days + 1)}


def evaluate(labels: dict, alerts: Iterable[Alert], active_actor_days: int, zone: tzinfo) -> list[FloorResult]:
    alerts = list(alerts)
    scenarios = labels.get("scenarios", [])
    spans_by_actor: dict[str, list[tuple[datetime, datetime]]] = {}
    for scenario in scenarios:
        start, end = _span(scenario)
        spans_by_actor.setdefault(scenario["actor_id"], []).append((start, end + SLACK))
    results = []
    for floor in FLOORS:
        chosen = [a for a in alerts if a.severity.at_least(floor)]
        scenario_results = []
        for scenario in scenarios:
            start, end = _span(scenario)
            hits = [a for a in chosen if a.actor_id == scenario["actor_id"] and _overlaps(a, start, end + SLACK)]
            first = min(hits, key=lambda a: a.window_end, default=None)
            scenario_results.append(
                ScenarioResult(
                    scenario_id=scenario["scenario_id"],
                    kind=scenario["kind"],
                    actor_id=scenario["actor_id"],
                    detected=bool(hits),
                    hours_to_detect=max(0.0, (first.window_end - start).total_seconds() / 3600) if first else None,
                    detectors=sorted({a.detector for a in hits}),
                    best_severity=max(hits, key=lambda a: a.severity.rank).severity.value if hits else None,
                )
            )
        false_days: set[tuple[str, object]] = set()
        unexplained = []
        for alert in chosen:
            spans = spans_by_actor.get(alert.actor_id, [])
            if any(_overlaps(alert, start, end) for start, end in spans):
                continue
            unexplained.append(alert)
            false_days.update((alert.actor_id, day) for day in _local_days(alert, zone))
        benign_counts: dict[str, int] = {}
        examples: list[str] = []
        for item in labels.get("benign", []):
            start, end = _span(item)
            for alert in unexplained:
                if (item.get("actor_id") in (None, alert.actor_id)) and _overlaps(alert, start, end):
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
