"""The configuration, as validated from ``configs/default.toml`` and its overrides.

Each detector validates its own section (``detectors.<name>``) with the
settings model it declares, so adding a detector never touches this file;
see ``configs.loader``.
"""

from __future__ import annotations

import math
import os
import re
import socket
import ssl
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from importlib import resources
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    PrivateAttr,
    StrictBool,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from models.alert import Severity
from models.event import ActorKind
from models.settings_base import SettingsModel

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

# the pydantic error type of a rule across keys; ``configs.loader`` shows the key at fault, not the section
CROSS_FIELD = "config_cross_field"


def cross_field_error(keys: Sequence[str], expectation: str) -> PydanticCustomError:
    """A rule that ties ``keys`` (dotted, relative to the section; most likely culprit first) is broken.

    The error line then names one of those keys with its own value and origin, preferring one
    the operator set, instead of printing the whole section.  ``expectation`` must not hold
    braces: pydantic formats it as a template.
    """
    return PydanticCustomError(CROSS_FIELD, expectation, {"keys": tuple(keys)})


def parse_duration(value: Any) -> float:
    """``"90s"``, ``"10m"``, ``"1h"``, ``"28d"`` or a number of seconds, as seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration such as '10m', '1h' or '28d'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        raise ValueError("a duration such as '10m', '1h' or '28d'")
    if not math.isfinite(seconds):  # inf, nan, or digits enough to overflow a float
        raise ValueError("a finite duration such as '10m', '1h' or '28d'")
    if seconds < 0:
        raise ValueError("a duration that is not negative")
    return seconds


Seconds = Annotated[float, BeforeValidator(parse_duration)]


def _readable_file(path: Path) -> Path:
    """A file an adapter reads only when it connects (a CA, a certificate, a key, a mounted secret), checked now:
    then, a missing one failed as retries that looked like a network fault, or in a library's words naming no key.

    Opened and closed, not read: a secret's content is read where it is used, and never shown.
    """
    if path.is_dir():
        raise ValueError("a readable file, not a directory")
    if not path.is_file():  # a dangling symbolic link too (a secret mount not there)
        raise ValueError("a readable file: there is none at that path")
    try:
        os.close(os.open(path, os.O_RDONLY))
    except OSError as exc:
        raise ValueError(f"a readable file: {(exc.strerror or 'cannot open it').lower()}") from None
    return path


ReadableFile = Annotated[Path, AfterValidator(_readable_file)]


def _ca_certificates(path: Path) -> Path:
    """A CA file loaded now as a client loads it: one that is not PEM, or holds no certificate, failed only when
    the client connected (Elasticsearch's and SMTP's; Kafka's when its consumer was made), naming no key."""
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=path)
    except ssl.SSLError as exc:
        # OpenSSL's reason, "NO_CERTIFICATE_OR_CRL_FOUND"; a cut or garbled PEM block has none ("PEM lib")
        said = exc.reason or "a PEM block that does not read as a certificate"
        raise ValueError(f"a file of CA certificates in PEM ({said})") from None
    return path


CaCertificates = Annotated[ReadableFile, AfterValidator(_ca_certificates)]


def appendable_file(path: Path) -> Path:
    """A file pages are appended to, checked now: then, a parent that is a file failed at the first page as a
    traceback (``FileExistsError`` from making its directory).  Directories not there yet are made then."""
    if path.is_dir():
        raise ValueError("a file to append pages to, not a directory")
    if path.exists() and not path.is_file():  # a FIFO or a device: a page written there is not kept
        raise ValueError("a regular file to append pages to")
    blocking = blocking_ancestor(path.parent)
    if blocking is not None:
        raise ValueError(f"a file path whose parents are directories: {blocking} is not a directory")
    return path


def blocking_ancestor(path: Path) -> Path | None:
    """The nearest of ``path`` and its parents that is there, when it is no directory: ``mkdir -p`` fails on it."""
    for ancestor in (path, *path.parents):
        if ancestor.exists():  # the ones below it are made when needed
            return None if ancestor.is_dir() else ancestor
    return None


