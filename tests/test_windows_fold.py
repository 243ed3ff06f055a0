"""Folding events into hours and hours into days: the shortcuts keep what the plain loops kept."""

from __future__ import annotations

import heapq
import random

from detectors.classify import Classifier
from detectors.windows import MAX_MERGED_SAMPLE, SAMPLE_SIZE, ActorRef, WindowStats
from models.config import Settings
from tests.factories import event

HOUR = 3600.0


def _hour_with_sample(actor: ActorRef, start: float, items: list[tuple[int, str]]) -> WindowStats:
    hour = WindowStats(actor, start, start + HOUR)
    hour._sample = list(items)
    heapq.heapify(hour._sample)
    return hour


def _pushed_one_by_one(samples: list[list[tuple[int, str]]]) -> list[tuple[int, str]]:
    """The day's sample as a bounded heap kept item by item (``merge`` before it gathered them)."""
    kept: list[tuple[int, str]] = []
    for sample in samples:
        for item in sample:
            if len(kept) < SAMPLE_SIZE:
                heapq.heappush(kept, item)
            elif item > kept[0]:
                heapq.heapreplace(kept, item)
    return kept


def test_a_day_keeps_the_sample_a_heap_kept_item_by_item_would_whatever_the_number_of_its_hours() -> None:
    rng = random.Random(7)
    actor = ActorRef.of(event())
    # few distinct record counts: ties, broken by the event id, decide which items stay
    samples = [
        [(rng.choice([1, 5, 5, 40, 300]), f"evt-{hour:02d}-{n:02d}") for n in range(rng.randint(0, SAMPLE_SIZE))]
        for hour in range(30)
    ]
    assert sum(map(len, samples)) > MAX_MERGED_SAMPLE  # the day is cut down while it gathers, not only when read
    day = _hour_with_sample(actor, 0.0, samples[0])
    for number, sample in enumerate(samples[1:], start=1):
        day.merge(_hour_with_sample(actor, number * HOUR, sample))
    expected = _pushed_one_by_one(samples)
    reference = WindowStats(actor, 0.0, HOUR)
    reference._sample = expected
    assert day.sample_event_ids() == reference.sample_event_ids()
    assert sorted(map(tuple, day.to_state()[-3])) == sorted(expected)  # the sample, before egress by action
    assert sorted(WindowStats.from_state(day.to_state())._sample) == sorted(expected)


def test_a_touch_carries_the_first_event_keys_of_its_classes(settings: Settings) -> None:
    touch = Classifier(settings.classification).touch(["name", "passport_number", "no_such_field"])
    assert touch.first_keys == {("data_class", name) for name in touch.classes}
    assert len(touch.first_keys) >= 2
    assert touch.ordered_keys == tuple(("data_class", name) for name in sorted(touch.classes))


def test_a_window_keeps_the_touches_own_keys_so_that_it_finds_them_by_identity(settings: Settings) -> None:
    classifier = Classifier(settings.classification)
    first, second = classifier.touch(["name", "passport_number"]), classifier.touch(["passport_number"])
    window = WindowStats(ActorRef.of(event()), 0.0, HOUR)
    for touch in (first, second):
        item = event()
        window.add(item, item.timestamp.timestamp(), touch, True)
    kept = [key for key in window.first_ids if key[0] == "data_class"]
    assert [key[1] for key in kept] == sorted(first.classes)
    assert all(any(key is mine for mine in first.ordered_keys) for key in kept)
    # another field list touching a class shares its key: the look-ups of a later access's classes hit by identity
    assert any(key is mine for key in first.ordered_keys for mine in second.ordered_keys)


