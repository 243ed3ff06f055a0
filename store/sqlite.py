"""The embedded store: one SQLite file in the data dir, in WAL mode.

WAL lets the dashboard and the CLI read while the pipeline writes.  Writes
come in large transactions (the pipeline's batches): keeping the indexes up
to date costs per page touched, and a large batch touches each page once.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from functools import partial
from operator import attrgetter, itemgetter, methodcaller
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import orjson

from models.alert import Alert, AlertStatus
from models.deadletter import DeadLetter
from models.event import AccessEvent, Actor
from models.fast_event import FastEvent, validate_event
from models.flagged import flagged
from models.incident import STATUS_AFTER, Incident, TriageAction, TriageActionKind
from store import actor_days, class_postings, customer_postings, event_keys
from store.base import (
    ActionPages,
    AlertQuery,
    Checkpoint,
    EventPage,
    EventQuery,
    EventTotal,
    IncidentQuery,
    IncomingEvent,
    Store,
    StoredEvent,
    StoreNeedsUpgrade,
    StoreStats,
    StoreTooNew,
    WriteResult,
    decode_cursor,
    encode_cursor,
    held_by,
)
from store.chain import ROW_COLUMNS, append_events
from store.chain_audit import TRIAGE_ACTIONS, add_row
from store.chain_incidents import record_rises
from store.customer_postings import index_customers, seqs_of
from store.local_days import local_day_sql, offsets_between
from store.readers import ReadersSummary, Tally
from store.retention import PurgeReport, RetentionPolicy, SqliteRetention
from store.sqlite_bulk import insert_all
from store.sqlite_chain import SqliteChain
from store.sqlite_checkpointer import WalCheckpointer
from store.sqlite_dashboard import SqliteDashboardMixin
from store.sqlite_outbox import SqliteOutbox
from store.sqlite_schema import MIGRATIONS

log = logging.getLogger(__name__)

PAGE_SIZE = 16384  # for new files
WAL_CHECKPOINT_BYTES = 20000 * 4096  # the WAL is copied into the file past this size (20,000 pages of 4 KiB)
BACKGROUND_CHECKPOINT_SLACK = 4  # ... or past four times that, by a writer whose checkpoints a thread does
# SQLite's steps a count may take (in thousands: its progress handler's calls): 2 million, some 400,000 events
# of a time span read for a column (an outcome, an action), 30,000 for a field in their JSON; about 0.15 s here.
# A month of a store of a million is not counted whole for a filter few events pass: "more than" instead.
COUNT_STEPS = 2_000
# the events that served data and listed fewer customer ids than records (``Store.sampled_events``)
_SAMPLED_SQL = (
    "SELECT 1 FROM events WHERE ts >= ? AND ts < ? AND outcome = 'success'"
    " AND record_count > coalesce(json_array_length(body, '$.customer_ids'), 0) LIMIT ?"
)

# every column, seq first, in the order the chain hashes them (store.chain.append_events)
_INSERT_EVENTS = f"INSERT INTO events ({ROW_COLUMNS})"  # store.sqlite_bulk
_CUSTOMER_IDS = attrgetter("event.customer_ids")
_EVENT_ID = attrgetter("event.event_id")
_KEY_HASH = partial(hashlib.blake2b, digest_size=8)  # ``id_key``'s
_DIGEST = methodcaller("digest")
_CLASSES = itemgetter(2)  # IncomingEvent.classes
_ROW_TS = itemgetter(3)  # a row's event time (``_row``)
_UPSERT_ALERT = (
    "INSERT INTO alerts (alert_id, detector, severity_rank, actor_id, status, window_start, window_end, body)"
)
_UPSERT_ALERT_TAIL = (
    "ON CONFLICT(alert_id) DO UPDATE SET severity_rank=excluded.severity_rank,"
    # a revision may start earlier than the first (an hour's finding grown into its day): both ends follow it
    " status=excluded.status, window_start=excluded.window_start, window_end=excluded.window_end,"
    " body=excluded.body"
    # an older revision judged again after a restart does not replace the newer one
    " WHERE json_extract(excluded.body, '$.revision') >= json_extract(alerts.body, '$.revision')"
)
_UPSERT_INCIDENT = (
    "INSERT INTO incidents"
    " (incident_id, actor_id, status, severity_rank, risk_score, window_start, window_end, flagged_end, body)"
)
_UPSERT_INCIDENT_TAIL = (
    "ON CONFLICT(incident_id) DO UPDATE SET"
    " status=excluded.status, severity_rank=excluded.severity_rank, risk_score=excluded.risk_score,"
    " window_start=excluded.window_start, window_end=excluded.window_end, flagged_end=excluded.flagged_end,"
    " body=excluded.body"
    " WHERE json_extract(excluded.body, '$.revision') >= json_extract(incidents.body, '$.revision')"
)
_LATEST_INCIDENT = "SELECT body FROM incidents WHERE actor_id = ? ORDER BY window_end DESC LIMIT 1"


def id_key(event_id: str) -> int:
    """The 64-bit idempotency key of an event id."""
    return int.from_bytes(hashlib.blake2b(event_id.encode(), digest_size=8).digest(), "little", signed=True)


def id_keys(event_ids: Iterable[str]) -> np.ndarray:
    """``id_key`` of each id, as int64: the digests made by maps over C functions and read as one array of
    little-endian int64, with no Python frame an id (it runs for every event written)."""
    digests = map(_DIGEST, map(_KEY_HASH, map(str.encode, event_ids)))
    return np.frombuffer(b"".join(digests), "<i8")


def customer_token(customer_id: str) -> str:
    """The FTS5 token of a customer id: its UTF-8 in hex, one safe word for any id, and no two ids share one.

    Migration 0005's: since 0006 customers are indexed in postings (``store.customer_postings``).

    Hex rather than a hash: one C call per id where two checksums and their formatting cost
    several times more, on the write path's every customer id (migration 0005 re-indexed older stores).
    """
    return "k" + customer_id.encode().hex()


def customer_tokens(customer_ids: Iterable[str]) -> str:
    """An event's FTS5 document: each customer's token once (a contentless row is deleted by giving it again)."""
    # customer_token of each, inlined: "k" + hex, the "k"s joined in with the separators
    tokens = {customer.encode().hex() for customer in customer_ids}
    return "k" + " k".join(tokens) if tokens else ""


def _customer_tokens_of_body(body: str) -> str:
    """``customer_tokens`` of a stored body, as retention reads it (orjson: of repeated keys, the last)."""
    return customer_tokens(orjson.loads(body).get("customer_ids") or ())


def _with_flagged_end(incident: str, alerts: str) -> str:
    """Migration 0013: a stored incident (its body) with its ``flagged_end``, from its stored alerts' (a JSON array
    of their bodies), as ``detectors.incidents.attach`` keeps it now."""
    kept = Incident.model_validate_json(incident)
    members = [Alert.model_validate(body) for body in orjson.loads(alerts)]
    end = flagged(members, kept.window_start, kept.window_end).end
    return kept.model_copy(update={"flagged_end": end}).model_dump_json()


def _newest_flagged(incident: str) -> str:
    return _utc_text(Incident.model_validate_json(incident).newest_flagged)


def _statements(script: str) -> list[str]:
    """Split a script into statements (a ';' inside a comment or string does not end one)."""
    statements, pending = [], ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                statements.append(pending)
            pending = ""
    return statements


def _micros(moment: datetime) -> int:
    return round(moment.timestamp() * 1_000_000)


# True when the body's top-level list ``key`` holds the next parameter.  Of a key given twice, the
# last: the event as ingest read it (orjson and pydantic keep the last), which the indexes and the row
# shown come from.  ``json_each(body, '$.key')`` would read the first.
_BODY_LISTS = (
    "EXISTS (SELECT 1 FROM json_each((SELECT t.value FROM json_each(e.body) t WHERE t.key = '{key}'"
    " ORDER BY t.id DESC LIMIT 1)) WHERE value = ?)"
)
# A field named in the body, two parameters: the name as JSON, then the name.  Parsing the body is the
# cost of a field search; a body without the quoted name cannot list it, unless an escape spells it
# otherwise, so a search for a rare field parses only the bodies that may hold it.
_NAMES_FIELD = f"((instr(e.body, ?) > 0 OR instr(e.body, '\\') > 0) AND {_BODY_LISTS.format(key='fields')})"


_STAMP_DIGITS = 20  # an event time (µs since the epoch) zero-padded: string order is time order
# a search's events (``_events_sql``, its LIMIT the last parameter) by actor and stated purpose ("" as none)
_READERS_SQL = (
    "SELECT nullif(json_extract(body, '$.purpose'), ''), count(*), sum(record_count), min(ts),"
    f" max(printf('%0{_STAMP_DIGITS}d', ts) || json_extract(body, '$.actor'))"
    " FROM ({events}) GROUP BY actor_id, 1"
)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _from_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)  # exact, where a float of seconds would round


def _add_column_filters(query: EventQuery, where: list[str], params: list[str | int]) -> None:
    """The filters on the events table's own columns: resource, action and outcome."""
    if query.resource is not None:
        parts = query.resource.split("/", 2)
        for column, value in zip(("e.system", "e.resource_type", "e.resource_id"), parts, strict=False):
            where.append(f"{column} = ?")
            params.append(value)
    if query.action is not None:
        where.append("e.action = ?")
        params.append(query.action.value)
    if query.outcome is not None:
        where.append("e.outcome = ?")
        params.append(query.outcome.value)


