"""The answer to a customer's access request: who read their data, when, what of it and why.

GDPR art. 15 and PIPL art. 45 give a person the right to know what was done
with their data and by whom (art. 15(1)(c): "the recipients or categories of
recipients").  The auditors' CSV export is the organisation's record, and
holds what is not the requester's to see: other customers (as pseudonyms,
still personal data), employee ids, internal addresses, record counts.  This
is the other shape, to hand over: for each access that served the person's
data, the local time, who in words (a role and team, a partner company, an
automated service), the action, the fields and their classes, and the
purpose stated.  Nothing in it names anyone else.
"""

from __future__ import annotations

from datetime import tzinfo

from dashboard import queries
from dashboard.auth import Identity, Permission
from dashboard.queries import Export, event_time, events_csv, inert_in_spreadsheets, record_access
from detectors.classify import UNCLASSIFIED
from models.dashboard import DataAccessKind
from models.event import AccessEvent, ActorKind, Outcome
from store.base import EventQuery, Store, StoredEvent

SUBJECT_COLUMNS = ("time", "who", "action", "data", "categories", "purpose")


def recipient(event: AccessEvent) -> str:
    """Who read, as a category the requester may be told: never a person's id."""
    actor = event.actor
    if actor.kind is ActorKind.PARTNER:
        company = actor.organization or "a partner company"
        return f"{company} (partner company)" + (f", {_words(actor.role)}" if actor.role else "")
    if actor.kind is ActorKind.SERVICE:
        return f"an automated process of the {event.resource.system} system"
    # role and department, each once ("sales", not "sales, sales")
    team = ", ".join(dict.fromkeys(_words(part) for part in (actor.role, actor.department) if part))
    return f"our staff ({team})" if team else "our staff"


def _words(name: str) -> str:
    """``customer_service`` -> ``customer service``: the log's names, readable by anyone."""
    return name.replace("_", " ").strip()


def answer_row(item: StoredEvent, zone: tzinfo) -> dict[str, object]:
    event = item.event
    values = (
        event_time(event.timestamp, zone),
        recipient(event),
        event.action.value,
        ", ".join(event.fields or ()),
        ", ".join(name for name in item.classes if name != UNCLASSIFIED),  # a field of no class: in "data"
        event.purpose or "",
    )
    return {column: inert_in_spreadsheets(value) for column, value in zip(SUBJECT_COLUMNS, values, strict=True)}


def subject_access_answer(
    store: Store, identity: Identity, customer_id: str, reason: str, zone: tzinfo, cap: int | None = None
) -> Export:
    """Every access that served ``customer_id``'s data, oldest first, up to ``cap``, as CSV; recorded.

    Only accesses that succeeded: a denied or failed one disclosed nothing.  All the history kept, as the
    request asks: no dates.
    """
    if not identity.can(Permission.AUDIT_SEARCH):
        raise PermissionError(f"{identity.role.value}s may not answer access requests")
    if not reason.strip():
        raise ValueError("a reason is required to answer an access request (the request's number)")
    if not customer_id.strip():
        raise ValueError("an access request is answered for one customer id")
    cap = queries.EXPORT_CAP if cap is None else cap  # read here: set in one place for both CSVs
    query = EventQuery(customer_id=customer_id.strip(), outcome=Outcome.SUCCESS, newest_first=False)
    export = events_csv(store, query, SUBJECT_COLUMNS, lambda item: answer_row(item, zone), cap)
    what = {"customer_id": query.customer_id, "outcome": Outcome.SUCCESS.value, "cap": cap, "shape": "subject answer"}
    record_access(store, identity, DataAccessKind.EXPORT, reason, what, export.events)
    return export
