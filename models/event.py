"""The access event, exactly as ``shared/contract/access-event.schema.json`` fixes it.

The model is the product's only way in for an event: whatever the source
(a file line, a Kafka message), it is validated here, and everything past
this point may rely on the types.  Unknown keys are rejected at every level,
as the schema's ``additionalProperties: false`` says, and values are not
coerced (``"5"`` is not a record count), so that the model and the schema
accept exactly the same documents.  ``tests/test_contract.py`` holds them to
that.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from operator import add, getitem, itemgetter
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetPydanticSchema,
    PlainValidator,
    StrictFloat,
    StrictInt,
)
from pydantic_core import core_schema

# RFC 3339 section 5.6 "date-time".  The offset is mandatory: an event time
# without one cannot be placed on the timeline and would silently shift by
# the producer's time zone.
# ASCII digits only, matched whole: a Unicode class and a search anchored by ``^...$`` cost a fifth more
# on every event (and ``$`` let a trailing newline through to the date parser)
# The offset as RFC 3339 has it, hours 00-23 and minutes 00-59: ``fromisoformat`` takes "+08:99" (as 9:39)
# and says "+24:00" in words of Python's, where the contract's schema refuses both.
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])",
    re.ASCII,
)


class ActorKind(StrEnum):
    EMPLOYEE = "employee"
    PARTNER = "partner"
    SERVICE = "service"


class Action(StrEnum):
    READ = "read"
    SEARCH = "search"
    EXPORT = "export"
    DOWNLOAD = "download"
    PRINT = "print"
    SHARE = "share"
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"

    @property
    def is_egress(self) -> bool:
        """Export, download, print and share move data out of the system of record."""
        return self in _EGRESS


_EGRESS = frozenset({Action.EXPORT, Action.DOWNLOAD, Action.PRINT, Action.SHARE})


class Outcome(StrEnum):
    SUCCESS = "success"
    DENIED = "denied"
    ERROR = "error"


def _whole_number(value: float) -> int:
    """JSON Schema's ``integer`` includes ``5.0``; strict pydantic would refuse it."""
    if not value.is_integer():
        raise ValueError("must be an integer")
    return int(value)


# Ints take the fast native path; only a float with no fractional part is
# converted.  Strings and booleans are refused, as the schema refuses them.
if TYPE_CHECKING:
    JsonInt = int  # what validation yields: a whole float comes out an int (``_whole_number``)
else:
    JsonInt = StrictInt | Annotated[StrictFloat, AfterValidator(_whole_number)]


