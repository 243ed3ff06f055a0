"""Local calendar days in SQL: the organisation's zone, daylight saving included.

SQLite knows no time zones, but a zone's UTC offset is constant between its
transitions, and a store spans few of them (two a year where clocks change).
So the local day of a stored time is ``(ts + offset) / day``, with the offset
a ``CASE`` over the transitions in the stored range.  Where Python dates a
few grouped rows instead (alerts per day, Elasticsearch's buckets), it asks
the zone itself (``local_date``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

SECOND_US = 1_000_000
DAY_US = 86_400 * SECOND_US
_STEP_US = 6 * 3_600 * SECOND_US  # no zone changes its offset twice within six hours


def _in_zone(at_us: int, zone: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(at_us / SECOND_US, UTC).astimezone(zone)


def offset_us(zone: ZoneInfo, at_us: int) -> int:
    offset = _in_zone(at_us, zone).utcoffset()
    assert offset is not None, "an aware time has an offset"
    return (offset.days * 86_400 + offset.seconds) * SECOND_US


def offsets_between(zone: ZoneInfo, first_us: int, last_us: int) -> list[tuple[int, int]]:
    """The zone's offset over ``[first_us, last_us]``: (from when, offset) steps, in µs, the first from first_us."""
    steps = [(first_us, offset_us(zone, first_us))]
    at = first_us
    while at < last_us:
        following = min(at + _STEP_US, last_us)
        offset = offset_us(zone, following)
        if offset != steps[-1][1]:
            # the change lies in (at, following]: bisect for its second (offsets change on whole seconds)
            low, high = at // SECOND_US, -(-following // SECOND_US)
            while high - low > 1:
                middle = (low + high) // 2
                if offset_us(zone, middle * SECOND_US) == offset:
                    high = middle
                else:
                    low = middle
            steps.append((high * SECOND_US, offset))
        at = following
    return steps


def local_date(at_us: int, zone: ZoneInfo) -> date:
    """The zone's calendar date at ``at_us`` (µs since the epoch)."""
    return _in_zone(at_us, zone).date()


def local_day_sql(column: str, steps: list[tuple[int, int]]) -> tuple[str, list[int]]:
    """An SQL expression for the local day number of ``column`` (µs since the epoch), and its parameters."""
    if len(steps) == 1:
        return f"({column} + ?) / {DAY_US}", [steps[0][1]]
    cases = " ".join(f"WHEN {column} < ? THEN ?" for _ in steps[1:])
    params = [value for (start, _), (_, offset) in zip(steps[1:], steps, strict=False) for value in (start, offset)]
    return f"({column} + CASE {cases} ELSE ? END) / {DAY_US}", [*params, steps[-1][1]]
