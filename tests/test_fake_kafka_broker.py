"""Tests of the fake Kafka broker, driven by the real kafka-python client over loopback sockets.

Every wait is bounded; no assertion depends on wall-clock durations.
"""

import socket
import threading
import time
from collections import defaultdict

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import (
    CoordinatorLoadInProgressError,
    InvalidReplicationFactorError,
    KafkaTimeoutError,
    TopicAlreadyExistsError,
)
from kafka.partitioner.default import murmur2
from kafka.protocol.consumer import (
    FetchRequest,
    HeartbeatRequest,
    JoinGroupRequest,
    OffsetCommitRequest,
    OffsetFetchRequest,
    SyncGroupRequest,
)
from kafka.protocol.metadata import ApiVersionsRequest, MetadataRequest
from kafka.protocol.parser import KafkaProtocol
from kafka.protocol.producer import ProduceRequest
from kafka.record import MemoryRecords, MemoryRecordsBuilder
from kafka.structs import OffsetAndMetadata

from ingest.kafka_join_guard import rejoin_if_join_dropped
from tests.fakes.kafka_broker import FAST_CONSUMER_CONFIG, FakeKafkaBroker

# Quick group rebalances (FAST_CONSUMER_CONFIG) plus what these tests want by default.
FAST_GROUP = dict(FAST_CONSUMER_CONFIG, auto_offset_reset="earliest", enable_auto_commit=False)
WAIT = 120.0  # upper bound for any single wait (a loaded CI machine); tests normally finish far sooner


# ------------------------------------------------------------------ fixtures
@pytest.fixture
def broker():
    with FakeKafkaBroker(host="127.0.0.1", port=0, auto_create_topics=True, default_partitions=3) as b:
        yield b
    assert b.internal_errors == []  # a handler crash is a bug in the fake, never "expected"


@pytest.fixture
def clients():
    """Factory for kafka-python clients that are closed (bounded) at teardown."""
    made = []

    class Factory:
        def producer(self, broker, **kw):
            kw.setdefault("linger_ms", 5)
            kw.setdefault("request_timeout_ms", 5000)
            kw.setdefault("retry_backoff_ms", 50)
            kw.setdefault("reconnect_backoff_ms", 50)
            p = KafkaProducer(bootstrap_servers=broker.bootstrap, **kw)
            made.append(("producer", p))
            return p

        def consumer(self, broker, *topics, **kw):
            cfg = dict(FAST_GROUP)
            cfg.update(kw)
            c = KafkaConsumer(*topics, bootstrap_servers=broker.bootstrap, **cfg)
            made.append(("consumer", c))
            return c

        def admin(self, broker, **kw):
            a = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=5000, **kw)
            made.append(("admin", a))
            return a

    yield Factory()
    for kind, client in reversed(made):
        try:
            if kind == "consumer":
                client.close(autocommit=False, timeout_ms=2000)
            elif kind == "producer":
                client.close(timeout=2)
            else:
                client.close()
        except Exception:  # already closed / killed on purpose
            pass


class RawClient:
    """Speaks the protocol directly (kafka-python's encoder/decoder, our socket) to check error codes."""

    def __init__(self, broker, client_id="raw-client"):
        self.sock = socket.create_connection((broker.host, broker.port), timeout=WAIT)
        self.proto = KafkaProtocol(client_id=client_id)

    def send(self, request):
        self.proto.send_request(request)
        self.sock.sendall(self.proto.send_bytes())
        while True:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("broker closed the connection")
            responses = self.proto.receive_bytes(data)
            if responses:
                return responses[0][1]

    def close(self):
        self.sock.close()


@pytest.fixture
def raw(broker):
    conns = []

    def connect(client_id="raw-client"):
        c = RawClient(broker, client_id)
        conns.append(c)
        return c

    yield connect
    for c in conns:
        c.close()


# ------------------------------------------------------------------- helpers
def expected_partition(key, num_partitions):
    return (murmur2(key) & 0x7FFFFFFF) % num_partitions


def produce_keyed(producer, topic, n, start=0, keys=16):
    futures = [producer.send(topic, key=b"key-%d" % (i % keys), value=b"value-%d" % i)
               for i in range(start, start + n)]
    producer.flush(timeout=WAIT)
    return [f.get(timeout=WAIT) for f in futures]


