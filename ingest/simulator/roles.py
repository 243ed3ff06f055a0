"""Employee roles: what each role touches, how much, and when.

Volumes are per shift before the individual multiplier (lognormal, mean 1).
"""

from __future__ import annotations

from dataclasses import dataclass

from .fields import AccessPattern as P


@dataclass(frozen=True)
class RoleProfile:
    role: str
    department: str
    events_per_shift: float
    patterns: tuple[P, ...]
    follow_up: float  # chance a task goes on with another access to the same customers
    purpose_prefix: str | None = None  # ticket/case reference style, e.g. "ticket"
    purpose_rate: float = 0.0
    denied_rate: float = 0.004
    error_rate: float = 0.002
    customer_facing: bool = False  # busier on the sale day
    start_hour: float = 9.0  # local time; office roles only
    shift_hours: float = 9.0
    office: bool = True  # Mon-Fri with a lunch dip; otherwise a rotating roster


CUSTOMER_SERVICE = RoleProfile(
    role="customer_service", department="service-center", events_per_shift=42, follow_up=0.45,
    purpose_prefix="ticket", purpose_rate=0.9, customer_facing=True, start_hour=9.0, shift_hours=9.0,
    patterns=(
        P("read", "crm", "customer_record", ("name", "phone", "booking_history"), (1, 3), 0.42,
          ("email", "membership_tier", "preferred_language", "address"), "customer", "customers"),
        P("read", "booking", "reservation", ("name", "travel_itinerary", "booking_history"), (1, 2), 0.22,
          ("dietary_requirements", "phone"), "reservation", "reservations"),
        P("update", "crm", "customer_record", ("phone", "email", "address"), (1, 1), 0.12, (), "customer"),
        P("update", "booking", "reservation", ("travel_itinerary",), (1, 1), 0.08,
          ("dietary_requirements",), "reservation"),
        P("search", "crm", "customer_record", ("name", "phone"), (2, 15), 0.08, ("email",), "", "customers"),
        P("read", "loyalty", "account", ("loyalty_points", "membership_tier"), (1, 1), 0.05, (), "customer"),
        P("read", "booking", "reservation", ("name", "passport_number", "travel_itinerary"), (1, 1), 0.03,
          (), "reservation"),
    ),
)

STORE_STAFF = RoleProfile(
    role="store_staff", department="retail-stores", events_per_shift=40, follow_up=0.35,
    customer_facing=True, start_hour=10.0, shift_hours=6.5, office=False,
    patterns=(
        P("create", "pos", "order", ("name", "phone", "purchase_history"), (1, 1), 0.35, ("payment_card",), "order"),
        P("read", "loyalty", "account", ("phone", "loyalty_points", "membership_tier"), (1, 1), 0.25, (), "customer"),
        P("update", "loyalty", "account", ("loyalty_points",), (1, 1), 0.15, (), "customer"),
        P("read", "pos", "order", ("purchase_history",), (1, 4), 0.15, ("name",), "order", "orders"),
        P("search", "crm", "customer_record", ("name", "phone"), (1, 8), 0.07, (), "customer", "customers"),
        P("print", "pos", "order", ("name", "purchase_history"), (1, 1), 0.03, (), "order"),
    ),
)

SALES = RoleProfile(
    role="sales", department="sales", events_per_shift=28, follow_up=0.3,
    purpose_prefix="opp", purpose_rate=0.5, customer_facing=True, start_hour=9.2, shift_hours=9.0,
    patterns=(
        P("read", "crm", "customer_record", ("name", "phone", "email", "purchase_history"), (1, 5), 0.40,
          ("membership_tier", "address"), "customer", "customers"),
        P("search", "crm", "customer_record", ("name", "phone", "email", "membership_tier"), (20, 200), 0.18,
          (), "", "customers"),
        P("read", "booking", "reservation", ("name", "booking_history", "travel_itinerary"), (1, 3), 0.15,
          (), "reservation", "reservations"),
        P("update", "crm", "customer_record", ("phone", "email", "membership_tier"), (1, 1), 0.12, (), "customer"),
        P("read", "loyalty", "account", ("loyalty_points", "membership_tier"), (1, 5), 0.10,
          (), "customer", "accounts"),
        P("export", "crm", "customer_record", ("name", "email", "phone"), (20, 150), 0.03, (), "", "customers"),
    ),
)

DATA_ANALYST = RoleProfile(
    role="data_analyst", department="marketing", events_per_shift=12, follow_up=0.2,
    purpose_prefix="campaign", purpose_rate=0.3, start_hour=9.5, shift_hours=8.5,
    patterns=(
        P("search", "data-warehouse", "table", ("customer_id", "gender", "purchase_history", "membership_tier"),
          (100, 900), 0.40, ("preferred_language", "nationality"), "", "dw.customer_profile"),
        P("search", "crm", "customer_record", ("name", "email", "purchase_history"), (100, 600), 0.25,
          (), "", "customers"),
        P("read", "reporting", "report", ("purchase_history", "booking_history"), (500, 5000), 0.25,
          (), "", "rpt-weekly-sales"),
        P("export", "data-warehouse", "table", ("customer_id", "purchase_history", "membership_tier"),
          (200, 2000), 0.05, (), "", "dw.customer_profile"),
        P("read", "data-warehouse", "table", ("customer_id", "booking_history", "travel_itinerary"),
          (100, 400), 0.05, (), "", "dw.bookings"),
    ),
)

