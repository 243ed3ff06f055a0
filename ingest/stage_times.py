"""Where a run's time went, stage by stage, measured inside the run.

On a shared machine the speed of the same code drifts by a fifth within an
hour, so events/s alone cannot say what bounds a replay.  These figures
can: what the main thread waited for (the store writer, the detection
worker), and how long the writer worked against how long it was on a CPU
(the rest it spent waiting for the interpreter lock or a core).  Timed per
batch, never per event: a few clock reads a batch cost nothing measurable.

The CPU figures, one per thread that does the work (the main thread, the
store writer, the detection worker), say where the machine's cores went:
when a replay is short of CPU, waits alone do not tell which work to cut.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TypeVar

Result = TypeVar("Result")


@dataclass(slots=True)
class StageTimes:
    """Seconds, summed over a run."""

    reading: float = 0.0  # the main thread, taking batches of lines from the source
    parsing: float = 0.0  # ... decoding and validating them
    waiting_for_store: float = 0.0  # ... waiting for the writer to store a batch
    judging: float = 0.0  # ... judging a batch in place, or handing it to the worker (waiting for it, if ahead)
    main_cpu: float = 0.0  # the main thread on a CPU, the whole run (judging included while it stays in place)
    store_busy: float = 0.0  # the store writer's thread, writing (wall clock)
    store_cpu: float = 0.0  # ... of which on a CPU
    detection_busy: float = 0.0  # the detection worker, judging (wall clock; 0 if detection stayed in place)
    detection_cpu: float = 0.0  # the worker process on a CPU, all its threads, from its start (its imports too)

    def as_dict(self) -> dict[str, float]:
        return {name: round(seconds, 3) for name, seconds in asdict(self).items()}

    def store(self, work: Callable[..., Result], *args: object) -> Result:
        """``work(*args)`` on the store writer's thread, timed as the writer's."""
        started, on_cpu = time.perf_counter(), time.thread_time()
        try:
            return work(*args)
        finally:
            self.store_busy += time.perf_counter() - started
            self.store_cpu += time.thread_time() - on_cpu
