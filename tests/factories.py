"""Events and alerts for tests, built through the real models (so they are always valid)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson
import pytest

from detectors.classify import Classifier
from models.alert import Alert, Severity
from models.config import Settings
from models.event import AccessEvent, format_utc
from models.fast_event import from_model
from models.flagged import flagged
from models.incident import Incident
from store.base import IncomingEvent

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # a Monday, 09:00 in Asia/Shanghai
_ids = itertools.count(1)


def event_dict(**overrides: Any) -> dict[str, Any]:
    """A contract event as JSON-ready data; ``actor``/``resource`` overrides merge into the defaults."""
    data: dict[str, Any] = {
        "event_id": f"evt-{next(_ids):08d}",
        "timestamp": "2026-11-02T01:00:00Z",
        "actor": {"id": "emp-0001", "kind": "employee", "role": "customer_service", "department": "service"},
        "action": "read",
        "resource": {"system": "crm", "type": "customer_record", "id": "customers"},
        "record_count": 1,
        "customer_ids": ["c-000001"],
        "fields": ["name", "phone"],
        "source_ip": "10.0.0.1",
        "outcome": "success",
    }
    for key in ("actor", "resource"):
        if key in overrides:
            data[key] = {**data[key], **overrides.pop(key)}
    at = overrides.pop("at", None)
    if at is not None:
        data["timestamp"] = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def event(**overrides: Any) -> AccessEvent:
    return AccessEvent.model_validate_json(orjson.dumps(event_dict(**overrides)))


def incoming(settings: Settings, **overrides: Any) -> IncomingEvent:
    raw = orjson.dumps(event_dict(**overrides))
    parsed = AccessEvent.model_validate_json(raw)
    return IncomingEvent(from_model(parsed), raw, Classifier(settings.classification).touch(parsed.fields).classes)


def keyed_by(monkeypatch: pytest.MonkeyPatch, key_of: Callable[[str], int]) -> None:
    """The store keys event ids with ``key_of`` (``id_key``, and a batch's ``id_keys``): collisions made to order."""
    import store.sqlite as module

    monkeypatch.setattr(module, "id_key", key_of)
    monkeypatch.setattr(module, "id_keys", lambda event_ids: np.array([key_of(i) for i in event_ids], np.int64))


def at(hours: float = 0, days: float = 0) -> datetime:
    return T0 + timedelta(hours=hours, days=days)


def alert(**overrides: Any) -> Alert:
    data: dict[str, Any] = {
        "alert_id": f"aw-{next(_ids):024d}",
        "detector": "bulk_read",
        "severity": Severity.HIGH,
        "actor_id": "emp-0001",
        "actor_kind": "employee",
        "window_start": T0,
        "window_end": T0 + timedelta(hours=1),
        "score": 5.0,
        "summary": "Employee emp-0001 read 5,000 records, 50x their usual of 100.",
        "evidence": {"records": 5000, "event_ids": ["evt-1"]},
    }
    data.update(overrides)
    return Alert.model_validate(data)


def incident_of(alert: Alert, incident_id: str, risk_score: float) -> Incident:
    """The incident ``alert`` alone opens, as the incident book would make it, with the id and score given."""
    return Incident(
        incident_id=incident_id,
        actor_id=alert.actor_id,
        actor_kind=alert.actor_kind,
        actor_role=alert.actor_role,
        actor_department=alert.actor_department,
        actor_organization=alert.actor_organization,
        severity=alert.severity,
        risk_score=risk_score,
        window_start=alert.window_start,
        window_end=alert.window_end,
        alert_ids=[alert.alert_id],
        detectors=[alert.detector],
        summary=alert.summary,
        created_at=alert.window_end,
        updated_at=alert.window_end,
        flagged_end=flagged([alert], alert.window_start, alert.window_end).end,
    )


def incidents_flagged_at_three_hours() -> dict[str, Alert]:
    """Three incidents' alerts, by incident id, for the queue's order by flagged activity: a day's (its window
    00:00-24:00, flagged 16:00-17:00 by its spans), a morning's (09:00-10:00) and an evening's (18:00-19:00).  By
    window start the day's sorts below the morning's; by window end above the evening's; by flagged end between."""
    spans = [[format_utc(at(hours=16)), format_utc(at(hours=17)), 8.0, "high", 900]]
    spans.append([format_utc(T0), format_utc(at(hours=24)), 4.0, "medium", 1200])
    return {
        "inc-day": alert(window_start=T0, window_end=at(hours=24), evidence={"spans": spans}),
        "inc-morning": alert(actor_id="emp-0002", window_start=at(hours=9), window_end=at(hours=10)),
        "inc-evening": alert(actor_id="emp-0003", window_start=at(hours=18), window_end=at(hours=19)),
    }