def _network(value: Any) -> IPv4Network | IPv6Network:
    """An IP network from its text; pydantic's own type would also take 12 as 0.0.0.12/32."""
    if isinstance(value, IPv4Network | IPv6Network):  # built in code, like the defaults
        return value
    if isinstance(value, str):
        try:
            return ip_network(value.strip())  # strict: '10.0.0.1/8' (host bits set) is a mistake
        except ValueError:
            pass
    raise ValueError("an IP network written as a string, such as '10.0.0.0/8' or 'fc00::/7'")


Network = Annotated[IPv4Network | IPv6Network, PlainValidator(_network)]

# host files and pseudo-zones that are not an organisation's zone: what they mean depends on the host
_NOT_ORGANISATION_ZONES = frozenset({"localtime", "posixrules", "Factory"})


@cache
def iana_zone_names() -> frozenset[str]:
    """The zone and link names of the IANA database: the tzdata package's list, the same on every host.

    Without that package, the host's database, less its extras (``posix/``, ``right/``, ``localtime``).
    """
    try:
        names: set[str] = set(resources.files("tzdata").joinpath("zones").read_text().split())
    except (ModuleNotFoundError, OSError):
        names = available_timezones()
    return frozenset(
        name for name in names if name not in _NOT_ORGANISATION_ZONES and not name.startswith(("posix/", "right/"))
    )


# Zone names that are abbreviations of a fixed offset, where the zone most people mean by them keeps daylight
# saving time (HST is left: Hawaii keeps none); with the zone meant, and the name to write for the fixed offset
_FIXED_ABBREVIATIONS = {
    "EST": ("-05:00", "America/New_York", "Etc/GMT+5"),
    "MST": ("-07:00", "America/Denver", "America/Phoenix"),  # Arizona's time is MST all year
}


# RFC 1123 host names: dot-separated labels of letters, digits and inner hyphens
_HOST_NAME = re.compile(r"(?=.{1,253}\.?$)(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?")


def _listen_address(value: Any, family: socket.AddressFamily, expectation: str) -> str:
    """An address a server can bind: an IP literal of ``family``, or a host name that resolves to one.

    Resolving here (only names; the literal defaults cost nothing) moves the failure from the
    server's start, where it is logged and ingestion goes on, to the load of the configuration.
    """
    if not isinstance(value, str):
        raise ValueError(expectation)
    try:
        literal = ip_address(value)
    except ValueError:
        literal = None
    if literal is not None:
        if family == socket.AF_INET and literal.version != 4:
            raise ValueError(expectation)
        return value
    if not _HOST_NAME.fullmatch(value):
        raise ValueError(expectation)
    try:
        socket.getaddrinfo(value, None, family, socket.SOCK_STREAM)
    except (OSError, UnicodeError):  # gaierror is an OSError
        raise ValueError(f"{expectation}; {value!r} does not resolve here") from None
    return value


def _ipv4_listen_address(value: Any) -> str:
    # ingest.metrics serves with http.server, whose sockets are IPv4 only
    expectation = "an IPv4 address such as '127.0.0.1' or '0.0.0.0', or a host name that resolves to one"
    return _listen_address(value, socket.AF_INET, expectation)


def _any_listen_address(value: Any) -> str:
    expectation = "an IP address such as '127.0.0.1', '0.0.0.0' or '::', or a host name that resolves to one"
    return _listen_address(value, socket.AF_UNSPEC, expectation)


IPv4ListenAddress = Annotated[str, PlainValidator(_ipv4_listen_address)]
ListenAddress = Annotated[str, PlainValidator(_any_listen_address)]


