"""Spans of time as a page says them: in the organisation's clock, its zone named once, a date said once.

The summaries a page quotes tell their hours in the organisation's zone ('on Sat 17 Oct 01:00-02:00
Asia/Shanghai'); a page that put the same hour in UTC beside them ('2026-10-16 17:00-18:00 UTC') showed
two clocks, and two dates, for one hour.  Whole local days, the daily rules' windows, are said as days
('Mon 19 Oct', 'Fri 16 Oct to Mon 26 Oct', the last day the one the span ends in, not the midnight after).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def span(start: datetime, end: datetime, zone: ZoneInfo) -> str:
    """'Sat 17 Oct 01:00-02:00 Asia/Shanghai', 'Mon 19 Oct', 'Sat 17 Oct 22:00 to Sun 18 Oct 02:00 Asia/Shanghai'."""
    told, timed = _span(start, end, zone)
    return f"{told} {zone.key}" if timed else told


def span_within(start: datetime, end: datetime, wider: tuple[datetime, datetime], zone: ZoneInfo) -> str:
    """``span``, and the wider span beside it, its date left out when it is the same day:
    'Sat 17 Oct 01:00-02:00 Asia/Shanghai (incident: 01:00-04:00)', 'Mon 19 Oct (incident: Fri 16 Oct to Mon 26 Oct)'.
    The zone is named once, after the first time of day."""
    told, timed = _span(start, end, zone)
    first, last = start.astimezone(zone), end.astimezone(zone)
    day = (
        first.date()
        if first.date() == last.date() or _whole_days(first, last) == (first.date(), first.date())
        else None
    )
    around, around_timed = _span(*wider, zone, day=day)
    if timed:
        return f"{told} {zone.key} (incident: {around})"
    return f"{told} (incident: {around}{f' {zone.key}' if around_timed else ''})"


def _span(start: datetime, end: datetime, zone: ZoneInfo, day: date | None = None) -> tuple[str, bool]:
    """The span's words, and whether they tell a time of day; ``day``: a date already said, not said again."""
    first, last = start.astimezone(zone), end.astimezone(zone)
    days = _whole_days(first, last)
    if days is not None:
        if days[0] == days[1]:
            return ("the whole day" if days[0] == day else f"{days[0]:%a %d %b}"), False
        return f"{days[0]:%a %d %b} to {days[1]:%a %d %b}", False
    if first.date() == last.date() or last - first <= timedelta(hours=1):  # 23:00-00:00 is an hour of one day
        return (f"{first:%H:%M}-{last:%H:%M}" if first.date() == day else f"{first:%a %d %b %H:%M}-{last:%H:%M}"), True
    return f"{first:%a %d %b %H:%M} to {last:%a %d %b %H:%M}", True


def _whole_days(first: datetime, last: datetime) -> tuple[date, date] | None:
    """The first and last local day of a span from a midnight to a midnight, else None."""
    if last <= first or first.time() != time(0) or last.time() != time(0):
        return None
    return first.date(), (last - timedelta(days=1)).date()
