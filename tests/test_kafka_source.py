"""The Kafka source: a consumer group reading through the one pipeline, with the real kafka-python client.

Runs against the in-process test broker (``tests/fakes/kafka_broker``: the
Kafka wire protocol on a loopback port) and, when ``ACCESSWATCH_TEST_KAFKA``
names a bootstrap address, against a real cluster (topics are created with
a unique name per test)::

    ACCESSWATCH_TEST_KAFKA=localhost:9092 .venv/bin/python -m pytest tests/test_kafka_source.py

The store is the Elasticsearch adapter on its test server, so that what is
tested is the production path: Kafka -> accesswatch -> Elasticsearch.  The
helpers here (``Instance``, ``wait_until``...) are shared with
``tests/test_production_faults.py``.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import orjson
import pytest
from kafka import KafkaConsumer
from kafka.admin import KafkaAdminClient, NewTopic

from accesswatch.app import build_engine
from configs.loader import load_settings
from ingest.kafka_send import actor_key, send_lines
from ingest.kafka_settings import KafkaSettings, KafkaUnreachable
from ingest.kafka_settings import load as load_kafka
from ingest.kafka_source import KafkaIngest, KafkaSource
from ingest.metrics import PipelineMetrics
from ingest.pipeline import Pipeline
from ingest.simulator import SimulationSettings, write_simulation
from models.config import ConfigError, Settings
from store.base import AlertQuery, EventQuery, IncidentQuery
from store.elasticsearch import ElasticsearchSettings, ElasticsearchStore
from store.sqlite import SqliteStore
from tests.fakes.es_server import FakeElasticsearch
from tests.fakes.kafka_broker import FakeKafkaBroker

REAL_KAFKA = os.environ.get("ACCESSWATCH_TEST_KAFKA")
PARTITIONS = 4
CLIENT = {"retry_backoff_ms": 50, "reconnect_backoff_ms": 50}  # the test broker answers at once: retry soon
WAIT = 300.0  # the longest any wait here may take before the test fails (a loaded 2-core machine)
_names = itertools.count(1)


# -- the cluster, the store, the data ----------------------------------------------------------------
class Cluster:
    """The broker under test: the in-process test broker, or a real cluster (``ACCESSWATCH_TEST_KAFKA``)."""

    def __init__(self) -> None:
        self.fake = None if REAL_KAFKA else FakeKafkaBroker(default_partitions=PARTITIONS).start()
        self.bootstrap = REAL_KAFKA or self.fake.bootstrap

    def topic(self, partitions: int = PARTITIONS) -> str:
        name = f"access-{next(_names)}-{uuid.uuid4().hex[:6]}"
        if self.fake is not None:
            self.fake.create_topic(name, partitions=partitions)
            self.fake.create_topic(f"{name}.deadletter", partitions=1)
        else:
            admin = KafkaAdminClient(bootstrap_servers=self.bootstrap)
            admin.create_topics([NewTopic(name, partitions, 1), NewTopic(f"{name}.deadletter", 1, 1)])
            admin.close()
        return name

    def end_offsets(self, topic: str) -> dict[int, int]:
        if self.fake is not None:
            return self.fake.end_offsets(topic)
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, **CLIENT)
        try:
            return {tp.partition: offset for tp, offset in consumer.end_offsets(_partitions(consumer, topic)).items()}
        finally:
            consumer.close()

    def committed(self, group: str, topic: str) -> dict[int, int]:
        if self.fake is not None:
            return self.fake.committed(group, topic)
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, group_id=group, enable_auto_commit=False, **CLIENT)
        try:
            return {
                tp.partition: offset
                for tp in _partitions(consumer, topic)
                if (offset := consumer.committed(tp)) is not None
            }
        finally:
            consumer.close()

    def messages(self, topic: str) -> list[tuple[int, int, bytes | None, bytes, dict[str, bytes]]]:
        """Every message of a topic: (partition, offset, key, value, headers)."""
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, **CLIENT)
        try:
            partitions = _partitions(consumer, topic)
            consumer.assign(partitions)
            consumer.seek_to_beginning(*partitions)
            ends = consumer.end_offsets(partitions)
            out = []
            deadline = time.monotonic() + WAIT
            while any(consumer.position(tp) < ends[tp] for tp in partitions) and time.monotonic() < deadline:
                for tp, records in consumer.poll(timeout_ms=200).items():
                    out.extend((tp.partition, r.offset, r.key, r.value, dict(r.headers)) for r in records)
            return sorted(out)
        finally:
            consumer.close()

    def stop(self) -> None:
        if self.fake is not None:
            self.fake.stop()


def _partitions(consumer: KafkaConsumer, topic: str):
    from kafka.structs import TopicPartition

    deadline = time.monotonic() + WAIT
    while not (parts := consumer.partitions_for_topic(topic)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [TopicPartition(topic, p) for p in sorted(parts or ())]


@pytest.fixture(scope="module")
def cluster():
    cluster = Cluster()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def es_server():
    # near-real-time, refreshed only when asked: the store refreshes what it must read back
    with FakeElasticsearch(realtime=False, refresh_interval=None) as server:
        yield server


@pytest.fixture(scope="module")
def month(tmp_path_factory) -> list[bytes]:
    """Twelve days of a small organisation: past the week of warm-up, with insider scenarios that alert."""
    out = tmp_path_factory.mktemp("simulation")
    write_simulation(out, SimulationSettings(seed=11, days=12, employees=20))
    return (out / "events.jsonl").read_bytes().splitlines()


def app_settings(tmp_path: Path, **overrides) -> Settings:
    return load_settings(env={}, overrides={"data_dir": str(tmp_path / "data"), **overrides})


def kafka_settings(cluster: Cluster, topic: str, group: str = "accesswatch", **overrides) -> KafkaSettings:
    base = {
        "bootstrap_servers": [cluster.bootstrap],
        "topics": [topic],
        "group_id": group,
        "dead_letter_topic": f"{topic}.deadletter",
        "session_timeout": 10.0,  # a killed member is noticed in 10 s; a busy machine is no dead member
        "heartbeat_interval": 1.0,
        "max_poll_interval": 30.0,
        "fetch_max_wait": 0.1,
        "request_timeout": 10.0,
        "checkpoint_interval": 0.3,
        "checkpoint_events": 3000,
    }
    return KafkaSettings(**{**base, **overrides})


def es_store(es_server, prefix: str, **overrides) -> ElasticsearchStore:
    fast = {"retry_for": 20.0, "retry_initial": 0.05, "retry_max": 0.5, "replicas": 0}
    return ElasticsearchStore(ElasticsearchSettings(hosts=[es_server.url], prefix=prefix, **{**fast, **overrides}))


def unique_prefix() -> str:
    return f"awk{next(_names)}-{uuid.uuid4().hex[:6]}"


def wait_until(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.25)


# -- one accesswatch instance on a thread ----------------------------------------------------------------
class Instance:
    """What ``accesswatch run`` does with a Kafka source, on a thread: the store may be wrapped to inject faults."""

    def __init__(self, settings: Settings, kafka: KafkaSettings, store, name: str) -> None:
        self.store = store
        self.source = KafkaSource(kafka, settings.ingest.max_line_bytes, {**CLIENT, "client_id": name})

        def pipeline(checkpoint: str) -> Pipeline:
            return Pipeline(settings, store, build_engine(settings), None, None, checkpoint, 0)

        self.ingest = KafkaIngest(store, pipeline, settings.ingest.batch_lines)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=f"instance-{name}", daemon=True)

    def _run(self) -> None:
        try:
            self.ingest.run(self.source)
        except BaseException as exc:  # the test reads it
            self.error = exc

    def start(self) -> Instance:
        self.thread.start()
        return self

    def stop(self) -> None:
        """SIGTERM: finish the batch, checkpoint, commit, leave the group."""
        self.source.stop()
        self.thread.join(WAIT)
        assert not self.thread.is_alive(), "the instance did not stop"
        self.source.close()
        if self.error is not None:
            raise self.error

    def crash(self) -> None:
        """What a SIGKILL leaves: no checkpoint, no commit, no LeaveGroup; the broker notices the silence."""
        self.thread.join(WAIT)
        assert not self.thread.is_alive()
        consumer = self.source.consumer
        if consumer is not None:
            consumer._client.close()  # sockets and heartbeats gone, as with a dead process

    @property
    def assigned(self) -> set[int]:
        return {tp.partition for tp, part in list(self.ingest._parts.items()) if part.pipeline is not None}


def run_to_end(cluster: Cluster, topic: str, group: str, instances: list[Instance]) -> None:
    """Wait until every message is stored, judged and committed, then stop the instances."""
    ends = cluster.end_offsets(topic)
    wait_until(
        lambda: cluster.committed(group, topic) == ends or any(i.error for i in instances), "every offset committed"
    )
    for instance in instances:
        instance.stop()


def outcome(store: ElasticsearchStore) -> dict:
    """What the run left in the store, comparable between runs."""
    alerts = store.query_alerts(AlertQuery(limit=100_000))
    incidents = store.query_incidents(IncidentQuery(order="oldest", limit=100_000))
    # an incident's revision counts the batches that grew it, and how a stream is cut into
    # batches is the poll's business: everything else about it is the same in every run
    return {
        "events": store.stats().events,
        "dead_letters": store.stats().dead_letters,
        "alerts": sorted((a.to_record() for a in alerts), key=lambda r: r["alert_id"]),
        "incidents": sorted(
            (i.model_dump(mode="json", exclude={"revision"}) for i in incidents), key=lambda r: r["incident_id"]
        ),
    }


def reference(cluster, es_server, settings, topic) -> dict:
    """One instance, no faults: what every other run of the same topic must end with."""
    group, store = f"reference-{uuid.uuid4().hex[:6]}", es_store(es_server, unique_prefix())
    instance = Instance(settings, kafka_settings(cluster, topic, group), store, "reference").start()
    run_to_end(cluster, topic, group, [instance])
    return outcome(store)


# -- tests ---------------------------------------------------------------------------------------------------
def test_send_keys_each_event_by_its_actor_so_an_actor_stays_in_one_partition(cluster, month):
    topic = cluster.topic()
    report = send_lines(month[:3000], topic, kafka_settings(cluster, topic), CLIENT)
    assert (report.sent, report.failed) == (3000, 0)
    partitions_of: dict[bytes, set[int]] = {}
    for partition, _, key, value, _ in cluster.messages(topic):
        assert key == orjson.loads(value)["actor"]["id"].encode()
        partitions_of.setdefault(key, set()).add(partition)
    assert all(len(parts) == 1 for parts in partitions_of.values())
    assert len({p for parts in partitions_of.values() for p in parts}) > 1  # the actors are spread
    assert actor_key(b"{not json") is None and actor_key(b'{"actor": 5}') is None


def test_one_instance_stores_every_message_once_and_commits_what_it_checkpointed(cluster, es_server, month, tmp_path):
    topic = cluster.topic()
    send_lines(month, topic, kafka_settings(cluster, topic), CLIENT)
    settings, store = app_settings(tmp_path), es_store(es_server, unique_prefix())
    instance = Instance(settings, kafka_settings(cluster, topic), store, "solo")
    instance.ingest.metrics = metrics = PipelineMetrics()
    instance.start()
    wait_until(lambda: metrics.ready, "ready")
    run_to_end(cluster, topic, "accesswatch", [instance])
    assert not metrics.ready
    ends = cluster.end_offsets(topic)
    assert store.stats().events == len(month)
    for partition, end in ends.items():  # the checkpoint covers exactly what was committed
        checkpoint = store.load_checkpoint(f"detectors@kafka:{topic}/{partition}")
        assert checkpoint is not None and checkpoint.seq == end
    report = instance.ingest.report
    assert report.stored == len(month) and report.balanced
    assert report.alerts_raised > 0 and len(store.query_alerts(AlertQuery())) == report.alerts_raised
    assert [lag.lag for lag in instance.source.lag()] == [0] * PARTITIONS
    exposed = metrics.exposition().decode()
    assert f'accesswatch_kafka_consumer_lag{{partition="0",topic="{topic}"}} 0.0' in exposed
    # each polled batch timed from its poll, and alerts from the batch that held their last event: both
    # histograms stood at 0 on the Kafka path, which never told the metrics when a batch was read
    assert metrics.registry.get_sample_value("accesswatch_batch_seconds_count") > 0
    assert metrics.registry.get_sample_value("accesswatch_event_to_alert_seconds_count") > 0


def test_a_restart_goes_on_from_the_checkpoints_and_judges_nothing_twice(cluster, es_server, month, tmp_path):
    topic = cluster.topic()
    kafka = kafka_settings(cluster, topic)
    send_lines(month[: len(month) // 2], topic, kafka, CLIENT)
    settings, prefix = app_settings(tmp_path), unique_prefix()
    first = Instance(settings, kafka, es_store(es_server, prefix), "first").start()
    run_to_end(cluster, topic, "accesswatch", [first])
    send_lines(month[len(month) // 2 :], topic, kafka, CLIENT)
    second = Instance(settings, kafka, es_store(es_server, prefix), "second").start()
    run_to_end(cluster, topic, "accesswatch", [second])
    assert second.ingest.report.lines_read == len(month) - len(month) // 2  # not one message read again
    assert outcome(second.store) == reference(cluster, es_server, settings, topic)


def test_the_generic_source_interface_feeds_one_pipeline_and_commits_after_each_batch(
    cluster, es_server, month, tmp_path
):
    topic = cluster.topic()
    kafka = kafka_settings(cluster, topic)
    send_lines(month[:2000], topic, kafka, CLIENT)
    settings, store = app_settings(tmp_path), es_store(es_server, unique_prefix())
    source = KafkaSource(kafka, settings.ingest.max_line_bytes, CLIENT)
    pipeline = Pipeline(settings, store, build_engine(settings), None)
    thread = threading.Thread(target=pipeline.run, args=(source, False), daemon=True)
    thread.start()
    wait_until(lambda: cluster.committed("accesswatch", topic) == cluster.end_offsets(topic), "commits")
    source.stop()
    thread.join(WAIT)
    source.close()
    assert store.stats().events == 2000 and pipeline.report.balanced
    assert store.query_events(EventQuery(limit=1)).items


@pytest.mark.skipif(REAL_KAFKA is not None, reason="holds JoinGroup answers: a hook of the test broker")
def test_a_group_join_that_outlasts_the_poll_is_finished_not_dropped():
    """kafka-python 3.0.12 dropped such a join (``ingest/kafka_join_guard.py``): the member owned nothing, for good.

    The join is the leader's own, on a metadata change: the topic appears after
    the group first formed without it. The broker answers the JoinGroup after
    1 s, long past the poll's 0.1 s, and the caller works between polls (a join
    that ended then was thrown away and started again, each time).
    """
    with FakeKafkaBroker(default_partitions=PARTITIONS, auto_create_topics=False) as broker:
        topic, group = f"late-{uuid.uuid4().hex[:6]}", "late"
        kafka = kafka_settings(SimpleNamespace(bootstrap=broker.bootstrap), topic, group)
        source = KafkaSource(kafka, 1 << 20, {**CLIENT, "metadata_max_age_ms": 200})
        try:
            poll_until(source, lambda: broker.group_state(group) == "Stable", "the group formed without the topic")
            assert source.consumer.assignment() == set()
            broker.hold_joins(1.0)
            broker.create_topic(topic, PARTITIONS)
            poll_until(source, lambda: len(source.consumer.assignment()) == PARTITIONS, "the topic's partitions")
            assert broker.group_members(group) and broker.group_state(group) == "Stable"
        finally:
            source.close()


def test_send_to_a_topic_that_is_not_there_stops_at_once_in_one_line():
    # auto-create off: each line waited 60 s for the topic's metadata, a backfill for days
    with FakeKafkaBroker(default_partitions=PARTITIONS, auto_create_topics=False) as broker:
        kafka = kafka_settings(SimpleNamespace(bootstrap=broker.bootstrap), "no-such-topic", bootstrap_timeout=1.0)
        with pytest.raises(KafkaUnreachable, match=r"no topic 'no-such-topic' at .*create it, or check --topic"):
            send_lines([b"{}", b"{}"], "no-such-topic", kafka, CLIENT)


@pytest.mark.skipif(REAL_KAFKA is not None, reason="stops the test broker")
@pytest.mark.parametrize("outage", ["refuses", "never answers"])
def test_the_dead_letter_topic_out_of_reach_at_start_stops_the_run_as_the_consumer_does(tmp_path, outage):
    """The consumer reached Kafka, then Kafka went: the dead-letter producer, made at start, cannot reach it.

    ``KafkaUnreachable`` is what ``accesswatch run`` prints as one line and exits 1 for (``tests/test_cli.py``
    runs it for the consumer), after ``bootstrap_timeout``, neither a traceback nor a hang.
    """
    broker = FakeKafkaBroker(default_partitions=1).start()
    topic = f"reach-{uuid.uuid4().hex[:6]}"
    broker.create_topic(topic, 1)
    kafka = kafka_settings(SimpleNamespace(bootstrap=broker.bootstrap), topic, bootstrap_timeout=0.5)
    source = KafkaSource(kafka, 1 << 20, CLIENT)
    opened, polled = source.open, source.poll

    def open_then_lose_kafka(listener=None):
        consumer = opened(listener)
        if outage == "refuses":
            broker.stop()  # its port closed: connections refused
        else:
            broker.pause()  # connections taken, requests never answered
        return consumer

    def poll_once(timeout, max_records):  # had the run started without the producer, it would stop after a poll
        source.stop()
        return polled(timeout, max_records)

    source.open, source.poll = open_then_lose_kafka, poll_once
    store = SqliteStore(tmp_path / "store.db")
    try:
        ingest = KafkaIngest(store, lambda name: pytest.fail("no partition is ingested"), 100)
        with pytest.raises(KafkaUnreachable) as caught:
            ingest.run(source)
        assert str(caught.value) == (
            f"cannot reach Kafka at {broker.bootstrap}: no broker answered within 0.5 s"
            " (source.kafka.bootstrap_servers, source.kafka.bootstrap_timeout)"
        )
    finally:
        broker.stop()  # answers nothing more: the consumer's goodbye is refused at once
        source.close()
        store.close()


def poll_until(source: KafkaSource, condition: Callable[[], bool], what: str) -> None:
    """``wait_until``, polling the source first each time: its 0.25 s pauses are a pipeline's work between polls."""

    def polled() -> bool:
        source.poll(0.1, 100)
        return condition()

    wait_until(polled, what)