class Section(SettingsModel):
    """A configuration table: unknown keys are mistakes, not extensions; inf and nan are never a setting."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class DataClass(Section):
    sensitivity: Literal["low", "medium", "high"]
    fields: list[str]
    # how an answer to a person names the class ("contact details"); None: its name in words ("government id")
    label: str | None = None


class Classification(Section):
    """Which customer data fields belong to which class (``data-classes.md``)."""

    classes: dict[str, DataClass]
    # the class of a field no class names; it is still counted
    unclassified_sensitivity: Literal["low", "medium", "high"] = "low"
    # how an answer to a person names a field, where its name in words would not do ("WeChat ID" for wechat_id)
    field_labels: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _each_field_once(self) -> Classification:
        seen: dict[str, str] = {}
        clashes: list[tuple[str, str, str]] = []  # (field, class listing it again, class listing it first)
        for name, data_class in self.classes.items():
            for field in data_class.fields:
                if field in seen:
                    clashes.append((field, name, seen[field]))
                else:
                    seen[field] = name
        if not clashes:
            return self
        field, name, first = clashes[0]
        if name == first:
            told = f"each field listed once: {field!r} is listed twice in {name!r}"
        else:
            # the defaults' classes are merged with the operator's: a field moved to a class of one's own must
            # leave the default's, whose fields are set like any value (fields = [] empties it)
            told = (
                f"each field in one class: {field!r} is also in {first!r}; list it in one of them (a class of"
                f" configs/default.toml is changed by setting its fields, fields = [] empties it)"
            )
        if len(clashes) > 1:
            more = ", ".join(repr(clash[0]) for clash in clashes[1:4]) + (", ..." if len(clashes) > 4 else "")
            told += f" (and {len(clashes) - 1} more such field{'s' if len(clashes) > 2 else ''}: {more})"
        keys = [f"classes.{name}.fields", f"classes.{first}.fields"]
        raise cross_field_error(keys, told)


PRIVATE_NETWORKS = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "fc00::/7", "::1/128")


class Organisation(Section):
    timezone: str = "UTC"
    business_hours_start: Annotated[int, Field(ge=0, le=23)] = 8
    business_hours_end: Annotated[int, Field(ge=1, le=24)] = 20
    business_days: list[Annotated[int, Field(ge=0, le=6)]] = [0, 1, 2, 3, 4]  # Monday = 0
    # the organisation's own address ranges: an address outside them is external
    # (built as networks: pydantic does not validate a default)
    internal_networks: list[Network] = [ip_network(text) for text in PRIVATE_NETWORKS]

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        fixed = _FIXED_ABBREVIATIONS.get(value)
        if fixed is not None:  # what an American user types for their zone, and gets an hour wrong half the year
            offset, meant, fixed_name = fixed
            raise ValueError(
                f"an IANA time zone such as {meant!r}: {value!r} is a fixed UTC{offset} offset that never keeps"
                f" daylight saving time (write {fixed_name!r} if that is meant)"
            )
        # a host file such as 'localtime' would make day windows depend on the machine
        try:
            if value not in iana_zone_names():
                raise ZoneInfoNotFoundError(value)
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("an IANA time zone such as 'Asia/Shanghai' or 'UTC'") from None
        return value

    @model_validator(mode="after")
    def _hours_in_order(self) -> Organisation:
        # the detectors test start <= hour < end: hours that wrap past midnight would be no business hours at all
        if self.business_hours_start >= self.business_hours_end:
            raise cross_field_error(
                ["business_hours_start", "business_hours_end"],
                f"business_hours_start before business_hours_end, here {self.business_hours_start}"
                f" and {self.business_hours_end} (business hours cannot run past midnight)",
            )
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class Windows(Section):
    short: Seconds = 3600.0
    long: Seconds = 86400.0
    allowed_lateness: Seconds = 600.0  # the watermark trails the newest event time by this much

    @model_validator(mode="after")
    def _nested(self) -> Windows:
        if self.short <= 0:
            raise cross_field_error(["short"], "a duration above zero")
        if 86400 % self.short and self.short % 86400:
            # windows align to local hours and days
            raise cross_field_error(["short"], "a window that divides a day or is whole days, such as 10m, 1h or 1d")
        if self.long % self.short:
            raise cross_field_error(
                ["long", "short"],
                f"windows.long a whole multiple of windows.short, here {self.long:g}s and {self.short:g}s",
            )
        return self


class Baselines(Section):
    system_warmup: Seconds = 7 * 86400.0  # no alerts before a week of event-time history: weekly rhythms
    actor_warmup_days: Annotated[int, Field(ge=1)] = 5  # active days before an actor's own baseline counts
    half_life: Seconds = 14 * 86400.0  # how fast a baseline forgets
    peer_group: list[Literal["kind", "role", "department", "organization"]] = ["kind", "role", "organization"]
    max_known_items: Annotated[int, Field(ge=8)] = 256  # resources/addresses remembered per actor


# The longest line a schema-valid event can be without ``extra`` (whose size the schema does not bound), in
# bytes: every bounded string at its maxLength, each character outside the BMP written as an escaped surrogate
# pair ("\ud83d\ude00", 12 bytes, the most JSON spends on one character; Python's json.dumps writes them so),
# keys and enum values (the longest) escaped too ("\u0065", 6 bytes a character), arrays at maxItems, integers
# at their maximum (``bytes``, unbounded, at 2**64 - 1), the timestamp to the nanosecond with an offset, and
# json.dumps's separators (", ", ": ").  Whitespace, a longer fraction of a second or more digits of ``bytes``
# are unbounded too: the default limit leaves a margin for them.  ``tests/test_ingest_lines.py`` builds this
# event from the schema's own limits and checks the figure.
LARGEST_EVENT_LINE = 16_224_561


class Ingest(Section):
    batch_lines: Annotated[int, Field(ge=1, le=1_000_000)] = 5000
    # bounds what one line may hold in memory on hostile input; a longer line is dead-lettered unread
    max_line_bytes: int = 20 * 1_048_576
    max_future_skew: Seconds = 86400.0  # an event further in the future than this is dead-lettered
    max_past_age: Seconds = 10 * 365 * 86400.0  # ... and further in the past than this
    checkpoint_events: Annotated[int, Field(ge=1)] = 250_000  # detector state saved at least this often
    # a replay runs the detectors in a process of their own (the second core) once this many
    # events are stored: below it, the process's start-up costs more than it saves
    detection_process: StrictBool = True
    detection_process_after: Annotated[int, Field(ge=0)] = 20_000

    @field_validator("max_line_bytes")
    @classmethod
    def _admits_every_valid_event(cls, value: int) -> int:
        # the contract dead-letters only events that do not match the schema
        if value < LARGEST_EVENT_LINE:
            raise ValueError(
                f"at least {LARGEST_EVENT_LINE:,} bytes, the longest line of a schema-valid event without extra:"
                " a smaller limit would dead-letter valid events"
            )
        return value


class FileSource(Section):
    paths: list[str] = []
    follow: StrictBool = False  # keep reading as the files grow (a live log)

    @model_validator(mode="after")
    def _one_file_followed(self) -> FileSource:
        # followed, the first file is read for ever and the others never; merged by event time (as a replay
        # merges files), the stream would stall whenever one of them goes quiet
        if self.follow and len(self.paths) > 1:
            raise cross_field_error(["paths", "follow"], "one file when follow = true (a live log is one file)")
        return self


class SimulatorSource(Section):
    seed: Annotated[int, Field(ge=-(2**63), le=2**63 - 1)] = 7  # the simulator's own bounds
    days: Annotated[int, Field(ge=1, le=366)] = 30  # the simulator's own limit
    # the simulator's own bounds (ingest.simulator.settings MIN_EMPLOYEES, MAX_EMPLOYEES): every role needs a cast
    employees: Annotated[int, Field(ge=20, le=200_000)] = 240
    speed: Annotated[float, Field(gt=0)] = 3600.0  # event-time seconds played per wall-clock second


class Source(Section):
    kind: Literal["file", "simulator", "kafka"] = "file"
    file: FileSource = FileSource()
    simulator: SimulatorSource = SimulatorSource()
    kafka: dict[str, Any] = {}  # validated by the Kafka adapter, which owns its settings


class SqliteStore(Section):
    filename: str = "accesswatch.db"  # inside the data dir
    cache_mb: Annotated[int, Field(ge=2, le=4096)] = 128
    transaction_events: Annotated[int, Field(ge=1)] = 10_000  # large transactions amortise index upkeep


class Store(Section):
    kind: Literal["sqlite", "elasticsearch"] = "sqlite"
    sqlite: SqliteStore = SqliteStore()
    elasticsearch: dict[str, Any] = {}  # validated by the Elasticsearch adapter


class Alerts(Section):
    # a finding that starts within this much event time of the end of an open
    # alert for the same actor and detector grows that alert instead of
    # raising a new one: one alert per episode, not a storm
    merge_gap: Seconds = 2 * 3600.0
    # alerts of any detector on one actor within this much of each other are one incident
    incident_gap: Seconds = 12 * 3600.0
    max_sample_events: Annotated[int, Field(ge=1, le=1000)] = 20


class Escalation(Section):
    """Page these receivers too when the incident is still unacknowledged this long after its first page."""

    after: Seconds
    receivers: Annotated[list[str], Field(min_length=1)]


class Route(Section):
    """Which incidents go to which receivers.  Every condition given must hold; an empty list matches all."""

    name: str | None = None  # shown in ``accesswatch pages``; default "route <n>"
    receivers: Annotated[list[str], Field(min_length=1)]
    min_severity: Severity = Severity.LOW
    detectors: list[str] = []  # any of the incident's detectors
    actor_kinds: list[ActorKind] = []
    organizations: list[str] = []  # the partner organisation (actor.organization)
    continue_matching: StrictBool = Field(default=False, alias="continue")  # also try the routes after this one
    escalate: list[Escalation] = []  # in order of ``after``

    @field_validator("escalate")
    @classmethod
    def _escalations_in_order(cls, steps: list[Escalation]) -> list[Escalation]:
        afters = [step.after for step in steps]
        if afters != sorted(afters) or any(after <= 0 for after in afters):
            raise ValueError("escalate steps with positive 'after' durations, in increasing order")
        return steps


class Silence(Section):
    """A maintenance window: incidents about activity in [starts_at, ends_at) page nobody (they are kept)."""

    name: Annotated[str, Field(min_length=1)]
    ends_at: datetime
    starts_at: datetime | None = None  # default: since ever
    actor_ids: list[str] = []
    detectors: list[str] = []
    actor_kinds: list[ActorKind] = []
    organizations: list[str] = []
    comment: str = ""

    @model_validator(mode="after")
    def _aware_and_ordered(self) -> Silence:
        for key, moment in (("starts_at", self.starts_at), ("ends_at", self.ends_at)):
            if moment is not None and moment.utcoffset() is None:
                raise cross_field_error([key], "a time with a UTC offset, e.g. 2026-11-02T22:00:00+08:00")
        if self.starts_at is not None and self.starts_at >= self.ends_at:
            raise cross_field_error(["starts_at", "ends_at"], "starts_at before ends_at")
        return self


class Delivery(Section):
    """How the outbox delivers: timeouts, retries with backoff, and when to give up."""

    timeout: Annotated[float, BeforeValidator(parse_duration), Field(gt=0)] = 10.0  # per request to a receiver
    retry_initial: Annotated[float, BeforeValidator(parse_duration), Field(gt=0)] = 5.0  # doubles each failure
    retry_max: Seconds = 600.0
    give_up_after: Seconds = 86400.0  # a page still undelivered this long after it was planned is failed
    poll_interval: Annotated[float, BeforeValidator(parse_duration), Field(gt=0)] = 1.0
    drain_on_exit: Seconds = 15.0  # at the end of a replay or a stop, how long to keep delivering


class Notify(Section):
    receivers: list[str] = ["console", "file"]  # the default route: incidents no route matched
    min_severity: Severity = Severity.MEDIUM  # ... at or above this severity
    # an incident of documented work alone (every alert's accesses cite a purpose: ``Incident.documented``) waits in
    # the queue for review instead of paging, on any route; undocumented findings joining it page as usual
    page_documented: StrictBool = False
    file: str = "pages.jsonl"  # inside the data dir
    page_on_replay: StrictBool = False  # a replay of history pages nobody unless asked to
    dashboard_url: str | None = None  # pages link to <dashboard_url>/?incident=<id>
    # per actor, in event time: a new incident starting this soon after the start of the last one paged is held
    # back, unless it is more severe
    throttle: Seconds = 0.0
    routes: list[Route] = []  # tried in order; the first that matches wins unless it says continue = true
    silences: list[Silence] = []
    delivery: Delivery = Delivery()
    settings: dict[str, dict[str, Any]] = {}  # per receiver, validated by the notifier; "kind" picks the type


class DashboardUser(Section):
    """A user of the embedded sign-in: a role and a salted password hash, never the password."""

    role: Literal["analyst", "auditor", "admin"]
    # "pbkdf2_sha256$<iterations>$<salt>$<hash>", as ``accesswatch dashboard --hash-password`` prints it
    password_hash: Annotated[str, Field(pattern=r"^pbkdf2_sha256\$[0-9]+\$[A-Za-z0-9_=-]+\$[A-Za-z0-9_=-]+$")]
    name: str | None = None  # shown on the pages; the triage and access logs record the user name
    demo: StrictBool = False  # signs in only while dashboard.demo_sign_in is true


class DashboardOidc(Section):
    """Sign-in through Streamlit's ``st.login`` ([auth] in .streamlit/secrets.toml); roles per e-mail address."""

    enabled: StrictBool = False
    provider: str | None = None  # the [auth.<provider>] of the secrets; None: the [auth] section itself
    roles: dict[str, Literal["analyst", "auditor", "admin"]] = {}  # e-mail address -> role
    default_role: Literal["analyst", "auditor", "admin"] | None = None  # others: refused when None

    @field_validator("roles")
    @classmethod
    def _lower_case(cls, value: dict[str, str]) -> dict[str, str]:
        return {email.lower(): role for email, role in value.items()}


