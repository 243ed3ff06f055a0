"""The behaviour model's estimator: an isolation forest over window features, and its calibration.

``WindowForest`` is scikit-learn's ``IsolationForest`` behind a small
estimator of our own: validated parameters, a fixed ``random_state`` (a
replay must fit the same trees and raise the same alerts), ``fit`` and
``score_samples`` with scikit-learn's meaning (lower is more abnormal; the
values are identical to ``IsolationForest.score_samples``).  Scoring walks
the fitted trees directly: scikit-learn's own path validates input and
dispatches a job per tree on every call, which costs ten times the work for
the few dozen windows of one closed hour.

``Calibration`` turns scores into what an analyst and a budget understand:
the alert threshold is the score that, on the training history, would have
flagged the configured number of actor-days per 1,000 (an actor-day counts
once however many of its windows score high), and severity follows the
score's rank in that history.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
from pydantic import ConfigDict, Field, model_validator

from models.alert import Severity
from models.settings_base import SettingsModel


class ForestParams(SettingsModel):
    """The estimator's parameters, validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_estimators: Annotated[int, Field(ge=1, le=2000)] = 100
    max_samples: Annotated[int, Field(ge=2, le=1_000_000)] = 256  # per tree; fewer when there are fewer windows
    random_state: Annotated[int, Field(ge=0, le=2**32 - 1)] = 7


