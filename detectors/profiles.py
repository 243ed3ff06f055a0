"""Learned baselines: each actor's own rhythm and volumes, and its peer group's.

Everything decays in event time with the configured half-life, so a replay
learns exactly what the live stream learned.  Volumes are kept on a log
scale (``log1p``): access volumes are heavy-tailed, and "ten times the usual"
is the question analysts ask, not "ten thousand more".

Updates are clipped a few spreads above the current mean once a baseline is
established, so that an insider cannot train their own baseline up within a
few windows (the slow-ramp scenario).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

from detectors.windows import ActorRef, WindowStats

LN2 = math.log(2.0)
SD_FLOOR = 0.5  # on the log scale: about a factor 1.6; stops a steady actor's tiny spread from flagging noise
CLIP_SDS = 2.0
_CLIP_FLOOR = CLIP_SDS * SD_FLOOR  # no spread clips nearer the mean than this: a spread is never under SD_FLOOR
# Days are judged against working days: a quiet Saturday tells little about
# how much is normal, and would only widen the spread an insider hides in.
DAY_FLOOR_SDS = 1.0
DAY_HALF_LIFE_FACTOR = 2.0  # day baselines forget more slowly: a slow ramp must not become the norm
SLOT_COUNT = 168
OBSERVED_MARGIN = 1e-6  # relative: ``Rhythm.total`` is this near its floor before the exact sum is asked
METRICS = ("records", "customers", "egress", "high", "denied", "events")
SLOT_METRICS = ("records", "customers", "egress", "high")  # volumes that routine jobs produce at fixed hours
# A window that raised a finding is learned at a fraction of a normal
# window's weight: an ongoing episode must not become its own baseline within
# the hour.  The fraction doubles with each further day the actor is flagged,
# so that a lasting change of duties still becomes the norm within a week or
# two instead of paging every day.
SUSPECT_WEIGHT = 0.1


def suspect_weight(flagged_days: int) -> float:
    return min(1.0, SUSPECT_WEIGHT * 2.0**flagged_days)


# Most hours have no export, no sensitive read, no refusal: for these the
# baseline is the typical size *when it happens*, else one export a week
# would make every export look like a thousand times the usual zero.
SPARSE_METRICS = frozenset({"egress", "high", "denied"})


def metric_values(window: WindowStats) -> dict[str, float]:
    return {
        "records": window.records,
        "customers": window.distinct_customers,
        "egress": window.egress_records,
        "high": window.high_records,
        "denied": window.denied,
        "events": window.events,
    }


class Decay:
    """Forward exponential decay (Cormode et al., 2009).

    Instead of shrinking every old weight as time passes, an observation at
    time t gets the weight ``g(t) = 2 ** ((t - origin) / half_life)``, which
    grows with time; a weighted mean is then a ratio of plain sums, so adding
    an observation costs a few multiplications and nothing ever has to be
    decayed.  The decayed weight of a sum at time t is ``sum / g(t)``.
    """

    __slots__ = ("half_life", "origin", "rate")

    def __init__(self, half_life: float, origin: float) -> None:
        self.half_life = half_life
        self.origin = origin
        self.rate = LN2 / half_life

    def g(self, t: float) -> float:
        return math.exp(self.rate * (t - self.origin))


# Past this exponent the weights are rebased to a later origin, long before
# a float overflows (e**709).
REBASE_EXPONENT = 600.0


class EwStat:
    """Exponentially weighted mean and variance of ``log1p(x)``, as forward-decayed sums.

    A slotted class, not a msgspec struct: every window sets these fields a few dozen times (the actor's, its
    weekly slot's and its peers' stats), and a field of a msgspec struct costs 270 instructions to set against 58
    here (reading, 49 both): with the inlining around it, learning took a fifth fewer instructions.  The
    checkpoint is the same bytes: its encoder's hook writes each as ``[sw, swx, swx2]``
    (``detectors.state_codec``), at some 60 ms more for a quarter of a million of them.  The collector tracks it
    now, which the replay's thresholds never make run while the engine judges.
    """

    __slots__ = ("sw", "swx", "swx2")

    def __init__(self, sw: float = 0.0, swx: float = 0.0, swx2: float = 0.0) -> None:
        self.sw = sw  # sum of weights
        self.swx = swx  # sum of weight * x
        self.swx2 = swx2  # sum of weight * x * x

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EwStat):
            return NotImplemented
        return (self.sw, self.swx, self.swx2) == (other.sw, other.swx, other.swx2)

    def __repr__(self) -> str:
        return f"EwStat({self.sw!r}, {self.swx!r}, {self.swx2!r})"

    def to_state(self) -> list[float]:
        """``[sw, swx, swx2]``: what the checkpoint's encoder writes for it (``detectors.state_codec``)."""
        return [self.sw, self.swx, self.swx2]

    @property
    def mean(self) -> float:
        return self.swx / self.sw if self.sw > 0 else 0.0

    @property
    def var(self) -> float:
        if self.sw <= 0:
            return 0.0
        mean = self.swx / self.sw
        return max(self.swx2 / self.sw - mean * mean, 0.0)

    @property
    def sd(self) -> float:
        return max(math.sqrt(self.var), SD_FLOOR)

    def weight(self, g_now: float) -> float:
        """The decayed number of observations, as of the time whose weight is ``g_now``."""
        return self.sw / g_now

    def add(self, value: float, g: float, clip: bool = True, floor_sds: float = 0.0) -> None:
        """Learn ``value``; once established, clipped to CLIP_SDS spreads above the mean and, with ``floor_sds``
        (positive), to that many below it."""
        x = math.log1p(value) if value > 0 else 0.0
        sw = self.sw
        if clip and sw >= 3.0 * g:  # an established baseline: an outlier moves it only so far
            mean = self.swx / sw
            # the spread only matters past the nearest the clip or the floor can be (a spread is never under
            # SD_FLOOR): most values are nearer the mean
            if x > mean + _CLIP_FLOOR or (floor_sds and x < mean - floor_sds * SD_FLOOR):
                spread = math.sqrt(max(self.swx2 / sw - mean * mean, 0.0))
                if spread < SD_FLOOR:
                    spread = SD_FLOOR
                high = mean + CLIP_SDS * spread
                if x > high:
                    x = high
                elif floor_sds and x < mean - floor_sds * spread:
                    x = mean - floor_sds * spread
        self.sw = sw + g
        self.swx += g * x
        self.swx2 += g * x * x

    def rebase(self, factor: float) -> None:
        self.sw *= factor
        self.swx *= factor
        self.swx2 *= factor

    @classmethod
    def from_state(cls, state: list[float]) -> EwStat:
        """What the state holds: ``[sw, swx, swx2]`` (``EwStat`` itself, in ``to_state``'s output, written so by the
        checkpoint's encoder)."""
        return cls(*state)


