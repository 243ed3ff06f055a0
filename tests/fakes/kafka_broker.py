"""Fake single-node Kafka broker for tests; the implementation lives in ``tests.fakes.kafka``.

Usage::

    from tests.fakes.kafka_broker import FakeKafkaBroker

    with FakeKafkaBroker(default_partitions=3) as broker:   # starts on a free loopback port
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
        ...
        broker.messages("access-events")        # [(partition, offset, key, value)]
        broker.committed("group", "access-events")  # {partition: offset}
"""

from tests.fakes.kafka import API_VERSIONS, FakeKafkaBroker

__all__ = ["FakeKafkaBroker", "API_VERSIONS"]