class WindowForest:
    """An isolation forest with scikit-learn's fit/score_samples semantics and fast batch scoring."""

    def __init__(self, n_estimators: int = 100, max_samples: int = 256, random_state: int = 7) -> None:
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.random_state = random_state

    def get_params(self) -> dict[str, Any]:
        return {"n_estimators": self.n_estimators, "max_samples": self.max_samples, "random_state": self.random_state}

    def fit(self, X: np.ndarray) -> WindowForest:
        params = ForestParams.model_validate(self.get_params())  # ValidationError names the wrong one
        X = _as_input(X)
        if X.shape[0] < 2:
            raise ValueError(f"an isolation forest needs at least 2 windows, got {X.shape[0]}")
        self.n_features_in_ = X.shape[1]
        # imported on first use: a process that never fits or scores (a replay's pipeline, whose
        # detection runs in a worker process) is spared scikit-learn's 1.5 s and ~170 MB
        from sklearn.ensemble import IsolationForest

        self.forest_ = IsolationForest(
            n_estimators=params.n_estimators,
            max_samples=min(params.max_samples, X.shape[0]),
            random_state=params.random_state,
        ).fit(X)
        self._compile()
        return self

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        """The opposite of the anomaly score: lower is more abnormal (as ``IsolationForest.score_samples``)."""
        X = _as_input(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features; the forest was fitted on {self.n_features_in_}")
        depths = np.zeros(X.shape[0], dtype=np.float64)
        for tree, features, leaf_depth in self._trees:
            subset = X if features is None else np.ascontiguousarray(X[:, features])
            depths += leaf_depth[tree.apply(subset)]
        return -(2.0 ** (-depths / self._denominator))

    def anomaly(self, X: np.ndarray) -> np.ndarray:
        """The anomaly score, in (0, 1]: higher is more abnormal."""
        return -self.score_samples(X)

    # Compiled trees are derived data: pickles hold the fitted scikit-learn model only.
    def _compile(self) -> None:
        from sklearn.ensemble._iforest import _average_path_length  # on first use, as in ``fit``

        forest = self.forest_
        # scikit-learn indexes the columns per tree only when trees see a subset of the features
        subsetting = forest._max_features != self.n_features_in_
        self._trees = []
        for estimator, features, path, average in zip(
            forest.estimators_,
            forest.estimators_features_,
            forest._decision_path_lengths,
            forest._average_path_length_per_tree,
            strict=True,
        ):
            subset = np.asarray(features) if subsetting else None
            # the same sum as scikit-learn's, in the same order: the scores are identical
            self._trees.append((estimator.tree_, subset, path + average - 1.0))
        self._denominator = len(forest.estimators_) * float(_average_path_length([forest._max_samples])[0])

    def __getstate__(self) -> dict[str, Any]:
        return {key: value for key, value in self.__dict__.items() if key not in ("_trees", "_denominator")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if hasattr(self, "forest_"):
            self._compile()


def _as_input(X: np.ndarray) -> np.ndarray:
    # scikit-learn's trees compare float32 values: cast the same way, or scores would differ
    X = np.ascontiguousarray(X, dtype=np.float32)
    if X.ndim != 2:
        raise ValueError(f"expected a 2-d array of windows x features, got {X.ndim} dimensions")
    if not np.isfinite(X).all():
        raise ValueError("window features must be finite")
    return X


# -- calibration ---------------------------------------------------------------------------------------
class Budgets(SettingsModel):
    """Alerts per 1,000 actor-days the model may raise at each severity, on its training history."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    low: Annotated[float, Field(gt=0, le=1000)] = 5.0
    medium: Annotated[float, Field(gt=0, le=1000)] = 0.5
    high: Annotated[float, Field(gt=0, le=1000)] = 0.2

    @model_validator(mode="after")
    def _descending(self) -> Budgets:
        if not self.low >= self.medium >= self.high:
            raise ValueError("budgets must not grow with severity: low >= medium >= high")
        return self

    def by_severity(self) -> dict[Severity, float]:
        return {Severity.LOW: self.low, Severity.MEDIUM: self.medium, Severity.HIGH: self.high}


TAIL_SHARE = 0.05  # the top 5% of training actor-days describe the tail beyond the highest one
MIN_TAIL = 5


@dataclass(frozen=True, slots=True)
class Calibration:
    """Thresholds and ranks from the training history's scores.

    A budget that the history resolves (at least one actor-day in it may
    score above the threshold) gets the empirical threshold: strictly above
    the first actor-day past the budget.  A finer one (one in 10,000 with a
    few thousand actor-days of history) cannot be read off the ranks: a
    window just past the highest training score is about one in N, not one
    in 10,000.  Its threshold is extrapolated from the tail instead, by
    peaks over a threshold (the excesses of the top ``TAIL_SHARE`` of
    actor-days over the lowest of them, taken as exponential: Siffer et al.,
    "Anomaly detection in streams with extreme value theory", KDD 2017), and
    never below the highest training score.  Isolation scores are bounded,
    so the exponential tail errs towards higher thresholds.
    """

    thresholds: dict[Severity, float]  # an anomaly score at or above this raises that severity
    maxima: np.ndarray  # every training actor-day's highest anomaly score, descending
    tail_start: float  # the score the tail is measured from ...
    tail_rate: float  # ... the actor-days per 1,000 above it ...
    tail_scale: float  # ... and the mean excess over it

    @classmethod
    def fit(cls, anomaly: np.ndarray, groups: np.ndarray, budgets: Budgets) -> Calibration:
        """``anomaly``: the training windows' anomaly scores; ``groups``: the actor-day of each window."""
        if len(anomaly) == 0:
            raise ValueError("no training scores to calibrate on")
        order = np.lexsort((anomaly, groups))  # by actor-day, highest score last
        last = np.r_[groups[order][1:] != groups[order][:-1], True]
        maxima = np.sort(anomaly[order][last])[::-1].copy()
        n = len(maxima)
        top = min(n - 1, max(MIN_TAIL, round(TAIL_SHARE * n)))
        tail_start = float(maxima[top])
        tail_scale = max(float(np.mean(maxima[:top] - tail_start)) if top else 0.0, 1e-6)
        tail_rate = 1000.0 * top / n
        thresholds = {}
        highest = float(np.nextafter(maxima[0], np.inf))
        for severity, budget in budgets.by_severity().items():
            allowed = math.floor(budget * n / 1000.0)  # actor-days that may score at or above
            if allowed >= 1:
                thresholds[severity] = float(np.nextafter(maxima[min(allowed, n - 1)], np.inf))
            else:
                extrapolated = tail_start + tail_scale * math.log(tail_rate / budget) if tail_rate > 0 else highest
                thresholds[severity] = max(highest, extrapolated)
        return cls(thresholds, maxima, tail_start, tail_rate, tail_scale)

    @property
    def actor_days(self) -> int:
        return len(self.maxima)

    def severity(self, anomaly: float) -> Severity | None:
        found = None
        for severity, threshold in self.thresholds.items():
            if anomaly >= threshold:
                found = severity
        return found

    def rate(self, anomaly: float) -> float:
        """Actor-days per 1,000 expected to score at least this high: counted in the history, else from its tail."""
        at_least = int(np.searchsorted(-self.maxima, -anomaly, side="right"))
        if at_least:
            return 1000.0 * at_least / len(self.maxima)
        return min(1000.0 / len(self.maxima), self.tail_rate * math.exp(-(anomaly - self.tail_start) / self.tail_scale))
