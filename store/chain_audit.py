"""The dashboard's audit log in the hash chain: who read customer data, and who acted on an incident.

Two tables record what the people of the monitoring tool did: ``data_accesses``
(a search, an export, identifiers unmasked, with the reason given) and
``triage_actions`` (an incident acknowledged, closed, dismissed, and why).
Whoever can write the store's file could delete such a row, and an auditor
asking who looked at a customer's data would never know: so they are in the
chain (``store.chain``) as the events are.  Each transaction that adds a row
appends an entry of the table's kind listing, for each row, its id, the
SHA-256 of the whole row (every column) and a line saying what it recorded
(``unmask by audrey at ...``), which is how ``verify`` names a row that is
gone.  Retention deletes the triage actions of the incidents it purges: that
transaction appends a ``triage_actions purge`` entry listing their ids, so
``verify`` tells them from rows deleted behind the product's back.  The
triage log as the chain lists it is also what ``verify`` checks the stored
incidents' statuses against (``store.chain_status``): the incidents are not
chained, but only a triage action changes their status.

One chain, not one of their own: the heads ``run`` logs and the digests
``export-digest`` signs cover every entry before them, so they anchor this
log too, with nothing new to keep or check.  The writes are rare (a person
clicking), so this is written for clarity, not speed: each row is read back
and hashed as stored, the lists are JSON.

A new row's id is past every id the table or its entries ever had: a row
deleted at the end of the table is not replaced by the next one under its
id, which ``verify`` would take for a row changed.

Rows stored before migration ``0015-audit-chain`` were chained by it, one
entry a table, as they were then: a change made before it is not seen.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import orjson

from store.chain import ChainReport, Entry, EntryKind, Problem, ProblemKind, append_entry, leaf_hash


def _field(body: object, key: str) -> object:
    """A field of a row's JSON body, for a summary: whatever an intruder left there must not stop ``verify``."""
    try:
        parsed = orjson.loads(body) if isinstance(body, str) else None
    except orjson.JSONDecodeError:
        parsed = None
    value = parsed.get(key) if isinstance(parsed, dict) else None
    return "?" if value is None else value


def _access_summary(row: tuple) -> str:
    _, at, by_user, kind, incident_id, _ = row
    return f"{kind} by {by_user} at {at}" + (f", incident {incident_id}" if incident_id is not None else "")


def _action_summary(row: tuple) -> str:
    _, incident_id, at, body = row
    return f"{_field(body, 'kind')} of incident {incident_id} by {_field(body, 'by')} at {at}"


@dataclass(frozen=True, slots=True)
class ChainedAction:
    """A triage action as the chain lists it: what ``verify`` reads of the triage log, whatever the table holds now."""

    row: int
    kind: str  # a ``TriageActionKind`` value, or "?" (a body older than the chain that had none)
    incident_id: str
    summary: str


def _chained_action(row_id: int, summary: str) -> ChainedAction | None:
    """``_action_summary``'s line read back: the listed line is all the chain keeps of a row (its leaf is a hash),
    and the only record left of one deleted.  None if it is not such a line.  An incident id is the product's
    (``inc-`` and hex): it holds no " by " to split at wrongly."""
    kind, of, rest = summary.partition(" of incident ")
    incident_id, by, _ = rest.partition(" by ")
    if not (of and by and kind and incident_id):
        return None
    return ChainedAction(row_id, kind, incident_id, summary)


@dataclass(frozen=True, slots=True)
class AuditTable:
    name: EntryKind  # the table, and the kind of the entries that add its rows
    purge_kind: EntryKind  # the kind of those that record a purge of them
    columns: str  # every column, id first: what a leaf hashes, in this order
    noun: str
    plural: str
    summary: Callable[[tuple], str]  # what a row (of ``columns``) records, for a person


