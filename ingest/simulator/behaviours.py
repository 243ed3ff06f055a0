"""Routine work: one actor's ordinary events on one local day.

People work in tasks: a customer-service ticket is a read, maybe an update,
maybe a look at the booking, all on the same customer within minutes.
Machines run on their clocks.
"""

from __future__ import annotations

import itertools
import math
import random
from bisect import bisect

from .customers import take
from .events import EventBuilder, draw_records, new_session, single_record_id
from .fields import AccessPattern
from .organisation import Actor
from .partners import PartnerTemplate
from .roles import RoleProfile
from .services import ServiceProfile
from .timeline import HOUR_MS, MINUTE_MS, SECOND_MS, Timeline

LUNCH = (12.0, 13.5)  # local hours; most office workers step away
LUNCH_SKIP = 0.7  # share of would-be lunch accesses that do not happen
VPN_DAY_RATE = 0.2  # days an employee with a VPN address works from home
QUIET_HOURS_END = 7  # local; machine traffic that follows people is lower before


def _cumulative(patterns: tuple[AccessPattern, ...]) -> list[float]:
    return list(itertools.accumulate(p.weight for p in patterns))


def human_day(actor: Actor, day: int, timeline: Timeline, busy_day: int | None, builder: EventBuilder) -> None:
    """An employee's or partner agent's routine events on one local day."""
    schedule = actor.schedule
    if schedule is None or not actor.available(day) or not schedule.works(day, timeline.weekday(day)):
        return
    rng = builder.rng
    shift = schedule.shift(rng)
    if shift is None:
        return
    profile = actor.profile
    assert isinstance(profile, RoleProfile | PartnerTemplate), "service accounts have no schedule, so never get here"
    factor = actor.volume * schedule.intensity * rng.lognormvariate(-0.045, 0.3)
    if day == busy_day and profile.customer_facing:
        factor *= rng.uniform(2.0, 3.0)
    wanted = int(profile.events_per_shift * factor + rng.random())
    if wanted <= 0:
        return

    ip = actor.ips[-1] if len(actor.ips) > 1 and rng.random() < VPN_DAY_RATE else actor.ips[0]
    start = timeline.at(day, shift[0])
    span = int((shift[1] - shift[0]) * HOUR_MS)
    middle = start + span // 2
    morning, afternoon = new_session(rng), new_session(rng)  # people log in again after a break
    lunch = (timeline.at(day, LUNCH[0]), timeline.at(day, LUNCH[1])) if schedule.lunch_break else None
    patterns = profile.patterns
    weights = _cumulative(patterns)
    total_weight = weights[-1]
    purpose_prefix: str | None
    if isinstance(profile, PartnerTemplate):  # the partner agents
        purpose_prefix, purpose_rate = f"contract-{actor.organization}-2026", 0.95
    else:
        purpose_prefix, purpose_rate = profile.purpose_prefix, profile.purpose_rate
    denied = getattr(profile, "denied_rate", 0.004)
    failed = denied + getattr(profile, "error_rate", 0.002)
    follow_up = getattr(profile, "follow_up", 0.3)
    extra = {"store_id": actor.store} if actor.store else None
    pool = builder.customers.pool(actor.customers)
    draw = rng.random  # the loop below is the simulator's hot path
    emit = builder.emit

    emitted = 0
    while emitted < wanted:
        ts = start + int(draw() * span)
        if lunch and lunch[0] <= ts < lunch[1] and draw() < LUNCH_SKIP:
            continue
        pattern = patterns[bisect(weights, draw() * total_weight)]
        low, high = pattern.records
        records = low if low == high else draw_records(rng, low, high)
        customers = take(pool, draw, records)
        purpose = None
        if purpose_prefix and draw() < purpose_rate:
            purpose = (purpose_prefix if actor.kind == "partner"
                       else f"{purpose_prefix}-{10_000 + int(draw() * 990_000)}")
        session = morning if ts < middle else afternoon
        while True:  # one task: this access, then maybe more on the same customers
            chance = draw()
            outcome = "success" if chance >= failed else "denied" if chance < denied else "error"
            # what builder.access does, inlined: this runs for most events of the simulation
            fields = pattern.draw_fields(draw())
            resource_id = (single_record_id(rng, pattern.record_id, customers)
                           if records == 1 and pattern.record_id else pattern.collection)
            emit(actor, ts, pattern.action, pattern.system, pattern.resource_type, resource_id, records, customers,
                 fields, ip, session, purpose, outcome, None, extra)
            emitted += 1
            if emitted >= wanted or draw() >= follow_up:
                break
            ts += 15 * SECOND_MS + int(draw() * 225 * SECOND_MS)
            pattern = patterns[bisect(weights, draw() * total_weight)]
            low, high = pattern.records
            records = low if low == high else draw_records(rng, low, high)
            if records <= len(customers):
                customers = customers[:records]
            else:
                customers = take(pool, draw, records)


def _runs(profile: ServiceProfile, day: int, timeline: Timeline, rng: random.Random) -> list[tuple[int, int]]:
    """(start ms, event count) of each run of an hourly or daily job."""
    runs = []
    for hour in profile.hours:
        start = timeline.at(day, hour) + profile.run_minute * MINUTE_MS + rng.randrange(40 * SECOND_MS)
        runs.append((start, max(1, round(rng.gauss(profile.rate, 1.0)))))
    return runs


def service_day(actor: Actor, day: int, timeline: Timeline, builder: EventBuilder) -> None:
    """A service account's routine events on one local day (scheduled jobs are episodes)."""
    profile = actor.profile
    assert isinstance(profile, ServiceProfile)
    if profile.mode == "jobs":
        return
    rng = builder.rng
    weights = _cumulative(profile.patterns)
    ip = actor.ips[0]
    if profile.mode == "stream":
        session = new_session(rng)  # a long-lived connection pool
        for hour in profile.hours:
            rate = profile.rate * (profile.quiet_hours_rate if hour < QUIET_HOURS_END else 1.0)
            count = max(0, round(rng.gauss(rate, math.sqrt(rate))))
            base = timeline.at(day, hour)
            for _ in range(count):
                _service_access(actor, base + int(rng.random() * HOUR_MS), profile, weights, ip, session, builder)
        return
    for start, count in _runs(profile, day, timeline, rng):
        session = new_session(rng)  # one login per run
        ts = start
        for _ in range(count):
            _service_access(actor, ts, profile, weights, ip, session, builder)
            ts += 2 * SECOND_MS + int(rng.random() * 18 * SECOND_MS)


def _service_access(actor: Actor, ts: int, profile: ServiceProfile, weights: list[float], ip: str, session: str,
                    builder: EventBuilder) -> None:
    rng = builder.rng
    pattern = profile.patterns[bisect(weights, rng.random() * weights[-1])]
    records = draw_records(rng, *pattern.records)
    chance = rng.random()
    outcome = "success" if chance >= 0.0025 else "denied" if chance < 0.0005 else "error"
    builder.access(actor, ts, pattern, records, builder.pick(actor.customers, records), ip, session, None, outcome)
