"""Time arithmetic in integer milliseconds, and the simulation's calendar.

Everything inside the simulator is UTC epoch milliseconds: integers are fast
and exact. People in the simulated company live in China Standard Time
(UTC+08:00, no daylight saving), so their calendar ("local day", "09:00") is
UTC shifted by a fixed eight hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

SECOND_MS = 1000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
LOCAL_OFFSET_MS = 8 * HOUR_MS
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EPOCH_DATE = date(1970, 1, 1)
# Scenarios start after this much history, so detectors have learnt a baseline.
MIN_HISTORY_DAYS = 7
MAX_HISTORY_DAYS = 10


def to_ms(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(milliseconds=1)


def utc_text(ms: int) -> str:
    """RFC 3339 in UTC with Z; milliseconds only when there are any."""
    day, rest = divmod(ms, DAY_MS)
    seconds, millis = divmod(rest, SECOND_MS)
    hour, seconds = divmod(seconds, 3600)
    minute, second = divmod(seconds, 60)
    base = f"{EPOCH_DATE + timedelta(days=day)}T{hour:02d}:{minute:02d}:{second:02d}"
    return f"{base}.{millis:03d}Z" if millis else f"{base}Z"


@lru_cache(maxsize=1)
def _seconds_texts() -> tuple[str, ...]:
    """"SS.mmm" for every millisecond of a minute: formatting those per event was the slow part."""
    return tuple(f"{ms // 1000:02d}.{ms % 1000:03d}" for ms in range(MINUTE_MS))


class TimestampFormatter:
    """Formats event timestamps fast, from cached minute prefixes and a table of seconds.

    Systems of record in China stamp local time with +08:00; the cloud-hosted
    ones stamp UTC with Z. Both are valid RFC 3339 and consumers must accept both.
    """

    def __init__(self) -> None:
        # "YYYY-MM-DDTHH:MM:" per minute, one cache per zone; a day of traffic touches a few thousand.
        self._local: dict[int, str] = {}
        self._utc: dict[int, str] = {}
        self._seconds = _seconds_texts()

    def format(self, ms: int, local: bool) -> str:
        if local:
            ms += LOCAL_OFFSET_MS
        minute = ms // MINUTE_MS
        cache = self._local if local else self._utc
        prefix = cache.get(minute)
        if prefix is None:
            if len(cache) > 10_000:  # keep the cache to about a week of minutes
                cache.clear()
            day, minute_of_day = divmod(minute, 1440)
            hour, minute_of_hour = divmod(minute_of_day, 60)
            prefix = cache[minute] = f"{EPOCH_DATE + timedelta(days=day)}T{hour:02d}:{minute_of_hour:02d}:"
        return prefix + self._seconds[ms - minute * MINUTE_MS] + ("+08:00" if local else "Z")


@dataclass(frozen=True)
class Timeline:
    """The simulated window [start_ms, end_ms) cut into local (UTC+8) days.

    Day 0 is the local day containing the start; the last day contains the end.
    """

    start_ms: int
    end_ms: int
    days: int  # the requested length; scenario placement scales with it
    day0_ms: int  # UTC milliseconds of local midnight opening day 0
    local_days: int  # how many local days touch the window
    day0: date

    @classmethod
    def create(cls, start: datetime, days: int) -> Timeline:
        start_ms = to_ms(start)
        end_ms = start_ms + days * DAY_MS
        first = (start_ms + LOCAL_OFFSET_MS) // DAY_MS
        last = (end_ms - 1 + LOCAL_OFFSET_MS) // DAY_MS
        return cls(
            start_ms=start_ms,
            end_ms=end_ms,
            days=days,
            day0_ms=first * DAY_MS - LOCAL_OFFSET_MS,
            local_days=last - first + 1,
            day0=EPOCH_DATE + timedelta(days=first),
        )

    def day_start(self, day: int) -> int:
        return self.day0_ms + day * DAY_MS

    def at(self, day: int, hour: float) -> int:
        """UTC milliseconds of a local wall-clock hour (may exceed 24) on a day."""
        return self.day0_ms + day * DAY_MS + int(hour * HOUR_MS)

    def weekday(self, day: int) -> int:
        """Monday is 0, as in datetime.weekday()."""
        return (self.day0.weekday() + day) % 7

    def date(self, day: int) -> date:
        return self.day0 + timedelta(days=day)

    def is_weekday(self, day: int) -> bool:
        return self.weekday(day) < 5

    def contains(self, ms: int) -> bool:
        return self.start_ms <= ms < self.end_ms

    def scenario_window(self) -> tuple[int, int]:
        """First and last day on which insider scenarios may be placed."""
        first = min(MAX_HISTORY_DAYS, max(MIN_HISTORY_DAYS, round(self.days / 3)))
        return first, self.days - 1

    def scenario_day(self, fraction: float) -> int:
        """The day at `fraction` of the scenario window: placement scales with the span."""
        first, last = self.scenario_window()
        return min(last, first + round(fraction * (last + 1 - first)))

    def is_last_working_day_of_month(self, day: int) -> bool:
        if not self.is_weekday(day):
            return False
        following = self.date(day) + timedelta(days=1)
        while following.weekday() >= 5:
            following += timedelta(days=1)
        return following.month != self.date(day).month
