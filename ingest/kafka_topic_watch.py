"""Topics Kafka does not have, told to the operator once, with a reminder now and then.

kafka-python refreshes its metadata every ``retry_backoff_ms`` (0.1 s) while a
topic it tracks is not there, and logs an error each time: ten lines a
second for a topic not created yet.  A ``TopicWatch`` drops those lines and
says it instead: once when a topic is found missing, a reminder every
``REMIND_EVERY`` saying for how long, and once when it appears.  It reads a
client's metadata through the listener kafka-python calls after each
metadata answer (on the client's IO thread); ``check`` logs, on the caller's.

Found missing: no partitions known after an answer that reported topic
errors (an answer that asked about no topic, before they were tracked,
says nothing).  A topic Kafka is creating (auto-create) may so be missing
for a moment.  The clients' metadata are private attributes of kafka-python
(3.0.12: the consumer's ``_cluster``, the producer's ``_metadata``); where
they are absent nothing is watched, and every topic counts as there.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

REMIND_EVERY = 60.0  # seconds between reminders that a topic is still missing
_NOT_FOUND = "Topic %s not found in cluster metadata"  # kafka.cluster's line, every refresh


class TopicWatch:
    """Whether ``topics`` exist, from a client's metadata; ``check`` says what changed."""

    def __init__(
        self,
        topics: Iterable[str],
        logger: logging.Logger,
        describe: Callable[[str], str],
        level: int = logging.WARNING,
    ) -> None:
        self.topics = tuple(topics)
        self.logger = logger
        self.describe = describe  # "topic 'x'": how a topic is named in the lines
        self.level = level  # of the line that finds one missing and of its reminders
        # (known, missing): replaced whole on the IO thread, read on the caller's; no topic is known at once
        self._state: tuple[bool, frozenset[str]] = (not self.topics, frozenset())
        self._answered = threading.Event()
        self._since: dict[str, float] = {}  # missing topics: when found missing
        self._reminded: dict[str, float] = {}
        self._cluster: Any = None
        self._quiet = _Quiet(self.topics)

    def attach(self, cluster: Any) -> None:
        """Watch the metadata of a client (``cluster_of``); None: nothing to watch, every topic counts as there."""
        if cluster is None or not hasattr(cluster, "add_listener"):
            self._state = (True, frozenset())
            self._answered.set()
            return
        self._cluster = cluster
        logging.getLogger("kafka.cluster").addFilter(self._quiet)
        cluster.add_listener(self._updated)

    def detach(self) -> None:
        if self._cluster is not None:
            self._cluster.remove_listener(self._updated)
            self._cluster = None
        logging.getLogger("kafka.cluster").removeFilter(self._quiet)

    def _updated(self, cluster: Any) -> None:  # kafka-python calls it after each metadata answer
        missing = frozenset(topic for topic in self.topics if cluster.partitions_for_topic(topic) is None)
        if missing and not cluster.need_update:
            return  # an answer without topic errors: these were not asked about
        self._state = (True, missing)
        self._answered.set()

    def wait_known(self, timeout: float) -> bool:
        """Wait (at most ``timeout`` seconds) for a metadata answer that tells of every topic."""
        return self._answered.wait(timeout) if self.topics else True

    @property
    def known(self) -> bool:
        """Whether a metadata answer has told of every topic."""
        return self._state[0]

    @property
    def missing(self) -> frozenset[str]:
        return self._state[1]

    def check(self, now: float, detail: Callable[[], str] = lambda: "") -> bool:
        """Log what changed since the last check (``now`` on any monotonic clock); True when every topic is there.

        ``detail``: what a missing topic holds up, added to its lines.
        """
        known, missing = self._state
        for topic in sorted(missing - self._since.keys()):
            self._since[topic] = self._reminded[topic] = now
            self.logger.log(self.level, "kafka: %s not found in Kafka%s", self.describe(topic), detail())
        for topic in sorted(missing):
            if now - self._reminded[topic] >= REMIND_EVERY:
                self._reminded[topic] = now
                self.logger.log(
                    self.level,
                    "kafka: %s still not found, for %s%s",
                    self.describe(topic),
                    duration(now - self._since[topic]),
                    detail(),
                )
        for topic in sorted(self._since.keys() - missing):
            since = self._since.pop(topic)
            del self._reminded[topic]
            self.logger.info("kafka: %s found, after %s missing", self.describe(topic), duration(now - since))
        return known and not missing


class _Quiet(logging.Filter):
    """Drops kafka-python's line for a watched topic not found: the watch says it, once."""

    def __init__(self, topics: tuple[str, ...]) -> None:
        super().__init__()
        self.topics = topics

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        return not (record.msg == _NOT_FOUND and args and args[0] in self.topics)


def cluster_of(client: Any) -> Any:
    """A kafka-python consumer's or producer's metadata (``ClusterMetadata``), or None in another version."""
    return getattr(client, "_cluster", None) or getattr(client, "_metadata", None)


def duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``3 h 5 min``: how long, as a person says it."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = int(seconds // 60)
    if minutes < 90:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"
