"""Times as people read them: the organisation's local time with its UTC offset, never a zone's abbreviation.

"CST" is China's time and the American Central time both; an offset says which clock a time is on.  One
rendering for the dashboard and the command line, each with the separators that suit it.
"""

from __future__ import annotations

from datetime import datetime, tzinfo


def utc_offset(moment: datetime) -> str:
    """The offset from UTC of an aware time, to the minute: ``+08:00``, ``-05:00``, ``+00:00``."""
    return moment.isoformat(timespec="minutes")[16:]


def local_time(moment: datetime, zone: tzinfo, seconds: bool = False) -> str:
    """Local time to the minute (or second), with its UTC offset: ``2026-10-25 09:36 +08:00``."""
    local = moment.astimezone(zone)
    return f"{local.strftime('%Y-%m-%d %H:%M:%S' if seconds else '%Y-%m-%d %H:%M')} {utc_offset(local)}"


def local_range(start: datetime, end: datetime, zone: tzinfo, to: str = " – ", dash: str = "–") -> str:
    """A span in local time, its day said once: ``2026-10-16 14:00–17:00 +08:00``; across days,
    ``2026-10-16 00:00 – 2026-10-17 00:00 +08:00``; each end with its offset when the clocks changed between.

    ``to`` joins two whole times, ``dash`` two hours of one day (the command line: ``" to "`` and ``"-"``).
    """
    first, last = start.astimezone(zone), end.astimezone(zone)
    on, off = utc_offset(first), utc_offset(last)
    if on != off:
        return f"{first:%Y-%m-%d %H:%M} {on}{to}{last:%Y-%m-%d %H:%M} {off}"
    if first.date() == last.date():
        return f"{first:%Y-%m-%d %H:%M}{dash}{last:%H:%M} {on}"
    return f"{first:%Y-%m-%d %H:%M}{to}{last:%Y-%m-%d %H:%M} {on}"
