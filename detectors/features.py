"""Per-actor window features for the behaviour model, computed from a closed period.

One row per window (an actor's hour, or an actor's day), one column per
feature of ``FEATURES``, as a float32 matrix: what the isolation forest is
fit on and scores.  Every column is a figure a person can read back, on a
scale where "how many times more" is the unit, and where more is more
unusual (a quiet hour is not a finding, so nothing goes below zero):

- the volumes: records read, distinct customers, accesses, records exported
  or downloaded, records of high-sensitivity classes, as ``log1p``;
- the three main volumes (records, customers, accesses) against the actor's
  own trailing baseline, as the volume rules judge it (its rhythm for this
  hour of the week or weekday where it has one; its peers' while it is new;
  after the allowance for a population-wide busy day): as log2 of the ratio,
  and in spreads of the actor's own variability (an actor whose work is
  lumpy is less surprising at 5x than a steady one); and against the median
  of its peer group active in the same window, as log2 of the ratio;
- refusals, the high-sensitivity share of the records read;
- breadth: kinds of resource, systems and source addresses, and how many
  resource kinds, addresses and data classes are new to the actor;
- the share of the window's active hours the actor (else its peers) usually
  does not work.

Records per data class are not columns: measured on the simulated month,
seven more heavy-tailed columns in which scenarios are rarely extreme
diluted the forest enough to miss the slow ramp at medium on two seeds of
three; the high-sensitivity share and the new-class count carry what the
model needs, and an alert's evidence lists the records by class.  For the
same reason the sparse volumes (exports, high-sensitivity records) enter as
volumes only: their ratios to a baseline are mostly "none versus some"
noise, and the ``egress`` and ``sensitive_access`` rules judge them.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from detectors.base import Period
from detectors.profiles import SD_FLOOR, SLOT_COUNT, SLOT_METRICS, Profile
from detectors.windows import WindowStats

# ``Period.expectation`` metric names of the volumes, in column order.
VOLUMES = ("records", "customers", "events", "egress", "high")
RATIO_VOLUMES = ("records", "customers", "events")
COUNTS = ("denied", "high_share", "resources", "systems", "addresses", "new_resources", "new_addresses", "new_classes")
FEATURES: tuple[str, ...] = (
    *VOLUMES,
    *(f"{metric}_{kind}" for metric in RATIO_VOLUMES for kind in ("vs_own", "z_own", "vs_peers")),
    *COUNTS,
    "unusual_hours",
)
RATIO_CAP = 16.0  # log2 or spreads: 65,000 times the usual is as unusual as it gets
MIN_PEERS = 3  # active members of a peer group in one window before their median means anything
LN2 = math.log(2.0)
MIN_RHYTHM_WINDOWS = 5.0  # a rhythm seen over fewer active windows (decayed) says little about usual hours


def volume_values(window: WindowStats) -> tuple[float, float, float, float, float]:
    return (
        float(window.records),
        float(window.distinct_customers),
        float(window.events),
        float(window.egress_records),
        float(window.high_records),
    )


def figure_of(feature: str) -> str:
    """The figure a feature is about: ``records_vs_peers`` and ``records_z_own`` are both about records."""
    for suffix in ("_vs_own", "_z_own", "_vs_peers"):
        if feature.endswith(suffix):
            return feature[: -len(suffix)]
    return feature


def compute(period: Period) -> np.ndarray:
    """The feature matrix of every window in the period, rows in ``period.windows`` order."""
    windows = period.windows
    if not windows:
        return np.zeros((0, len(FEATURES)), dtype=np.float32)
    rows = _Rows(period)
    n = len(windows)
    logs = np.log1p(_floats(rows.volumes).reshape(n, len(VOLUMES)))
    ratio_logs = logs[:, : len(RATIO_VOLUMES)]
    g = period.g_fast if period.scale == "short" else period.g_slow
    ids = _group_ids(rows.groups, n)
    own, own_z = _own_ratios(rows, ratio_logs, g, period.g_slow, ids)
    peers = _peer_ratios(period, ratio_logs, rows.groups, ids)
    counts = _floats(rows.counts).reshape(n, len(COUNTS) + 1)
    columns = [logs]
    for col in range(len(RATIO_VOLUMES)):
        columns.append(np.column_stack((own[:, col], own_z[:, col], peers[:, col])))
    columns.append(np.log1p(counts[:, :1]))  # denied
    columns.append(counts[:, 1:2])  # high_share
    columns.append(np.log1p(counts[:, 2:8]))  # breadth and first touches
    columns.append(counts[:, 8:9])  # unusual_hours
    matrix = np.hstack(columns)
    np.clip(matrix, 0.0, RATIO_CAP, out=matrix)
    return matrix.astype(np.float32)


def _floats(values: list[float]) -> np.ndarray:
    """``np.array(values, dtype=np.float64)`` (read-only): packed by ``struct``, at under half the cost a number."""
    return np.frombuffer(struct.pack(f"{len(values)}d", *values))


class _Rows:
    """What ``compute`` needs of each window, gathered in one pass over the period, as flat lists row after row.

    Every window is visited once for everything (its volumes, peer group, baseline, the sums behind its
    own ratios, its counts): the pass is the cost, and setting numpy items one by one would cost more than
    it.  The figures are those of ``volume_values``, ``peer_groups``, ``ProfileBook.baseline``,
    ``Period.expectation`` (before the allowance) and ``unusual_hours_share``, computed the same way; the
    expectation's arithmetic is done on the gathered sums, a column at a time (``expectations``): the same
    IEEE operations in the same order as ``EwStat.mean`` and ``.sd``, so the same floats, in a few numpy
    operations for the period instead of some twenty Python statements a window.
    """

    __slots__ = ("counts", "groups", "own", "slot_sums", "sums", "volumes")

    def __init__(self, period: Period) -> None:
        self.volumes: list[float] = []  # VOLUMES
        self.groups: dict[str, list[int]] = {}  # ``peer_groups``
        # per RATIO_VOLUMES, the baseline's (sw, swx, swx2), zeros without one; per _SLOT_VOLUMES, those of the
        # actor's own weekly slot (its hour of the week, or weekday), zeros when it has none or is judged on its
        # peers; and whether the baseline is the actor's own
        self.sums: list[float] = []
        self.slot_sums: list[float] = []
        self.own: list[bool] = []
        self.counts: list[float] = []  # COUNTS, then unusual_hours
        short = period.scale == "short"
        g_slow = period.g_slow
        profiles = period.profiles
        actors, peer_profiles, warmup, peer_key = (
            profiles.actors,
            profiles.peers,
            profiles.actor_warmup_days,
            profiles.peer_key,
        )
        weekday, slot_of_week = period.slot // 24, period.slot
        rhythm_floor = MIN_RHYTHM_WINDOWS * g_slow
        # an hour's windows share its hour of the week, and the hours the usual level looks at
        hour_levels = _HOUR_LEVELS[slot_of_week] if short else None
        volumes, groups, counts = self.volumes, self.groups, self.counts
        sums, slot_sums, owns = self.sums, self.slot_sums, self.own
        no_sums, no_slot_sums = (0.0,) * (3 * len(RATIO_VOLUMES)), (0.0,) * (3 * len(_SLOT_VOLUMES))
        for row, window in enumerate(period.windows):
            actor = window.actor
            records = window.records
            volumes += (
                float(records),
                float(len(window.customers)),
                float(window.events),
                float(window.egress_records),
                float(window.high_records),
            )
            key = peer_key(actor)
            found = groups.get(key)
            if found is None:
                groups[key] = [row]
            else:
                found.append(row)
            # ProfileBook.baseline: the actor's own profile once mature, else its peers'
            profile = actors.get(actor.id)
            own = profile is not None and profile.active_days >= warmup
            owns.append(own)
            if not own:
                slot_sums += no_slot_sums
                profile = peer_profiles.get(key)
                if profile is None or profile.active_days < warmup or len(profile.members) <= 1:
                    profile = None
            unusual = 0.0  # unusual_hours_share
            if profile is None:
                sums += no_sums
            else:
                stats = profile.hourly if short else profile.daily
                # RATIO_VOLUMES, in their order, spelled out: this runs for every window
                records_stat, customers_stat, events_stat = stats["records"], stats["customers"], stats["events"]
                sums += (
                    records_stat.sw,
                    records_stat.swx,
                    records_stat.swx2,
                    customers_stat.sw,
                    customers_stat.swx,
                    customers_stat.swx2,
                    events_stat.sw,
                    events_stat.swx,
                    events_stat.swx2,
                )
                if own:
                    # a routine weekly export lives in its hour (and day) of the week: expect it there
                    slot_stats = profile.rhythm.volume.get(slot_of_week) if short else profile.weekdays.get(weekday)
                    if slot_stats is None:
                        slot_sums += no_slot_sums
                    else:
                        for metric in _SLOT_VOLUMES:
                            slot = slot_stats.get(metric)
                            slot_sums += (slot.sw, slot.swx, slot.swx2) if slot is not None else (0.0, 0.0, 0.0)
                rhythm = profile.rhythm
                if rhythm.observed_at_least(rhythm_floor):
                    if hour_levels is not None:
                        unusual = 1.0 - hour_levels.level(rhythm.activity, rhythm.busiest)
                    elif window.hours:
                        slots = window.hours
                        levels = usual_levels(rhythm.activity, slots, rhythm.busiest)
                        unusual = sum(1.0 - level for level in levels) / len(slots)
            new_resources = new_addresses = new_classes = 0
            if window.new_items:
                for what, _ in window.new_items:
                    if what == "resource":
                        new_resources += 1
                    elif what == "source_ip":
                        new_addresses += 1
                    else:
                        new_classes += 1
            counts += (
                window.denied,
                window.high_records / records if records else 0.0,
                len(window.resource_kinds),
                len(window.systems),
                len(window.ips),
                new_resources,
                new_addresses,
                new_classes,
                unusual,
            )

    def expectations(self, g: float, g_slow: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per window and RATIO_VOLUMES: the expectation's mean and spread on the log scale, whether there is one
        (its weight at least ``g``, the period's), and the actor's own mean, NaN unless the baseline is the
        actor's own (what the allowance compares), as the loop over each window computed them: ``EwStat.mean``
        and ``.sd``, and the weekly slot's (``Rhythm.slot_volume``, or the weekday's, seen about once or more)
        where it is the higher."""
        n = len(self.own)
        sums = _floats(self.sums).reshape(n, len(RATIO_VOLUMES), 3)
        known = sums[:, :, 0] >= g
        mean, sd = _mean_and_sd(sums, known)
        own_means = np.where(known & np.array(self.own, dtype=bool)[:, None], mean, np.nan)
        slot_sums = _floats(self.slot_sums).reshape(n, len(_SLOT_VOLUMES), 3)
        seen = slot_sums[:, :, 0] >= 0.5 * g_slow  # zeros, never seen, where there is no own slot
        slot_mean, slot_sd = _mean_and_sd(slot_sums, seen)
        usual_mean, usual_sd = mean[:, _SLOT_COLUMNS], sd[:, _SLOT_COLUMNS]
        higher = seen & (slot_mean > usual_mean)
        expected, spreads = mean.copy(), sd.copy()
        expected[:, _SLOT_COLUMNS] = np.where(higher, slot_mean, usual_mean)
        spreads[:, _SLOT_COLUMNS] = np.where(higher, np.maximum(usual_sd, slot_sd), usual_sd)
        return np.where(known, expected, 0.0), np.where(known, spreads, 1.0), known, own_means


