"""A batch folds into the engine's windows as its events one at a time would, however it is cut.

``DetectionEngine.process`` carries what it worked out of the latest event (its UTC hour and the zone's offset
in it, its local hour) on to the next, and any per-batch shortcut of the fold would carry more (a window's span,
its open windows, events grouped by window): each must be worked out again when what it came from moves (the
zone's offset at a daylight-saving change, windows closed mid-batch, a late event).  A batch of one event
carries nothing over: the reference.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from detectors.engine import DetectionEngine, _span
from detectors.windows import LocalClock
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


def _place(clock: LocalClock, ts: float, short: float) -> tuple[float, int, float, float]:
    """What ``process`` works out of an instant: its UTC hour, the zone's offset, its local hour, its window."""
    offset = clock.offset(ts)
    local = ts + offset
    return ts // 3600, offset, local // 3600, local // short * short - offset


@pytest.mark.parametrize("zone", [*ZONES, "Australia/Lord_Howe"])  # Lord Howe moves by half an hour
@pytest.mark.parametrize("short", [3600.0, 1800.0, 600.0, 86400.0])
def test_every_instant_of_a_span_is_placed_as_the_one_it_was_found_from(zone: str, short: float) -> None:
    """``process`` skips the arithmetic for an event in the span of the one before: it must come out the same."""
    clock, rng = LocalClock(ZoneInfo(zone)), random.Random(zone)
    starts = [
        START.get(zone, datetime(2026, 10, 3, 14, tzinfo=UTC)).timestamp(),
        datetime(2027, 4, 3, tzinfo=UTC).timestamp(),
    ]
    for start in starts:
        for _ in range(300):
            ts = start + rng.uniform(-86400, 86400) + rng.choice([0.0, 0.5e-6, 1e-6, 0.999999])
            utc_hour, offset, local_hour, window = place = _place(clock, ts, short)
            span_from, span_to = _span(utc_hour, offset, local_hour, window, window + short)
            assert span_from <= ts < span_to
            for inside in (
                span_from,
                span_to - 1e-6,
                math.nextafter(span_to, -math.inf),
                rng.uniform(span_from, span_to),
            ):
                assert _place(clock, inside, short) == place
            assert _place(clock, span_to, short) != place


def test_a_span_is_empty_where_a_local_time_could_round() -> None:
    """Past a power of two (2038-01-19 03:14:08 UTC) a sum of an instant and a positive offset can round up."""
    clock = LocalClock(ZoneInfo("Asia/Kolkata"))
    ts = 2.0**31 - 3 * 3600 - 0.25  # 05:30 ahead: its local hour ends past 2**31
    utc_hour, offset, local_hour, window = _place(clock, ts, 3600.0)
    assert math.isnan(_span(utc_hour, offset, local_hour, window, window + 3600.0)[0])
    before_1970 = -86400.5
    utc_hour, offset, local_hour, window = _place(clock, before_1970, 3600.0)
    assert math.isnan(_span(utc_hour, offset, local_hour, window, window + 3600.0)[0])
