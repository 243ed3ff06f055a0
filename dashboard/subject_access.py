"""The answer to a customer's access request: who read their data, when, what of it and why.

GDPR art. 15 and PIPL art. 45 give a person the right to know what was done
with their data and by whom (art. 15(1)(c): "the recipients or categories of
recipients").  The auditors' CSV export is the organisation's record, and
holds what is not the requester's to see: other customers (as pseudonyms,
still personal data), employee ids, internal addresses, record counts.  This
is the other shape, to hand over: for each access that served the person's
data, the local time, who in words (a role and team, a partner company, an
automated service), the action, the fields and their classes, and the
purpose stated.  Nothing in it names anyone else.  The purpose is the log's
free text, which may quote another customer ("complaint of c-152762,
passport E12345678"): art. 15(4) wants a copy that does not adversely
affect others, so it is quoted with the person's own id as written, the
event's other customers as "another customer", and each e-mail address,
phone number and word naming a record masked as a masked viewer sees it
(``masking.requester_text``), the ticket references readable.

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

The contract lets an access log a sample of the customers it served: an
access that served the person's data among many may not name them.  The
answer says so where accesses of the period did, as the incident report
does, rather than read as complete.  The data are named as the
classification labels them (``[classification]``: "contact details",
"WeChat ID"), not by the log's ids.

An access that falls in an incident's flagged activity (not a false
positive) is listed like the others: the file does not say "incident",
which an open one may not be, and telling a person of a breach is its own
act (GDPR art. 34, PIPL art. 57) that the privacy officer decides.  The
answer's review lines, shown to whoever prepares it and kept in the record
of the export, list those accesses with their incidents, so that the
answer is not sent without that decision.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from dashboard import queries
from dashboard.auth import Identity, Permission
from dashboard.masking import DEFAULT_REFERENCES, requester_text
from dashboard.queries import Export, event_time, events_csv, inert_in_spreadsheets, local_time, record_access
from detectors.classify import UNCLASSIFIED
from detectors.partner_contract import organisation_key
from models.alert import AlertStatus
from models.config import Classification
from models.dashboard import DataAccessKind
from models.event import AccessEvent, ActorKind, Outcome
from models.flagged import flagged_of
from store.base import EventQuery, EventTotal, IncidentQuery, KeptHistory, PurgeRecord, Store, StoredEvent

DELETIONS_LISTED = 3  # retention purges named one by one in an answer, the most recent; the earlier are counted
SUBJECT_COLUMNS = ("time", "who", "action", "data", "categories", "purpose")
OTHER_DATA = "other data"  # the category of fields no class names: listed in "data" all the same
NO_PURPOSE = "no purpose recorded"
# accesses that logged a sample of their customers counted to this many, then "more than": enough to tell the
# person, where counting all of a 45-day simulation's 8,813 took SQLite 1 s and the first 1,000 0.09 s
SAMPLED_COUNTED = 1_000
REVIEWED_ACTORS = 200  # actors of an answer whose incidents are looked up; past them the review says it stopped
REVIEW_LISTED = 20  # accesses in an incident's activity named one by one in the review lines
NONE_SAMPLED = EventTotal(0)  # every access of the period listed a customer id for each of its records


@dataclass(frozen=True, slots=True)
class SubjectAnswer(Export):
    notes: tuple[str, ...] = ()  # the cover note's: the period covered, and what retention deleted
    review: tuple[str, ...] = ()  # for whoever prepares it, in neither file: accesses in an incident's activity

    def cover_note(self, table_name: str) -> str:
        """The note to send with the table (``table_name``: the CSV's file name), as plain text."""
        listed = (
            f"The accesses are listed in {table_name}, one a row, oldest first: {', '.join(SUBJECT_COLUMNS)}."
            if self.events
            else f"{table_name} holds the table's header only: no access to list."
        )
        return "".join(f"{line}\n\n" for line in (*self.notes, listed))


@dataclass(frozen=True, slots=True)
class Labels:
    """How the answer names data classes and fields: the classification's labels, else the names in words."""

    classes: Mapping[str, str]
    fields: Mapping[str, str]

    @classmethod
    def of(cls, classification: Classification) -> Labels:
        named = {name: c.label for name, c in classification.classes.items() if c.label}
        return cls(named, dict(classification.field_labels))

    def data_class(self, name: str) -> str:
        return self.classes.get(name) or readable(name)

    def field(self, name: str) -> str:
        return self.fields.get(name) or readable(name)


NAMES_ONLY = Labels({}, {})  # no labels given: every name in words


def readable(name: str) -> str:
    """A log's name in words, the same way for every name: ``passport_number`` -> ``passport number``,
    ``bank_id`` -> ``bank ID``."""
    words = name.replace("-", "_").split("_")
    return " ".join("ID" if word.lower() == "id" else word for word in words if word) or name


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


def answer_row(
    item: StoredEvent,
    zone: tzinfo,
    partners: Mapping[str, str] | None = None,
    labels: Labels = NAMES_ONLY,
    *,
    requester: str,
    references: str = DEFAULT_REFERENCES,
) -> dict[str, object]:
    """One access as the answer to ``requester``'s request lists it; its purpose as ``requester_text`` quotes it
    (``references``: ``dashboard.readable_references``, kept readable)."""
    event = item.event
    purpose = requester_text(event.purpose, requester, event.customer_ids or (), references) if event.purpose else None
    classes = [labels.data_class(name) for name in item.classes if name != UNCLASSIFIED]
    values = (
        event_time(event.timestamp, zone),
        recipient(event, partners),
        event.action.value,
        ", ".join(dict.fromkeys(labels.field(name) for name in event.fields or ())),
        ", ".join(classes + [OTHER_DATA] * (UNCLASSIFIED in item.classes)),
        purpose or NO_PURPOSE,
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
    period: Period,
    export: Export,
    earlier: int,
    last: datetime | None,
    zone: tzinfo,
    days: int,
    sampled: EventTotal | None = NONE_SAMPLED,
) -> tuple[str, ...]:
    """The cover note's lines: the period, what retention deleted, then what the table holds besides.

    ``earlier``: accesses listed from before the period (kept past a purge as evidence); ``last``: the time of
    the last one listed; ``days``: ``[retention] events_days``; ``sampled``: the period's accesses that served
    data and logged fewer customers than records (``Store.sampled_events``; None: the store does not count them).
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
    notes += _sampled_lines(sampled)
    if not export.complete and last is not None:
        notes.append(
            f"The table lists the first {export.events:,} accesses, up to {local_time(last, zone)}:"
            " the later ones did not fit in one file."
        )
    notes.append(f"Times are {zone} time, with their offset from UTC.")
    return tuple(notes)


def _sampled_lines(sampled: EventTotal | None) -> list[str]:
    """What the list cannot hold: accesses that logged a sample of the customers they served, as the incident
    report says of its events (``report._customer_lines``)."""
    if sampled is None:
        return [
            "Some systems record only a sample of the customers when one access serves many records: an access"
            " that served your data among many others may not be listed here."
        ]
    if not sampled.events and not sampled.more:
        return []
    if not sampled.more:
        many = f"{sampled.events:,} {'access' if sampled.events == 1 else 'accesses'}"
    else:  # counted to the limit, or not at all where counting would have read much of the store
        many = f"More than {sampled.events:,} accesses" if sampled.events else "Many accesses"
    return [
        f"{many} in this period recorded fewer customers than the records they served (only a sample of them):"
        " your data may have been among those records without being recorded as yours, so this answer may not list"
        " every access that served it."
    ]


def incident_review(
    store: Store, listed: Sequence[tuple[str, datetime, str]], zone: tzinfo
) -> tuple[tuple[str, ...], list[str]]:
    """The review lines of accesses listed in an incident's flagged activity, and the incidents' ids.

    ``listed``: each access listed as (actor id, time, its row's who and action).  An incident marked a false
    positive is not one; a resolved one still is (a breach resolved is a breach).
    """
    by_actor: dict[str, list[tuple[datetime, str]]] = {}
    for actor, at, said in listed:
        by_actor.setdefault(actor, []).append((at, said))
    found: list[tuple[datetime, str, str]] = []  # (time, incident id, who and action)
    for actor, accesses in list(by_actor.items())[:REVIEWED_ACTORS]:
        times = [at for at, _ in accesses]
        incidents = [
            incident
            for incident in store.query_incidents(
                IncidentQuery(actor_id=actor, since=min(times), until=max(times), order="oldest", limit=1000)
            )
            if incident.status is not AlertStatus.FALSE_POSITIVE
        ]
        if not incidents:
            continue
        spans = {iid: flagged.spans for iid, flagged in flagged_of(store.get_alerts, incidents).items()}
        for at, said in accesses:
            hit = next((iid for iid, own in spans.items() if any(s.start <= at < s.end for s in own)), None)
            if hit is not None:
                found.append((at, hit, said))
    lines = []
    if found:
        ids = sorted({iid for _, iid, _ in found})
        lines.append(
            "For your review before sending (not in the file): "
            + ("1 access listed falls" if len(found) == 1 else f"{len(found):,} of the accesses listed fall")
            + f" in the flagged activity of {'an incident' if len(ids) == 1 else f'{len(ids)} incidents'}"
            f" ({', '.join(ids)}). The file lists them as it lists the others, in the same words: telling the person"
            " of a breach (GDPR art. 34, PIPL art. 57) is the privacy officer's decision, made apart."
        )
        lines += [f"- {local_time(at, zone)}: {said} ({iid})" for at, iid, said in sorted(found)[:REVIEW_LISTED]]
        if len(found) > REVIEW_LISTED:
            lines.append(f"... and {len(found) - REVIEW_LISTED:,} more (the incidents' reports list their events)")
    if len(by_actor) > REVIEWED_ACTORS:
        lines.append(
            f"The accesses of {len(by_actor) - REVIEWED_ACTORS:,} more actors were not looked up in the incidents:"
            " search them by actor before sending."
        )
    return tuple(lines), sorted({iid for _, iid, _ in found})


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
    labels: Labels = NAMES_ONLY,
    references: str = DEFAULT_REFERENCES,
    now: datetime | None = None,
) -> SubjectAnswer:
    """Every access that served ``customer_id``'s data, oldest first, up to ``cap``, as CSV; recorded.

    Only accesses that succeeded: a denied or failed one disclosed nothing.  All the history kept, as the
    request asks: no dates; the cover note says the period that is (``answer_notes``), up to ``now``.
    ``retention_days``: ``[retention] events_days``, said in the answer; ``labels``: ``Labels.of`` the
    classification, how the data are named; ``references``: ``dashboard.readable_references``, the purposes'
    words kept readable (``requester_text``).
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
    listed: list[tuple[str, datetime, str]] = []  # (actor, time, who and action): looked up in the incidents
    requester = customer_id.strip()

    def row(item: StoredEvent) -> dict[str, object]:
        nonlocal earlier, last
        last = item.event.timestamp
        if period.start is not None and last < period.start:
            earlier += 1
        values = answer_row(item, zone, partners, labels, requester=requester, references=references)
        listed.append((item.event.actor.id, last, f"{values['who']}, {values['action']}"))
        return values

    query = EventQuery(customer_id=requester, outcome=Outcome.SUCCESS, newest_first=False)
    table = events_csv(store, query, SUBJECT_COLUMNS, row, cap)
    sampled = store.sampled_events(period.start, period.end, SAMPLED_COUNTED)
    notes = answer_notes(period, table, earlier, last, zone, retention_days, sampled)
    review, incidents = incident_review(store, listed, zone)
    covered = [None if period.start is None else period.start.isoformat(), period.end.isoformat()]
    what: dict[str, object] = {
        "customer_id": query.customer_id,
        "outcome": Outcome.SUCCESS.value,
        "cap": cap,
        "shape": "subject answer",
        "period": covered,
    }
    if incidents:  # the record of the export says which incidents' activity it listed
        what["incidents"] = incidents
    record_access(store, identity, DataAccessKind.EXPORT, reason, what, table.events)
    return SubjectAnswer(table.csv, table.events, table.complete, notes, review)
