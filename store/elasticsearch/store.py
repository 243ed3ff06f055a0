"""The production store: Elasticsearch 8.x/9.x, behind the same port as SQLite.

How the port's guarantees are kept without transactions:

* idempotent events: ``_id`` = event id, op ``create`` into the event's own
  day (``mappings``): a duplicate is a 409, counted, never a second copy.
  When a batch meets stored ids, their stored copies are read back once to
  tell a conflict (same id, other content) and a redelivery (the same
  Kafka message again: same ``origin``) from a plain duplicate.
* store order: a counter document reserved in blocks with optimistic
  concurrency (``if_seq_no``) gives every event and dead letter a ``seq``
  unique across instances; ``events_after`` and query paging use it.
* read-your-writes: searches are near-real-time in Elasticsearch, so a
  search after this store's own unrefreshed writes refreshes those indices
  first; alert, incident and triage writes refresh at once (other
  instances and the dashboard read them straight after).
* checkpoints are fenced: a save must follow this store's own load or save
  of the same name (``if_seq_no``), so an instance that lost a partition
  can never overwrite the state of the instance that took it over.
"""

from __future__ import annotations

import base64
import threading
import zlib
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from elasticsearch import ApiError, Elasticsearch
from models.alert import Alert, AlertStatus
from models.deadletter import DeadLetter
from models.event import AccessEvent, format_utc
from models.fast_event import validate_event
from models.incident import STATUS_AFTER, Incident, TriageAction, TriageActionKind
from store.base import (
    ActionPages,
    AlertQuery,
    Checkpoint,
    CheckpointConflict,
    EventPage,
    EventQuery,
    EventTotal,
    IncidentQuery,
    IncomingEvent,
    KeptHistory,
    Store,
    StoredEvent,
    StoreStats,
    StoreUnavailable,
    WriteResult,
    decode_cursor,
    encode_cursor,
    held_by,
)
from store.elasticsearch import documents as docs
from store.elasticsearch import mappings as m
from store.elasticsearch import queries as q
from store.elasticsearch.bulk import BulkOp, run_bulk
from store.elasticsearch.client import build_client, call
from store.elasticsearch.dashboard import ElasticsearchDashboardMixin
from store.elasticsearch.documents import micros
from store.elasticsearch.outbox import ElasticsearchOutboxMixin, added_of
from store.elasticsearch.retention import DueIndex, due
from store.elasticsearch.schema import ElasticsearchSchemaMixin
from store.elasticsearch.settings import ElasticsearchSettings

PAGE = 5000  # hits per search page when reading many (below the default max_result_window of 10,000)
_CREATED_OR_EXISTS = frozenset({201, 409})
_UPDATED = frozenset({200, 201})
_LATEST_FIRST = [{"accesswatch.window_end_us": "desc"}, {"accesswatch.incident_id": "asc"}]
_ACTORS_PER_SEARCH = 1000  # terms buckets a search (search.max_buckets is 65,536)