def test_a_class_new_to_the_hour_gets_its_first_event_after_touches_of_known_classes(settings: Settings) -> None:
    classifier = Classifier(settings.classification)
    hour = WindowStats(ActorRef.of(event()), 0.0, HOUR)
    ordered = [
        (["name"], "evt-1"),
        (["name", "phone"], "evt-2"),
        (["phone", "name"], "evt-3"),
        (["bank_account"], "evt-4"),
    ]
    for fields, event_id in ordered:
        item = event(event_id=event_id, fields=fields)
        hour.add(item, item.timestamp.timestamp(), classifier.touch(fields), True)
    firsts = {value: event_id for (what, value), event_id in hour.first_ids.items() if what == "data_class"}
    expected: dict[str, str] = {}
    for fields, event_id in ordered:
        for name in classifier.touch(fields).classes:
            expected.setdefault(name, event_id)
    assert firsts == expected


def test_a_window_names_resources_and_their_kinds_as_the_model_does(settings: Settings) -> None:
    touch = Classifier(settings.classification).touch(["name"])
    window = WindowStats(ActorRef.of(event()), 0.0, HOUR)
    resources = [
        {"system": "crm", "type": "record", "id": "r-1"},
        {"system": "crm", "type": "record"},
        {"system": "crm", "type": "record", "id": ""},
        {"system": "a/b", "type": "c", "id": "d/e"},  # a slash inside a name: the same strings either way
        {"system": "a", "type": "b/c", "id": "d"},
    ]
    made = [event(resource=resource) for resource in resources]
    for item in made:
        window.add(item, item.timestamp.timestamp(), touch, True)
    assert window.resources == {item.resource.key for item in made}
    assert window.resource_kinds == {item.resource.kind for item in made}
    assert window.systems == {item.resource.system for item in made}


def test_a_day_saved_restored_and_saved_again_is_the_same_state() -> None:
    actor = ActorRef.of(event())
    # a few items an hour: the day holds fewer than SAMPLE_SIZE, gathered in the order the hours came
    samples = [[(300, "evt-a"), (5, "evt-b")], [(1, "evt-c")], [(40, "evt-d"), (2, "evt-e"), (7, "evt-f")]]
    day = _hour_with_sample(actor, 0.0, samples[0])
    for number, sample in enumerate(samples[1:], start=1):
        day.merge(_hour_with_sample(actor, number * HOUR, sample))
    saved = day.to_state()
    assert WindowStats.from_state(saved).to_state() == saved


def test_records_by_touch_are_kept_only_where_asked_and_a_day_gathers_its_hours(settings: Settings) -> None:
    classifier = Classifier(settings.classification)
    actor = ActorRef.of(event())
    reads = [
        (["name", "passport_number"], 10, "success"),
        (["payment_card", "passport_number"], 5, "success"),
        (["passport_number", "name"], 7, "success"),  # another list of the same classes: the same key
        (["payment_card"], 50, "denied"),  # nothing served, nothing read
    ]
    hours = [WindowStats(actor, n * HOUR, (n + 1) * HOUR) for n in range(2)]
    plain = WindowStats(actor, 0.0, HOUR)
    for window in hours:
        window.touch_records = {}
    for window in (*hours, plain):
        for fields, records, outcome in reads:
            item = event(fields=fields, record_count=records, outcome=outcome)
            window.add(item, item.timestamp.timestamp(), classifier.touch(fields), True)
    assert plain.touch_records is None
    assert hours[0].touch_records == {("government_id", "identity"): 17, ("financial", "government_id"): 5}
    # each access counts in each class it touched, once in its touch: the classes' records follow from the touches'
    for name, records in hours[0].class_records.items():
        assert records == sum(n for classes, n in hours[0].touch_records.items() if name in classes)
    day = hours[0]
    day.merge(hours[1])
    assert day.touch_records == {("government_id", "identity"): 34, ("financial", "government_id"): 10}
    saved = day.to_state()
    restored = WindowStats.from_state(saved)
    assert restored.touch_records == day.touch_records and restored.to_state() == saved
    # a window that keeps none saves the state it always did, and a day whose first hour kept none keeps none
    assert len(plain.to_state()) == len(saved) - 1
    assert WindowStats.from_state(plain.to_state()).touch_records is None
    plain.merge(hours[1])
    assert plain.touch_records is None
