"""Legitimate bulk work that looks alarming out of context.

Each occurrence is its own episode and its own benign label, so an evaluator
can check that no alert overlaps it.
"""

from __future__ import annotations

from functools import partial

from .episode import Episode
from .events import EventBuilder, new_session
from .fields import CUSTOMER_POPULATION, SYSTEM_TABLES
from .organisation import Actor, Organisation
from .timeline import DAY_MS, MINUTE_MS, SECOND_MS, Timeline

CONTACT_EXPORT_FIELDS = ["customer_id", "name", "email", "phone", "wechat_id"]
MONTH_END_FIELDS = ["customer_id", "name", "bank_account", "payment_card", "credit_score", "purchase_history"]
TABLE_GROWTH_PER_DAY = 0.0015  # systems grow a little every day
ETL_READ_SYSTEMS = SYSTEM_TABLES  # the warehouse loads from every system
NEW_HIRE_SETTLING_DAYS = 7


def weekly_export(builder: EventBuilder, actor: Actor, timeline: Timeline, day: int) -> str:
    """Monday ~10:00: the newsletter contact list goes to the email platform."""
    rng = builder.rng
    records = rng.randint(10_000, 20_000)
    ts = timeline.at(day, 10.0 + rng.uniform(-0.3, 0.4))
    session = new_session(rng)
    purpose = f"campaign-newsletter-{timeline.date(day):%Y%m%d}"
    for action, resource_id in (("search", "dw.customer_contacts"), ("export", "dw.customer_contacts"),
                                ("download", f"exports/newsletter_{timeline.date(day):%Y%m%d}.csv")):
        builder.emit(actor, ts, action, "data-warehouse", "table", resource_id, records,
                     builder.pick(actor.customers, records), list(CONTACT_EXPORT_FIELDS), actor.ips[0],
                     session, purpose)
        ts += rng.randrange(40 * SECOND_MS, 3 * MINUTE_MS)
    return (f"{actor.actor_id} ({actor.role}) runs the weekly newsletter export: {records:,} customer contacts "
            f"searched, exported and downloaded from the data warehouse.")


def month_end_report(builder: EventBuilder, actor: Actor, timeline: Timeline, day: int) -> str:
    """Last working day of the month, late afternoon: receivables report with financial fields."""
    rng = builder.rng
    records = rng.randint(30_000, 60_000)
    ts = timeline.at(day, 16.0 + rng.uniform(0.0, 0.5))
    session = new_session(rng)
    purpose = f"month-end-close-{timeline.date(day):%Y-%m}"
    for action in ("read", "export", "download"):
        builder.emit(actor, ts, action, "reporting", "report", "rpt-month-end-receivables", records,
                     builder.pick(actor.customers, records), list(MONTH_END_FIELDS), actor.ips[0],
                     session, purpose)
        ts += rng.randrange(2 * MINUTE_MS, 9 * MINUTE_MS)
    return (f"{actor.actor_id} ({actor.role}) runs the month-end receivables report: {records:,} customers "
            f"with financial fields, read, exported and downloaded.")


def nightly_backup(builder: EventBuilder, actor: Actor, timeline: Timeline, day: int) -> str:
    """02:00: every table of every system, all fields, downloaded to backup storage."""
    rng = builder.rng
    ts = timeline.at(day, 2.0) + rng.randrange(2 * MINUTE_MS)
    session = new_session(rng)
    total = 0
    for system, resource_type, resource_id, rows, fields in SYSTEM_TABLES:
        count = int(rows * (1 + TABLE_GROWTH_PER_DAY * day))
        total += count
        builder.emit(actor, ts, "download", system, resource_type, resource_id, count,
                     builder.pick((0, CUSTOMER_POPULATION), count), list(fields), actor.ips[0], session)
        ts += rng.randrange(3 * MINUTE_MS, 9 * MINUTE_MS)
    return f"{actor.actor_id} downloads a full backup of {len(SYSTEM_TABLES)} systems ({total:,} rows, all fields)."


def nightly_etl(builder: EventBuilder, actor: Actor, timeline: Timeline, day: int) -> str:
    """01:00-03:00: incremental loads into the warehouse, tens of thousands of records."""
    rng = builder.rng
    batches = rng.randint(20, 40)
    ts = timeline.at(day, 1.0) + rng.randrange(5 * MINUTE_MS)
    gap = 110 * MINUTE_MS // batches  # finish before 03:00
    session = new_session(rng)
    total = 0
    for n in range(batches):
        system, resource_type, resource_id, _, fields = ETL_READ_SYSTEMS[n % len(ETL_READ_SYSTEMS)]
        count = rng.randint(500, 3000)
        total += count
        builder.emit(actor, ts, "read", system, resource_type, resource_id, count,
                     builder.pick((0, CUSTOMER_POPULATION), count), list(fields), actor.ips[0], session)
        ts += int(gap * rng.uniform(0.7, 1.0))
    return f"{actor.actor_id} loads {total:,} changed records from {len(ETL_READ_SYSTEMS)} systems into the warehouse."


def plan_benign(organisation: Organisation, timeline: Timeline, busy_day: int | None) -> list[Episode]:
    services = {a.role: a for a in organisation.actors if a.kind == "service"}
    episodes: list[Episode] = []
    for day in range(timeline.local_days):
        if timeline.weekday(day) == 0:
            lead = organisation.analyst_lead
            episodes.append(Episode("weekly_export", lead, day, partial(weekly_export, actor=lead,
                                                                        timeline=timeline, day=day)))
        if timeline.is_last_working_day_of_month(day):
            lead = organisation.finance_lead
            episodes.append(Episode("month_end_report", lead, day, partial(month_end_report, actor=lead,
                                                                           timeline=timeline, day=day)))
        for kind, job, role in (("nightly_etl", nightly_etl, "etl"), ("nightly_backup", nightly_backup, "backup")):
            episodes.append(Episode(kind, services[role], day, partial(job, actor=services[role],
                                                                      timeline=timeline, day=day)))
    for hire in organisation.new_hires:
        start = timeline.day_start(hire.first_day)
        end = min(start + NEW_HIRE_SETTLING_DAYS * DAY_MS, timeline.end_ms) - 1
        episodes.append(Episode(
            "new_hire", hire, hire.first_day, span=(start, end),
            description=f"{hire.actor_id} joins as {hire.role} on {timeline.date(hire.first_day)}; "
                        f"their first week has no history of their own to compare with."))
    if busy_day is not None:
        start = max(timeline.day_start(busy_day), timeline.start_ms)
        end = min(timeline.day_start(busy_day + 1), timeline.end_ms) - 1
        episodes.append(Episode(
            "busy_day", None, busy_day, span=(start, end),
            description=f"Sale day {timeline.date(busy_day)}: customer-facing staff and booking partners "
                        f"handle two to three times their usual volume."))
    return episodes
