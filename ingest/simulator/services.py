"""Service accounts: machines with fixed habits and fixed internal addresses.

The first four always exist (the scenarios and the benign nightly jobs need
them); the optional ones are added in order as `service_accounts` grows.
"""

from __future__ import annotations

from dataclasses import dataclass

from .fields import AccessPattern as P

ALL_HOURS = tuple(range(24))


@dataclass(frozen=True)
class ServiceProfile:
    actor_id: str
    role: str
    # "stream": steady arrivals; "hourly": a run each active hour; "daily": one run a day;
    # "jobs": nothing but its scheduled jobs (episodes)
    mode: str
    hours: tuple[int, ...]  # local hours when it runs
    rate: float  # stream: events per hour; hourly/daily: events per run
    patterns: tuple[P, ...]
    user_agent: str
    run_minute: int = 0  # when hourly/daily runs start within the hour
    quiet_hours_rate: float = 1.0  # stream rate factor between 00:00 and 07:00 local


BILLING = ServiceProfile(
    "svc-billing", "billing_sync", "stream", ALL_HOURS, 14, quiet_hours_rate=0.45,
    user_agent="billing-sync/2.4 (java 17)",
    patterns=(
        P("update", "billing", "invoice", ("payment_card", "purchase_history"), (1, 20), 0.8,
          (), "invoice", "invoices"),
        P("read", "billing", "invoice", ("payment_card",), (1, 5), 0.2, (), "invoice", "invoices"),
    ),
)
NIGHTLY_ETL = ServiceProfile(
    "svc-etl-nightly", "etl", "jobs", (1, 2), 0, (), user_agent="airflow-worker/2.9 (python 3.11)")
BACKUP = ServiceProfile(
    "svc-backup", "backup", "jobs", (2,), 0, (), user_agent="pg-backup-agent/5.1")
CRM_SYNC = ServiceProfile(
    "svc-crm-sync", "crm_sync", "hourly", tuple(range(7, 23)), 4, run_minute=5,
    user_agent="crm-sync/3.2 (go1.22)",
    patterns=(
        P("search", "crm", "customer_record", ("customer_id", "name", "phone", "email"), (20, 300), 0.3,
          (), "", "customers"),
        P("update", "crm", "customer_record", ("customer_id", "phone", "email", "address", "membership_tier",
                                               "preferred_language"), (5, 120), 0.7, (), "", "customers"),
    ),
)
REQUIRED_SERVICES = (BILLING, NIGHTLY_ETL, BACKUP, CRM_SYNC)

OPTIONAL_SERVICES = (
    ServiceProfile(
        "svc-notifications", "notifications", "stream", tuple(range(6, 23)), 14,
        user_agent="notify-svc/1.8 (node 20)",
        patterns=(P("read", "booking", "reservation",
                    ("name", "email", "phone", "travel_itinerary", "preferred_language"), (1, 1), 1.0,
                    (), "reservation"),),
    ),
    ServiceProfile(
        "svc-loyalty-accrual", "loyalty_accrual", "daily", (5,), 10, run_minute=0,
        user_agent="loyalty-accrual/1.3 (java 17)",
        patterns=(P("update", "loyalty", "account", ("customer_id", "loyalty_points", "membership_tier"),
                    (200, 2000), 1.0, (), "", "accounts"),),
    ),
    ServiceProfile(
        "svc-fraud-screening", "fraud_screening", "stream", ALL_HOURS, 8, quiet_hours_rate=0.5,
        user_agent="fraud-screen/4.0 (python 3.11)",
        patterns=(P("read", "pos", "order", ("customer_id", "payment_card", "purchase_history"), (1, 3), 1.0,
                    (), "order", "orders"),),
    ),
    ServiceProfile(
        "svc-search-indexer", "search_indexer", "hourly", ALL_HOURS, 2, run_minute=30,
        user_agent="indexer/7.2 (java 21)",
        patterns=(P("read", "crm", "customer_record", ("customer_id", "name", "phone", "email"), (50, 400), 1.0,
                    (), "", "customers"),),
    ),
    ServiceProfile(
        "svc-report-scheduler", "report_scheduler", "daily", (7,), 6, run_minute=0,
        user_agent="report-scheduler/2.0 (python 3.11)",
        patterns=(P("read", "reporting", "report", ("purchase_history", "booking_history"), (1000, 20000), 1.0,
                    (), "", "rpt-daily-digest"),),
    ),
)
