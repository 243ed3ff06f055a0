"""The access event as the pipeline carries it: ``AccessEvent``'s twin, decoded and checked in C.

Validating a line with the pydantic model costs 9 µs in isolation and 13
to 16 µs inside a replay, a third of the pipeline's whole budget at the
target rate.  msgspec decodes the same line into these structs, checking
the same constraints (unknown keys, types without coercion, enums, lengths,
bounds) in under 2 µs; the timestamp goes through the model's own
validator.  The structs carry the attributes ``AccessEvent`` has, with the
same types and values, so the store and the detectors read either.

The model stays the definition of a valid event.  msgspec is stricter in
places where JSON Schema is lenient (``5.0`` as an integer), so a line it
refuses is asked of the model, which accepts it or gives the reason a
person reads (``validate_event``, ``ingest.parse``).  The one promise this
module makes, that whatever it accepts the model accepts with equal values,
is held by ``tests/test_fast_event.py`` over the contract's samples, crafted
edge cases and random mutations of both.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from datetime import datetime
from itertools import chain, repeat
from operator import attrgetter
from typing import TYPE_CHECKING, Annotated, Any, Protocol, cast

import msgspec
from msgspec.structs import force_setattr

from models.event import AccessEvent, Action, ActorKind, Outcome, Resource, _timestamp, utc_timestamps


# Constraints as ``Annotated`` metadata, so that a type checker still sees a plain ``str`` or ``int``.
def _length(longest: int, shortest: int = 0) -> msgspec.Meta:
    return msgspec.Meta(min_length=shortest, max_length=longest)


def _range(least: int, most: int | None = None) -> msgspec.Meta:
    return msgspec.Meta(ge=least, le=most)


# Optional fields default to None but are typed without it, as in the model:
# an absent field is fine, an explicit null is not (the schema says "string");
# omit_defaults leaves them out when encoded (``encode_events``), as absent.
# gc=False: an event holds no reference back to itself, and leaving millions
# of them out of the garbage collector's lists spares a walk over each batch.
class FastActor(msgspec.Struct, forbid_unknown_fields=True, frozen=True, gc=False, omit_defaults=True):
    id: Annotated[str, _length(128, 1)]
    kind: ActorKind
    name: Annotated[str, _length(256)] = None  # type: ignore[assignment]
    role: Annotated[str, _length(128)] = None  # type: ignore[assignment]
    department: Annotated[str, _length(128)] = None  # type: ignore[assignment]
    organization: Annotated[str, _length(128)] = None  # type: ignore[assignment]


class FastResource(msgspec.Struct, forbid_unknown_fields=True, frozen=True, gc=False, omit_defaults=True):
    system: Annotated[str, _length(128, 1)]
    type: Annotated[str, _length(128, 1)]
    id: Annotated[str, _length(256)] = None  # type: ignore[assignment]

    # the model's own definitions: "a resource new to this actor" must mean the same whichever way it came
    if TYPE_CHECKING:  # what they are to a type checker: properties of this class (``Resource``'s take a Resource)

        @property
        def kind(self) -> str: ...

        @property
        def key(self) -> str: ...

    else:
        kind = Resource.kind
        key = Resource.key


class FastEvent(msgspec.Struct, forbid_unknown_fields=True, frozen=True, gc=False, omit_defaults=True):
    event_id: Annotated[str, _length(128, 1)]
    # A UTC datetime, made by the model's own validator from whatever JSON held (``decode_event``,
    # ``decode_lines``): msgspec's date-time parser takes forms the contract refuses (a space for the "T",
    # no offset).  Not in a ``__post_init__``: a batch's timestamps are read at once, for half the cost.
    if TYPE_CHECKING:
        timestamp: datetime
    else:
        timestamp: Any
    actor: FastActor
    action: Action
    resource: FastResource
    record_count: Annotated[int, _range(0, 100_000_000)]
    customer_ids: Annotated[list[Annotated[str, _length(128)]], msgspec.Meta(max_length=10_000)] = None  # type: ignore[assignment]
    fields: Annotated[list[Annotated[str, _length(128)]], msgspec.Meta(max_length=512)] = None  # type: ignore[assignment]
    bytes: Annotated[int, _range(0)] = None  # type: ignore[assignment]
    source_ip: Annotated[str, _length(64)] = None  # type: ignore[assignment]
    user_agent: Annotated[str, _length(1024)] = None  # type: ignore[assignment]
    session_id: Annotated[str, _length(128)] = None  # type: ignore[assignment]
    purpose: Annotated[str, _length(256)] = None  # type: ignore[assignment]
    outcome: Outcome = Outcome.SUCCESS
    extra: dict[str, Any] = None  # type: ignore[assignment]

    @property
    def is_egress(self) -> bool:
        return self.action.is_egress


_decode = msgspec.json.Decoder(FastEvent).decode
_TIMESTAMP, _EXTRA = attrgetter("timestamp"), attrgetter("extra")

# The model's JSON parser refuses nesting past 200 levels, msgspec's goes
# deeper: free-form ``extra`` nested past this is left to the model to judge.
MAX_EXTRA_DEPTH = 64


def decode_event(raw: bytes | str) -> FastEvent:
    """One JSON event as a ``FastEvent``; a ``ValueError`` when refused (then the model decides).

    msgspec raises its ``DecodeError`` (and ``ValidationError``) for what it
    refuses as JSON or as an event, but ``UnicodeDecodeError`` for bytes that
    are not UTF-8: ``ValueError`` is what both are.  Past its own depth limit
    it raises ``RecursionError``, made a ``ValueError`` here.
    """
    try:
        event = _decode(raw)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    force_setattr(event, "timestamp", _timestamp(event.timestamp))
    if event.extra and not _shallow(event.extra, MAX_EXTRA_DEPTH):
        raise ValueError(f"extra is nested deeper than {MAX_EXTRA_DEPTH} levels")
    return event


def decode_lines(lines: Sequence[bytes]) -> tuple[list[FastEvent | None], list[int]]:
    """Each line as ``decode_event`` reads it, None where it raises; and where the Nones are.

    A batch at a time: msgspec decodes the lines one after another without a Python frame between them,
    and the timestamps are read together (``utc_timestamps``).  Lines refused, or timestamps not read
    together, are finished one by one, as ``decode_event`` does.
    """
    events, refused = _decoded(lines)
    if refused or not _read_timestamps(cast(list[FastEvent], events)):
        refused = _finish_one_by_one(events)
    deep = _too_deep(events)
    if deep:
        refused = sorted([*refused, *(index for index, event in enumerate(events) if id(event) in deep)])
        events = [None if id(event) in deep else event for event in events]
    return events, refused


def _too_deep(events: list[FastEvent | None]) -> set[int]:
    """The ids of the events whose ``extra`` is nested deeper than ``decode_event`` takes."""
    with_extra = list(filter(_EXTRA, filter(None, events)))
    values = chain.from_iterable(map(dict.values, map(_EXTRA, with_extra)))
    if set(map(type, values)).isdisjoint((dict, list)):  # every extra flat (the common case), seen in C
        return set()
    return {id(event) for event in with_extra if not _shallow(event.extra, MAX_EXTRA_DEPTH)}


def _decoded(lines: Sequence[bytes]) -> tuple[list[FastEvent | None], list[int]]:
    """Each line decoded by msgspec alone, None where it refuses (the timestamps still as JSON held them)."""
    events: list[FastEvent | None] = []
    refused: list[int] = []
    decoding = map(_decode, lines)
    while True:
        try:
            events.extend(decoding)  # what was decoded before a refusal is kept, and the map goes on after it
            return events, refused
        except (ValueError, RecursionError):  # as ``decode_event``'s
            refused.append(len(events))
            events.append(None)


def _read_timestamps(events: list[FastEvent]) -> bool:
    """Every event's timestamp read at once (``utc_timestamps``); False, and none set, if they cannot be."""
    moments = utc_timestamps(list(map(_TIMESTAMP, events)))
    if moments is None:
        return False
    deque(map(force_setattr, events, repeat("timestamp"), moments), maxlen=0)  # a map run for its effect, in C
    return True


