"""Injected insider scenarios: what each one does and when it happens.

Placement scales with the span: every scenario falls in the scenario window
(after about a week of history; see Timeline.scenario_window). Spans under
MIN_SCENARIO_DAYS get none; the dormant account needs 20 days. Who plays
each part is fixed by the organisation (Organisation.cast) whether or not
scenarios are on, so the routine stream is the same either way.

For the default month (day 0 = Mon 5 Oct 2026, local UTC+8):
- bulk_exfiltration (a salesperson): 3-6 export/download events, contact and
  id_number/passport_number fields, 20-50k records in all, 14:00-17:30 local,
  day ~24.
- slow_ramp (a day-shift customer-service agent): extra reads of fresh
  customers on 8 working days from day 10, growing geometrically to 8-12x the
  agent's usual daily records, 09:30-17:30 local.
- partner_overreach (a partner agent): 2-3 days from day ~14 at 3-5x volume,
  reading bank_account/id_number/income/credit_score and billing invoices,
  none of which its contract covers.
- off_hours_browsing (a day-shift customer-service agent): 200-400 single
  record reads 01:00-04:00 local on a weekend night, over the VPN address.
- compromised_service_account (svc-crm-sync): 8-14 search/export events from
  198.51.100.77 with python-requests, id/passport/bank/card fields, ~03:00
  local (the account normally runs 07:00-22:00 from 10.0.5.x).
- dormant_account (a salesperson away since day 3): first act after 15+
  silent days is a search, export and download of 2-8k records each.
- denied_probing (a day-shift customer-service agent): 40-100 attempts on
  bank_account/passport_number/id_number within ~25 minutes, ~88% denied.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import partial
from typing import Protocol

from .episode import Episode
from .events import EventBuilder, draw_records, new_session
from .fields import CUSTOMER_POPULATION, AccessPattern, mean_records
from .organisation import Actor, Organisation
from .partners import OVERREACH_PATTERNS, PartnerTemplate
from .randomness import split_total
from .roles import RoleProfile
from .timeline import MINUTE_MS, SECOND_MS, Timeline

MIN_SCENARIO_DAYS = 12
ATTACKER_IP = "198.51.100.77"  # never used by anyone legitimate
ATTACKER_AGENT = "python-requests/2.31.0"
EVERYONE = (0, CUSTOMER_POPULATION)
EXFIL_FIELDS = ("name", "phone", "email", "address", "wechat_id", "id_number", "passport_number")
PROBED_FIELDS = ("bank_account", "passport_number", "id_number")
STOLEN_FIELDS = ("customer_id", "name", "phone", "id_number", "passport_number", "bank_account", "payment_card")
RAMP_PATTERNS = (
    AccessPattern("read", "crm", "customer_record", ("name", "phone", "email", "address", "booking_history"),
                  (1, 3), 0.6, (), "customer", "customers"),
    AccessPattern("read", "booking", "reservation", ("name", "phone", "travel_itinerary"), (1, 2), 0.25,
                  (), "reservation", "reservations"),
    AccessPattern("search", "crm", "customer_record", ("name", "phone", "email"), (5, 25), 0.15, (), "", "customers"),
)


class _OneDayScenario(Protocol):
    """A scenario played on one day, as ``plan_scenarios`` binds it: everything but the builder by keyword."""

    def __call__(self, builder: EventBuilder, actor: Actor, timeline: Timeline, day: int) -> str: ...


def _when(rng: random.Random, timeline: Timeline, day: int, earliest: float, latest: float) -> int:
    return timeline.at(day, earliest + rng.random() * (latest - earliest))


def bulk_exfiltration(builder: EventBuilder, actor: Actor, timeline: Timeline, day: int) -> str:
    rng = builder.rng
    total = rng.randint(20_000, 50_000)
    parts = rng.randint(3, 6)
    shares = split_total(rng, total, parts, 1_500)
    ts = _when(rng, timeline, day, 14.0, 14.8)
    session = new_session(rng)
    targets = (("export", "crm", "customer_record", "customers"),
               ("download", "data-warehouse", "table", "dw.customer_contacts"),
               ("export", "booking", "reservation", "reservations"))
    for n, records in enumerate(shares):
        action, system, resource_type, resource_id = targets[n % len(targets)]
        builder.emit(actor, ts, action, system, resource_type, resource_id, records,
                     builder.pick(EVERYONE, records), list(EXFIL_FIELDS), actor.ips[0], session)
        ts += rng.randrange(8 * MINUTE_MS, 35 * MINUTE_MS)
    return (f"{actor.actor_id} ({actor.role}) exports and downloads {total:,} customer records with contact and "
            f"government-id fields in {parts} events within one afternoon, ahead of leaving the company.")


def slow_ramp(builder: EventBuilder, actor: Actor, timeline: Timeline, days: tuple[int, ...]) -> str:
    rng = builder.rng
    profile = actor.profile
    assert isinstance(profile, RoleProfile), "played by a customer-service agent"
    usual = profile.events_per_shift * actor.volume * mean_records(profile.patterns)
    target = rng.uniform(8.0, 12.0)
    weights = [p.weight for p in RAMP_PATTERNS]
    for n, day in enumerate(days):
        extra = usual * (target ** ((n + 1) / len(days)) - 1.0)  # geometric growth, on top of routine
        session = new_session(rng)
        done = 0
        while done < extra:
            pattern = rng.choices(RAMP_PATTERNS, weights)[0]
            records = draw_records(rng, *pattern.records)
            ts = _when(rng, timeline, day, 9.5, 17.5)  # stays within office hours
            purpose = f"ticket-{rng.randrange(10_000, 1_000_000)}" if rng.random() < 0.25 else None
            builder.access(actor, ts, pattern, records, builder.pick(EVERYONE, records), actor.ips[0],
                           session, purpose)
            done += records
    return (f"{actor.actor_id} ({actor.role}) reads ever more distinct customers: daily records grow geometrically "
            f"over {len(days)} working days to about {target:.0f}x the usual ~{usual:.0f}, all in office hours.")


def partner_overreach(builder: EventBuilder, actor: Actor, timeline: Timeline, days: tuple[int, ...]) -> str:
    rng = builder.rng
    template = actor.profile
    assert isinstance(template, PartnerTemplate), "played by a partner agent"
    factor = rng.uniform(3.0, 5.0)
    extra = template.events_per_shift * actor.volume * (factor - 1.0)
    weights = [p.weight for p in OVERREACH_PATTERNS]
    purpose = f"contract-{actor.organization}-2026"  # still quoting the contract
    for day in days:
        session = new_session(rng)
        start = template.opens + rng.uniform(0.0, 1.5)
        for _ in range(round(extra * rng.uniform(0.9, 1.1))):
            pattern = rng.choices(OVERREACH_PATTERNS, weights)[0]
            records = draw_records(rng, *pattern.records)
            builder.access(actor, _when(rng, timeline, day, start, template.closes - 0.5), pattern, records,
                           builder.pick(EVERYONE, records), actor.ips[0], session, purpose)
    return (f"{actor.actor_id}, agent of partner {actor.organization}, reads bank, id and income fields and "
            f"billing records outside its contract at about {factor:.1f}x its usual volume for {len(days)} days.")


def off_hours_browsing(builder: EventBuilder, actor: Actor, timeline: Timeline, day: int) -> str:
    rng = builder.rng
    count = rng.randint(200, 400)
    session = new_session(rng)
    pattern = RAMP_PATTERNS[0]
    for _ in range(count):
        builder.access(actor, _when(rng, timeline, day, 1.0, 4.0), pattern, 1,
                       builder.pick(EVERYONE, 1), actor.ips[-1], session)  # from home, over the VPN
    return (f"{actor.actor_id} ({actor.role}, day shift) browses {count} single customer records between "
            f"01:00 and 04:00 local on the night to {timeline.date(day):%A}.")


def compromised_service_account(builder: EventBuilder, actor: Actor, timeline: Timeline, day: int) -> str:
    rng = builder.rng
    count = rng.randint(8, 14)
    ts = _when(rng, timeline, day, 3.1, 3.4)
    session = new_session(rng)
    total = 0
    for n in range(count):
        searching = n < count // 2  # look around first, then take
        records = rng.randint(500, 5_000) if searching else rng.randint(2_000, 15_000)
        total += records
        builder.emit(actor, ts, "search" if searching else "export", "crm", "customer_record", "customers", records,
                     builder.pick(EVERYONE, records), list(STOLEN_FIELDS), ATTACKER_IP, session,
                     user_agent=ATTACKER_AGENT)
        ts += rng.randrange(45 * SECOND_MS, 4 * MINUTE_MS)
    return (f"{actor.actor_id} is used from new external address {ATTACKER_IP} at about 03:00 local to search and "
            f"export {total:,} customer records with id, passport and bank fields it never touches.")


def dormant_account(builder: EventBuilder, actor: Actor, timeline: Timeline, day: int) -> str:
    rng = builder.rng
    ts = _when(rng, timeline, day, 10.0, 10.5)
    session = new_session(rng)
    fields = ["name", "phone", "email", "address", "purchase_history"]
    total = 0
    steps = (("search", "crm", "customer_record", "customers"), ("export", "crm", "customer_record", "customers"),
             ("download", "data-warehouse", "table", "dw.customer_contacts"))
    for action, system, resource_type, resource_id in steps:
        records = rng.randint(2_000, 8_000)
        total += records
        builder.emit(actor, ts, action, system, resource_type, resource_id, records,
                     builder.pick(EVERYONE, records), list(fields), actor.ips[0], session)
        ts += rng.randrange(3 * MINUTE_MS, 15 * MINUTE_MS)
    away = day - actor.leave[0] if actor.leave else 0
    return (f"{actor.actor_id} ({actor.role}), silent for {away} days, comes back with a bulk search, export and "
            f"download of {total:,} customer records.")


def denied_probing(builder: EventBuilder, actor: Actor, timeline: Timeline, day: int) -> str:
    rng = builder.rng
    attempts = rng.randint(40, 100)
    start = _when(rng, timeline, day, 15.0, 16.0)
    length = rng.randrange(20 * MINUTE_MS, 30 * MINUTE_MS)
    session = new_session(rng)
    denied = 0
    targets = {"bank_account": ("billing", "invoice", "invoices"), "passport_number": ("booking", "reservation",
               "reservations"), "id_number": ("crm", "customer_record", "customers")}
    for ts in sorted(start + rng.randrange(length) for _ in range(attempts)):
        probed = rng.sample(PROBED_FIELDS, rng.randint(1, 2))
        system, resource_type, resource_id = targets[probed[0]]
        outcome = "denied" if rng.random() < 0.88 else "success"
        denied += outcome == "denied"
        action = rng.choices(("read", "search", "export"), (0.75, 0.15, 0.10))[0]
        builder.emit(actor, ts, action, system, resource_type, resource_id, 1, builder.pick(EVERYONE, 1),
                     ["name", *probed], actor.ips[0], session, outcome=outcome)
    return (f"{actor.actor_id} ({actor.role}) makes {attempts} attempts on bank account, passport and id number "
            f"fields within half an hour; {denied} are denied.")


def _working_day_from(actor: Actor, timeline: Timeline, target: int, last: int) -> int | None:
    """The first day from target on which the actor works, else the last one before it."""
    schedule = actor.schedule
    assert schedule is not None, "played by an employee, who has a schedule"
    works = [d for d in range(timeline.local_days) if d <= last and actor.available(d)
             and schedule.works(d, timeline.weekday(d))]
    later = [d for d in works if d >= target]
    if later:
        return later[0]
    earlier = [d for d in works if d >= timeline.scenario_window()[0]]
    return earlier[-1] if earlier else None


def plan_scenarios(organisation: Organisation, timeline: Timeline, enabled: bool) -> tuple[list[Episode], list[str]]:
    """The insider scenarios for this span, and notes on any that could not be placed."""
    if not enabled:
        return [], ["scenarios disabled in settings: no insider scenarios injected"]
    if timeline.days < MIN_SCENARIO_DAYS:
        return [], [f"days={timeline.days} is under {MIN_SCENARIO_DAYS}: no insider scenarios injected, "
                    f"detectors would have no week of history before them"]
    first, last = timeline.scenario_window()
    width = last + 1 - first
    cast = organisation.cast
    notes: list[str] = []
    planned: list[tuple[str, int, Callable[[EventBuilder], str]]] = []

    def one_day(kind: str, play: _OneDayScenario, day: int | None) -> None:
        if day is None:
            notes.append(f"{kind}: no suitable day in the scenario window; not injected")
            return
        planned.append((kind, day, partial(play, actor=cast[kind], timeline=timeline, day=day)))

    def working_days(actor: Actor, start: int, count: int) -> tuple[int, ...]:
        schedule = actor.schedule
        assert schedule is not None, "played by a person, who has a schedule"
        return tuple(d for d in range(start, last + 1)
                     if actor.available(d) and schedule.works(d, timeline.weekday(d)))[:count]

    ramp_days = working_days(cast["slow_ramp"], first, max(3, min(8, round(0.4 * width))))
    if len(ramp_days) >= 3:
        planned.append(("slow_ramp", ramp_days[0],
                        partial(slow_ramp, actor=cast["slow_ramp"], timeline=timeline, days=ramp_days)))
    else:
        notes.append("slow_ramp: fewer than three working days in the scenario window; not injected")

    overreach_days = working_days(cast["partner_overreach"], timeline.scenario_day(0.2), 3 if width >= 15 else 2)
    if overreach_days:
        planned.append(("partner_overreach", overreach_days[0],
                        partial(partner_overreach, actor=cast["partner_overreach"], timeline=timeline,
                                days=overreach_days)))
    else:
        notes.append("partner_overreach: the partner works no day in the scenario window; not injected")

    weekend = [d for d in range(timeline.scenario_day(0.1), last + 1) if timeline.weekday(d) >= 5]
    if not weekend:
        notes.append("off_hours_browsing: no weekend in the scenario window; placed on a weekday night instead")
    one_day("off_hours_browsing", off_hours_browsing, weekend[0] if weekend else timeline.scenario_day(0.1))
    one_day("compromised_service_account", compromised_service_account, timeline.scenario_day(0.55))
    if organisation.dormant_resume_day is not None:
        one_day("dormant_account", dormant_account, organisation.dormant_resume_day)
    else:
        notes.append(f"dormant_account: days={timeline.days} leaves no room for 14 silent days after some "
                     f"history; not injected")
    one_day("bulk_exfiltration", bulk_exfiltration,
            _working_day_from(cast["bulk_exfiltration"], timeline, timeline.scenario_day(0.7), last))
    one_day("denied_probing", denied_probing,
            _working_day_from(cast["denied_probing"], timeline, timeline.scenario_day(0.4), last))

    episodes = []
    for kind, day, play in sorted(planned, key=lambda p: (p[1], p[0])):
        episodes.append(Episode(kind, cast[kind], day, play, scenario_id=f"{kind}-1"))
    return episodes, notes