# -- configuration -----------------------------------------------------------------------------------------
def test_security_settings_build_tls_and_sasl_options_without_showing_the_secret(tmp_path):
    import ssl
    import subprocess

    key, cert = tmp_path / "client.key", tmp_path / "client.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=accesswatch-test",
        ],
        check=True,
        capture_output=True,
    )
    secret = tmp_path / "sasl"
    secret.write_text("kafka-s3cret\n")
    settings = load_kafka(
        {
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_username": "accesswatch",
            "sasl_password_file": str(secret),
            "ssl_cafile": str(cert),
            "ssl_certfile": str(cert),
            "ssl_keyfile": str(key),
        }
    )
    options = settings.consumer_options()
    assert options["security_protocol"] == "SASL_SSL" and options["sasl_plain_password"] == "kafka-s3cret"
    assert isinstance(options["ssl_context"], ssl.SSLContext) and options["ssl_context"].check_hostname
    assert options["enable_auto_commit"] is False
    assert "kafka-s3cret" not in repr(settings) and "kafka-s3cret" not in str(settings.model_dump())
    inline = load_kafka({"security_protocol": "SASL_PLAINTEXT", "sasl_username": "a", "sasl_password": "pw-123"})
    assert "pw-123" not in repr(inline) and inline.client_options()["sasl_plain_password"] == "pw-123"


def test_settings_mistakes_are_one_line_naming_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"source\.kafka\.auto_offset_reset = 'oldest'"):
        load_kafka({"auto_offset_reset": "oldest"})
    with pytest.raises(ConfigError, match="sasl_username"):
        load_kafka({"security_protocol": "SASL_SSL"})
    with pytest.raises(ConfigError, match=r"source\.kafka\.sasl_password_file"):
        load_kafka(
            {"security_protocol": "SASL_SSL", "sasl_username": "a", "sasl_password_file": str(tmp_path / "missing")}
        ).client_options()
    with pytest.raises(ConfigError) as caught:
        load_kafka({"sasl_password": 987654321})
    assert "987654321" not in str(caught.value)