def poll_until(consumers, done, sink=None, timeout=WAIT, what="condition"):
    """Poll every consumer in turn until ``done()``; records go to ``sink[consumer]``.

    A poll of 50 ms often ends mid-join on a loaded machine.  When that join was
    started by the leader seeing the topic's partitions after its first (empty)
    assignment, kafka-python 3.0.12 never applies it: the consumer owns nothing,
    for good (``ingest/kafka_join_guard.py``).  So, as ``KafkaSource`` does, ask
    for that join again.  (Not by polling one consumer until its join lands, as
    ``KafkaSource`` also does: the broker holds that join until the group's other
    consumers rejoin, and they rejoin only when polled.)
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for c in consumers:
            for recs in c.poll(timeout_ms=50).values():
                if sink is not None:
                    sink[c].extend(recs)
            rejoin_if_join_dropped(c)
        if done():
            return
    raise AssertionError(f"timed out waiting for {what}")


def as_tuples(records):
    return [(r.partition, r.offset, r.key, r.value) for r in records]


def single_batch(key, value, compression=0):
    builder = MemoryRecordsBuilder(magic=2, compression_type=compression, batch_size=1 << 20)
    builder.append(timestamp=int(time.time() * 1000), key=key, value=value)
    builder.close()
    return bytes(builder.buffer())


class RecordingListener(ConsumerRebalanceListener):
    def __init__(self):
        self.assigned = []
        self.revoked = []

    def on_partitions_revoked(self, revoked):
        self.revoked.append(set(revoked))

    def on_partitions_assigned(self, assigned):
        self.assigned.append(set(assigned))


# ---------------------------------------------------------------- protocol
def test_api_versions_negotiation(broker, raw, clients):
    conn = raw()
    # kafka-python opens with its newest ApiVersions (v4); the broker only speaks up to v2 and,
    # like Kafka, answers with a v0 UNSUPPORTED_VERSION body listing its ranges.
    resp = conn.send(ApiVersionsRequest(version=ApiVersionsRequest.max_version,
                                        client_software_name="raw", client_software_version="1"))
    assert resp.error_code == 35
    advertised = {k.api_key: (k.min_version, k.max_version) for k in resp.api_keys}
    assert advertised[18] == (0, 2)
    ok = conn.send(ApiVersionsRequest(version=2))
    assert ok.error_code == 0
    assert {k.api_key: (k.min_version, k.max_version) for k in ok.api_keys} == advertised
    assert set(FakeKafkaBroker.supported_api_versions()) >= {
        "Produce", "Fetch", "ListOffsets", "Metadata", "OffsetCommit", "OffsetFetch", "FindCoordinator",
        "JoinGroup", "Heartbeat", "LeaveGroup", "SyncGroup", "ApiVersions", "InitProducerId"}

    # The real client negotiates down to these ranges and identifies a 2.2-era broker.
    consumer = clients.consumer(broker)
    assert consumer.config["api_version"] == (2, 2)


def test_unsupported_request_version_closes_connection(broker, raw):
    conn = raw()
    with pytest.raises((ConnectionError, OSError)):
        conn.send(MetadataRequest(version=12, topics=None, allow_auto_topic_creation=False))


def test_metadata_auto_create_and_unknown_topic(broker, raw):
    conn = raw()
    resp = conn.send(MetadataRequest(version=7, topics=[MetadataRequest.MetadataRequestTopic(name="fresh")],
                                     allow_auto_topic_creation=True))
    assert resp.topics[0].error_code == 5  # LEADER_NOT_AVAILABLE while the topic is being created
    assert broker.topics() == {"fresh": 3}
    resp = conn.send(MetadataRequest(version=7, topics=[MetadataRequest.MetadataRequestTopic(name="fresh")],
                                     allow_auto_topic_creation=True))
    topic = resp.topics[0]
    assert topic.error_code == 0
    assert sorted(p.partition_index for p in topic.partitions) == [0, 1, 2]
    assert {p.leader_id for p in topic.partitions} == {broker.node_id}
    assert resp.controller_id == broker.node_id

    resp = conn.send(MetadataRequest(version=7, topics=[MetadataRequest.MetadataRequestTopic(name="nope")],
                                     allow_auto_topic_creation=False))
    assert resp.topics[0].error_code == 3  # UNKNOWN_TOPIC_OR_PARTITION
    resp = conn.send(MetadataRequest(version=7, topics=[MetadataRequest.MetadataRequestTopic(name="bad/name")],
                                     allow_auto_topic_creation=True))
    assert resp.topics[0].error_code == 17  # INVALID_TOPIC_EXCEPTION
    assert "nope" not in broker.topics() and "bad/name" not in broker.topics()


def test_produce_and_fetch_error_codes(broker, raw):
    broker.create_topic("t", partitions=1)
    conn = raw()
    Topic = ProduceRequest.TopicProduceData
    Part = Topic.PartitionProduceData

    def produce(records, acks=1, topic="t", partition=0):
        return conn.send(ProduceRequest(version=7, transactional_id=None, acks=acks, timeout_ms=1000,
                                        topic_data=[Topic(name=topic, partition_data=[
                                            Part(index=partition, records=records)])]))

    resp = produce(single_batch(b"k", b"v"))
    part = resp.responses[0].partition_responses[0]
    assert (part.error_code, part.base_offset) == (0, 0)
    big = b"v2" * 200  # compressible, so the builder really gzips it
    part = produce(single_batch(b"k", big, compression=1)).responses[0].partition_responses[0]
    assert (part.error_code, part.base_offset) == (0, 1)
    assert produce(single_batch(b"k", b"v"), acks=2).responses[0].partition_responses[0].error_code == 21
    assert produce(single_batch(b"k", b"v"), partition=7).responses[0].partition_responses[0].error_code == 3
    corrupt = bytearray(single_batch(b"k", b"v"))
    corrupt[-1] ^= 0xFF
    assert produce(bytes(corrupt)).responses[0].partition_responses[0].error_code == 2  # CORRUPT_MESSAGE
    two_batches = single_batch(b"a", b"1") + single_batch(b"b", b"2")
    assert produce(two_batches).responses[0].partition_responses[0].error_code == 87  # INVALID_RECORD
    assert broker.messages("t") == [(0, 0, b"k", b"v"), (0, 1, b"k", big)]

    FTopic = FetchRequest.FetchTopic
    FPart = FTopic.FetchPartition

    def fetch(offset, max_wait_ms=0, topic="t"):
        return conn.send(FetchRequest(
            version=10, replica_id=-1, max_wait_ms=max_wait_ms, min_bytes=1, max_bytes=1 << 20,
            isolation_level=0, session_id=0, session_epoch=-1,
            topics=[FTopic(topic=topic, partitions=[FPart(partition=0, current_leader_epoch=-1,
                                                          fetch_offset=offset, log_start_offset=-1,
                                                          partition_max_bytes=1 << 20)])],
            forgotten_topics_data=[], rack_id="")).responses[0].partitions[0]

    data = fetch(1)
    assert data.error_code == 0 and data.high_watermark == 2
    batches = list(MemoryRecords(data.records))
    assert [b.compression_type for b in batches] == [1]   # stored as produced (gzip)
    assert [(r.offset, r.value) for b in batches for r in b] == [(1, big)]
    assert fetch(5).error_code == 1      # OFFSET_OUT_OF_RANGE
    at_end = fetch(2, max_wait_ms=100)   # long-poll at the log end expires empty, without error
    assert at_end.error_code == 0 and at_end.records in (b"", None)

    # max_bytes: whole batches only, but the first batch is returned even if it alone is too big.
    resp = conn.send(FetchRequest(
        version=10, replica_id=-1, max_wait_ms=0, min_bytes=1, max_bytes=10,
        isolation_level=0, session_id=0, session_epoch=-1,
        topics=[FTopic(topic="t", partitions=[FPart(partition=0, current_leader_epoch=-1, fetch_offset=0,
                                                    log_start_offset=-1, partition_max_bytes=1 << 20)])],
        forgotten_topics_data=[], rack_id=""))
    limited = resp.responses[0].partitions[0]
    assert [r.offset for b in MemoryRecords(limited.records) for r in b] == [0]
    assert fetch(0, topic="missing").error_code == 3

    # Fetch sessions are not kept: an incremental request is refused properly.
    resp = conn.send(FetchRequest(version=10, replica_id=-1, max_wait_ms=0, min_bytes=1, max_bytes=1 << 20,
                                  isolation_level=0, session_id=1234, session_epoch=1, topics=[],
                                  forgotten_topics_data=[], rack_id=""))
    assert resp.error_code == 70  # FETCH_SESSION_ID_NOT_FOUND


@pytest.mark.parametrize("acks", [0, 1, "all"])
def test_producer_acks_modes(broker, clients, acks):
    broker.create_topic("acks", partitions=2)
    producer = clients.producer(broker, acks=acks)
    futures = [producer.send("acks", key=b"k%d" % i, value=b"v%d" % i) for i in range(20)]
    producer.flush(timeout=WAIT)
    metas = [f.get(timeout=WAIT) for f in futures]
    if acks == 0:
        # Nothing comes back for acks=0; the records still arrive (bounded wait).
        deadline = time.monotonic() + WAIT
        while len(broker.messages("acks")) < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
    else:
        assert sorted((m.partition, m.offset) for m in metas) == \
            [(p, o) for p, o, _, _ in broker.messages("acks")]
    assert sorted(v for _, _, _, v in broker.messages("acks")) == sorted(b"v%d" % i for i in range(20))


def test_fetch_long_poll_is_woken_by_produce(broker, raw, clients):
    broker.create_topic("lp", partitions=1)
    conn = raw()
    FTopic = FetchRequest.FetchTopic
    result = {}

    def long_poll():
        result["resp"] = conn.send(FetchRequest(
            version=10, replica_id=-1, max_wait_ms=20000, min_bytes=1, max_bytes=1 << 20,
            isolation_level=0, session_id=0, session_epoch=-1,
            topics=[FTopic(topic="lp", partitions=[FTopic.FetchPartition(
                partition=0, current_leader_epoch=-1, fetch_offset=0, log_start_offset=-1,
                partition_max_bytes=1 << 20)])],
            forgotten_topics_data=[], rack_id=""))

    t = threading.Thread(target=long_poll, daemon=True)
    t.start()
    producer = clients.producer(broker)
    producer.send("lp", key=b"k", value=b"wake up").get(timeout=WAIT)
    t.join(WAIT)
    assert not t.is_alive()
    part = result["resp"].responses[0].partitions[0]
    assert [r.value for b in MemoryRecords(part.records) for r in b] == [b"wake up"]


def test_group_protocol_errors(broker, raw):
    broker.create_topic("g-topic", partitions=2)
    conn = raw("raw-member")
    Proto = JoinGroupRequest.JoinGroupRequestProtocol

    def join(member_id="", version=4, protocol_type="consumer", session_timeout_ms=1000):
        return conn.send(JoinGroupRequest(version=version, group_id="g", session_timeout_ms=session_timeout_ms,
                                          rebalance_timeout_ms=2000, member_id=member_id,
                                          protocol_type=protocol_type,
                                          protocols=[Proto(name="range", metadata=b"meta")]))

    first = join()
    assert first.error_code == 79 and first.member_id  # MEMBER_ID_REQUIRED hands out an id
    assert join(session_timeout_ms=10).error_code == 26  # INVALID_SESSION_TIMEOUT
    assert join(member_id="stranger").error_code == 25   # UNKNOWN_MEMBER_ID
    joined = join(member_id=first.member_id)
    assert joined.error_code == 0
    assert joined.leader == joined.member_id == first.member_id
    assert joined.generation_id == 1
    assert [m.member_id for m in joined.members] == [first.member_id]
    assert broker.group_state("g") == "CompletingRebalance"
    assert join(version=4, member_id="", protocol_type="other").error_code == 23  # INCONSISTENT_GROUP_PROTOCOL

    mid, gen = joined.member_id, joined.generation_id

    def sync(generation, member):
        return conn.send(SyncGroupRequest(version=2, group_id="g", generation_id=generation, member_id=member,
                                          assignments=[SyncGroupRequest.SyncGroupRequestAssignment(
                                              member_id=mid, assignment=b"assignment")]))

    def heartbeat(generation, member):
        return conn.send(HeartbeatRequest(version=2, group_id="g", generation_id=generation,
                                          member_id=member)).error_code

    assert sync(gen + 1, mid).error_code == 22   # ILLEGAL_GENERATION
    assert sync(gen, "stranger").error_code == 25
    synced = sync(gen, mid)
    assert (synced.error_code, synced.assignment) == (0, b"assignment")
    assert broker.group_state("g") == "Stable"
    assert heartbeat(gen, mid) == 0
    assert heartbeat(gen - 1, mid) == 22
    assert heartbeat(gen, "stranger") == 25

    CTopic = OffsetCommitRequest.OffsetCommitRequestTopic
    CPart = CTopic.OffsetCommitRequestPartition

    def commit(generation, member, partition=0, offset=5):
        resp = conn.send(OffsetCommitRequest(version=6, group_id="g", generation_id_or_member_epoch=generation,
                                             member_id=member, topics=[CTopic(name="g-topic", partitions=[
                                                 CPart(partition_index=partition, committed_offset=offset,
                                                       committed_leader_epoch=-1, committed_metadata="m")])]))
        return resp.topics[0].partitions[0].error_code

    assert commit(gen + 1, mid) == 22
    assert commit(gen, "stranger") == 25
    assert commit(-1, "") == 25                # standalone commits are refused while the group has members
    assert commit(gen, mid, partition=9) == 3  # UNKNOWN_TOPIC_OR_PARTITION
    assert commit(gen, mid) == 0
    assert broker.committed("g", "g-topic") == {0: 5}
    fetched = conn.send(OffsetFetchRequest(version=5, group_id="g", topics=[
        OffsetFetchRequest.OffsetFetchRequestTopic(name="g-topic", partition_indexes=[0, 1])]))
    got = {p.partition_index: (p.committed_offset, p.metadata) for p in fetched.topics[0].partitions}
    assert got == {0: (5, "m"), 1: (-1, "")}

    # Not heartbeating -> evicted after the session timeout; the group empties.
    deadline = time.monotonic() + WAIT
    while broker.group_members("g") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert broker.group_members("g") == []
    assert broker.group_state("g") == "Empty"
    assert heartbeat(gen, mid) == 25
    assert commit(-1, "", offset=7) == 0       # an empty group accepts standalone commits
    assert broker.committed("g", "g-topic") == {0: 7}


def test_join_waits_for_all_members_during_rebalance(broker, raw):
    """A rebalance completes only when every known member has rejoined (or timed out)."""
    Proto = JoinGroupRequest.JoinGroupRequestProtocol
    a, b = raw("member-a"), raw("member-b")

    def join(conn, member_id, version=3):
        return conn.send(JoinGroupRequest(version=version, group_id="wait", session_timeout_ms=10000,
                                          rebalance_timeout_ms=20000, member_id=member_id,
                                          protocol_type="consumer",
                                          protocols=[Proto(name="range", metadata=b"m")]))

    first = join(a, "")  # v3: no MEMBER_ID_REQUIRED round trip
    assert first.error_code == 0 and first.generation_id == 1
    a.send(SyncGroupRequest(version=2, group_id="wait", generation_id=1, member_id=first.member_id,
                            assignments=[]))
    results = {}
    tb = threading.Thread(target=lambda: results.setdefault("b", join(b, "")), daemon=True)
    tb.start()
    deadline = time.monotonic() + WAIT
    while broker.group_state("wait") != "PreparingRebalance" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert broker.group_state("wait") == "PreparingRebalance"
    assert "b" not in results  # B is parked until A rejoins
    hb = a.send(HeartbeatRequest(version=2, group_id="wait", generation_id=1, member_id=first.member_id))
    assert hb.error_code == 27  # REBALANCE_IN_PROGRESS tells A to rejoin
    rejoined = join(a, first.member_id)
    tb.join(WAIT)
    assert not tb.is_alive()
    assert rejoined.error_code == results["b"].error_code == 0
    assert rejoined.generation_id == results["b"].generation_id == 2
    assert rejoined.leader == first.member_id  # the existing leader stays leader
    assert len(rejoined.members) == 2 and results["b"].members == []


def test_member_that_does_not_rejoin_is_dropped_at_rebalance_timeout(broker, raw):
    Proto = JoinGroupRequest.JoinGroupRequestProtocol
    a, b = raw("member-a"), raw("member-b")

    def join(conn, member_id):
        return conn.send(JoinGroupRequest(version=3, group_id="slow", session_timeout_ms=20000,
                                          rebalance_timeout_ms=300, member_id=member_id,
                                          protocol_type="consumer",
                                          protocols=[Proto(name="range", metadata=b"m")]))

    first = join(a, "")
    a.send(SyncGroupRequest(version=2, group_id="slow", generation_id=1, member_id=first.member_id,
                            assignments=[]))
    second = join(b, "")  # A never rejoins: B's join completes when the rebalance timeout fires
    assert second.error_code == 0 and second.generation_id == 2
    assert second.leader == second.member_id and [m.member_id for m in second.members] == [second.member_id]
    assert broker.group_members("slow") == [second.member_id]
    hb = a.send(HeartbeatRequest(version=2, group_id="slow", generation_id=1, member_id=first.member_id))
    assert hb.error_code == 25  # UNKNOWN_MEMBER_ID: A was removed from the group


# ------------------------------------------------------- kafka-python client
def test_keyed_messages_roundtrip_through_a_group(broker, clients):
    broker.create_topic("access-events", partitions=4)
    producer = clients.producer(broker)
    metas = produce_keyed(producer, "access-events", 200, keys=20)
    stored = broker.messages("access-events")
    assert len(stored) == 200
    partitions_by_key = defaultdict(set)
    for partition, _, key, _ in stored:
        partitions_by_key[key].add(partition)
    assert all(len(p) == 1 for p in partitions_by_key.values())  # same key -> same partition
    assert all(p == {expected_partition(k, 4)} for k, p in partitions_by_key.items())
    assert sorted((m.partition, m.offset) for m in metas) == [(p, o) for p, o, _, _ in stored]
    for p in range(4):  # offsets are dense per partition
        offs = [o for part, o, _, _ in stored if part == p]
        assert offs == list(range(len(offs)))

    consumer = clients.consumer(broker, "access-events", group_id="readers")
    sink = defaultdict(list)
    poll_until([consumer], lambda: len(sink[consumer]) >= 200, sink, what="200 records")
    got = as_tuples(sink[consumer])
    assert sorted(got) == stored
    assert len(got) == len(set(got))
    consumer.commit()
    assert broker.committed("readers", "access-events") == broker.end_offsets("access-events")
    assert consumer.committed(TopicPartition("access-events", 0)) == broker.end_offsets("access-events")[0]


def test_commit_explicit_offsets_and_resume_with_new_consumer(broker, clients):
    broker.create_topic("resume", partitions=3)
    producer = clients.producer(broker)
    produce_keyed(producer, "resume", 90, keys=9)
    listener = RecordingListener()
    first = clients.consumer(broker, group_id="resumers")
    first.subscribe(["resume"], listener=listener)
    sink = defaultdict(list)
    poll_until([first], lambda: len(sink[first]) >= 90, sink, what="first pass")
    assert listener.assigned[-1] == {TopicPartition("resume", p) for p in range(3)}

    # Commit explicit offsets: halfway through every partition.
    ends = broker.end_offsets("resume")
    halfway = {p: ends[p] // 2 for p in ends}
    first.commit({TopicPartition("resume", p): OffsetAndMetadata(o, "half", -1) for p, o in halfway.items()})
    assert broker.committed("resumers", "resume") == halfway
    first.close(autocommit=False)  # leaves the group

    produce_keyed(producer, "resume", 30, start=90, keys=9)
    second = clients.consumer(broker, "resume", group_id="resumers")
    expected = sorted(t for t in broker.messages("resume") if t[1] >= halfway[t[0]])
    sink2 = defaultdict(list)
    poll_until([second], lambda: len(sink2[second]) >= len(expected), sink2, what="resumed records")
    # Drain a little more to prove nothing beyond the expected set shows up.
    for _ in range(5):
        for recs in second.poll(timeout_ms=50).values():
            sink2[second].extend(recs)
    assert sorted(as_tuples(sink2[second])) == expected  # nothing re-read, nothing missed
    second.commit()
    assert broker.committed("resumers", "resume") == broker.end_offsets("resume")


def test_two_consumers_split_partitions(broker, clients):
    broker.create_topic("split", partitions=4)
    l1, l2 = RecordingListener(), RecordingListener()
    c1 = clients.consumer(broker, group_id="splitters", client_id="c1")
    c1.subscribe(["split"], listener=l1)
    c2 = clients.consumer(broker, group_id="splitters", client_id="c2")
    c2.subscribe(["split"], listener=l2)
    all_tps = {TopicPartition("split", p) for p in range(4)}

    def balanced():
        a1, a2 = c1.assignment(), c2.assignment()
        return a1 and a2 and a1 | a2 == all_tps and not a1 & a2 and len(broker.group_members("splitters")) == 2 \
            and broker.group_state("splitters") == "Stable"

    poll_until([c1, c2], balanced, what="a balanced group")
    a1, a2 = c1.assignment(), c2.assignment()
    assert a1 | a2 == all_tps and not a1 & a2
    assert l1.assigned[-1] == a1 and l2.assigned[-1] == a2

    producer = clients.producer(broker)
    produce_keyed(producer, "split", 120, keys=24)
    sink = defaultdict(list)
    poll_until([c1, c2], lambda: len(sink[c1]) + len(sink[c2]) >= 120, sink, what="all records")
    assert {TopicPartition("split", r.partition) for r in sink[c1]} <= a1
    assert {TopicPartition("split", r.partition) for r in sink[c2]} <= a2
    assert sorted(as_tuples(sink[c1] + sink[c2])) == broker.messages("split")

    c2.close(autocommit=False)  # LeaveGroup: c1 takes over without waiting for a session timeout
    poll_until([c1], lambda: c1.assignment() == all_tps, what="c1 owning every partition")
    assert l1.revoked and l1.assigned[-1] == all_tps


def test_killed_consumer_is_evicted_and_its_partitions_resume_from_commits(broker, clients):
    broker.create_topic("crash", partitions=4)
    producer = clients.producer(broker)
    produce_keyed(producer, "crash", 80, keys=16)
    survivor = clients.consumer(broker, "crash", group_id="crashers", client_id="survivor")
    victim = clients.consumer(broker, "crash", group_id="crashers", client_id="victim")
    all_tps = {TopicPartition("crash", p) for p in range(4)}
    poll_until([survivor, victim],
               lambda: survivor.assignment() and victim.assignment()
               and survivor.assignment() | victim.assignment() == all_tps
               and broker.group_state("crashers") == "Stable",
               what="both consumers assigned")
    victim_tps = set(victim.assignment())

    # The victim consumes and commits its partitions only halfway, then dies without LeaveGroup.
    ends = broker.end_offsets("crash")
    for tp in victim_tps:
        victim.seek(tp, ends[tp.partition] // 2)
    victim.commit({tp: OffsetAndMetadata(ends[tp.partition] // 2, "", -1) for tp in victim_tps})
    members_before = broker.group_members("crashers")
    victim._client.close()  # simulated crash: sockets gone, no LeaveGroup, no more heartbeats

    sink = defaultdict(list)
    poll_until([survivor], lambda: survivor.assignment() == all_tps, sink, what="takeover after eviction")
    assert len(members_before) == 2 and len(broker.group_members("crashers")) == 1
    expected_from_victim = sorted(t for t in broker.messages("crash")
                                  if TopicPartition("crash", t[0]) in victim_tps and t[1] >= ends[t[0]] // 2)
    poll_until([survivor],
               lambda: {t for t in as_tuples(sink[survivor])} >= set(expected_from_victim),
               sink, what="victim partitions consumed")
    from_victim = sorted(t for t in as_tuples(sink[survivor]) if TopicPartition("crash", t[0]) in victim_tps)
    assert from_victim == expected_from_victim  # resumed exactly at the victim's commits


def test_gzip_compressed_producer(broker, clients):
    broker.create_topic("zipped", partitions=2)
    producer = clients.producer(broker, compression_type="gzip", linger_ms=50)
    payload = b"x" * 200
    for i in range(50):
        producer.send("zipped", key=b"k%d" % (i % 5), value=payload + b"%d" % i)
    producer.flush(timeout=WAIT)
    codecs = {MemoryRecords(b.data).next_batch().compression_type
              for parts in broker.store.topics["zipped"] for b in parts.batches}
    assert codecs == {1}  # batches kept gzip-compressed, as produced
    consumer = clients.consumer(broker, "zipped", group_id="unzippers")
    sink = defaultdict(list)
    poll_until([consumer], lambda: len(sink[consumer]) >= 50, sink, what="gzip records")
    assert sorted(as_tuples(sink[consumer])) == broker.messages("zipped")
    assert {r.value for r in sink[consumer]} == {payload + b"%d" % i for i in range(50)}


def test_seek_position_and_offset_lookups(broker, clients):
    broker.create_topic("seeky", partitions=2)
    producer = clients.producer(broker)
    for i in range(10):
        producer.send("seeky", key=None, value=b"v%d" % i, partition=0, timestamp_ms=1_000_000 + i * 1000)
    producer.flush(timeout=WAIT)
    tp0, tp1 = TopicPartition("seeky", 0), TopicPartition("seeky", 1)
    consumer = clients.consumer(broker, group_id=None)
    consumer.assign([tp0, tp1])
    assert consumer.end_offsets([tp0, tp1]) == {tp0: 10, tp1: 0}
    assert consumer.beginning_offsets([tp0, tp1]) == {tp0: 0, tp1: 0}
    at = consumer.offsets_for_times({tp0: 1_004_500, tp1: 0})
    assert at[tp0].offset == 5 and at[tp0].timestamp == 1_005_000 and at[tp1] is None

    consumer.seek(tp0, 7)
    assert consumer.position(tp0) == 7
    sink = defaultdict(list)
    poll_until([consumer], lambda: len(sink[consumer]) >= 3, sink, what="records after seek")
    assert [r.value for r in sink[consumer]] == [b"v7", b"v8", b"v9"]
    assert consumer.position(tp0) == 10
    consumer.seek_to_beginning(tp0)
    assert consumer.position(tp0) == 0
    consumer.seek_to_end(tp0)
    assert consumer.position(tp0) == 10


def test_out_of_range_position_is_reset(broker, clients):
    broker.create_topic("oor", partitions=1)
    producer = clients.producer(broker)
    produce_keyed(producer, "oor", 5, keys=1)
    tp = TopicPartition("oor", 0)
    consumer = clients.consumer(broker, group_id=None, auto_offset_reset="earliest")
    consumer.assign([tp])
    consumer.seek(tp, 50)  # beyond the log end: the broker answers OFFSET_OUT_OF_RANGE
    sink = defaultdict(list)
    poll_until([consumer], lambda: len(sink[consumer]) >= 5, sink, what="reset to earliest")
    assert [r.offset for r in sink[consumer]] == [0, 1, 2, 3, 4]


def test_unknown_topic_handling(clients):
    with FakeKafkaBroker(auto_create_topics=False) as broker:
        producer = clients.producer(broker, max_block_ms=500)
        with pytest.raises(KafkaTimeoutError):
            producer.send("does-not-exist", value=b"x").get(timeout=WAIT)
        assert broker.topics() == {}
        consumer = clients.consumer(broker, group_id=None)
        assert not consumer.partitions_for_topic("does-not-exist")  # empty: no such topic
        assert "does-not-exist" not in consumer.topics()

    with FakeKafkaBroker(auto_create_topics=True, default_partitions=2) as broker:
        producer = clients.producer(broker)
        meta = producer.send("auto-made", key=b"k", value=b"v").get(timeout=WAIT)
        assert broker.topics() == {"auto-made": 2}
        assert broker.messages("auto-made") == [(meta.partition, 0, b"k", b"v")]


def test_admin_client_topics_and_group_offsets(broker, clients):
    admin = clients.admin(broker)
    admin.create_topics([NewTopic("admin-made", num_partitions=5, replication_factor=1)])
    assert broker.topics()["admin-made"] == 5
    with pytest.raises(TopicAlreadyExistsError):
        admin.create_topics([NewTopic("admin-made", num_partitions=1, replication_factor=1)])
    with pytest.raises(InvalidReplicationFactorError):
        admin.create_topics([NewTopic("replicated", num_partitions=1, replication_factor=3)])
    assert "replicated" not in broker.topics()

    producer = clients.producer(broker)
    produce_keyed(producer, "admin-made", 25, keys=5)
    consumer = clients.consumer(broker, "admin-made", group_id="admins")
    sink = defaultdict(list)
    poll_until([consumer], lambda: len(sink[consumer]) >= 25, sink, what="admin records")
    consumer.commit()
    offsets = admin.list_group_offsets("admins")["admins"]
    assert {tp.partition: om.offset for tp, om in offsets.items()} == broker.end_offsets("admin-made")
    assert {"group_id": "admins", "protocol_type": "consumer"}.items() <= admin.list_groups()[0].items()
    described = admin.describe_groups(["admins"])
    assert described["admins"]["group_state"] == "Stable"
    assert len(described["admins"]["members"]) == 1


def test_drop_connections_and_pause_resume(broker, clients):
    broker.create_topic("faults", partitions=1)
    producer = clients.producer(broker)
    producer.send("faults", value=b"before").get(timeout=WAIT)
    assert broker.drop_connections() >= 1
    producer.send("faults", value=b"after-drop").get(timeout=WAIT)  # the client reconnects

    broker.pause()
    future = producer.send("faults", value=b"during-pause")
    with pytest.raises(KafkaTimeoutError):
        future.get(timeout=1.0)  # a paused broker never answers
    broker.resume()
    future.get(timeout=WAIT)
    values = [v for _, _, _, v in broker.messages("faults")]
    assert values == [b"before", b"after-drop", b"during-pause"]  # idempotent producer: no duplicates

    consumer = clients.consumer(broker, "faults", group_id="faulty")
    sink = defaultdict(list)
    poll_until([consumer], lambda: len(sink[consumer]) >= 3, sink, what="records before drop")
    broker.drop_connections()
    producer.send("faults", value=b"after-consumer-drop").get(timeout=WAIT)
    poll_until([consumer], lambda: len(sink[consumer]) >= 4, sink, what="records after drop")
    assert [r.value for r in sink[consumer]] == [*values, b"after-consumer-drop"]


def test_refuse_offset_fetch_withholds_committed_offsets_until_answered_again(broker, clients):
    broker.create_topic("loading", partitions=1)
    tp = TopicPartition("loading", 0)
    first = clients.consumer(broker, group_id="loaders")
    first.assign([tp])
    first.commit({tp: OffsetAndMetadata(3, "", -1)})
    assert broker.committed("loaders", "loading") == {0: 3}

    broker.refuse_offset_fetch(CoordinatorLoadInProgressError)  # retriable: the client asks again and again
    second = clients.consumer(broker, group_id="loaders")
    second.assign([tp])
    assert second.position(tp, timeout_ms=500) is None  # not told: no position, none reset to either end
    with pytest.raises(KafkaTimeoutError):
        second.committed(tp, timeout_ms=500)
    first.commit({tp: OffsetAndMetadata(4, "", -1)})  # everything else is answered
    assert broker.committed("loaders", "loading") == {0: 4}

    broker.refuse_offset_fetch(None)
    assert second.position(tp, timeout_ms=int(WAIT * 1000)) == 4
