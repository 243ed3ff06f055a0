"""Partition logs and idempotent-producer state for the fake broker.

Record batches are stored exactly as the producer sent them (compressed or
not), after validation, with the broker-assigned base offset and partition
leader epoch written into the batch header -- the same in-place assignment a
real broker does for magic-2 batches (both fields lie outside the CRC).
Decoding / validation uses kafka-python's own record code.
"""

from __future__ import annotations

import bisect
import re
import threading
from collections import deque
from dataclasses import dataclass, field

import kafka.errors as Errors
from kafka.record import MemoryRecords
from kafka.record.default_records import DefaultRecordBatch

LEADER_EPOCH = 0  # single broker that never loses leadership
DEFAULT_MAX_MESSAGE_BYTES = 1048588  # Kafka's message.max.bytes default
_LEGAL_TOPIC = re.compile(r"^[a-zA-Z0-9._-]+$")
_PRODUCER_BATCH_CACHE = 5  # Kafka keeps the last 5 batches per producer/partition


def topic_name_error(name):
    """Return an error class if ``name`` is not a legal topic name, else None."""
    if not name or name in (".", "..") or len(name) > 249 or not _LEGAL_TOPIC.match(name):
        return Errors.InvalidTopicError
    return None


@dataclass
class StoredRecord:
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: list


@dataclass
class StoredBatch:
    base_offset: int
    last_offset: int
    data: bytes
    records: list

    @property
    def size(self):
        return len(self.data)


class PartitionLog:
    """An append-only list of record batches for one topic-partition."""

    def __init__(self, topic, partition):
        self.topic = topic
        self.partition = partition
        self.batches: list[StoredBatch] = []
        self._last_offsets: list[int] = []  # parallel to batches, for bisect
        self.log_start_offset = 0
        self.log_end_offset = 0

    @property
    def high_watermark(self):
        # Single in-sync replica: everything appended is committed.
        return self.log_end_offset

    def append(self, raw: bytes, records: list) -> int:
        """Append one validated batch (its wire bytes); returns the base offset."""
        base = self.log_end_offset
        buf = bytearray(raw)
        header = list(DefaultRecordBatch.HEADER_STRUCT.unpack_from(buf))
        header[0] = base            # BaseOffset
        header[2] = LEADER_EPOCH    # PartitionLeaderEpoch
        DefaultRecordBatch.HEADER_STRUCT.pack_into(buf, 0, *header)
        count = len(records)
        stored = [StoredRecord(base + i, r.timestamp, r.key, r.value, list(r.headers))
                  for i, r in enumerate(records)]
        self.batches.append(StoredBatch(base, base + count - 1, bytes(buf), stored))
        self._last_offsets.append(base + count - 1)
        self.log_end_offset = base + count
        return base

    def read(self, offset, max_bytes, allow_oversized_first):
        """Return concatenated batches containing ``offset`` onwards.

        Like Kafka, whole batches are returned (the client skips records
        below its fetch offset); the first batch is returned even if larger
        than ``max_bytes`` when ``allow_oversized_first`` (KIP-74).
        """
        idx = bisect.bisect_left(self._last_offsets, offset)
        out = []
        total = 0
        for batch in self.batches[idx:]:
            if total + batch.size > max_bytes:
                if not out and allow_oversized_first:
                    out.append(batch.data)
                break
            out.append(batch.data)
            total += batch.size
        return b"".join(out)

    def offset_for_timestamp(self, timestamp):
        """First (offset, timestamp) whose record timestamp >= ``timestamp``."""
        for batch in self.batches:
            for rec in batch.records:
                if rec.timestamp >= timestamp:
                    return rec.offset, rec.timestamp
        return None

    def records(self):
        for batch in self.batches:
            yield from batch.records


@dataclass
class _ProducerPartitionState:
    # (first_seq, last_seq, base_offset) of the last few appended batches
    batches: deque = field(default_factory=lambda: deque(maxlen=_PRODUCER_BATCH_CACHE))


@dataclass
class _ProducerState:
    epoch: int
    partitions: dict = field(default_factory=dict)


class ValidationError(Exception):
    def __init__(self, error_type, message=None):
        super().__init__(message or error_type.__name__)
        self.error_type = error_type
        self.message = message