def _finish_one_by_one(events: list[FastEvent | None]) -> list[int]:
    """Each event's timestamp read as ``decode_event`` reads it, an event whose timestamp is refused made None;
    where the Nones are."""
    refused = []
    for index, event in enumerate(events):
        if event is not None:
            try:
                force_setattr(event, "timestamp", _timestamp(event.timestamp))
                continue
            except ValueError:
                events[index] = None
        refused.append(index)
    return refused


def _shallow(value: Any, levels: int) -> bool:
    """True if ``value`` holds no dict or list nested more than ``levels`` deep."""
    if levels <= 0:
        return False
    items = value.values() if type(value) is dict else value
    return all(_shallow(item, levels - 1) for item in items if type(item) is dict or type(item) is list)


class DetectionEvent(msgspec.Struct, frozen=True, gc=False):
    """A ``FastEvent`` as the detection worker reads it: the attributes the detectors use, and no others.

    Decoded from ``encode_events``' msgpack, it leaves out the user agent,
    session id, byte count and ``extra``: a third less to make and to free
    per event, in the process that bounds a replay (measured: 3.7 µs an event
    decoded and freed as a ``FastEvent``, 2.6 as this).
    Its attributes hold what the ``FastEvent`` holds (``tests/test_fast_event.py``).
    """

    event_id: str
    timestamp: datetime  # msgpack's own timestamp type: an aware UTC datetime, as encoded
    actor: FastActor
    action: Action
    resource: FastResource
    record_count: int
    customer_ids: list[str] = None  # type: ignore[assignment]
    fields: list[str] = None  # type: ignore[assignment]
    source_ip: str = None  # type: ignore[assignment]
    purpose: str = None  # type: ignore[assignment]
    outcome: Outcome = Outcome.SUCCESS

    @property
    def is_egress(self) -> bool:
        return self.action.is_egress


