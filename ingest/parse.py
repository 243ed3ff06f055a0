"""Raw lines to events, or to dead letters with a reason a person can act on."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import repeat
from operator import attrgetter
from typing import Any, Protocol, cast

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from detectors.classify import Classifier
from ingest.sources import KeptLines, RawRecord
from models.config import Ingest
from models.deadletter import DeadLetter
from models.event import AccessEvent
from models.fast_event import FastEvent, decode_lines, from_model
from models.visible import visible
from store.base import IncomingEvent


@dataclass(slots=True)
class ParsedBatch:
    events: list[IncomingEvent] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)


class BatchParser(Protocol):
    """What the pipeline asks of its parser: a ``Parser``, or one wrapping it (ingest.kafka_source)."""

    def parse(self, records: Sequence[RawRecord]) -> ParsedBatch: ...


# Lines parsed together.  Each step of the parse passes over them all in turn: a piece this size stays in a
# core's cache from one step to the next, where a whole batch (10,000 events, megabytes once decoded) does
# not (CPU an event over 100,000 events, two batches kept as a replay keeps them: 6.2 to 6.4 µs parsed
# 10,000 lines at a time, 5.4 to 5.9 a thousand at a time).
PIECE_LINES = 1024


class Parser:
    """Lines to events a thousand at a time, not one at a time.

    The lines are decoded together (``decode_lines``), and what every event needs (its range check, its
    classes, its ``IncomingEvent``) is done by ``map`` over C functions; Python runs an event at a time only
    for lines something is wrong with.  The parse stage: 38,600 instructions an event line by line, 30,800
    so (``bench/instructions.py``, 20,000 events).
    """

    def __init__(self, classifier: Classifier, settings: Ingest, wall_clock: Callable[[], float] = time.time) -> None:
        self.classifier = classifier
        self.settings = settings
        self.wall_clock = wall_clock

    def parse(self, records: Sequence[RawRecord]) -> ParsedBatch:
        """The batch's events and its dead letters, each in the records' order."""
        now = self.wall_clock()
        lines, oversize = _lines_of(records)
        batch = ParsedBatch()
        for start in range(0, len(lines), PIECE_LINES):
            end = start + PIECE_LINES
            events, reasons = self._parse_piece(
                lines[start:end], {index - start: size for index, size in oversize.items() if start <= index < end}, now
            )
            batch.events += events
            if reasons:
                received = datetime.fromtimestamp(now, UTC)
                batch.dead_letters += [
                    _dead_letter(records[start + index], reasons[index], received) for index in sorted(reasons)
                ]
        return batch

    def _parse_piece(
        self, lines: list[bytes], oversize: dict[int, int], now: float
    ) -> tuple[list[IncomingEvent], dict[int, str]]:
        """The lines' events, and why each of the others is a dead letter, by its index among them."""
        events, refused = decode_lines(lines)
        reasons = self._refusals(events, lines, refused, oversize)
        reasons |= self._out_of_range(events, now)
        if reasons:  # the events kept, with their lines
            kept = [index for index, event in enumerate(events) if event is not None]
            events, lines = [events[index] for index in kept], [lines[index] for index in kept]
        return self._incoming(cast(list[FastEvent], events), lines), reasons

    def _refusals(
        self, events: list[FastEvent | None], lines: list[bytes], refused: list[int], oversize: dict[int, int]
    ) -> dict[int, str]:
        """Why each line over the limit or refused by the fast decoder is a dead letter (the model's verdict
        on the latter: it may accept one after all); each made None in ``events``."""
        reasons = {}
        for index, size in oversize.items():  # its head is never an event, whatever it holds
            events[index] = None
            reasons[index] = f"line of {size:,} bytes is over the limit of {self.settings.max_line_bytes:,}"
        for index in refused:
            if index not in reasons:
                events[index], reason = _ask_the_model(lines[index])
                if events[index] is None:
                    reasons[index] = reason
        return reasons

    def _out_of_range(self, events: list[FastEvent | None], now: float) -> dict[int, str]:
        """Why each event further in the future or the past than the settings allow is a dead letter; each
        made None in ``events``."""
        latest = now + self.settings.max_future_skew
        earliest = now - self.settings.max_past_age
        moments = list(map(_TIMESTAMP, filter(None, events)))
        # the batch's first and last instants in range: every one is (``timestamp()`` never decreases with
        # the instant), and the rest is not looked at (about 2,000 instructions an event)
        if not moments or (earliest <= min(moments).timestamp() and max(moments).timestamp() <= latest):
            return {}
        reasons = {}
        for index, event in enumerate(events):
            if event is not None:
                moment = event.timestamp.timestamp()
                if not earliest <= moment <= latest:
                    events[index] = None
                    reasons[index] = _out_of_range_reason(event.timestamp, moment > latest, self.settings)
        return reasons

    def _incoming(self, events: list[FastEvent], lines: list[bytes]) -> list[IncomingEvent]:
        """Each event with its line and its data classes.  ``tuple.__new__`` over the zipped fields is the
        named tuple made in C: its own ``__new__`` is a Python function (2,770 instructions an event, 590)."""
        classes = self._classes(events)
        return list(map(tuple.__new__, repeat(IncomingEvent), zip(events, lines, classes, repeat(None))))

    def _classes(self, events: list[FastEvent]) -> list[frozenset[str]]:
        """The data classes of each event's fields, as ``Classifier.touch`` finds them: looked up in its own
        cache for the whole batch (1,700 instructions an event through ``touch``, 900 so)."""
        touch = self.classifier.touch
        try:
            keys = list(map(tuple, map(_FIELDS, events)))  # its keys, as ``touch`` makes them
        except TypeError:  # an event without fields (``tuple(None)``)
            return [touch(event.fields).classes for event in events]
        classes = self._cached_classes(keys)
        if classes is None:  # a field list not classified yet: ``touch`` classifies each once, and keeps it
            for key in set(keys).difference(self.classifier.touches):
                touch(key)
            classes = self._cached_classes(keys)
        if classes is None:  # more new field lists than the cache holds: one by one
            classes = list(map(_CLASSES, map(touch, keys)))
        return classes

    def _cached_classes(self, keys: list[tuple[str, ...]]) -> list[frozenset[str]] | None:
        try:
            return list(map(_CLASSES, map(self.classifier.touches.__getitem__, keys)))
        except KeyError:
            return None


