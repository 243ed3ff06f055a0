"""A protocol-level fake Kafka broker for tests (see :class:`FakeKafkaBroker`)."""

from .broker import FAST_CONSUMER_CONFIG, FakeKafkaBroker
from .handlers import API_VERSIONS

__all__ = ["API_VERSIONS", "FAST_CONSUMER_CONFIG", "FakeKafkaBroker"]
