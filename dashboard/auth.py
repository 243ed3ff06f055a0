"""Who is signed in, and what each role may do.

Two ways in: the embedded users of the configuration (``[dashboard.users.<name>]``,
each with a salted PBKDF2 hash, made by ``accesswatch dashboard --hash-password``),
or OIDC through Streamlit's ``st.login`` when ``dashboard.oidc.enabled`` is set,
with roles given per e-mail address.  The checks are plain functions, so the
role rules are tested without a browser.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from models.config import Dashboard, DashboardSignIn, DashboardUser

log = logging.getLogger(__name__)

ALGORITHM = "pbkdf2_sha256"
ITERATIONS = 600_000  # OWASP's 2023 figure for PBKDF2-HMAC-SHA256


class Role(StrEnum):
    ANALYST = "analyst"
    AUDITOR = "auditor"
    ADMIN = "admin"


class Permission(StrEnum):
    QUEUE = "queue"  # see the alert queue and incidents
    TRIAGE = "triage"  # acknowledge, assign, note, resolve, mark false positive
    AUDIT_SEARCH = "audit_search"  # search events by customer, actor, data class...
    COMPLIANCE = "compliance"
    CUSTOMER_LIST = "customer_list"  # the affected customers of an incident, in its report
    UNMASK = "unmask"  # customer identifiers in clear, with a recorded reason
    HEALTH = "health"
    ACCESS_LOG = "access_log"  # who read customer data through the dashboard


# Analysts triage with masked identifiers; auditors read everything, change nothing.
GRANTS: dict[Role, frozenset[Permission]] = {
    Role.ANALYST: frozenset({Permission.QUEUE, Permission.TRIAGE, Permission.HEALTH}),
    Role.AUDITOR: frozenset(
        {
            Permission.QUEUE,
            Permission.AUDIT_SEARCH,
            Permission.COMPLIANCE,
            Permission.CUSTOMER_LIST,
            Permission.UNMASK,
            Permission.HEALTH,
            Permission.ACCESS_LOG,
        }
    ),
    Role.ADMIN: frozenset(Permission),
}


@dataclass(frozen=True, slots=True)
class Identity:
    username: str  # what the triage log and the access log record
    role: Role
    display_name: str
    via: str  # "password" or "oidc"

    def can(self, permission: Permission) -> bool:
        return permission in GRANTS[self.role]


def hash_password(password: str, iterations: int = ITERATIONS, salt: bytes | None = None) -> str:
    """``pbkdf2_sha256$<iterations>$<salt>$<hash>`` (salt and hash in URL-safe base64)."""
    if not password:
        raise ValueError("an empty password")
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    encode = base64.urlsafe_b64encode
    return f"{ALGORITHM}${iterations}${encode(salt).decode()}${encode(digest).decode()}"


def verify_password(password: str, encoded: str) -> bool:
    try:
        algorithm, iterations, salt, digest = encoded.split("$")
        if algorithm != ALGORITHM:
            return False
        expected = base64.urlsafe_b64decode(digest)
        actual = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.urlsafe_b64decode(salt), int(iterations))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


# compared against when the user is unknown, so that a wrong name costs as
# long as a wrong password and does not tell which names exist
_DUMMY_HASH = hash_password("not a password", iterations=ITERATIONS, salt=b"accesswatch-none")


def sign_in(settings: Dashboard, username: str, password: str) -> Identity | None:
    """The identity of a configured user whose password matches, else None."""
    user: DashboardUser | None = settings.users.get(username.strip())
    if user is not None and user.demo and not settings.demo_sign_in:
        user = None  # demo users exist in the default config, but sign in only in the demo
    if user is None:
        verify_password(password, _DUMMY_HASH)
        return None
    if not verify_password(password, user.password_hash):
        return None
    return Identity(username.strip(), Role(user.role), user.name or username.strip(), "password")


@dataclass(slots=True)
class _Failures:
    times: list[float] = field(default_factory=list)  # failures within the window, oldest first
    lockouts: int = 0  # how many times in a row this key was locked: each doubles the wait
    locked_until: float = 0.0


@dataclass(frozen=True, slots=True)
class Throttled:
    """A sign-in refused unchecked: too many failures; ``retry_after`` seconds from now it is checked again."""

    retry_after: float
    every_name: bool  # the overall limit, not this name's


TRACKED_NAMES = 10_000  # user names remembered at most: an attacker may type as many as they like
_EVERY_NAME = " every name"  # the overall count's key: a typed name is stripped, so none starts with a space


class SignInThrottle:
    """Failed password sign-ins per user name as typed, and over all names, in this dashboard process.

    After ``failures`` failures of a name within ``window``, that name is refused without hashing for
    ``lockout``, doubled at each further lockout up to ``max_lockout``; a success resets the name.  The
    overall count works alike over every name, so spraying names (each new, each costing a PBKDF2) stops
    too, and it keeps the table of names small: it is bounded besides, forgetting the oldest names first.
    """

    def __init__(self, config: DashboardSignIn, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._clock = clock
        self._lock = threading.Lock()  # Streamlit runs each browser session in a thread of its own
        self._keys: OrderedDict[str, _Failures] = OrderedDict()

    def refusal(self, username: str) -> Throttled | None:
        """Why ``username`` may not be checked now, if it may not."""
        now = self._clock()
        with self._lock:
            for key in (_EVERY_NAME, username):
                record = self._keys.get(key)
                if record is not None and record.locked_until > now:
                    return Throttled(record.locked_until - now, every_name=key == _EVERY_NAME)
        return None

    def failed(self, username: str) -> None:
        now = self._clock()
        with self._lock:
            self._count(username, self.config.failures, now)
            if self.config.overall_failures:
                self._count(_EVERY_NAME, self.config.overall_failures, now)
            self._forget(now)

    @property
    def names_tracked(self) -> int:
        return len(self._keys) - (_EVERY_NAME in self._keys)

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._keys.pop(username, None)

    def _count(self, key: str, limit: int, now: float) -> None:
        record = self._keys.pop(key, None) or _Failures()
        self._keys[key] = record  # the most recently failed last, so the oldest are forgotten first
        record.times = [t for t in record.times if t > now - self.config.window] + [now]
        if len(record.times) >= limit:
            record.lockouts += 1
            wait = min(self.config.lockout * 2 ** min(record.lockouts - 1, 60), self.config.max_lockout)
            record.locked_until = now + wait
            record.times = []
            shown = "every user name" if key == _EVERY_NAME else f"user name {key!r}"
            log.warning("dashboard sign-in: %s refused for %.0f s after %d failures", shown, wait, limit)

    def _forget(self, now: float) -> None:
        """Names whose failures and lock are over, then the oldest names beyond ``TRACKED_NAMES``."""
        while self._keys:
            key, record = next(iter(self._keys.items()))
            stale = record.locked_until <= now - self.config.window and all(
                t <= now - self.config.window for t in record.times
            )
            if not stale and self.names_tracked <= TRACKED_NAMES:
                break
            del self._keys[key]


def checked_sign_in(
    settings: Dashboard, throttle: SignInThrottle, username: str, password: str
) -> Identity | Throttled | None:
    """``sign_in`` unless the throttle refuses the name; failures are counted and logged (never the password)."""
    name = username.strip()[:200]  # the key and the log line: whatever was typed, within reason
    refused = throttle.refusal(name)
    if refused is not None:
        return refused
    identity = sign_in(settings, username, password)
    if identity is None:
        log.warning("dashboard sign-in failed for user name %r", name)  # repr: control characters escaped
        throttle.failed(name)
    else:
        throttle.succeeded(name)
    return identity


def email_unverified(email_verified: object) -> bool:
    """The provider says the address is not verified: ``false``, or the text "false" some providers send."""
    return email_verified is False or (isinstance(email_verified, str) and email_verified.lower() == "false")


def oidc_identity(
    settings: Dashboard, email: str | None, name: str | None, email_verified: object = None
) -> Identity | None:
    """The identity of an OIDC user: its role comes from ``dashboard.oidc.roles``, else the default role.

    An address the provider says is unverified is refused: with a provider that lets anyone register,
    anyone could claim a listed address.  A missing ``email_verified`` is accepted: many providers of a
    managed directory never send it (their addresses are the administrators'), and a provider open to
    self-registration must be configured to send it.
    """
    if not email or email_unverified(email_verified):
        return None
    role = settings.oidc.roles.get(email.lower()) or settings.oidc.default_role
    if role is None:
        return None
    return Identity(email.lower(), Role(role), name or email, "oidc")
