"""Per-actor event-time windows: what one actor did in one hour (or one day).

A window gathers the figures every detector judges; it holds no event, only
counts, bounded sets and a few sample event ids, so memory stays bounded
however much an actor reads.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from detectors.classify import Touch
from models.event import Action, ActorKind, Outcome
from models.fast_event import EventView

# Distinct customers are counted exactly up to this many per window; past it
# the count is a floor (and a bulk read that large alerts anyway).
MAX_TRACKED_CUSTOMERS = 20_000
MAX_TRACKED_ITEMS = 256
SAMPLE_SIZE = 20
# a window merged into (a day) holds at most this many sample candidates before it keeps only the largest
MAX_MERGED_SAMPLE = 5 * SAMPLE_SIZE
MAX_DENIED_TIMES = 512
_FIELDS_BEFORE_EGRESS_BY_ACTION = 23  # the length of a saved window's state after its actor, start and end
_DENIED, _ERROR = Outcome.DENIED, Outcome.ERROR  # module constants: an enum class attribute is a slower look-up
_EGRESS = frozenset(action for action in Action if action.is_egress)  # a look-up an event, not a property's call
_heappush, _heapreplace = heapq.heappush, heapq.heapreplace  # a global's look-up an event, not a module attribute's


@dataclass(frozen=True, slots=True)
class ActorRef:
    """Who an actor is, as its latest event says."""

    id: str
    kind: ActorKind
    role: str | None = None
    department: str | None = None
    organization: str | None = None

    @classmethod
    def of(cls, event: EventView) -> ActorRef:
        actor = event.actor
        return cls(actor.id, actor.kind, actor.role, actor.department, actor.organization)


class LocalClock:
    """Local hour-of-week and day boundaries in the organisation's time zone.

    Offsets are cached per UTC hour: every event needs one, and zoneinfo is
    slow next to a dictionary look-up.
    """

    def __init__(self, zone: tzinfo) -> None:
        self.zone = zone
        self._offsets: dict[int, int] = {}

    def offset(self, ts: float) -> int:
        hour = int(ts // 3600)
        found = self._offsets.get(hour)
        if found is None:
            moment = datetime.fromtimestamp(hour * 3600, UTC).astimezone(self.zone)
            found = int((moment.utcoffset() or timedelta()).total_seconds())
            if len(self._offsets) > 100_000:
                self._offsets.clear()
            self._offsets[hour] = found
        return found

    def hour_of_week(self, ts: float) -> int:
        """0 = Monday 00:00-01:00 local, 167 = Sunday 23:00-24:00."""
        local = ts + self.offset(ts)
        # 1970-01-01 was a Thursday (weekday 3)
        return int(((local // 86400) + 3) % 7) * 24 + int(local % 86400 // 3600)

    def window_start(self, ts: float, size: float) -> float:
        """Start of the window holding ``ts``, aligned to local midnight."""
        offset = self.offset(ts)
        return (ts + offset) // size * size - offset


class WindowStats:
    """One actor in one window."""

    __slots__ = (
        "_sample",
        "actor",
        "class_records",
        "customers",
        "denied",
        "denied_high",
        "denied_times",
        "documented_records",
        "egress_by_action",
        "egress_records",
        "end",
        "errors",
        "events",
        "first_ids",
        "first_ts",
        "high_records",
        "hours",
        "ips",
        "last_ts",
        "new_items",
        "outside_business_events",
        "purposes",
        "records",
        "repeat_records",
        "resource_kinds",
        "resources",
        "start",
        "systems",
        "touch_records",
    )

    def __init__(self, actor: ActorRef, start: float, end: float) -> None:
        self.actor = actor
        self.start = start
        self.end = end
        self.events = 0
        self.records = 0
        # records of customers whose ids the window's accesses had logged already (``records_counted_once``)
        self.repeat_records = 0
        self.egress_records = 0
        self.egress_by_action: dict[str, int] = {}  # "export", "print"...: what the summary says was done
        self.high_records = 0
        self.denied = 0
        self.errors = 0
        self.outside_business_events = 0
        self.documented_records = 0  # records read under a stated purpose (ticket, case, contract)
        self.purposes: set[str] = set()
        self.class_records: dict[str, int] = {}
        # records by the classes each access touched (``Touch.ordered``), each access's once: what tells the records
        # of accesses that read any of several classes, which ``class_records`` counts in each.  A dictionary's
        # update an access, kept only in the windows a detector asks it of (``Detector.touch_records_for``); None
        # in the others, which pay a test an access for it
        self.touch_records: dict[tuple[str, ...], int] | None = None
        self.customers: set[str] = set()
        self.resources: set[str] = set()
        self.resource_kinds: set[str] = set()
        self.systems: set[str] = set()
        self.ips: set[str] = set()
        self.hours: set[int] = set()  # local hours of week with activity
        self.new_items: dict[tuple[str, str], str] = {}  # (what, value) -> first event id, new to the actor
        self.first_ids: dict[tuple[str, str], str] = {}  # (what, value) -> first event id in this window
        self.denied_times: list[float] = []
        self.denied_high = 0
        self.first_ts = float("inf")
        self.last_ts = float("-inf")
        # min-heap of (record_count, event_id); a window merged into gathers more, cut down when read (``merge``)
        self._sample: list[tuple[int, str]] = []

    def add(self, event: EventView, ts: float, touch: Touch, in_business_hours: bool) -> None:
        records = event.record_count
        self.events += 1
        if ts < self.first_ts:
            self.first_ts = ts
        if ts > self.last_ts:
            self.last_ts = ts
        if not in_business_hours:
            self.outside_business_events += 1
        outcome = event.outcome
        if outcome is _DENIED:
            self.denied += 1
            if len(self.denied_times) < MAX_DENIED_TIMES:
                self.denied_times.append(ts)
            if touch.high:
                self.denied_high += 1
        elif outcome is _ERROR:
            self.errors += 1
        else:
            # only data actually served counts as read
            self.records += records
            action = event.action
            if action in _EGRESS:
                self.egress_records += records
                by_action = self.egress_by_action
                by_action[action.value] = by_action.get(action.value, 0) + records
            if touch.high:
                self.high_records += records
            class_records = self.class_records
            for name in touch.ordered:
                class_records[name] = class_records.get(name, 0) + records
            by_touch = self.touch_records
            if by_touch is not None:
                ordered = touch.ordered
                by_touch[ordered] = by_touch.get(ordered, 0) + records
            purpose = event.purpose
            if purpose:
                self.documented_records += records
                if len(self.purposes) < 5:
                    self.purposes.add(purpose)
            customer_ids = event.customer_ids
            if customer_ids:
                customers = self.customers
                before = len(customers)
                if before < MAX_TRACKED_CUSTOMERS:
                    customers.update(customer_ids)
                    # the share of the access's ids the window had logged already: that share of its records is
                    # a second look at the same customers (a list searched, then exported, then downloaded)
                    known = before + len(customer_ids) - len(customers)
                    if known:
                        self.repeat_records += records * known // len(customer_ids)
        first = self.first_ids
        event_id = event.event_id
        if not first.keys() >= touch.first_keys:
            # an actor's accesses in an hour mostly touch classes the window already has a first event for:
            # one look-up in C for them all (most events touch several)
            for key in touch.ordered_keys:
                first.setdefault(key, event_id)
        resource = event.resource
        system = resource.system
        # the model's ``Resource.kind`` and ``Resource.key``, spelled out: 0.19 us an event, against 0.50 for the
        # two property calls (measured); tests/test_windows_fold.py holds them equal
        kind = f"{system}/{resource.type}"
        if len(self.resources) < MAX_TRACKED_ITEMS:
            resource_id = resource.id
            self.resources.add(f"{kind}/{resource_id}" if resource_id else kind)
        if kind not in self.resource_kinds:
            self.resource_kinds.add(kind)
            first[("resource", kind)] = event_id
        self.systems.add(system)
        ip = event.source_ip
        if ip and ip not in self.ips and len(self.ips) < MAX_TRACKED_ITEMS:
            self.ips.add(ip)
            first[("source_ip", ip)] = event_id
        sample = self._sample
        if len(sample) < SAMPLE_SIZE:
            _heappush(sample, (records, event_id))
        elif records > sample[0][0]:
            _heapreplace(sample, (records, event_id))

    def merge(self, hour: WindowStats) -> None:
        """Fold a closed shorter window of the same actor into this one (a day gathers its hours).

        A window merged into takes no more events (``add``): its sample is no longer kept a heap.
        """
        # every hour of every actor is folded: the tests below skip what an hour usually has nothing of, or
        # nothing new in (a day's later hours repeat its first hours' classes, kinds and addresses)
        self.events += hour.events
        self.records += hour.records
        self.repeat_records += hour.repeat_records  # a day's: the repeats within each of its hours
        self.egress_records += hour.egress_records
        if hour.egress_by_action:
            by_action = self.egress_by_action
            for action, records in hour.egress_by_action.items():
                by_action[action] = by_action.get(action, 0) + records
        self.high_records += hour.high_records
        self.denied += hour.denied
        self.errors += hour.errors
        self.outside_business_events += hour.outside_business_events
        self.documented_records += hour.documented_records
        if hour.purposes and len(self.purposes) < 5:
            self.purposes.update(sorted(hour.purposes)[: 5 - len(self.purposes)])
        class_records = self.class_records
        for name, records in hour.class_records.items():
            class_records[name] = class_records.get(name, 0) + records
        if hour.touch_records and self.touch_records is not None:
            # a day whose first hour kept none (not asked of then) keeps none: it would count only part of the day
            by_touch = self.touch_records
            for classes, records in hour.touch_records.items():
                by_touch[classes] = by_touch.get(classes, 0) + records
        if hour.customers and len(self.customers) < MAX_TRACKED_CUSTOMERS:
            self.customers |= hour.customers
        if len(self.resources) < MAX_TRACKED_ITEMS:
            self.resources |= hour.resources
        self.resource_kinds |= hour.resource_kinds
        self.systems |= hour.systems
        if len(self.ips) < MAX_TRACKED_ITEMS:
            self.ips |= hour.ips
        self.hours |= hour.hours
        if hour.new_items and not hour.new_items.keys() <= self.new_items.keys():
            new_items = self.new_items
            for key, event_id in hour.new_items.items():
                new_items.setdefault(key, event_id)
        if not hour.first_ids.keys() <= self.first_ids.keys():
            first_ids = self.first_ids
            for key, event_id in hour.first_ids.items():
                first_ids.setdefault(key, event_id)
        if hour.denied_times:
            room = MAX_DENIED_TIMES - len(self.denied_times)
            if room > 0:
                self.denied_times.extend(hour.denied_times[:room])
        self.denied_high += hour.denied_high
        if hour.first_ts < self.first_ts:
            self.first_ts = hour.first_ts
        if hour.last_ts > self.last_ts:
            self.last_ts = hour.last_ts
        # the merged sample is the SAMPLE_SIZE largest (record_count, event_id) items of the samples merged, in
        # whatever order they come: they are gathered as they come, and cut down only when read or past a bound
        # (pushed one by one onto the heap, they were a sixth of this method's time)
        sample = self._sample
        sample += hour._sample
        if len(sample) > MAX_MERGED_SAMPLE:
            self._cut_sample()

    def _cut_sample(self) -> list[tuple[int, str]]:
        """The sample, its items past SAMPLE_SIZE (left by ``merge``) dropped; a heap again.

        A heap stays as it is: a state saved, restored (``from_state`` makes a heap) and saved again is the same.
        """
        sample = self._sample
        if len(sample) > SAMPLE_SIZE:
            sample.sort()  # a sorted list is a min-heap
            del sample[:-SAMPLE_SIZE]
        else:
            heapq.heapify(sample)
        return sample

    @property
    def documented_share(self) -> float:
        return self.documented_records / self.records if self.records else 0.0

    @property
    def distinct_customers(self) -> int:
        return len(self.customers)

    @property
    def records_counted_once(self) -> int:
        """Records with each logged customer's counted once: the repeats the logged ids show taken away.

        An access's records count in the share of its customer ids that the window had not logged yet; an access
        that logs none counts whole (nothing tells a repeat), and so does one past ``MAX_TRACKED_CUSTOMERS``.
        Where the ids are a sample, only a sample logged again shows the repeat: different samples of the same
        list count it again, never less than the customers read.
        """
        return self.records - self.repeat_records

    def sample_event_ids(self, limit: int = SAMPLE_SIZE) -> list[str]:
        """The largest accesses first: the evidence an analyst opens first."""
        return [event_id for _, event_id in sorted(self._cut_sample(), key=lambda item: (-item[0], item[1]))[:limit]]

    def densest_denied_burst(self, span: float) -> tuple[int, float, float]:
        """Most denied accesses within any ``span`` seconds: (count, from, to)."""
        times = sorted(self.denied_times)
        best, best_from, best_to, left = 0, 0.0, 0.0, 0
        for right, moment in enumerate(times):
            while moment - times[left] > span:
                left += 1
            if right - left + 1 > best:
                best, best_from, best_to = right - left + 1, times[left], moment
        return best, best_from, best_to

    # -- persistence (detector state survives restarts and moves between instances)
    def to_state(self) -> list:
        actor = self.actor
        state = [
            [actor.id, actor.kind.value, actor.role, actor.department, actor.organization],
            self.start,
            self.end,
            self.events,
            self.records,
            self.egress_records,
            self.high_records,
            self.denied,
            self.errors,
            self.outside_business_events,
            self.documented_records,
            sorted(self.purposes),
            self.class_records,
            sorted(self.customers),
            sorted(self.resources),
            sorted(self.resource_kinds),
            sorted(self.systems),
            sorted(self.ips),
            sorted(self.hours),
            [[what, value, event_id] for (what, value), event_id in self.new_items.items()],
            [[what, value, event_id] for (what, value), event_id in self.first_ids.items()],
            self.denied_times,
            self.denied_high,
            self.first_ts,
            self.last_ts,
            [list(item) for item in self._cut_sample()],
            self.egress_by_action,
            self.repeat_records,
        ]
        if self.touch_records is not None:  # the few windows that keep them: the others' state is as it was
            state.append([[list(classes), records] for classes, records in self.touch_records.items()])
        return state

    @classmethod
    def from_state(cls, state: list) -> WindowStats:
        actor_state, start, end, *rest = state
        # egress by action came later, then repeat records: a window saved before has none of them (its summary
        # names no action; its records count whole against a hard limit, as they did when it was saved).  Records
        # by touch follow only in a window that keeps them
        rest, later = rest[:_FIELDS_BEFORE_EGRESS_BY_ACTION], rest[_FIELDS_BEFORE_EGRESS_BY_ACTION:]
        egress_by_action = later[0] if later else {}
        repeat_records = later[1] if len(later) > 1 else 0
        touch_records = later[2] if len(later) > 2 else None
        actor = ActorRef(actor_state[0], ActorKind(actor_state[1]), *actor_state[2:])
        window = cls(actor, start, end)
        (
            window.events,
            window.records,
            window.egress_records,
            window.high_records,
            window.denied,
            window.errors,
            window.outside_business_events,
            window.documented_records,
            purposes,
            window.class_records,
            customers,
            resources,
            resource_kinds,
            systems,
            ips,
            hours,
            new_items,
            first_ids,
            window.denied_times,
            window.denied_high,
            window.first_ts,
            window.last_ts,
            sample,
        ) = rest
        window.customers, window.resources, window.systems = set(customers), set(resources), set(systems)
        window.resource_kinds = set(resource_kinds)
        window.purposes = set(purposes)
        window.ips, window.hours = set(ips), set(hours)
        window.new_items = {(what, value): event_id for what, value, event_id in new_items}
        window.first_ids = {(what, value): event_id for what, value, event_id in first_ids}
        window.egress_by_action = dict(egress_by_action)
        window.repeat_records = repeat_records
        if touch_records is not None:
            window.touch_records = {tuple(classes): records for classes, records in touch_records}
        window._sample = [tuple(item) for item in sample]
        heapq.heapify(window._sample)
        return window
