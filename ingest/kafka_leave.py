"""Leaving the consumer group at a stop, told in one line of ours when Kafka is not there to be left.

kafka-python (3.0.12) closes a consumer by sending LeaveGroup once, without
retrying, and, when that fails, logs at ERROR on ``kafka.coordinator``
("LeaveGroup request failed: KafkaTimeoutError: Timed out after 907 ms"),
beside ``kafka.net`` errors for the connection it could not make
("Connection failed: KafkaConnectionError: 111 ECONNREFUSED").  Nothing is
wrong with the stop: the member is only left for the group coordinator to
time out.  ``close_consumer`` drops those lines, from the consumer's own
threads while it closes, and returns what they said, for the caller's one
line.  A consumer that already knows its coordinator is away sends nothing
and logs nothing: that, too, is a group not left.  Requests still on their way
when the close ends the client (a commit a stop stopped waiting for, a
heartbeat) fail as cancelled, and kafka-python logs each at ERROR, and the
coordinator marked dead at WARNING: the close's own doing, dropped too.

The library's lines are matched by their format strings, and its threads
and state read from private attributes; in another version nothing is
dropped, and only a failure seen is told.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

# kafka-python's lines for a LeaveGroup that failed (kafka.coordinator.base)
_LEAVE_FAILED = (
    "LeaveGroup request failed: %s",
    "LeaveGroup request for group %s failed with error: %s",
    "LeaveGroup request for member %s / group instance %s failed with error: %s",
)
# the heartbeat loop's logger: closed under it, the loop says "Unhandled Heartbeat loop error: NetworkSelector
# closed!" (seen when the broker had been away long enough that the member forgot its coordinator)
_HEARTBEAT_LOGGER = "kafka.coordinator.heartbeat"
# where kafka-python tells of a connection lost or refused: on a leave, the reason it failed
_CONNECTION_LOGGERS = ("kafka.net.manager", "kafka.net.connection", "kafka.net.transport")
# a metadata refresh the IO thread tries while the close runs, with the broker gone, says that it found no node
# (WARNING) or that its connection failed (ERROR) on kafka.cluster: the same absence our line tells; seen in
# about one stop in ten
_METADATA_LOGGER = "kafka.cluster"
_METADATA_FAILED = ("No node available for metadata refresh - backoff/retry", "Metadata refresh: failed %s")


def close_consumer(consumer: Any, timeout_ms: int) -> str | None:
    """``consumer.close`` without committing; why the group could not be left (None: left, or never joined).

    Raises what ``close`` raises (a ``KafkaError``).
    """
    away = _member_without_coordinator(getattr(consumer, "_coordinator", None))
    quiet = _LeaveLines(_threads_of(consumer))
    # a filter sees only its own logger's records, not its children's: the heartbeat's logger is named too
    names = ("kafka.coordinator", _HEARTBEAT_LOGGER, _METADATA_LOGGER, *_CONNECTION_LOGGERS)
    loggers = [logging.getLogger(name) for name in names]
    for logger in loggers:
        logger.addFilter(quiet)
    try:
        consumer.close(autocommit=False, timeout_ms=timeout_ms)
    finally:
        for logger in loggers:
            logger.removeFilter(quiet)
    if quiet.failure is not None:
        return quiet.failure
    return "Kafka away: no group coordinator known, so no LeaveGroup was sent" if away else None


def _member_without_coordinator(coordinator: Any) -> bool:
    """Whether the consumer holds a membership a close would leave (kafka-python's own test), with no coordinator
    known to send the LeaveGroup to."""
    try:
        from kafka.coordinator.base import MemberState

        return bool(
            coordinator.is_dynamic_member()
            and coordinator.state is not MemberState.UNJOINED
            and coordinator._generation.has_member_id()
            and coordinator.coordinator_unknown()
        )
    except (ImportError, AttributeError):  # another version: no more is known
        return False


def _threads_of(consumer: Any) -> frozenset[str]:
    """The threads whose lines are the close's: the caller's, and the consumer's IO thread."""
    io_thread = getattr(getattr(getattr(consumer, "_net", None), "_io_thread", None), "name", None)
    return frozenset(name for name in (threading.current_thread().name, io_thread) if name)


def _cancelled(record: logging.LogRecord) -> bool:
    """Whether the line is about a request cancelled (kafka-python's ``Cancelled``, given as an argument)."""
    args = record.args if isinstance(record.args, tuple) else ()
    return any(isinstance(arg, BaseException) and type(arg).__name__ == "Cancelled" for arg in args)


class _LeaveLines(logging.Filter):
    """Drops kafka-python's lines for a leave that failed (and the connection errors behind it); keeps the reason."""

    def __init__(self, threads: frozenset[str]) -> None:
        super().__init__()
        self.threads = threads
        self.failure: str | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if record.threadName not in self.threads or record.levelno < logging.WARNING:
            return True
        if record.msg in _LEAVE_FAILED:
            args = record.args if isinstance(record.args, tuple) else ()
            self.failure = str(args[-1]) if args else record.getMessage()
            return False
        if record.name == _HEARTBEAT_LOGGER:
            return False  # the heartbeat ended by the close itself: nothing the operator must act on
        if record.name == _METADATA_LOGGER:
            return record.msg not in _METADATA_FAILED  # Kafka away, which the leave's failure says
        if _cancelled(record):
            return False  # a request the close itself cancelled: what it meant to do is told by ours
        return record.name not in _CONNECTION_LOGGERS  # a connection refused or lost: the leave's failure says it