def _add_time_filters(query: EventQuery, where: list[str], params: list[str | int]) -> None:
    """Since, until and the page's cursor."""
    if query.since is not None:
        where.append("e.ts >= ?")
        params.append(_micros(query.since))
    if query.until is not None:
        where.append("e.ts < ?")
        params.append(_micros(query.until))
    if query.cursor is not None:
        ts, seq = decode_cursor(query.cursor)
        where.append(f"(e.ts, e.seq) {'<' if query.newest_first else '>'} (?, ?)")
        params.extend((ts, seq))


def _span(query: EventQuery) -> tuple[int, int]:
    """The earliest and the latest event time (microseconds, both included) a page of ``query`` can hold."""
    earliest = actor_days.EARLIEST if query.since is None else _micros(query.since)
    latest = actor_days.LATEST if query.until is None else _micros(query.until) - 1
    if query.cursor is not None:  # the page starts at the cursor's time
        ts, _ = decode_cursor(query.cursor)
        if query.newest_first:
            latest = min(latest, ts)
        else:
            earliest = max(earliest, ts)
    return earliest, latest


def _incident_row(incident: Incident) -> tuple:
    return (
        incident.incident_id,
        incident.actor_id,
        incident.status.value,
        incident.severity.rank,
        incident.risk_score,
        _utc_text(incident.window_start),
        _utc_text(incident.window_end),
        _utc_text(incident.newest_flagged),
        incident.model_dump_json(),
    )


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class SqliteStore(SqliteDashboardMixin, SqliteOutbox, SqliteChain, SqliteRetention, Store):
    def __init__(
        self, path: Path, cache_mb: int = 256, readonly: bool = False, background_checkpoints: bool = False
    ) -> None:
        """``background_checkpoints``: the log is copied into the file by a thread (``store.sqlite_checkpointer``)."""
        self.path = Path(path)
        self._checkpointer: WalCheckpointer | None = None
        self._on_close: Callable[[], object] | None = None  # set by ``open_writer`` on the writers it opens
        self.cache_mb = cache_mb
        if not readonly:
            # customer ids are in the store in clear: a data dir and a store made here are their owner's only
            # (SQLite gives the -wal and -shm files the store's own mode); what exists keeps its mode
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            with suppress(FileExistsError):
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        uri = f"file:{self.path}?mode=ro" if readonly else f"file:{self.path}"
        self._db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False, timeout=30)
        # for migrations 0005 and 0006, which index customer ids from the stored bodies, and 0009
        self._db.create_function("customer_tokens_of_body", 1, _customer_tokens_of_body, deterministic=True)
        for name, arity, function in (
            ("with_flagged_end", 2, _with_flagged_end),
            ("newest_flagged", 1, _newest_flagged),
        ):
            self._db.create_function(name, arity, function, deterministic=True)  # for migration 0013
        customer_postings.register(self._db)
        class_postings.register(self._db)
        self._db.execute("PRAGMA busy_timeout=30000")
        self._refuse_a_foreign_database()  # before anything below changes the file (its journal mode, our tables)
        self._refuse_a_newer_store()  # and before a writer migrates it: this version would write what that one moved
        if not readonly:
            # A new file gets 16 KiB pages (SQLite's default is 4): a batch's rows and index
            # entries land on fewer pages, about a tenth less CPU per event written.  A file
            # that exists keeps its own size (in WAL mode it cannot change): this is then a no-op.
            self._db.execute(f"PRAGMA page_size={PAGE_SIZE}")
        # After the page size: a limit set before it on a new file is counted in the default 4 KiB pages
        # and then held as as many 16 KiB pages, three times the memory asked for (measured: 69 MB for
        # 16 MiB, 22 MB set after).
        self._db.execute(f"PRAGMA cache_size=-{cache_mb * 1024}")
        if not readonly:
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a committed transaction survives the process
            # being killed; only a power cut may lose the last few.
            self._db.execute("PRAGMA synchronous=NORMAL")
            # checkpoint less often than the default 1,000 pages: large
            # batches would otherwise be written twice over and over
            page_size = self._db.execute("PRAGMA page_size").fetchone()[0]
            own_checkpoint_pages = WAL_CHECKPOINT_BYTES // page_size
            if background_checkpoints:  # only if the thread falls far behind does this connection wait on it
                own_checkpoint_pages *= BACKGROUND_CHECKPOINT_SLACK
            self._db.execute(f"PRAGMA wal_autocheckpoint={own_checkpoint_pages}")
            self._migrate()
            if background_checkpoints:
                self._checkpointer = WalCheckpointer(self.path)
        else:
            self._refuse_if_not_migrated()
        self._last_seq = self._db.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
        self._classes_text: dict[frozenset[str], str] = {}  # the ``classes`` column of each set of classes

    # -- schema -----------------------------------------------------------------
    def _refuse_a_foreign_database(self) -> None:
        """A SQLite file of another program, given as the store: our tables added to it would mix two products'
        data, and switching it to WAL would change how its own program opens it.  (``DatabaseError``: what any
        file that is not a store raises here, a file that is not SQLite at all included.)"""
        tables = [
            name
            for (name,) in self._db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        if tables and "schema_migrations" not in tables:
            self._db.close()
            shown = ", ".join(tables[:5]) + (f" and {len(tables) - 5} more" if len(tables) > 5 else "")
            raise sqlite3.DatabaseError(f"not an accesswatch store: a SQLite file of other tables ({shown})")

    def _refuse_a_newer_store(self) -> None:
        """A store that a newer version migrated: migrations this code does not know were applied to it."""
        try:
            applied = self.migrations
        except sqlite3.OperationalError:  # a new file, or one of no tables: nothing to compare
            return
        known = {name for name, _ in MIGRATIONS}
        unknown = [name for name in applied if name not in known]
        if unknown:
            self._db.close()
            raise StoreTooNew(
                f"the store at {self.path} was upgraded by a newer accesswatch ({', '.join(unknown)}): this version"
                " cannot use it; run that version, or restore the copy of the data dir made before the upgrade"
            )

    def _migrate(self) -> None:
        db = self._db
        db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
        applied = set(self.migrations)
        due = [name for name, _ in MIGRATIONS if name not in applied]
        if applied and due:  # a new store's first migrations are its making, not an upgrade
            log.info("upgrading the store at %s: %s", self.path, ", ".join(due))
        for name, script in MIGRATIONS:
            db.execute("BEGIN IMMEDIATE")
            try:
                if db.execute("SELECT 1 FROM schema_migrations WHERE name = ?", (name,)).fetchone():
                    db.execute("ROLLBACK")  # applied before, or by another process meanwhile
                    continue
                if callable(script):  # one that needs Python (hashing rows: store.chain_audit)
                    script(db)
                else:
                    for statement in _statements(script):
                        db.execute(statement)
                db.execute("INSERT INTO schema_migrations VALUES (?, ?)", (name, _utc_text(datetime.now(UTC))))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def _refuse_if_not_migrated(self) -> None:
        try:
            applied = set(self.migrations)
        except sqlite3.OperationalError:  # no schema_migrations table: not a store, or an empty file
            applied = set()
        pending = [name for name, _ in MIGRATIONS if name not in applied]
        if pending:
            self._db.close()
            raise StoreNeedsUpgrade(
                f"the store at {self.path} was written by an older accesswatch and needs upgrading"
                f" ({', '.join(pending)}): a command that writes to it upgrades it at start"
                " (accesswatch run, replay, or the dashboard); then read it again"
            )

    @property
    def migrations(self) -> list[str]:
        return [name for (name,) in self._db.execute("SELECT name FROM schema_migrations ORDER BY rowid")]

    # -- ingestion ----------------------------------------------------------------
    def purge(self, policy: RetentionPolicy, dry_run: bool = False) -> PurgeReport:
        if not dry_run:
            # the events about to go folded into the dashboard's hourly figures first: those figures are what a
            # report gives as ingested once retention deleted events, and a store no dashboard opened since the
            # events came has none yet (folded afterwards, they would count only what the purge kept)
            self.fold()
        return super().purge(policy, dry_run)

    def write(self, events: Sequence[IncomingEvent], dead_letters: Sequence[DeadLetter] = ()) -> WriteResult:
        result = WriteResult()
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            if events:
                # another connection (the pipeline's writer) may have stored events since: the position
                # comes from the file, or the new rows' seqs, index rows and chain entry would be wrong
                self._last_seq = db.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
                rows = self._write_events(events, result)
                if rows:  # tamper evidence, in this transaction (store.chain)
                    append_events(db, rows)
            if dead_letters:
                result.dead_letters_stored = self._write_dead_letters(dead_letters)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            self._last_seq = db.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
            raise
        result.last_seq = self._last_seq
        return result

    def _write_events(self, events: Sequence[IncomingEvent], result: WriteResult) -> list[tuple]:
        """Store the new events; return their rows as inserted, seq first, in store order (for the chain)."""
        db = self._db
        # one copy of each id within the batch; a repeat is a duplicate like any other.  Made in C first: if no
        # id repeats, it is what the loop below makes
        unique = dict(zip(map(_EVENT_ID, events), events, strict=True))
        if len(unique) < len(events):
            unique = {}
            for incoming in events:
                event_id = incoming.event.event_id
                earlier = unique.get(event_id)
                if earlier is None:
                    unique[event_id] = incoming
                else:
                    self._count_repeat(earlier.event, incoming, result)
        first_seq = self._last_seq + 1
        hashed = id_keys(unique)
        taken = event_keys.known(db, hashed)
        keys = hashed.tolist()
        if taken or len(set(keys)) < len(keys):
            stored, stored_rows = self._rows_past_repeats(unique, keys, taken, first_seq, result)
        else:  # every event is new under a key of its own: no per-event bookkeeping (map calls _row in C)
            stored = list(unique.values())
            stored_rows = list(map(self._row, stored, keys, range(first_seq, first_seq + len(stored))))
        if not stored:
            return stored_rows
        last_seq = first_seq + len(stored) - 1
        insert_all(db, _INSERT_EVENTS, stored_rows)
        # The keys are read back from the rows just inserted (pages in the cache), in SQLite and without
        # the interpreter lock, instead of bound from Python a value at a time.
        event_keys.add_stored(db, first_seq, last_seq)
        index_customers(db, first_seq, list(map(_CUSTOMER_IDS, stored)))
        times = np.fromiter(map(_ROW_TS, stored_rows), np.int64, len(stored_rows))
        class_postings.index_classes(db, first_seq, list(map(_CLASSES, stored)), times)
        self._last_seq = last_seq
        result.stored = stored
        return stored_rows

    def _rows_past_repeats(
        self, unique: dict[str, IncomingEvent], keys: list[int], taken: set[int], first_seq: int, result: WriteResult
    ) -> tuple[list[IncomingEvent], list[tuple]]:
        """The rows of a batch some of whose keys are taken: by the store or by another id of the batch."""
        row = self._row
        stored: list[IncomingEvent] = []
        stored_rows: list[tuple] = []
        owners: dict[int, str] = {}  # keys taken by this batch, and the id each was taken for
        for (event_id, incoming), key in zip(unique.items(), keys, strict=True):
            if key in taken or key in owners:
                body = self._stored_body(event_id, key)
                if body is not None:
                    self._count_repeat(validate_event(body), incoming, result)
                    continue
                if key in taken and event_keys.purged_check(self._db, key) == event_keys.id_check(event_id):
                    # Retention deleted it: a duplicate, not stored or judged again.  Its content is gone, so a
                    # changed copy cannot be told from the same one: no conflict, never a tampering finding.
                    result.duplicates += 1
                    continue
                # a hash collision (one in 2^64 per pair: handled, not assumed away): stored without a key
                stored_rows.append(row(incoming, None, first_seq + len(stored)))
            else:
                owners[key] = event_id
                stored_rows.append(row(incoming, key, first_seq + len(stored)))
            stored.append(incoming)
        return stored, stored_rows

    def _count_repeat(self, earlier: FastEvent, incoming: IncomingEvent, result: WriteResult) -> None:
        result.duplicates += 1
        if earlier != incoming.event:
            result.conflicts.append(incoming.event.event_id)
            result.refused.append(incoming)  # for the tampering finding (ingest.tampering)

    def _stored_body(self, event_id: str, key: int) -> str | None:
        """The body stored for this id: under its key, or without one (it collided with another id's)."""
        row = self._db.execute(
            "SELECT body FROM events WHERE (seq = ? AND event_id = ?) OR (id_key IS NULL AND event_id = ?)",
            (event_keys.seq_of(self._db, key), event_id, event_id),
        ).fetchone()
        return row[0] if row else None

    def _join_classes(self, classes: frozenset[str]) -> str:
        """The ``classes`` column of a set of classes, kept: a few dozen combinations in all, joined once each."""
        if len(self._classes_text) >= 4096:
            self._classes_text.clear()
        joined = self._classes_text[classes] = ",".join(sorted(classes))
        return joined

    def _row(self, incoming: IncomingEvent, key: int | None, seq: int) -> tuple:
        event = incoming.event
        resource = event.resource
        actor = event.actor
        classes = self._classes_text.get(incoming.classes)
        if classes is None:
            classes = self._join_classes(incoming.classes)
        return (
            seq,  # the chain hashes the row with its seq: carried here, not copied into a new tuple there
            key,
            event.event_id,
            round(event.timestamp.timestamp() * 1_000_000),  # _micros, inlined: it runs for every event
            actor.id,
            # _value_ is the member's plain str: the .value property costs more than the rest of the row
            actor.kind._value_,
            event.action._value_,
            event.outcome._value_,
            resource.system,
            resource.type,
            resource.id,
            event.record_count,
            classes,
            event.source_ip,
            incoming.raw.decode(),
        )

    def _write_dead_letters(self, dead_letters: Sequence[DeadLetter]) -> int:
        before = self._db.total_changes
        self._db.executemany(
            "INSERT OR IGNORE INTO dead_letters (digest, received_at, source, position, reason, raw, raw_size)"
            " VALUES (?,?,?,?,?,?,?)",
            [
                (
                    hashlib.sha256(f"{d.source}\x1f{d.position}\x1f".encode() + d.raw).digest(),
                    _utc_text(d.received_at),
                    d.source,
                    d.position,
                    d.reason,
                    d.raw,
                    d.raw_size,
                )
                for d in dead_letters
            ],
        )
        return self._db.total_changes - before

    def upsert_alerts(self, alerts: Sequence[Alert], incidents: Sequence[Incident] = ()) -> None:
        if not alerts and not incidents:
            return
        db = self._db
        # A few statements for the lot, not a look-up and a write each: during a replay this runs on the store
        # writer's thread, where every statement lets go of the interpreter lock and may wait out the
        # parser's switch interval to take it back.
        db.execute("BEGIN IMMEDIATE")
        try:
            triaged = self._column_of("incidents", "incident_id", "body", [i.incident_id for i in incidents])
            rows = []
            rising: dict[str, int | None] = {}  # new or more severe: chained once stored (store.chain_incidents)
            for incident in incidents:
                body = triaged.get(incident.incident_id)
                if body is None:
                    rising[incident.incident_id] = None
                else:  # a person's triage stands
                    stored = Incident.model_validate_json(body)
                    incident = incident.model_copy(update={"status": stored.status, "assignee": stored.assignee})
                    if incident.severity.rank > stored.severity.rank:
                        rising[incident.incident_id] = stored.severity.rank
                rows.append(_incident_row(incident))
            insert_all(db, _UPSERT_INCIDENT, rows, _UPSERT_INCIDENT_TAIL)
            record_rises(db, rising)
            # each stored alert's status and incident, in one column: a statement, not two
            statuses = self._column_of(
                "alerts", "alert_id", "status || ' ' || coalesce(json_extract(body, '$.incident_id'), '')",
                [a.alert_id for a in alerts],
            )  # fmt: skip
            rows = []
            for alert in alerts:
                status, _, held_by = statuses.get(alert.alert_id, "").partition(" ")
                # a person's triage stands, in the incident it was given in: an alert that grew after its
                # incident was closed moves to another (ingest.pipeline), in that one's status
                moved = held_by not in ("", alert.incident_id)
                if status and status != alert.status.value and not moved:
                    alert = alert.model_copy(update={"status": AlertStatus(status)})
                rows.append(
                    (
                        alert.alert_id,
                        alert.detector,
                        alert.severity.rank,
                        alert.actor_id,
                        alert.status.value,
                        _utc_text(alert.window_start),
                        _utc_text(alert.window_end),
                        alert.model_dump_json(),
                    )
                )
            insert_all(db, _UPSERT_ALERT, rows, _UPSERT_ALERT_TAIL)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _column_of(self, table: str, key: str, column: str, ids: Sequence[str]) -> dict[str, str]:
        """``column`` of the rows of ``table`` whose ``key`` is one of ``ids``, by key (a statement per 500)."""
        found: dict[str, str] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            listed = ",".join("?" * len(chunk))
            found.update(self._db.execute(f"SELECT {key}, {column} FROM {table} WHERE {key} IN ({listed})", chunk))
        return found

    def _put_incident(self, incident: Incident) -> None:
        insert_all(self._db, _UPSERT_INCIDENT, [_incident_row(incident)], _UPSERT_INCIDENT_TAIL)

    def save_checkpoint(self, name: str, seq: int, state: bytes) -> None:
        self._db.execute(
            "INSERT INTO checkpoints (name, seq, state, saved_at) VALUES (?,?,?,?)"
            " ON CONFLICT(name) DO UPDATE SET seq=excluded.seq, state=excluded.state, saved_at=excluded.saved_at",
            (name, seq, state, _utc_text(datetime.now(UTC))),
        )

    def load_checkpoint(self, name: str) -> Checkpoint | None:
        row = self._db.execute("SELECT seq, state, saved_at FROM checkpoints WHERE name = ?", (name,)).fetchone()
        if row is None:
            return None
        return Checkpoint(name, row[0], bytes(row[1]), datetime.fromisoformat(row[2]))

    def events_after(self, seq: int, batch: int = 10_000) -> Iterator[list[IncomingEvent]]:
        while True:
            rows = self._db.execute(
                "SELECT seq, body, classes FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (seq, batch)
            ).fetchall()
            if not rows:
                return
            yield [
                IncomingEvent(validate_event(body), body.encode(), frozenset(filter(None, c.split(","))))
                for _, body, c in rows
            ]
            seq = rows[-1][0]

    def open_writer(self) -> SqliteStore:
        """Its own connection: SQLite serialises writers itself, and a connection must not be shared mid-transaction.

        The replay's writer: it leaves copying the log into the file to a thread beside it.  While it
        is open this connection leaves it to that thread too.  Its commits (the pipeline's alerts and
        checkpoints, between the writer's batches) would otherwise find the log past this
        connection's smaller limit and copy it themselves, with two fsyncs, on the path each batch
        waits for: 0.5 s of a 300,000-event replay (strace), 3.5 s of a million (py-spy).
        """
        writer = SqliteStore(self.path, cache_mb=self.cache_mb, background_checkpoints=True)
        own_limit = self._db.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        writers_limit = writer._db.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        self._db.execute(f"PRAGMA wal_autocheckpoint={max(own_limit, writers_limit)}")
        writer._on_close = lambda: self._restore_autocheckpoint(own_limit)
        return writer

    def _restore_autocheckpoint(self, pages: int) -> None:
        try:
            self._db.execute(f"PRAGMA wal_autocheckpoint={pages}")
        except sqlite3.ProgrammingError:  # this store was closed first: nothing to restore
            pass

    @property
    def last_seq(self) -> int:
        return self._last_seq

    # -- reading --------------------------------------------------------------------
    def query_events(self, query: EventQuery) -> EventPage:
        if query.data_class is not None and query.event_id is None and query.customer_id is None:
            rows = self._rows_by_class(query)
        else:
            sql, params = self._events_sql(query, self._candidate_seqs(query))
            rows = self._db.execute(sql, (*params, query.limit + 1)).fetchall()
        items = [
            StoredEvent(
                seq=seq, event=AccessEvent.model_validate_json(body), classes=[c for c in classes.split(",") if c]
            )
            for seq, _, body, classes in rows[: query.limit]
        ]
        next_cursor = None
        if len(rows) > query.limit:
            seq, ts = rows[query.limit - 1][0], rows[query.limit - 1][1]
            next_cursor = encode_cursor(ts, seq)
        return EventPage(items=items, next_cursor=next_cursor)

    def count_events(self, query: EventQuery, at_most: int) -> EventTotal:
        """Counted in SQL, no event read into Python, within ``COUNT_STEPS`` of SQLite's: a filter few events
        pass (an outcome over a month of a big store) would make the count a scan of the whole span, where the
        page found its events among the newest.  Past the budget, "more than none": the page says the rest."""
        query = query.model_copy(update={"cursor": None})
        steps = iter(range(COUNT_STEPS))
        with self._read_snapshot():
            self._db.set_progress_handler(lambda: next(steps, None) is None, 1000)
            try:
                counted = self._count(query, at_most + 1)
            except sqlite3.OperationalError as exc:
                if "interrupted" not in str(exc):
                    raise
                return EventTotal(0, more=True)
            finally:  # before the snapshot's COMMIT, which the spent budget would interrupt too
                self._db.set_progress_handler(None, 0)
        return EventTotal(at_most, more=True) if counted > at_most else EventTotal(counted)

    def sampled_events(self, since: datetime | None, until: datetime, at_most: int) -> EventTotal:
        """Found along the index on time, reading each event's list length from its JSON, within ``COUNT_STEPS``
        of SQLite's (7% of a simulated log's events are sampled: the first 1,000 found in 0.09 s); past the
        budget, "more than" those found by then."""
        steps = iter(range(COUNT_STEPS))
        found = 0
        with self._read_snapshot():
            self._db.set_progress_handler(lambda: next(steps, None) is None, 1000)
            try:
                earliest = actor_days.EARLIEST if since is None else _micros(since)
                for _ in self._db.execute(_SAMPLED_SQL, (earliest, _micros(until), at_most + 1)):
                    found += 1
            except sqlite3.OperationalError as exc:
                if "interrupted" not in str(exc):
                    raise
                return EventTotal(found, more=True)
            finally:  # before the snapshot's COMMIT, which the spent budget would interrupt too
                self._db.set_progress_handler(None, 0)
        return EventTotal(at_most, more=True) if found > at_most else EventTotal(found)

    def readers(self, query: EventQuery, top: int, at_most: int, top_purposes: int = 3) -> ReadersSummary:
        """Grouped in SQL where the search's filter runs, by actor and stated purpose, the newest ``at_most``
        matching events: a row per group comes back, no event is read into Python.  Whether more matched is
        counted as ``count_events`` counts them (without its budget: the summary read that many already)."""
        query = query.model_copy(update={"cursor": None, "newest_first": True})
        tally = Tally()
        with self._read_snapshot():
            for seqs in self._chunks(query, at_most):
                sql, params = self._events_sql(query, seqs, columns="e.ts, e.actor_id, e.record_count, e.body")
                groups = self._db.execute(_READERS_SQL.format(events=sql), (*params, at_most - tally.events))
                for purpose, events, records, first, newest in groups:
                    # the newest event's time and actor: the greatest of the zero-padded strings
                    stamp, actor = int(newest[:_STAMP_DIGITS]), Actor.model_validate_json(newest[_STAMP_DIGITS:])
                    tally.add_group(actor, purpose, events, records, _from_micros(first), _from_micros(stamp))
                if tally.events >= at_most:
                    break
            complete = tally.events < at_most or self._count(query, at_most + 1) <= at_most
        return tally.summary(top, top_purposes, complete)

    def _chunks(self, query: EventQuery, first_chunk: int) -> Iterable[list[int] | None]:
        """The candidate seqs a page of ``query`` is read among, led as ``query_events`` leads it."""
        if query.data_class is not None and query.event_id is None and query.customer_id is None:
            return class_postings.seqs_in_order(
                self._db, query.data_class, *_span(query), query.newest_first, None, first_chunk=first_chunk
            )
        return [self._candidate_seqs(query)]

    def _count(self, query: EventQuery, wanted: int) -> int:
        """The matching events, to ``wanted`` at most, led as a page is (``query_events``)."""
        counted = 0
        for seqs in self._chunks(query, wanted):
            sql, params = self._events_sql(query, seqs, columns="e.seq")
            counted += self._db.execute(f"SELECT count(*) FROM ({sql})", (*params, wanted - counted)).fetchone()[0]
            if counted >= wanted:
                break
        return counted

    def _rows_by_class(self, query: EventQuery) -> list[tuple]:
        """A page's rows (at most one past the page) led by its data class's postings.

        The postings give the class's seqs in the page's order, a chunk at a time (``class_postings``);
        each chunk is read and filtered as any candidate seqs are, until the page is full.  A field has
        no index of its own: given with its class, the class's postings narrow first.
        """
        assert query.data_class is not None
        wanted = query.limit + 1
        after = None
        if query.cursor is not None:
            ts, seq = decode_cursor(query.cursor)
            after = (ts, seq)
        chunks = class_postings.seqs_in_order(
            self._db, query.data_class, *_span(query), query.newest_first, after, first_chunk=wanted
        )
        found: list[tuple] = []
        with self._read_snapshot():  # the postings and the events as one moment had them
            for seqs in chunks:
                sql, params = self._events_sql(query, seqs)
                found += self._db.execute(sql, (*params, wanted - len(found))).fetchall()
                if len(found) == wanted:
                    break
        return found

    @contextmanager
    def _read_snapshot(self) -> Iterator[None]:
        """Statements that read as one (a writer's commit meanwhile is not seen), unless inside a transaction."""
        if self._db.in_transaction:
            yield
            return
        self._db.execute("BEGIN")
        try:
            yield
        finally:
            self._db.execute("COMMIT")

    def _events_sql(
        self, query: EventQuery, seqs: list[int] | None, columns: str = "e.seq, e.ts, e.body, e.classes"
    ) -> tuple[str, list[str | int]]:
        """A page's SELECT (its LIMIT the last parameter) of the events ``seqs``, or else led by an index.

        The candidate seqs come from the event id's key (one event), the customer's postings or the data
        class's; without them, the actor's days lead, else the time index.  Every filter is checked on the
        rows that leads to, the class and the times too: an index entry alone never makes an event match.
        """
        where: list[str] = []
        params: list[str | int] = []
        if seqs is not None:
            where.append("e.seq IN (SELECT value FROM json_each(?))")
            params.append(orjson.dumps(seqs).decode())
        if query.event_id is not None:
            where.append("e.event_id = ?")  # a key may be another id's (a 64-bit hash)
            params.append(query.event_id)
        if query.customer_id is not None:
            where.append(_BODY_LISTS.format(key="customer_ids"))  # the postings hold a hash: re-check the id
            params.append(query.customer_id)
        if query.data_class is not None:
            where.append("instr(',' || e.classes || ',', ?) > 0")  # not LIKE: "_" in a class name would match any
            params.append(f",{query.data_class},")
        if query.field is not None:
            where.append(_NAMES_FIELD)
            params.extend((orjson.dumps(query.field).decode(), query.field))
        by_day = query.actor_id is not None and seqs is None and query.data_class is None
        if query.actor_id is not None:
            where.append("e.actor_id = ?")
            params.append(query.actor_id)
            if by_day:  # the actor's index, day by day (``store.actor_days``)
                where.append(actor_days.WITHIN_DAYS)
                params.extend(actor_days.within_days(*_span(query)))
        _add_column_filters(query, where, params)
        _add_time_filters(query, where, params)
        order = "DESC" if query.newest_first else "ASC"
        # the day first: the same order (days are in time order), which the day-led actor index gives
        by = f"{actor_days.DAY} {order}, " if by_day else ""
        sql = (
            f"SELECT {columns} FROM events e"
            + (f" WHERE {' AND '.join(where)}" if where else "")
            + f" ORDER BY {by}e.ts {order}, e.seq {order} LIMIT ?"
        )
        return sql, params

    def _candidate_seqs(self, query: EventQuery) -> list[int] | None:
        """The seqs the event id's key and the customer's postings allow (to re-check); None: neither given."""
        found: list[int] | None = None
        if query.event_id is not None:
            found = self._seqs_of_event_id(query.event_id)
        if query.customer_id is not None:
            postings = seqs_of(self._db, query.customer_id)
            found = postings if found is None else sorted(set(found) & set(postings))
        return found

    def _seqs_of_event_id(self, event_id: str) -> list[int]:
        """Where an id may be stored: under its key, and without one (its key collided with another id's)."""
        keyed = event_keys.seq_of(self._db, id_key(event_id))
        collided = self._db.execute("SELECT seq FROM events WHERE id_key IS NULL AND event_id = ?", (event_id,))
        return sorted({seq for (seq,) in collided} | ({keyed} if keyed is not None else set()))

    def query_alerts(self, query: AlertQuery) -> list[Alert]:
        where = ["severity_rank >= ?"]
        params: list[str | int] = [query.min_severity.rank]
        if query.statuses:
            where.append(f"status IN ({','.join('?' * len(query.statuses))})")
            params.extend(status.value for status in query.statuses)
        if query.detector:
            where.append("detector = ?")
            params.append(query.detector)
        if query.actor_id:
            where.append("actor_id = ?")
            params.append(query.actor_id)
        if query.since is not None:
            where.append("window_end >= ?")
            params.append(_utc_text(query.since))
        if query.until is not None:
            where.append("window_start < ?")
            params.append(_utc_text(query.until))
        order = "DESC" if query.newest_first else "ASC"
        rows = self._db.execute(
            f"SELECT body FROM alerts WHERE {' AND '.join(where)}"
            f" ORDER BY window_start {order}, alert_id {order} LIMIT ? OFFSET ?",
            (*params, query.limit, query.offset),
        ).fetchall()
        return [Alert.model_validate_json(body) for (body,) in rows]

    def get_alert(self, alert_id: str) -> Alert | None:
        row = self._db.execute("SELECT body FROM alerts WHERE alert_id = ?", (alert_id,)).fetchone()
        return Alert.model_validate_json(row[0]) if row else None

    def set_alert_status(self, alert_id: str, status: AlertStatus) -> Alert | None:
        alert = self.get_alert(alert_id)
        if alert is None:
            return None
        alert = alert.model_copy(update={"status": status})
        self._db.execute(
            "UPDATE alerts SET status = ?, body = ? WHERE alert_id = ?",
            (status.value, alert.model_dump_json(), alert_id),
        )
        return alert

    def get_alerts(self, alert_ids: Sequence[str]) -> list[Alert]:
        bodies = self._column_of("alerts", "alert_id", "body", list(dict.fromkeys(alert_ids)))
        found = [Alert.model_validate_json(body) for body in bodies.values()]
        return sorted(found, key=Alert.listing_order)

    # -- incidents and triage ---------------------------------------------------------
    def get_incident(self, incident_id: str) -> Incident | None:
        row = self._db.execute("SELECT body FROM incidents WHERE incident_id = ?", (incident_id,)).fetchone()
        return Incident.model_validate_json(row[0]) if row else None

    def latest_incident(self, actor_id: str) -> Incident | None:
        row = self._db.execute(_LATEST_INCIDENT, (actor_id,)).fetchone()
        return Incident.model_validate_json(row[0]) if row else None

    def latest_incidents(self, actor_ids: Sequence[str]) -> dict[str, Incident]:
        # One statement for many actors, each its own ``latest_incident`` query (the same plan, the same pick
        # among ties): a replay publishes a batch's alerts on the store writer's thread, where every statement
        # lets go of the interpreter lock and may wait out the parser's switch interval to take it back.
        found: dict[str, Incident] = {}
        actors = list(dict.fromkeys(actor_ids))
        per_statement = min(200, self._db.getlimit(sqlite3.SQLITE_LIMIT_COMPOUND_SELECT))  # terms of a UNION
        for start in range(0, len(actors), per_statement):
            chunk = actors[start : start + per_statement]
            union = " UNION ALL ".join([f"SELECT * FROM ({_LATEST_INCIDENT})"] * len(chunk))
            for (body,) in self._db.execute(union, chunk):
                incident = Incident.model_validate_json(body)
                found[incident.actor_id] = incident
        return found

    def query_incidents(self, query: IncidentQuery) -> list[Incident]:
        where = ["severity_rank >= ?"]
        params: list[str | int] = [query.min_severity.rank]
        if query.statuses:
            where.append(f"status IN ({','.join('?' * len(query.statuses))})")
            params.extend(status.value for status in query.statuses)
        if query.actor_id:
            where.append("actor_id = ?")
            params.append(query.actor_id)
        for key, value in (
            ("$.actor_kind", query.actor_kind),
            ("$.actor_organization", query.organization),
        ):
            if value:
                where.append(f"json_extract(body, '{key}') = ?")
                params.append(value)
        if query.detector:
            where.append("EXISTS (SELECT 1 FROM json_each(body, '$.detectors') WHERE value = ?)")
            params.append(query.detector)
        if query.since is not None:
            where.append("window_end >= ?")
            params.append(_utc_text(query.since))
        if query.until is not None:
            where.append("window_start < ?")
            params.append(_utc_text(query.until))
        order = {  # newest: by when their flagged activity ended (``Incident.newest_flagged``)
            "severity": "severity_rank DESC, flagged_end DESC, incident_id",
            "newest": "flagged_end DESC, incident_id",
            "oldest": "flagged_end ASC, incident_id",
        }[query.order]
        rows = self._db.execute(
            f"SELECT body FROM incidents WHERE {' AND '.join(where)} ORDER BY {order} LIMIT ? OFFSET ?",
            (*params, query.limit, query.offset),
        ).fetchall()
        return [Incident.model_validate_json(body) for (body,) in rows]

    def record_action_paged(self, action: TriageAction, pages: ActionPages) -> tuple[Incident, list[str]]:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute("SELECT body FROM incidents WHERE incident_id = ?", (action.incident_id,)).fetchone()
            if row is None:
                raise KeyError(action.incident_id)
            before = Incident.model_validate_json(row[0])
            update: dict = {}
            # checked again here, on the stored status: two people acting at once must not both pass the pager's check
            status = before.status_after(action.kind) if STATUS_AFTER[action.kind] is not None else None
            if status is not None:
                update["status"] = status
            if action.kind is TriageActionKind.ASSIGN:
                update["assignee"] = action.assignee
            incident = before.model_copy(update=update)
            self._put_incident(incident)
            if status is not None:
                for alert in self.get_alerts(incident.alert_ids):
                    if not held_by(alert, incident):
                        continue
                    db.execute(
                        "UPDATE alerts SET status = ?, body = ? WHERE alert_id = ?",
                        (status.value, alert.model_copy(update={"status": status}).model_dump_json(), alert.alert_id),
                    )
            # the triage log is chained (store.chain_audit): who closed which incident cannot go unseen
            add_row(db, TRIAGE_ACTIONS, (action.incident_id, _utc_text(action.at), action.model_dump_json()))
            # the pages in the same transaction: a Ctrl-C or a crash leaves the action and its pages, or neither
            added = self._add_notifications(pages(before, incident))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return incident, added

    def actions(self, incident_id: str) -> list[TriageAction]:
        rows = self._db.execute(
            "SELECT body FROM triage_actions WHERE incident_id = ? ORDER BY id", (incident_id,)
        ).fetchall()
        return [TriageAction.model_validate_json(body) for (body,) in rows]

    def dead_letters(self, limit: int = 100, offset: int = 0) -> list[DeadLetter]:
        rows = self._db.execute(
            "SELECT source, position, reason, raw, received_at, raw_size FROM dead_letters"
            " ORDER BY id LIMIT ? OFFSET ?",
            (limit, offset),
        ).fetchall()
        return [
            DeadLetter(
                source=source,
                position=position,
                reason=reason,
                raw=bytes(raw),
                received_at=datetime.fromisoformat(received_at),
                raw_size=raw_size,
            )
            for source, position, reason, raw, received_at, raw_size in rows
        ]

    def stats(self) -> StoreStats:
        db = self._db
        events = db.execute("SELECT count(*) FROM events").fetchone()[0]
        first, last = db.execute("SELECT min(ts), max(ts) FROM events").fetchone()

        def moment(micros: int | None) -> datetime | None:
            return None if micros is None else datetime.fromtimestamp(micros / 1_000_000, UTC)

        return StoreStats(
            events=events,
            dead_letters=db.execute("SELECT count(*) FROM dead_letters").fetchone()[0],
            alerts=db.execute("SELECT count(*) FROM alerts").fetchone()[0],
            first_event=moment(first),
            last_event=moment(last),
        )

    def active_actor_days(self, zone: ZoneInfo) -> int:
        first, last = self._db.execute("SELECT min(ts), max(ts) FROM events").fetchone()
        if first is None:
            return 0
        day, params = local_day_sql("ts", offsets_between(zone, first, last))
        return self._db.execute(
            f"SELECT count(*) FROM (SELECT DISTINCT actor_id, {day} FROM events)", params
        ).fetchone()[0]

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()
        self._db.close()
        if self._on_close is not None:
            self._on_close()
