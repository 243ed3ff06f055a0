"""``zscore_spike``: the naive rule the product is measured against, not a product detector.

Per actor, the mean and standard deviation of records read per active hour,
over all of its history (no decay, no log scale, no weekly rhythm, no peers,
no allowance for a busy day); an hour more than ``min_z`` deviations above
the mean raises a finding, its severity from the z-score.  It is what a
first attempt at "alert on unusual volume" usually looks like, and what
``accesswatch evaluate --compare`` sets beside the product's detectors on
the same data.  It is deliberately not in ``detectors.registry``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Annotated

from pydantic import Field

from detectors import wording
from detectors.base import Detector, DetectorSettings, Finding, Period
from detectors.engine import DetectionEngine
from models.alert import Alert
from models.config import Settings
from store.base import Store


class ZScoreSpikeSettings(DetectorSettings):
    min_windows: Annotated[int, Field(ge=2)] = 10  # active hours of its own before an actor is judged
    min_z: Annotated[float, Field(gt=0)] = 3.0
    severity_scores: list[float] = [4.0, 6.0, 10.0]  # z for medium, high, critical; from min_z, low


class ZScoreSpike(Detector[ZScoreSpikeSettings]):
    name = "zscore_spike"
    Settings = ZScoreSpikeSettings

    def __init__(self, settings: ZScoreSpikeSettings | None = None) -> None:
        super().__init__(settings or ZScoreSpikeSettings())
        self.stats: dict[str, list[float]] = {}  # actor -> [n, mean, sum of squared deviations] (Welford)

    def detect(self, period: Period) -> Iterator[Finding]:
        settings = self.settings
        for window in period.windows:
            found = self.stats.get(window.actor.id)
            if found is None or found[0] < settings.min_windows:
                continue
            n, mean, squares = found
            sd = math.sqrt(squares / (n - 1))
            if sd <= 0:
                continue  # never varied: no spread to measure a spike in
            z = (window.records - mean) / sd
            if z < settings.min_z:
                continue
            summary = (
                f"{wording.who(window.actor).capitalize()} read {wording.count(window.records)} records "
                f"{wording.span(window.start, window.end, period.clock.zone)}, {z:.1f} standard deviations above "
                f"their mean of {mean:,.1f} per active hour."
            )
            evidence = {"records": window.records, "mean": round(mean, 2), "sd": round(sd, 2), "z": round(z, 2)}
            yield self.finding(window, z, summary, evidence)

    def observe(self, period: Period) -> None:
        for window in period.windows:
            found = self.stats.setdefault(window.actor.id, [0.0, 0.0, 0.0])
            found[0] += 1
            delta = window.records - found[1]
            found[1] += delta / found[0]
            found[2] += delta * (window.records - found[1])

    def to_state(self) -> dict:
        return self.stats

    def load_state(self, state: dict) -> None:
        self.stats = {actor: list(values) for actor, values in state.items()}


def replay_alerts(settings: Settings, store: Store) -> list[Alert]:
    """The naive rule's alerts over every stored event, in store order (the store is only read)."""
    engine = DetectionEngine(settings, [ZScoreSpike()])
    latest: dict[str, Alert] = {}
    for batch in store.events_after(0):
        for alert in engine.process([incoming.event for incoming in batch]).alerts:
            latest[alert.alert_id] = alert
    for alert in engine.flush().alerts:
        latest[alert.alert_id] = alert
    return sorted(latest.values(), key=Alert.listing_order)
