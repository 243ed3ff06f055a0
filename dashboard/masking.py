"""Customer identifiers and sensitive values, masked unless the viewer may and chose to see them.

Analysts triage on patterns, not on who the customers are, so they see a
pseudonym per customer: a keyed hash, the same for the same customer on
every page (two events about one customer still look alike) but not
reversible by hashing every possible id, because the key is secret to this
installation.  Auditors and admins unmask with a reason, and the unmasking
is recorded (``dashboard.queries.record_access``), and so is each page
that then shows customer ids in clear, with the ids it showed
(``dashboard.ui.record_view``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from datetime import date
from pathlib import Path
from typing import Any

KEY_FILE = "dashboard-mask.key"  # in the data dir; losing it only changes the pseudonyms
# a resource id with a run of digits names one record (a reservation, an
# order), which points at a customer; names of tables and reports do not
_RECORD_ID = re.compile(r"\d{4,}")
# ... unless the digits are a calendar date in a file's name (``exports/newsletter_20261012.csv``): a routine
# job's daily file, which an analyst must see to recognise it.  Set apart from letters and other digits: a
# date glued to a letter (``R20261012``) is as likely a record's number.
_DATE = re.compile(r"(?<![0-9A-Za-z])((?:19[7-9]|20[0-9])[0-9])([-_]?)([01][0-9])\2([0-3][0-9])(?![0-9A-Za-z])")
MASK = "•••"
CUSTOMERS_SHOWN = 5  # an event's customers in a table's cell, the rest counted ("(+12)")


def load_key(data_dir: Path) -> bytes:
    """This installation's masking key, created on first use, readable by its owner only."""
    path = Path(data_dir) / KEY_FILE
    try:
        return bytes.fromhex(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    # O_EXCL: when two sessions start at once, one writes and both read its key
    try:
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return bytes.fromhex(path.read_text().strip())
    with os.fdopen(handle, "w") as out:
        out.write(key.hex())
    return key


def pseudonym(customer_id: str, key: bytes) -> str:
    """``cust#3fa9c2e1``: stable for one customer and one key."""
    return "cust#" + hmac.new(key, customer_id.encode(), hashlib.sha256).hexdigest()[:8]


def _calendar_date(found: re.Match[str]) -> str:
    """The date's digits gone when they are a real day (month 1-12, a day that month has), else left as found."""
    try:
        date(int(found[1]), int(found[3]), int(found[4]))
    except ValueError:
        return found[0]
    return "-"


def names_a_record(resource_id: str) -> bool:
    """A run of 4 or more digits, dates in a name left out; a bare date (no letter beside it) still counts."""
    if not any(char.isalpha() for char in resource_id):
        return bool(_RECORD_ID.search(resource_id))
    return bool(_RECORD_ID.search(_DATE.sub(_calendar_date, resource_id)))


def mask_resource_id(resource_id: str | None) -> str | None:
    if resource_id is None or not names_a_record(resource_id):
        return resource_id
    return resource_id[:1] + MASK


class Masker:
    """Masks what a viewer may not see in clear; ``unmasked`` only after a recorded reason."""

    def __init__(self, key: bytes, unmasked: bool = False, subject: str | None = None) -> None:
        self.key = key
        self.unmasked = unmasked
        self.subject = subject  # unmasked: only this customer in clear (``for_subject``)

    def customer(self, customer_id: str) -> str:
        clear = self.unmasked and (self.subject is None or customer_id == self.subject)
        return customer_id if clear else pseudonym(customer_id, self.key)

    def for_subject(self, customer_id: str) -> Masker:
        """This masker, showing in clear (if it does at all) only ``customer_id``: the answer to one person's
        request (a DSAR) names the other customers an event read only by pseudonym, so that handing it over
        does not disclose them."""
        return Masker(self.key, self.unmasked, customer_id)

    def customers(self, customer_ids: list[str] | None, limit: int = CUSTOMERS_SHOWN) -> str:
        if not customer_ids:
            return ""
        shown = ", ".join(self.customer(c) for c in customer_ids[:limit])
        more = len(customer_ids) - limit
        return f"{shown} (+{more})" if more > 0 else shown

    def resource_id(self, resource_id: str | None) -> str | None:
        return resource_id if self.unmasked else mask_resource_id(resource_id)

    def evidence(self, evidence: dict[str, Any]) -> dict[str, Any]:
        """An alert's evidence with the record ids in its resources masked, as the events' are: a detector
        lists the window's resources (``system/type/id``), whose ids name customers' records."""
        resources = evidence.get("resources")
        if self.unmasked or not isinstance(resources, list):
            return evidence
        return {**evidence, "resources": [self._resource_key(key) for key in resources]}

    def asked(self, what: dict[str, Any]) -> dict[str, Any]:
        """An access's query as recorded (``DataAccess.what``), its customer and record ids masked as every page
        masks them: a search for one customer's id, shown, is that customer's id."""
        shown = dict(what)
        if isinstance(shown.get("customer_id"), str):
            shown["customer_id"] = self.customer(shown["customer_id"])
        if isinstance(shown.get("resource"), str):  # "system", "system/type" or "system/type/id"
            shown["resource"] = self._resource_key(shown["resource"])
        return shown

    def _resource_key(self, key: Any) -> Any:
        if not isinstance(key, str) or key.count("/") < 2:  # a kind alone names no record
            return key
        # the id is all after the system and the type: an id may hold a "/" ("R1234567/profile"), which a split
        # at the last one left in clear
        system, kind, resource_id = key.split("/", 2)
        return f"{system}/{kind}/{self.resource_id(resource_id)}"

    def event(self, event: dict[str, Any]) -> dict[str, Any]:
        """An event's contract JSON with customer ids, record ids and free-form values masked."""
        if self.unmasked:
            return event
        masked = dict(event)
        if masked.get("customer_ids"):
            masked["customer_ids"] = [self.customer(c) for c in masked["customer_ids"]]
        resource = masked.get("resource")
        if isinstance(resource, dict) and resource.get("id"):
            masked["resource"] = {**resource, "id": mask_resource_id(resource["id"])}
        if masked.get("extra"):
            # free-form: nobody knows what a producer put there
            masked["extra"] = {name: MASK for name in masked["extra"]}
        return masked
