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
import secrets
from dataclasses import dataclass
from enum import StrEnum

from models.config import Dashboard, DashboardUser

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


def oidc_identity(settings: Dashboard, email: str | None, name: str | None) -> Identity | None:
    """The identity of an OIDC user: its role comes from ``dashboard.oidc.roles``, else the default role."""
    if not email:
        return None
    role = settings.oidc.roles.get(email.lower()) or settings.oidc.default_role
    if role is None:
        return None
    return Identity(email.lower(), Role(role), name or email, "oidc")
