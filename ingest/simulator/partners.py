"""Partner companies: what each contract lets their agents touch, and when they work."""

from __future__ import annotations

from dataclasses import dataclass

from .fields import AccessPattern as P

ALL_WEEK = frozenset(range(7))
MON_FRI = frozenset(range(5))
MON_SAT = frozenset(range(6))


@dataclass(frozen=True)
class PartnerTemplate:
    slug: str
    role: str
    weekdays: frozenset[int]
    opens: float  # local hour
    closes: float
    agents: tuple[int, int]  # head count range
    events_per_shift: float
    patterns: tuple[P, ...]
    customer_facing: bool = False

    def scope_fields(self) -> frozenset[str]:
        """The contract scope: fields the agents normally touch."""
        return frozenset(f for p in self.patterns for f in p.fields + p.optional_fields)

    def scope_resources(self) -> frozenset[tuple[str, str]]:
        return frozenset((p.system, p.resource_type) for p in self.patterns)


PARTNER_TEMPLATES: tuple[PartnerTemplate, ...] = (
    PartnerTemplate(
        "blue-sky-travel", "booking_agent", ALL_WEEK, 8.0, 22.0, (2, 5), 45, customer_facing=True, patterns=(
            P("read", "booking", "reservation", ("name", "passport_number", "phone", "travel_itinerary"), (1, 2),
              0.45, (), "reservation", "reservations"),
            P("create", "booking", "reservation", ("name", "passport_number", "phone", "travel_itinerary"), (1, 1),
              0.20, (), "reservation"),
            P("update", "booking", "reservation", ("travel_itinerary",), (1, 1), 0.15, (), "reservation"),
            P("read", "crm", "customer_record", ("name", "phone", "email"), (1, 1), 0.15, (), "customer"),
            P("export", "booking", "reservation", ("name", "passport_number", "travel_itinerary"), (20, 200), 0.05,
              (), "", "reservations"),
        )),
    PartnerTemplate(
        "swift-logistics", "logistics", MON_SAT, 7.0, 20.0, (2, 4), 35, patterns=(
            P("read", "pos", "order", ("name", "address", "phone"), (1, 3), 0.60, (), "order", "orders"),
            P("update", "pos", "order", ("address",), (1, 1), 0.20, (), "order"),
            P("search", "pos", "order", ("name", "address"), (10, 80), 0.15, (), "", "orders"),
            P("print", "pos", "order", ("name", "address", "phone"), (1, 5), 0.05, (), "order", "orders"),
        )),
    PartnerTemplate(
        "lotus-hotels", "booking_agent", ALL_WEEK, 7.0, 23.0, (2, 4), 30, customer_facing=True, patterns=(
            P("read", "booking", "reservation", ("name", "travel_itinerary", "dietary_requirements", "phone"),
              (1, 2), 0.60, (), "reservation", "reservations"),
            P("update", "booking", "reservation", ("travel_itinerary",), (1, 1), 0.25, (), "reservation"),
            P("read", "loyalty", "account", ("membership_tier",), (1, 1), 0.15, (), "customer"),
        )),
    PartnerTemplate(
        "pacific-insure", "insurance_agent", MON_FRI, 9.0, 18.0, (1, 3), 25, patterns=(
            P("read", "booking", "reservation", ("name", "birth_date", "passport_number", "travel_itinerary"),
              (1, 2), 0.70, (), "reservation", "reservations"),
            P("search", "booking", "reservation", ("name", "birth_date", "travel_itinerary"), (5, 40), 0.30,
              (), "", "reservations"),
        )),
    PartnerTemplate(
        "redpoint-rewards", "loyalty_partner", MON_FRI, 9.0, 18.0, (1, 3), 30, patterns=(
            P("read", "loyalty", "account", ("customer_id", "loyalty_points", "membership_tier"), (1, 5), 0.50,
              (), "customer", "accounts"),
            P("update", "loyalty", "account", ("loyalty_points",), (1, 1), 0.35, (), "customer"),
            P("search", "loyalty", "account", ("customer_id", "email", "membership_tier"), (10, 100), 0.15,
              (), "", "accounts"),
        )),
)

# What an over-reaching agent reaches for: fields and systems no contract grants.
OVERREACH_PATTERNS: tuple[P, ...] = (
    P("read", "crm", "customer_record", ("name", "id_number", "bank_account", "income"), (1, 3), 0.45,
      ("credit_score",), "customer", "customers"),
    P("search", "billing", "invoice", ("name", "bank_account", "payment_card"), (5, 40), 0.30, (), "", "invoices"),
    P("read", "crm", "customer_record", ("name", "phone", "credit_score", "income"), (1, 1), 0.25, (), "customer"),
)
