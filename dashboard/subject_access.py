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

An empty or short list is an answer only with the period it covers: the
cover note says it (from the retention horizon of the latest purge, or the
oldest access kept, to the time of the answer), with each purge that deleted
older accesses under the retention policy: the person (or a regulator)
learns when each deletion ran and what it deleted, not only the latest,
which after several would read as the only one.  The note is a text file of
its own beside the CSV, which is a plain table (its header the first row):
lines of prose above the header were rows to a spreadsheet or a csv reader,
one cell wide, and the header a row among them.  Columns repeating the period
on every row would leave an empty answer, which has no row, without it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from dashboard import queries
from dashboard.auth import Identity, Permission
from dashboard.queries import Export, event_time, events_csv, inert_in_spreadsheets, local_time, record_access
from detectors.classify import UNCLASSIFIED
from detectors.partner_contract import organisation_key
from models.dashboard import DataAccessKind
from models.event import AccessEvent, ActorKind, Outcome
from store.base import EventQuery, KeptHistory, PurgeRecord, Store, StoredEvent

DELETIONS_LISTED = 3  # retention purges named one by one in an answer, the most recent; the earlier are counted
SUBJECT_COLUMNS = ("time", "who", "action", "data", "categories", "purpose")
OTHER_DATA = "other data"  # the category of fields no class names: listed in "data" all the same
NO_PURPOSE = "no purpose recorded"


@dataclass(frozen=True, slots=True)
class SubjectAnswer(Export):
    notes: tuple[str, ...] = ()  # the cover note's: the period covered, and what retention deleted

    def cover_note(self, table_name: str) -> str:
        """The note to send with the table (``table_name``: the CSV's file name), as plain text."""
        listed = (
            f"The accesses are listed in {table_name}, one a row, oldest first: {', '.join(SUBJECT_COLUMNS)}."
            if self.events
            else f"{table_name} holds the table's header only: no access to list."
        )
        return "".join(f"{line}\n\n" for line in (*self.notes, listed))