def _int_bounds(ge: int, le: int | None = None) -> GetPydanticSchema:
    """Bounds for a ``JsonInt``, checked natively on the int it yields.

    ``Field(ge=...)`` on a union is run as a Python validator per field per
    event; chained after the union, the int's own bounds check is pydantic-core's,
    with the same errors (``greater_than_equal``, ``less_than_equal``).
    """

    def schema(source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.chain_schema([handler(source), core_schema.int_schema(ge=ge, le=le, strict=True)])

    return GetPydanticSchema(schema)


def parse_rfc3339(value: str) -> datetime:
    """Parse an RFC 3339 date-time with its offset and return it in UTC."""
    # every event's timestamp comes through here: the common case is kept to the fewest steps
    if _RFC3339.fullmatch(value) is None:
        raise ValueError("must be an RFC 3339 date-time with an explicit offset, e.g. 2026-11-02T09:15:30Z")
    try:
        # fromisoformat takes a "t" but not a "z"
        parsed = datetime.fromisoformat(value if value[-1] != "z" else value[:-1] + "Z")
    except ValueError as exc:  # 2026-02-30, hour 24, a leap second (60)...
        raise ValueError(f"is not a valid date-time ({exc})") from None
    if parsed.tzinfo is None:  # pragma: no cover - the pattern demands an offset
        raise ValueError("must carry a UTC offset")
    return _in_utc(parsed)


def _in_utc(moment: datetime) -> datetime:
    if moment.tzinfo is UTC:  # "Z" and "+00:00": already so (the common case, on every event)
        return moment
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise ValueError("is out of range once converted to UTC") from None


def _timestamp(value: Any) -> datetime:
    if type(value) is str:  # parsed JSON: the common case first
        hour_starts, part = _TAILS[value[19:]]
        start = hour_starts[value[:13]]
        after_start = _SINCE_HOUR.get(value[13:19])
        if start is not None and after_start is not None and part is not None:
            return start + after_start + part
        return parse_rfc3339(value)  # not made of known pieces: it decides, and says why
    if isinstance(value, datetime):  # built in code (the simulator, tests), not parsed
        if value.tzinfo is None:
            raise ValueError("must carry a UTC offset")
        return _in_utc(value)
    if not isinstance(value, str):
        raise ValueError("must be a string")
    return parse_rfc3339(value)


def utc_timestamps(values: list[Any]) -> list[datetime] | None:
    """``_timestamp`` of each of a batch's values at once, or None if one is not a string of known pieces
    (then ask ``_timestamp`` of each, which decides and says why).

    The same look-ups as ``_timestamp``'s, each made for the whole batch by ``map`` over C functions, with no
    Python frame an event: 7,760 instructions a timestamp one by one (a ``__post_init__`` calling
    ``_timestamp``), 5,200 here.
    """
    try:
        tails = list(map(_TAILS.__getitem__, map(_TAIL, values)))
        starts = map(getitem, map(_HOUR_STARTS_OF, tails), map(_HOUR, values))
        since_hour = map(_SINCE_HOUR.__getitem__, map(_SINCE, values))
        return list(map(add, map(add, starts, since_hour), map(_PART_OF, tails)))
    except (KeyError, TypeError):  # a since not known, a None added (a piece known not to be one), or not a string
        return None


# Every event's timestamp, cheaper.  ``parse_rfc3339`` costs 10,000 instructions a timestamp (the pattern
# 4,900 of them, the conversion to UTC 2,450); ``_timestamp`` about 7,800 one by one, ``utc_timestamps``
# 5,200 a batch at a time (Python's slices and look-ups cost 600 to 1,200 each, even in C: the floor of
# such a path).  Both cut a timestamp into its hour ("2026-11-02T09"), its minutes and seconds (":15:30")
# and its tail, fraction and offset (".120Z", "+08:00"), and look each piece up among pieces known to be
# valid: the hour's start in UTC is ``parse_rfc3339``'s answer for that hour and offset, asked once.  A
# string not made of known pieces (another shape, a leap second, an hour or offset ``parse_rfc3339``
# refuses) goes to ``parse_rfc3339``, which decides and says why.  The pieces fit only if the string is
# exactly hour, minutes and seconds, fraction and offset, in that order: ":MM:SS" at [13:19] is six
# characters, and the offset is "Z" or six characters starting with "+" or "-", which no fraction has (an
# offset taken as the last six characters whatever they were let "...:04.12.3456z" through, as 04.4656).
_HOUR, _SINCE, _TAIL = itemgetter(slice(0, 13)), itemgetter(slice(13, 19)), itemgetter(slice(19, None))
_SINCE_HOUR = {
    f":{minute:02d}:{second:02d}": timedelta(minutes=minute, seconds=second)
    for minute in range(60)
    for second in range(60)
}
_FRACTIONS = {"": timedelta(0)} | {  # none, or of one to three digits; longer ones: ``_fraction``
    f".{number:0{digits}d}": timedelta(microseconds=number * 10 ** (6 - digits))
    for digits in (1, 2, 3)
    for number in range(10**digits)
}
_UNSEEN: Any = object()
_HOUR_STARTS_KEPT = 10_000  # over a year of hours at one offset
# An hour starting past this may end past datetime.max: left to ``parse_rfc3339``, which refuses what does
_LAST_HOUR_START = datetime.max.replace(tzinfo=UTC) - timedelta(hours=1)


class _HourStarts(dict[str, datetime | None]):
    """One offset's hours ("2026-11-02T09") -> their starts in UTC, found when first asked for; None for
    one that is not a valid hour at that offset (or starts too late for the fast path)."""

    def __init__(self, offset: str) -> None:
        super().__init__()
        self.offset = offset

    def __missing__(self, hour: str) -> datetime | None:
        start = _hour_start(hour + self.offset)
        if _hours_kept() >= _HOUR_STARTS_KEPT:
            _forget_hours()
        self[hour] = start
        return start


class _Tails(dict[str, tuple[dict[str, datetime | None], timedelta | None]]):
    """A timestamp's tail, fraction and offset (".120Z", "+08:00") -> its offset's hour starts and its
    fraction (None for a fraction that is not one)."""

    def __missing__(self, tail: str) -> tuple[dict[str, datetime | None], timedelta | None]:
        fraction, offset = (tail[:-1], "Z") if tail[-1:] == "Z" else (tail[:-6], tail[-6:])
        part = _FRACTIONS.get(fraction, _UNSEEN)
        if part is _UNSEEN:
            part = _fraction(fraction)
        if len(self) >= _HOUR_STARTS_KEPT or len(_OFFSETS) >= _HOUR_STARTS_KEPT:
            _forget_hours()
        self[tail] = found = (_hour_starts_at(offset), part)
        return found


class _NotAnOffset(dict[str, datetime | None]):
    """The hour starts of what cannot be an offset: None for every hour (a "z" is left to ``parse_rfc3339``)."""

    def __missing__(self, hour: str) -> None:
        return None


_NOT_AN_OFFSET = _NotAnOffset()


def _hour_starts_at(offset: str) -> dict[str, datetime | None]:
    """The hour starts of ``offset``."""
    if offset != "Z" and offset[:1] not in ("+", "-"):
        return _NOT_AN_OFFSET
    hour_starts = _OFFSETS.get(offset)
    if hour_starts is None:
        hour_starts = _OFFSETS[offset] = _HourStarts(offset)
    return hour_starts


_OFFSETS: dict[str, _HourStarts] = {}  # offset ("Z", "+08:00") -> its hour starts
_TAILS = _Tails()
_HOUR_STARTS_OF, _PART_OF = itemgetter(0), itemgetter(1)


def _hours_kept() -> int:
    return sum(map(len, _OFFSETS.values()))


def _forget_hours() -> None:
    """Start the caches afresh (a stream of that many hours and offsets is not the common case)."""
    for hour_starts in _OFFSETS.values():
        hour_starts.clear()
    _OFFSETS.clear()
    _TAILS.clear()


def _hour_start(hour: str) -> datetime | None:
    """The start of ``hour`` ("2026-11-02T09+08:00") in UTC, or None if it is not a valid hour and offset
    or starts too late for the fast path."""
    try:
        start = parse_rfc3339(hour[:13] + ":00:00" + hour[13:])
    except ValueError:  # not an hour, or one that starts before 0001-01-01 in UTC
        return None
    return start if start < _LAST_HOUR_START else None


def _fraction(text: str) -> timedelta | None:
    """A fraction of a second of any length (".5", ".123456789") as ``datetime.fromisoformat`` reads it:
    its first six digits.  None if ``text`` is not one."""
    digits = text[1:]
    if text[:1] != "." or not digits.isascii() or not digits.isdigit():
        return None
    return timedelta(microseconds=int(digits[:6].ljust(6, "0")))


UtcTimestamp = Annotated[datetime, PlainValidator(_timestamp)]


class _Strict(BaseModel):
    # Strict: no coercion, so the model accepts what the schema accepts.  In
    # JSON input strict mode still takes enum members by their string value.
    # Optional fields are typed without None and default to None: an absent
    # field is fine, an explicit null is not (the schema says "string").
    # Only keys are interned: caching every string value costs a hash-table
    # probe per value, most of them (ids, times) never seen again (2 µs an event).
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, cache_strings="keys")


