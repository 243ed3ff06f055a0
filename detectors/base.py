"""The one interface every detector implements.

A detector is a small class: it declares its name, its settings model and
which window it judges, and turns a closed period (every actor's window for
one hour, or one day) into findings.  The engine owns time, state and alert
merging; a detector only judges.  Adding one is one file and its entry in
``detectors.registry`` (its import, and its line in ``DETECTORS``).
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from statistics import median
from typing import Any, ClassVar, Generic, Literal, TypeVar

from pydantic import ConfigDict, Field, StrictBool, field_validator

from detectors.classify import Classifier
from detectors.kind_baseline import KIND_BASES, KindBaseline, kind_baseline
from detectors.profiles import SLOT_METRICS, SPARSE_METRICS, EwStat, Profile, ProfileBook
from detectors.windows import ActorRef, LocalClock, WindowStats
from models.alert import Severity
from models.config import Organisation
from models.event import ActorKind
from models.settings_base import SettingsModel

DOCUMENTED_SHARE = 0.9  # of the window's records read under a stated purpose
# how a documented finding's summary quotes its purposes: the dashboard masks them there (``Masker.summary``)
CITED = "; the accesses cite "
# An hour is also compared with the busiest hour of the actor's busier days (the
# upper quartile over its days): work that comes in bursts on one day in four or
# more, such as a partner agent's exports, is judged by its bursts; a weekly job,
# on one working day in five, is not, and moved to another day and hour it alerts
USUAL_PEAK_QUANTILE = 0.75
# ... and with its peer group's, whichever is higher: an hour that is routine for
# the role is not bulk, however few of the actor's own days its quartile rests on
# (in the days after its warm-up, a quiet first week sets it).  The group's counts
# once it is a group (three members or more) and has seen as many member-days as
# an actor's own baseline needs days.
PEER_PEAK_MIN_MEMBERS = 3
_NEVER = EwStat()  # the baseline of something never seen: zero, with the floor spread


class DetectorSettings(SettingsModel):
    """Settings every detector has; each detector extends this with its own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: StrictBool = True
    # Bulk work whose accesses nearly all cite a purpose (a ticket, case or
    # contract reference) is documented: it still alerts, for review, but
    # at most at this severity.  None: a purpose changes nothing.
    documented_max_severity: Severity | None = None
    # What a purpose must look like to document the work: a reference (a ticket, case or contract number, with
    # a digit, no spaces), not any text.  The log's writer chooses its purposes: "x" must not lower a severity.
    # It checks the form only, not that the ticket exists.
    documented_purpose: str = r"(?=.*\d)[A-Za-z0-9][A-Za-z0-9._:/#-]{2,63}"
    # score thresholds for medium, high and critical; below the first is low
    severity_scores: list[float] = Field(default=[3.0, 5.0, 7.0], min_length=3, max_length=3)

    @field_validator("severity_scores")
    @classmethod
    def _ascending(cls, value: list[float]) -> list[float]:
        # here, not only in the Field: a detector that restates the default
        # with its own Field must not lose the rule
        if len(value) != 3 or value != sorted(value):
            raise ValueError("three ascending scores, for medium, high and critical")
        return value

    @field_validator("documented_purpose")
    @classmethod
    def _a_pattern(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"a regular expression ({exc})") from None
        return value

    def documents(self, purposes: Iterable[str]) -> bool:
        """Whether the purposes a window kept (a few) all have the form of a reference."""
        pattern = _compiled(self.documented_purpose)
        return all(pattern.fullmatch(purpose) for purpose in purposes)

    def severity_for(self, score: float) -> Severity:
        return Severity.from_rank(sum(score >= threshold for threshold in self.severity_scores))


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


@dataclass(frozen=True, slots=True)
class Finding:
    """What a detector saw about one actor in one span of event time."""

    detector: str
    actor: ActorRef
    window_start: float
    window_end: float
    score: float
    severity: Severity
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)
    # documented work judged only against everyone of the actor's kind: the engine raises no alert
    # (``detectors.kind_baseline``)
    explained: bool = False


