"""Structured logs: one JSON object a line on standard error, with ids and never event contents.

What the product logs is about its own work (batches, recoveries, findings
by id, failures); the access events it handles are customer data and stay in
the store.  Code logs ids (event, alert, incident, actor) and counts, never a
raw line or an event's fields; this module holds the line where a library
would cross it: an exception is logged by its type and message, and a
pydantic ``ValidationError``, whose message quotes the input it refused, by
its error locations and types only.

Fields: ``ts`` (RFC 3339 UTC), ``level``, ``logger``, ``message``, any
scalar given with ``extra={...}``, and ``error`` for an exception.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson
from pydantic import ValidationError

from models.config import Logging

# the attributes every LogRecord has: anything else was given with extra={...}
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}
_MAX_MESSAGE = 2000
# client libraries narrate every connection, request and rebalance at INFO; their
# news for an operator is a warning or worse, unless the product is asked for debug
CHATTY_LIBRARIES = ("kafka", "elastic_transport", "elasticsearch", "urllib3")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage()[:_MAX_MESSAGE],
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and isinstance(value, str | int | float | bool | type(None)):
                entry[key] = value
        if record.exc_info and record.exc_info[1] is not None:
            entry["error"] = describe_error(record.exc_info[1])
        return orjson.dumps(entry).decode()


def describe_error(error: BaseException) -> str:
    """An exception as one line that quotes no input: type, and message unless it may hold data."""
    if isinstance(error, ValidationError):
        where = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']) or 'value'}: {item['type']}"
            for item in error.errors(include_url=False, include_input=False, include_context=False)[:5]
        )
        return f"ValidationError: {where}"
    return f"{type(error).__name__}: {str(error)[:_MAX_MESSAGE]}"


def configure(settings: Logging, stream: TextIO | None = None) -> None:
    """Send the product's logs to ``stream`` (standard error) in the configured format and level."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if settings.format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for previous in [h for h in root.handlers if getattr(h, "accesswatch", False)]:
        root.removeHandler(previous)  # configured again (tests, a second command in one process)
    handler.accesswatch = True  # type: ignore[attr-defined]  # our mark, found again above when configured twice
    root.addHandler(handler)
    root.setLevel(settings.level.upper())
    for name in CHATTY_LIBRARIES:
        logging.getLogger(name).setLevel(logging.DEBUG if settings.level == "debug" else logging.WARNING)
