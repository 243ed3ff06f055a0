"""Drive the real detection engine over synthetic access streams, for the rule detectors' tests.

A detector test reads as a story::

    agent = Actor("emp-0001")
    events = stream(
        history(agent, days=14, per_hour=3),                 # ~3 records an hour, two weeks
        burst(agent, local(14, 10), events=10, records=300), # then 3,000 in one hour
    )
    alert = run(events, "bulk_read").only()

``history`` and ``burst`` return lists of JSON-ready contract events (built
with ``tests.factories.event_dict``), so one part can go into several
stories; ``stream`` merges parts in event time and gives the events ids
that depend only on the story, so the same story built twice is the same
stream; ``run`` feeds it to a ``DetectionEngine`` built exactly as the
product builds it (default configuration, ``build_detectors``) in batches,
flushes, and returns the alerts.

Time is local to the organisation (Asia/Shanghai, no daylight saving):
``local(day, hour)`` counts days from Monday 2 November 2026, 00:00.  The
system warm-up is seven days from the first event and an actor's own
baseline needs five active days, so a story's anomaly comes after a
week or two of history.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from configs.loader import load_settings
from detectors.base import Detector, DetectorSettings, Finding
from detectors.engine import DetectionEngine
from detectors.registry import DETECTORS, build_detectors
from detectors.state_codec import decode_state, encode_state
from models.alert import Alert, Severity
from models.config import ConfigError, Settings
from models.event import AccessEvent, parse_rfc3339
from tests.factories import event_dict

ZONE = ZoneInfo("Asia/Shanghai")  # the default configuration's organisation.timezone
DAY0 = datetime(2026, 11, 2, tzinfo=ZONE)  # a Monday, 00:00 local
WORKDAYS = range(5)  # Monday to Friday
OFFICE_HOURS = range(9, 18)
EVERY_DAY = range(7)
MAX_CUSTOMER_IDS = 10_000  # the contract's limit per event

# The fields a customer-service agent reads every day: identity and contact, low and medium sensitivity.
EVERYDAY_FIELDS = ("name", "phone")
PASSPORT_FIELDS = ("name", "passport_number")  # government_id: high sensitivity


@dataclass(frozen=True)
class Actor:
    """Who acts in a story; ``ip`` is the address its accesses come from."""

    id: str
    kind: str = "employee"
    role: str | None = "customer_service"
    department: str | None = "service"
    organization: str | None = None
    ip: str = "10.0.0.1"

    def payload(self) -> dict[str, Any]:
        data = {
            "id": self.id,
            "kind": self.kind,
            "role": self.role,
            "department": self.department,
            "organization": self.organization,
        }
        return {key: value for key, value in data.items() if value is not None}


def team(size: int, role: str = "customer_service", prefix: str = "emp", first: int = 1, **traits: Any) -> list[Actor]:
    """``size`` actors of one role (one peer group), numbered from ``first``, each on its own address."""
    return [
        Actor(f"{prefix}-{n:04d}", role=role, ip=f"10.0.{n // 250}.{n % 250 + 1}", **traits)
        for n in range(first, first + size)
    ]


def local(day: float, hour: float = 0.0, minute: float = 0.0) -> datetime:
    """Local time ``day`` days after Monday 2 November 2026 00:00, at ``hour``:``minute``."""
    return DAY0 + timedelta(days=day, hours=hour, minutes=minute)


def burst(
    actor: Actor,
    at: datetime,
    events: int = 1,
    records: int = 1,
    within: timedelta = timedelta(minutes=30),
    fields: Sequence[str] = EVERYDAY_FIELDS,
    action: str = "read",
    outcome: str = "success",
    **overrides: Any,
) -> list[dict[str, Any]]:
    """``events`` accesses of ``records`` records each, evenly spaced over ``within`` from ``at``.

    Each access names one distinct customer per record (up to the contract's
    limit), numbered from where the access sits in time, so a bulk read
    reaches many customers.  ``overrides`` are contract fields
    (``purpose``, ``resource``, ``source_ip``...).
    """
    step = within / events
    ip = overrides.pop("source_ip", actor.ip)
    base = int(at.timestamp()) % 1_000_000 * 10
    accesses = []
    for n in range(events):
        moment = at + step * n
        served = outcome == "success"
        first = base + n * records
        customers = [f"c-{(first + i) % 10_000_000:07d}" for i in range(min(records, MAX_CUSTOMER_IDS))]
        accesses.append(
            event_dict(
                at=moment,
                actor=actor.payload(),
                action=action,
                record_count=records if served else 0,
                customer_ids=customers if served and customers else None,
                fields=list(fields),
                source_ip=ip,
                outcome=outcome,
                **overrides,
            )
        )
    return accesses


def history(
    actor: Actor,
    days: int,
    per_hour: int = 3,
    records: int = 1,
    hours: Iterable[int] = OFFICE_HOURS,
    weekdays: Iterable[int] = WORKDAYS,
    start_day: int = 0,
    within: timedelta = timedelta(minutes=50),
    **access: Any,
) -> list[dict[str, Any]]:
    """Routine work: ``per_hour`` accesses of ``records`` records in each of ``hours`` on ``weekdays``.

    Runs for ``days`` calendar days from day ``start_day``; hours past
    midnight (a night shift's 0-6) belong to the calendar day they fall on.
    Each hour's accesses are spread over ``within`` from five past.
    ``access`` is passed to ``burst`` (fields, action, outcome, purpose...).
    """
    hours, weekdays = list(hours), set(weekdays)
    accesses = []
    for day in range(start_day, start_day + days):
        if local(day).weekday() in weekdays:
            for hour in hours:
                accesses += burst(actor, local(day, hour, 5), per_hour, records, within, **access)
    return accesses


def stream(*parts: Iterable[dict[str, Any]]) -> list[AccessEvent]:
    """The parts merged in event time (ties keep the order given), as validated contract events.

    Ids are ``e<position>``: the same story always yields the same events,
    so two runs, or two cuttings of one run, can be compared alert for alert.
    """
    merged = sorted(itertools.chain.from_iterable(parts), key=lambda data: data["timestamp"])
    events = []
    for position, data in enumerate(merged):
        events.append(AccessEvent.model_validate_json(orjson.dumps({**data, "event_id": f"e{position:07d}"})))
    return events


def settings_with(**overrides: Any) -> Settings:
    """The default configuration, no environment, with dotted-key overrides (``baselines.system_warmup="2d"``)."""
    return load_settings(env={}, overrides={key.replace("__", "."): value for key, value in overrides.items()})


def detectors_for(
    settings: Settings, only: str | Sequence[str] | None = None, config: Mapping[str, Mapping[str, Any]] | None = None
) -> list[Detector]:
    """The enabled detectors as the product builds them; ``only`` keeps some, ``config`` overrides their keys."""
    names = list(settings.detectors) if only is None else [only] if isinstance(only, str) else list(only)
    config = config or {}
    return build_detectors({name: {**settings.detectors[name], **config.get(name, {})} for name in names})


@dataclass
class Run:
    """What the engine said about a stream."""

    engine: DetectionEngine | None = None  # the last engine (a restart replaces it)
    updates: list[Alert] = field(default_factory=list)  # every alert revision, in the order emitted
    findings: list[Finding] = field(default_factory=list)  # what the detectors returned, in order

    @property
    def alerts(self) -> list[Alert]:
        """The latest revision of every alert, oldest first."""
        latest: dict[str, Alert] = {}
        for alert in self.updates:
            latest[alert.alert_id] = alert
        return sorted(latest.values(), key=Alert.listing_order)

    def of(self, actor_id: str) -> list[Alert]:
        return [alert for alert in self.alerts if alert.actor_id == actor_id]

    def only(self) -> Alert:
        """The one alert of the run (a test failure lists them all when there is not exactly one)."""
        alerts = self.alerts
        assert len(alerts) == 1, f"expected one alert, got {len(alerts)}: {[describe(a) for a in alerts]}"
        return alerts[0]

    def records(self) -> list[dict[str, Any]]:
        """The alerts as the contract's JSON objects."""
        return [alert.to_record() for alert in self.alerts]


def run(
    events: Sequence[AccessEvent],
    only: str | Sequence[str] | None = None,
    config: Mapping[str, Mapping[str, Any]] | None = None,
    settings: Settings | None = None,
    batch: int | Sequence[int] = 1000,
    restart_every: int | None = None,
) -> Run:
    """Feed ``events`` to a fresh engine in batches, close every window, and collect what it said.

    ``batch`` is a batch size, or sizes used in turn (to cut the stream
    unevenly).  ``restart_every`` saves the engine's state after every that
    many batches and continues in a new engine loaded from it, as the
    pipeline does after a restart.
    """
    settings = settings or settings_with()
    assert settings.organisation.timezone == ZONE.key, "stories are told in the configured organisation's time"
    result = Run()
    engine = result.engine = _engine(settings, only, config, result)
    sizes = itertools.cycle([batch] if isinstance(batch, int) else batch)
    position, batches = 0, 0
    while position < len(events):
        size = next(sizes)
        result.updates += engine.process(events[position : position + size]).alerts
        position += size
        batches += 1
        if restart_every and batches % restart_every == 0:
            state = decode_state(encode_state(engine.to_state()))  # through bytes, as the store keeps it
            engine = result.engine = _engine(settings, only, config, result)
            engine.load_state(state)
    result.updates += engine.flush().alerts
    return result


def _engine(
    settings: Settings, only: str | Sequence[str] | None, config: Mapping[str, Mapping[str, Any]] | None, into: Run
) -> DetectionEngine:
    detectors = detectors_for(settings, only, config)
    _record_findings(detectors, into)
    return DetectionEngine(settings, detectors)


def _record_findings(detectors: list[Detector], into: Run) -> None:
    # the instance attribute shadows the class's method: the engine calls this recorder
    for detector in detectors:
        judge = detector.detect

        def recorder(period, judge=judge):
            found = list(judge(period))
            into.findings.extend(found)
            return found

        detector.detect = recorder  # type: ignore[method-assign]


def describe(alert: Alert) -> str:
    """One line per alert for assertion messages."""
    start, end = alert.window_start.astimezone(ZONE), alert.window_end.astimezone(ZONE)
    return (
        f"{alert.detector} {alert.severity} {alert.actor_id} {start:%a %d %H:%M}-{end:%a %d %H:%M} local "
        f"score={alert.score} x{alert.evidence.get('findings')}: {alert.summary}"
    )


# -- checks every rule's tests share ----------------------------------------

# The contract's alert record (shared/contract/README.md): key -> JSON type.
CONTRACT_ALERT_KEYS: dict[str, type | tuple[type, ...]] = {
    "alert_id": str,
    "detector": str,
    "severity": str,
    "actor_id": str,
    "actor_kind": str,
    "window_start": str,
    "window_end": str,
    "score": (int, float),
    "summary": str,
    "evidence": dict,
}
SEVERITIES = ("low", "medium", "high", "critical")
ACTOR_KINDS = ("employee", "partner", "service")


def _value_and_parts(value: Any) -> list[Any]:
    parts = list(value.values()) if isinstance(value, dict) else list(value) if isinstance(value, list) else []
    return [value, *parts]


def assert_rejected(name: str, key: str, value: Any, *expected: str) -> str:
    """Building detector ``name`` with ``key = value`` fails with one line naming the key, value and expectation."""
    with pytest.raises(ConfigError) as raised:
        build_detectors({name: {key: value}})
    message = str(raised.value)
    assert "\n" not in message, message
    assert f"detectors.{name}.{key}" in message, message
    if not message.startswith(f"configuration error: unknown key detectors.{name}.{key}"):
        # the line names the key at fault: in a list or table, the element's (``what.0 = 'phone'``)
        assert any(repr(part) in message for part in _value_and_parts(value)), message
    for words in expected:
        assert words in message, message
    return message


def assert_contract_alert(alert: Alert, detector: str, events: Sequence[AccessEvent]) -> dict[str, Any]:
    """The alert is a well-formed contract record from ``detector``, whose evidence points into ``events``."""
    record = orjson.loads(orjson.dumps(alert.to_record()))  # as it leaves the product
    for key, kind in CONTRACT_ALERT_KEYS.items():
        assert isinstance(record.get(key), kind), f"{key} = {record.get(key)!r}"
    assert record["detector"] == detector
    assert record["severity"] in SEVERITIES and record["actor_kind"] in ACTOR_KINDS
    start, end = parse_rfc3339(record["window_start"]), parse_rfc3339(record["window_end"])
    assert start < end
    assert record["summary"].strip() and "\n" not in record["summary"]
    sample = record["evidence"]["event_ids"]
    by_id = {event.event_id: event for event in events}
    assert sample and set(sample) <= set(by_id), sample
    assert all(by_id[event_id].actor.id == record["actor_id"] for event_id in sample)
    return record


def assert_findings_well_formed(result: Run, detector: str) -> None:
    """Every finding is the detector's, about one whole window (or whole days: a ramp's run), with the severity its
    score maps to (or the cap)."""
    assert result.findings, "no finding at all"
    settings: DetectorSettings = DETECTORS[detector].Settings(**settings_with().detectors[detector])
    for finding in result.findings:
        assert finding.detector == detector and finding.actor.id
        length = finding.window_end - finding.window_start
        start = datetime.fromtimestamp(finding.window_start, ZONE)
        assert (start.minute, start.second) == (0, 0) and length > 0, finding
        whole_days = length % 86400.0 == 0 and start.hour == 0  # days start at local midnight
        assert length == 3600.0 or whole_days, finding
        assert length <= 86400.0 or detector == "ramp", finding  # only a ramp's finding covers several days
        assert finding.summary and finding.evidence["event_ids"]
        if "documented" not in finding.evidence:
            assert finding.severity is settings.severity_for(finding.score), finding


def scores_placing(score: float, severity: Severity) -> list[float]:
    """``severity_scores`` under which ``score`` maps to ``severity`` (thresholds half a point either side)."""
    return [round(score + threshold - severity.rank + 0.5, 3) for threshold in range(3)]


def assert_stable_alerts(story: Callable[[], list[AccessEvent]], name: str, **run_options: Any) -> None:
    """Two builds of the story, cut into batches differently or restarted midway, give identical alerts."""
    first = run(story(), name, **run_options).records()
    assert first, "the story raises no alert: nothing to compare"
    events = story()
    for cutting in ({"batch": 1}, {"batch": [7, 1, 250, 3]}, {"batch": 100_000}, {"batch": 50, "restart_every": 9}):
        assert run(events, name, **{**run_options, **cutting}).records() == first, cutting