class ElasticsearchStore(ElasticsearchSchemaMixin, ElasticsearchOutboxMixin, ElasticsearchDashboardMixin, Store):
    def __init__(
        self,
        settings: ElasticsearchSettings,
        client: Elasticsearch | None = None,
        install: bool = True,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.client = client if client is not None else build_client(settings)
        self.clock = clock
        self._dirty: set[str] = set()  # families written here since their last refresh
        self._dirty_lock = threading.Lock()
        self._versions: dict[str, tuple[int, int]] = {}  # checkpoint name -> (seq_no, primary_term) we hold
        if install:
            self.install()
        self._last_seq = self._counter_value("events")

    # -- set-up ---------------------------------------------------------------------------
    def exists(self) -> bool:
        """Whether a store was installed under this prefix (its state index is there)."""
        index = m.state_index(self.settings)
        return bool(call(self.settings, "check state index", lambda: self.client.indices.exists(index=index)))

    def indices_past_retention(self, now: datetime) -> list[DueIndex]:
        """This store's dated indices ILM deletes as of ``now``, with their documents, oldest first."""
        pattern = f"{self.settings.prefix}-*"
        rows = self._call(
            "list indices", lambda: self.client.cat.indices(index=pattern, format="json", h="index,docs.count").body
        )
        return due(self.settings, rows, now)

    def install(self) -> None:
        """ILM policies, index templates, the state index and the schema record (``schema``): idempotent, safe at
        every start; a store a newer version upgraded is refused before any of it is put."""
        settings, client = self.settings, self.client
        made_now = not self.exists()
        if not made_now:
            self.refuse_a_newer_store()  # before the templates: this version's would replace the newer mappings
        # partial, not a lambda binding the loop's values as defaults: mypy cannot type such a lambda
        for name, policy in m.policies(settings).items():
            call(settings, "put ILM policy", partial(client.ilm.put_lifecycle, name=name, policy=policy))
        for name, template in m.templates(settings).items():
            call(settings, "put index template", partial(client.indices.put_index_template, name=name, **template))
        index = m.state_index(settings)
        if made_now:
            try:
                call(
                    settings,
                    "create state index",
                    lambda: client.indices.create(index=index, **m.state_index_body(settings)),
                )
            except ApiError as exc:
                if exc.meta.status != 400 or "resource_already_exists" not in str(exc.message):
                    raise  # another instance created it meanwhile: fine
        self.migrate(made_now)

    def close(self) -> None:
        self.client.close()

    # -- plumbing ----------------------------------------------------------------------------
    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        return call(self.settings, what, fn)

    def _written(self, *families: str) -> None:
        with self._dirty_lock:
            self._dirty.update(families)

    def _refreshed(self, *families: str) -> None:
        # cleared before the refresh: a write that lands meanwhile marks its family again
        with self._dirty_lock:
            stale = [family for family in families if family in self._dirty]
            self._dirty.difference_update(stale)
        if stale:
            indices = ",".join(m.pattern(self.settings, family) for family in stale)
            try:
                self._call("refresh", lambda: self.client.indices.refresh(index=indices, allow_no_indices=True))
            except BaseException:
                self._written(*stale)
                raise

    def _search(self, family: str, body: dict[str, Any]) -> dict[str, Any]:
        self._refreshed(family)
        index = m.pattern(self.settings, family)
        return self._call(
            f"search {family}",
            lambda: self.client.search(index=index, allow_no_indices=True, ignore_unavailable=True, **body).body,
        )

    def _scan(
        self,
        family: str,
        query: dict[str, Any],
        sort: list[dict[str, Any]],
        offset: int = 0,
        limit: int | None = None,
        source: Any = True,
    ) -> Iterator[dict[str, Any]]:
        """Hits in ``sort`` order (a total order), paged with search_after: any number, any offset."""
        skip, left, after = offset, limit, None
        while left is None or left > 0:
            size = PAGE if left is None else min(PAGE, left + skip)
            body: dict[str, Any] = {
                "query": query,
                "sort": sort,
                "size": size,
                "_source": source,
                "track_total_hits": False,
            }
            if after is not None:
                body["search_after"] = after
            hits = self._search(family, body)["hits"]["hits"]
            for hit in hits:
                if skip:
                    skip -= 1
                    continue
                yield hit
                if left is not None:
                    left -= 1
                    if left == 0:
                        return
            if len(hits) < size:
                return
            after = hits[-1]["sort"]

    def _count(self, family: str, query: dict[str, Any] | None = None) -> int:
        self._refreshed(family)
        index = m.pattern(self.settings, family)
        query = query or None  # an empty query is left out, as no query
        return self._call(
            f"count {family}",
            lambda: self.client.count(index=index, allow_no_indices=True, ignore_unavailable=True, query=query)[
                "count"
            ],
        )

    def _locate(self, family: str, ids: Sequence[str], versions: bool = False) -> dict[str, dict[str, Any]]:
        """The hits (with ``_index``, and ``_seq_no`` if asked) of documents by id, wherever in the family."""
        found: dict[str, dict[str, Any]] = {}
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), PAGE):
            chunk = unique[start : start + PAGE]
            body = {
                "query": {"ids": {"values": chunk}},
                "size": len(chunk),
                "track_total_hits": False,
                "seq_no_primary_term": versions,
            }
            for hit in self._search(family, body)["hits"]["hits"]:
                found[hit["_id"]] = hit
        return found

    # -- the counter: store order across instances --------------------------------------------
    def _counter_value(self, name: str) -> int:
        doc = self._get_state(f"counter:{name}")
        return 0 if doc is None else doc["_source"]["value"]

    def _get_state(self, doc_id: str) -> dict[str, Any] | None:
        index = m.state_index(self.settings)
        response = self._call(
            "read state", lambda: self.client.options(ignore_status=404).get(index=index, id=doc_id).body
        )
        return response if response.get("found") else None

    def _reserve(self, name: str, count: int) -> int:
        """The first of ``count`` consecutive positions no other writer gets."""
        index, doc_id = m.state_index(self.settings), f"counter:{name}"
        while True:
            doc = self._get_state(doc_id)
            value = 0 if doc is None else doc["_source"]["value"]
            guard: dict[str, Any] = (
                {"op_type": "create"}
                if doc is None
                else {"if_seq_no": doc["_seq_no"], "if_primary_term": doc["_primary_term"]}
            )
            try:
                self._call(
                    "reserve positions",
                    partial(
                        self.client.index,
                        index=index,
                        id=doc_id,
                        document={"name": doc_id, "value": value + count},
                        **guard,
                    ),
                )
            except ApiError as exc:
                if exc.meta.status == 409:
                    continue  # another writer took the block first: read again
                raise
            return value + 1

    # -- ingestion -------------------------------------------------------------------------------
    def write(self, events: Sequence[IncomingEvent], dead_letters: Sequence[DeadLetter] = ()) -> WriteResult:
        result = WriteResult(last_seq=self._last_seq)
        unique: dict[str, IncomingEvent] = {}
        for incoming in events:
            earlier = unique.get(incoming.event.event_id)
            if earlier is None:
                unique[incoming.event.event_id] = incoming
            else:
                result.duplicates += 1
                if earlier.event != incoming.event:
                    result.conflicts.append(incoming.event.event_id)
                    result.refused.append(incoming)
        batch = list(unique.values())
        letters = self._new_dead_letters(dead_letters)
        total = len(batch) + len(letters)
        if total == 0:
            return result
        first = self._reserve("events", total)
        settings = self.settings
        ops = [
            BulkOp(
                {
                    "create": {
                        "_index": m.dated_index(settings, m.EVENTS, incoming.event.timestamp),
                        "_id": incoming.event.event_id,
                    }
                },
                docs.event_document(incoming, first + i),
            )
            for i, incoming in enumerate(batch)
        ]
        ops.extend(
            BulkOp(
                {"create": {"_index": m.dated_index(settings, m.DEAD_LETTERS, letter.received_at), "_id": letter_id}},
                docs.dead_letter_document(letter, first + len(batch) + i),
            )
            for i, (letter_id, letter) in enumerate(letters)
        )
        self._written(m.EVENTS, m.DEAD_LETTERS)
        outcomes = run_bulk(self.client, settings, ops, accepted=_CREATED_OR_EXISTS)
        existing = []
        for incoming, outcome in zip(batch, outcomes, strict=False):
            if outcome["status"] == 201:
                result.stored.append(incoming)
            else:
                existing.append(incoming)
        if existing:
            self._judge_existing(existing, result)
        result.dead_letters_stored = sum(1 for outcome in outcomes[len(batch) :] if outcome["status"] == 201)
        result.last_seq = self._last_seq = max(self._last_seq, first + total - 1)
        return result

    def _judge_existing(self, existing: list[IncomingEvent], result: WriteResult) -> None:
        """Read stored copies back: a conflict, a redelivery of the same message, or a plain duplicate."""
        settings = self.settings
        wanted = [
            {"_index": m.dated_index(settings, m.EVENTS, incoming.event.timestamp), "_id": incoming.event.event_id}
            for incoming in existing
        ]
        stored: dict[str, dict[str, Any]] = {}
        for start in range(0, len(wanted), PAGE):
            chunk = wanted[start : start + PAGE]
            response = self._call(
                "read stored copies",
                partial(self.client.mget, docs=chunk, source_includes=["event.original", "accesswatch.origin"]),
            )
            for doc in response["docs"]:
                if doc.get("found"):
                    stored[doc["_id"]] = doc["_source"]
        for incoming in existing:
            result.duplicates += 1
            copy = stored.get(incoming.event.event_id)
            if copy is None:
                continue
            if validate_event(copy["event"]["original"]) != incoming.event:
                result.conflicts.append(incoming.event.event_id)
                result.refused.append(incoming)
            elif incoming.origin is not None and copy.get("accesswatch", {}).get("origin") == incoming.origin:
                result.redelivered.append(incoming)

    def _new_dead_letters(self, dead_letters: Sequence[DeadLetter]) -> list[tuple[str, DeadLetter]]:
        """Dead letters not stored before: a bad line replayed on another day lives in another index."""
        if not dead_letters:
            return []
        by_id = {docs.dead_letter_id(letter): letter for letter in dead_letters}
        known = self._locate(m.DEAD_LETTERS, list(by_id))
        return [(letter_id, letter) for letter_id, letter in by_id.items() if letter_id not in known]

    def upsert_alerts(self, alerts: Sequence[Alert], incidents: Sequence[Incident] = ()) -> None:
        """Insert or grow, never shrink: a stored revision above the one given is kept.

        Each document is read, then written only if unchanged since
        (``if_seq_no``), keeping what a person set (status, assignee) and
        when the incident was first raised.  A write that lost a race is
        read and tried again.  Revisions only grow, so an instance that fell
        behind (it stalled, and its partition moved on without it) cannot
        put an older version of a finding back.
        """
        pending: dict[tuple[str, str], Alert | Incident] = {(m.INCIDENTS, i.incident_id): i for i in incidents}
        pending.update({(m.ALERTS, a.alert_id): a for a in alerts})
        settings, now = self.settings, micros(self.clock())
        for _ in range(20):
            if not pending:
                return
            stored = {
                family: self._locate(family, [key for fam, key in pending if fam == family], versions=True)
                for family in (m.ALERTS, m.INCIDENTS)
            }
            ops, keys = [], []
            for (family, key), item in pending.items():
                hit = stored[family].get(key)
                own = hit["_source"]["accesswatch"] if hit else {}
                if hit and own.get("revision", 0) > item.revision:
                    continue  # a later version is stored already
                if isinstance(item, Alert):
                    # a person's triage stands, in the incident it was given in (``SqliteStore.upsert_alerts``)
                    held_by = orjson.loads(own["record"]).get("incident_id") if hit else None
                    kept = own.get("status") if held_by in (None, item.incident_id) else None
                    body = docs.alert_document(item, kept or item.status.value)
                    index = m.dated_index(settings, m.ALERTS, item.window_start)
                else:
                    body = docs.incident_document(
                        item,
                        own.get("status") or item.status.value,
                        own["assignee"] if hit else item.assignee,
                        own.get("raised_at_us") or now,
                    )
                    index = m.dated_index(settings, m.INCIDENTS, item.created_at)
                guard = (
                    {
                        "index": {
                            "_index": hit["_index"],
                            "_id": key,
                            "if_seq_no": hit["_seq_no"],
                            "if_primary_term": hit["_primary_term"],
                        }
                    }
                    if hit
                    else {"create": {"_index": index, "_id": key}}
                )
                ops.append(BulkOp(guard, body))
                keys.append((family, key))
            outcomes = run_bulk(self.client, settings, ops, accepted=_CREATED_OR_EXISTS | _UPDATED, refresh=True)
            pending = {
                key: pending[key] for key, outcome in zip(keys, outcomes, strict=True) if outcome["status"] == 409
            }
        raise StoreUnavailable(f"alerts kept changing under this writer: {sorted(pending)[:3]}")

    # -- detector state ------------------------------------------------------------------------
    def save_checkpoint(self, name: str, seq: int, state: bytes) -> None:
        index, doc_id = m.state_index(self.settings), f"checkpoint:{name}"
        document = {
            "name": name,
            "seq": seq,
            "state": base64.b64encode(zlib.compress(state, 1)).decode(),
            "saved_at": format_utc(self.clock()),
        }
        held = self._versions.get(name)
        guard: dict[str, Any] = (
            {"op_type": "create"} if held is None else {"if_seq_no": held[0], "if_primary_term": held[1]}
        )
        try:
            response = self._call(
                "save checkpoint", lambda: self.client.index(index=index, id=doc_id, document=document, **guard)
            )
        except ApiError as exc:
            if exc.meta.status == 409:
                self._versions.pop(name, None)
                raise CheckpointConflict(f"checkpoint {name!r} was saved by another instance") from None
            raise
        self._versions[name] = (response["_seq_no"], response["_primary_term"])

    def load_checkpoint(self, name: str) -> Checkpoint | None:
        doc = self._get_state(f"checkpoint:{name}")
        if doc is None:
            self._versions.pop(name, None)
            return None
        self._versions[name] = (doc["_seq_no"], doc["_primary_term"])
        source = doc["_source"]
        return Checkpoint(
            name,
            source["seq"],
            zlib.decompress(base64.b64decode(source["state"])),
            datetime.fromisoformat(source["saved_at"].replace("Z", "+00:00")),
        )

    def events_after(self, seq: int, batch: int = 10_000) -> Iterator[list[IncomingEvent]]:
        query = {"range": {"accesswatch.seq": {"gt": seq}}}
        chunk: list[IncomingEvent] = []
        for hit in self._scan(m.EVENTS, query, [{"accesswatch.seq": "asc"}]):
            chunk.append(docs.incoming_from(hit["_source"]))
            if len(chunk) >= batch:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    @property
    def last_seq(self) -> int:
        self._last_seq = max(self._last_seq, self._counter_value("events"))
        return self._last_seq

    # -- reading -----------------------------------------------------------------------------------
    def query_events(self, query: EventQuery) -> EventPage:
        body: dict[str, Any] = {
            "query": q.event_filter(query),
            "sort": q.event_sort(query.newest_first),
            "size": query.limit + 1,
            "track_total_hits": False,
            "_source": ["event.original", "accesswatch.seq", "accesswatch.data_classes"],
        }
        if query.cursor is not None:
            body["search_after"] = decode_cursor(query.cursor)
        hits = self._search(m.EVENTS, body)["hits"]["hits"]
        items = [
            StoredEvent(
                seq=hit["_source"]["accesswatch"]["seq"],
                event=AccessEvent.model_validate_json(hit["_source"]["event"]["original"]),
                classes=list(hit["_source"]["accesswatch"].get("data_classes") or []),
            )
            for hit in hits[: query.limit]
        ]
        next_cursor = encode_cursor(*hits[query.limit - 1]["sort"]) if len(hits) > query.limit else None
        return EventPage(items=items, next_cursor=next_cursor)

    def count_events(self, query: EventQuery, at_most: int) -> EventTotal:
        """Counted by the index (its terms and time range; no document read), exactly to ``at_most``."""
        body = {"query": q.event_filter(query), "size": 0, "track_total_hits": at_most + 1}
        total = self._search(m.EVENTS, body)["hits"]["total"]
        counted = int(total["value"])
        return EventTotal(at_most, more=True) if counted > at_most else EventTotal(counted)

    def query_alerts(self, query: AlertQuery) -> list[Alert]:
        hits = self._scan(m.ALERTS, q.alert_filter(query), q.alert_sort(query.newest_first), query.offset, query.limit)
        return [docs.alert_from(hit["_source"]) for hit in hits]

    def get_alert(self, alert_id: str) -> Alert | None:
        hit = self._locate(m.ALERTS, [alert_id]).get(alert_id)
        return docs.alert_from(hit["_source"]) if hit else None

    def get_alerts(self, alert_ids: Sequence[str]) -> list[Alert]:
        found = [docs.alert_from(hit["_source"]) for hit in self._locate(m.ALERTS, alert_ids).values()]
        return sorted(found, key=Alert.listing_order)

    def set_alert_status(self, alert_id: str, status: AlertStatus) -> Alert | None:
        hit = self._locate(m.ALERTS, [alert_id]).get(alert_id)
        if hit is None:
            return None
        update = orjson.dumps({"doc": {"accesswatch": {"status": status.value}}})
        run_bulk(
            self.client,
            self.settings,
            [BulkOp({"update": {"_index": hit["_index"], "_id": alert_id}}, update)],
            accepted=_UPDATED,
            refresh=True,
        )
        return docs.alert_from(hit["_source"]).model_copy(update={"status": status})

    # -- incidents and triage -------------------------------------------------------------------------
    def get_incident(self, incident_id: str) -> Incident | None:
        hit = self._locate(m.INCIDENTS, [incident_id]).get(incident_id)
        return docs.incident_from(hit["_source"]) if hit else None

    def latest_incident(self, actor_id: str) -> Incident | None:
        body = {
            "query": {"term": {"accesswatch.actor_id": actor_id}},
            "sort": _LATEST_FIRST,
            "size": 1,
            "track_total_hits": False,
        }
        hits = self._search(m.INCIDENTS, body)["hits"]["hits"]
        return docs.incident_from(hits[0]["_source"]) if hits else None

    def latest_incidents(self, actor_ids: Sequence[str]) -> dict[str, Incident]:
        # one search for many actors, not one each: a bucket per actor, holding its first incident in
        # ``latest_incident``'s order (publishing a batch's alerts asks this of every actor in it)
        found: dict[str, Incident] = {}
        actors = list(dict.fromkeys(actor_ids))
        for start in range(0, len(actors), _ACTORS_PER_SEARCH):
            chunk = actors[start : start + _ACTORS_PER_SEARCH]
            body = {
                "query": {"terms": {"accesswatch.actor_id": chunk}},
                "size": 0,
                "track_total_hits": False,
                "aggs": {
                    "actors": {
                        "terms": {"field": "accesswatch.actor_id", "size": len(chunk)},
                        "aggs": {"latest": {"top_hits": {"size": 1, "sort": _LATEST_FIRST}}},
                    }
                },
            }
            for bucket in self._search(m.INCIDENTS, body)["aggregations"]["actors"]["buckets"]:
                incident = docs.incident_from(bucket["latest"]["hits"]["hits"][0]["_source"])
                found[incident.actor_id] = incident
        return found

    def query_incidents(self, query: IncidentQuery) -> list[Incident]:
        hits = self._scan(
            m.INCIDENTS, q.incident_filter(query), q.INCIDENT_SORTS[query.order], query.offset, query.limit
        )
        return [docs.incident_from(hit["_source"]) for hit in hits]

    def record_action_paged(self, action: TriageAction, pages: ActionPages) -> tuple[Incident, list[str]]:
        hit = self._locate(m.INCIDENTS, [action.incident_id]).get(action.incident_id)
        if hit is None:
            raise KeyError(action.incident_id)
        before = docs.incident_from(hit["_source"])
        person: dict[str, Any] = {}  # what the action changes, as the model has it
        # checked again here, on the stored status: two people acting at once must not both pass the pager's check
        status = before.status_after(action.kind) if STATUS_AFTER[action.kind] is not None else None
        if status is not None:
            person["status"] = status
        if action.kind is TriageActionKind.ASSIGN:
            person["assignee"] = action.assignee
        incident = before.model_copy(update=person)
        planned = pages(before, incident)  # read and planned before anything is written
        ops = []
        if person:
            ops.append(
                BulkOp(
                    {"update": {"_index": hit["_index"], "_id": incident.incident_id, "retry_on_conflict": 5}},
                    orjson.dumps({"doc": {"accesswatch": person}}),  # a StrEnum dumps as its value
                )
            )
        seq = self._reserve("actions", 1)
        ops.append(
            BulkOp(
                {
                    "create": {
                        "_index": m.dated_index(self.settings, m.ACTIONS, action.at),
                        "_id": docs.action_id(action),
                    }
                },
                docs.action_document(action, seq),
            )
        )
        # no transaction here: the pages go in the action's bulk request, its first chunk with the action's
        # (before the alerts'), so that no Ctrl-C of this process falls between the action and its pages
        paging = len(ops)
        ops += self._outbox_ops(planned)
        if status is not None:
            for alert_id, alert_hit in self._locate(m.ALERTS, incident.alert_ids).items():
                if not held_by(docs.alert_from(alert_hit["_source"]), incident):
                    continue
                ops.append(
                    BulkOp(
                        {"update": {"_index": alert_hit["_index"], "_id": alert_id, "retry_on_conflict": 5}},
                        orjson.dumps({"doc": {"accesswatch": {"status": status.value}}}),
                    )
                )
        outcomes = run_bulk(self.client, self.settings, ops, accepted=_UPDATED | {409}, refresh=True)
        return incident, added_of(planned, outcomes[paging : paging + len(planned)])

    def actions(self, incident_id: str) -> list[TriageAction]:
        hits = self._scan(m.ACTIONS, {"term": {"accesswatch.incident_id": incident_id}}, [{"accesswatch.seq": "asc"}])
        return [docs.action_from(hit["_source"]) for hit in hits]

    def dead_letters(self, limit: int = 100, offset: int = 0) -> list[DeadLetter]:
        hits = self._scan(m.DEAD_LETTERS, {"match_all": {}}, [{"accesswatch.seq": "asc"}], offset, limit)
        return [docs.dead_letter_from(hit["_source"]) for hit in hits]

    def stats(self) -> StoreStats:
        body = {
            "size": 0,
            "track_total_hits": True,
            "aggs": {
                "first": {"min": {"field": "accesswatch.time_us"}},
                "last": {"max": {"field": "accesswatch.time_us"}},
            },
        }
        response = self._search(m.EVENTS, body)
        aggs = response.get("aggregations") or {}

        def moment(name: str) -> datetime | None:
            value = (aggs.get(name) or {}).get("value")
            return None if value is None else docs.from_micros(int(value))

        return StoreStats(
            events=response["hits"]["total"]["value"],
            dead_letters=self._count(m.DEAD_LETTERS),
            alerts=self._count(m.ALERTS),
            first_event=moment("first"),
            last_event=moment("last"),
        )

    def kept_history(self, now: datetime) -> KeptHistory:
        response = self._search(m.EVENTS, {"size": 0, "aggs": {"first": {"min": {"field": "accesswatch.time_us"}}}})
        first = ((response.get("aggregations") or {}).get("first") or {}).get("value")
        # ILM deletes a day's index once past retention, at a time of its own that nothing records, and whole
        # days in order: the record starts at the oldest event kept
        return KeptHistory(None if first is None else docs.from_micros(int(first)), None, None)

    def active_actor_days(self, zone: ZoneInfo) -> int:
        sources = [
            {"actor": {"terms": {"field": "user.id"}}},
            {"day": {"date_histogram": {"field": "@timestamp", "calendar_interval": "1d", "time_zone": zone.key}}},
        ]
        return sum(1 for _ in self._composite(m.EVENTS, {"match_all": {}}, sources))

    def _composite(
        self, family: str, query: dict[str, Any], sources: list[dict[str, Any]], sub: dict[str, Any] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every bucket of a composite aggregation, paged with after_key."""
        after = None
        while True:
            composite: dict[str, Any] = {"sources": sources, "size": 5000}
            if after is not None:
                composite["after"] = after
            agg: dict[str, Any] = {"composite": composite}
            if sub:
                agg["aggs"] = sub
            body = {"size": 0, "query": query, "track_total_hits": False, "aggs": {"buckets": agg}}
            result = (self._search(family, body).get("aggregations") or {}).get("buckets")
            if not result:
                return
            yield from result["buckets"]
            after = result.get("after_key")
            if after is None or len(result["buckets"]) < composite["size"]:
                return
