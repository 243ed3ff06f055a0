"""The simulated company: employees, partner agents and service accounts.

Built once per simulation from its own random stream, so the same seed and
settings give the same people with the same habits.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

from .fields import CUSTOMER_POPULATION
from .partners import PARTNER_TEMPLATES, PartnerTemplate
from .randomness import lognormal_multiplier, stream_rng
from .roles import (
    CUSTOMER_SERVICE,
    CUSTOMER_SERVICE_MINIMUM,
    ROLE_SHARES,
    SHIFT_ROSTERS,
    SHIFT_WORKER_SHARE,
    STORE_ROSTERS,
    RoleProfile,
)
from .services import OPTIONAL_SERVICES, REQUIRED_SERVICES, ServiceProfile
from .settings import SimulationSettings
from .timeline import Timeline

Profile = RoleProfile | PartnerTemplate | ServiceProfile

SURNAMES = ("Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou",
            "Xu", "Sun", "Ma", "Zhu", "Hu", "Guo", "He", "Lin", "Luo", "Gao")
GIVEN_NAMES = ("Wei", "Fang", "Na", "Min", "Jing", "Lei", "Qiang", "Jun", "Yan", "Jie",
               "Tao", "Ming", "Chao", "Xiuying", "Hui", "Lina", "Yong", "Xin", "Yu", "Hao")
BROWSERS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/129.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/129.0 Safari/537.36 Edg/129.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.6 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:131.0) Gecko/20100101 Firefox/131.0",
)
STORE_SIZE = 5  # staff per store; each store serves its own slice of customers
CUSTOMERS_PER_PARTNER_ORG = 40_000
NEW_HIRE_ROLES = frozenset({"customer_service", "store_staff", "sales", "data_analyst", "marketing", "finance",
                            "it_support"})
HIRE_AFTER_DAY = 9  # new hires appear after detectors have about a week of history
MIN_DAYS_FOR_NEW_HIRES = 12
MIN_SILENCE_DAYS = 15  # whole local days without an event: more than the 14 a dormancy detector waits


@dataclass(frozen=True)
class Schedule:
    """When a person works: fixed weekdays, or a five-on/two-off rotating roster."""

    start_hour: float  # local
    hours: float
    weekdays: frozenset[int] | None = None  # None: rotating roster
    roster_phase: int = 0
    lunch_break: bool = False
    intensity: float = 1.0  # night shifts are quieter
    start_jitter: float = 0.25
    absence_rate: float = 0.03  # sick days, leave, training
    latest_end: float = 24.0  # shifts never run into the next local day

    def works(self, day: int, weekday: int) -> bool:
        if self.weekdays is not None:
            return weekday in self.weekdays
        return (day + self.roster_phase) % 7 < 5

    def shift(self, rng: random.Random) -> tuple[float, float] | None:
        """Local start and end hour of today's shift, or None when absent."""
        if rng.random() < self.absence_rate:
            return None
        start = max(0.0, self.start_hour + rng.gauss(0.0, self.start_jitter))
        end = min(self.latest_end, start + self.hours + rng.gauss(0.0, self.start_jitter))
        return start, max(end, start + 1.0)


@dataclass(frozen=True)
class Actor:
    index: int  # position in the organisation; keys the actor's random streams
    actor_id: str
    kind: str  # employee, partner or service
    role: str
    department: str | None
    organization: str | None
    name: str | None
    profile: Profile
    schedule: Schedule | None  # None for service accounts: their profile says when they run
    volume: float  # individual volume multiplier
    ips: tuple[str, ...]  # first: usual address; second, if any: VPN
    user_agent: str
    customers: tuple[int, int]  # positions [low, high) in the shuffled customer population (see customers.py)
    shift_worker: bool = False
    first_day: int = 0  # new hires start later
    leave: tuple[int, int] | None = None  # [first day away, day back)
    store: str | None = None
    payload: dict = field(init=False, compare=False, repr=False)  # the event's "actor" object

    def __post_init__(self) -> None:
        payload: dict = {"id": self.actor_id, "kind": self.kind}
        if self.name:
            payload["name"] = self.name
        payload["role"] = self.role
        if self.department:
            payload["department"] = self.department
        if self.organization:
            payload["organization"] = self.organization
        object.__setattr__(self, "payload", payload)

    def available(self, day: int) -> bool:
        if day < self.first_day:
            return False
        return self.leave is None or not self.leave[0] <= day < self.leave[1]


