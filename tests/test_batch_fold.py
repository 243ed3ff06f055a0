"""A batch folds into the engine's windows as its events one at a time would, however it is cut.

``DetectionEngine.process`` carries what it worked out of the latest event (its UTC hour and the zone's offset
in it, its local hour) on to the next, and any per-batch shortcut of the fold would carry more (a window's span,
its open windows, events grouped by window): each must be worked out again when what it came from moves (the
zone's offset at a daylight-saving change, windows closed mid-batch, a late event).  A batch of one event
carries nothing over: the reference.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from detectors.engine import DetectionEngine
from models.config import Settings
from models.event import AccessEvent
from tests.factories import event

# 2026-10-25 01:00 UTC: Europe/Berlin goes from +02:00 to +01:00; St John's (-02:30 to -03:30) on 2026-11-01
ZONES = ["UTC", "Asia/Kolkata", "Europe/Berlin", "America/St_Johns"]
START = {
    "UTC": datetime(2026, 10, 24, 20, tzinfo=UTC),
    "Asia/Kolkata": datetime(2026, 10, 24, 20, tzinfo=UTC),
    "Europe/Berlin": datetime(2026, 10, 24, 20, tzinfo=UTC),
    "America/St_Johns": datetime(2026, 11, 1, 0, tzinfo=UTC),
}


def _engine(settings: Settings, zone: str) -> DetectionEngine:
    organisation = settings.organisation.model_copy(update={"timezone": zone})
    return DetectionEngine(settings.model_copy(update={"organisation": organisation}), [])


def _story(start: datetime, seed: int = 3) -> list[AccessEvent]:
    """Ten hours of a few actors, mostly in time order, some a little out of it and some late past the watermark."""
    rng = random.Random(seed)
    events = []
    moment = start
    for _ in range(700):
        moment += timedelta(seconds=rng.randint(1, 100))
        at = moment
        if rng.random() < 0.1:
            at = moment - timedelta(seconds=rng.randint(1, 3000))  # within or past the allowed lateness (600 s)
        fields = rng.choice([["name"], ["name", "phone"], ["passport_number"], ["bank_account", "name"]])
        events.append(
            event(
                at=at,
                actor={"id": f"emp-{rng.randint(1, 6):04d}"},
                fields=fields,
                outcome=rng.choice(["success"] * 8 + ["denied", "error"]),
                record_count=rng.randint(0, 400),
                customer_ids=[f"c-{rng.randint(1, 50):06d}"],
                source_ip=f"10.0.0.{rng.randint(1, 4)}",
            )
        )
    return events


def _folded(engine: DetectionEngine, events: list[AccessEvent], sizes: list[int]) -> dict:
    late, position = 0, 0
    while position < len(events):
        size = sizes[position % len(sizes)]
        late += engine.process(events[position : position + size]).late_events
        position += size
    assert engine.late_events == late
    return engine.to_state()


@pytest.mark.parametrize("zone", ZONES)
def test_a_batch_folds_into_the_windows_its_events_one_by_one_would(settings: Settings, zone: str) -> None:
    events = _story(START[zone])
    one_by_one = _folded(_engine(settings, zone), events, [1])
    assert one_by_one["late_events"] > 0  # late events were decided mid-batch
    assert one_by_one["profiles"] and one_by_one["open"]["long"]  # windows closed mid-batch, and were learned
    assert _folded(_engine(settings, zone), events, [len(events)]) == one_by_one
    assert _folded(_engine(settings, zone), events, [1, 7, 64, 3, 250]) == one_by_one


def test_an_hour_changing_its_offset_starts_windows_of_its_own(settings: Settings) -> None:
    """Berlin, 2026-10-25: 01:00 UTC is 02:00 local, as 00:00 UTC was: the hour after is another window."""
    engine = _engine(settings, "Europe/Berlin")
    before = event(at=datetime(2026, 10, 25, 0, 30, tzinfo=UTC))
    after = event(at=datetime(2026, 10, 25, 1, 5, tzinfo=UTC))  # the first hour still open
    engine.process([before, after])
    starts = sorted(engine._open["short"])
    assert starts == [before.timestamp.timestamp() - 1800, after.timestamp.timestamp() - 300]
