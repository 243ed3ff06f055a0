"""Raw lines to events, or to dead letters with a reason a person can act on."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import ValidationError

from detectors.classify import Classifier
from ingest.sources import RawRecord
from models.config import Ingest
from models.deadletter import DeadLetter
from models.event import AccessEvent
from models.fast_event import FastEvent, decode_event, from_model
from store.base import IncomingEvent


@dataclass(slots=True)
class ParsedBatch:
    events: list[IncomingEvent] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)


class BatchParser(Protocol):
    """What the pipeline asks of its parser: a ``Parser``, or one wrapping it (ingest.kafka_source)."""

    def parse(self, records: Sequence[RawRecord]) -> ParsedBatch: ...


class Parser:
    def __init__(self, classifier: Classifier, settings: Ingest, wall_clock: Callable[[], float] = time.time) -> None:
        self.classifier = classifier
        self.settings = settings
        self.wall_clock = wall_clock

    def parse(self, records: Sequence[RawRecord]) -> ParsedBatch:
        batch = ParsedBatch()
        now = self.wall_clock()
        latest = now + self.settings.max_future_skew
        earliest = now - self.settings.max_past_age
        received = datetime.fromtimestamp(now, UTC)
        touch = self.classifier.touch
        event: FastEvent | None  # the fast decoder's, or the model's verdict (None: a dead letter)
        for record in records:
            if record.oversize:
                reason = f"line of {record.size:,} bytes is over the limit of {self.settings.max_line_bytes:,}"
            else:
                try:
                    event = decode_event(record.data)  # the fast twin of the model (models.fast_event)
                except ValueError:  # refused (models.fast_event.decode_event): the model decides
                    event, reason = _ask_the_model(record.data)
                if event is not None:
                    moment = event.timestamp.timestamp()
                    if earliest <= moment <= latest:
                        batch.events.append(IncomingEvent(event, record.data, touch(event.fields).classes))
                        continue
                    else:
                        reason = (
                            f"timestamp {event.timestamp.isoformat()} is "
                            + ("further in the future" if moment > latest else "further in the past")
                            + " than the configured skew allows"
                        )
            batch.dead_letters.append(
                DeadLetter(
                    source=record.source,
                    position=record.position,
                    reason=reason,
                    raw=record.data,
                    received_at=received,
                    raw_size=record.size,
                )
            )
        return batch


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
        # drop the union branch names pydantic adds to locations ("int", "function-after[...]")
        loc = ".".join(str(p) for p in first["loc"] if not str(p).startswith(("function-", "int", "float")))
        message = first["msg"].removeprefix("Value error, ")
        text = f"{loc or 'event'}: {message}"
    more = len(errors) - 1
    return text + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")