class Actor(_Strict):
    id: Annotated[str, Field(min_length=1, max_length=128)]
    kind: ActorKind
    name: Annotated[str, Field(max_length=256)] = None  # type: ignore[assignment]
    role: Annotated[str, Field(max_length=128)] = None  # type: ignore[assignment]
    department: Annotated[str, Field(max_length=128)] = None  # type: ignore[assignment]
    organization: Annotated[str, Field(max_length=128)] = None  # type: ignore[assignment]


class Resource(_Strict):
    system: Annotated[str, Field(min_length=1, max_length=128)]
    type: Annotated[str, Field(min_length=1, max_length=128)]
    id: Annotated[str, Field(max_length=256)] = None  # type: ignore[assignment]

    @property
    def kind(self) -> str:
        """``system/type``: what "a resource new to this actor" means (ids are often per record)."""
        return f"{self.system}/{self.type}"

    @property
    def key(self) -> str:
        """One name for the resource, used for "first touch" and top-resource figures."""
        return f"{self.system}/{self.type}/{self.id}" if self.id else f"{self.system}/{self.type}"


class AccessEvent(_Strict):
    """One access to customer data (see the contract for each field's meaning)."""

    event_id: Annotated[str, Field(min_length=1, max_length=128)]
    timestamp: UtcTimestamp
    actor: Actor
    action: Action
    resource: Resource
    record_count: Annotated[JsonInt, _int_bounds(0, 100_000_000)]
    customer_ids: Annotated[list[Annotated[str, Field(max_length=128)]], Field(max_length=10_000)] = None  # type: ignore[assignment]
    fields: Annotated[list[Annotated[str, Field(max_length=128)]], Field(max_length=512)] = None  # type: ignore[assignment]
    bytes: Annotated[JsonInt, _int_bounds(0)] = None  # type: ignore[assignment]
    source_ip: Annotated[str, Field(max_length=64)] = None  # type: ignore[assignment]
    user_agent: Annotated[str, Field(max_length=1024)] = None  # type: ignore[assignment]
    session_id: Annotated[str, Field(max_length=128)] = None  # type: ignore[assignment]
    purpose: Annotated[str, Field(max_length=256)] = None  # type: ignore[assignment]
    outcome: Outcome = Outcome.SUCCESS
    extra: dict[str, Any] = None  # type: ignore[assignment]

    @property
    def is_egress(self) -> bool:
        return self.action.is_egress

    def to_json_dict(self) -> dict[str, Any]:
        """The event as contract JSON, timestamp in UTC with ``Z``, absent fields left out."""
        data = self.model_dump(mode="json", exclude_none=True)
        data["timestamp"] = format_utc(self.timestamp)
        return data


def format_utc(moment: datetime) -> str:
    """RFC 3339 in UTC with millisecond precision and a ``Z``: the product's one output form."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