class DashboardSignIn(Section):
    """How the password sign-in slows down guessing: per user name as typed, and over all names together."""

    failures: Annotated[int, Field(ge=1, le=1000)] = 5  # failed sign-ins of one name within `window` lock it
    window: Annotated[float, BeforeValidator(parse_duration), Field(gt=0)] = 900.0
    lockout: Annotated[float, BeforeValidator(parse_duration), Field(gt=0)] = 60.0  # the first wait; doubles after each
    max_lockout: Annotated[float, BeforeValidator(parse_duration), Field(gt=0)] = 3600.0  # the doubling stops here
    # failures of all names within `window` that lock every password sign-in (names sprayed one by one); 0: no limit
    overall_failures: Annotated[int, Field(ge=0)] = 100

    @model_validator(mode="after")
    def _lockout_within_max(self) -> DashboardSignIn:
        if self.max_lockout < self.lockout:
            raise cross_field_error(
                ["max_lockout", "lockout"],
                f"max_lockout at least lockout, here {self.max_lockout:g} s and {self.lockout:g} s",
            )
        return self


class Dashboard(Section):
    address: ListenAddress = "127.0.0.1"  # where ``accesswatch dashboard`` listens
    port: Annotated[int, Field(ge=1, le=65535)] = 8501
    refresh: Annotated[float, BeforeValidator(parse_duration), Field(ge=2)] = 15.0  # the queue refreshes itself
    page_size: Annotated[int, Field(ge=5, le=1000)] = 50  # events and incidents per page
    # the queue's "Severity at least" when it opens: a morning's low findings (first-time access, mostly) outnumber
    # the rest ten to one and would bury them; the line above the table shows them in one click
    queue_min_severity: Severity = Severity.MEDIUM
    report_deadline: Seconds = 48 * 3600.0  # a breach is reported within this long of being known
    timeline_days: Annotated[int, Field(ge=1, le=90)] = 28  # history behind an actor's usual band and profile
    # a page showing the same customer ids in clear again within this long, in one session, is not recorded again:
    # Streamlit runs a page's script anew at each click, and each run is not another reading
    view_recorded_again: Annotated[float, BeforeValidator(parse_duration), Field(ge=0, le=86400)] = 600.0
    demo_sign_in: StrictBool = False  # the users marked demo sign in (``make demo`` sets it)
    # The references a masked purpose keeps readable (``dashboard.masking``): a ticket or case number is how an
    # analyst tells documented work from curiosity, while any other word naming a record (a passport, another
    # customer's number) or an address is masked.  Listed by their prefixes, not by their form: "SR-88412" and
    # "c-152762" have the same form, and only the installation knows which of its prefixes are tickets.
    readable_references: str = r"(?i:\b(?:ticket|case|sr|inc|chg|req|ritm|task|prb|dsar)[ #:_-]{0,2}\d[\d-]*\b)"
    users: dict[str, DashboardUser] = {}
    oidc: DashboardOidc = DashboardOidc()
    sign_in: DashboardSignIn = DashboardSignIn()

    @field_validator("readable_references")
    @classmethod
    def _a_pattern_within_others(cls, value: str) -> str:
        # it is one alternative among the masker's (``dashboard.masking._text_pattern``, its groups named so):
        # "(?i)..." alone compiles, not there
        try:
            embedded = re.compile(f"(?P<customer>x)|(?P<reference>{value})|(?P<email>x)|(?P<phone>x)|(?P<word>x)")
        except re.error as exc:
            raise ValueError(f"a regular expression that holds within another ({exc}); for a flag, (?i:...)") from None
        if embedded.fullmatch(""):
            raise ValueError("a regular expression that matches no empty text (it would keep every word readable)")
        return value


