"""The test the volume rules share: far above what this actor (else its peers) usually reads."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated

from pydantic import Field

from detectors.base import DetectorSettings, Expectation, Period
from detectors.windows import WindowStats
from models.alert import Severity


class VolumeSettings(DetectorSettings):
    """Thresholds of a volume rule; each rule sets its own defaults."""

    min_records: Annotated[int, Field(ge=0)] = 200  # fewer never alert
    min_ratio: Annotated[float, Field(ge=1)] = 8.0  # times the expected volume (own rhythm, else peers)
    min_z: Annotated[float, Field(ge=0)] = 3.0  # and this many spreads above it
    # and, for an hour, this many times the busiest hour of the actor's busier days
    # (0: off): work that comes in bursts on many days, such as a partner agent's
    # exports, is judged by its usual bursts, not by its quiet hours
    min_peak_ratio: Annotated[float, Field(ge=0)] = 2.0
    # bulk work citing a ticket, case or contract: reviewed, not paged as an incident
    documented_max_severity: Severity | None = Severity.MEDIUM


def unusual_volume(
    period: Period,
    window: WindowStats,
    metric: str,
    value: float,
    min_ratio: float,
    min_z: float,
    min_peak_ratio: float = 0.0,
    severity_scores: Sequence[float] | None = None,
) -> Expectation | None:
    """The expectation when ``value`` is many times and many spreads above it, and above the usual peak; else None.

    With ``severity_scores`` (the rule's), an hour judged against a usual peak scores no louder than how far
    past that gate it is (``peak_score``).
    """
    # the gates passed in too: a value short of them before the population allowance is short after it
    expectation = period.expectation(window, metric, value, min_ratio, min_z)
    if (
        expectation is None
        or expectation.ratio < min_ratio
        or expectation.z < min_z
        or expectation.peak_ratio < min_peak_ratio
    ):
        return None
    if severity_scores is not None and min_peak_ratio > 0 and expectation.usual_peak is not None:
        expectation.score_cap = peak_score(expectation.peak_ratio / min_peak_ratio, severity_scores)
    return expectation


def peak_score(past_gate: float, severity_scores: Sequence[float]) -> float:
    """The loudest score of an hour ``past_gate`` times the usual-peak gate: medium at the gate, one severity
    step per doubling beyond it (high at twice the gate, critical at four times).

    The gate decides whether an hour alerts; without this, how loud it is came from the ratio to the actor's
    mean hour alone.  For work that comes in bursts the mean hour is tiny, so an hour just past the gate, such
    as a partner agent's two routine exports in one hour, scored high or critical.  Against the mean, a doubling
    is half a step; against the usual peak, itself the busy end of the actor's days, a doubling is rarer and
    weighs a whole step.  Far past any peak (a bulk exfiltration: hundreds of times) the cap is never reached.
    """
    medium, high, critical = severity_scores[0], severity_scores[1], severity_scores[2]
    steps = math.log2(max(past_gate, 1.0))
    if steps <= 1.0:
        return medium + (high - medium) * steps
    return high + (critical - high) * (steps - 1.0)
