"""An actor's events, found day by day through the index ``events_actor_day`` (migration 0008).

The index is keyed (day, actor, time), the day being ``ts / 86400000000``:
whole UTC days since the epoch, as SQLite's integer division makes them
(toward zero, so still in time order for the rare event before 1970).  A
batch of events then writes into its day's part of the index only, whatever
the number of actors.  The price is paid by the reader: an actor's events lie
in one run of the index per day.

``WITHIN_DAYS`` walks only the days the store holds, each found by one seek
in the same index (an event in year 1 and one in 9999 add two days, not
millions).  With the day leading the ORDER BY, SQLite reads those days in
order (ascending or descending), each day's run in time order, and stops at
the page's LIMIT: no sort, however many events the actor has.  The
expressions must be written exactly as the index's, or SQLite will not use it.
"""

from __future__ import annotations

DAY = "e.ts / 86400000000"  # of the outer query's ``events e``: the index's expression, as the planner matches it

# The days of the store between the days of two times (microseconds, both included): two parameters.
WITHIN_DAYS = f"""{DAY} IN (
    WITH RECURSIVE day(d) AS (
        SELECT min(x.ts / 86400000000) FROM events x WHERE x.ts / 86400000000 >= ? / 86400000000
        UNION ALL
        SELECT (SELECT min(x.ts / 86400000000) FROM events x WHERE x.ts / 86400000000 > d)
        FROM day WHERE d < ? / 86400000000
    )
    SELECT d FROM day WHERE d <= ? / 86400000000
)"""

EARLIEST = -(2**63)
LATEST = 2**63 - 1


def within_days(earliest: int, latest: int) -> tuple[int, int, int]:
    """``WITHIN_DAYS``'s parameters: the days of these times, which the events asked for lie between."""
    return earliest, latest, latest
