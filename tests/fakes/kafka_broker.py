"""Fake single-node Kafka broker for tests (implementation: the ``tests.fakes.kafka`` package).

It speaks the real Kafka wire protocol on a loopback port, so the unmodified
kafka-python ``KafkaProducer`` / ``KafkaConsumer`` / ``KafkaAdminClient`` talk to
it over real sockets::

    from tests.fakes.kafka_broker import FakeKafkaBroker, FAST_CONSUMER_CONFIG

    with FakeKafkaBroker(host="127.0.0.1", port=0, auto_create_topics=True,
                         default_partitions=3) as broker:       # start() / stop()
        broker.create_topic("access-events", partitions=4)
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
        consumer = KafkaConsumer("access-events", bootstrap_servers=broker.bootstrap,
                                 group_id="g", enable_auto_commit=False,
                                 auto_offset_reset="earliest", **FAST_CONSUMER_CONFIG)
        ...
        broker.messages("access-events")     # [(partition, offset, key, value)]
        broker.committed("g", "access-events")   # {partition: committed offset}

Inspection: ``topics()``, ``messages()``, ``records()`` (with timestamps/headers),
``end_offsets()``, ``committed()``, ``group_state()``, ``group_members()``,
``group_generation()``, ``supported_api_versions()``, ``internal_errors``.

Fault hooks: ``drop_connections(client_id=None)`` closes client sockets now (the
client reconnects); ``pause()`` / ``resume()`` hold every request unanswered
(an outage) and answer them afterwards.  To simulate a *crashed* consumer (no
LeaveGroup, no more heartbeats) call ``consumer._client.close()``: the broker
evicts it after its ``session_timeout_ms`` and rebalances its partitions.
``hold_joins(seconds)`` answers every JoinGroup no sooner than that (a broker
waiting for a slow member), longer than a consumer's poll timeout.
``refuse_produce(topic, error)`` answers every Produce to a topic with an error
(``None`` accepts again); ``refuse_offset_fetch(error)`` every OffsetFetch (a
coordinator still loading the group's offsets).

The broker advertises Kafka-2.2-era API versions (see ``API_VERSIONS``);
kafka-python negotiates down to them and reports ``api_version == (2, 2)``.
Transactions and fetch sessions are not offered (fetches are sessionless).
"""

from tests.fakes.kafka import API_VERSIONS, FAST_CONSUMER_CONFIG, FakeKafkaBroker

__all__ = ["API_VERSIONS", "FAST_CONSUMER_CONFIG", "FakeKafkaBroker"]