# the ratio volumes a weekly slot keeps too (``SLOT_METRICS``), and their columns among RATIO_VOLUMES
_SLOT_VOLUMES = tuple(metric for metric in RATIO_VOLUMES if metric in SLOT_METRICS)
_SLOT_COLUMNS = [RATIO_VOLUMES.index(metric) for metric in _SLOT_VOLUMES]


def _mean_and_sd(sums: np.ndarray, used: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``EwStat.mean`` and ``.sd`` of stats given as their (sw, swx, swx2) along the last axis: the same
    operations, so the same floats, where ``used``; elsewhere whatever a weight of 1 gives (no division by 0)."""
    sw = np.where(used, sums[..., 0], 1.0)
    swx, swx2 = sums[..., 1], sums[..., 2]
    mean = swx / sw
    return mean, np.maximum(np.sqrt(np.maximum(swx2 / sw - mean * mean, 0.0)), SD_FLOOR)


class _HourLevels:
    """``usual_levels`` of one hour of the week, for many rhythms: the hours it looks at, found once."""

    __slots__ = ("day", "looked_at")

    def __init__(self, slot: int) -> None:
        day, hour = divmod(slot, 24)
        self.day = day
        # the same hour on each day (``slot`` is the day's), then the hours before and after it
        self.looked_at = (*(d * 24 + hour for d in range(7)), day * 24 + (hour - 1) % 24, day * 24 + (hour + 1) % 24)

    def level(self, activity: dict[int, float], busiest: float) -> float:
        """``busiest``: the rhythm's (``Rhythm.busiest``), ``max(activity.values(), default=0.0)``."""
        if busiest <= 0:
            return 0.0
        # the seven same hours, then the two beside, read in C
        d0, d1, d2, d3, d4, d5, d6, before, after = map(activity.get, self.looked_at, _NINE_ZEROS)
        # summed in the order ``sum`` adds them: the same float
        same_hour = (d0 + d1 + d2 + d3 + d4 + d5 + d6) / 7.0
        # ``max`` spelled out (cheaper than the call): it keeps the first of equal values, as ``max`` does
        half_beside = 0.5 * (after if after > before else before)
        level = (d0, d1, d2, d3, d4, d5, d6)[self.day]  # this very hour
        if same_hour > level:
            level = same_hour
        if half_beside > level:
            level = half_beside
        return level / busiest


_NINE_ZEROS = (0.0,) * 9
_HOUR_LEVELS = tuple(_HourLevels(slot) for slot in range(SLOT_COUNT))


def peer_groups(period: Period) -> dict[str, list[int]]:
    """Row indices of the period's windows, by peer group."""
    groups: dict[str, list[int]] = {}
    peer_key = period.profiles.peer_key
    for row, window in enumerate(period.windows):
        groups.setdefault(peer_key(window.actor), []).append(row)
    return groups


def _own_ratios(
    rows: _Rows, logs: np.ndarray, g: float, g_slow: float, ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """How far each volume is above the actor's expectation: in log2, and in the actor's own spreads.

    The expectation is ``Period.expectation``'s (own baseline, own rhythm for
    the volumes routine jobs produce, peers' while the actor is new, after
    the population allowance), computed for the whole period at once instead
    of one ``Expectation`` per figure: this runs for every window.
    """
    expected_array, spreads_array, known_array, own_means_array = rows.expectations(g, g_slow)
    allowance = _population_allowance(logs, own_means_array, ids, len(rows.groups))
    excess = np.where(known_array, logs - expected_array - allowance, 0.0)
    return np.clip(excess / LN2, 0.0, RATIO_CAP), np.clip(excess / spreads_array, 0.0, RATIO_CAP)


def _population_allowance(logs: np.ndarray, own_means: np.ndarray, ids: np.ndarray, n_groups: int) -> np.ndarray:
    """log of ``Period.population_factor`` for every window and volume, for the whole period at once.

    The same definition: the median, over the mature actors of the peer
    group active in the window (at least three, else over everybody active,
    at least five), of how many times their own usual they read; never
    below 1.
    """
    ratios = np.exp(logs - own_means)  # NaN where the actor has no mature baseline of its own
    median, count = group_medians(ratios, np.zeros(len(ratios), dtype=np.intp), 1)
    overall = np.where(count[0] >= 5, np.maximum(median[0], 1.0), 1.0)
    median, count = group_medians(ratios, ids, n_groups)
    factors = np.where(count >= 3, np.maximum(median, 1.0), overall)[ids]
    return np.log(factors)


def _group_ids(groups: dict[str, list[int]], n: int) -> np.ndarray:
    ids = np.empty(n, dtype=np.intp)
    for number, rows in enumerate(groups.values()):
        ids[rows] = number
    return ids


def group_medians(values: np.ndarray, ids: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Per group and column: the median of the values that are not NaN, and how many there are.

    All groups at once (a period has dozens of peer groups: a median per group
    and column is a numpy call each, and their overhead would dominate).
    """
    sizes = np.bincount(ids, minlength=n_groups)
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    medians = np.full((n_groups, values.shape[1]), np.nan)
    counts = np.zeros((n_groups, values.shape[1]), dtype=np.intp)
    for col in range(values.shape[1]):
        column = values[:, col]
        missing = np.isnan(column)
        order = np.lexsort((column, missing, ids))  # by group, the values first (ascending), NaN last
        ordered = column[order]
        count = np.bincount(ids[~missing], minlength=n_groups)
        last = len(ordered) - 1  # an empty group reads any value: its count of 0 masks it below
        low = ordered[np.minimum(starts + np.maximum(count - 1, 0) // 2, last)]
        high = ordered[np.minimum(starts + count // 2, last)]
        medians[:, col] = np.where(count > 0, (low + high) / 2.0, np.nan)
        counts[:, col] = count
    return medians, counts


def _peer_ratios(period: Period, logs: np.ndarray, groups: dict[str, list[int]], ids: np.ndarray) -> np.ndarray:
    """log2 of each volume over the median of its peer group active in the same window.

    With fewer than ``MIN_PEERS`` of them active, the reference is the
    group's trailing baseline; a group of one has no peers, and the ratio
    stays at zero.
    """
    short = period.scale == "short"
    g = period.g_fast if short else period.g_slow
    medians, _ = group_medians(logs, ids, len(groups))
    references = np.full_like(medians, np.inf)  # inf: no reference, the ratio stays at zero
    for number, rows in enumerate(groups.values()):
        if len(rows) >= MIN_PEERS:
            references[number] = medians[number]
            continue
        peer = period.profiles.peer(period.windows[rows[0]].actor)
        if peer is None or len(peer.members) < 2:
            continue
        stats = peer.hourly if short else peer.daily
        references[number] = [stats[m].mean if stats[m].sw >= g else np.inf for m in RATIO_VOLUMES]
    return np.clip((logs - references[ids]) / LN2, 0.0, RATIO_CAP)


def unusual_hours_share(period: Period, window: WindowStats) -> float:
    """How much of the window falls in hours the actor (else its peers) usually does not work: 0 to 1."""
    return _unusual_hours_share(period, window, period.profiles.baseline(window.actor)[0])


def _unusual_hours_share(period: Period, window: WindowStats, profile: Profile | None) -> float:
    """``unusual_hours_share`` with the actor's baseline profile already found."""
    if profile is None:
        return 0.0
    rhythm = profile.rhythm
    if not rhythm.observed_at_least(MIN_RHYTHM_WINDOWS * period.g_slow):
        return 0.0
    slots = (period.slot,) if period.scale == "short" else window.hours
    if not slots:
        return 0.0
    return sum(1.0 - level for level in usual_levels(rhythm.activity, slots, rhythm.busiest)) / len(slots)


def usual_levels(activity: dict[int, float], slots: Iterable[int], busiest: float | None = None) -> list[float]:
    """``Rhythm.usual_level`` of several hours of the week of one rhythm, its busiest hour found once (or given:
    ``Rhythm.busiest``).

    (A day window has up to 24 active hours, and this runs for every window.)
    """
    if busiest is None:
        busiest = max(activity.values(), default=0.0)
    if busiest <= 0:
        return [0.0 for _ in slots]
    # each hour's ``_HourLevels``, made once for the 168: a generator's sum over the seven same hours for each
    # cost twice the whole level
    return [_HOUR_LEVELS[slot].level(activity, busiest) for slot in slots]


# -- what an analyst reads --------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FigureContext:
    """One volume of one window, beside the actor's baseline and its peers in the same window."""

    metric: str
    value: float
    baseline: float | None  # the actor's expected value (its own, its rhythm's, or its peers' while new)
    baseline_from: str | None  # "own", "own rhythm", "own weekday", "peers"
    ratio: float | None  # value over baseline, after the population allowance
    peers_active: int  # other members of the peer group active in the same window
    peers_below: int  # ... of whom this many had less


def figure_context(period: Period, window: WindowStats, metric: str, peers: Sequence[WindowStats]) -> FigureContext:
    """The figures behind one volume; ``peers`` are the other active members of the actor's peer group."""
    column = VOLUMES.index(metric)
    value = volume_values(window)[column]
    expectation = period.expectation(window, metric, value)
    others = [volume_values(peer)[column] for peer in peers]
    return FigureContext(
        metric=metric,
        value=value,
        baseline=expectation.expected if expectation is not None else None,
        baseline_from=expectation.basis if expectation is not None else None,
        ratio=expectation.ratio if expectation is not None else None,
        peers_active=len(others),
        peers_below=sum(other < value for other in others),
    )
