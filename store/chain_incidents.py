"""Incidents in the hash chain: each one's creation and each rise of its severity, so that none is quietly undone.

The incidents and alerts tables are not chained as rows (``store.chain_status``
says why: they change while a replay judges).  But two things the pipeline
does to an incident only ever go one way: it is created, and its severity
rises (an incident's severity is its strongest alert's, and an alert's only
grows: ``detectors.alerts``).  So each is recorded in the chain when it
happens, and ``verify`` names an incident the chain recorded that is no
longer stored (or was not, when the chain recorded it created again), and
one stored at a severity below the highest the chain recorded for it: the
case an intruder deletes before anyone looks, or lowers out of the pager's
reach and the queue's top.

What a record holds, and why (``[incident id, "created" or "raised", severity,
activity up to]``):

- the incident id: what ``verify`` looks up.  It is derived from the actor and
  the start of the first finding (``detectors.incidents``), so a replay of the
  log makes the same incident under it: that is how an auditor finds out
  whose case was deleted.  Not the actor's id: the chain outlives retention
  (what it lists stays), and an employee named next to "incident, high"
  forever is what storage limitation forbids; the triage log's records keep
  no more than the incident id either.
- the severity, as stored in that transaction (its name, the body's).
- the end of its activity (``updated_at``, event time): which finding raised
  it, for the auditor; event time, so a replay records the same.
- created or raised: a creation starts the incident's record afresh (a case a
  replay makes again after retention purged it).

A record is written by the transaction that stores the incident
(``SqliteStore.upsert_alerts``), comparing the row before with the row after
(read back: an older revision judged again does not replace a newer one,
and is not recorded).  So a replay of the same log, or a restart judging
again, which stores the same severities, records nothing twice.  There are a
few a day, one entry per batch of alerts published with any: nothing on the
per-event path.  Triage does not change a severity and records none.

Retention deletes closed incidents on purpose: its transaction appends an
``incidents purge`` entry listing their ids, so ``verify`` tells them from
incidents deleted behind the product's back.  An incident the chain has no
record of (inserted behind its back, or gone before migration
``0016-incident-chain`` chained the incidents then stored) is not compared.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Final

import orjson

from models.alert import Severity
from store.chain import ChainReport, Entry, EntryKind, Problem, append_entry

CREATED, RAISED = "created", "raised"
INCIDENTS: Final[EntryKind] = "incidents"  # the kinds of their entries
PURGE: Final[EntryKind] = "incidents purge"

# groups of problems, each listed up to ``LISTED`` (a bulk DELETE or UPDATE is one line past that)
GONE = "incidents gone that the chain recorded"
LOWERED = "incidents stored at a severity below the one the chain recorded"

_SEVERITIES = {severity.value: severity for severity in Severity}
# incidents have ids of their own, not seqs: the header's seq range is left at 0
_NO_SEQ = 0


# -- writing ------------------------------------------------------------------------------------------
def record_rises(db: sqlite3.Connection, before: Mapping[str, int | None]) -> None:
    """Chain the incidents that ``before`` names (their stored severity rank before this write; None: not stored)
    whose row, read back, was created or now stands higher.  Call inside the transaction that wrote them."""
    if not before:
        return
    records = []
    ids = sorted(before)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        rows = db.execute(
            "SELECT incident_id, severity_rank, json_extract(body, '$.severity'), json_extract(body, '$.updated_at')"
            f" FROM incidents WHERE incident_id IN ({','.join('?' * len(chunk))}) ORDER BY incident_id",
            chunk,
        )
        for incident_id, rank, severity, updated_at in rows:
            was = before[incident_id]
            if was is None:
                records.append([incident_id, CREATED, severity, updated_at])
            elif rank > was:
                records.append([incident_id, RAISED, severity, updated_at])
    if records:
        append_entry(db, INCIDENTS, _NO_SEQ, _NO_SEQ, len(records), None, None, orjson.dumps(records))


def record_purge(db: sqlite3.Connection, incident_ids: Collection[str]) -> None:
    """Record in the chain that retention deleted these incidents (call inside its transaction)."""
    if incident_ids:
        listed = sorted(incident_ids)
        append_entry(db, PURGE, _NO_SEQ, _NO_SEQ, len(listed), None, None, orjson.dumps(listed))


def chain_existing_incidents(db: sqlite3.Connection) -> None:
    """Migration ``0016-incident-chain``: the incidents stored before it, each recorded as created at its severity
    now (the lower of its column's and its body's, should they differ), in one entry.  A change made before it
    runs is not seen."""
    records = []
    for incident_id, rank, severity, updated_at in db.execute(
        "SELECT incident_id, severity_rank, json_extract(body, '$.severity'), json_extract(body, '$.updated_at')"
        " FROM incidents ORDER BY incident_id"
    ):
        column = Severity.from_rank(rank if isinstance(rank, int) else 0)
        in_body = _SEVERITIES.get(severity) if isinstance(severity, str) else None
        lowest = column if in_body is None or in_body.rank > column.rank else in_body
        records.append([incident_id, CREATED, lowest.value, str(updated_at)])
    if records:
        append_entry(db, INCIDENTS, _NO_SEQ, _NO_SEQ, len(records), None, None, orjson.dumps(records))


# -- verifying ----------------------------------------------------------------------------------------
@dataclass(slots=True)
class _Recorded:
    """What the chain recorded of an incident since its latest creation."""

    created: tuple[int, str, str] | None  # entry, severity, activity up to; None: its creation is not recorded
    highest: tuple[int, str, str]  # the record of the highest severity since (the earliest of equals)

    @property
    def rank(self) -> int:
        return _SEVERITIES[self.highest[1]].rank

    def says(self) -> str:
        parts = []
        if self.created is not None:
            parts.append(f"created at {self.created[1]} (activity up to {self.created[2]})")
        if self.highest is not self.created:  # raised since
            parts.append(f"raised to {self.highest[1]} (activity up to {self.highest[2]})")
        return " and ".join(parts)


class IncidentRecords:
    """``verify``'s part for the incidents: their records as the walk along the chain meets them, then the rows."""

    def __init__(self, db: sqlite3.Connection, report: ChainReport) -> None:
        self._db, self._report = db, report
        self._recorded: dict[str, _Recorded] = {}  # not purged since they were recorded
        self._again: list[tuple[str, _Recorded, tuple[int, str, str]]] = []  # created again, unpurged: the record

    @staticmethod
    def owns(entry: Entry) -> bool:
        return entry.kind in (INCIDENTS, PURGE)

    def add(self, entry: Entry) -> None:
        """An incidents entry, its list read (``chain.with_leaves``), in chain order: a purge forgets what it
        deleted, and a creation after it (a replay making the case again) starts afresh."""
        records = self._records(entry)
        if records is None:
            return
        if entry.kind == PURGE:
            for incident_id in records:
                self._recorded.pop(incident_id, None)
            return
        for incident_id, what, severity, until in records:
            record, known = (entry.n, severity, until), self._recorded.get(incident_id)
            if what == CREATED:
                if known is not None:  # a creation is recorded only where no row was stored: this one had gone
                    self._again.append((incident_id, known, record))
                self._recorded[incident_id] = _Recorded(record, record)
            elif known is None:
                self._recorded[incident_id] = _Recorded(None, record)
            elif _SEVERITIES[severity].rank > known.rank:
                known.highest = record

    def close(self, accounted: Collection[str], add: Callable[[str, Problem], None]) -> None:
        """Compare each stored incident the chain recorded with its records; name those gone, but for ``accounted``
        (gone incidents ``store.chain_status`` names already, their triage log being chained)."""
        for incident_id, known, (n, severity, until) in self._again:
            detail = (
                f"deleted behind the product's back, and stored again since: the chain recorded it {known.says()},"
                f" then created again at {severity} (activity up to {until}), and no purge recorded deleting it between"
            )
            add(GONE, Problem("removed", detail, entry=n, incident_id=incident_id))
        stored: set[str] = set()
        checked = 0
        rows = self._db.execute(
            "SELECT incident_id, severity_rank, json_extract(body, '$.severity') FROM incidents ORDER BY incident_id"
        )
        for incident_id, rank, in_body in rows:
            stored.add(incident_id)
            recorded = self._recorded.get(incident_id)
            if recorded is None:
                continue
            checked += 1
            # whatever an intruder left in either place must not stop ``verify``: what cannot be read is lower
            column = Severity.from_rank(rank) if isinstance(rank, int) and 0 <= rank <= 3 else None
            body = _SEVERITIES.get(in_body) if isinstance(in_body, str) else None
            if column is None or body is None or min(column.rank, body.rank) < recorded.rank:
                stored_as = _stored_as(str(rank) if column is None else column.value, in_body)
                detail = f"{stored_as}, but the chain recorded it {recorded.says()}"
                add(LOWERED, Problem("severity", detail, entry=recorded.highest[0], incident_id=incident_id))
        for incident_id in sorted(set(self._recorded) - stored - set(accounted)):
            recorded = self._recorded[incident_id]
            says = recorded.says()
            detail = f"no longer stored, though the chain recorded it {says}, and no purge recorded deleting it"
            add(GONE, Problem("removed", detail, entry=recorded.highest[0], incident_id=incident_id))
        self._report.incidents_checked = checked

    def _records(self, entry: Entry) -> list | None:
        """The entry's list (of records, or of purged ids), or None with a problem if it cannot be read."""
        if entry.leaves is None:
            self._chain(entry, "its list of incidents was removed")
            return None
        if hashlib.sha256(entry.leaves).digest() != entry.leaves_digest:
            self._chain(entry, "its list of incidents was altered: its digest does not match")
        try:
            records = orjson.loads(entry.leaves)
        except orjson.JSONDecodeError:
            records = None
        readable = _is_id if entry.kind == PURGE else _is_record
        if not isinstance(records, list) or not records or not all(map(readable, records)):
            self._chain(entry, "its list of incidents cannot be read")
            return None
        if len(records) != entry.events:
            self._chain(entry, "its list of incidents does not match its header")
            return None
        return records

    def _chain(self, entry: Entry, what: str) -> None:
        self._report.problems.append(Problem("chain", f"the {entry.kind} entry: {what}", entry=entry.n))


def _is_id(value: object) -> bool:
    return isinstance(value, str) and bool(value)


def _is_record(value: object) -> bool:
    """[incident id, created or raised, severity, activity up to], as ``record_rises`` lists one."""
    return (
        isinstance(value, list)
        and len(value) == 4
        and _is_id(value[0])
        and value[1] in (CREATED, RAISED)
        and value[2] in _SEVERITIES
        and isinstance(value[3], str)
    )


def _stored_as(column: str, body: str | None) -> str:
    if column == body:
        return f"stored as {column}"
    return f"stored as {column} (its severity column) and {body or 'none'} (its body)"
