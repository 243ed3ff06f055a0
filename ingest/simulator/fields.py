"""Customer data fields and the shape of one kind of access.

Field names are those of the contract's data-classes.md, plus a few that real
systems carry and the classification leaves unclassified.
"""

from __future__ import annotations

import math
from bisect import bisect
from dataclasses import dataclass
from functools import cached_property
from itertools import accumulate, combinations

IDENTITY = ("name", "gender", "nationality", "customer_id")
CONTACT = ("phone", "email", "address", "wechat_id")
GOVERNMENT_ID = ("id_number", "passport_number", "birth_date")
FINANCIAL = ("bank_account", "payment_card", "credit_score", "income")
TRANSACTIONS = ("purchase_history", "booking_history", "travel_itinerary", "loyalty_points")
SPECIAL = ("health_notes", "dietary_requirements", "religion")
UNCLASSIFIED = ("membership_tier", "preferred_language")

HIGH_SENSITIVITY = frozenset(GOVERNMENT_ID + FINANCIAL + SPECIAL)

CUSTOMER_POPULATION = 200_000  # customers c-000001 ... c-200000
MAX_CUSTOMER_IDS = 50  # larger accesses carry a sample of this many ids

# Systems that stamp China local time (+08:00); the rest stamp UTC (Z).
LOCAL_TIME_SYSTEMS = frozenset({"crm", "pos", "loyalty"})

# What the nightly backup downloads: every table of every system, all fields.
SYSTEM_TABLES: tuple[tuple[str, str, str, int, tuple[str, ...]], ...] = (
    # system, resource type, resource id, rows at the start, fields
    ("crm", "customer_record", "customers", CUSTOMER_POPULATION,
     IDENTITY + CONTACT + ("id_number", "birth_date", "credit_score", "income") + UNCLASSIFIED),
    ("booking", "reservation", "reservations", 520_000,
     ("customer_id", "name", "phone", "passport_number", "birth_date", "travel_itinerary",
      "booking_history", "dietary_requirements", "health_notes")),
    ("pos", "order", "orders", 1_300_000, ("customer_id", "name", "address", "payment_card", "purchase_history")),
    ("billing", "invoice", "invoices", 900_000,
     ("customer_id", "name", "bank_account", "payment_card", "purchase_history")),
    ("loyalty", "account", "accounts", 160_000, ("customer_id", "email", "loyalty_points", "membership_tier")),
)


@dataclass(frozen=True)
class AccessPattern:
    """One kind of thing an actor does, e.g. "read one CRM record's contact fields"."""

    action: str
    system: str
    resource_type: str
    fields: tuple[str, ...]
    records: tuple[int, int] = (1, 1)  # inclusive; drawn log-uniformly so small counts dominate
    weight: float = 1.0
    optional_fields: tuple[str, ...] = ()  # each added with probability OPTIONAL_FIELD_RATE
    record_id: str = ""  # "customer", "reservation", "order" or "invoice": names a single record read
    collection: str = ""  # resource id when many records are touched

    @cached_property
    def _field_variants(self) -> tuple[list[float], list[tuple[str, ...]]]:
        """Every subset of the optional fields with its probability, as a cumulative table."""
        variants, chances = [], []
        count = len(self.optional_fields)
        for size in range(count + 1):
            chance = OPTIONAL_FIELD_RATE**size * (1 - OPTIONAL_FIELD_RATE) ** (count - size)
            for chosen in combinations(self.optional_fields, size):
                variants.append(self.fields + chosen)
                chances.append(chance)
        cumulative = list(accumulate(chances))
        cumulative[-1] = math.inf  # the chances sum to 1 up to rounding; no draw may fall off the end
        return cumulative, variants

    def draw_fields(self, chance: float) -> list[str]:
        """The fields of one access (chance in [0, 1)): each optional field with probability OPTIONAL_FIELD_RATE."""
        cumulative, variants = self._field_variants
        return list(variants[bisect(cumulative, chance)])

    def mean_records(self) -> float:
        low, high = self.records
        if low == high:
            return float(low)
        # mean of floor(exp(U(log low, log(high+1)))), close enough for planning
        return (high + 1 - low) / math.log((high + 1) / low) - 0.5


OPTIONAL_FIELD_RATE = 0.3


def mean_records(patterns: tuple[AccessPattern, ...]) -> float:
    total = sum(p.weight for p in patterns)
    return sum(p.weight * p.mean_records() for p in patterns) / total