MARKETING = RoleProfile(
    role="marketing", department="marketing", events_per_shift=10, follow_up=0.2,
    purpose_prefix="campaign", purpose_rate=0.4, start_hour=9.5, shift_hours=8.5,
    patterns=(
        P("search", "crm", "customer_record", ("name", "email", "wechat_id", "membership_tier"), (100, 500), 0.45,
          ("preferred_language",), "", "customers"),
        P("read", "reporting", "report", ("purchase_history", "membership_tier"), (200, 3000), 0.25,
          (), "", "rpt-campaign-performance"),
        P("read", "loyalty", "account", ("customer_id", "loyalty_points", "membership_tier"), (50, 300), 0.20,
          (), "", "accounts"),
        P("share", "crm", "customer_record", ("email", "wechat_id", "preferred_language"), (100, 800), 0.05,
          (), "", "customers"),
        P("export", "crm", "customer_record", ("name", "email"), (100, 500), 0.05, (), "", "customers"),
    ),
)

FINANCE = RoleProfile(
    role="finance", department="finance", events_per_shift=24, follow_up=0.3,
    purpose_prefix="inv", purpose_rate=0.4, start_hour=8.8, shift_hours=9.0,
    patterns=(
        P("read", "billing", "invoice", ("name", "payment_card", "purchase_history"), (1, 20), 0.35,
          (), "invoice", "invoices"),
        P("update", "billing", "invoice", ("payment_card", "bank_account"), (1, 5), 0.15, (), "invoice", "invoices"),
        P("search", "billing", "invoice", ("name", "purchase_history", "payment_card"), (20, 300), 0.20,
          (), "", "invoices"),
        P("read", "crm", "customer_record", ("name", "bank_account", "credit_score"), (1, 3), 0.10,
          (), "customer", "customers"),
        P("read", "reporting", "report", ("purchase_history", "payment_card"), (100, 3000), 0.12,
          (), "", "rpt-daily-revenue"),
        P("read", "crm", "customer_record", ("name", "income", "credit_score"), (1, 1), 0.05, (), "customer"),
        P("print", "billing", "invoice", ("name", "purchase_history"), (1, 3), 0.03, (), "invoice", "invoices"),
    ),
)

IT_SUPPORT = RoleProfile(
    role="it_support", department="it", events_per_shift=15, follow_up=0.3,
    purpose_prefix="inc", purpose_rate=0.8, denied_rate=0.015, start_hour=8.5, shift_hours=9.5,
    patterns=(
        P("read", "crm", "customer_record", ("customer_id", "name", "email"), (1, 1), 0.40,
          ("preferred_language",), "customer"),
        P("read", "booking", "reservation", ("customer_id", "booking_history"), (1, 1), 0.20, (), "reservation"),
        P("search", "crm", "customer_record", ("customer_id", "name"), (1, 20), 0.20, (), "customer", "customers"),
        P("update", "crm", "customer_record", ("email", "preferred_language"), (1, 1), 0.10, (), "customer"),
        P("read", "loyalty", "account", ("customer_id", "membership_tier"), (1, 1), 0.10, (), "customer"),
    ),
)

COMPLIANCE = RoleProfile(
    role="compliance", department="legal-compliance", events_per_shift=10, follow_up=0.25,
    purpose_prefix="audit", purpose_rate=0.7, start_hour=9.0, shift_hours=8.5,
    patterns=(
        P("read", "crm", "customer_record", ("name", "id_number", "birth_date"), (1, 5), 0.35,
          ("nationality",), "customer", "customers"),
        P("search", "crm", "customer_record", ("name", "id_number", "nationality"), (10, 200), 0.25,
          (), "", "customers"),
        P("read", "reporting", "report", ("customer_id", "nationality"), (100, 2000), 0.20,
          (), "", "rpt-access-review"),
        P("read", "booking", "reservation", ("name", "passport_number", "travel_itinerary"), (1, 3), 0.15,
          (), "reservation", "reservations"),
        P("export", "reporting", "report", ("customer_id", "name", "id_number"), (50, 500), 0.05,
          (), "", "rpt-access-review"),
    ),
)

# Share of the workforce per role; customer service takes what is left.
ROLE_SHARES: tuple[tuple[RoleProfile, float, int], ...] = (
    # profile, share, minimum head count (the scenarios need a cast)
    (STORE_STAFF, 0.20, 1),
    (SALES, 0.10, 2),
    (DATA_ANALYST, 0.07, 1),
    (MARKETING, 0.05, 1),
    (FINANCE, 0.07, 1),
    (IT_SUPPORT, 0.05, 1),
    (COMPLIANCE, 0.03, 1),
)
CUSTOMER_SERVICE_MINIMUM = 4  # three day-shift agents for scenarios, one night-shift worker
SHIFT_WORKER_SHARE = 0.3  # of customer service: evening, night and weekend cover

# Customer-service rosters: (name, local start hour, hours, intensity).
# Nights are quieter than evenings; the rotating day shift covers weekends.
SHIFT_ROSTERS = (
    ("night", 0.0, 8.0, 0.55),
    ("evening", 16.0, 8.0, 0.85),
    ("rotating_day", 9.0, 8.0, 1.0),
)
STORE_ROSTERS = (("early", 10.0, 6.5, 1.0), ("late", 15.5, 6.5, 1.0))
