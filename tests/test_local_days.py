"""Local days in SQL (store.local_days): the zone's offsets over a range, and the day number they give."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from store.local_days import SECOND_US, local_day_sql, offsets_between

HOUR_US = 3600 * SECOND_US


def _us(*parts: int) -> int:
    return int(datetime(*parts, tzinfo=UTC).timestamp()) * SECOND_US


def test_a_year_in_berlin_has_its_two_changes_to_the_second():
    steps = offsets_between(ZoneInfo("Europe/Berlin"), _us(2026, 1, 1), _us(2026, 12, 31))
    assert steps == [
        (_us(2026, 1, 1), HOUR_US),
        (_us(2026, 3, 29, 1), 2 * HOUR_US),  # 02:00 winter time
        (_us(2026, 10, 25, 1), HOUR_US),  # 03:00 summer time
    ]


def test_a_zone_without_changes_is_one_step():
    assert offsets_between(ZoneInfo("Asia/Shanghai"), _us(2026, 1, 1), _us(2027, 1, 1)) == [
        (_us(2026, 1, 1), 8 * HOUR_US)
    ]


def test_the_sql_day_is_the_local_calendar_day_hour_by_hour():
    zone = ZoneInfo("America/New_York")  # changes on other dates than Europe's, at 02:00 local
    first, last = _us(2026, 3, 1), _us(2026, 11, 30)
    day, params = local_day_sql("value", offsets_between(zone, first, last))
    moments = range(first, last + 1, HOUR_US // 2)
    rows = sqlite3.connect(":memory:").execute(f"SELECT {day} FROM json_each(?)", [*params, str(list(moments))])
    got = [row[0] for row in rows]
    epoch = datetime(1970, 1, 1).date()
    expected = [
        (datetime.fromtimestamp(moment / SECOND_US, UTC).astimezone(zone).date() - epoch).days for moment in moments
    ]
    assert got == expected
    assert len(set(got)) == (datetime(2026, 11, 30) - datetime(2026, 3, 1)).days + 1 == len(set(expected))
