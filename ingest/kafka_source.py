"""Kafka in: a consumer group in which every partition runs the one pipeline, checkpointed on its own.

Why detector state is kept per partition.  The message key is the actor id,
so an actor's events all live in one partition and a partition is a fixed
set of actors.  Each partition gets its own ``Pipeline`` (its own detection
engine) and its own checkpoint ``detectors@kafka:<topic>/<partition>``,
holding the engine state and the offset it covers.  When a partition moves
to another instance (a rebalance, a crash), the new owner loads exactly the
state its old owner had for those actors: no baseline is forgotten, no
alert raised again, and the result does not depend on which instance read
which partition, or when the group rebalanced.  The price: peer groups and
the population allowance are computed within a partition, and a partition's
windows close on its own watermark.  (One engine per instance would see
more peers, but its state cannot be split by actor when partitions move.)

At-least-once with nothing lost, nothing doubled:

* auto-commit is off.  A partition is checkpointed (store) and then its
  offset committed (Kafka) every ``checkpoint_events`` events or
  ``checkpoint_interval``, and when it is given up.  The checkpoint is the
  authority: a new owner seeks to its offset, Kafka's committed offset is
  for the group's lag tooling and a group's very first start.
* after a crash, the messages since the checkpoint come again.  Events the
  crashed owner had stored come back from the store as *redeliveries*
  (stored copy with the same origin ``kafka:topic/partition@offset``) and
  are judged again, as the state never saw them; plain duplicates are not.
* a checkpoint is claimed on assignment (saved again at once), and the
  store fences saves (``CheckpointConflict``), so an instance that lost a
  partition while it stalled can never overwrite its new owner's state.
* a partition with no checkpoint starts at the group's committed offset,
  asked together with those of the others restored in the same turn, all
  within one ``request_timeout``.  Kafka not telling it in time (a
  coordinator away, or loading the group's offsets), it stays paused and
  unrestored, not ready, and is asked again after a backoff; the others
  read on meanwhile.
* the store away (``StoreUnavailable``, after its ``retry_for``): every
  partition falls back to its checkpoint and is paused at once (the next
  would wait out ``retry_for`` in turn), and not ready is said at once.  The
  consumer keeps polling, so it stays in the group: whether the store is back
  is asked on a thread of its own, with backoff, never on the loop's, and only
  once it answers are the partitions restored.  So a turn of the loop waits
  for at most one store call that fails, whatever the partitions held, and
  nothing is committed meanwhile.
* poison messages (not JSON, not the schema, too large) go to the
  dead-letter store and, with the reason in headers, to the dead-letter
  topic (flushed before the offset that passes them is committed).  A send
  Kafka could not take for now (the cluster away, the topic not there) is
  sent again at a next checkpoint, and its partition is not checkpointed
  until it is in; one it refuses for good (not authorised, a message too
  large for the topic) is logged and kept in the store only.  Those waiting
  are held in memory, so bounded: at ``max_held_dead_letters`` or
  ``max_held_dead_letter_bytes`` their partitions are paused until fewer wait.
* a stop waits for Kafka (the last flush, commit, leaving the group, and a
  commit already waiting when the signal came) at most ``shutdown_timeout``,
  and for a committed offset (above) not at all: what is left is logged, and
  comes again at the next start (a commit is behind the checkpoint, a letter
  its partition's).

Threads: kafka-python (3.x) runs rebalance callbacks on its IO thread while
the caller waits in ``poll``; they only checkpoint (the pipelines are idle
then) and pause partitions.  Everything else runs on the caller's thread,
which waits for a commit on a thread of the commit's own (``_Commit``), so that
a stop can end the wait.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer
from kafka.errors import CommitFailedError, KafkaError, KafkaTimeoutError
from kafka.producer.future import FutureRecordMetadata
from kafka.structs import OffsetAndMetadata, TopicPartition

from detectors.state_codec import decode_state, encode_state
from ingest.kafka_join_guard import join_under_way, rejoin_if_join_dropped
from ingest.kafka_leave import close_consumer
from ingest.kafka_parked import drop_parked
from ingest.kafka_settings import KafkaSettings, KafkaUnreachable
from ingest.kafka_topic_watch import TopicWatch, cluster_of
from ingest.parse import BatchParser, ParsedBatch
from ingest.pipeline import IngestReport, Pipeline
from ingest.sources import OVERSIZE_KEEP, RawRecord, Source
from store.base import CheckpointConflict, IncomingEvent, Store, StoreUnavailable

if TYPE_CHECKING:
    from collections.abc import Iterator

log = logging.getLogger(__name__)

RESTORE_BACKOFF = (1.0, 60.0)  # seconds before asking the store again after it failed; doubling
LAG_REFRESH = 5.0  # seconds: how often the end offsets of paused partitions (not fetched) are asked for the lag
# A dead letter larger than this goes to its topic as its head (``OVERSIZE_KEEP``), as one over the line limit
# does: a topic takes messages of about 1 MiB by default (the broker's message.max.bytes, 1,048,588, and the
# producer's max_request_size, 1,048,576, headers and framing included).  The dead-letter store keeps it whole.
DEAD_LETTER_MESSAGE_BYTES = 1_000_000
STOP_CHECK = 0.25  # seconds: how often a wait for Kafka looks whether a stop has cut it short

# a poison message on its way to the dead-letter topic: the record, the reason, when it was received
_Letter = tuple["KafkaRecord", str, bytes]


def checkpoint_name(tp: TopicPartition) -> str:
    return f"detectors@kafka:{tp.topic}/{tp.partition}"


@dataclass(slots=True)  # not frozen, as ``RawRecord`` is not
class KafkaRecord(RawRecord):
    """A message as a raw record, with where it came from."""

    topic: str = ""
    partition: int = 0
    offset: int = 0
    key: bytes | None = None

    @property
    def origin(self) -> str:
        return f"kafka:{self.topic}/{self.partition}@{self.offset}"


@dataclass(frozen=True, slots=True)
class PartitionLag:
    topic: str
    partition: int
    end_offset: int | None  # the next offset the broker will give a message (None: not fetched yet)
    position: int | None  # the first offset not yet stored and judged here
    committed: int | None  # the last offset committed to Kafka by this instance
    lag: int | None  # messages in the partition not yet stored and judged


class KafkaSource(Source):
    """One member of the consumer group: polls, seeks, pauses, commits, and publishes poison messages."""

    name = "kafka"
    live = True

    def __init__(
        self, settings: KafkaSettings, max_line_bytes: int, client_options: dict[str, Any] | None = None
    ) -> None:
        super().__init__()
        self.settings = settings
        self.max_line_bytes = max_line_bytes
        self._extra = dict(client_options or {})  # tests: faster timeouts for the test broker
        self.consumer: KafkaConsumer | None = None
        self._producer: KafkaProducer | None = None
        # dead letters sent and not yet flushed, each with its send's future or the error that refused it
        self._sent: list[tuple[_Letter, FutureRecordMetadata | KafkaError]] = []
        self._unsent: list[_Letter] = []  # those Kafka could not take at the last flush: sent again at the next
        self._yielded: dict[TopicPartition, int] = {}  # batches(): next offset of what was yielded
        self._committed: dict[TopicPartition, int] = {}
        # a stop's commits Kafka did not take within shutdown_timeout: told in one line at the close
        self._uncommitted: dict[TopicPartition, int] = {}
        self._abandoned: _Commit | None = None  # the commit still on its way when the stop's deadline came
        self._lag: list[PartitionLag] = []
        self._paused_ends: dict[TopicPartition, int] = {}  # end offsets of paused partitions, asked of Kafka
        self._paused_ends_at = float("-inf")
        self._stop_deadline: float | None = None  # once a stop is asked: when its waits for Kafka end
        self._topics = TopicWatch(settings.topics, log, lambda topic: f"topic {topic!r} (source.kafka.topics)")
        dead_letter_topics = [settings.dead_letter_topic] if settings.dead_letter_topic else []
        self._dead_letter_topic = TopicWatch(
            dead_letter_topics,
            log,
            lambda topic: f"dead-letter topic {topic!r} (source.kafka.dead_letter_topic)",
            logging.ERROR,
        )

    # -- membership ---------------------------------------------------------------------------------
    def open(self, listener: ConsumerRebalanceListener | None = None) -> KafkaConsumer:
        if self.consumer is None:
            options = {**self.settings.consumer_options(), **self._extra}
            try:  # the consumer asks a broker for its version before it is made
                self.consumer = KafkaConsumer(**options)
            except KafkaTimeoutError:
                raise KafkaUnreachable.of(self.settings) from None
            self._topics.attach(cluster_of(self.consumer))  # before the subscription asks about the topics
            self.consumer.subscribe(topics=list(self.settings.topics), listener=listener)
        return self.consumer

    def stop(self) -> None:
        """Ask the loop to end (safe from a signal handler); waits for Kafka end ``shutdown_timeout`` after this."""
        if self._stop_deadline is None:
            self._stop_deadline = time.monotonic() + self.settings.shutdown_timeout
        super().stop()

    def _left(self, limit: float) -> float:
        """``limit`` seconds, cut to what is left of a stop's ``shutdown_timeout`` once one is asked."""
        if self._stop_deadline is None:
            return limit
        return min(limit, self._stop_deadline - time.monotonic())

    def check_topics(self, now: float) -> bool:
        """Log what changed about the topics (found missing, still missing, found); True when all are there."""
        consumed = self._topics.check(now, lambda: ": consumed once it is created; not ready (/readyz) until then")
        dead_letter = self._dead_letter_topic.check(now, self._dead_letter_detail)
        return consumed and dead_letter

    def _dead_letter_detail(self) -> str:
        waiting = len(self._unsent) + len(self._sent)
        return (
            f": dead letters wait for it ({waiting} now), and the checkpoints of their partitions"
            f" ({len(self.held_partitions())} now) with them, so that none is lost; create it, or set"
            ' dead_letter_topic = "" to keep dead letters in the dead-letter store only'
        )

    def poll(self, timeout: float, max_records: int) -> dict[TopicPartition, list[KafkaRecord]]:
        consumer = self.open()
        polled = self._poll_through_joins(consumer, int(timeout * 1000), max_records)
        limit = self.max_line_bytes
        out: dict[TopicPartition, list[KafkaRecord]] = {}
        for tp, messages in polled.items():
            source = f"kafka:{tp.topic}/{tp.partition}"
            records = []
            for message in messages:
                value = message.value or b""
                size = len(value)
                records.append(
                    KafkaRecord(
                        value[:OVERSIZE_KEEP] if size > limit else value,
                        source,
                        f"offset {message.offset}",
                        size,
                        size > limit,
                        tp.topic,
                        tp.partition,
                        message.offset,
                        message.key,
                    )
                )
            out[tp] = records
        return out

    def _poll_through_joins(self, consumer: KafkaConsumer, timeout_ms: int, max_records: int) -> dict:
        """``consumer.poll``, polled again while a group join is under way, so that it lands (``kafka_join_guard``)."""
        polled = consumer.poll(timeout_ms=timeout_ms, max_records=max_records)
        # bounded by the rebalance timeout: a join the broker holds longer has failed anyway
        deadline = time.monotonic() + self.settings.max_poll_interval
        while join_under_way(consumer) and not self.stopping and time.monotonic() < deadline:
            if rejoin_if_join_dropped(consumer):
                log.warning("kafka: the client left a group join unfinished; asked for it again")
            # nothing comes while rebalancing (the partitions were given up first), but keep what does
            for tp, messages in consumer.poll(timeout_ms=timeout_ms, max_records=max_records).items():
                polled.setdefault(tp, []).extend(messages)
        return polled

    # -- the generic Source interface (one pipeline for every partition: one instance only) ----------
    def batches(self, max_records: int) -> Iterator[list[RawRecord]]:
        """Each partition's records as a batch; ``commit`` then commits what was yielded.

        For a single instance feeding one ``Pipeline`` (its detector state is
        recovered from the store, not per partition).  A group of instances
        runs ``KafkaIngest``, which keeps state per partition.
        """
        while not self.stopping:
            for tp, records in self.poll(self.settings.fetch_max_wait, max_records).items():
                if records:
                    self._yielded[tp] = records[-1].offset + 1
                    yield list(records)
            self._topics.check(time.monotonic())  # a topic not there is told, as KafkaIngest tells it

    def commit(self) -> None:
        if self._yielded:
            self.commit_offsets(dict(self._yielded))

    def commit_offsets(self, offsets: dict[TopicPartition, int], wait: bool = True) -> bool:
        """Commit ``{partition: next offset}``; False when the group moved on, or a stop's ``shutdown_timeout`` ran
        out first (the checkpoint still holds, and ``close`` tells what was not committed)."""
        consumer = self.open()
        payload = {tp: OffsetAndMetadata(offset, "", -1) for tp, offset in offsets.items()}
        try:
            if not wait:  # from a rebalance callback, on the IO thread: must not block it
                consumer.commit_async(payload)
            elif not self._commit_before_stop(consumer, payload):
                for tp, offset in offsets.items():
                    self._uncommitted[tp] = max(offset, self._uncommitted.get(tp, offset))
                return False
        except (CommitFailedError, KafkaError) as exc:
            log.warning("kafka: commit of %s failed (%s); the checkpoint still holds the position", offsets, exc)
            return False
        self._was_committed(offsets)
        return True

    def _commit_before_stop(self, consumer: KafkaConsumer, payload: dict[TopicPartition, OffsetAndMetadata]) -> bool:
        """``consumer.commit`` within ``request_timeout``; False when a stop's deadline came first.

        kafka-python blocks its caller until Kafka answers or the commit's own timeout passes, and a signal cannot
        shorten that: a SIGTERM while Kafka held a commit (a broker gone, its answers not coming) waited out
        ``request_timeout`` before the stop even began, past ``shutdown_timeout``.  So the commit runs on a thread
        of its own (``_Commit``) and this waits for it while there is time left.  One still waiting at the
        deadline is left to the close, which ends it; raises what the commit raised.
        """
        timeout = self._left(self.settings.request_timeout)
        if timeout <= 0:
            return False
        commit = _Commit(consumer, payload, timeout)
        while not commit.done.wait(max(0.0, self._left(STOP_CHECK))):
            if self._left(STOP_CHECK) <= 0:  # a stop's deadline passed
                self._abandoned = commit
                return False
        if commit.error is not None:
            raise commit.error
        return True

    def _was_committed(self, offsets: dict[TopicPartition, int]) -> None:
        self._committed.update(offsets)
        for tp, offset in offsets.items():
            if self._uncommitted.get(tp, offset) <= offset:
                self._uncommitted.pop(tp, None)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.open().seek(tp, offset)

    def pause(self, *tps: TopicPartition) -> None:
        self.open().pause(*tps)

    def resume(self, *tps: TopicPartition) -> None:
        consumer = self.open()
        consumer.resume(*tps)
        drop_parked(consumer, tps)  # else, kafka-python may never fetch them again (``kafka_parked``)

    def positions(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        """Where the group would start these partitions: their committed offsets, else ``auto_offset_reset``.  Those
        Kafka did not tell within one ``request_timeout``, for all of them, are left out, as all are once a stop is
        asked (the caller asks again later).

        kafka-python's ``position`` waits for the committed offset without a bound unless given one, on the loop's
        thread: a group coordinator away, or still loading the group's offsets after a failover, held the loop and
        any stop for as long as that lasted.  It is asked in turns of ``STOP_CHECK``, each bounded, so that a stop
        ends the wait at once (the loop ends after this turn: the restore is no use to it); between turns the
        client keeps its request on its way and waits for the same answer again.  Whichever partition's position
        is asked, the client asks the committed offsets of every assigned partition still without a position in one
        OffsetFetch, so one bound serves them all: asked one by one, each untold partition waited out a
        ``request_timeout`` of its own, a turn of the loop each, before all had been asked.
        """
        consumer = self.open()
        end = time.monotonic() + self.settings.request_timeout
        told = {}
        for tp in tps:
            while not self.stopping and (left := end - time.monotonic()) > 0:
                offset = consumer.position(tp, timeout_ms=max(1, int(min(left, STOP_CHECK) * 1000)))
                if offset is not None:
                    told[tp] = int(offset)
                    break
        return told

    # -- consumer lag ----------------------------------------------------------------------------------
    def note_positions(
        self, positions: dict[TopicPartition, int], paused: frozenset[TopicPartition] = frozenset()
    ) -> None:
        """Record what is stored and judged, per partition, for ``lag`` (readable from any thread).

        ``paused``: partitions not fetched (waiting for the store, or held for their dead letters), whose
        highwater stands still: their end offsets are asked of Kafka instead, every ``LAG_REFRESH`` seconds.
        """
        consumer = self.open()
        assigned = consumer.assignment()
        ends = self._ends_of_paused(consumer, paused & assigned)
        lags = []
        for tp in sorted(positions):
            end = consumer.highwater(tp) if tp in assigned else None
            if tp in ends:  # asked of Kafka while paused; ends only grow
                end = ends[tp] if end is None else max(end, ends[tp])
            position = positions[tp]
            lags.append(
                PartitionLag(
                    tp.topic,
                    tp.partition,
                    end,
                    position,
                    self._committed.get(tp),
                    None if end is None else max(0, end - position),
                )
            )
        self._lag = lags

    def lag(self) -> list[PartitionLag]:
        return list(self._lag)

    def _ends_of_paused(self, consumer: KafkaConsumer, paused: set[TopicPartition]) -> dict[TopicPartition, int]:
        """The end offsets of paused partitions, asked at most every ``LAG_REFRESH`` seconds and waited for at most
        a second (Kafka away: the last known stand, and ``silent_for`` tells of it)."""
        now = time.monotonic()
        if paused and now >= self._paused_ends_at + LAG_REFRESH and not self.stopping:
            self._paused_ends_at = now
            try:
                self._paused_ends.update(consumer.end_offsets(sorted(paused), timeout_ms=1000))
            except KafkaError:
                pass
        return {tp: self._paused_ends[tp] for tp in paused if tp in self._paused_ends}

    def silent_for(self) -> float | None:
        """Seconds since the group coordinator last answered (a heartbeat, a join, finding it); None: not known.

        Read from kafka-python's (3.0.12) heartbeat bookkeeping.  Its heartbeat thread goes on while the loop
        works, so a loop busy with the store is no silence; in another version nothing is known.
        """
        heartbeat: Any = getattr(getattr(self.consumer, "_coordinator", None), "heartbeat", None)
        try:
            last = max(float(heartbeat.last_receive), float(heartbeat.last_reset))  # time.monotonic()
        except (AttributeError, TypeError, ValueError):
            return None
        return max(0.0, time.monotonic() - last)

    # -- poison messages ----------------------------------------------------------------------------------
    def open_dead_letter_topic(self) -> None:
        """The dead-letter topic's producer, made at start as the consumer is: Kafka out of reach is one line."""
        if self._producer is None and self.settings.dead_letter_topic:
            # not idempotent: kafka-python 3.0.12's idempotent producer, once a batch expired after a retry (Kafka
            # away longer than delivery_timeout_ms), never had a producer id again, and every flush after it hung
            # for good.  A letter sent twice after an outage is what at-least-once allows.
            options = {**self.settings.client_options(), **self._extra_producer(), "enable_idempotence": False}
            try:  # the producer, too, asks a broker for its version before it is made
                self._producer = KafkaProducer(**options, acks="all")
            except KafkaTimeoutError:
                raise KafkaUnreachable.of(self.settings) from None
            self._watch_dead_letter_topic()

    def _watch_dead_letter_topic(self) -> None:
        """Have the producer ask about the topic now, and wait for the answer (at most ``bootstrap_timeout``).

        A send to a topic whose partitions are not known waits ``max_block_ms`` (60 s) for them, on the
        loop's thread: each checkpoint did, for a topic that was not there.  Known missing, letters wait here.
        """
        assert self._producer is not None
        watch = self._dead_letter_topic
        watch.attach(cluster_of(self._producer))
        sender = getattr(self._producer, "_sender", None)  # what a send does for a topic new to the producer
        if sender is not None and hasattr(sender, "add_topic"):
            sender.add_topic(self.settings.dead_letter_topic)
            sender.wakeup()
            watch.wait_known(self.settings.bootstrap_timeout)

    def publish_dead_letters(self, letters: Sequence[tuple[KafkaRecord, str]]) -> None:
        """Send poison messages to the dead-letter topic, the reason in headers (``flush`` waits for them)."""
        if not self.settings.dead_letter_topic or not letters:
            return
        received = datetime.now(UTC).isoformat().encode()
        self._send([(record, reason, received) for record, reason in letters])

    def _send(self, letters: list[_Letter]) -> None:
        self.open_dead_letter_topic()
        assert self._producer is not None
        if self._dead_letter_topic.missing:  # each send would wait max_block_ms for it: they wait here instead
            self._unsent.extend(letters)
            return
        topic = self.settings.dead_letter_topic
        out_of_reach: KafkaError | None = None
        for letter in letters:
            record, reason, received = letter
            if out_of_reach is not None:  # each send would wait max_block_ms for Kafka in turn
                self._sent.append((letter, out_of_reach))
                continue
            headers = [
                ("accesswatch.reason", reason.encode()),
                ("accesswatch.source", f"{record.topic}/{record.partition}".encode()),
                ("accesswatch.offset", str(record.offset).encode()),
                ("accesswatch.received_at", received),
            ]
            value = record.data
            if record.oversize or len(value) > DEAD_LETTER_MESSAGE_BYTES:
                value = value[:OVERSIZE_KEEP]
                headers.append(("accesswatch.truncated_from", str(record.size).encode()))
            try:
                self._sent.append((letter, self._producer.send(topic, value=value, key=record.key, headers=headers)))
            except KafkaError as exc:  # the topic's partitions not known within max_block_ms, a key too large...
                self._sent.append((letter, exc))
                out_of_reach = exc if exc.retriable else None

    def flush(self, timeout: float) -> set[TopicPartition]:
        """Wait (at most ``timeout``) until every dead letter sent is acknowledged, sending again those Kafka could
        not take before; the partitions of those still not in their topic.

        Those are sent again at the next flush (unless still on their way), and the checkpoints of their
        partitions wait: an offset past them would be committed.  The topic missing, they are not sent at all
        (``check_topics`` tells of it).  Those Kafka refused for good are logged: they are in the dead-letter store
        only.  Once a stop is asked, no wait goes past its ``shutdown_timeout``.
        """
        if self._unsent and not self._dead_letter_topic.missing:
            unsent, self._unsent = self._unsent, []
            self._send(unsent)
        if self._producer is not None and self._sent:
            self._await_sends(timeout)
            # not acknowledged yet (Kafka slow, or away for less than delivery_timeout_ms): left on their way, as
            # sending them again would put a second copy behind them
            done = [(letter, _failure(outcome)) for letter, outcome in self._sent if _done(outcome)]
            self._sent = [(letter, outcome) for letter, outcome in self._sent if not _done(outcome)]
            failed = [(letter, error) for letter, error in done if error is not None]
            refused = [(record, error) for (record, _, _), error in failed if not error.retriable]
            if refused:
                log.error(
                    "kafka: dead-letter topic %r refused %d messages (%s): %s; they are in the dead-letter store only",
                    self.settings.dead_letter_topic,
                    len(refused),
                    ", ".join(record.origin for record, _ in refused),
                    refused[0][1],
                )
            retry = [(letter, error) for letter, error in failed if error.retriable]
            self._unsent.extend(letter for letter, _ in retry)
            if (retry or self._sent) and not self.stopping:  # at a stop, ``close`` tells of them
                log.error(
                    "kafka: dead-letter topic %r could not take %d messages now (%s); checkpoints of their"
                    " partitions wait until they are there",
                    self.settings.dead_letter_topic,
                    len(retry) + len(self._sent),
                    retry[0][1] if retry else "not acknowledged yet",
                )
        return self.held_partitions()

    def held_partitions(self) -> set[TopicPartition]:
        """Partitions with dead letters not known to be in their topic: their checkpoints wait for them."""
        return {TopicPartition(record.topic, record.partition) for record, _, _ in self._held()}

    def held_dead_letters(self) -> tuple[int, int]:
        """How many dead letters wait for their topic, held in memory, and their bytes."""
        letters = self._held()
        return len(letters), sum(len(record.data) for record, _, _ in letters)

    def holds_too_many(self) -> bool:
        """Whether the dead letters held reach ``max_held_dead_letters`` or ``max_held_dead_letter_bytes``."""
        count, size = self.held_dead_letters()
        return count >= self.settings.max_held_dead_letters or size >= self.settings.max_held_dead_letter_bytes

    def _held(self) -> list[_Letter]:
        return self._unsent + [letter for letter, _ in self._sent]

    def _await_sends(self, timeout: float) -> None:
        """The producer's flush, for at most ``timeout``, and once a stop is asked not past its deadline."""
        assert self._producer is not None
        end = time.monotonic() + timeout
        while (left := self._left(end - time.monotonic())) > 0:
            try:
                self._producer.flush(timeout=min(left, STOP_CHECK))
                return
            except KafkaTimeoutError:
                continue

    def _extra_producer(self) -> dict[str, Any]:
        # the consumer-only test overrides do not apply to a producer
        allowed = ("retry_backoff_ms", "reconnect_backoff_ms", "request_timeout_ms")
        return {key: value for key, value in self._extra.items() if key in allowed}

    def close(self) -> None:
        """Close the clients, waiting for Kafka at most ``shutdown_timeout`` from the stop; never raises.

        Dead letters Kafka did not take are told in one line: the dead-letter store has them, and their
        partitions were not checkpointed past them, so the next start reads those messages and sends them again.
        """
        if self._stop_deadline is None:
            self._stop_deadline = time.monotonic() + self.settings.shutdown_timeout
        if self._producer is not None:
            _close_producer(self._producer, self._left(self.settings.shutdown_timeout))
            self._producer = None
            unsent = self._unsent + [letter for letter, outcome in self._sent if _failure(outcome) is not None]
            self._sent, self._unsent = [], []
            if unsent:
                origins = [record.origin for record, _, _ in unsent]
                log.warning(
                    "kafka: stopped with dead letters not sent to topic %r (%d: %s%s): the dead-letter store has"
                    " them, and their partitions were not checkpointed past them, so the next start reads those"
                    " messages again and sends them then",
                    self.settings.dead_letter_topic,
                    len(unsent),
                    ", ".join(origins[:5]),
                    ", ..." if len(origins) > 5 else "",
                )
        if self.consumer is not None:
            self._tell_uncommitted()
            left = max(0.0, self._left(self.settings.shutdown_timeout))
            try:  # leaves the group: its partitions move at once
                not_left = close_consumer(self.consumer, int(left * 1000))
            except KafkaError as exc:
                not_left = str(exc)
            if not_left is not None:
                log.warning(
                    "kafka: could not leave consumer group %r at the stop (%s): its coordinator takes this member out"
                    " after source.kafka.session_timeout (%g s), and only then do its partitions move to the other"
                    " members; nothing is lost, they resume from their checkpoints",
                    self.settings.group_id,
                    not_left,
                    self.settings.session_timeout,
                )
            self.consumer = None
        self._topics.detach()
        self._dead_letter_topic.detach()

    def _tell_uncommitted(self) -> None:
        """One line for the offsets a stop could not commit in time, at the close (which ends a commit left on its
        way).  Nothing is lost, and nothing is read again for it: where a partition reads on is its checkpoint's."""
        abandoned, self._abandoned = self._abandoned, None
        if abandoned is not None and abandoned.done.is_set() and abandoned.error is None:
            self._was_committed(abandoned.offsets)  # Kafka answered after all
        if not self._uncommitted:
            return
        log.warning(
            "kafka: stopped without committing to consumer group %r (%s): Kafka did not take the commit within"
            " source.kafka.shutdown_timeout (%g s). Nothing is lost: the checkpoints hold these offsets, and each"
            " partition's next owner reads on from its checkpoint, not from the committed offset; only the group's"
            " committed offsets (its lag tooling) stay behind until then",
            self.settings.group_id,
            ", ".join(
                f"{tp.topic}/{tp.partition} at offset {offset}" for tp, offset in sorted(self._uncommitted.items())
            ),
            self.settings.shutdown_timeout,
        )
        self._uncommitted = {}


def _close_producer(producer: KafkaProducer, timeout: float) -> None:
    """``producer.close``, by force when its sends are not done within ``timeout``: they fail at once.

    kafka-python (3.0.12) closes a producer only after a flush that completes, and raises otherwise, leaving it
    open (its thread, its sockets): Kafka away at a stop, a dead letter on its way made the stop a traceback.
    """
    deadline = time.monotonic() + timeout
    try:
        producer.close(timeout=max(0.0, timeout))
        return
    except KafkaError:
        pass
    sender = getattr(producer, "_sender", None)
    if sender is not None:
        sender.force_close()  # its thread fails the pending sends and ends
        # waited for only while the stop's bound lasts: it was a second more, and a producer left unclosed then
        # closed itself when dropped, on this thread, waiting up to two more (its __del__: close(timeout=1))
        sender.join(max(0.0, deadline - time.monotonic()))
        if sender.is_alive():
            # The rest is safe to leave to a daemon thread, which the process's exit does not wait for: after
            # force_close the sender waits on Kafka no more, it only fails what it holds and closes its sockets.
            # A letter not failed by the time ``close`` looks is told as not sent, and sent at the next start.
            threading.Thread(
                target=_close_once_ended, args=(producer, sender), name="kafka-producer-close", daemon=True
            ).start()
            return
    _close_once_ended(producer, None)


def _close_once_ended(producer: KafkaProducer, sender: threading.Thread | None) -> None:
    """Close a producer whose sender was closed by force, once its thread has ended (its sends failed by then)."""
    if sender is not None:
        sender.join()
    try:
        producer.close(timeout=0)
    except KafkaError:
        pass  # another version's sender, still ending: the producer's own __del__ closes it


def _done(outcome: FutureRecordMetadata | KafkaError) -> bool:
    return isinstance(outcome, KafkaError) or outcome.is_done


def _failure(outcome: FutureRecordMetadata | KafkaError) -> KafkaError | None:
    """Why a dead letter's send failed, or None if its topic has it."""
    if isinstance(outcome, KafkaError):
        return outcome
    if not outcome.is_done:  # flush waits for every send: not expected, but then not known to be there
        return KafkaTimeoutError("not acknowledged")
    if not outcome.failed():
        return None
    error = outcome.exception
    return error if isinstance(error, KafkaError) else KafkaError(str(error))


class _Commit:
    """One ``consumer.commit``, on a daemon thread of its own, so that its caller may stop waiting for it.

    kafka-python (3.x) runs the commit on its IO thread and lets any thread wait for it (``net.run``); a waiter
    still there when the consumer closes is released then, with an error.  Started at once.
    """

    def __init__(self, consumer: KafkaConsumer, payload: dict[TopicPartition, OffsetAndMetadata], timeout: float):
        self.offsets = {tp: meta.offset for tp, meta in payload.items()}
        self.done = threading.Event()
        self.error: BaseException | None = None
        thread = threading.Thread(
            target=self._run, args=(consumer, payload, int(timeout * 1000)), name="kafka-commit", daemon=True
        )
        thread.start()

    def _run(self, consumer: KafkaConsumer, payload: dict[TopicPartition, OffsetAndMetadata], timeout_ms: int) -> None:
        try:
            consumer.commit(payload, timeout_ms=timeout_ms)
        except BaseException as exc:  # raised on the caller's thread, if it still waits
            self.error = exc
        finally:
            self.done.set()


class _OriginParser:
    """The pipeline's parser, telling each event where it arrived and remembering the poison messages.

    The parser turns each record into one event or one dead letter, in
    order, keeping the record's bytes as the event's ``raw``; that is how
    each event is matched to its message here.
    """

    def __init__(self, inner: BatchParser) -> None:
        self.inner = inner
        self.dead: list[tuple[KafkaRecord, str]] = []

    def parse(self, records: Sequence[RawRecord]) -> ParsedBatch:
        # its pipeline is fed by KafkaIngest._ingest alone, with messages: a claim the pipeline's types cannot carry
        messages = cast(Sequence[KafkaRecord], records)
        batch = self.inner.parse(messages)
        events = iter(batch.events)
        pending = next(events, None)
        marked = []
        for record in messages:
            if pending is not None and pending.raw is record.data:
                marked.append(IncomingEvent(pending.event, pending.raw, pending.classes, record.origin))
                pending = next(events, None)
        if pending is not None or len(marked) != len(batch.events):
            raise RuntimeError("the parser's events do not follow its records: origins cannot be told")
        batch.events = marked
        if batch.dead_letters:
            by_position = {record.position: record for record in messages}
            self.dead.extend((by_position[letter.position], letter.reason) for letter in batch.dead_letters)
        return batch

    def take_dead(self) -> list[tuple[KafkaRecord, str]]:
        dead, self.dead = self.dead, []
        return dead


@dataclass(slots=True)
class _Partition:
    tp: TopicPartition
    pipeline: Pipeline | None = None  # None: waiting to be restored from its checkpoint
    next_offset: int = 0  # the first offset not yet stored and judged
    checkpointed: int = 0  # the offset the last durable checkpoint covers
    since_checkpoint: int = 0  # records ingested since
    checkpointed_at: float = 0.0
    restore_at: float = 0.0
    failures: int = 0
    parser: _OriginParser | None = None
    restored: bool = False  # once restored: ``checkpointed`` is where it reads on from when restored again
    unknown_start: bool = False  # Kafka did not tell its committed offset in time, and that was told once


class _StoreProbe:
    """Asks the store once whether it is back, on a daemon thread, as a call may wait out its ``retry_for``.

    The loop looks at it each turn and never waits for it; a stop does not either (daemon).
    """

    def __init__(self, ask: Callable[[], object], at: float) -> None:
        self.ask = ask
        self.at = at  # when to ask (the loop's clock)
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="store-probe", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.ask()
        except BaseException as exc:  # told on the loop's thread
            self.error = exc


class KafkaIngest:
    """Runs the one pipeline per assigned partition (see the module's docstring)."""

    def __init__(
        self,
        store: Store,
        new_pipeline: Callable[[str], Pipeline],
        batch_records: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.new_pipeline = new_pipeline  # a pipeline whose checkpoint has the given name
        self.batch_records = batch_records
        self.clock = clock
        self.source: KafkaSource | None = None
        self._parts: dict[TopicPartition, _Partition] = {}
        self._lock = threading.Lock()  # held while pipelines work; rebalance callbacks take it
        self._finished = False  # a failure or a stop: callbacks checkpoint nothing more
        self._reports: list[IngestReport] = []  # of pipelines given up
        self._held_back: set[TopicPartition] = set()  # paused: too many of their dead letters wait for the topic
        self.metrics: Any = None  # the run's metrics (ingest.metrics), handed to every partition's pipeline
        self._lag_gauge: Any = None
        self._silence_gauge: Any = None
        self._store_away: _StoreProbe | None = None  # while the store is away: what asks whether it is back
        self._store_failures = 0  # in a row: the backoff before asking again
        self._topics_there = True
        self._kafka_silent = False  # the group coordinator silent past source.kafka.unreachable_after

    # -- the report of every partition's pipeline -------------------------------------------------------
    @property
    def report(self) -> IngestReport:
        total = IngestReport()
        reports = self._reports + [p.pipeline.report for p in self._parts.values() if p.pipeline is not None]
        for report in reports:
            for name in (
                "lines_read",
                "stored",
                "duplicates",
                "redelivered",
                "dead_letters",
                "late_events",
                "conflicts",
                "alerts_raised",
                "alerts_updated",
                "recovered",
            ):
                setattr(total, name, getattr(total, name) + getattr(report, name))
        if reports:
            total.started = min(report.started for report in reports)
        return total

    # -- the loop ---------------------------------------------------------------------------------------------
    def run(self, source: Source, close_windows: bool = False) -> IngestReport:
        """Consume until the source is stopped; windows close on each partition's watermark, never here."""
        if not isinstance(source, KafkaSource):
            raise TypeError("KafkaIngest reads a KafkaSource")
        self.source = source
        source.open(listener=_Listener(self))
        source.open_dead_letter_topic()
        failed = True
        try:
            while not source.stopping:
                self._restore_due()
                polled = source.poll(source.settings.fetch_max_wait, self.batch_records)
                with self._lock:
                    for tp, records in polled.items():
                        if records:
                            self._ingest(tp, records)
                    self._publish_dead_letters()
                self._checkpoint_due()
                self._bound_dead_letters()
                self._note_lag()
                self._topics_there = source.check_topics(self.clock())
                self._watch_kafka()
                self._set_ready()
            # waits for Kafka from here end shutdown_timeout after the stop (KafkaSource.stop)
            with self._lock:
                offsets = self._checkpoint(list(self._parts.values()))
            self._commit(offsets, wait=True)
            self._tell_unsaved()
            failed = False
        finally:
            # after a failure nothing is checkpointed: a pipeline may be half-way through a batch,
            # and the last good checkpoint (with redelivery) is what the next owner must start from
            self._finished = True
            if self.metrics is not None:
                self.metrics.set_ready(False)
            if failed:
                log.error("kafka: stopped by an error; partitions resume from their last checkpoints")
        return self.report

    def _set_ready(self) -> None:
        """Not ready while a partition waits for the store (from the moment it falls back, not a turn later), a
        topic is missing (nothing to consume, or dead letters holding checkpoints), partitions are paused for the
        dead letters held, or the group coordinator has been silent past ``unreachable_after``."""
        if self.metrics is None or self._finished:
            return
        restored = all(part.pipeline is not None for part in list(self._parts.values()))
        self.metrics.set_ready(restored and self._topics_there and not self._held_back and not self._kafka_silent)

    def _watch_kafka(self) -> None:
        """Kafka away shows nowhere else: the lag of a partition not fetched stands still, nothing fails."""
        assert self.source is not None
        silent = self.source.silent_for()
        if silent is None:
            return
        if self.metrics is not None:
            if self._silence_gauge is None:
                from prometheus_client import Gauge

                self._silence_gauge = Gauge(
                    "accesswatch_kafka_silent_seconds",
                    "Seconds since the group coordinator last answered (a heartbeat, a join)",
                    registry=self.metrics.registry,
                )
            self._silence_gauge.set(silent)
        limit = self._settings().unreachable_after
        silent_long = silent > limit
        if silent_long and not self._kafka_silent:
            log.warning(
                "kafka: the group coordinator has not answered for %.0f s (source.kafka.unreachable_after %g s):"
                " Kafka out of reach, nothing is consumed; not ready (/readyz) until it answers",
                silent,
                limit,
            )
        elif self._kafka_silent and not silent_long:
            log.info("kafka: the group coordinator answers again")
        self._kafka_silent = silent_long

    def _note_lag(self) -> None:
        """The lag of every partition known: one waiting for the store counts from the checkpoint it reads on from."""
        assert self.source is not None
        parts = list(self._parts.values())
        positions = {p.tp: p.next_offset if p.pipeline else p.checkpointed for p in parts if p.pipeline or p.restored}
        paused = frozenset(p.tp for p in parts if p.pipeline is None) | self._held_back
        self.source.note_positions(positions, paused)
        self._export_lag(self.source.lag())

    def _tell_unsaved(self) -> None:
        """At a stop: one line for the partitions whose last work was not checkpointed (nothing is lost)."""
        behind = [part.tp for part in self._parts.values() if part.pipeline and part.next_offset != part.checkpointed]
        if behind:
            log.warning(
                "kafka: stopped with partitions not checkpointed (%s), their dead letters not in their topic yet:"
                " they resume from their last checkpoints, and the store takes what comes again as redeliveries",
                ", ".join(f"{tp.topic}/{tp.partition}" for tp in sorted(behind)),
            )

    def _export_lag(self, lags: list[PartitionLag]) -> None:
        """Consumer lag per partition as a gauge beside the run's other metrics (``/metrics``)."""
        if self.metrics is None:
            return
        if self._lag_gauge is None:
            from prometheus_client import Gauge

            self._lag_gauge = Gauge(
                "accesswatch_kafka_consumer_lag",
                "Messages in a partition not yet stored and judged here",
                ["topic", "partition"],
                registry=self.metrics.registry,
            )
        for lag in lags:
            if lag.lag is not None:
                self._lag_gauge.labels(lag.topic, str(lag.partition)).set(lag.lag)

    def _ingest(self, tp: TopicPartition, records: list[KafkaRecord]) -> None:
        part = self._parts.get(tp)
        if part is None or part.pipeline is None:
            return  # not ours, or waiting for its checkpoint: fetched again after the seek
        if records[0].offset < part.next_offset:  # fetched before a seek back to the checkpoint
            records = [record for record in records if record.offset >= part.next_offset]
            if not records:
                return
        # offsets may jump (transaction markers, compaction, retention): the consumer's position decides
        try:
            part.pipeline.ingest(records)
        except StoreUnavailable as exc:
            self._store_lost(exc)
            return
        part.next_offset = records[-1].offset + 1
        part.since_checkpoint += len(records)

    def _publish_dead_letters(self) -> None:
        assert self.source is not None
        for part in self._parts.values():
            if part.parser is not None and part.parser.dead:
                self.source.publish_dead_letters(part.parser.take_dead())

    def _bound_dead_letters(self) -> None:
        """Pause the partitions of the dead letters held while they are too many, so that no more come; resume
        them once fewer are held.  What a fetch brought before the pause is still taken: at most a fetch more.

        The letters wait in memory for their topic (missing, or Kafka not taking them): reading on would grow
        them without a bound.  The paused partitions are not checkpointed past their letters either, so nothing
        is lost; the other partitions go on.
        """
        assert self.source is not None
        source = self.source
        holding = source.held_partitions() & self._parts.keys() if source.holds_too_many() else set()
        paused = sorted(holding - self._held_back)
        released = sorted(tp for tp in self._held_back - holding if tp in self._parts)
        self._held_back = holding
        reading = [tp for tp in paused if self._parts[tp].pipeline is not None]
        if reading:  # those waiting for their checkpoint are paused already, and stay so when restored
            source.pause(*reading)
        if paused:
            count, size = source.held_dead_letters()
            log.warning(
                "kafka: %d dead letters (%s bytes) wait for dead-letter topic %r, at the bound"
                " (source.kafka.max_held_dead_letters %d, max_held_dead_letter_bytes %s): %s paused until fewer"
                " wait, and not checkpointed past them (nothing is lost); not ready (/readyz) meanwhile",
                count,
                f"{size:,}",
                source.settings.dead_letter_topic,
                source.settings.max_held_dead_letters,
                f"{source.settings.max_held_dead_letter_bytes:,}",
                ", ".join(f"{tp.topic}/{tp.partition}" for tp in paused),
            )
        resumed = [tp for tp in released if self._parts[tp].pipeline is not None]
        if resumed:
            source.resume(*resumed)
        if released:
            log.info(
                "kafka: %d dead letters wait for their topic now: %s read again",
                source.held_dead_letters()[0],
                ", ".join(f"{tp.topic}/{tp.partition}" for tp in released),
            )

    # -- checkpoints -----------------------------------------------------------------------------------------
    def _checkpoint_due(self) -> None:
        settings = self._settings()
        now = self.clock()
        due = [
            part
            for part in self._parts.values()
            if part.pipeline is not None
            and part.next_offset != part.checkpointed
            and (
                part.since_checkpoint >= settings.checkpoint_events
                or now - part.checkpointed_at >= settings.checkpoint_interval
            )
        ]
        if due:
            with self._lock:
                offsets = self._checkpoint(due)
            self._commit(offsets, wait=True)

    def _checkpoint(self, parts: list[_Partition]) -> dict[TopicPartition, int]:
        """Checkpoint what changed; the offsets now safe to commit (Kafka never gets ahead of the store)."""
        assert self.source is not None
        parts = [part for part in parts if part.pipeline is not None and part.next_offset != part.checkpointed]
        if not parts:
            return {}
        # dead letters the offsets pass are in their topic first: a partition with some not there yet waits
        held = self.source.flush(self._settings().request_timeout)
        safe = {}
        for part in parts:
            if part.pipeline is None:  # fell back with the store (``_store_lost``) while this loop went on
                continue
            if part.tp in held:
                continue
            try:
                part.pipeline.checkpoint(position=part.next_offset)
            except CheckpointConflict:
                log.warning("kafka: %s was taken over by another instance: dropping it", part.tp)
                self._drop(part)
                continue
            except StoreUnavailable as exc:
                self._store_lost(exc)
                continue
            part.checkpointed, part.since_checkpoint, part.checkpointed_at = part.next_offset, 0, self.clock()
            safe[part.tp] = part.next_offset
        return safe

    def _commit(self, offsets: dict[TopicPartition, int], wait: bool) -> None:
        if offsets:
            assert self.source is not None
            self.source.commit_offsets(offsets, wait=wait)

    # -- losing and regaining the store -----------------------------------------------------------------------
    def _store_lost(self, exc: StoreUnavailable) -> None:
        """The store failed, its retries spent: every partition falls back to its checkpoint and is paused, now.

        The failing partition's state may be ahead of the store; and each other partition's next store call would
        wait out ``retry_for`` in turn, without a poll, past ``max_poll_interval`` with a few partitions.  Whether
        the store is back is asked off the loop's thread (``_StoreProbe``), with backoff; then they are restored.
        """
        assert self.source is not None
        reading = [part for part in list(self._parts.values()) if part.pipeline is not None]
        for part in reading:
            self._retire(part)
        if reading:
            self.source.pause(*(part.tp for part in reading))
        if self._store_away is None:
            self._store_failures += 1
            self._store_away = _StoreProbe(self._ask_store, self.clock() + self._store_backoff())
        self._set_ready()
        log.warning(
            "kafka: the store failed (%s): %s fall back to their checkpoints, paused; not ready (/readyz); the store is"
            " asked again in %.0f s, the consumer polling meanwhile (it stays in the group)",
            exc,
            ", ".join(f"{part.tp.topic}/{part.tp.partition}" for part in reading) or "no partition",
            max(0.0, self._store_away.at - self.clock()),
        )

    def _store_backoff(self) -> float:
        return min(RESTORE_BACKOFF[0] * 2 ** (self._store_failures - 1), RESTORE_BACKOFF[1])

    def _ask_store(self) -> None:
        """A read the store answers cheaply once it is back (on the probe's thread)."""
        self.store.load_checkpoint(checkpoint_name(TopicPartition(self._settings().topics[0], 0)))

    def _store_back(self) -> bool:
        """Whether the store answered the probe; asks it when due.  The loop never waits for the answer."""
        probe = self._store_away
        assert probe is not None
        if probe.thread is None:
            if self.clock() >= probe.at:
                probe.start()
            return False
        if probe.thread.is_alive():
            return False
        if probe.error is None:
            log.info("kafka: the store answers again: the partitions are restored from their checkpoints")
            self._store_away, self._store_failures = None, 0
            return True
        if not isinstance(probe.error, StoreUnavailable):
            raise probe.error  # as the same call on the loop's thread would have
        self._store_failures += 1
        delay = self._store_backoff()
        log.warning("kafka: the store is still away (%s); asked again in %.0f s", probe.error, delay)
        self._store_away = _StoreProbe(self._ask_store, self.clock() + delay)
        return False

    def _restore_due(self) -> None:
        if self._store_away is not None and not self._store_back():
            return
        now = self.clock()
        fresh: list[tuple[_Partition, Pipeline]] = []  # without a checkpoint: they start where the group would
        for part in list(self._parts.values()):
            if part.pipeline is None and part.restore_at <= now:
                pipeline = self._restore(part)
                if self._store_away is not None:
                    return  # it failed again: the others wait for its next answer, not for its retries in turn
                if pipeline is not None:
                    fresh.append((part, pipeline))
        if fresh:
            self._start_fresh(fresh)

    def _restore(self, part: _Partition) -> Pipeline | None:
        """Load the partition's checkpoint, claim it, and read on from the offset it covers.

        Without a checkpoint: its new pipeline, started where the group would start it (``_start_fresh``).
        """
        name = checkpoint_name(part.tp)
        pipeline = self.new_pipeline(name)
        try:
            checkpoint = self.store.load_checkpoint(name)
        except StoreUnavailable as exc:
            self._store_lost(exc)
            return None
        if checkpoint is None:
            return pipeline
        pipeline.engine.load_state(decode_state(checkpoint.state))
        self._claim(part, pipeline, checkpoint.seq, checkpoint.state, "checkpoint")
        return None

    def _start_fresh(self, fresh: list[tuple[_Partition, Pipeline]]) -> None:
        """Start partitions without a checkpoint at the group's committed offsets, asked of Kafka for all of them
        within one ``request_timeout`` (``KafkaSource.positions``); one not told stays paused (``_start_unknown``)."""
        assert self.source is not None
        starts = self.source.positions([part.tp for part, _ in fresh])
        for part, pipeline in fresh:
            if part.tp not in starts:
                self._start_unknown(part)
                continue
            self._claim(part, pipeline, starts[part.tp], encode_state(pipeline.engine.to_state()), "new")
            if self._store_away is not None:
                return  # the others wait for the store's next answer, as in _restore_due

    def _claim(self, part: _Partition, pipeline: Pipeline, start: int, state: bytes, came_from: str) -> None:
        """Save the partition's checkpoint again (the claim: its previous owner is fenced out), then read on."""
        assert self.source is not None
        try:
            self.store.save_checkpoint(pipeline.checkpoint_name, start, state)
        except StoreUnavailable as exc:
            self._store_lost(exc)
            return
        except CheckpointConflict as exc:
            part.failures += 1
            part.restore_at = self.clock() + min(RESTORE_BACKOFF[0] * 2**part.failures, RESTORE_BACKOFF[1])
            log.warning("kafka: cannot restore %s yet (%s)", part.tp, exc)
            return
        if self.metrics is not None:
            pipeline.metrics = self.metrics
        parser = _OriginParser(pipeline.parser)
        pipeline.parser = parser  # it parses as the parser does, and marks origins
        part.pipeline, part.parser = pipeline, parser
        part.next_offset = part.checkpointed = start
        part.since_checkpoint, part.checkpointed_at, part.failures, part.restored = 0, self.clock(), 0, True
        part.unknown_start = False
        self.source.seek(part.tp, start)
        if part.tp not in self._held_back:  # else resumed once fewer dead letters are held
            self.source.resume(part.tp)
        log.info("kafka: %s restored at offset %d (%s)", part.tp, start, came_from)

    def _start_unknown(self, part: _Partition) -> None:
        """A partition without a checkpoint whose committed offset Kafka did not tell in time: it stays paused and
        unrestored (not ready meanwhile), and is asked again after a backoff; one line, at the first time."""
        assert self.source is not None
        if self.source.stopping:
            return  # the stop cut the wait short: the partition's next owner restores it
        part.failures += 1
        delay = min(RESTORE_BACKOFF[0] * 2**part.failures, RESTORE_BACKOFF[1])
        part.restore_at = self.clock() + delay
        if part.unknown_start:
            log.debug(
                "kafka: where %s/%d starts is still not told; asked again in %.0f s",
                part.tp.topic,
                part.tp.partition,
                delay,
            )
            return
        part.unknown_start = True
        log.warning(
            "kafka: %s/%d not restored yet: it has no checkpoint, and Kafka did not tell the group's committed offset"
            " within source.kafka.request_timeout (%g s); it stays paused and is asked again in %.0f s (then with"
            " backoff), the other partitions reading on; not ready (/readyz) until it is restored",
            part.tp.topic,
            part.tp.partition,
            self._settings().request_timeout,
            delay,
        )

    def _retire(self, part: _Partition) -> None:
        if part.pipeline is not None:
            self._reports.append(part.pipeline.report)
        part.pipeline, part.parser = None, None

    def _drop(self, part: _Partition) -> None:
        self._retire(part)
        self._parts.pop(part.tp, None)
        if self.source is not None and self.source.consumer is not None:
            try:
                self.source.pause(part.tp)
            except (KafkaError, ValueError):
                pass  # no longer assigned

    # -- rebalances (on the consumer's IO thread, while the loop waits in poll) ------------------------------
    def given_up(self, tps: set[TopicPartition], checkpoint: bool) -> None:
        parts = [self._parts[tp] for tp in tps if tp in self._parts]
        if not parts:
            return
        # the loop waits in poll while callbacks run, so the lock is free; if it were not, a
        # pipeline would be mid-batch and its state no checkpoint: the next owner's redelivery covers it
        idle = self._lock.acquire(blocking=False)
        try:
            if not idle:
                log.warning("kafka: %s given up mid-batch: the next owner starts from the last checkpoint", tps)
            elif checkpoint and not self._finished:
                self._commit(self._checkpoint(parts), wait=False)  # must not block the IO thread
        finally:
            if idle:
                self._lock.release()
        for part in parts:
            self._retire(part)
            self._parts.pop(part.tp, None)
            self._held_back.discard(part.tp)

    def assigned(self, tps: set[TopicPartition]) -> None:
        assert self.source is not None
        for tp in tps:
            self._parts[tp] = _Partition(tp)
        if tps:
            self.source.pause(*tps)  # until restored from its checkpoint, on the loop's thread

    def _settings(self) -> KafkaSettings:
        assert self.source is not None
        return self.source.settings


class _Listener(ConsumerRebalanceListener):
    def __init__(self, ingest: KafkaIngest) -> None:
        self.ingest = ingest

    def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        self.ingest.given_up(set(revoked), checkpoint=True)

    def on_partitions_lost(self, lost: Iterable[TopicPartition]) -> None:
        self.ingest.given_up(set(lost), checkpoint=False)  # another owner may have them already

    def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self.ingest.assigned(set(assigned))
