"""``accesswatch send FILE --topic T``: publish a JSON Lines file to Kafka (backfills, tests, demos).

Each line is one message value, as it is: a line that is not a valid event
is sent too, and the consumers dead-letter it, as they would any producer's
bad message.  The key is the event's actor id (the contract), so one actor's
events land in one partition in file order; a line whose actor cannot be
read goes without a key.  Sends are acknowledged by all in-sync replicas
(``acks=all``) and the command reports what the cluster refused.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ingest.kafka_settings import KafkaSettings, KafkaUnreachable
from ingest.sources import unreadable_reason
from models.config import Ingest, Settings

# What a message holds beside its line: the key (an actor id), the record's and the request's framing
MESSAGE_FRAMING_BYTES = 64 * 1024


@dataclass(slots=True)
class SendReport:
    sent: int = 0
    failed: int = 0
    bytes: int = 0
    first_error: str | None = None


def actor_key(line: bytes) -> bytes | None:
    """The actor id of an event line, the message key (None when the line has none to give)."""
    try:
        actor = orjson.loads(line).get("actor")
        actor_id = actor.get("id") if isinstance(actor, dict) else None
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return actor_id.encode() if isinstance(actor_id, str) and actor_id else None


def send_lines(
    lines: Iterable[bytes],
    topic: str,
    settings: KafkaSettings,
    client_options: dict[str, Any] | None = None,
    max_line_bytes: int = Ingest.model_fields["max_line_bytes"].default,
) -> SendReport:
    # imported here: every other command of the CLI would pay for kafka-python at start
    from kafka import KafkaProducer
    from kafka.errors import KafkaError, KafkaTimeoutError

    report = SendReport()
    try:  # the producer asks a broker for its version before it is made
        producer = KafkaProducer(
            **{**settings.client_options(), **(client_options or {})},
            acks="all",
            linger_ms=20,
            batch_size=256 * 1024,
            # every line the consumers take whole (``ingest.max_line_bytes``): a consumer fetches a message larger
            # than max_partition_fetch_bytes too (KIP-74); the topic's max.message.bytes may refuse it, reported
            max_request_size=max_line_bytes + MESSAGE_FRAMING_BYTES,
            # what a topic's metadata may be waited for (the check below, and a send): not 60 s a line
            max_block_ms=int(settings.bootstrap_timeout * 1000),
        )
    except KafkaTimeoutError:
        raise KafkaUnreachable.of(settings) from None
    try:  # a topic that is not there (auto-create off) made each line wait max_block_ms, 60 s, in turn
        producer.partitions_for(topic)
    except KafkaTimeoutError:
        producer.close(timeout=0)
        raise KafkaUnreachable(
            f"no topic {topic!r} at {', '.join(settings.bootstrap_servers)} (none was listed within"
            f" {settings.bootstrap_timeout:g} s, source.kafka.bootstrap_timeout): create it, or check --topic"
        ) from None
    futures = []
    try:
        for raw in lines:
            line = raw.rstrip(b"\r\n")
            if not line.strip():
                continue
            try:
                futures.append(producer.send(topic, value=line, key=actor_key(line)))
            except KafkaError as exc:  # refused before sending, e.g. larger than max_request_size
                _failed(report, exc)
                continue
            report.bytes += len(line)
        producer.flush()
    finally:
        producer.close(timeout=30)
    for future in futures:
        if future.failed():
            _failed(report, future.exception)
        else:
            report.sent += 1
    return report


def _failed(report: SendReport, exc: BaseException | None) -> None:
    report.failed += 1
    if report.first_error is None:
        report.first_error = f"{type(exc).__name__}: {exc}"


# -- the command ---------------------------------------------------------------------------------------
def add_commands(
    command: Callable[..., argparse.ArgumentParser], settings_of: Callable[[argparse.Namespace], Settings]
) -> None:
    """Add ``send``; ``settings_of`` loads the configuration (``source.kafka``) from the parsed arguments."""
    send = command(
        "send",
        lambda args: _send(args, settings_of),
        "Publish a JSON Lines file to Kafka, one event a message, keyed by actor id (backfills, tests, demos).",
    )
    send.add_argument("file", metavar="FILE", help="JSON Lines; - for standard input")
    send.add_argument("--topic", help="default: the first of source.kafka.topics")


def _send(args: argparse.Namespace, settings_of: Callable[[argparse.Namespace], Settings]) -> int:
    from ingest.kafka_settings import load

    problem = unreadable_reason(args.file)  # as replay reads: a FIFO or <(zcat log.gz) will do, a directory not
    if problem is not None:
        print(f"accesswatch: {problem}", file=sys.stderr)
        return 1
    settings = settings_of(args)
    kafka = load(settings.source.kafka)
    topic = args.topic or kafka.topics[0]
    limit = settings.ingest.max_line_bytes
    if args.file == "-":
        report = send_lines(sys.stdin.buffer, topic, kafka, max_line_bytes=limit)
    else:
        with Path(args.file).open("rb") as handle:
            report = send_lines(handle, topic, kafka, max_line_bytes=limit)
    print(f"sent {report.sent} messages ({report.bytes:,} bytes) to {topic}; refused {report.failed}")
    if report.first_error:
        print(f"first refusal: {report.first_error}", file=sys.stderr)
    return 0 if report.failed == 0 else 1
