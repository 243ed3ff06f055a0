"""Who saw a customer in clear, past the ids an access record lists: its query read again.

An access lists at most ``CUSTOMERS_LISTED`` of the customer ids it showed or exported in clear, and counts
them all; an export of a month may hold millions.  Asked whether it held one customer past its list, the
record alone cannot tell, and a filter on its list alone told a data subject, or a regulator, that nobody
saw them when an export did.  The export kept its query (``DataAccess.what``), so the events answer instead:

- its query, as of when it ran (events dated after it could not be in it) and for this customer, finds
  their newest event; the export held the newest ``results`` events of its query (all of them when not
  capped), so it held that one when no more than ``results`` events of the query are as new or newer;
- found nowhere, it was not in the export as long as every event the export held is still kept: the
  query still matches ``results`` events.  Fewer, and retention deleted some since (the oldest first):
  the customer may have been in those, and is answered "possibly", not left out.

Only the records whose list was cut are read again, a few bounded counts each (to ``results``, at most an
export's cap).  A breach report's customer list is the customers of the actor's served events in the
incident's window (``dashboard.queries.impact``): its record keeps that actor, window and how many events it
read (``report_list``), so the customer's served events there answer, "possibly" where retention deleted
some since.  A cut record with no query to read again (a page, a report recorded before it kept one) is
"possibly".
An event that arrived after the export yet is dated before it reads as though the export held it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from pydantic import ValidationError

from models.dashboard import DataAccess, DataAccessKind, UnlistedMatch
from models.event import Outcome
from store.base import EventQuery, Store

# what an export records of its query beside the query's own fields (``dashboard.queries.export_events``)
_NOT_QUERY = frozenset({"limit", "cursor", "newest_first"})


def listed_or_found(store: Store, accesses: Iterable[DataAccess], customer_id: str, limit: int) -> list[DataAccess]:
    """Of ``accesses`` (newest first), up to ``limit`` that showed or searched for the customer: listed,
    searched by id, or, their list cut, found by ``unlisted_match`` (set on the copy returned)."""
    found: list[DataAccess] = []
    for access in accesses:
        if len(found) >= limit:
            break
        if customer_id in access.customer_ids or access.what.get("customer_id") == customer_id:
            found.append(access)
        elif access.customers_unlisted:
            match = unlisted_match(store, access, customer_id)
            if match is not None:
                found.append(access.model_copy(update={"unlisted_match": match}))
    return found


def unlisted_match(store: Store, access: DataAccess, customer_id: str) -> UnlistedMatch | None:
    """Whether the access, its list cut, held the customer (not listed): read again from its kept query."""
    listed = _report_list(access)
    if listed is not None:
        return _in_report_list(store, access, listed, customer_id)
    asked = kept_query(access)
    if asked is None:
        return UnlistedMatch.POSSIBLY
    if asked.customer_id not in (None, customer_id):  # one other customer's events: only theirs in clear
        return None
    # as of when it ran: ``until`` is exclusive, and the access was recorded once the file was made
    scope = asked.model_copy(update={"until": min(asked.until, access.at) if asked.until else access.at})
    held = access.results
    page = store.query_events(scope.model_copy(update={"customer_id": customer_id, "limit": 1, "newest_first": True}))
    if not page.items:
        kept = store.count_events(scope, at_most=held)
        if kept.events >= held:
            return None
        return UnlistedMatch.POSSIBLY if kept.more else UnlistedMatch.POSSIBLY_DELETED  # more: a count cut short
    newest = page.items[0].event.timestamp
    as_new = store.count_events(scope.model_copy(update={"since": newest}), at_most=held)
    if not as_new.more:
        return UnlistedMatch.FOUND
    newer = store.count_events(scope.model_copy(update={"since": newest + timedelta(microseconds=1)}), at_most=held)
    if newer.events >= held:  # the export was full before it reached this customer's newest event
        return None
    return UnlistedMatch.POSSIBLY  # events of the same time on both sides of its cap, or a count cut short


def kept_query(access: DataAccess) -> EventQuery | None:
    """The event query an export of the audit search ran (what it recorded with its cap); None for any other."""
    if access.kind is not DataAccessKind.EXPORT or "cap" not in access.what:
        return None
    fields = {name: value for name, value in access.what.items() if name in EventQuery.model_fields}
    try:
        return EventQuery.model_validate({name: fields[name] for name in fields.keys() - _NOT_QUERY})
    except ValidationError:  # a record of an older shape: not read again, not guessed
        return None


def report_list(actor_id: str, since: datetime, until: datetime, events: int, complete: bool) -> dict[str, object]:
    """What a breach report's customer list record keeps to be read again: the actor and the window whose
    served events' customers it lists, how many events it read, and whether that was all of them (the report
    reads at most its bound: ``dashboard.queries.impact``)."""
    return {
        "list_of": {
            "actor_id": actor_id,
            "since": since.isoformat(),
            "until": until.isoformat(),
            "events": events,
            "complete": complete,
        }
    }


def _report_list(access: DataAccess) -> EventQuery | None:
    """The served events whose customers a report's list named, as its record kept them; None for any other."""
    kept = access.what.get("list_of") if access.kind is DataAccessKind.CUSTOMER_LIST else None
    if not isinstance(kept, dict):
        return None
    try:
        return EventQuery(actor_id=kept["actor_id"], since=kept["since"], until=kept["until"])
    except (KeyError, ValidationError):  # a record of another shape: not read again, not guessed
        return None


def _in_report_list(store: Store, access: DataAccess, events: EventQuery, customer_id: str) -> UnlistedMatch | None:
    kept = access.what["list_of"]
    if not kept.get("complete", False):  # the report read only its bound's first events: which it named is lost
        return UnlistedMatch.POSSIBLY
    served = events.model_copy(update={"customer_id": customer_id, "outcome": Outcome.SUCCESS, "limit": 1})
    if store.query_events(served).items:
        return UnlistedMatch.FOUND
    read = int(kept.get("events", 0))
    if store.count_events(events, at_most=read).events >= read:  # every event it read is still kept
        return None
    return UnlistedMatch.POSSIBLY_DELETED
