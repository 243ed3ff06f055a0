"""Turning accesses into contract events.

An EventBuilder appends ready event dicts to a sink as
(arrival_ms, event_id, timestamp_ms, event) tuples. arrival_ms is the event
time plus shipping jitter: the stream is ordered by it, which is what makes
events leave slightly out of timestamp order (never by more than the jitter
bound). Event ids come from the same seeded stream, so they are random-looking
yet reproducible.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from .customers import CustomerPools
from .fields import LOCAL_TIME_SYSTEMS, AccessPattern
from .timeline import TimestampFormatter

if TYPE_CHECKING:
    from .organisation import Actor

Pending = tuple[int, str, int, dict]


def draw_records(rng: random.Random, low: int, high: int) -> int:
    """Log-uniform integer in [low, high]: many small accesses, a few big ones."""
    if low >= high:
        return low
    return min(high, int(low * ((high + 1) / low) ** rng.random()))


def new_session(rng: random.Random) -> str:
    return rng.randbytes(12).hex()


RECORD_PREFIXES = {"reservation": "R", "order": "PO", "invoice": "INV"}


def single_record_id(rng: random.Random, kind: str, customer_ids: list[str]) -> str:
    if kind == "customer" and customer_ids:
        return customer_ids[0]
    return f"{RECORD_PREFIXES.get(kind, 'X')}{10_000_000 + int(rng.random() * 90_000_000)}"


class EventBuilder:
    __slots__ = ("customers", "disorder_ms", "format", "rng", "sink")

    def __init__(self, rng: random.Random, clock: TimestampFormatter, customers: CustomerPools, disorder_ms: int,
                 sink: list[Pending]):
        self.rng = rng
        self.format = clock.format
        self.customers = customers
        self.disorder_ms = disorder_ms
        self.sink = sink

    def pick(self, span: tuple[int, int], count: int) -> list[str]:
        """Customer ids for an access to `count` records of a span of the population."""
        return self.customers.pick(self.rng, span, count)

    def emit(self, actor: Actor, ts: int, action: str, system: str, resource_type: str, resource_id: str,
             record_count: int, customer_ids: list[str] | None, fields: list[str], source_ip: str,
             session_id: str | None = None, purpose: str | None = None, outcome: str = "success",
             user_agent: str | None = None, extra: dict | None = None) -> str:
        rng = self.rng
        event_id = rng.getrandbits(128).to_bytes(16, "big").hex()
        resource = {"system": system, "type": resource_type, "id": resource_id} if resource_id else \
            {"system": system, "type": resource_type}
        timestamp = self.format(ts, system in LOCAL_TIME_SYSTEMS)
        if outcome == "success":
            # rows times a per-field width, plus a response envelope
            size = 350 + record_count * (60 + 22 * len(fields))
            event = {"event_id": event_id, "timestamp": timestamp, "actor": actor.payload.copy(), "action": action,
                     "resource": resource, "record_count": record_count, "customer_ids": customer_ids,
                     "fields": fields, "bytes": int(size * (0.85 + 0.3 * rng.random())), "source_ip": source_ip,
                     "user_agent": user_agent or actor.user_agent, "session_id": session_id, "outcome": outcome}
            if not customer_ids:
                del event["customer_ids"]
        else:  # a refusal or failure returns no customer data
            event = {"event_id": event_id, "timestamp": timestamp, "actor": actor.payload.copy(), "action": action,
                     "resource": resource, "record_count": 0, "fields": fields,
                     "bytes": int(240 * (0.85 + 0.3 * rng.random())), "source_ip": source_ip,
                     "user_agent": user_agent or actor.user_agent, "session_id": session_id, "outcome": outcome}
        if not session_id:
            del event["session_id"]
        if purpose:
            event["purpose"] = purpose
        if extra:
            event["extra"] = extra
        arrival = ts + int(rng.random() * self.disorder_ms) if self.disorder_ms else ts
        self.sink.append((arrival, event_id, ts, event))
        return event_id

    def access(self, actor: Actor, ts: int, pattern: AccessPattern, record_count: int, customer_ids: list[str],
               source_ip: str, session_id: str | None, purpose: str | None = None, outcome: str = "success",
               extra: dict | None = None) -> str:
        """Emit one access of a known pattern, adding some of its optional fields."""
        rng = self.rng
        fields = pattern.draw_fields(rng.random())
        if record_count == 1 and pattern.record_id:
            resource_id = single_record_id(rng, pattern.record_id, customer_ids)
        else:
            resource_id = pattern.collection
        return self.emit(actor, ts, pattern.action, pattern.system, pattern.resource_type, resource_id,
                         record_count, customer_ids, fields, source_ip, session_id, purpose, outcome, extra=extra)
