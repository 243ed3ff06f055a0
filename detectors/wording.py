"""Figures and names as an analyst reads them in a one-sentence summary."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, tzinfo

from detectors.base import Expectation
from detectors.windows import MAX_TRACKED_CUSTOMERS, ActorRef, WindowStats
from models.event import ActorKind

# the figures' words, shared with the pages' first lines; the detectors read them here, as ``wording.count``
from models.figures import count as count
from models.figures import multiple as multiple
from models.figures import times as times
from models.figures import took_out as took_out
from models.figures import usual as usual


def counted(value: float, noun: str, plural: str | None = None) -> str:
    """'1 record', '3,000 records': the figure as ``count`` shows it, and the noun that agrees with it."""
    shown = round(value)
    return f"{shown:,} {noun if shown == 1 else plural or noun + 's'}"


# what the product calls each kind of actor in a sentence
KIND_NOUNS = {ActorKind.EMPLOYEE: "employee", ActorKind.PARTNER: "partner", ActorKind.SERVICE: "service account"}


def who(actor: ActorRef) -> str:
    """'employee emp-0042 (customer_service)', 'partner ptn-7 of blue-sky-travel', 'service account svc-17'."""
    detail = []
    if actor.role:
        detail.append(actor.role)
    text = f"{KIND_NOUNS[actor.kind]} {actor.id}"
    if actor.organization and actor.kind.value == "partner":
        text += f" of {actor.organization}"
    return f"{text} ({', '.join(detail)})" if detail else text


def a_kind(kind: ActorKind) -> str:
    """'an employee', 'a partner', 'a service account': an actor kind as a noun, with the article it takes."""
    noun = KIND_NOUNS[kind]
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"


def accessed(window: WindowStats) -> str:
    """'accessed 53,946 records in 3 accesses (17,982 distinct customer ids logged)'.

    Records are summed over accesses: a job that searches, exports and downloads the same records counts them
    three times, so the sentence says what the figure is and puts the customers beside it.  Those are the ids
    the events logged, which the contract lets be a sample of the records' customers (and a window stops
    counting at ``MAX_TRACKED_CUSTOMERS``): the known part, as the breach report words it too.  Left out when
    the events logged none.
    """
    told = f"accessed {counted(window.records, 'record')} in {counted(window.events, 'access', 'accesses')}"
    customers = window.distinct_customers
    if customers:
        floor = "at least " if customers >= MAX_TRACKED_CUSTOMERS else ""
        told += f" ({floor}{counted(customers, 'distinct customer id')} logged)"
    return told


def span(start: float, end: float, zone: tzinfo) -> str:
    """'on Tue 13 Oct 14:00-15:00 Asia/Shanghai' in the organisation's local time, its zone named.

    The zone is named wherever a time of day shows: a page is read in other zones, beside times
    in UTC.  Whole local days ('on Tue 13 Oct', 'from Fri 16 Oct to Mon 26 Oct') go without it.
    A span ends before its end (windows are half-open): one ending at a local midnight ends on the
    day before, which is the last day it names, as ``notify.local_span`` says it on a page.
    """
    first = datetime.fromtimestamp(start, UTC).astimezone(zone)
    last = datetime.fromtimestamp(end, UTC).astimezone(zone)
    last_day = (last - timedelta(days=1)).date() if last.time() == time(0) else last.date()
    # from a midnight to a midnight, in local time: a day of 23 or 25 hours (daylight saving) is a whole day too
    if first.time() == time(0) and last.time() == time(0) and last > first:
        if last_day == first.date():
            return first.strftime("on %a %d %b")
        return f"from {first:%a %d %b} to {last_day:%a %d %b}"
    if first.date() == last_day or (last - first).total_seconds() <= 3600:  # 23:30-00:30: an hour, said as one
        return f"on {first:%a %d %b %H:%M}-{last:%H:%M} {zone_name(first)}"
    return f"from {first:%a %d %b %H:%M} to {last:%a %d %b %H:%M} {zone_name(first)}"


def zone_name(moment: datetime) -> str:
    """'Asia/Shanghai', 'UTC', else the offset ('UTC+08:00'): what a reader elsewhere can convert from."""
    key = getattr(moment.tzinfo, "key", None)  # a zoneinfo zone's IANA name
    if isinstance(key, str) and key:
        return key
    offset = moment.utcoffset() or timedelta(0)
    if not offset:
        return "UTC"
    minutes = round(abs(offset.total_seconds()) / 60)
    return f"UTC{'-' if offset < timedelta(0) else '+'}{minutes // 60:02d}:{minutes % 60:02d}"


def basis(name: str) -> str:
    return {
        "own": "their usual",
        "own rhythm": "their usual for this hour of the week",
        "own weekday": "their usual for this day of the week",
        "peers": "their peers' usual",
        # everyone of their kind's (``detectors.kind_baseline``)
        "employees": "employees' usual",
        "partners": "partners' agents' usual",
        "busiest service": "the busiest service account's usual",
    }.get(name, "the usual")


def compared(value: float, expected: float, basis_name: str, population_factor: float = 1.0) -> str:
    """'59x their usual of 6.4', or 'where their usual is none' for a first time.

    The multiple is the figure over the usual as printed, so a reader's own division agrees with it; the
    score's ratio (``Expectation.ratio``: smoothed, and divided by the population allowance) stays in the
    evidence.  An allowance that lowered the score is said: 'while their peers read 2.0x their own usual'.
    """
    if expected < 0.5:
        return f"where {basis(basis_name)} is none"
    told = f"{times(multiple(value, expected))} {basis(basis_name)} of {usual(expected)}"
    if population_factor >= 1.05:
        told += f", while their peers read {times(population_factor)} their own usual"
    return told


def against(expectation: Expectation) -> str:
    """``compared`` for a volume rule's expectation: '59x their usual of 6.4'."""
    e = expectation
    return compared(e.value, e.expected, e.basis, e.population_factor)