def partner_names(detectors: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """The companies of the partner contracts declared (``[detectors.partner_contract.contracts]``), by the key the
    detector matches an event's ``actor.organization`` with: their names as the organisation writes them."""
    contracts = detectors.get("partner_contract", {}).get("contracts", {})
    return {organisation_key(name): name for name in contracts}


def _company(logged: str | None, partners: Mapping[str, str]) -> str:
    if not logged:
        return "a partner company"
    declared = partners.get(organisation_key(logged))
    # a contract declared by an environment variable alone is named as one (fastdelivery_ltd): then the log's
    # "FastDelivery Ltd" reads better; a name with spaces is one written for people ("Blue Sky Travel")
    return declared if declared and (" " in declared or " " not in logged) else logged


def recipient(event: AccessEvent, partners: Mapping[str, str] | None = None) -> str:
    """Who read, as a category the requester may be told: never a person's id.

    ``partners`` (``partner_names``): a company under a declared contract by the contract's name, not the log's.
    """
    actor = event.actor
    if actor.kind is ActorKind.PARTNER:
        company = _company(actor.organization, partners or {})
        return f"{company} (partner company)" + (f", {_words(actor.role)}" if actor.role else "")
    if actor.kind is ActorKind.SERVICE:
        return f"an automated process of the {event.resource.system} system"
    # role and department, each once ("sales", not "sales, sales")
    team = ", ".join(dict.fromkeys(_words(part) for part in (actor.role, actor.department) if part))
    return f"our staff ({team})" if team else "our staff"


def _words(name: str) -> str:
    """``customer_service`` -> ``customer service``: the log's names, readable by anyone."""
    return name.replace("_", " ").strip()


def answer_row(item: StoredEvent, zone: tzinfo, partners: Mapping[str, str] | None = None) -> dict[str, object]:
    event = item.event
    classes = [name for name in item.classes if name != UNCLASSIFIED]
    values = (
        event_time(event.timestamp, zone),
        recipient(event, partners),
        event.action.value,
        ", ".join(event.fields or ()),
        ", ".join(classes + [OTHER_DATA] * (UNCLASSIFIED in item.classes)),
        event.purpose or NO_PURPOSE,
    )
    return {column: inert_in_spreadsheets(value) for column, value in zip(SUBJECT_COLUMNS, values, strict=True)}


@dataclass(frozen=True, slots=True)
class Period:
    """What the answer covers: accesses from ``start`` (None: nothing was ever kept) to ``end``."""

    start: datetime | None
    end: datetime
    history: KeptHistory
    purges: tuple[PurgeRecord, ...] = ()  # those the store recorded (``Store.purges``), oldest first


def period_of(history: KeptHistory, now: datetime, purges: Sequence[PurgeRecord] = ()) -> Period:
    # after a purge, every access since its horizon is kept (and a few older ones, as evidence); before any,
    # the record starts at its oldest access
    start = history.deleted_before if history.deleted_at is not None else history.oldest
    return Period(start, now, history, tuple(purges))


def _deletion_lines(period: Period, kept: str, zone: tzinfo) -> list[str]:
    """What retention deleted before the period: each purge, the most recent first, when it ran and its horizon.

    Every purge bears on the answer: the period starts at the latest horizon, so each deleted accesses from before
    it.  A purge records how many events it deleted in all, not whose: a count of the person's own would have to
    be kept of the very accesses the purge erased, so the answer says it is not known rather than give a figure.
    """
    history = period.history
    if history.deleted_before is None or history.deleted_at is None:
        return []
    gone = f"Accesses before {local_time(history.deleted_before, zone)} are no longer recorded: {kept}"
    if not period.purges:  # a store that keeps the latest deletion's time, not each purge's
        return [f"{gone}; the latest deletion was on {history.deleted_at.astimezone(zone).date().isoformat()}."]
    lines = [f"{gone}."]
    # the store's order, as they ran (a wall clock set back would misorder), the most recent first
    newest_first = period.purges[::-1]
    for purge in newest_first[:DELETIONS_LISTED]:
        lines.append(
            f"On {local_time(purge.at, zone)}, the accesses recorded before {local_time(purge.horizon, zone)}"
            " were deleted under our retention policy."
        )
    earlier = newest_first[DELETIONS_LISTED:]
    if earlier:  # a daily purge would otherwise open a year's answer with 365 sentences
        lines.append(
            f"Before that, {len(earlier)} earlier {'deletion' if len(earlier) == 1 else 'deletions'} under the same"
            f" policy ran from {local_time(earlier[-1].at, zone)} to {local_time(earlier[0].at, zone)}."
        )
    deletions = "these deletions" if len(period.purges) > 1 else "this deletion"
    lines.append(f"How many of the accesses {deletions} removed were to your data is not recorded.")
    return lines


def answer_notes(
    period: Period, export: Export, earlier: int, last: datetime | None, zone: tzinfo, days: int
) -> tuple[str, ...]:
    """The cover note's lines: the period, what retention deleted, then what the table holds besides.

    ``earlier``: accesses listed from before the period (kept past a purge as evidence); ``last``: the time of
    the last one listed; ``days``: ``[retention] events_days``.
    """
    end = local_time(period.end, zone)
    within = export.events - earlier
    if period.start is None:
        notes = [f"No access to your data was recorded up to {end}: our record of accesses held none."]
    else:
        span = f"from {local_time(period.start, zone)} to {end}"
        notes = [
            f"Accesses to your data recorded {span}: {within:,}, listed in the table."
            if within
            else f"No access to your data was recorded {span}."
        ]
    kept = f"we keep the record of accesses for {days} days (our retention policy), then delete it"
    deletions = _deletion_lines(period, kept, zone)
    if deletions:
        notes += deletions
    elif period.start is not None:
        notes.append(f"Our record of accesses begins at {local_time(period.start, zone)}: {kept}.")
    else:
        notes.append(f"We keep the record of accesses for {days} days (our retention policy).")
    if earlier:
        notes.append(
            f"Listed first: {earlier:,} earlier {'access' if earlier == 1 else 'accesses'} to your data, kept past"
            " the retention period as evidence for a security alert."
        )
    if not export.complete and last is not None:
        notes.append(
            f"The table lists the first {export.events:,} accesses, up to {local_time(last, zone)}:"
            " the later ones did not fit in one file."
        )
    notes.append(f"Times are {zone} time, with their offset from UTC.")
    return tuple(notes)


def subject_access_answer(
    store: Store,
    identity: Identity,
    customer_id: str,
    reason: str,
    zone: tzinfo,
    cap: int | None = None,
    *,
    retention_days: int,
    partners: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> SubjectAnswer:
    """Every access that served ``customer_id``'s data, oldest first, up to ``cap``, as CSV; recorded.

    Only accesses that succeeded: a denied or failed one disclosed nothing.  All the history kept, as the
    request asks: no dates; the cover note says the period that is (``answer_notes``), up to ``now``.
    ``retention_days``: ``[retention] events_days``, said in the answer.
    """
    if not identity.can(Permission.AUDIT_SEARCH):
        raise PermissionError(f"{identity.role.value}s may not answer access requests")
    if not reason.strip():
        raise ValueError("a reason is required to answer an access request (the request's number)")
    if not customer_id.strip():
        raise ValueError("an access request is answered for one customer id")
    cap = queries.EXPORT_CAP if cap is None else cap  # read here: set in one place for both CSVs
    now = now or datetime.now(UTC)
    period = period_of(store.kept_history(now), now, store.purges())
    earlier, last = 0, None  # accesses listed from before the period (evidence kept); the last one's time

    def row(item: StoredEvent) -> dict[str, object]:
        nonlocal earlier, last
        last = item.event.timestamp
        if period.start is not None and last < period.start:
            earlier += 1
        return answer_row(item, zone, partners)

    query = EventQuery(customer_id=customer_id.strip(), outcome=Outcome.SUCCESS, newest_first=False)
    table = events_csv(store, query, SUBJECT_COLUMNS, row, cap)
    notes = answer_notes(period, table, earlier, last, zone, retention_days)
    covered = [None if period.start is None else period.start.isoformat(), period.end.isoformat()]
    what = {
        "customer_id": query.customer_id,
        "outcome": Outcome.SUCCESS.value,
        "cap": cap,
        "shape": "subject answer",
        "period": covered,
    }
    record_access(store, identity, DataAccessKind.EXPORT, reason, what, table.events)
    return SubjectAnswer(table.csv, table.events, table.complete, notes)