DATA_ACCESSES = AuditTable(
    "data_accesses",
    "data_accesses purge",
    "id, at, by_user, kind, incident_id, body",
    "data access",
    "data accesses",
    _access_summary,
)
TRIAGE_ACTIONS = AuditTable(
    "triage_actions",
    "triage_actions purge",
    "id, incident_id, at, body",
    "triage action",
    "triage actions",
    _action_summary,
)
AUDIT_TABLES: dict[str, AuditTable] = {table.name: table for table in (DATA_ACCESSES, TRIAGE_ACTIONS)}
_BY_KIND: dict[str, AuditTable] = {**AUDIT_TABLES, **{table.purge_kind: table for table in AUDIT_TABLES.values()}}


def is_audit_entry(entry: Entry) -> bool:
    return entry.kind in _BY_KIND


# -- writing ------------------------------------------------------------------------------------------
def add_row(db: sqlite3.Connection, table: AuditTable, values: Sequence[object]) -> int:
    """Add a row (its columns after the id) and chain it; call inside the transaction that adds it.  Its id."""
    row_id = _next_id(db, table)
    marks = ",".join("?" * (len(values) + 1))
    db.execute(f"INSERT INTO {table.name} ({table.columns}) VALUES ({marks})", (row_id, *values))
    _chain_rows(db, table, f"SELECT {table.columns} FROM {table.name} WHERE id = ?", (row_id,))
    return row_id


def record_purge(db: sqlite3.Connection, table: AuditTable, ids: Sequence[int]) -> None:
    """Record in the chain that retention deleted these rows (call inside its transaction)."""
    if ids:
        ordered = sorted(ids)
        append_entry(db, table.purge_kind, ordered[0], ordered[-1], len(ordered), None, None, orjson.dumps(ordered))


def chain_existing_rows(db: sqlite3.Connection) -> None:
    """Migration ``0015-audit-chain``: the rows stored before it, chained as they are now, one entry a table."""
    for table in AUDIT_TABLES.values():
        _chain_rows(db, table, f"SELECT {table.columns} FROM {table.name} ORDER BY id", ())


def _chain_rows(db: sqlite3.Connection, table: AuditTable, query: str, params: tuple) -> None:
    # read back, not hashed as bound: what is chained is what SQLite stored
    rows = db.execute(query, params).fetchall()
    if rows:
        listed = [[row[0], leaf_hash(row).hex(), table.summary(row)] for row in rows]
        append_entry(db, table.name, rows[0][0], rows[-1][0], len(rows), None, None, orjson.dumps(listed))


def _next_id(db: sqlite3.Connection, table: AuditTable) -> int:
    (stored,) = db.execute(f"SELECT coalesce(max(id), 0) FROM {table.name}").fetchone()
    (chained,) = db.execute("SELECT coalesce(max(last_seq), 0) FROM chain WHERE kind = ?", (table.name,)).fetchone()
    return max(stored, chained) + 1


# -- verifying ----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Listed:
    entry: int
    leaf: bytes
    summary: str


