"""The simulation: a plan built up front, events streamed day by day.

Only the plan (people, their habits, the dated episodes) is held in memory.
Events are generated one local day at a time and released as soon as no
later day can produce anything that should come before them, so memory stays
around one or two days of events whatever the span.
"""

from __future__ import annotations

import gc
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from operator import itemgetter
from typing import Any

from .behaviours import human_day, service_day
from .customers import CustomerPools
from .episode import Episode, Play
from .events import EventBuilder, Pending
from .jobs import plan_benign
from .organisation import Actor, Organisation, build_organisation
from .randomness import stream_rng
from .scenarios import plan_scenarios
from .settings import SimulationSettings
from .timeline import SECOND_MS, Timeline, TimestampFormatter, utc_text

GENERATOR = "accesswatch-simulator/1"
BUSY_DAY_FRACTION = 0.57  # the sale falls a little after mid-span: day 17 of 30
MIN_DAYS_FOR_BUSY_DAY = 8  # a sale day only stands out against a week of normal days
SAMPLE_IDS = 10
arrival_of = itemgetter(0)
timestamp_of = itemgetter(2)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a day of events is built.

    Those events form no reference cycles, yet each collection would rescan
    the growing day buffer: at a million events that was a fifth of the run
    time. The pause never spans a yield, and a collector the caller had
    disabled stays disabled.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class Simulation:
    def __init__(self, settings: SimulationSettings) -> None:
        self.settings = settings
        self.timeline = Timeline.create(settings.start, settings.days)
        self.organisation: Organisation = build_organisation(settings, self.timeline)
        busy = round(settings.days * BUSY_DAY_FRACTION)
        self.busy_day: int | None = busy if settings.days >= MIN_DAYS_FOR_BUSY_DAY else None
        scenarios, notes = plan_scenarios(self.organisation, self.timeline, settings.scenarios)
        self.notes: tuple[str, ...] = tuple(notes)
        self.episodes: tuple[Episode, ...] = tuple(scenarios + plan_benign(self.organisation, self.timeline,
                                                                           self.busy_day))
        by_day: defaultdict[int, list[tuple[tuple[str, int, str], Play]]] = defaultdict(list)
        for episode in self.episodes:
            if episode.play is not None:  # label-only episodes emit nothing
                by_day[episode.day].append((episode.stream_key, episode.play))
        self._episodes_by_day = dict(by_day)
        self._customers = CustomerPools(settings.seed)

    def events(self) -> Iterator[dict]:
        """Contract events, ordered by arrival: at most max_disorder_seconds out of timestamp order."""
        clock = TimestampFormatter()
        pending: list[Pending] = []
        for day in range(self.timeline.local_days):
            with _collector_paused():
                pending += self._day(day, clock)
                pending.sort()  # by arrival, then event id (unique, so events are never compared)
            # Everything generated later has a timestamp, hence an arrival, at or after the next local midnight.
            ready = bisect_left(pending, self.timeline.day_start(day + 1), key=arrival_of)
            for item in pending[:ready]:
                yield item[3]
            del pending[:ready]
        for item in pending:
            yield item[3]

    def _builder(self, clock: TimestampFormatter, sink: list[Pending], *key: object) -> EventBuilder:
        rng = stream_rng(self.settings.seed, *key)
        return EventBuilder(rng, clock, self._customers, self.settings.max_disorder_seconds * SECOND_MS, sink)

    def _day(self, day: int, clock: TimestampFormatter) -> list[Pending]:
        sink: list[Pending] = []
        for actor in self.organisation.actors:
            builder = self._builder(clock, sink, "routine", actor.index, day)
            if actor.kind == "service":
                service_day(actor, day, self.timeline, builder)
            else:
                human_day(actor, day, self.timeline, self.busy_day, builder)
        for stream_key, play in self._episodes_by_day.get(day, ()):
            play(self._builder(clock, sink, "episode", *stream_key))
        return self._inside(sink)

    def _inside(self, items: list[Pending]) -> list[Pending]:
        start, end = self.timeline.start_ms, self.timeline.end_ms
        if not items or (start <= min(items, key=timestamp_of)[2] and max(items, key=timestamp_of)[2] < end):
            return items  # the usual day: nothing to clip, and no copy
        return [item for item in items if start <= item[2] < end]

    def episode_events(self, episode: Episode) -> tuple[list[Pending], str]:
        """Regenerate one episode's events (as in the stream) and its description."""
        assert episode.play is not None, "label-only episodes have no events"
        sink: list[Pending] = []
        description = episode.play(self._builder(TimestampFormatter(), sink, "episode", *episode.stream_key))
        return sorted(self._inside(sink), key=itemgetter(2, 1)), description

    def labels(self) -> dict:
        """Ground truth for evaluation; see the package docstring for the shape."""
        scenarios: list[dict[str, Any]] = []  # JSON rows
        benign: list[dict[str, Any]] = []
        for episode in self.episodes:
            if episode.play is None:
                assert episode.span is not None, "label-only episodes always carry a span"
                start, end = episode.span
                description = episode.description
                sample: list[str] = []
            else:
                items, description = self.episode_events(episode)
                if not items:  # fell outside the window (e.g. a job before the start time)
                    continue
                start, end = items[0][2], items[-1][2]
                sample = [item[1] for item in items[:SAMPLE_IDS]]
            actor_id = episode.actor.actor_id if episode.actor else None
            if episode.is_scenario:
                scenarios.append({"scenario_id": episode.scenario_id, "kind": episode.kind, "actor_id": actor_id,
                                  "start": utc_text(start), "end": utc_text(end), "event_ids_sample": sample,
                                  "description": description})
            else:
                benign.append({"kind": episode.kind, "actor_id": actor_id, "start": utc_text(start),
                               "end": utc_text(end), "description": description})
        benign.sort(key=lambda b: (b["start"], b["kind"]))
        scenarios.sort(key=lambda s: s["start"])
        return {
            "seed": self.settings.seed,
            "days": self.settings.days,
            "start": utc_text(self.timeline.start_ms),
            "end": utc_text(self.timeline.end_ms),
            "generator": GENERATOR,
            "actors": [self._actor_label(a) for a in self.organisation.actors],
            "scenarios": scenarios,
            "benign": benign,
            "notes": list(self.notes),
        }

    def _actor_label(self, actor: Actor) -> dict:
        first_active = max(self.timeline.day_start(actor.first_day), self.timeline.start_ms)
        return {"actor_id": actor.actor_id, "kind": actor.kind, "role": actor.role, "department": actor.department,
                "organization": actor.organization, "first_active": utc_text(first_active),
                "shift_worker": actor.shift_worker}


def simulate(settings: SimulationSettings) -> Simulation:
    return Simulation(settings)