class ActorView(Protocol):
    """What the detectors read of an event's actor."""

    @property
    def id(self) -> str: ...
    @property
    def kind(self) -> ActorKind: ...
    @property
    def role(self) -> str | None: ...
    @property
    def department(self) -> str | None: ...
    @property
    def organization(self) -> str | None: ...


class ResourceView(Protocol):
    """What the detectors read of an event's resource."""

    @property
    def system(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def id(self) -> str | None: ...
    @property
    def kind(self) -> str: ...
    @property
    def key(self) -> str: ...


class EventView(Protocol):
    """What the detectors read of an event, whichever form it comes in (``AccessEvent``, ``FastEvent``,
    ``DetectionEvent``).

    The forms type an absent optional field as its value's type, as the contract does (an explicit null is
    refused); here it is what a reader gets: the value or None.
    """

    @property
    def event_id(self) -> str: ...
    @property
    def timestamp(self) -> datetime: ...
    @property
    def actor(self) -> ActorView: ...
    @property
    def action(self) -> Action: ...
    @property
    def resource(self) -> ResourceView: ...
    @property
    def record_count(self) -> int: ...
    @property
    def customer_ids(self) -> list[str] | None: ...
    @property
    def fields(self) -> list[str] | None: ...
    @property
    def source_ip(self) -> str | None: ...
    @property
    def purpose(self) -> str | None: ...
    @property
    def outcome(self) -> Outcome: ...


_encode_batch = msgspec.msgpack.Encoder().encode
_decode_batch = msgspec.msgpack.Decoder(list[FastEvent]).decode
_decode_for_detection = msgspec.msgpack.Decoder(list[DetectionEvent]).decode


def encode_events(events: list[FastEvent]) -> bytes:
    """Decoded events for another process (the detection worker), in msgpack: decoding them there costs
    a third of decoding their JSON again, the timestamps included.

    Raises ``OverflowError`` (an integer in ``extra`` past 64 bits) or ``ValueError`` for the rare event
    msgpack cannot carry: send those lines as they came instead.
    """
    return _encode_batch(events)


def decode_events(data: bytes) -> list[FastEvent]:
    """What ``encode_events`` made: the same events, equal to the ones encoded."""
    return _decode_batch(data)


def decode_for_detection(data: bytes | bytearray) -> list[DetectionEvent]:
    """What ``encode_events`` made, as much of it as the detectors read."""
    return _decode_for_detection(data)


def validate_event(raw: bytes | str) -> FastEvent:
    """A line the model accepts, as a ``FastEvent``; raises the model's ``ValidationError`` if it does not."""
    try:
        return decode_event(raw)
    except ValueError:
        return from_model(AccessEvent.model_validate_json(raw))


def from_model(event: AccessEvent) -> FastEvent:
    """The same event as the pipeline carries it."""
    actor, resource = event.actor, event.resource
    return FastEvent(
        event_id=event.event_id,
        timestamp=event.timestamp,
        actor=FastActor(actor.id, actor.kind, actor.name, actor.role, actor.department, actor.organization),
        action=event.action,
        resource=FastResource(resource.system, resource.type, resource.id),
        record_count=event.record_count,
        customer_ids=event.customer_ids,
        fields=event.fields,
        bytes=event.bytes,
        source_ip=event.source_ip,
        user_agent=event.user_agent,
        session_id=event.session_id,
        purpose=event.purpose,
        outcome=event.outcome,
        extra=event.extra,
    )