def window_logs(window: WindowStats) -> dict[str, float | None]:
    """Each of ``metric_values``' ``log1p``, as ``EwStat.add`` takes it; None for a sparse metric's zero, which is
    not learned.

    Once per window: the actor's hourly stats, its rhythm's and its peers' all learn the same values.  Read
    from the window metric by metric, with no dict of values between (and no look-up in SPARSE_METRICS).
    """
    log1p = math.log1p
    records, customers, egress = window.records, len(window.customers), window.egress_records
    high, denied, events = window.high_records, window.denied, window.events
    return {
        "records": log1p(records) if records > 0 else 0.0,
        "customers": log1p(customers) if customers > 0 else 0.0,
        "egress": log1p(egress) if egress > 0 else None,
        "high": log1p(high) if high > 0 else None,
        "denied": log1p(denied) if denied > 0 else None,
        "events": log1p(events) if events > 0 else 0.0,
    }


def _first_stats(logs: dict[str, float | None], g: float) -> dict[str, EwStat]:
    """A weekly slot's first stats (``SLOT_METRICS``): ``_add_all`` into new ones, which no clip applies to yet,
    made with their sums at once (0.0 + y is y for the y >= 0 learned here).  Most windows of an actor's first
    weeks open a slot."""
    stats = {}
    new = object.__new__  # with the fields set here: calling EwStat runs its __init__ in a frame of its own
    for metric in SLOT_METRICS:
        x = logs[metric]
        stat = stats[metric] = new(EwStat)
        if x is None:
            stat.sw = stat.swx = stat.swx2 = 0.0
        else:
            gx = g * x
            stat.sw, stat.swx, stat.swx2 = g, gx, gx * x
    return stats


