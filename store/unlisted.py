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
export's cap).  A cut record with no query to read again (a report's customer list, a page) is "possibly".
An event that arrived after the export yet is dated before it reads as though the export held it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from pydantic import ValidationError

from models.dashboard import DataAccess, DataAccessKind, UnlistedMatch
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