def decode_produce_records(data, max_message_bytes):
    """Validate the records of one partition in a Produce v3+ request.

    Returns ``(batch, records, raw_bytes)`` for the single magic-2 batch, or raises
    :class:`ValidationError` carrying the error a real broker would return.
    """
    if data is None or len(data) == 0:
        raise ValidationError(Errors.InvalidRecordError, "empty record set")
    data = bytes(data)
    try:
        memory_records = MemoryRecords(data)
        batches = []
        while memory_records.has_next():
            batches.append(memory_records.next_batch())
    except Errors.CorruptRecordError as exc:
        raise ValidationError(Errors.CorruptRecordError, str(exc)) from exc
    if sum(b.size_in_bytes for b in batches) != len(data):
        raise ValidationError(Errors.CorruptRecordError, "trailing partial record batch")
    if len(batches) != 1:
        raise ValidationError(Errors.InvalidRecordError,
                              "Produce v3+ requests must contain exactly one record batch")
    batch = batches[0]
    if batch.magic != 2:
        raise ValidationError(Errors.InvalidRecordError,
                              "Produce v3+ requests only allow magic v2 record batches")
    if batch.size_in_bytes > max_message_bytes:
        raise ValidationError(Errors.MessageSizeTooLargeError)
    if not batch.validate_crc():
        raise ValidationError(Errors.CorruptRecordError, "record batch CRC mismatch")
    if batch.is_control_batch:
        raise ValidationError(Errors.InvalidRecordError, "clients may not write control batches")
    if batch.is_transactional:
        raise ValidationError(Errors.InvalidTxnStateError, "transactions are not supported")
    try:
        records = list(batch)
    except Errors.UnsupportedCodecError as exc:
        raise ValidationError(Errors.UnsupportedCompressionTypeError, str(exc)) from exc
    except Exception as exc:  # malformed compressed payload / varints
        raise ValidationError(Errors.CorruptRecordError, f"undecodable records: {exc}") from exc
    if not records or len(records) != batch.records_count:
        raise ValidationError(Errors.InvalidRecordError, "record count mismatch")
    base = batch.base_offset
    if [r.offset - base for r in records] != list(range(len(records))):
        raise ValidationError(Errors.InvalidRecordError, "record offset deltas are not contiguous")
    if batch.last_offset_delta != len(records) - 1:
        raise ValidationError(Errors.InvalidRecordError, "last offset delta mismatch")
    return batch, records, data


class LogStore:
    """All topics of the broker plus idempotent-producer bookkeeping.

    ``cond`` is notified on every append so long-polling fetches wake up.
    """

    def __init__(self, max_message_bytes=DEFAULT_MAX_MESSAGE_BYTES):
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.topics: dict[str, list[PartitionLog]] = {}
        self.topic_configs: dict[str, dict] = {}
        self.max_message_bytes = max_message_bytes
        self._producers: dict[int, _ProducerState] = {}
        self._next_producer_id = 1000

    # -- topics ------------------------------------------------------------
    def create_topic(self, name, partitions, configs=None):
        err = topic_name_error(name)
        if err is not None:
            raise err(f"Illegal topic name {name!r}")
        if partitions < 1:
            raise Errors.InvalidPartitionsError("Number of partitions must be larger than 0")
        with self.lock:
            if name in self.topics:
                raise Errors.TopicAlreadyExistsError(f"Topic '{name}' already exists.")
            self.topics[name] = [PartitionLog(name, p) for p in range(partitions)]
            self.topic_configs[name] = dict(configs or {})

    def delete_topic(self, name):
        with self.lock:
            if name not in self.topics:
                raise Errors.UnknownTopicOrPartitionError(name)
            del self.topics[name]
            self.topic_configs.pop(name, None)
            self.cond.notify_all()

    def partition(self, topic, partition):
        parts = self.topics.get(topic)
        if parts is None or not 0 <= partition < len(parts):
            return None
        return parts[partition]

    # -- idempotent producers -----------------------------------------------
    def init_producer_id(self):
        with self.lock:
            pid = self._next_producer_id
            self._next_producer_id += 1
            self._producers[pid] = _ProducerState(epoch=0)
            return pid, 0

    def append(self, topic, partition, batch, records, raw):
        """Append a validated batch, enforcing idempotent-producer sequencing.

        Returns the base offset (the original one for a duplicate batch).
        Raises ValidationError for sequence / epoch violations.
        """
        with self.lock:
            log = self.partition(topic, partition)
            if log is None:
                raise ValidationError(Errors.UnknownTopicOrPartitionError)
            pstate = None
            if batch.has_producer_id():
                pid, epoch = batch.producer_id, batch.producer_epoch
                first_seq, last_seq = batch.base_sequence, batch.last_sequence
                producer = self._producers.get(pid)
                if producer is None:
                    raise ValidationError(Errors.UnknownProducerIdError)
                if epoch < producer.epoch:
                    raise ValidationError(Errors.InvalidProducerEpochError)
                if epoch > producer.epoch:
                    if first_seq != 0:
                        raise ValidationError(Errors.OutOfOrderSequenceNumberError)
                    producer.epoch = epoch
                    producer.partitions.clear()
                pstate = producer.partitions.setdefault((topic, partition), _ProducerPartitionState())
                for cached_first, cached_last, cached_base in pstate.batches:
                    if (cached_first, cached_last) == (first_seq, last_seq):
                        return cached_base  # duplicate of an appended batch
                if pstate.batches:
                    expected = (pstate.batches[-1][1] + 1) & 0x7FFFFFFF
                else:
                    expected = 0
                if first_seq != expected:
                    raise ValidationError(Errors.OutOfOrderSequenceNumberError,
                                          f"expected sequence {expected}, got {first_seq}")
            base = log.append(raw, records)
            if pstate is not None:
                pstate.batches.append((batch.base_sequence, batch.last_sequence, base))
            self.cond.notify_all()
            return base
