"""Customer identifiers and sensitive values, masked unless the viewer may and chose to see them.

Analysts triage on patterns, not on who the customers are, so they see a
pseudonym per customer: a keyed hash, the same for the same customer on
every page (two events about one customer still look alike) but not
reversible by hashing every possible id, because the key is secret to this
installation.  Auditors and admins unmask with a reason, and the unmasking
is recorded (``dashboard.queries.record_access``), and so is each page
that then shows customer ids in clear, with the ids it showed
(``dashboard.ui.record_view``).

An event's customer ids are not only in its customers: a producer may use one as the record's id
(``crm/customer_record/CUST-XJ9K``) or quote it in the purpose (``complaint of c-152762``).  Each is shown
as that customer's pseudonym wherever it stands, so the row still correlates.  A resource id that names a
person (an e-mail address, a phone number) is masked whole.  A purpose is free text: each word that names a
record as a resource id does (a run of four digits: a passport, another customer's number), each e-mail
address and phone number, is masked, except the references the installation lists as readable
(``dashboard.readable_references``: tickets and cases, which analysts need to judge the work).  The answer to
a person's access request quotes purposes so too (``requester_text``), with their own id as written and the other
customers in words; a detector's summary, which may quote a purpose, is shown with the purposes masked
(``Masker.summary``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Callable, Collection
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

from dashboard.provenance import name_part
from models.config import Dashboard

KEY_FILE = "dashboard-mask.key"  # in the data dir; losing it only changes the pseudonyms
# a resource id with a run of digits names one record (a reservation, an
# order), which points at a customer; names of tables and reports do not
_RECORD_ID = re.compile(r"\d{4,}")
# ... unless the digits are a calendar date in a file's name (``exports/newsletter_20261012.csv``): a routine
# job's daily file, which an analyst must see to recognise it.  Set apart from letters and other digits: a
# date glued to a letter (``R20261012``) is as likely a record's number.
_DATE = re.compile(r"(?<![0-9A-Za-z])((?:19[7-9]|20[0-9])[0-9])([-_]?)([01][0-9])\2([0-3][0-9])(?![0-9A-Za-z])")
MASK = "•••"
# an address, the one thing every e-mail address has: anything@anything
_EMAIL = re.compile(r"[\w.%+-]+@[\w-]+(?:\.[\w-]+)*")
# a phone number as people write it: digits in groups, spaced, dotted, dashed or bracketed (``06 12 34 56 78``,
# ``+1 (212) 555-0199``), no group of which need hold four digits; seven digits at least (``PHONE_DIGITS``)
_PHONE = re.compile(r"(?<![\w.#+-])\+?\(?\d[\d ().-]{5,}\d(?![\w])")
PHONE_DIGITS = 7
# a word of free text: letters, digits and the marks ids are written with, not ending on a full stop
_WORD = re.compile(r"[\w#+-](?:[\w.#+-]*[\w#+-])?")
DEFAULT_REFERENCES: str = Dashboard.model_fields["readable_references"].default
ANOTHER_CUSTOMER = "another customer"  # an event's other customer, named in the answer to a requester
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


def _a_phone_number(text: str) -> bool:
    return sum(char.isdigit() for char in text) >= PHONE_DIGITS


def names_a_person(resource_id: str) -> bool:
    """An id holding an e-mail address, or all of it a phone number: it is the person, not a record of theirs."""
    if _EMAIL.search(resource_id):
        return True
    whole = _PHONE.fullmatch(resource_id.strip())
    return whole is not None and _a_phone_number(whole[0])


@lru_cache(maxsize=64)
def _text_pattern(customers: tuple[str, ...], references: str) -> re.Pattern[str]:
    """One pass over a text: the event's customer ids first (an id may look like anything, a reference too),
    then the references kept readable, then e-mail addresses, phone numbers and words."""
    named = "|".join(re.escape(c) for c in sorted(customers, key=len, reverse=True))
    # a customer id as a whole word: "c-1" is not the start of "c-12" nor the end of "TICKET-c-1"
    customer = rf"(?<![\w-])(?P<customer>{named})(?![\w-])|" if named else ""
    return re.compile(
        rf"{customer}(?P<reference>{references})|(?P<email>{_EMAIL.pattern})|(?P<phone>{_PHONE.pattern})"
        rf"|(?P<word>{_WORD.pattern})"
    )


def _masked_word(word: str) -> str:
    return mask_resource_id(word) or word


def _shown_text(
    text: str, customer_ids: Collection[str], references: str, customer: Callable[[str], str], masked: bool
) -> str:
    """``text`` with each of ``customer_ids`` it names shown as ``customer`` shows them, and, ``masked``, each
    e-mail address, phone number and word naming a record masked; the ``references`` as written."""
    # the ids the text holds, found first: an export's event may list 60,000 customers, its purpose none
    named = tuple(c for c in customer_ids if c and c in text)

    def shown(found: re.Match[str]) -> str:
        kind = found.lastgroup  # the outermost group that matched: a reference's own groups are inside it
        if kind == "customer":
            return customer(found[0])
        if not masked or kind == "reference":
            return found[0]
        if kind == "email" or (kind == "phone" and _a_phone_number(found[0])):
            return MASK
        # a word, or digits in groups too few for a phone number ("12 2026"): its words, as any
        return _WORD.sub(lambda word: _masked_word(word[0]), found[0])

    return _text_pattern(named, references).sub(shown, text)


def requester_text(
    text: str, requester: str, customer_ids: Collection[str], references: str = DEFAULT_REFERENCES
) -> str:
    """Free text from the log (a purpose) as the answer to ``requester``'s access request quotes it: their own id
    as written, the event's other customers as ``ANOTHER_CUSTOMER``, and each e-mail address, phone number and
    word naming a record masked as a masked viewer sees it, the readable references left as written.

    Not a pseudonym for the others: it means nothing to the person, and, the same in every export, is still
    personal data (GDPR art. 15(4): the copy must not adversely affect others)."""
    return _shown_text(
        text,
        dict.fromkeys((requester, *customer_ids)),
        references,
        lambda found: found if found == requester else ANOTHER_CUSTOMER,
        masked=True,
    )


class Masker:
    """Masks what a viewer may not see in clear; ``unmasked`` only after a recorded reason."""

    def __init__(
        self, key: bytes, unmasked: bool = False, subject: str | None = None, references: str = DEFAULT_REFERENCES
    ) -> None:
        self.key = key
        self.unmasked = unmasked
        self.subject = subject  # unmasked: only this customer in clear (``for_subject``)
        self.references = references  # what a purpose's masked words keep readable (tickets, cases)

    def customer(self, customer_id: str) -> str:
        clear = self.unmasked and (self.subject is None or customer_id == self.subject)
        return customer_id if clear else pseudonym(customer_id, self.key)

    def for_subject(self, customer_id: str) -> Masker:
        """This masker, showing in clear (if it does at all) only ``customer_id``: the answer to one person's
        request (a DSAR) names the other customers an event read only by pseudonym, so that handing it over
        does not disclose them."""
        return Masker(self.key, self.unmasked, customer_id, self.references)

    def customers(self, customer_ids: list[str] | None, limit: int = CUSTOMERS_SHOWN) -> str:
        if not customer_ids:
            return ""
        shown = ", ".join(self.customer(c) for c in customer_ids[:limit])
        more = len(customer_ids) - limit
        return f"{shown} (+{more})" if more > 0 else shown

    def resource_id(self, resource_id: str | None, customer_ids: Collection[str] = ()) -> str | None:
        """A record's id; one of the event's ``customer_ids`` shown as that customer is (the same pseudonym)."""
        if resource_id is None:
            return None
        if resource_id in customer_ids:
            return self.customer(resource_id)
        if self.unmasked:
            return resource_id
        return MASK if names_a_person(resource_id) else mask_resource_id(resource_id)

    def text(self, text: str, customer_ids: Collection[str] = ()) -> str:
        """Free text from the log (a purpose): the event's customer ids as the customers are shown, and, masked,
        each e-mail address, phone number and word naming a record, the readable references left as written."""
        if self.unmasked and self.subject is None:
            return text
        # unmasked for one subject: the others' ids only
        return _shown_text(text, customer_ids, self.references, self.customer, masked=not self.unmasked)

    def summary(self, summary: str, purposes: Collection[str]) -> str:
        """A detector's sentence with the purposes it quotes (``detectors.base``: "...; the accesses cite
        TICKET-77, complaint of c-152762.", ``purposes`` from the alert's evidence) shown as ``text`` shows them;
        the detector's own words as written.  The alert keeps its sentence: this is how a page shows it."""
        if self.unmasked and self.subject is None:
            return summary
        changed = {purpose: self.text(purpose) for purpose in purposes if purpose}
        changed = {purpose: shown for purpose, shown in changed.items() if shown != purpose}
        if not changed:
            return summary
        # one pass, the longest first: a purpose quoted within a longer one is not masked twice
        quoted = re.compile("|".join(re.escape(p) for p in sorted(changed, key=len, reverse=True)))
        return quoted.sub(lambda found: changed[found[0]], summary)

    def names_customers(self, customer_ids: Collection[str], resource_id: str | None, purpose: str | None) -> list[str]:
        """The ``customer_ids`` an event's resource id or purpose shows (as ``resource_id`` and ``text`` show them)."""
        named = [c for c in customer_ids if c == resource_id]
        if purpose:
            found = _text_pattern(tuple(c for c in customer_ids if c and c in purpose), self.references)
            named += [m["customer"] for m in found.finditer(purpose) if m.lastgroup == "customer"]
        return list(dict.fromkeys(named))

    def evidence(self, evidence: dict[str, Any]) -> dict[str, Any]:
        """An alert's evidence with the record ids in its resources masked, as the events' are: a detector
        lists the window's resources (``system/type/id``), whose ids name customers' records."""
        if self.unmasked:
            return evidence
        shown = dict(evidence)
        if isinstance(resources := evidence.get("resources"), list):
            shown["resources"] = [self._resource_key(key) for key in resources]
        # the purposes a window cited (``detectors.base``): the log's text, masked as the events' purposes are
        documented = evidence.get("documented")
        if isinstance(documented, dict) and isinstance(documented.get("purposes"), list):
            purposes = [self.text(p) if isinstance(p, str) else p for p in documented["purposes"]]
            shown["documented"] = {**documented, "purposes": purposes}
        return shown

    def asked(self, what: dict[str, Any]) -> dict[str, Any]:
        """An access's query as recorded (``DataAccess.what``), its customer and record ids masked as every page
        masks them: a search for one customer's id, shown, is that customer's id."""
        shown = dict(what)
        if isinstance(customer := shown.get("customer_id"), str):
            shown["customer_id"] = self.customer(customer)
            if isinstance(shown.get("file"), str):  # an export's name holds the customer as its exporter saw them
                exported, now = (f"-customer-{name_part(c)}-" for c in (customer, shown["customer_id"]))
                shown["file"] = shown["file"].replace(exported, now)
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
        customer_ids = event.get("customer_ids") or ()
        resource = masked.get("resource")
        if isinstance(resource, dict) and resource.get("id"):
            masked["resource"] = {**resource, "id": self.resource_id(resource["id"], customer_ids)}
        if isinstance(masked.get("purpose"), str):
            masked["purpose"] = self.text(masked["purpose"], customer_ids)
        if masked.get("extra"):
            # free-form: nobody knows what a producer put there
            masked["extra"] = {name: MASK for name in masked["extra"]}
        return masked
