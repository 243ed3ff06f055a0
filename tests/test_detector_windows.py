"""Per-actor windows and known-item sets: the shortcuts of their hot paths hold what the plain loops held."""

from __future__ import annotations

import random

from detectors.classify import Classifier
from detectors.profiles import BoundedSet
from detectors.windows import ActorRef, WindowStats
from tests.factories import at, event

HOUR, DAY = 3600.0, 86400.0
FIELD_LISTS = [["name"], ["name", "phone"], ["passport_number"], ["bank_account", "email"], ["name"], []]


def _events(seed: int, hours: int, per_hour: int) -> list:
    rng = random.Random(seed)
    events = []
    for hour in range(hours):
        for n in range(per_hour):
            events.append(
                event(
                    timestamp=at(hours=hour, days=0).replace(minute=n % 60).isoformat(),
                    fields=rng.choice(FIELD_LISTS),
                    outcome=rng.choice(["success", "success", "success", "denied", "error"]),
                    action=rng.choice(["read", "read", "export", "print"]),
                    record_count=rng.randint(1, 400),
                    customer_ids=[f"c-{rng.randint(1, 60):06d}" for _ in range(rng.randint(0, 4))],
                    resource={"system": rng.choice(["crm", "billing"]), "type": rng.choice(["record", "invoice"])},
                    source_ip=rng.choice(["10.0.0.1", "10.0.0.2", "203.0.113.9"]),
                    purpose=rng.choice([None, "ticket-1", "case-2"]),
                )
            )
    return events


def _figures(window: WindowStats) -> tuple:
    # repeat records are left out: an hour counts the repeats within it, and a day holds its hours' (the next test)
    *state, _repeat_records = window.to_state()
    state[1] = state[2] = None  # start and end differ between an hour and its day
    state[-2] = sorted(map(tuple, state[-2]))  # the sample is a heap: its list order follows its history
    state[-1] = sorted(state[-1].items())  # egress by action, in the order actions came
    return tuple(map(str, state))


def test_a_day_folded_from_its_hours_holds_what_the_day_would_have_gathered_event_by_event(settings):
    classifier = Classifier(settings.classification)
    actor = ActorRef.of(_events(0, 1, 1)[0])
    events = _events(seed=3, hours=6, per_hour=12)
    direct = WindowStats(actor, 0.0, DAY)
    hours: dict[float, WindowStats] = {}
    for item in events:
        ts = item.timestamp.timestamp()
        start = ts // HOUR * HOUR
        hour = hours.setdefault(start, WindowStats(actor, start, start + HOUR))
        touch = classifier.touch(item.fields)
        hour.add(item, ts, touch, True)
        direct.add(item, ts, touch, True)
    for hour in hours.values():  # a first touch the profile did not know, in one hour only
        hour.new_items[("resource", f"crm/{hour.start}")] = "evt-new"
        direct.new_items[("resource", f"crm/{hour.start}")] = "evt-new"
    folded = WindowStats(actor, 0.0, DAY)
    for hour in hours.values():
        folded.merge(hour)
    assert _figures(folded) == _figures(direct)
    assert list(folded.first_ids.items()) == list(direct.first_ids.items())  # first touches, in their order
    assert folded.repeat_records == sum(hour.repeat_records for hour in hours.values()) > 0


def test_records_count_each_logged_customer_once_by_the_share_of_an_access_s_ids_seen_before(settings):
    """The measure of ``bulk_read``'s hard limit: a list handled in three steps is one list, not three."""
    touch = Classifier(settings.classification).touch(["name"])
    window = WindowStats(ActorRef.of(event()), 0.0, HOUR)
    listed = [f"c-{n:06d}" for n in range(10_000)]  # the first 10,000 of a list of 17,982: all an access may log

    def access(records: int, customer_ids: list[str] | None, action: str = "search") -> None:
        item = event(record_count=records, customer_ids=customer_ids, action=action)
        window.add(item, item.timestamp.timestamp(), touch, True)

    for action in ("search", "export", "download"):
        access(17_982, listed, action)
    assert (window.records, window.records_counted_once) == (53_946, 17_982)
    access(1_000, listed[:500] + [f"new-{n}" for n in range(500)])  # half of them seen: half its records count
    access(700, None)  # no ids: nothing tells a repeat
    assert (window.records, window.records_counted_once) == (55_646, 17_982 + 500 + 700)
    restored = WindowStats.from_state(window.to_state())
    assert restored.records_counted_once == window.records_counted_once


def test_each_class_an_event_touched_keeps_its_first_event_whatever_the_order_of_touches(settings):
    classifier = Classifier(settings.classification)
    events = _events(seed=5, hours=1, per_hour=40)
    window = WindowStats(ActorRef.of(events[0]), 0.0, HOUR)
    expected: dict[str, str] = {}
    for item in events:
        touch = classifier.touch(item.fields)
        window.add(item, item.timestamp.timestamp(), touch, True)
        for name in touch.classes:
            expected.setdefault(name, item.event_id)
    found = {value: event_id for (what, value), event_id in window.first_ids.items() if what == "data_class"}
    assert found == expected and len(expected) >= 4


def test_adding_several_known_items_keeps_the_most_recent_ones_in_the_order_one_by_one_would():
    rng = random.Random(11)
    together, one_by_one = BoundedSet(8), BoundedSet(8)
    for _ in range(200):
        batch = [f"item-{rng.randint(1, 14)}" for _ in range(rng.randint(0, 4))]
        together.add_all(batch)
        for item in batch:
            one_by_one.add(item)
        assert list(together.items) == list(one_by_one.items)


def test_egress_is_counted_by_action_and_a_window_saved_before_that_still_loads(settings):
    classifier = Classifier(settings.classification)
    events = _events(seed=5, hours=3, per_hour=20)
    window = WindowStats(ActorRef.of(events[0]), 0.0, DAY)
    for item in events:
        window.add(item, item.timestamp.timestamp(), classifier.touch(item.fields), True)
    served = [e for e in events if e.outcome.value == "success"]
    expected = {
        action: sum(e.record_count for e in served if e.action.value == action) for action in ("export", "print")
    }
    assert window.egress_by_action == expected and sum(expected.values()) == window.egress_records > 0
    assert WindowStats.from_state(window.to_state()).egress_by_action == expected
    saved_before = window.to_state()[:-2]  # the state as versions before egress by action saved it
    restored = WindowStats.from_state(saved_before)
    assert restored.egress_by_action == {} and restored.egress_records == window.egress_records
    # and as versions before repeat records: its records count whole, as they did then
    restored = WindowStats.from_state(window.to_state()[:-1])
    assert restored.egress_by_action == expected and restored.repeat_records == 0 < window.repeat_records
    assert restored.records_counted_once == restored.records
