"""A span as a summary says it (detectors.wording.span): whole local days end on the day before the midnight
that ends them, as the days a ramp lists do and a page says them (notify.local_span)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from detectors import wording
from notify import local_span

SHANGHAI = ZoneInfo("Asia/Shanghai")  # no daylight saving
BERLIN = ZoneInfo("Europe/Berlin")  # summer time ends on Sun 25 Oct 2026 (a day of 25 hours), starts on Sun 29 Mar


def said(zone: ZoneInfo, first: tuple[int, ...], last: tuple[int, ...]) -> str:
    """``wording.span`` of two local times, given as (month, day[, hour]) in 2026."""
    start, end = (datetime(2026, *moment, tzinfo=zone).timestamp() for moment in (first, last))
    return wording.span(start, end, zone)


@pytest.mark.parametrize("zone", [SHANGHAI, BERLIN], ids=str)
def test_whole_days_end_on_the_day_before_the_midnight_that_ends_them(zone):
    # the seed-7 month's ramp: Fri 16 Oct 00:00 to Tue 27 Oct 00:00, its days Fri 16 to Mon 26 (across Berlin's
    # change on Sun 25 Oct)
    assert said(zone, (10, 16), (10, 27)) == "from Fri 16 Oct to Mon 26 Oct"
    assert said(zone, (10, 19), (10, 20)) == "on Mon 19 Oct"
    assert said(zone, (10, 19), (10, 21)) == "from Mon 19 Oct to Tue 20 Oct"


def test_a_day_of_23_or_25_hours_is_one_whole_day():
    assert said(BERLIN, (10, 25), (10, 26)) == "on Sun 25 Oct"  # 25 hours: the clocks went back
    assert said(BERLIN, (3, 29), (3, 30)) == "on Sun 29 Mar"  # 23 hours: the clocks went forward
    assert said(BERLIN, (10, 24), (10, 26)) == "from Sat 24 Oct to Sun 25 Oct"
    assert said(BERLIN, (3, 28), (3, 31)) == "from Sat 28 Mar to Mon 30 Mar"


@pytest.mark.parametrize("zone", [SHANGHAI, BERLIN], ids=str)
def test_a_span_within_a_day_keeps_its_hours(zone):
    named = zone.key
    assert said(zone, (10, 26, 14), (10, 26, 17)) == f"on Mon 26 Oct 14:00-17:00 {named}"
    # ending at the midnight after: still that day's hours, not a day later
    assert said(zone, (10, 26, 14), (10, 27)) == f"on Mon 26 Oct 14:00-00:00 {named}"
    assert said(zone, (10, 26, 23), (10, 27)) == f"on Mon 26 Oct 23:00-00:00 {named}"
    # from a midnight to a time of day is no whole day: its hours are said
    assert said(zone, (10, 26), (10, 27, 15)) == f"from Mon 26 Oct 00:00 to Tue 27 Oct 15:00 {named}"
    assert said(zone, (10, 26, 22), (10, 27, 2)) == f"from Mon 26 Oct 22:00 to Tue 27 Oct 02:00 {named}"


@pytest.mark.parametrize("zone", [SHANGHAI, BERLIN], ids=str)
def test_a_summary_and_a_page_name_the_same_last_day(zone):
    for first, last in [((10, 16), (10, 27)), ((10, 19), (10, 20)), ((10, 24), (10, 26))]:
        start, end = (datetime(2026, *moment, tzinfo=zone) for moment in (first, last))
        paged = local_span.span(start, end, zone)
        assert said(zone, first, last).removeprefix("on ").removeprefix("from ") == paged
