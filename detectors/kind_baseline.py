"""Everyone of their kind's usual: the baseline of an actor with neither its own nor a peer group's.

An actor is judged on its own profile once mature, else on its peer group's
(``ProfileBook.baseline``).  An actor with neither (a role nobody else has,
a group as new as its members, a monthly job that never reaches the warm-up's
active days) was judged by no volume rule at all: a never-seen contractor
exporting 40,000 card records raised nothing.  It is judged here against
everyone of its kind, from what the peer groups already learned: a mature
group's forward-decayed sums (``EwStat``'s sw, swx and swx2) add up to the
sums of all its kind's windows, so the kind's baseline costs nothing per
event or window, only a pass over the groups, once per period and only when
a window asks for it (``detectors.base.Period``).

- Employees and partners' agents: all of the kind's mature groups pooled,
  each as many windows as it learned.  The pooled spread holds the spread
  between roles too, so only a volume far above what the kind does passes
  the rules' gates.
- Service accounts: the busiest mature service's usual, figure by figure, not
  the pool.  Services differ by orders of magnitude (a nightly batch reads
  100,000 records an hour, a lookup API a few), so a pooled mean is no
  service's and its spread so wide that nothing passes a gate.  Against the
  busiest, an integration the size of those already running is quiet; a job
  many times larger than any, or the first export where no service exports,
  is news.

Its usual peak hour is pooled (or the busiest's) the same way.  Work that cites
its purpose (``DetectorSettings.documents``) judged on this basis is not raised
(``Finding.explained``): a month-end report with its ticket reference is what
an actor without history usually is, and "more than employees usually read" is
weak evidence beside it.  Without the purpose, it alerts at full severity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from detectors.profiles import METRICS, SLOT_METRICS, DecayedQuantiles, EwStat, Profile, ProfileBook
from models.event import ActorKind

# the basis each kind is judged on, as ``Expectation.basis`` and the evidence's ``baseline_from`` name it
KIND_BASIS = {
    ActorKind.EMPLOYEE: "employees",
    ActorKind.PARTNER: "partners",
    ActorKind.SERVICE: "busiest service",
}
KIND_BASES = frozenset(KIND_BASIS.values())


@dataclass(frozen=True, slots=True)
class KindBaseline:
    """One kind's usual at one scale: a stat per metric, and (hours) a usual peak per ``SLOT_METRICS`` metric."""

    basis: str
    stats: dict[str, EwStat]
    peaks: dict[str, float]


def kind_baseline(
    profiles: ProfileBook,
    kind: ActorKind,
    scale: Literal["short", "long"],
    g: float,
    g_slow: float,
    peak_quantile: float,
) -> KindBaseline | None:
    """The kind's usual from its mature peer groups, None when it has none (or kinds are not a peer field).

    ``g`` and ``g_slow``: the period's forward-decay weights, of its scale and of days; ``peak_quantile``: the
    quantile of the days' busiest hours that is the usual peak (``detectors.base.USUAL_PEAK_QUANTILE``).
    """
    warmup = profiles.actor_warmup_days
    groups = [
        group
        for key, group in profiles.peers.items()
        if group.active_days >= warmup and profiles.group_kind(key) == kind.value
    ]
    if not groups:
        return None
    hourly = scale == "short"
    busiest = kind is ActorKind.SERVICE
    stats = {
        metric: _busiest_stat(groups, metric, hourly, g) if busiest else _pooled_stat(groups, metric, hourly)
        for metric in METRICS
    }
    peaks = {}
    if hourly:  # only an hour is compared with a usual peak
        peak_of = _busiest_peak if busiest else _pooled_peak
        for metric in SLOT_METRICS:
            peak = peak_of(groups, metric, peak_quantile, warmup, g_slow)
            if peak is not None:
                peaks[metric] = peak
    return KindBaseline(KIND_BASIS[kind], stats, peaks)


def _pooled_stat(groups: list[Profile], metric: str, hourly: bool) -> EwStat:
    pooled = EwStat()
    for group in groups:
        stat = (group.hourly if hourly else group.daily)[metric]
        pooled.sw += stat.sw
        pooled.swx += stat.swx
        pooled.swx2 += stat.swx2
    return pooled


def _busiest_stat(groups: list[Profile], metric: str, hourly: bool, g: float) -> EwStat:
    """The stat of the group with the highest usual among those seen about once or more (``EwStat.weight``)."""
    seen = [stat for group in groups if (stat := (group.hourly if hourly else group.daily)[metric]).sw >= g]
    return max(seen, key=lambda stat: stat.mean, default=EwStat())


def _pooled_peak(groups: list[Profile], metric: str, quantile: float, min_days: float, g_slow: float) -> float | None:
    pooled = DecayedQuantiles()
    for group in groups:
        peaks = group.peak_hour.get(metric)
        if peaks is not None:
            for bucket, weight in peaks.weights.items():
                pooled.weights[bucket] = pooled.weights.get(bucket, 0.0) + weight
    return pooled.quantile(quantile) if pooled.weight(g_slow) >= min_days else None


def _busiest_peak(groups: list[Profile], metric: str, quantile: float, min_days: float, g_slow: float) -> float | None:
    found = [
        peaks.quantile(quantile)
        for group in groups
        if (peaks := group.peak_hour.get(metric)) is not None and peaks.weight(g_slow) >= min_days
    ]
    return max(found, default=None)
