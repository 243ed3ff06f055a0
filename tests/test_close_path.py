"""What closing a period computes in bulk or from kept figures equals what it computed window by window.

A closed hour has hundreds of windows, so the close path keeps some figures as they change
(``Rhythm.busiest``, ``Rhythm.total``), computes the features' expectations a column at a time
(``features._Rows.expectations``) and lets a volume rule stop before the population allowance
(``Period.expectation``'s gates).  Alerts and checkpoints must not change: each must give exactly, not
nearly, the figure it replaces.
"""

from __future__ import annotations

import math
import random
from collections import Counter

import numpy as np
import pytest

from detectors import features
from detectors.base import Period
from detectors.isolation_forest import IsolationForestDetector
from detectors.profiles import SD_FLOOR, EwStat, Rhythm
from tests.detector_harness import settings_with
from tests.test_detector_isolation_forest import CONFIG, NAME, insider_story

GATES = ((8.0, 3.0), (5.0, 2.5), (2.0, 0.0), (1.0, -math.inf), (1.5, 1.0))


# -- Rhythm: the busiest slot and the total, kept -------------------------------------------------------------
def _random_rhythm(seed: int) -> Rhythm:
    rng = random.Random(seed)
    rhythm = Rhythm()
    logs: dict[str, float | None] = {"records": 1.0, "customers": 1.0, "egress": None, "high": None}
    for step in range(2000):
        rhythm.add(rng.randrange(168), logs, rng.uniform(0.1, 3.0) * 1.0001**step, volumes=False)
        if step % 500 == 499:
            rhythm.rebase(rng.uniform(1e-3, 0.9))
    return rhythm


@pytest.mark.parametrize("seed", range(5))
def test_a_rhythms_busiest_slot_is_kept_exactly_through_adds_and_rebases(seed):
    rhythm = _random_rhythm(seed)
    assert rhythm.busiest == max(rhythm.activity.values())
    restored = Rhythm.from_state(rhythm.to_state())
    assert restored.busiest == rhythm.busiest and restored.total == sum(rhythm.activity.values())
    assert Rhythm().busiest == 0.0 and Rhythm().total == 0.0


@pytest.mark.parametrize("seed", range(5))
def test_observed_at_least_answers_as_the_exact_sum_even_at_its_last_digit(seed):
    rhythm = _random_rhythm(seed)
    observed = rhythm.observed
    assert rhythm.total == pytest.approx(observed, rel=1e-12)
    for floor in (
        observed,
        math.nextafter(observed, math.inf),
        math.nextafter(observed, -math.inf),
        rhythm.total,
        math.nextafter(rhythm.total, math.inf),
        observed * (1 + 2e-6),
        observed * (1 - 2e-6),
        observed / 2,
        observed * 2,
        0.0,
    ):
        assert rhythm.observed_at_least(floor) is (observed >= floor), floor


def test_usual_levels_given_the_busiest_slot_are_the_rhythms_own():
    rhythm = _random_rhythm(7)
    slots = list(range(168))
    assert features.usual_levels(rhythm.activity, slots, rhythm.busiest) == [rhythm.usual_level(s) for s in slots]


def test_gathered_figures_become_the_floats_numpy_would_make_of_them():
    # ints (counts) and floats (sums) alike, past 2**53 where an int rounds, signed zero and the extremes
    values = [0, 1, 7, 2**53 + 1, 2**63 + 12345, -3, 0.1, -0.0, 1e308, 5e-324, math.inf, True, 12.5, 3]
    packed = features._floats(values)
    assert packed.dtype == np.float64 and packed.tobytes() == np.array(values, dtype=np.float64).tobytes()
    assert features._floats([]).shape == (0,)


