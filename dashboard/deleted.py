"""What retention deleted of the range a page of events shows: the note the search and an incident's events carry.

The breach report and the subject-access answer say what retention deleted before the period they cover; a page
of events that reaches before the latest purge's horizon said nothing, and read as the whole of what was logged
("events 1-50 of 86" of an actor's 328, "No event matches." of a range wholly deleted).  The note says so, with
the horizon, the purge, and how many events of the range are gone where that is known cheaply: from the hourly
figures, which are counted at ingestion and which retention keeps (``queries.Ingested``), for a range of one
actor's (or everyone's) events with no other filter.  Which events a filter (a customer, a field) would have
matched went with them.

Elasticsearch's retention (ILM) deletes a day's index at a time and records no purge, and its hourly figures are
counted from the events kept: there, the note gives the retention period and where the kept log begins.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo

from dashboard.queries import Ingested, local_time
from store.base import EventQuery, PurgeRecord, Store

# the filters the hourly figures do not hold: a query with any of them cannot be counted from them
_NOT_HOURLY = ("event_id", "customer_id", "data_class", "field", "resource", "action", "outcome")


@dataclass(frozen=True, slots=True)
class Deleted:
    """Retention's cut in a range: before ``horizon`` nothing but evidence is kept."""

    horizon: datetime
    purge: PurgeRecord | None  # the latest the store recorded (None: its retention records none, as ILM's)
    events: int | None  # the range's events deleted, from the hourly figures; None: not counted (a filter)
    exact: bool  # False: ``events`` counts the whole hours before a horizon within an hour, at least that many
    retention_days: int  # ``[retention] events_days``: said where the store records no purge


def deleted_in(store: Store, query: EventQuery, now: datetime, retention_days: int) -> Deleted | None:
    """What retention deleted of ``query``'s range (None where the range starts at or after the horizon, or lost
    nothing by it); ``retention_days``: ``[retention] events_days``."""
    purges = store.purges()
    history = store.kept_history(now)
    if purges and history.deleted_before is not None:
        horizon, purge = history.deleted_before, purges[-1]
    elif store.records_purges or history.oldest is None:  # no purge ran, or nothing is kept at all
        return None
    else:  # a retention that records no purge (ILM): the kept log begins at its oldest event
        horizon, purge = history.oldest, None
    if query.since is not None and query.since >= horizon:
        return None
    events, whole = None, True
    if purge is not None and query.since is not None and all(getattr(query, name) is None for name in _NOT_HOURLY):
        # the hours before the horizon as ingested, less what retention kept of them (the evidence alerts cite);
        # a horizon within an hour counts the whole hours before it only
        cut = datetime.fromtimestamp(horizon.timestamp() // 3600 * 3600, horizon.tzinfo)
        whole = cut == horizon
        if query.until is not None and query.until < cut:
            cut, whole = query.until, True
        ingested = Ingested.of(store.activity(query.since, cut, query.actor_id)).events if cut > query.since else 0
        kept = store.count_events(EventQuery(actor_id=query.actor_id, since=query.since, until=cut), ingested + 1)
        events = max(0, ingested - kept.events)
        if events == 0 and whole:  # the range held nothing retention deleted
            return None
        if events == 0:  # none in the whole hours: the hour the horizon cuts may have held some, not counted
            events, whole = None, True
    return Deleted(horizon, purge, events, whole, retention_days)


def note(deleted: Deleted, zone: tzinfo) -> str:
    """The sentence above the events: what is not among them, and why."""
    horizon = local_time(deleted.horizon, zone)
    purge = deleted.purge
    if purge is None:
        return (
            f"The log kept begins at {horizon}, and this range reaches before it: retention deletes the events older"
            f" than {deleted.retention_days} days and records no purge, so those logged before it (if any) are not"
            " shown or counted here, and how many there were is not known."
        )
    ran = purge.at.astimezone(zone).date().isoformat()
    if deleted.events is not None:
        events = f"{deleted.events:,} {'event' if deleted.events == 1 else 'events'}"
        many = events if deleted.exact else f"At least {events}"
        were = "was" if deleted.events == 1 else "were"
        return (
            f"{many} of this range {were} deleted by retention on {ran} (events stamped before {horizon}):"
            " they are not shown or counted here (the evidence alerts cite is kept)."
        )
    return (
        f"This range reaches before {horizon}: retention deleted the events stamped before it on {ran}"
        f" ({purge.events:,} events of every actor, the evidence alerts cite kept), and they are not shown or"
        " counted here; how many of them this search would have matched is not known."
    )