class AuditRows:
    """``verify``'s part for the audit log: its entries as the walk along the chain meets them, then each row."""

    def __init__(self, db: sqlite3.Connection, report: ChainReport) -> None:
        self._db, self._report = db, report
        self._listed: dict[str, dict[int, _Listed]] = {name: {} for name in AUDIT_TABLES}
        self._purged: dict[str, dict[int, int]] = {name: {} for name in AUDIT_TABLES}  # id: the purge entry

    def add(self, entry: Entry) -> None:
        """An audit entry, its list read (``chain.with_leaves``)."""
        table = _BY_KIND[entry.kind]
        records = self._records(entry)
        if records is None:
            return
        if entry.kind == table.purge_kind:
            self._purged[table.name].update((row_id, entry.n) for row_id in records)
            return
        listed = self._listed[table.name]
        for row_id, leaf, summary in records:
            if row_id in listed:
                self._chain(entry, f"it lists {table.noun} {row_id}, which entry {listed[row_id].entry} listed")
            listed[row_id] = _Listed(entry.n, bytes.fromhex(leaf), summary)

    def triage_log(self) -> list[ChainedAction]:
        """The triage actions the chain lists and no purge deleted, oldest first (ids grow with time): the log as
        recorded, a row edited or deleted since included as it was, one inserted behind the chain's back not."""
        listed, purged = self._listed[TRIAGE_ACTIONS.name], self._purged[TRIAGE_ACTIONS.name]
        found = (_chained_action(row_id, listed[row_id].summary) for row_id in sorted(listed) if row_id not in purged)
        return [action for action in found if action is not None]

    def close(self, signed: bool = False) -> None:
        """Compare every stored row of each table with what the chain listed.  ``signed``: the walk stopped at a
        signed head (``store.chain_signed``), so a row with an id past the last it listed was added after it (ids
        only grow): counted in ``rows_later``, not inserted."""
        for table in AUDIT_TABLES.values():
            self._compare(table, signed)

    def _compare(self, table: AuditTable, signed: bool) -> None:
        listed, purged = self._listed[table.name], self._purged[table.name]
        checked, later, stored = 0, 0, set()
        last = max(listed, default=0) if signed else None
        for row in self._db.execute(f"SELECT {table.columns} FROM {table.name} ORDER BY id"):
            row_id, record = row[0], listed.get(row[0])
            if last is not None and row_id > last:
                later += 1
                continue
            stored.add(row_id)
            if record is None:
                self._problem("inserted", table, row_id, f"{table.summary(row)}: a stored row no chain entry lists")
            elif row_id in purged:
                detail = (
                    f"{record.summary}: stored, though purge entry {purged[row_id]} recorded deleting it:"
                    " stored again behind the product's back"
                )
                self._problem("inserted", table, row_id, detail, record.entry)
            else:
                checked += 1
                if leaf_hash(row) != record.leaf:
                    reads = table.summary(row)
                    now = f"it now reads {reads}" if reads != record.summary else "a field not shown here was changed"
                    detail = f"the stored row differs from what was recorded: {record.summary}; {now}"
                    self._problem("changed", table, row_id, detail, record.entry)
        gone = 0
        for row_id, record in listed.items():
            if row_id in stored:
                continue
            if row_id in purged:
                gone += 1
            else:
                detail = (
                    f"{record.summary}: listed in the chain but no longer stored, and no purge recorded deleting it"
                )
                self._problem("removed", table, row_id, detail, record.entry)
        self._report.rows_checked[table.name] = checked
        self._report.rows_purged[table.name] = gone
        if signed:
            self._report.rows_later[table.name] = later

    def _records(self, entry: Entry) -> list | None:
        """The entry's list (of [id, leaf, summary], or of purged ids), or None with a problem if unreadable."""
        if entry.leaves is None:
            self._chain(entry, "its list of rows was removed")
            return None
        if hashlib.sha256(entry.leaves).digest() != entry.leaves_digest:
            self._chain(entry, "its list of rows was altered: its digest does not match")
        try:
            records = orjson.loads(entry.leaves)
        except orjson.JSONDecodeError:
            records = None
        purge = entry.kind == _BY_KIND[entry.kind].purge_kind
        if not isinstance(records, list) or not all(map(_is_id if purge else _is_listed_row, records)):
            self._chain(entry, "its list of rows cannot be read")
            return None
        ids = records if purge else [record[0] for record in records]
        if (
            not ids
            or ids != sorted(set(ids))
            or len(ids) != entry.events
            or (ids[0], ids[-1]) != (entry.first_seq, entry.last_seq)
        ):
            self._chain(entry, "its list of rows does not match its header")
            return None
        return records

    def _chain(self, entry: Entry, what: str) -> None:
        self._report.problems.append(Problem("chain", f"the {entry.kind} entry: {what}", entry=entry.n))

    def _problem(
        self, kind: ProblemKind, table: AuditTable, row_id: int, detail: str, entry: int | None = None
    ) -> None:
        self._report.problems.append(Problem(kind, detail, entry=entry, table=table.name, row=row_id))


def _is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_listed_row(value: object) -> bool:
    """[id, leaf hash in hex, summary], as ``_chain_rows`` lists a row."""
    if not (isinstance(value, list) and len(value) == 3 and _is_id(value[0]) and isinstance(value[2], str)):
        return False
    leaf = value[1]
    return isinstance(leaf, str) and len(leaf) == 64 and all(c in "0123456789abcdef" for c in leaf)
