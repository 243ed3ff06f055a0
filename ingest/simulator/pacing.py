"""Replaying events in accelerated real time, for demos."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime


def paced(events: Iterable[dict], speedup: float, clock: Callable[[], float] = time.monotonic,
          sleep: Callable[[float], None] = time.sleep) -> Iterator[dict]:
    """Yield events no sooner than their event time allows, compressed `speedup` times.

    speedup=3600 plays an hour a second. Late (out-of-order) events go out at once.
    """
    if speedup <= 0:
        raise ValueError(f"speedup must be positive, got {speedup}")
    origin: tuple[float, float] | None = None  # (event time, wall clock) of the first event
    for event in events:
        moment = datetime.fromisoformat(event["timestamp"]).timestamp()
        if origin is None:
            origin = (moment, clock())
        delay = origin[1] + (moment - origin[0]) / speedup - clock()
        if delay > 0:
            sleep(delay)
        yield event
