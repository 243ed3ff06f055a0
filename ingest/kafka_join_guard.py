"""A guard against a kafka-python (3.0.12) consumer that drops a group join it started.

The fault.  ``KafkaConsumer.poll(timeout_ms)`` drives the group join, and
when its timeout runs out mid-join it leaves the join running, to be awaited
by the next poll; but the next poll awaits it only while ``need_rejoin()``
holds.  When the join was started by the consumer coordinator's own check
(the group leader saw the topic metadata change: a topic's partitions
appearing after the first join, partitions added), nothing sets the base
coordinator's ``rejoin_needed``; and the leader's assignment, made inside the
running join, makes that check false.  The join's result is then never
applied: the member has no partitions, sends no heartbeats, is evicted by
the broker, and stays in that state for good, while believing itself a
stable member.  Seen here as an instance that never owned a partition
while another took them all (a 2-core machine under load, a poll timeout of
100 ms, a JoinGroup held by the broker until the other member rejoined).

The guard, after every poll: a join left in flight while no rejoin is
needed is asked for again.  If it is still running, the next poll awaits it
(nothing is sent twice); if it finished unawaited, the next poll starts a
fresh join, and the group rebalances once more.
"""

from __future__ import annotations

from typing import Any


def rejoin_if_join_dropped(consumer: Any) -> bool:
    """Request a rejoin when the consumer holds a join it will not await; True if one was requested."""
    coordinator = getattr(consumer, "_coordinator", None)
    # other versions of kafka-python may not have these: then there is nothing to guard
    if getattr(coordinator, "_join_task", None) is None:
        return False
    if coordinator.need_rejoin():
        return False  # the next poll awaits it
    coordinator.request_rejoin()
    return True
