"""The test the volume rules share: far above what this actor (else its peers) usually reads."""

from __future__ import annotations

from detectors.base import Expectation, Period
from detectors.windows import WindowStats


def unusual_volume(
    period: Period, window: WindowStats, metric: str, value: float, min_ratio: float, min_z: float
) -> Expectation | None:
    """The expectation when ``value`` is both many times and many spreads above it, else None."""
    expectation = period.expectation(window, metric, value)
    if expectation is None or expectation.ratio < min_ratio or expectation.z < min_z:
        return None
    return expectation