@dataclass(frozen=True)
class Organisation:
    actors: tuple[Actor, ...]
    cast: dict[str, Actor]  # scenario kind -> the actor who would play it
    analyst_lead: Actor  # runs the weekly export
    finance_lead: Actor  # runs the month-end report
    new_hires: tuple[Actor, ...]
    dormant_resume_day: int | None  # day the dormant account comes back, if the span allows one

    def by_id(self, actor_id: str) -> Actor:
        for actor in self.actors:
            if actor.actor_id == actor_id:
                return actor
        raise KeyError(actor_id)


def _role_plan(employees: int, rng: random.Random) -> list[RoleProfile]:
    roles: list[RoleProfile] = []
    for profile, share, minimum in ROLE_SHARES:
        roles += [profile] * max(minimum, int(share * employees))
    service_agents = employees - len(roles)
    if service_agents < CUSTOMER_SERVICE_MINIMUM:  # unreachable with MIN_EMPLOYEES; guards future edits
        raise ValueError(f"employees={employees} leaves too few customer service agents")
    roles += [CUSTOMER_SERVICE] * service_agents
    rng.shuffle(roles)  # ids do not reveal roles
    return roles


def _employees(settings: SimulationSettings, rng: random.Random) -> list[Actor]:
    roles = _role_plan(settings.employees, rng)
    service_desk = [i for i, p in enumerate(roles) if p is CUSTOMER_SERVICE]
    shift_count = max(1, round(SHIFT_WORKER_SHARE * len(service_desk)))
    rosters = {i: SHIFT_ROSTERS[n % len(SHIFT_ROSTERS)]
               for n, i in enumerate(sorted(rng.sample(service_desk, shift_count)))}
    store_staff = [i for i, p in enumerate(roles) if p.role == "store_staff"]
    stores = max(1, len(store_staff) // STORE_SIZE)
    store_of = {i: n % stores for n, i in enumerate(store_staff)}
    actors = []
    for i, profile in enumerate(roles):
        octet3, octet4 = (i // 250) % 250, i % 250 + 2
        ips = [f"10.{20 + i // 62_500}.{octet3}.{octet4}"]
        if rng.random() < 0.6:  # has a VPN address for home days
            ips.append(f"10.8.{octet3}.{octet4}")
        customers = (0, CUSTOMER_POPULATION)
        store = None
        if i in rosters:
            _, start, hours, intensity = rosters[i]
            schedule = Schedule(start, hours, roster_phase=rng.randrange(7), intensity=intensity,
                                start_jitter=0.1, absence_rate=0.02)
        elif profile.office:
            schedule = Schedule(profile.start_hour + rng.gauss(0.0, 0.4), profile.shift_hours, frozenset(range(5)),
                                lunch_break=True)
        else:  # store staff: retail opening hours, weekends included
            store_no = store_of[i]
            store = f"SH-{store_no + 1:03d}"
            width = CUSTOMER_POPULATION // stores
            customers = (store_no * width, (store_no + 1) * width)
            _, start, hours, _ = STORE_ROSTERS[i % len(STORE_ROSTERS)]
            schedule = Schedule(start, hours, roster_phase=rng.randrange(7), start_jitter=0.1, latest_end=22.5)
        actors.append(Actor(
            index=i, actor_id=f"emp-{i + 1:04d}", kind="employee", role=profile.role,
            department=profile.department, organization=None,
            name=f"{rng.choice(SURNAMES)} {rng.choice(GIVEN_NAMES)}", profile=profile, schedule=schedule,
            volume=lognormal_multiplier(rng, 0.35), ips=tuple(ips), user_agent=rng.choice(BROWSERS),
            customers=customers, shift_worker=i in rosters, store=store))
    return actors


def _partners(settings: SimulationSettings, rng: random.Random, first_index: int) -> list[Actor]:
    actors: list[Actor] = []
    for org in range(settings.partner_orgs):
        template = PARTNER_TEMPLATES[org % len(PARTNER_TEMPLATES)]
        slug = template.slug if org < len(PARTNER_TEMPLATES) else f"{template.slug}-{org // len(PARTNER_TEMPLATES) + 1}"
        ips = [f"203.0.113.{20 + 8 * org + n}" for n in range(rng.randint(1, 2))]
        if rng.random() < 0.4:  # a second site behind another provider
            ips.append(f"198.51.100.{100 + 4 * org}")  # never .77: that one is the attacker's
        low = (org * CUSTOMERS_PER_PARTNER_ORG) % CUSTOMER_POPULATION
        span = template.closes - template.opens
        for agent in range(rng.randint(*template.agents)):
            start = template.opens + rng.uniform(0.0, max(0.0, span - 8.0))
            actors.append(Actor(
                index=first_index + len(actors), actor_id=f"ptn-{slug}-{agent + 1:02d}", kind="partner",
                role=template.role, department=None, organization=slug,
                name=f"{rng.choice(SURNAMES)} {rng.choice(GIVEN_NAMES)}", profile=template,
                schedule=Schedule(start, min(8.0, span), template.weekdays, absence_rate=0.05,
                                  latest_end=template.closes),
                volume=lognormal_multiplier(rng, 0.3), ips=(rng.choice(ips),), user_agent=rng.choice(BROWSERS),
                customers=(low, low + CUSTOMERS_PER_PARTNER_ORG)))
    return actors


def _services(settings: SimulationSettings, first_index: int) -> list[Actor]:
    profiles = REQUIRED_SERVICES + OPTIONAL_SERVICES[: settings.service_accounts - len(REQUIRED_SERVICES)]
    return [Actor(index=first_index + n, actor_id=p.actor_id, kind="service", role=p.role, department="platform",
                  organization=None, name=None, profile=p, schedule=None, volume=1.0, ips=(f"10.0.5.{11 + n}",),
                  user_agent=p.user_agent, customers=(0, CUSTOMER_POPULATION))
            for n, p in enumerate(profiles)]


def _third_weekday_after(timeline: Timeline) -> int:
    """The day after the dormant actor's third working day: when the silence starts."""
    seen = 0
    for day in range(timeline.local_days):
        if timeline.is_weekday(day):
            seen += 1
            if seen == 3:
                return day + 1
    return timeline.local_days


def _dormant_resume_day(timeline: Timeline) -> int | None:
    _, last = timeline.scenario_window()
    silence_from = _third_weekday_after(timeline)
    target = max(timeline.scenario_day(0.5), silence_from + MIN_SILENCE_DAYS)
    for day in range(target, last + 1):
        if timeline.is_weekday(day):
            return day
    return None


def build_organisation(settings: SimulationSettings, timeline: Timeline) -> Organisation:
    rng = stream_rng(settings.seed, "organisation")
    employees = _employees(settings, rng)
    partners = _partners(settings, rng, len(employees))
    services = _services(settings, len(employees) + len(partners))

    def first_of(role: str) -> Actor:
        return next(a for a in employees if a.role == role)

    analyst_lead, finance_lead = first_of("data_analyst"), first_of("finance")
    sales = [a for a in employees if a.role == "sales"]
    day_desk = [a for a in employees if a.role == "customer_service" and not a.shift_worker]
    exfiltrator, dormant = rng.sample(sales, 2)
    rampant, night_owl, prober = rng.sample(day_desk, 3)
    cast = {
        "bulk_exfiltration": exfiltrator,
        "slow_ramp": rampant,
        "partner_overreach": rng.choice(partners),
        "off_hours_browsing": night_owl,
        "compromised_service_account": next(s for s in services if s.role == "crm_sync"),
        "dormant_account": dormant,
        "denied_probing": prober,
    }

    changed: dict[int, Actor] = {}
    if timeline.days >= MIN_DAYS_FOR_NEW_HIRES:
        busy = {a.index for a in cast.values()} | {analyst_lead.index, finance_lead.index}
        candidates = [a for a in employees
                      if a.role in NEW_HIRE_ROLES and not a.shift_worker and a.index not in busy]
        count = max(1, min(rng.randint(3, 5), settings.employees // 30))
        for hire in rng.sample(candidates, count):
            day = rng.randint(HIRE_AFTER_DAY, timeline.days - 3)
            schedule = hire.schedule
            assert schedule is not None, "employees always have a schedule"
            while not schedule.works(day, timeline.weekday(day)):  # start on a day they work
                day += 1
            changed[hire.index] = replace(hire, first_day=day)

    resume = _dormant_resume_day(timeline) if timeline.days >= 20 else None
    if resume is not None:
        # With scenarios the account's first act on return is the bulk export;
        # its owner's ordinary work only starts the day after.
        back = resume + 1 if settings.scenarios else resume
        changed[dormant.index] = replace(dormant, leave=(_third_weekday_after(timeline), back))

    employees = [changed.get(a.index, a) for a in employees]
    cast = {kind: changed.get(a.index, a) if a.kind == "employee" else a for kind, a in cast.items()}
    return Organisation(
        actors=tuple(employees + partners + services), cast=cast, analyst_lead=analyst_lead,
        finance_lead=finance_lead, new_hires=tuple(changed[i] for i in sorted(changed) if changed[i].first_day),
        dormant_resume_day=resume)
