"""Faults on the production path, each a test: Kafka -> accesswatch -> Elasticsearch with the real clients.

Every run consumes the same topic (a simulated fortnight, four partitions)
with a group and a store of its own, under one fault, and must end with
exactly what a fault-free run of one instance ends with: every event stored
once, the same alerts (ids, revisions, figures) and the same incidents.
Detector state lives per partition, so the result does not depend on which
instance read which partition or when the group rebalanced.

Waits are bounded (``WAIT``) but nothing here asserts how long anything took.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from types import SimpleNamespace

import orjson
import pytest
from kafka.structs import TopicPartition

from ingest.kafka_send import send_lines
from ingest.kafka_source import DEAD_LETTER_MESSAGE_BYTES, checkpoint_name
from ingest.metrics import PipelineMetrics
from ingest.sources import OVERSIZE_KEEP
from store.base import StoreUnavailable
from tests import factories as f
from tests.fakes.es_server import FakeElasticsearch
from tests.fakes.kafka_broker import FakeKafkaBroker
from tests.test_kafka_source import (
    CLIENT,
    PARTITIONS,
    REAL_KAFKA,
    Cluster,
    Instance,
    app_settings,
    es_store,
    kafka_settings,
    outcome,
    reference,
    run_to_end,
    unique_prefix,
    wait_until,
)
from tests.test_kafka_source import month as month


@pytest.fixture(scope="module")
def cluster():
    cluster = Cluster()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def es_server():
    with FakeElasticsearch(realtime=False, refresh_interval=None) as server:
        yield server


@pytest.fixture(scope="module")
def topic(cluster, month) -> str:
    topic = cluster.topic()
    report = send_lines(month, topic, kafka_settings(cluster, topic), CLIENT)
    assert report.failed == 0
    return topic


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    return app_settings(tmp_path_factory.mktemp("faults"))


@pytest.fixture(scope="module")
def expected(cluster, es_server, settings, topic) -> dict:
    result = reference(cluster, es_server, settings, topic)
    assert result["alerts"] and result["incidents"]  # the fortnight must raise some, or nothing is proven
    return result


@pytest.fixture(autouse=True)
def _healthy_cluster(es_server):
    yield
    es_server.set_unavailable(False)
    es_server.clear_failures()


def _group() -> str:
    return f"faults-{uuid.uuid4().hex[:8]}"


def _progress(cluster: Cluster, group: str, topic: str) -> int:
    return sum(cluster.committed(group, topic).values())


class Killed(BaseException):
    """The process dies here (a BaseException, as nothing in the product may catch it)."""


class KillingStore:
    """A store that, once armed, dies half-way through the next batch: half of it stored, the rest not."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.armed = threading.Event()

    def write(self, events, dead_letters=()):
        if self.armed.is_set() and len(events) > 1:
            self.inner.write(events[: len(events) // 2], dead_letters)
            raise Killed
        return self.inner.write(events, dead_letters)

    def __getattr__(self, name):
        return getattr(self.inner, name)


# -- the store away or refusing ----------------------------------------------------------------------------
def test_elasticsearch_away_longer_than_the_retries_stops_the_commits_and_nothing_is_lost(
    cluster, es_server, settings, topic, expected
):
    group = _group()
    # retries give up after 1 s: each partition falls back to its checkpoint and waits, paused
    store = es_store(es_server, unique_prefix(), retry_for=1.0)
    instance = Instance(settings, kafka_settings(cluster, topic, group), store, "outage")
    instance.ingest.metrics = metrics = PipelineMetrics()
    instance.start()
    wait_until(lambda: _progress(cluster, group, topic) > 0, "a first commit")
    assert metrics.ready
    es_server.set_unavailable(True)
    time.sleep(1.0)  # a commit under way when the cluster went may still land
    committed, stored = cluster.committed(group, topic), instance.ingest.report.stored
    time.sleep(4.0)  # the outage: several retry periods long
    assert cluster.committed(group, topic) == committed  # nothing committed while nothing is stored
    assert instance.ingest.report.stored == stored
    assert cluster.fake is None or cluster.fake.group_members(group)  # still in the group, polling
    assert instance.thread.is_alive() and instance.error is None
    assert not metrics.ready  # /readyz tells of the outage (the lag stands still while partitions wait)
    es_server.set_unavailable(False)
    wait_until(lambda: metrics.ready, "ready again once the store is back")
    run_to_end(cluster, topic, group, [instance])
    assert outcome(store) == expected


class WatchedStore:
    """The store, writing down each call that failed for the store being away: on which thread, in which turn
    of the loop (its polls counted), and whether the instance said it was ready when the call began."""

    def __init__(self, inner, metrics: PipelineMetrics) -> None:
        self.inner, self.metrics = inner, metrics
        self.turn = 0
        self.failed: list[tuple[str, int, bool]] = []

    def __getattr__(self, name):
        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr

        def watched(*args, **kwargs):
            thread, turn, ready = threading.current_thread().name, self.turn, self.metrics.ready
            try:
                return attr(*args, **kwargs)
            except StoreUnavailable:
                self.failed.append((thread, turn, ready))
                raise

        return watched


def _lag(metrics: PipelineMetrics, topic: str) -> float:
    return sum(
        metrics.registry.get_sample_value("accesswatch_kafka_consumer_lag", {"topic": topic, "partition": str(p)})
        or 0.0
        for p in range(PARTITIONS)
    )


def test_elasticsearch_away_is_waited_out_once_not_once_a_partition_and_readiness_and_lag_say_it_at_once(
    cluster, es_server, settings
):
    """T11: each paused partition was restored in turn on the loop's thread, each waiting out retry_for without a
    poll (with 4 partitions past max_poll_interval: out of the group, 26 times in 2 minutes); /readyz said 200
    until that turn ended, and the lag stood at 0 with messages unread."""
    topic, group = cluster.topic(), _group()
    first = [orjson.dumps(f.event_dict()) for _ in range(400)]
    assert send_lines(first, topic, kafka_settings(cluster, topic), CLIENT).failed == 0
    metrics = PipelineMetrics()
    store = WatchedStore(es_store(es_server, unique_prefix(), retry_for=1.0), metrics)
    instance = Instance(settings, kafka_settings(cluster, topic, group), store, "away")
    instance.ingest.metrics = metrics
    loop_thread = instance.thread.name
    poll = instance.source.poll

    def counted(timeout, max_records):
        store.turn += 1
        return poll(timeout, max_records)

    instance.source.poll = counted  # type: ignore[method-assign]
    instance.start()
    ends = {p: end for p, end in cluster.end_offsets(topic).items() if end}
    wait_until(lambda: cluster.committed(group, topic) == ends, "the first messages judged")
    es_server.set_unavailable(True)
    later = [orjson.dumps(f.event_dict()) for _ in range(300)]
    assert send_lines(later, topic, kafka_settings(cluster, topic), CLIENT).failed == 0
    wait_until(lambda: not metrics.ready, "not ready")
    # the store asked again, off the loop's thread, and still away, twice
    wait_until(lambda: sum(thread != loop_thread for thread, _, _ in store.failed) >= 2, "two answers of the store")
    wait_until(lambda: _lag(metrics, topic) == len(later), "the lag of the messages come meanwhile")
    assert instance.thread.is_alive() and instance.error is None
    es_server.set_unavailable(False)
    wait_until(lambda: metrics.ready, "ready again once the store is back")
    ends = {p: end for p, end in cluster.end_offsets(topic).items() if end}  # the actors' partitions only
    wait_until(lambda: cluster.committed(group, topic) == ends, "every message judged")
    instance.stop()

    on_the_loop = [turn for thread, turn, _ in store.failed if thread == loop_thread]
    assert on_the_loop and max(on_the_loop.count(turn) for turn in on_the_loop) == 1  # one store wait a turn
    assert [ready for _, _, ready in store.failed[1:]] == [False] * (len(store.failed) - 1)  # not ready at once
    assert store.stats().events == len(first) + len(later)  # nothing lost
    assert _lag(metrics, topic) == 0


def test_elasticsearch_answering_429_for_a_while_delays_but_changes_nothing(
    cluster, es_server, settings, topic, expected
):
    group, store = _group(), es_store(es_server, unique_prefix())
    es_server.fail_next(12, status=429, path_prefix="/_bulk")  # whole requests refused ...
    es_server.reject_bulk_items(500, status=429)  # ... and items inside accepted ones
    instance = Instance(settings, kafka_settings(cluster, topic, group), store, "busy").start()
    run_to_end(cluster, topic, group, [instance])
    assert es_server.cluster.reject_items.remaining == 0  # the refusals were met, and retried
    assert outcome(store) == expected


def test_a_store_that_cannot_be_reached_at_all_is_reported_not_swallowed(es_server):
    es_server.set_unavailable(True)
    with pytest.raises(StoreUnavailable):
        es_store(es_server, unique_prefix(), retry_for=0.5)


# -- instances dying, joining, sharing ----------------------------------------------------------------------
def test_a_consumer_killed_mid_batch_is_taken_over_and_every_event_and_alert_is_there_once(
    cluster, es_server, settings, topic, expected
):
    group, prefix = _group(), unique_prefix()
    doomed = KillingStore(es_store(es_server, prefix))
    a = Instance(settings, kafka_settings(cluster, topic, group), doomed, "a").start()
    b = Instance(settings, kafka_settings(cluster, topic, group), es_store(es_server, prefix), "b").start()
    wait_until(lambda: a.assigned and b.assigned, "both instances to own partitions")
    wait_until(lambda: _progress(cluster, group, topic) > 0, "a first commit")
    doomed.armed.set()
    wait_until(lambda: not a.thread.is_alive(), "the kill")
    assert isinstance(a.error, Killed)
    a.crash()  # no checkpoint, no commit, no goodbye: the broker notices after the session timeout
    wait_until(lambda: len(b.assigned) == PARTITIONS, "the takeover")
    run_to_end(cluster, topic, group, [b])
    assert b.ingest.report.duplicates > 0  # the half batch the dead instance stored came again ...
    # ... counted as redelivered, judged again: the run's summary tells them from plain duplicates
    assert 0 < b.ingest.report.redelivered <= b.ingest.report.duplicates
    assert outcome(b.store) == expected  # ... and was judged once: the same alerts, revisions and all


def test_two_instances_in_one_group_split_the_partitions_and_end_as_one_would(
    cluster, es_server, settings, topic, expected
):
    group, prefix = _group(), unique_prefix()
    a = Instance(settings, kafka_settings(cluster, topic, group), es_store(es_server, prefix), "a").start()
    wait_until(lambda: _progress(cluster, group, topic) > 0, "the first instance under way")
    b = Instance(settings, kafka_settings(cluster, topic, group), es_store(es_server, prefix), "b").start()
    # a gave some partitions up with their state, b took them over from their checkpoints
    wait_until(lambda: a.assigned and b.assigned and len(a.assigned | b.assigned) == PARTITIONS, "the split")
    assert a.assigned.isdisjoint(b.assigned)
    run_to_end(cluster, topic, group, [a, b])
    assert a.ingest.report.stored > 0 and b.ingest.report.stored > 0
    assert a.ingest.report.stored + b.ingest.report.stored == expected["events"]  # each stored by one
    assert outcome(a.store) == expected


def test_an_instance_that_stalled_and_lost_its_partitions_cannot_overwrite_the_new_owner(
    cluster, es_server, settings, topic, expected, caplog
):
    group, prefix = _group(), unique_prefix()

    class StallingStore(KillingStore):
        def write(self, events, dead_letters=()):
            if self.armed.is_set():
                self.armed.clear()
                time.sleep(15.0)  # longer than max_poll_interval: the group moves on without it
            return self.inner.write(events, dead_letters)

    stalling = StallingStore(es_store(es_server, prefix))
    # 6 s leaves room for an ordinary batch on a loaded machine. (The waits for "both instances to own
    # partitions" that timed out in CI were kafka-python dropping a join: see ingest/kafka_join_guard.py.)
    a = Instance(settings, kafka_settings(cluster, topic, group, max_poll_interval=6.0), stalling, "a").start()
    b = Instance(settings, kafka_settings(cluster, topic, group), es_store(es_server, prefix), "b").start()
    wait_until(lambda: a.assigned and b.assigned, "both instances to own partitions")
    stalling.armed.set()
    wait_until(lambda: len(b.assigned) == PARTITIONS, "the takeover of the stalled instance's partitions")
    run_to_end(cluster, topic, group, [a, b])
    # its late checkpoint was refused: the new owner's state stood
    assert any("taken over by another instance" in record.getMessage() for record in caplog.records)
    assert outcome(b.store) == expected


def test_poison_messages_go_to_the_dead_letter_topic_and_store_and_the_offset_moves_on(cluster, es_server, tmp_path):
    topic = cluster.topic(partitions=1)
    settings = app_settings(tmp_path)
    # below the configurable minimum (models.config.LARGEST_EVENT_LINE), so that a line over it stays small
    settings = settings.model_copy(update={"ingest": settings.ingest.model_copy(update={"max_line_bytes": 4096})})
    good = [orjson.dumps(f.event_dict()) for _ in range(3)]
    bad_schema = orjson.dumps(f.event_dict(record_count="many"))
    too_large = orjson.dumps(f.event_dict(extra={"blob": "y" * 10_000}))
    lines = [good[0], b"{not json", good[1], bad_schema, too_large, good[2]]
    kafka = kafka_settings(cluster, topic)
    assert send_lines(lines, topic, kafka, CLIENT).sent == len(lines)
    store = es_store(es_server, unique_prefix())
    instance = Instance(settings, kafka, store, "poison").start()
    run_to_end(cluster, topic, "accesswatch", [instance])
    assert store.stats().events == 3
    reasons = {letter.position: letter.reason for letter in store.dead_letters()}
    assert set(reasons) == {"offset 1", "offset 3", "offset 4"}
    assert reasons["offset 1"].startswith("not valid JSON")
    assert "record_count" in reasons["offset 3"]
    assert "over the limit" in reasons["offset 4"]
    dead = cluster.messages(f"{topic}.deadletter")
    assert [(m[4]["accesswatch.offset"], m[4]["accesswatch.reason"].decode()) for m in dead] == [
        (b"1", reasons["offset 1"]),
        (b"3", reasons["offset 3"]),
        (b"4", reasons["offset 4"]),
    ]
    assert dead[0][3] == b"{not json" and dead[0][2] is None
    assert dead[2][4]["accesswatch.truncated_from"] == str(len(too_large)).encode()
    assert cluster.committed("accesswatch", topic) == {0: len(lines)}


@pytest.mark.skipif(REAL_KAFKA is not None, reason="messages over 1 MB: a test broker that takes them")
def test_a_message_over_a_fetch_and_over_a_dead_letter_message_is_stored_or_dead_lettered_whole(es_server, tmp_path):
    """``send`` takes every line the consumers take whole (``ingest.max_line_bytes``, 20 MiB); a consumer gets a
    message larger than max_partition_fetch_bytes (1 MiB) whole (KIP-74); a poison message larger than a
    dead-letter message goes to its topic as its head, as one over the line limit does, and whole to the store."""
    with FakeKafkaBroker(default_partitions=1, max_message_bytes=8_000_000) as broker:
        cluster = SimpleNamespace(bootstrap=broker.bootstrap)
        topic = f"large-{uuid.uuid4().hex[:6]}"
        broker.create_topic(topic, 1)
        broker.create_topic(f"{topic}.deadletter", 1)
        kafka = kafka_settings(cluster, topic)
        valid = orjson.dumps(f.event_dict(customer_ids=["é" * 128] * 10_000))  # 2.6 MB of valid event
        poison = orjson.dumps(f.event_dict(record_count="many", customer_ids=["é" * 128] * 10_000))
        assert len(valid) > 2 * kafka.max_partition_fetch_bytes and len(poison) > DEAD_LETTER_MESSAGE_BYTES
        report = send_lines([valid, poison], topic, kafka, CLIENT)
        assert (report.sent, report.failed) == (2, 0), report.first_error
        store = es_store(es_server, unique_prefix())
        instance = Instance(app_settings(tmp_path), kafka, store, "large").start()
        wait_until(lambda: broker.committed("accesswatch", topic) == {0: 2} or instance.error, "the commit")
        instance.stop()
        assert store.stats().events == 1
        (letter,) = store.dead_letters()
        assert (letter.position, letter.raw) == ("offset 1", poison) and "record_count" in letter.reason
        ((_, sent),) = broker.records(f"{topic}.deadletter")
        assert sent.value == poison[:OVERSIZE_KEEP]
        assert dict(sent.headers)["accesswatch.truncated_from"] == str(len(poison)).encode()


@pytest.mark.skipif(REAL_KAFKA is not None, reason="holds the test broker's answers")
def test_the_dead_letter_topic_away_mid_run_holds_the_checkpoints_until_its_letters_are_sent_again(
    es_server, tmp_path, caplog
):
    """A flush that failed kept nothing: the next checkpoint passed letters never sent (and kafka-python's
    idempotent producer hung in the flush after it, for good).  Now they are sent again once Kafka is back."""
    caplog.set_level(logging.ERROR, logger="ingest.kafka_source")
    with FakeKafkaBroker(default_partitions=1) as broker:
        cluster = SimpleNamespace(bootstrap=broker.bootstrap)
        topic = f"away-{uuid.uuid4().hex[:6]}"
        broker.create_topic(topic, 1)
        broker.create_topic(f"{topic}.deadletter", 1)
        kafka = kafka_settings(cluster, topic, request_timeout=2.0)  # below the sends' delivery timeout
        send_lines([orjson.dumps(f.event_dict(event_id="before")), b"{not json 1"], topic, kafka, CLIENT)
        store = es_store(es_server, unique_prefix())
        instance = Instance(app_settings(tmp_path), kafka, store, "away")
        fast = {**instance.source._extra_producer(), "delivery_timeout_ms": 3000}  # a send gives up after 3 s
        instance.source._extra_producer = lambda: fast
        instance.start()
        wait_until(lambda: broker.committed("accesswatch", topic) == {0: 2} or instance.error, "a first dead letter")
        assert instance.error is None
        publish = instance.source.publish_dead_letters

        def publish_into_an_outage(letters):
            if letters:
                broker.pause()  # Kafka away: requests held, never answered while it lasts
            return publish(letters)

        instance.source.publish_dead_letters = publish_into_an_outage
        send_lines([orjson.dumps(f.event_dict(event_id="after")), b"{not json 2"], topic, kafka, CLIENT)

        def waits() -> int:
            return sum("could not take 1 messages now" in record.getMessage() for record in caplog.records)

        def checkpointed() -> int:
            checkpoint = store.load_checkpoint(checkpoint_name(TopicPartition(topic, 0)))
            return 0 if checkpoint is None else checkpoint.seq

        # the letter failed twice: sent again, and again no checkpoint passed it (or, before, one did)
        wait_until(lambda: waits() >= 2 or checkpointed() > 2 or instance.error, "two failed flushes")
        assert checkpointed() == 2 and instance.error is None
        instance.source.publish_dead_letters = publish
        broker.resume()
        wait_until(lambda: broker.committed("accesswatch", topic) == {0: 4} or instance.error, "the last commit")
        instance.stop()
        assert checkpointed() == 4
        assert b"{not json 2" in [value for _, _, _, value in broker.messages(f"{topic}.deadletter")]