class Retention(Section):
    """Storage limitation: how long raw data is kept (``accesswatch purge``; ``store.retention``)."""

    events_days: Annotated[int, Field(ge=1)] = 180  # raw events and dead letters older than this are purged
    alerts_days: Annotated[int, Field(ge=1)] = 730  # closed alerts and incidents, and the events they cite
    purge_every: Seconds = 86400.0  # run and demo purge at start and this often; 0: only `accesswatch purge`

    @model_validator(mode="after")
    def _alerts_outlive_events(self) -> Retention:
        if self.alerts_days < self.events_days:
            raise cross_field_error(
                ["alerts_days", "events_days"],
                f"alerts_days at least events_days, here {self.alerts_days} and {self.events_days}"
                " (alerts and their evidence outlive the raw events)",
            )
        return self


class Metrics(Section):
    """Prometheus metrics and liveness/readiness probes over HTTP, served by ``run`` and ``demo``."""

    enabled: StrictBool = True
    address: IPv4ListenAddress = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 9464  # 0: any free port (tests)


class Logging(Section):
    format: Literal["json", "text"] = "json"  # json: one object a line, ids only, never event contents
    level: Literal["debug", "info", "warning", "error"] = "info"
    # run and demo log the store's chain head this often (``accesswatch.chain_heads``); 0: never
    chain_head_every: Seconds = 3600.0


