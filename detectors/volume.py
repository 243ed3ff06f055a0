"""The test the volume rules share: far above what this actor (else its peers) usually reads."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from detectors.base import DetectorSettings, Expectation, Period
from detectors.windows import WindowStats


class VolumeSettings(DetectorSettings):
    """Thresholds of a volume rule; each rule sets its own defaults."""

    min_records: Annotated[int, Field(ge=0)] = 200  # fewer never alert
    min_ratio: Annotated[float, Field(ge=1)] = 8.0  # times the expected volume (own rhythm, else peers)
    min_z: Annotated[float, Field(ge=0)] = 3.0  # and this many spreads above it
    # and, for an hour, this many times the busiest hour of the actor's busier days
    # (0: off): work that comes in bursts on many days, such as a partner agent's
    # exports, is judged by its usual bursts, not by its quiet hours
    min_peak_ratio: Annotated[float, Field(ge=0)] = 2.0


def unusual_volume(
    period: Period,
    window: WindowStats,
    metric: str,
    value: float,
    min_ratio: float,
    min_z: float,
    min_peak_ratio: float = 0.0,
) -> Expectation | None:
    """The expectation when ``value`` is many times and many spreads above it, and above the usual peak; else None."""
    expectation = period.expectation(window, metric, value)
    if (
        expectation is None
        or expectation.ratio < min_ratio
        or expectation.z < min_z
        or expectation.peak_ratio < min_peak_ratio
    ):
        return None
    return expectation