def _lines_of(records: Sequence[RawRecord]) -> tuple[list[bytes], dict[int, int]]:
    """The records' bytes, and the sizes of those over the limit (only their heads kept) by index."""
    if isinstance(records, KeptLines):  # files': kept as lines (``ingest.sources``, ``ingest.merge``)
        return records.lines, records.oversize
    return [record.data for record in records], {
        index: record.size for index, record in enumerate(records) if record.oversize
    }


def _dead_letter(record: RawRecord, reason: str, received: datetime) -> DeadLetter:
    return DeadLetter(
        source=record.source,
        position=record.position,
        reason=reason,
        raw=record.data,
        received_at=received,
        raw_size=record.size,
    )


_TIMESTAMP, _FIELDS, _CLASSES = attrgetter("timestamp"), attrgetter("fields"), attrgetter("classes")


def _ask_the_model(data: bytes) -> tuple[FastEvent | None, str]:
    """The model's verdict on a line the fast decoder refused: the event after all, or why not."""
    try:
        event = AccessEvent.model_validate_json(data)
    except ValidationError as exc:
        # a blank line is not JSON: asked only now, not of every line (a copy of each)
        return None, describe(exc, data) if data.strip() else "empty line"
    if event.extra is not None and not _finite(event.extra):
        # The model's JSON parser lets NaN and Infinity through in free-form ``extra``; they are not JSON
        # (RFC 8259), and one such body breaks SQLite's JSON queries over the store.  Only this path can
        # meet them: the fast decoder refuses NaN and Infinity, and numbers past a float's range.
        return None, "extra: NaN and Infinity are not JSON numbers"
    return from_model(event), ""


def _finite(value: Any) -> bool:
    """No NaN or infinite number anywhere in a parsed JSON value."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(item) for item in value.values())
    if isinstance(value, list):
        return all(_finite(item) for item in value)
    return True


def describe(exc: ValidationError, data: bytes = b"") -> str:
    """One line: the first problem, where it is, and how many more there are."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    if first["type"] == "json_invalid":
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as bad:
            return f"not valid UTF-8: byte 0x{data[bad.start]:02x} at offset {bad.start}"
        text = f"not valid JSON: {first['ctx'].get('error', first['msg']) if first.get('ctx') else first['msg']}"
    elif first["type"] == "model_type":
        text = "not a JSON object"
    else:
        message = first["msg"].removeprefix("Value error, ")
        text = f"{_where(first) or 'event'}: {message}"
    # the other keys found wrong, each once: a union's branches each report the same key ("int", "float")
    others = list(dict.fromkeys(_where(error) or "event" for error in errors[1:]))
    others = [where for where in others if where != _where(first)]
    if not others:
        return text
    named = ", ".join(others[:_NAMED]) + (", ..." if len(others) > _NAMED else "")
    return f"{text} (and {len(others)} more problem{'s' if len(others) > 1 else ''}: {named})"


_NAMED = 3  # the other wrong keys a dead letter's reason names


def _where(error: ErrorDetails) -> str:
    """The key an error is about, without the union branch names pydantic adds ("int", "function-after[...]"); a
    key the line made up shown with its control characters escaped (a reason is one line)."""
    return visible(".".join(str(p) for p in error["loc"] if not str(p).startswith(("function-", "int", "float"))))


def _out_of_range_reason(moment: datetime, future: bool, settings: Ingest) -> str:
    """'timestamp ... is further in the future than ingest.max_future_skew (1 day) allows': the key to change."""
    key, limit = ("max_future_skew", settings.max_future_skew) if future else ("max_past_age", settings.max_past_age)
    days = limit / 86400
    shown = f"{days:g} day{'' if days == 1 else 's'}" if days.is_integer() else f"{limit:g} s"
    return (
        f"timestamp {moment.isoformat()} is further in the {'future' if future else 'past'}"
        f" than ingest.{key} ({shown}) allows"
    )
