"""Guards against a kafka-python (3.0.12) consumer that throws away a group join it started.

``KafkaConsumer.poll(timeout_ms)`` drives the group join.  When its timeout
runs out mid-join, the join goes on, to be awaited by the next poll.  Two
ways the next poll loses it:

* a join that *finished* before the next poll is not awaited but replaced by
  a new one (the group rebalances again).  A caller that does work between
  polls, longer than what is left of a join, never lets one land: seen as a
  member rejoining every second, for good, when the broker held each join
  for 1 s and the caller worked 0.25 s between polls of 0.1 s.
* the next poll awaits a join only while ``need_rejoin()`` holds.  When the
  join was started by the consumer coordinator's own check (the group
  leader saw the topic metadata change: a topic's partitions appearing
  after the first join, partitions added), nothing sets the base
  coordinator's ``rejoin_needed``, and the leader's assignment, made inside
  the running join, makes that check false.  The join's result is never
  applied: the member owns nothing and sends no heartbeats, for good, while
  believing itself a stable member.  Seen as an instance that never owned a
  partition while another took them all (CI, a loaded 2-core machine).

So ``KafkaSource.poll`` stays in poll while a join is under way
(``join_under_way``), and asks for the rejoin the second case forgets
(``rejoin_if_join_dropped``), so that the join is awaited, and lands, inside
a poll.  Both read private attributes of kafka-python's coordinator; where
they are absent (another version) they do nothing.
"""

from __future__ import annotations

from typing import Any


def join_under_way(consumer: Any) -> bool:
    """True while a group join this consumer started has not been applied."""
    return getattr(getattr(consumer, "_coordinator", None), "_join_task", None) is not None


def rejoin_if_join_dropped(consumer: Any) -> bool:
    """Request a rejoin when the consumer holds a join it will not await; True if one was requested."""
    if not join_under_way(consumer):
        return False
    coordinator = consumer._coordinator
    if coordinator.need_rejoin():
        return False  # the next poll awaits it
    coordinator.request_rejoin()
    return True
