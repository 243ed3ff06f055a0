"""``denied_burst``: many denied accesses in a short span, the sign of someone probing their privileges."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Annotated

from pydantic import Field

from detectors import wording
from detectors.base import Detector, DetectorSettings, Finding, Period
from detectors.kind_baseline import KIND_BASES
from models.config import Seconds


class DeniedBurstSettings(DetectorSettings):
    min_denied: Annotated[int, Field(ge=1)] = 20
    span: Seconds = 900.0
    min_ratio: Annotated[float, Field(ge=1)] = 3.0  # times the actor's usual denied count
    severity_scores: list[float] = Field(default=[2.0, 3.0, 5.0], min_length=3, max_length=3)  # as in the base


class DeniedBurst(Detector[DeniedBurstSettings]):
    name = "denied_burst"
    title = "bursts of refused access"
    partner_scope = False  # refused reads: not data read out of scope
    # not during the warm-up (``judges_during_warmup``): its baseline is what spares an integration always refused
    Settings = DeniedBurstSettings

    def detect(self, period: Period) -> Iterator[Finding]:
        settings = self.settings
        for window in period.windows:
            if window.denied < settings.min_denied:
                continue
            burst, first, last = window.densest_denied_burst(settings.span)
            if burst < settings.min_denied:
                continue
            expectation = period.expectation(window, "denied", window.denied)
            if expectation is not None and expectation.basis in KIND_BASES:
                expectation = None  # others' refusals do not make this actor's usual: no broken integration known
            if expectation is not None and expectation.ratio < settings.min_ratio:
                continue  # this actor is often refused: a broken integration, not a probe
            sensitive = window.denied_high >= window.denied / 2
            score = math.log2(burst / settings.min_denied) + 2.0 + (1.0 if sensitive else 0.0)
            minutes = max(1, round((last - first) / 60))
            summary = (
                f"{wording.who(window.actor).capitalize()} was denied {wording.counted(burst, 'time')} within "
                f"{wording.counted(minutes, 'minute')} {wording.span(window.start, window.end, period.clock.zone)}"
                + (", mostly on high-sensitivity data." if sensitive else ".")
            )
            evidence = {
                "denied_in_burst": burst,
                "denied_in_window": window.denied,
                "burst_minutes": minutes,
                "denied_on_high_sensitivity": window.denied_high,
                "usual_denied": round(expectation.expected, 2) if expectation else None,
                "events": window.events,
            }
            yield self.finding(window, score, summary, evidence)