# -- over a replayed month: the features' expectations and the rules' gates -------------------------------
def _slot_stat(period: Period, profile, metric: str) -> EwStat | None:
    """The weekly slot's stat the way ``Period.expectation`` finds it."""
    if period.scale == "short":
        return profile.rhythm.slot_volume(period.slot, metric, period.g_slow)
    stat = profile.weekdays.get(period.slot // 24, {}).get(metric)
    return stat if stat is not None and stat.weight(period.g_slow) >= 0.5 else None


def _expectations_window_by_window(period: Period, bases: Counter[str]) -> tuple[np.ndarray, ...]:
    """Mean, spread, known and own mean per window and ratio volume, from ``EwStat.mean`` and ``.sd``."""
    g = period.g_fast if period.scale == "short" else period.g_slow
    rows = []
    for window in period.windows:
        profile, basis = period.profiles.baseline(window.actor)
        row = []
        for metric in features.RATIO_VOLUMES:
            if profile is None:
                row.append((0.0, 1.0, False, math.nan))
                continue
            stat = (profile.hourly if period.scale == "short" else profile.daily)[metric]
            if stat.sw < g:
                row.append((0.0, 1.0, False, math.nan))
                continue
            mean, sd = stat.mean, stat.sd
            own_mean = mean if basis == "own" else math.nan
            slot = _slot_stat(period, profile, metric) if basis == "own" and metric in features.SLOT_METRICS else None
            way = basis
            if slot is not None and slot.mean > mean:
                mean, sd, way = slot.mean, max(sd, max(math.sqrt(slot.var), SD_FLOOR)), "own rhythm"
            bases[way] += 1
            row.append((mean, sd, True, own_mean))
        rows.append(row)
    table = np.array(rows, dtype=object).reshape(len(rows), len(features.RATIO_VOLUMES), 4)
    return tuple(np.array(table[:, :, k].tolist(), dtype=bool if k == 2 else np.float64) for k in range(4))


class _Probe(IsolationForestDetector):
    """The detector, checking each ready period's column-built expectations and the rules' gates."""

    def __init__(self, settings) -> None:
        super().__init__(settings)
        self.periods = self.windows = self.gated = self.passed = self.unallowed = 0
        self.bases: Counter[str] = Counter()

    def observe(self, period: Period) -> None:
        if period.system_ready and period.windows:
            self._check_expectations(period)
            self._check_gates(period)
        super().observe(period)

    def _check_expectations(self, period: Period) -> None:
        built = features._Rows(period).expectations(
            period.g_fast if period.scale == "short" else period.g_slow, period.g_slow
        )
        for got, expected in zip(built, _expectations_window_by_window(period, self.bases), strict=True):
            assert got.dtype == expected.dtype and got.tobytes() == expected.tobytes()
        self.periods += 1
        self.windows += len(period.windows)

    def _check_gates(self, period: Period) -> None:
        fresh = Period(
            period.scale,
            period.start,
            period.end,
            period.windows,
            period.profiles,
            period.clock,
            period.organisation,
            period.classifier,
            period.system_ready,
        )
        for window in fresh.windows:
            assert fresh.expectation(window, "records", window.records, min_ratio=1e9, min_z=1e9) is None
        assert not fresh._factors  # no pass over the period's windows for the allowance was needed
        self.unallowed += 1
        for window in period.windows[:40]:
            for metric in ("records", "customers", "egress", "high"):
                value = features.volume_values(window)[features.VOLUMES.index(metric)]
                full = period.expectation(window, metric, value)
                for min_ratio, min_z in GATES:
                    gated = period.expectation(window, metric, value, min_ratio, min_z)
                    if gated is None:
                        # stopped before the allowance only when the whole expectation falls short too
                        assert full is None or full.ratio < min_ratio or full.z < min_z
                        self.gated += full is not None
                    else:
                        assert gated == full
                        self.passed += 1


@pytest.fixture(scope="module")
def probed() -> _Probe:
    from detectors.engine import DetectionEngine

    probe = _Probe(IsolationForestDetector.Settings(**CONFIG[NAME]))
    engine = DetectionEngine(settings_with(), [probe])
    engine.process(insider_story())
    engine.flush()
    return probe


def test_the_features_expectations_built_by_columns_are_the_per_window_ones_exactly(probed):
    assert probed.periods > 90 and probed.windows > 3000
    # each way to an expectation is taken: the actor's own, its weekly slot's, its peers'
    assert min(probed.bases.values()) > 100, probed.bases


def test_a_gated_expectation_is_none_only_when_the_whole_one_falls_short(probed):
    assert probed.gated > 10_000 and probed.passed > 1000


def test_a_rule_far_from_its_gates_needs_no_population_allowance(probed):
    assert probed.unallowed > 90
