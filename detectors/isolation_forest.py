"""``isolation_forest``: the behaviour model, for what no rule thought of.

Two models, one per window size (an actor's hour, an actor's day), each an
isolation forest (``detectors.forest``) over the window features of
``detectors.features``, fit on the trailing history of windows in event
time (``history``, 28 days by default) and refit on a schedule
(``refit_every``), always at the close of a local day, with a fixed
``random_state``: a replay of the same events fits the same trees and raises
the same alerts.

- Cold start: windows of the system's warm-up are not learned (baselines are
  still forming and every ratio reads zero); no model, hence no alert, until
  ``min_history`` of learned windows.  A new actor is scored from the start,
  its ratios taken against its peer group's baseline.
- Threshold and severity: calibrated to a budget of alerts per 1,000
  actor-days on the training history (``budget`` for the hourly model,
  ``daily_budget`` for the daily one), not a contamination guess; severity
  follows the score's rank in that history.  The model says "unusual", not
  "malicious": it raises at most ``high``, and ``high`` only when a rule
  found something on the same actor at about the same time (else medium:
  ``alone_max_severity``, applied by the engine).
- Explanations: each alert names the few figures that made the window
  unusual, with the value, the actor's baseline and where it stands among its
  peers in the same window, in a sentence an analyst reads.
- Artefacts: each fitted model is written to the model directory with its
  description (``detectors.model_store``); ``accesswatch models`` lists them.
  After a restart the checkpointed history refits the same model if its
  artefact is gone.

Scoring is one batch per closed period: one pass over the trees for every
window of the hour (or day), never a call per window.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field

from detectors import features, wording
from detectors.base import Detector, DetectorSettings, Finding, Period
from detectors.forest import Budgets, Calibration, ForestParams, WindowForest
from detectors.model_store import FeatureMismatch, ModelArtefact, ModelStore, resolve_dir, version_name
from detectors.training import TrainingHistory
from detectors.windows import WindowStats
from models.alert import Severity
from models.config import Seconds

log = logging.getLogger(__name__)

STATE_VERSION = 1
DAY = 86400.0  # the budget counts actor-days: local calendar days
Scale = Literal["short", "long"]
REFERENCE_ROWS = 4096  # training values kept per feature to tell how rare a value is


class IsolationForestSettings(DetectorSettings):
    # bulk work whose accesses cite a ticket, case or contract is reviewed, not paged as an incident
    documented_max_severity: Severity | None = Severity.MEDIUM
    history: Seconds = 28 * DAY  # trailing event time the models are fit on
    min_history: Seconds = 5 * DAY  # learned history (after the system warm-up) before the first fit
    refit_every: Seconds = 7 * DAY
    n_estimators: Annotated[int, Field(ge=10, le=2000)] = 100
    max_samples: Annotated[int, Field(ge=16, le=100_000)] = 256
    random_state: Annotated[int, Field(ge=0, le=2**32 - 1)] = 7
    # Alerts per 1,000 actor-days at low, medium and high, on the training history: the hourly model's and the
    # daily model's.  An hour is lumpier than a day (one export makes it), so the hourly model is held tighter.
    budget: Budgets = Budgets(low=5.0, medium=0.5, high=0.2)
    daily_budget: Budgets = Budgets(low=5.0, medium=2.0, high=0.5)
    max_training_windows: Annotated[int, Field(ge=1000, le=10_000_000)] = 40_000  # kept per model
    min_training_actor_days: Annotated[int, Field(ge=10)] = 200
    explain: Annotated[int, Field(ge=1, le=10)] = 3  # figures named in an alert
    keep_models: Annotated[int, Field(ge=1, le=10_000)] = 12  # artefacts kept per model on disk
    model_dir: Path | None = None  # relative to the data dir; default <data dir>/models
    # Set by the registry from the product's data dir (not a key to configure): with none, models live in
    # memory and in the checkpoint only.
    data_dir: Path | None = None


@dataclass(slots=True)
class FittedModel:
    """What scores one window size: the forest, its calibration, and reference values for explanations."""

    forest: WindowForest
    calibration: Calibration
    reference: np.ndarray  # per feature, sorted training values (a sample of them): how rare is a value?

    def tail(self, row: np.ndarray) -> np.ndarray:
        """Per feature, the share of training windows at least as high as this one."""
        n = self.reference.shape[0]
        below = np.array([np.searchsorted(self.reference[:, j], row[j], side="left") for j in range(len(row))])
        return 1.0 - below / n


class IsolationForestDetector(Detector[IsolationForestSettings]):
    name = "isolation_forest"
    title = "unusual behaviour (model)"
    partner_scope = False  # an outlier of any kind: the rules beside it say what it was
    Settings = IsolationForestSettings
    scales = ("short", "long")
    imports = ("sklearn.ensemble",)  # by ``WindowForest`` at the first fit
    # Rarity is not harm.  The budget guarantees its share of benign actor-days: at the daily model's 0.5 per
    # 1,000 at high, two or three a month on 5,500 actor-days (a benign day 3.2 times an analyst's usual, in the
    # detection-quality study), however well the threshold is estimated.  So the model pages (high) only when a
    # rule found something on the same actor at about the same time; alone, it goes to review at medium.
    # Not a tighter calibration instead: rank thresholds that rest on one or two training days are noisy, but a
    # tail fitted to the bounded isolation scores agrees with them within their noise; the exponential tail
    # that would lift them does so through its upward bias, and delayed the slow ramp's first medium by one to
    # three days on four seeds of seven.
    alone_max_severity = Severity.MEDIUM

    def __init__(self, settings: IsolationForestSettings) -> None:
        super().__init__(settings)
        config = settings
        self.config = config
        self.params = ForestParams(
            n_estimators=config.n_estimators, max_samples=config.max_samples, random_state=config.random_state
        )
        history_days = config.history / DAY
        self.histories: dict[Scale, TrainingHistory] = {
            scale: TrainingHistory(config.max_training_windows, history_days) for scale in self.scales
        }
        self.models: dict[Scale, FittedModel | None] = {scale: None for scale in self.scales}
        self.artefacts: dict[Scale, ModelArtefact | None] = {scale: None for scale in self.scales}
        self.last_fit: dict[Scale, float | None] = {scale: None for scale in self.scales}  # event time
        self.store = ModelStore(resolve_dir(config.data_dir, config.model_dir)) if config.data_dir is not None else None
        self._cached: tuple[Period, np.ndarray] | None = None

    # -- judging ---------------------------------------------------------------------------------
    def detect(self, period: Period) -> Iterator[Finding]:
        model = self.models[period.scale]
        if model is None or not period.windows:
            return
        X = self._features(period)
        anomaly = model.forest.anomaly(X)  # one pass for the whole period
        flagged = np.nonzero(anomaly >= model.calibration.thresholds[Severity.LOW])[0]
        if not len(flagged):
            return
        groups = features.peer_groups(period)
        group_of = {row: rows for rows in groups.values() for row in rows}
        for row in flagged.tolist():  # Python ints: rows index lists and dicts
            window = period.windows[row]
            severity = model.calibration.severity(float(anomaly[row]))
            assert severity is not None
            yield self._finding(period, window, row, X, group_of[row], model, float(anomaly[row]), severity)

    def _finding(
        self,
        period: Period,
        window: WindowStats,
        row: int,
        X: np.ndarray,
        peers: list[int],
        model: FittedModel,
        anomaly: float,
        severity: Severity,
    ) -> Finding:
        scale: Scale = period.scale
        calibration = model.calibration
        artefact = self.artefacts[scale]
        figures = self._explain(period, window, row, X, [p for p in peers if p != row], model)
        rate = calibration.rate(anomaly)
        days = calibration.actor_days
        budgets = self.config.budget if scale == "short" else self.config.daily_budget
        rarity = _rarity(calibration, anomaly, severity, budgets)
        summary = (
            f"{wording.who(window.actor).capitalize()} {wording.span(window.start, window.end, period.clock.zone)}: "
            f"{rarity}; they {'; '.join(figure['words'] for figure in figures)}."
        )
        tails = model.tail(X[row])
        order = np.lexsort((-X[row], tails))
        evidence: dict[str, Any] = {
            "scale": scale,
            "anomaly_score": round(anomaly, 4),
            "model": artefact.version if artefact else None,
            "training_actor_days": days,
            "expected_per_1000_actor_days": float(f"{rate:.4g}"),
            "explanation": [{k: v for k, v in figure.items() if k != "words"} for figure in figures],
            "features": [
                {"feature": features.FEATURES[j], "value": round(float(X[row, j]), 3), "training_tail": float(tails[j])}
                for j in order[:8]
            ],
            "records": window.records,
            "distinct_customers": window.distinct_customers,
            "events": window.events,
            "egress_records": window.egress_records,
            "records_by_class": dict(sorted(window.class_records.items())),
        }
        # the score is the rarity, comparable between the hourly and the daily model (their anomaly scores are
        # not): the window is as rare as one actor-day in 10 ** score
        rarity_score = math.log10(1000.0 / max(rate, 1e-9))
        return self.finding(window, rarity_score, summary, evidence, severity)

    # -- explanations --------------------------------------------------------------------------------
    def _explain(
        self, period: Period, window: WindowStats, row: int, X: np.ndarray, peers: list[int], model: FittedModel
    ) -> list[dict[str, Any]]:
        """The few figures that made the window unusual: rarest in the training history first."""
        values = X[row]
        tails = model.tail(values)
        chosen: list[str] = []
        for j in np.lexsort((-values, tails)):
            figure = features.figure_of(features.FEATURES[j])
            if values[j] <= 0 or figure in chosen:
                continue
            if chosen and tails[j] > 0.05:
                break  # only what is rare; at least one
            chosen.append(figure)
            if len(chosen) == self.config.explain:
                break
        peer_windows = [period.windows[p] for p in peers]
        return [self._figure(period, window, name, X, row, peers, peer_windows) for name in chosen]

    def _figure(
        self,
        period: Period,
        window: WindowStats,
        name: str,
        X: np.ndarray,
        row: int,
        peers: list[int],
        peer_windows: list[WindowStats],
    ) -> dict[str, Any]:
        when = "that hour" if period.scale == "short" else "that day"
        if name in features.VOLUMES:
            context = features.figure_context(period, window, name, peer_windows)
            words = _VOLUME_WORDS[name].format(wording.count(context.value))
            if context.baseline is not None and context.ratio is not None:
                words += f", {wording.compared(context.value, context.baseline, context.baseline_from or '')}"
            words += _peer_words(window, context.peers_below, context.peers_active, when)
            return {
                "figure": name,
                "value": context.value,
                "baseline": None if context.baseline is None else round(context.baseline, 1),
                "baseline_from": context.baseline_from,
                "ratio": None if context.ratio is None else round(context.ratio, 2),
                "peer_percentile": _percentile(context.peers_below, context.peers_active),
                "peers_below": context.peers_below,
                "peers_active": context.peers_active,
                "words": words,
            }
        column = features.FEATURES.index(name)
        value = _natural(name, float(X[row, column]))
        others = X[peers, column] if peers else np.zeros(0)
        below = int((others < X[row, column]).sum())
        own = self.histories[period.scale].actor_rows(window.actor.id, period.start - self.config.history, period.start)
        baseline = _natural(name, float(np.median(own[:, column]))) if len(own) else None
        words = _count_words(name, value, window)
        if baseline is None:
            words += ", with no history of their own to compare"
        else:
            words += f", where they usually {_count_words(name, baseline, None, usual=True)}"
        words += _peer_words(window, below, len(others), when)
        return {
            "figure": name,
            "value": round(value, 3),
            "baseline": None if baseline is None else round(baseline, 3),
            "baseline_from": "own" if baseline is not None else None,
            "ratio": None,
            "peer_percentile": _percentile(below, len(others)),
            "peers_below": below,
            "peers_active": len(others),
            "words": words,
        }

    # -- learning --------------------------------------------------------------------------------------
    def observe(self, period: Period) -> None:
        if not period.system_ready:
            self._cached = None
            return  # warm-up windows are learned by nobody: their ratios read zero
        scale: Scale = period.scale
        if period.windows:
            X = self._features(period)
            day = period.clock.window_start(period.start, DAY)
            self.histories[scale].add(day, [w.actor.id for w in period.windows], X)
        self._cached = None
        if scale == "long":  # a local day has closed: both sizes' windows of it are in
            for each in self.scales:
                if self._refit_due(each, period.end):
                    self._refit(each, period.end)
            # keep what the current models were fit on (a restart may fit them again), and no more
            fits = [t for t in self.last_fit.values() if t is not None]
            for history in self.histories.values():
                history.evict(min([period.end, *fits]) - self.config.history)

    def _features(self, period: Period) -> np.ndarray:
        if self._cached is not None and self._cached[0] is period:
            return self._cached[1]
        X = features.compute(period)
        self._cached = (period, X)
        return X

    def _refit_due(self, scale: Scale, now: float) -> bool:
        last = self.last_fit[scale]
        if last is not None:
            return now - last >= self.config.refit_every
        first = self.histories[scale].first_day
        return first is not None and now - first >= self.config.min_history

    def _refit(self, scale: Scale, now: float) -> None:
        fitted = self._fit(scale, now)
        if fitted is None:
            return  # too few actor-days yet: tried again when the next day closes
        model, artefact = fitted
        self.last_fit[scale] = now
        self.models[scale] = model
        self.artefacts[scale] = self._save(artefact, model)

    def _fit(self, scale: Scale, now: float) -> tuple[FittedModel, ModelArtefact] | None:
        X, groups, first_day = self.histories[scale].training(now - self.config.history, now)
        actor_days = len(np.unique(groups))
        if actor_days < self.config.min_training_actor_days or first_day is None:
            log.info("isolation_forest %s: %d actor-days of history, not enough to fit", scale, actor_days)
            return None
        forest = WindowForest(**self.params.model_dump()).fit(X)
        budgets = self.config.budget if scale == "short" else self.config.daily_budget
        calibration = Calibration.fit(forest.anomaly(X), groups, budgets)
        step = max(1, math.ceil(len(X) / REFERENCE_ROWS))
        reference = np.sort(X, axis=0)[::step].copy()
        artefact = ModelArtefact(
            detector=self.name,
            scale=scale,
            version=version_name(self.name, scale, now, X.tobytes()),
            trained_from=datetime.fromtimestamp(first_day, UTC),
            trained_to=datetime.fromtimestamp(now, UTC),
            windows=len(X),
            actor_days=actor_days,
            features=list(features.FEATURES),
            params=self.params.model_dump(),
            budgets={s.value: b for s, b in budgets.by_severity().items()},
            thresholds={s.value: t for s, t in calibration.thresholds.items()},
            library={"scikit-learn": _sklearn_version(), "numpy": np.__version__},
        )
        return FittedModel(forest, calibration, reference), artefact

    def _save(self, artefact: ModelArtefact, model: FittedModel) -> ModelArtefact:
        if self.store is None:
            return artefact
        try:
            saved = self.store.save(artefact, model)
            protect = [a.version for a in self.artefacts.values() if a is not None] + [saved.version]
            self.store.prune(self.name, artefact.scale, self.config.keep_models, protect)
            return saved
        except OSError as exc:  # a full disk must not stop detection: the model is in memory and refits on restart
            log.warning("isolation_forest: could not write model %s: %s", artefact.version, exc)
            return artefact

    # -- state ----------------------------------------------------------------------------------------
    def to_state(self) -> dict:
        return {
            "version": STATE_VERSION,
            "features": list(features.FEATURES),
            "last_fit": self.last_fit,
            "history": {scale: history.to_state() for scale, history in self.histories.items()},
            "models": {scale: (a.version if a else None) for scale, a in self.artefacts.items()},
        }

    def load_state(self, state: dict) -> None:
        if state.get("version") != STATE_VERSION or state.get("features") != list(features.FEATURES):
            # windows described by other features cannot train or be scored by this build: start afresh
            log.warning(
                "isolation_forest: refusing the checkpointed history and models: they were made with"
                " %d features and this build computes %d; the models retrain from new history",
                len(state.get("features", [])),
                len(features.FEATURES),
            )
            return
        self.last_fit = {scale: state["last_fit"].get(scale) for scale in self.scales}
        for scale, history in self.histories.items():
            history.load_state(state["history"][scale])
        for scale in self.scales:
            version, trained_to = state["models"].get(scale), self.last_fit[scale]
            if version is not None and trained_to is not None:
                self._restore(scale, version, trained_to)

    def _restore(self, scale: Scale, version: str, trained_to: float) -> None:
        """The model as it was: from its artefact, else fit again on the same history (the same trees)."""
        if self.store is not None:
            try:
                artefact, model = self.store.load(version, features.FEATURES)
                self.models[scale], self.artefacts[scale] = model, artefact
                return
            except FeatureMismatch as exc:
                log.warning("isolation_forest: %s", exc)
            except (OSError, ValueError) as exc:
                log.info("isolation_forest: model %s not loaded (%s); fitting it again from the history", version, exc)
        fitted = self._fit(scale, trained_to)
        if fitted is not None:
            self.models[scale], self.artefacts[scale] = fitted[0], fitted[1]


# -- words ------------------------------------------------------------------------------------------------
_VOLUME_WORDS = {
    "records": "read {} records",
    "customers": "read {} distinct customers",
    "events": "made {} accesses",
    "egress": "exported, downloaded, printed or shared {} records",
    "high": "read {} records of high-sensitivity classes",
}
_SHARES = ("high_share", "unusual_hours")


def _rarity(calibration: Calibration, anomaly: float, severity: Severity, budgets: Budgets) -> str:
    """How rare the window is among the actor-days the model learned from; past them all, why it is no louder.

    A window past every training actor-day is rarer than the history can count, and a budget finer than it
    (medium at 0.5 per 1,000 needs 2,000 actor-days) is extrapolated from the tail (``Calibration``): such a
    window may still be low.  The sentence gives the tail's estimate and what the next severity takes, so that
    "more unusual than any" does not read as a contradiction of the severity beside it.
    """
    days = calibration.actor_days
    rate = calibration.rate(anomaly)
    if anomaly <= calibration.maxima[0]:
        one_in = 1000.0 / rate
        if round(one_in) >= days:  # not "1 in 979 of the 979": the highest of them, said so
            return f"as unusual as the most unusual of the {days:,} actor-days the model learned from"
        return f"as unusual as 1 in {one_in:,.0f} of the {days:,} actor-days the model learned from"
    told = f"more unusual than any of the {days:,} actor-days the model learned from"
    by_severity = budgets.by_severity()
    louder = min((s for s in by_severity if s.rank > severity.rank), key=lambda s: s.rank, default=None)
    if louder is None:
        return told
    return (
        f"{told}, though its estimated 1 in {1000.0 / rate:,.0f} is short of the "
        f"1 in {1000.0 / by_severity[louder]:,.0f} that {louder.value} takes"
    )


def _sklearn_version() -> str:
    import sklearn  # on first use (detectors.forest says why)

    return sklearn.__version__


def _natural(name: str, value: float) -> float:
    """A feature's value in the figure's own units (counts were log1p-scaled, shares were not)."""
    return value if name in _SHARES else math.expm1(value)


def _count_words(name: str, value: float, window: WindowStats | None, usual: bool = False) -> str:
    if name == "denied":
        return f"{'are' if usual else 'were'} refused {wording.counted(value, 'time')}"
    if name == "high_share":
        return f"read {value:.0%} of their records from high-sensitivity classes"
    if name == "unusual_hours":
        return f"{'spend' if usual else 'spent'} {value:.0%} of their active hours in hours they rarely work"
    if name == "resources":
        return f"{'touch' if usual else 'touched'} {wording.counted(value, 'kind')} of resource"
    if name == "systems":
        return f"{'work' if usual else 'worked'} in {wording.counted(value, 'system')}"
    if name == "addresses":
        return f"{'connect' if usual else 'connected'} from {wording.counted(value, 'address', 'addresses')}"
    what = {"new_resources": "resource", "new_addresses": "source_ip", "new_classes": "data_class"}[name]
    noun, plural = {
        "resource": ("resource", None),
        "source_ip": ("address", "addresses"),
        "data_class": ("data class", "data classes"),
    }[what]
    if usual or window is None:
        return f"touch {wording.counted(value, 'new ' + noun, 'new ' + (plural or noun + 's'))}"
    items = sorted(item for kind, item in window.new_items if kind == what)
    shown = ", ".join(items[:3]) + (f" and {len(items) - 3} more" if len(items) > 3 else "")
    return f"touched {wording.counted(value, noun, plural)} new to them ({shown})"


def _peer_group(window: WindowStats, plural: bool = True) -> str:
    """'customer service employees', 'booking agent partner of blue-sky-travel'."""
    actor = window.actor
    kind = {"employee": "employee", "partner": "partner", "service": "service account"}.get(actor.kind.value, "actor")
    who = f"{actor.role.replace('_', ' ')} {kind}" if actor.role else kind
    who += "s" if plural else ""
    return f"{who} of {actor.organization}" if actor.organization and actor.kind.value == "partner" else who


def _peer_words(window: WindowStats, below: int, active: int, when: str) -> str:
    if active == 0:
        return f", with no other {_peer_group(window, plural=False)} active {when}"
    if below == active:
        if active == 1:
            return f", more than the one other {_peer_group(window, plural=False)} active {when}"
        return f", more than every other {_peer_group(window, plural=False)} active {when}"
    return f", more than {below} of the {active} other {_peer_group(window)} active {when}"


def _percentile(below: int, active: int) -> float | None:
    return round(100.0 * below / active, 1) if active else None