@dataclass(slots=True)
class Expectation:
    """What an actor would be expected to do in a window, and how surprising its figure is."""

    value: float
    expected: float  # on the natural scale
    ratio: float  # (value + 1) / (expected + 1), after the population allowance
    z: float  # spreads above the expectation on the log scale, after the allowance
    # "own", "own rhythm" (the hour of the week's), "own weekday" (the day of the week's), "peers", or one of
    # ``KIND_BASES`` (everyone of the actor's kind: ``detectors.kind_baseline``)
    basis: str
    population_factor: float
    # for an hour: the busiest hour of the actor's busier days, or of its peers' if higher (None: not known)
    usual_peak: float | None = None
    score_cap: float = math.inf  # no louder than this (``detectors.volume.unusual_volume``: past the usual peak)

    @property
    def score(self) -> float:
        """How loud: log2 of the times the usual (at the default severity scores, a doubling is half a step), at
        most ``score_cap``."""
        return min(math.log2(max(self.ratio, 1.0)), self.score_cap)

    @property
    def peak_ratio(self) -> float:
        """How many times the usual peak hour, after the population allowance (inf when unknown)."""
        if self.usual_peak is None:
            return math.inf
        return (self.value + 1.0) / (self.usual_peak + 1.0) / self.population_factor


class Period:
    """Every actor's window for one closed span, with what the detectors share.

    The population allowance answers "is everyone busy today?": the median,
    over the actor's peers active in the same window (else over everybody),
    of how many times their usual volume they read.  A sale day that triples
    everyone's reads raises nobody's alert.
    """

    def __init__(
        self,
        scale: Literal["short", "long"],
        start: float,
        end: float,
        windows: list[WindowStats],
        profiles: ProfileBook,
        clock: LocalClock,
        organisation: Organisation,
        classifier: Classifier,
        system_ready: bool,
    ) -> None:
        self.scale = scale
        self.start = start
        self.end = end
        self.windows = windows
        self.profiles = profiles
        self.clock = clock
        self.organisation = organisation
        self.classifier = classifier
        # past the system-wide warm-up (``baselines.system_warmup``); before it, only a detector that judges during
        # it (``Detector.judges_during_warmup``) is shown the period, with no baseline to compare with yet
        self.system_ready = system_ready
        self.slot = clock.hour_of_week(start)
        # forward-decay weights of this moment: a stat's decayed count is its sum over these
        self.g_fast, self.g_slow = profiles.weights_at(end)
        self._g = self.g_fast if scale == "short" else self.g_slow
        self._factors: dict[str, tuple[dict[str, float], float]] = {}
        self._mature: list[tuple[WindowStats, dict[str, EwStat], str]] | None = None
        self._peer_peaks: dict[tuple[str, str], float | None] = {}  # (peer key, metric) -> the group's usual peak
        self._kinds: dict[ActorKind, KindBaseline | None] = {}  # found once a window of the kind needs it

    def _stat(self, profile: Profile, metric: str) -> EwStat:
        return (profile.hourly if self.scale == "short" else profile.daily)[metric]

    def expectation(
        self, window: WindowStats, metric: str, value: float, min_ratio: float = 0.0, min_z: float = -math.inf
    ) -> Expectation | None:
        """How ``value`` compares with what this actor (else its peers, else everyone of its kind) usually does here.

        None when there is no baseline to compare with (no group of the
        actor's kind is past its warm-up yet).  For a sparse figure that neither the actor
        nor its peers ever had, the expectation is zero: a first export is
        news.  None too when the value falls short of ``min_ratio`` or
        ``min_z`` before the population allowance, which only lowers both
        (its factor is never below 1): the allowance is a pass over the
        period's windows per metric, and a volume rule asks about every
        window past its floor, nearly all of them far from its gates.
        """
        profile, basis = self.profiles.baseline(window.actor)
        kind: KindBaseline | None = None
        if profile is not None:
            stat = self._stat(profile, metric)
        else:
            kind = self.kind_baseline(window.actor.kind)
            if kind is None:
                return None
            stat, basis = kind.stats[metric], kind.basis
        own = profile if basis == "own" else None  # the actor's own profile, for its usual peak
        if stat.weight(self._g) < 1.0 and metric in SPARSE_METRICS and basis == "own":
            peer = self.profiles.peer(window.actor)
            if peer is not None and len(peer.members) > 1:
                peer_stat = self._stat(peer, metric)
                if peer_stat.weight(self._g) >= 1.0:
                    profile, stat, basis = peer, peer_stat, "peers"
        if stat.weight(self._g) < 1.0:
            if metric not in SPARSE_METRICS:
                return None
            stat = _NEVER
        mean, sd = stat.mean, stat.sd
        if profile is not None and metric in SLOT_METRICS and basis == "own":
            # a routine weekly export lives in its hour (and day) of the week: expect it there
            if self.scale == "short":
                slot = profile.rhythm.slot_volume(self.slot, metric, self.g_slow)
            else:
                slot = profile.weekdays.get(self.slot // 24, {}).get(metric)
                slot = slot if slot is not None and slot.weight(self.g_slow) >= 0.5 else None
            if slot is not None and slot.mean > mean:
                rhythm = "own rhythm" if self.scale == "short" else "own weekday"
                mean, sd, basis = slot.mean, max(sd, slot.sd), rhythm
        log_value = math.log1p(max(value, 0.0))
        if (value + 1.0) / (math.expm1(mean) + 1.0) < min_ratio or (log_value - mean) / sd < min_z:
            return None  # the ratio and z below, before dividing by the factor and taking its log away
        factor = self.population_factor(window.actor, metric)
        allowance = math.log(factor)
        z = (log_value - mean - allowance) / sd
        ratio = (value + 1.0) / (math.expm1(mean) + 1.0) / factor
        peak = None
        if self.scale == "short":
            peak = kind.peaks.get(metric) if kind is not None else self._usual_peak(window.actor, own, metric)
        return Expectation(value, math.expm1(mean), ratio, z, basis, factor, peak)

    def kind_baseline(self, kind: ActorKind) -> KindBaseline | None:
        """Everyone of the kind's usual at this period's scale (``detectors.kind_baseline``), found at most once a
        period and only when a window of an actor with no baseline of its own or its peers' asks for it."""
        if kind not in self._kinds:
            self._kinds[kind] = kind_baseline(
                self.profiles, kind, self.scale, self._g, self.g_slow, USUAL_PEAK_QUANTILE
            )
        return self._kinds[kind]

    def _usual_peak(self, actor: ActorRef, own: Profile | None, metric: str) -> float | None:
        """The busiest hour of the actor's busier days, or its peer group's if higher; the group's alone while
        the actor is judged on its peers (``own`` None)."""
        key = self.profiles.peer_key(actor)
        if own is None:  # ``ProfileBook.baseline`` vouched for the group: its peak counts from a day on, as before
            group = self.profiles.peers.get(key)
            return _quantile_of(group, metric, 1.0, self.g_slow) if group is not None else None
        peak = _quantile_of(own, metric, 1.0, self.g_slow)
        peers = self._peer_peaks.get((key, metric), _UNSEEN)
        if peers is _UNSEEN:  # once per group and period: the histograms change only when a day closes
            group = self.profiles.peers.get(key)
            peers = None
            if group is not None and len(group.members) >= PEER_PEAK_MIN_MEMBERS:
                peers = _quantile_of(group, metric, self.profiles.actor_warmup_days, self.g_slow)
            self._peer_peaks[(key, metric)] = peers
        if peers is None or (peak is not None and peak >= peers):
            return peak
        return peers

    def population_factor(self, actor: ActorRef, metric: str) -> float:
        groups, overall = self._factors_for(metric)
        return groups.get(self.profiles.peer_key(actor), overall)

    def _factors_for(self, metric: str) -> tuple[dict[str, float], float]:
        found = self._factors.get(metric)
        if found is None:
            by_group: dict[str, list[float]] = {}
            everyone: list[float] = []
            g, expm1, value_of = self._g, math.expm1, _METRIC_OF[metric]
            for window, stats, key in self._mature_windows():
                stat = stats[metric]
                if stat.sw / g < 1.0:  # EwStat.weight
                    continue
                ratio = (value_of(window) + 1.0) / (expm1(stat.swx / stat.sw) + 1.0)  # EwStat.mean: sw > 0 here
                everyone.append(ratio)
                found_group = by_group.get(key)
                if found_group is None:
                    by_group[key] = [ratio]
                else:
                    found_group.append(ratio)
            overall = max(1.0, median(everyone)) if len(everyone) >= 5 else 1.0
            groups = {key: max(1.0, median(values)) for key, values in by_group.items() if len(values) >= 3}
            found = self._factors[metric] = (groups, overall)
        return found

    def _mature_windows(self) -> list[tuple[WindowStats, dict[str, EwStat], str]]:
        """The windows of actors past their warm-up, with their stats of this scale and their peer key.

        Found once per period: the allowance of each metric a rule asks about is a pass over them.
        """
        if self._mature is None:
            # the look-ups bound once, outside the loop
            actors, warmup, peer_key = self.profiles.actors, self.profiles.actor_warmup_days, self.profiles.peer_key
            hourly = self.scale == "short"
            mature = self._mature = []
            for window in self.windows:
                own = actors.get(window.actor.id)
                if own is None or own.active_days < warmup:
                    continue
                mature.append((window, own.hourly if hourly else own.daily, peer_key(window.actor)))
        return self._mature

    def in_business_hours(self, ts: float) -> bool:
        local = ts + self.clock.offset(ts)
        weekday = int(((local // 86400) + 3) % 7)
        hour = int(local % 86400 // 3600)
        org = self.organisation
        return weekday in org.business_days and org.business_hours_start <= hour < org.business_hours_end


_UNSEEN: Any = object()  # not yet looked up in this period


def _quantile_of(profile: Profile, metric: str, min_weight: float, g_slow: float) -> float | None:
    """The profile's usual peak hour of ``metric`` (``USUAL_PEAK_QUANTILE``), once seen on ``min_weight`` days."""
    peaks = profile.peak_hour.get(metric)
    if peaks is None or peaks.weight(g_slow) < min_weight:
        return None
    return peaks.quantile(USUAL_PEAK_QUANTILE)


# a window's figure of each metric, as ``profiles.metric_values`` reads it
_METRIC_OF: dict[str, Callable[[WindowStats], float]] = {
    "records": lambda window: window.records,
    "customers": lambda window: len(window.customers),
    "egress": lambda window: window.egress_records,
    "high": lambda window: window.high_records,
    "denied": lambda window: window.denied,
    "events": lambda window: window.events,
}


SettingsT = TypeVar("SettingsT", bound=DetectorSettings)


class Detector(ABC, Generic[SettingsT]):
    """Base of every detector: ``detect`` turns a closed period into findings.

    Generic in its settings (``class BulkRead(Detector[BulkReadSettings])``): ``self.settings`` is its own model.

    A finding does more than raise an alert: the actor's window it was found in is *suspect*, and the baselines
    (``detectors.profiles.ProfileBook``: the actor's own and its peer group's) learn it at a tenth of a normal
    window's weight, doubling with each further day the actor is flagged (``profiles.suspect_weight``), so an
    attack does not become its own baseline.  So every detector's findings shape every other detector's
    baselines: a noisy rule slows everyone's learning of the actors it flags.  A detector whose findings say
    nothing about whether the window is normal work (``marks_window_suspect = False``) leaves them learned at
    full weight.
    """

    name: ClassVar[str]
    # what people call it, where the pages name it (``dashboard.explain.detector_title``): "large reads" for
    # bulk_read; None: its name, its underscores as spaces
    title: ClassVar[str | None] = None
    Settings: ClassVar[type[DetectorSettings]] = DetectorSettings
    scales: ClassVar[tuple[Literal["short", "long"], ...]] = ("short",)
    # The highest severity a finding of this detector reaches on its own (None: no limit).  Above it, a detector
    # without such a limit (a rule) must have found something, at medium or more, on the same actor at about the
    # same time (``detectors.engine.DetectionEngine``), else the finding is lowered to it.
    alone_max_severity: ClassVar[Severity | None] = None
    # Whether its finding about a partner's agent means reading outside the partner's usual scope (new data,
    # hours, volumes): the Compliance page lists those (``dashboard.queries.compliance``).  Not for detectors
    # of refused access, silent accounts or the model's outliers.
    partner_scope: ClassVar[bool] = True
    # Whether ``detect`` is also called in the system's warm-up (the first ``baselines.system_warmup`` of event
    # time), when there is no baseline yet (``period.system_ready`` False): for a rule that needs none (a hard
    # limit, a declared list), else it is blind in a deployment's first week, whose hours are never judged later.
    judges_during_warmup: ClassVar[bool] = False
    # Whether its findings make the actor's window suspect, learned by the baselines at reduced weight (above).
    marks_window_suspect: ClassVar[bool] = True
    # heavy modules it imports on first use: a detection worker imports them ahead, while it waits for
    # its engine (``ingest.detection_worker``), not while batches wait for it
    imports: ClassVar[tuple[str, ...]] = ()

    def __init__(self, settings: SettingsT) -> None:
        self.settings = settings

    @abstractmethod
    def detect(self, period: Period) -> Iterable[Finding]:
        """Findings for the actors of one closed period; called once the system is past warm-up (and during it
        too if ``judges_during_warmup``: ``period.system_ready`` tells which)."""

    def observe(self, period: Period) -> None:  # most detectors learn nothing of their own
        """Called for every closed period, warm-up included, after ``detect``: learn from it."""

    def to_state(self) -> Any:
        """The detector's own learned state, as msgpack encodes it (``detectors.state_codec``: dicts, lists,
        strings, numbers; no sets), or None: it keeps none."""
        return None

    def load_state(self, state: Any) -> None:
        """Restore what ``to_state`` returned."""

    def touch_records_for(self) -> Callable[[ActorRef], bool] | None:
        """Which actors' windows keep their records by the classes each access touched (``WindowStats.touch_records``,
        a figure an access that most detectors do without): asked by the engine of each window it opens.  None (the
        default): no actor's."""
        return None

    def may_grow(self, actor_id: str) -> bool:
        """Whether a later finding about the actor may still continue this detector's alert on it, however long
        after its window (its alert is then kept open to growth: ``detectors.alerts.AlertBook.expire``)."""
        return False

    def finding(
        self,
        window: WindowStats,
        score: float,
        summary: str,
        evidence: dict[str, Any],
        severity: Severity | None = None,
    ) -> Finding:
        """A finding over ``window``, with the sample events and standard figures filled in."""
        evidence = {
            **evidence,
            "event_ids": window.sample_event_ids(),
        }
        severity = severity or self.settings.severity_for(score)
        cap = self.settings.documented_max_severity
        documented = (
            cap is not None and window.documented_share >= DOCUMENTED_SHARE and self.settings.documents(window.purposes)
        )
        # judged only against everyone of its kind, documented work is no news (``detectors.kind_baseline``)
        explained = documented and evidence.get("baseline_from") in KIND_BASES
        # marked and cited whether or not the cap lowered it: a documented finding that scored medium on its own
        # is the same month-end job, and the pager holds back incidents of documented work alone
        # (``notify.page_documented``), which it tells by this mark (``detectors.incidents``)
        if documented and cap is not None:
            severity = min(severity, cap, key=lambda level: level.rank)
            purposes = sorted(window.purposes)
            evidence["documented"] = {"share": round(window.documented_share, 3), "purposes": purposes}
            summary = f"{summary.rstrip('.')}{CITED}{', '.join(purposes[:2])}."
        return Finding(
            detector=self.name,
            actor=window.actor,
            window_start=window.start,
            window_end=window.end,
            score=round(score, 3),
            severity=severity,
            summary=summary,
            evidence=evidence,
            explained=explained,
        )