def _add_all(stats: dict[str, EwStat], logs: dict[str, float | None], g: float, floor_sds: float = 0.0) -> None:
    """``EwStat.add`` (clipped, with ``floor_sds``) of each metric's ``window_logs``, skipping a sparse metric's
    zero; the same arithmetic, inline: this runs for every stat of every window, twice (the actor's and its
    peers'), and for a day's stats (a call each were most of learning a day)."""
    sqrt = math.sqrt
    established = 3.0 * g
    for metric, stat in stats.items():
        x = logs[metric]
        if x is None:
            continue
        sw = stat.sw
        if sw >= established:
            mean = stat.swx / sw
            # the spread only matters past the nearest the clip or the floor can be: most values are nearer
            if x > mean + _CLIP_FLOOR or (floor_sds and x < mean - floor_sds * SD_FLOOR):
                spread = sqrt(max(stat.swx2 / sw - mean * mean, 0.0))
                if spread < SD_FLOOR:
                    spread = SD_FLOOR
                high = mean + CLIP_SDS * spread
                if x > high:
                    x = high
                elif floor_sds and x < mean - floor_sds * spread:
                    x = mean - floor_sds * spread
        stat.sw = sw + g
        gx = g * x  # g * x * x is (g * x) * x
        stat.swx += gx
        stat.swx2 += gx * x


class DecayedQuantiles:
    """Forward-decayed counts of a figure in buckets of half a power of two: its quantiles, to a factor of 1.41.

    A mean and spread on the log scale describe a figure with one usual
    size; a day's busiest hour often has two (quiet days, and days with a
    burst of routine exports), and a spread above their mean lands far past
    both.  The buckets answer "what does a busy day look like" from what
    was seen, in at most ~50 numbers.
    """

    __slots__ = ("weights",)

    def __init__(self, weights: dict[int, float] | None = None) -> None:
        self.weights: dict[int, float] = weights or {}

    def add(self, value: float, g: float) -> None:
        bucket = int(2.0 * math.log2(1.0 + max(value, 0.0)))
        self.weights[bucket] = self.weights.get(bucket, 0.0) + g

    def weight(self, g_now: float) -> float:
        return sum(self.weights.values()) / g_now

    def quantile(self, q: float) -> float:
        """The upper edge of the bucket where the share ``q`` of the weight is reached."""
        weights = self.weights
        needed, seen = q * sum(weights.values()), 0.0
        for bucket in sorted(weights):
            seen += weights[bucket]
            if seen >= needed:
                return 2.0 ** ((bucket + 1) / 2.0) - 1.0
        return 0.0

    def rebase(self, factor: float) -> None:
        for bucket in self.weights:
            self.weights[bucket] *= factor

    def to_state(self) -> dict[int, float]:
        return self.weights  # handed over, not copied: encoded at once (detectors.state_codec)

    @classmethod
    def from_state(cls, state: dict[int, float] | dict[str, float]) -> DecayedQuantiles:
        return cls({int(bucket): weight for bucket, weight in state.items()})


def _stats() -> dict[str, EwStat]:
    return {metric: EwStat() for metric in METRICS}


