"""The Elasticsearch store's schema version: named migrations recorded in the store, as SQLite's.

A SQLite store records the migrations applied to it (``store.sqlite_schema``); an Elasticsearch
deployment recorded nothing before this version, so an older accesswatch pointed at indices a newer
one made wrote to them unrefused, and an upgrade that changed mappings had nowhere to say it ran.

The record is one document in the state index (``<prefix>-state``, ``_id`` ``schema``): the names of
the migrations applied, each with when.  Not the index templates' ``_meta``: every writer puts its own
templates at each start (an older version would put its own back over a newer one's), a template
write has no ``if_seq_no`` to settle two instances upgrading at once, and reading templates takes a
cluster privilege (``manage_index_templates``) a reader needs for nothing else.  Every instance
already reads and writes the state index (position counters, checkpoints), by id, in real time.

As on SQLite:

* a writer that installs the store (``run``, ``replay``) refuses one a newer version upgraded before
  it puts a template (its own, older mappings would replace the newer's), then applies the migrations
  the store lacks, in one line of log naming them, and records them; a new store records them all
  at its making, without a line;
* the other commands (readers: ``alerts``, ``pages``, dry runs; and those that write documents into
  a store without installing it: ``ack``, ``pages --deliver``, the dashboard) never write the record:
  they refuse a newer store, and an older one only if it lacks a migration ``needed_to_read``.

A store made before versions were recorded (a state index, no record) is taken as holding
``ADOPTED``: the schema of the version before this one.  Its first writer of this version upgrades
it; its readers are not refused, as nothing since reads differently.

Elasticsearch has no transactions: a migration must be idempotent (two instances starting at once
may both apply it, and one cut short is applied again at the next start, as the record is written
once all are done).  Never edit a migration that has shipped: add another.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from elasticsearch import ApiError
from models.event import format_utc
from store.base import StoreNeedsUpgrade, StoreTooNew, StoreUnavailable
from store.elasticsearch import mappings as m
from store.elasticsearch.client import call
from store.elasticsearch.flagged_upgrade import add_flagged_end

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch
    from store.elasticsearch.settings import ElasticsearchSettings

log = logging.getLogger(__name__)

SCHEMA_ID = "schema"  # the record's _id in the state index (beside "counter:...", "checkpoint:...", "mark:...")


def add_access_customer_ids(client: Elasticsearch, settings: ElasticsearchSettings) -> None:
    accesses = m.pattern(settings, m.ACCESSES)
    client.indices.put_mapping(
        index=accesses,
        properties={"accesswatch": {"properties": {"customer_ids": m.KEYWORD}}},
        allow_no_indices=True,
    )
    # indexed again as they are: those a dashboard of this version recorded before a writer upgraded the store
    # hold customer ids the old mapping left unsearched (the dashboard reads a store without this migration)
    client.update_by_query(index=accesses, conflicts="proceed", refresh=True, allow_no_indices=True)


@dataclass(frozen=True, slots=True)
class Migration:
    name: str
    # what it changes in the indices of an existing store (put_mapping on a family's pattern, a reindex...);
    # None: nothing, what it marks is the record itself.  A new store is made by ``install`` as it is now.
    apply: Callable[[Elasticsearch, ElasticsearchSettings], None] | None
    # a store without it would be misread: readers refuse it until a writer applies it
    needed_to_read: bool = True


MIGRATIONS: list[Migration] = [
    # the indices, templates, ILM policies and state index of the versions before the schema was recorded
    Migration("0001-foundation", None),
    # the record itself: a store without one was made by an earlier version and is read as it is
    Migration("0002-schema-record", None, needed_to_read=False),
    # the queue's "newest": when an incident's flagged activity ended.  Read before it: the incidents stored
    # earlier come after the others of their severity until a writer gives them theirs (``INCIDENT_SORTS``)
    Migration("0003-incidents-flagged-end", add_flagged_end, needed_to_read=False),
    # who saw a customer in clear through the dashboard (``DataAccessQuery.customer_id``): the accesses' customer
    # ids searchable.  The accesses stored before it name none, so none is left unsearchable
    Migration("0004-accesses-customer-ids", add_access_customer_ids, needed_to_read=False),
]
ADOPTED = ("0001-foundation",)


@dataclass(frozen=True, slots=True)
class SchemaRecord:
    migrations: list[dict[str, Any]]  # {"name": ..., "applied_at": RFC 3339 UTC, or None where not known}
    guard: dict[str, Any]  # how to write it again: only if unchanged since read

    @property
    def names(self) -> list[str]:
        return [entry["name"] for entry in self.migrations]


class ElasticsearchSchemaMixin:
    """The schema record of ``ElasticsearchStore`` (its ``client`` and ``settings``)."""

    client: Elasticsearch
    settings: ElasticsearchSettings

    @property
    def migrations(self) -> list[str]:
        """The migrations this store holds (a store made before the record: ``ADOPTED``)."""
        record = self._schema_record()
        return record.names if record is not None else list(ADOPTED)

    def _where(self) -> str:
        return f"the store at {', '.join(self.settings.hosts)} with prefix {self.settings.prefix!r}"

    def _schema_record(self) -> SchemaRecord | None:
        """The record, or None: no store, or one made before the record."""
        index = m.state_index(self.settings)
        doc = call(
            self.settings,
            "read the schema record",
            lambda: self.client.options(ignore_status=404).get(index=index, id=SCHEMA_ID).body,
        )
        if not doc.get("found"):
            return None
        guard = {"if_seq_no": doc["_seq_no"], "if_primary_term": doc["_primary_term"]}
        return SchemaRecord(list(doc["_source"]["migrations"]), guard)

    def refuse_a_newer_store(self, applied: list[str] | None = None) -> None:
        """Refused by every command: a newer version's migrations are in it, which this code does not know."""
        known = {migration.name for migration in MIGRATIONS}
        unknown = [name for name in (self.migrations if applied is None else applied) if name not in known]
        if unknown:
            raise StoreTooNew(
                f"{self._where()} was upgraded by a newer accesswatch ({', '.join(unknown)}): this version cannot"
                " use it; run that version, or restore the snapshot of its indices taken before the upgrade"
            )

    def refuse_if_not_migrated(self) -> None:
        """For a command that does not install the store: it reads (and writes documents into) the schema it finds."""
        applied = self.migrations
        self.refuse_a_newer_store(applied)
        pending = [migration.name for migration in MIGRATIONS if migration.name not in applied]
        if any(migration.needed_to_read for migration in MIGRATIONS if migration.name in pending):
            raise StoreNeedsUpgrade(
                f"{self._where()} was written by an older accesswatch and needs upgrading ({', '.join(pending)}):"
                " a command that writes to it upgrades it at start (accesswatch run or replay); then read it again"
            )

    def migrate(self, made_now: bool) -> None:
        """Apply and record what the store lacks; ``made_now``: ``install`` just made it as this version has it."""
        announced = False
        for _ in range(20):
            record = self._schema_record()
            if record is not None:  # a newer instance may have upgraded it since ``install`` looked
                self.refuse_a_newer_store(record.names)
            entries = record.migrations if record is not None else [] if made_now else _adopted()
            applied = {entry["name"] for entry in entries}
            due = [migration for migration in MIGRATIONS if migration.name not in applied]
            if not due:
                return
            now = format_utc(datetime.now(UTC))
            if entries and not announced:  # a new store's first migrations are its making, not an upgrade
                log.info("upgrading %s: %s", self._where(), ", ".join(migration.name for migration in due))
                announced = True
            for migration in due:
                if migration.apply is not None and entries:
                    call(
                        self.settings, f"migrate {migration.name}", partial(migration.apply, self.client, self.settings)
                    )
            entries = [*entries, *({"name": migration.name, "applied_at": now} for migration in due)]
            if self._record(entries, record.guard if record is not None else {"op_type": "create"}):
                return
        raise StoreUnavailable(f"the schema record of {self._where()} kept changing under this writer")

    def _record(self, entries: list[dict[str, Any]], guard: dict[str, Any]) -> bool:
        """Written if unchanged since read; False: another instance wrote it meanwhile (read it again)."""
        index = m.state_index(self.settings)
        document = {"name": SCHEMA_ID, "migrations": entries, "saved_at": format_utc(datetime.now(UTC))}
        try:
            call(
                self.settings,
                "record the schema",
                lambda: self.client.index(index=index, id=SCHEMA_ID, document=document, **guard),
            )
        except ApiError as exc:
            if exc.meta.status == 409:
                return False
            raise
        return True


def _adopted() -> list[dict[str, Any]]:
    return [{"name": name, "applied_at": None} for name in ADOPTED]