class Settings(Section):
    data_dir: Path = Path("data")
    organisation: Organisation = Organisation()
    classification: Classification
    windows: Windows = Windows()
    baselines: Baselines = Baselines()
    ingest: Ingest = Ingest()
    source: Source = Source()
    store: Store = Store()
    alerts: Alerts = Alerts()
    notify: Notify = Notify()
    dashboard: Dashboard = Dashboard()
    retention: Retention = Retention()  # issue 7
    metrics: Metrics = Metrics()
    logging: Logging = Logging()
    detectors: dict[str, dict[str, Any]] = {}  # each validated by its detector's own settings model
    # the file these settings were loaded from (``configs.loader``), not a setting: what a command that acts on
    # the same store needs to be given (the commands in a page)
    _config_file: Path | None = PrivateAttr(default=None)

    @property
    def config_file(self) -> Path | None:
        return self._config_file

    @field_validator("data_dir", mode="before")
    @classmethod
    def _a_directory_named(cls, value: Any) -> Any:
        # Path("") is the current directory: an empty value is a mistake, not a place to write the store
        if isinstance(value, str) and not value.strip():
            raise ValueError("a directory path, not an empty string (leave it unset for ./data)")
        return value

    @model_validator(mode="after")
    def _page_file_appendable(self) -> Settings:
        # the file receiver's default path (notify.settings.<name>.path, when set, is checked by its receiver)
        if blocking_ancestor(self.data_dir) is not None and not Path(self.notify.file).is_absolute():
            return self  # a data dir under a file: the commands say that of data_dir (accesswatch.cli)
        try:
            appendable_file(self.data_dir / self.notify.file)  # an absolute notify.file stands alone
        except ValueError as exc:
            raise cross_field_error(["notify.file", "data_dir"], str(exc)) from None
        return self


class ConfigError(Exception):
    """A configuration value is wrong; the message is one line naming key, value and expectation."""