@dataclass(slots=True)
class Rhythm:
    """When, in the week, someone is active, and how much they read in each slot.

    Sparse: most actors use a few dozen of the 168 hours of the week.
    """

    activity: dict[int, float] = field(default_factory=dict)  # slot -> forward-decayed count of active windows
    # slot -> metric -> volume in that slot when active (records, egress, high)
    volume: dict[int, dict[str, EwStat]] = field(default_factory=dict)
    # Kept as ``activity`` changes, not checkpointed (made again from it): every window's features read how much
    # and how busy a rhythm is, and the passes over its up to 168 slots for them were a fifth of computing them.
    # The largest weight, exactly ``max(activity.values())``: a weight only grows, and a rebase scales every
    # weight by the same factor, which keeps the largest the largest (rounding is monotonic).
    busiest: float = field(default=0.0, init=False, repr=False, compare=False)
    # The weights' sum, added up in another order than ``observed``'s, so it may differ from it in the last
    # digits (by at most about 1e-16 times an operation); ``observed_at_least`` asks the exact sum when that
    # could matter.
    total: float = field(default=0.0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.busiest = max(self.activity.values(), default=0.0)
        self.total = sum(self.activity.values())

    def add(self, slot: int, logs: dict[str, float | None], g: float, volumes: bool = True) -> None:
        """An active window in ``slot``; ``logs``: its ``window_logs``."""
        activity = self.activity
        weight = activity[slot] = activity.get(slot, 0.0) + g
        if weight > self.busiest:
            self.busiest = weight
        self.total += g
        if not volumes:
            return
        stats = self.volume.get(slot)
        if stats is None:
            self.volume[slot] = _first_stats(logs, g)
        else:
            _add_all(stats, logs, g)

    def rebase(self, factor: float) -> None:
        for slot in self.activity:
            self.activity[slot] *= factor
        self.busiest *= factor
        self.total *= factor
        for stats in self.volume.values():
            for stat in stats.values():
                stat.rebase(factor)

    def usual_level(self, slot: int) -> float:
        """How usual activity in this hour of the week is, from 0 (never) to 1 (as in the busiest hour).

        The same hour on other days and the hours beside it count too, so a
        shift that moves by an hour or a day is still usual.
        """
        activity = self.activity
        busiest = max(activity.values(), default=0.0)
        if busiest <= 0:
            return 0.0
        day, hour = divmod(slot, 24)
        same_slot = activity.get(slot, 0.0)
        same_hour = sum(activity.get(d * 24 + hour, 0.0) for d in range(7)) / 7.0
        beside = max(activity.get(day * 24 + (hour - 1) % 24, 0.0), activity.get(day * 24 + (hour + 1) % 24, 0.0))
        return max(same_slot, same_hour, 0.5 * beside) / busiest

    def slot_volume(self, slot: int, metric: str, g_now: float) -> EwStat | None:
        """The slot's volume baseline, once seen about once or more (decayed)."""
        stats = self.volume.get(slot)
        stat = stats.get(metric) if stats is not None else None
        return stat if stat is not None and stat.sw >= 0.5 * g_now else None

    @property
    def observed(self) -> float:
        """Sum of the activity weights (forward-decayed)."""
        return sum(self.activity.values())

    def observed_at_least(self, floor: float) -> bool:
        """``observed >= floor``, exactly, mostly without the pass over the slots: the kept ``total`` settles it
        unless it is within a millionth of the floor (its rounding is some ten orders of magnitude less)."""
        total = self.total
        if total > floor * (1.0 + OBSERVED_MARGIN):
            return True
        if total < floor * (1.0 - OBSERVED_MARGIN):
            return False
        return sum(self.activity.values()) >= floor

    def to_state(self) -> list:
        # handed over, not copied: encoded at once (detectors.state_codec); keys are ints, or strs from JSON
        return [self.activity, self.volume]

    @classmethod
    def from_state(cls, state: list) -> Rhythm:
        activity, volume = state
        return cls(
            {int(k): v for k, v in activity.items()},
            {int(k): {m: EwStat.from_state(stat) for m, stat in v.items()} for k, v in volume.items()},
        )


class BoundedSet:
    """The most recently seen items, at most ``limit`` of them."""

    __slots__ = ("items", "limit")

    def __init__(self, limit: int, items: list[str] | None = None) -> None:
        self.limit = limit
        self.items: OrderedDict[str, None] = OrderedDict.fromkeys(items or [])

    def __contains__(self, item: str) -> bool:
        return item in self.items

    def add(self, item: str) -> None:
        if item in self.items:
            self.items.move_to_end(item)
            return
        self.items[item] = None
        if len(self.items) > self.limit:
            self.items.popitem(last=False)

    def add_all(self, items: Iterable[str]) -> None:
        """``add`` each, in order (a window's few kinds or addresses, nearly always known already)."""
        known = self.items
        for item in items:
            if item in known:
                known.move_to_end(item)
            else:
                self.add(item)

    def __len__(self) -> int:
        return len(self.items)


@dataclass(slots=True)
class Profile:
    """An actor's baseline, or a peer group's (then ``members`` counts the actors)."""

    first_seen: float = math.inf
    last_seen: float = -math.inf
    active_days: int = 0
    last_active_day: float = -math.inf
    hourly: dict[str, EwStat] = field(default_factory=_stats)  # per active short window
    daily: dict[str, EwStat] = field(default_factory=_stats)  # per active long window
    rhythm: Rhythm = field(default_factory=Rhythm)
    # weekday -> metric -> day volume: the weekly export's day
    weekdays: dict[int, dict[str, EwStat]] = field(default_factory=dict)
    # metric -> the day's busiest hour: an agent who exports a few hundred
    # passports now and then has a modest usual hour but a large usual peak,
    # and an hour like that peak is routine for them, not a bulk read
    peak_hour: dict[str, DecayedQuantiles] = field(default_factory=dict)
    today_peak: dict[str, float] = field(default_factory=dict)  # the open day's busiest hour so far
    flagged_days: int = 0  # consecutive days on which the actor raised findings
    # the silence before the current run of activity: a returning account's
    # first quiet minutes must not hide the silence from the bulk read after them
    silence_before: float = 0.0
    resumed_at: float = -math.inf
    records_since_resume: float = 0.0
    classes: set[str] = field(default_factory=set)
    resources: BoundedSet = field(default_factory=lambda: BoundedSet(256))
    ips: BoundedSet = field(default_factory=lambda: BoundedSet(256))
    members: set[str] = field(default_factory=set)

    def knows(self, what: str, value: str) -> bool:
        if what == "data_class":
            return value in self.classes
        if what == "resource":
            return value in self.resources
        return value in self.ips

    def note_new(self, first_ids: dict[tuple[str, str], str], new_items: dict[tuple[str, str], str]) -> None:
        """Copy into ``new_items`` each of a window's ``first_ids`` this profile does not know (``knows``, in
        one call for the window: most of its items are known)."""
        classes, resources, ips = self.classes, self.resources.items, self.ips.items
        for key, event_id in first_ids.items():
            what, value = key
            if what == "data_class":
                known = value in classes
            elif what == "resource":
                known = value in resources
            else:
                known = value in ips
            if not known:
                new_items[key] = event_id

    def learn_window(
        self,
        window: WindowStats,
        logs: dict[str, float | None],
        slot: int,
        g: float,
        g_slow: float,
        slot_volumes: bool,
        kinds: list[str],
        ips: list[str],
    ) -> None:
        """``logs``: the window's ``window_logs``; ``kinds`` and ``ips``: its resource kinds and addresses, sorted."""
        _add_all(self.hourly, logs, g)
        # a weekly slot sees one value a week: it remembers for longer
        self.rhythm.add(slot, logs, g_slow, slot_volumes)
        self.classes.update(window.class_records)
        # BoundedSet.add_all of each, inline (a call each cost as much as its one or two items): most are known
        for bounded, items in ((self.resources, kinds), (self.ips, ips)):
            known = bounded.items
            for item in items:
                if item in known:
                    known.move_to_end(item)
                else:
                    bounded.add(item)
        if math.isfinite(self.last_seen) and window.first_ts - self.last_seen > 86400:
            self.silence_before = window.first_ts - self.last_seen
            self.resumed_at = window.first_ts
            self.records_since_resume = 0.0
        self.records_since_resume += window.records
        if window.first_ts < self.first_seen:
            self.first_seen = window.first_ts
        if window.last_ts > self.last_seen:
            self.last_seen = window.last_ts

    def note_hour(self, window: WindowStats) -> None:
        """Keep the open day's busiest hour of each of ``SLOT_METRICS`` (an actor's own profile only)."""
        peaks = self.today_peak
        # metric by metric, in SLOT_METRICS' order (the order peaks are first kept in, and checkpointed): a loop
        # over the metrics and a dict of the values cost half as much again
        value = window.records
        if value > peaks.get("records", 0.0):
            peaks["records"] = value
        value = len(window.customers)
        if value > peaks.get("customers", 0.0):
            peaks["customers"] = value
        value = window.egress_records
        if value > peaks.get("egress", 0.0):
            peaks["egress"] = value
        value = window.high_records
        if value > peaks.get("high", 0.0):
            peaks["high"] = value

    def learn_day(
        self, window: WindowStats, logs: dict[str, float | None], weekday: int, g_slow: float, peaks: dict[str, float]
    ) -> None:
        """``logs``: the day's ``window_logs``; ``peaks``: its busiest hour of each of ``SLOT_METRICS``."""
        _add_all(self.daily, logs, g_slow, DAY_FLOOR_SDS)
        stats = self.weekdays.get(weekday)
        if stats is None:
            stats = self.weekdays[weekday] = {metric: EwStat() for metric in SLOT_METRICS}
        _add_all(stats, logs, g_slow)
        for metric, value in peaks.items():
            peak = self.peak_hour.get(metric)
            if peak is None:
                peak = self.peak_hour[metric] = DecayedQuantiles()
            peak.add(value, g_slow)
        if window.start > self.last_active_day:
            self.active_days += 1
            self.last_active_day = window.start

    def rebase(self, fast: float, slow: float) -> None:
        for stat in self.hourly.values():
            stat.rebase(fast)
        for stat in self.daily.values():
            stat.rebase(slow)
        for stats in self.weekdays.values():
            for stat in stats.values():
                stat.rebase(slow)
        for peak in self.peak_hour.values():
            peak.rebase(slow)
        self.rhythm.rebase(slow)

    def to_state(self) -> dict:
        return {
            "first_seen": self.first_seen if math.isfinite(self.first_seen) else None,
            "last_seen": self.last_seen if math.isfinite(self.last_seen) else None,
            "active_days": self.active_days,
            "last_active_day": self.last_active_day if math.isfinite(self.last_active_day) else None,
            # the baselines themselves (EwStat encodes as [sw, swx, swx2]): this is most of a checkpoint
            "hourly": self.hourly,
            "daily": self.daily,
            "rhythm": self.rhythm.to_state(),
            "weekdays": self.weekdays,
            "peak_hour": {k: v.to_state() for k, v in self.peak_hour.items()},
            "today_peak": self.today_peak,
            "classes": sorted(self.classes),
            "resources": list(self.resources.items),
            "ips": list(self.ips.items),
            "members": sorted(self.members),
            "flagged_days": self.flagged_days,
            "silence_before": self.silence_before,
            "resumed_at": self.resumed_at if math.isfinite(self.resumed_at) else None,
            "records_since_resume": self.records_since_resume,
        }

    @classmethod
    def from_state(cls, state: dict, limit: int) -> Profile:
        def finite(value: float | None, default: float) -> float:
            return default if value is None else value

        return cls(
            first_seen=finite(state["first_seen"], math.inf),
            last_seen=finite(state["last_seen"], -math.inf),
            active_days=state["active_days"],
            last_active_day=finite(state["last_active_day"], -math.inf),
            hourly={k: EwStat.from_state(v) for k, v in state["hourly"].items()},
            daily={k: EwStat.from_state(v) for k, v in state["daily"].items()},
            rhythm=Rhythm.from_state(state["rhythm"]),
            weekdays={int(k): {m: EwStat.from_state(st) for m, st in v.items()} for k, v in state["weekdays"].items()},
            # checkpoints from before peaks were learned have none: they are learned from the next day on
            peak_hour={k: DecayedQuantiles.from_state(v) for k, v in state.get("peak_hour", {}).items()},
            today_peak=dict(state.get("today_peak", {})),
            classes=set(state["classes"]),
            resources=BoundedSet(limit, state["resources"]),
            ips=BoundedSet(limit, state["ips"]),
            members=set(state["members"]),
            flagged_days=state.get("flagged_days", 0),
            silence_before=state.get("silence_before", 0.0),
            resumed_at=finite(state.get("resumed_at"), -math.inf),
            records_since_resume=state.get("records_since_resume", 0.0),
        )


class ProfileBook:
    """All actors' and peer groups' profiles: the detectors' memory."""

    def __init__(self, peer_fields: list[str], half_life: float, max_known_items: int, actor_warmup_days: int) -> None:
        self.peer_fields = peer_fields
        self.half_life = half_life
        self.max_known_items = max_known_items
        self.actor_warmup_days = actor_warmup_days
        self.actors: dict[str, Profile] = {}
        self.peers: dict[str, Profile] = {}
        self.first_event_time = math.inf
        # hourly baselines forget at the half-life; day and weekly-slot
        # baselines at twice it, so that a slow ramp does not become the norm
        self.fast = Decay(half_life, 0.0)
        self.slow = Decay(half_life * DAY_HALF_LIFE_FACTOR, 0.0)
        self._origin_set = False
        self._peer_keys: dict[str, tuple[ActorRef, str]] = {}  # actor id -> (the actor as last asked, its key)
        self._weights_of: tuple[float, tuple[float, float]] | None = None  # the last instant asked, and its weights

    def _new_profile(self) -> Profile:
        return Profile(resources=BoundedSet(self.max_known_items), ips=BoundedSet(self.max_known_items))

    def peer_key(self, actor: ActorRef) -> str:
        """'kind=employee|role=finance|organization=-': the peer group an actor is compared with."""
        # by id, then the very object the engine keeps per actor: hashing an ActorRef (five fields, one an
        # enum) cost more than the look-up it served, and this runs several times per window
        found = self._peer_keys.get(actor.id)
        if found is not None and (found[0] is actor or found[0] == actor):
            return found[1]
        key = "|".join(f"{name}={getattr(actor, name) or '-'}" for name in self.peer_fields)
        if len(self._peer_keys) > 100_000:  # bounded: actors come and go
            self._peer_keys.clear()
        self._peer_keys[actor.id] = (actor, key)
        return key

    def group_kind(self, key: str) -> str | None:
        """The actor kind of a peer group (``peer_key``), None when kinds are not a peer field (or a value of the
        key holds its separator, and it cannot be read back)."""
        if "kind" not in self.peer_fields:
            return None
        parts = key.split("|")
        if len(parts) != len(self.peer_fields):
            return None
        return parts[self.peer_fields.index("kind")].partition("=")[2]

    def actor(self, actor_id: str) -> Profile | None:
        return self.actors.get(actor_id)

    def peer(self, actor: ActorRef) -> Profile | None:
        return self.peers.get(self.peer_key(actor))

    def is_mature(self, actor_id: str) -> bool:
        profile = self.actors.get(actor_id)
        return profile is not None and profile.active_days >= self.actor_warmup_days

    def baseline(self, actor: ActorRef) -> tuple[Profile | None, str]:
        """The profile to judge an actor on: its own once mature, else its peers'."""
        own = self.actors.get(actor.id)
        if own is not None and own.active_days >= self.actor_warmup_days:
            return own, "own"
        peer = self.peers.get(self.peer_key(actor))
        if peer is not None and peer.active_days >= self.actor_warmup_days and len(peer.members) > 1:
            return peer, "peers"
        return None, "none"

    def learn_window(self, window: WindowStats, slot: int, suspect: bool = False) -> None:
        g, g_slow = self._weights(window.end)
        if suspect:
            own = self.actors.get(window.actor.id)
            weight = suspect_weight(own.flagged_days if own else 0)
            g, g_slow = g * weight, g_slow * weight
        logs = window_logs(window)
        # in a fixed order: a window's sets iterate in an order seeded per process, and which items
        # a profile over its limit keeps must not depend on the process (a replay, the live run, the worker)
        kinds, ips = sorted(window.resource_kinds), sorted(window.ips)
        own, peer = self._profiles_of(window.actor)
        own.learn_window(window, logs, slot, g, g_slow, True, kinds, ips)
        own.note_hour(window)
        # a routine's hour of the week is personal: peers share only when they work
        peer.learn_window(window, logs, slot, g, g_slow, False, kinds, ips)

    def learn_day(self, window: WindowStats, weekday: int, suspect: bool = False) -> None:
        _, g_slow = self._weights(window.end)
        own, peer = self._profiles_of(window.actor)
        if suspect:
            g_slow *= suspect_weight(own.flagged_days)
        logs = window_logs(window)
        # a peer group's usual peak is its members' usual busiest hour, not the busiest of all of them
        peaks, own.today_peak = own.today_peak, {}
        for profile in (own, peer):
            profile.learn_day(window, logs, weekday, g_slow, peaks)

    def note_flagged_day(self, actor_id: str, flagged: bool) -> None:
        """Count consecutive days with findings; a quiet day starts the count again."""
        own = self.actors.get(actor_id)
        if own is not None:
            own.flagged_days = own.flagged_days + 1 if flagged else 0

    def weights_at(self, t: float) -> tuple[float, float]:
        """(fast, slow) forward-decay weights of time t: divide a sum by them for decayed counts."""
        return self._weights(t)

    def _weights(self, t: float) -> tuple[float, float]:
        # every window of a period ends at the same instant: two exponentials per period, not per window
        last = self._weights_of
        if last is not None and last[0] == t:
            return last[1]
        if not self._origin_set:
            self.fast.origin = self.slow.origin = t
            self._origin_set = True
        if self.fast.rate * (t - self.fast.origin) > REBASE_EXPONENT:
            self._rebase(t)
        weights = self.fast.g(t), self.slow.g(t)
        self._weights_of = (t, weights)
        return weights

    def _rebase(self, t: float) -> None:
        fast, slow = 1.0 / self.fast.g(t), 1.0 / self.slow.g(t)
        for profile in (*self.actors.values(), *self.peers.values()):
            profile.rebase(fast, slow)
        self.fast.origin = self.slow.origin = t

    def _profiles_of(self, actor: ActorRef) -> tuple[Profile, Profile]:
        own = self.actors.get(actor.id)
        if own is None:
            own = self.actors[actor.id] = self._new_profile()
        key = self.peer_key(actor)
        peer = self.peers.get(key)
        if peer is None:
            peer = self.peers[key] = self._new_profile()
        peer.members.add(actor.id)
        return own, peer

    def to_state(self) -> dict:
        return {
            "origin": self.fast.origin if self._origin_set else None,
            "actors": {k: v.to_state() for k, v in self.actors.items()},
            "peers": {k: v.to_state() for k, v in self.peers.items()},
            "first_event_time": self.first_event_time if math.isfinite(self.first_event_time) else None,
        }

    def load_state(self, state: dict) -> None:
        limit = self.max_known_items
        self.actors = {k: Profile.from_state(v, limit) for k, v in state["actors"].items()}
        self.peers = {k: Profile.from_state(v, limit) for k, v in state["peers"].items()}
        first = state.get("first_event_time")
        self.first_event_time = math.inf if first is None else first
        origin = state.get("origin")
        self._origin_set = origin is not None
        self.fast.origin = self.slow.origin = origin or 0.0
        self._weights_of = None
