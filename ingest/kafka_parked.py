"""Guards against a kafka-python (3.0.12) consumer that never reads a resumed partition again.

Records fetched for a partition that is then paused are parked by the
fetcher, to be handed out once it is resumed (KAFKA-7548).  It hands them
out only while no other partition's records are in line, and a drained
batch stays in line, as an empty one, until a next fetch brings records:
on a quiet topic, never.  Meanwhile the partition is left out of every
fetch, as one with records waiting.  Seen as a partition paused while dead
letters waited for their topic, resumed, and read no more, for good, its
position standing where it was paused.

So ``KafkaSource.resume`` drops what was parked for the partitions it
resumes (``drop_parked``): nothing was handed out from it, the position has
not moved past it, and the next fetch asks for it again.  It reads a private
attribute of kafka-python's fetcher; where it is absent (another version) it
does nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def drop_parked(consumer: Any, partitions: Iterable[Any]) -> None:
    """Forget the records the consumer's fetcher parked for ``partitions``: they are fetched again."""
    parked = getattr(getattr(consumer, "_fetcher", None), "_paused_partition_records", None)
    if isinstance(parked, dict):
        for tp in partitions:
            parked.pop(tp, None)
