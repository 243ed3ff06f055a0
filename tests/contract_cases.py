"""Crafted events around the contract's schema, shared by the tests that hold a validator to it."""

from __future__ import annotations

import json


def crafted_events(base: dict) -> dict[str, object]:
    """Crafted events, each one edit away from a valid one; the label says what was done."""

    def edit(path: str, value: object = ..., delete: bool = False) -> dict:
        event = json.loads(json.dumps(base))
        target = event
        keys = path.split(".")
        for key in keys[:-1]:
            target = target[key]
        if delete:
            target.pop(keys[-1], None)
        else:
            target[keys[-1]] = value
        return event

    return {
        "missing event_id": edit("event_id", delete=True),
        "empty event_id": edit("event_id", ""),
        "long event_id": edit("event_id", "x" * 129),
        "numeric event_id": edit("event_id", 42),
        "unknown top-level key": {**base, "severity": "high"},
        "unknown actor key": edit("actor.email", "a@b.c"),
        "unknown resource key": edit("resource.owner", "x"),
        "timestamp without offset": edit("timestamp", "2026-11-02T09:15:30"),
        "timestamp with compact offset": edit("timestamp", "2026-11-02T09:15:30+0800"),
        "timestamp offset of 60 minutes": edit("timestamp", "2026-11-02T09:15:30+08:60"),
        "timestamp offset of 99 minutes": edit("timestamp", "2026-11-02T09:15:30-05:99"),
        "timestamp offset of 24 hours": edit("timestamp", "2026-11-02T09:15:30+24:00"),
        "timestamp at the largest offset": edit("timestamp", "2026-11-02T09:15:30-23:59"),
        "timestamp as a date": edit("timestamp", "2026-11-02"),
        "timestamp with a space": edit("timestamp", "2026-11-02 09:15:30Z"),
        "timestamp as a number": edit("timestamp", 1762074930),
        "impossible date": edit("timestamp", "2026-02-30T09:15:30Z"),
        "actor kind unknown": edit("actor.kind", "robot"),
        "actor without id": edit("actor.id", delete=True),
        "action unknown": edit("action", "steal"),
        "action in capitals": edit("action", "READ"),
        "record_count negative": edit("record_count", -1),
        "record_count too large": edit("record_count", 100_000_001),
        "record_count as string": edit("record_count", "5"),
        "record_count fractional": edit("record_count", 5.5),
        "record_count boolean": edit("record_count", True),
        "record_count whole float": edit("record_count", 5.0),  # valid for both: JSON Schema's integer
        "resource without system": edit("resource.system", delete=True),
        "empty resource type": edit("resource.type", ""),
        "fields not a list": edit("fields", "name"),
        "fields with a number": edit("fields", ["name", 3]),
        "too many fields": edit("fields", [f"f{i}" for i in range(513)]),
        "too many customer ids": edit("customer_ids", [f"c-{i}" for i in range(10_001)]),
        "outcome unknown": edit("outcome", "maybe"),
        "negative bytes": edit("bytes", -5),
        "extra is not an object": edit("extra", "free text"),
        "extra with anything inside": edit("extra", {"nested": {"deep": [1, 2, {"x": None}]}}),  # valid
        "null optional field": edit("purpose", None),
        "not an object": [base],
        "leap second": edit("timestamp", "2026-12-31T23:59:60Z"),
        "lower-case t and z": edit("timestamp", "2026-11-02t09:15:30.5z"),  # valid RFC 3339
        "nine fraction digits": edit("timestamp", "2026-11-02T09:15:30.123456789+05:45"),  # valid
    }
