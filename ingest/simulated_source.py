"""The built-in simulator as a live source: a month of an organisation's access log, in accelerated real time."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import orjson

from ingest.simulator import SimulationSettings, simulate
from ingest.sources import RawRecord, Source
from models.event import parse_rfc3339


class SimulatorSource(Source):
    """Plays simulated events at ``speed`` event-seconds per wall-second (``inf``: as fast as possible).

    Events are serialised to JSON and parsed again by the pipeline, like any
    other source's lines: the demo exercises the real path.
    """

    name = "simulator"
    live = True

    def __init__(
        self,
        settings: SimulationSettings,
        speed: float,
        max_wait: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.speed = speed
        self.max_wait = max_wait  # a batch leaves at least this often, so alerts show promptly
        self._clock = clock
        self._sleep = sleep

    def batches(self, max_records: int) -> Iterator[list[RawRecord]]:
        origin: tuple[float, float] | None = None
        batch: list[RawRecord] = []
        batch_opened = self._clock()
        for number, event in enumerate(simulate(self.settings).events(), start=1):
            if self.stopping:
                break
            moment = parse_rfc3339(event["timestamp"]).timestamp()
            if origin is None:
                origin = (moment, self._clock())
            due = origin[1] + (moment - origin[0]) / self.speed
            now = self._clock()
            if due > now:
                if batch and (due - batch_opened > self.max_wait or due > now + 0.05):
                    yield batch
                    batch = []
                self._wait_until(due)
            if not batch:
                batch_opened = self._clock()
            data = orjson.dumps(event)
            batch.append(RawRecord(data, "simulator", f"event {number}", len(data)))
            if len(batch) >= max_records:
                yield batch
                batch = []
        if batch:
            yield batch

    def _wait_until(self, due: float) -> None:
        while not self.stopping:
            left = due - self._clock()
            if left <= 0:
                return
            self._sleep(min(left, 0.2))
