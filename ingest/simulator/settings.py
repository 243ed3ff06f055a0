"""Settings of one simulation run, validated when constructed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

# Bounds keep runs meaningful: the organisation needs a minimum cast (every
# role, two salespeople, three day-shift agents) and the catalogues of partner
# and service templates are finite.
MIN_EMPLOYEES = 20
MAX_EMPLOYEES = 200_000
MAX_DAYS = 366
MAX_PARTNER_ORGS = 20
MIN_SERVICE_ACCOUNTS = 4  # billing, nightly ETL, nightly backup, crm-sync
MAX_SERVICE_ACCOUNTS = 9  # the four above plus every optional service
MAX_DISORDER_SECONDS = 3600


def _require_int(name: str, value: object, low: int, high: int) -> None:
    # bool is a subclass of int; True employees is a bug, not a count.
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")


@dataclass(frozen=True)
class SimulationSettings:
    """What to simulate: the seed, the span and the size of the organisation."""

    seed: int = 7
    days: int = 30
    start: datetime = datetime(2026, 10, 5, tzinfo=UTC)  # a Monday, 00:00 UTC
    employees: int = 240  # scale knob: events grow about linearly with it
    partner_orgs: int = 5
    service_accounts: int = 6
    scenarios: bool = True  # inject the insider scenarios
    max_disorder_seconds: int = 60  # shipping jitter: how far out of timestamp order events may leave

    def __post_init__(self) -> None:
        _require_int("seed", self.seed, -(2**63), 2**63 - 1)
        _require_int("days", self.days, 1, MAX_DAYS)
        _require_int("employees", self.employees, MIN_EMPLOYEES, MAX_EMPLOYEES)
        _require_int("partner_orgs", self.partner_orgs, 1, MAX_PARTNER_ORGS)
        _require_int("service_accounts", self.service_accounts, MIN_SERVICE_ACCOUNTS, MAX_SERVICE_ACCOUNTS)
        _require_int("max_disorder_seconds", self.max_disorder_seconds, 0, MAX_DISORDER_SECONDS)
        if not isinstance(self.scenarios, bool):
            raise ValueError(f"scenarios must be a bool, got {self.scenarios!r}")
        if not isinstance(self.start, datetime):
            raise ValueError(f"start must be a datetime, got {self.start!r}")
        if self.start.tzinfo is None or self.start.utcoffset() is None:
            raise ValueError("start must be timezone-aware (e.g. tzinfo=timezone.utc); a naive time is ambiguous")
