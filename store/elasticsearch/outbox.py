"""The paging outbox in Elasticsearch (``store.outbox``): one document per notification.

A mixin of ``ElasticsearchStore`` (it uses the store's ``client``,
``settings`` and position counter).  How the port's guarantees are kept
without transactions:

* planned once: ``_id`` = the notification id, op ``create``: planning the
  same page again is a 409, and the row keeps its state;
* taken by one process at a time: a claim writes ``leased_until`` with
  optimistic concurrency (``if_seq_no``); a claim that loses the race is a
  409 and the row is left to the winner;
* one receiver's pages about one incident in order: ``line`` comes from the
  store's counter, and a row is due only when no earlier unconditional row
  of its (receiver, dedup key) is still pending;
* read-your-writes: every outbox write refreshes its index (pages are a few
  a minute), so the next claim or listing, by any instance, sees it;
* a resting receiver's pages are not claimed: the rests are read first
  (``store.elasticsearch.receiver_rests``).

The outbox is one small index, ``<prefix>-outbox``, created on first use.
Times are microseconds since the epoch (exact comparisons; dates are
milliseconds in Elasticsearch).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from elasticsearch import ApiError
from models.page import Notification, NotificationStatus
from store.elasticsearch.bulk import BulkOp, run_bulk
from store.elasticsearch.client import call, ensure_index
from store.elasticsearch.receiver_rests import ElasticsearchRestsMixin
from store.outbox import OutboxQuery, OutboxStore, Settlement

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch
    from store.elasticsearch.settings import ElasticsearchSettings

OUTBOX = "outbox"
_PAGE = 1000
_KEYWORD = {"type": "keyword", "ignore_above": 1024}
_LONG = {"type": "long"}
_STORED = {"type": "keyword", "index": False, "doc_values": False}
MAPPING: dict[str, Any] = {
    "dynamic": False,
    "properties": {
        "notification_id": _KEYWORD,
        "receiver": _KEYWORD,
        "dedup_key": _KEYWORD,
        "kind": _KEYWORD,
        "incident_id": _KEYWORD,
        "actor_id": _KEYWORD,
        "conditional": {"type": "boolean"},
        "status": _KEYWORD,
        "attempts": _LONG,
        "line": _LONG,  # planning order
        "created_us": _LONG,
        "due_us": _LONG,
        "leased_until_us": _LONG,
        "settled_us": _LONG,
        "last_error": _STORED,
        "body": _STORED,  # the notification as planned (JSON)
    },
}


def _us(moment: datetime) -> int:
    return round(moment.timestamp() * 1_000_000)


def _moment(micros: int | None) -> datetime | None:
    return None if micros is None else datetime.fromtimestamp(micros / 1_000_000, UTC)


def _document(notification: Notification, line: int) -> dict[str, Any]:
    return {
        "notification_id": notification.notification_id,
        "receiver": notification.receiver,
        "dedup_key": notification.dedup_key,
        "kind": notification.kind.value,
        "incident_id": notification.incident_id,
        "actor_id": notification.actor_id,
        "conditional": notification.only_if_unacknowledged,
        "status": notification.status.value,
        "attempts": notification.attempts,
        "line": line,
        "created_us": _us(notification.created_at),
        "due_us": _us(notification.due_at),
        "leased_until_us": None,
        "settled_us": _us(notification.settled_at) if notification.settled_at else None,
        "last_error": notification.last_error,
        "body": notification.model_dump_json(),
    }


def _notification(source: dict[str, Any]) -> Notification:
    planned = Notification.model_validate_json(source["body"])
    return planned.model_copy(
        update={
            "status": NotificationStatus(source["status"]),
            "attempts": source["attempts"],
            "due_at": _moment(source["due_us"]),
            "settled_at": _moment(source.get("settled_us")),
            "last_error": source.get("last_error"),
            "leased_until": _moment(source.get("leased_until_us")),
        }
    )


def added_of(notifications: Sequence[Notification], outcomes: Sequence[dict[str, Any]]) -> list[str]:
    """The ids of the notifications their creates added (201; a known id is a 409, left as it is)."""
    return [n.notification_id for n, outcome in zip(notifications, outcomes, strict=True) if outcome["status"] == 201]


class ElasticsearchOutboxMixin(ElasticsearchRestsMixin, OutboxStore):
    client: Elasticsearch
    settings: ElasticsearchSettings
    _outbox_ready: bool = False
    _reserve: Callable[[str, int], int]  # the store's position counter (``ElasticsearchStore._reserve``)

    # -- the index ------------------------------------------------------------------------------
    def _outbox(self) -> str:
        index = f"{self.settings.prefix}-{OUTBOX}"
        if not self._outbox_ready:
            ensure_index(self.client, self.settings, index, MAPPING, "outbox")
            self._outbox_ready = True
        return index

    def _outbox_search(self, body: dict[str, Any]) -> dict[str, Any]:
        index = self._outbox()
        return call(self.settings, "search outbox", lambda: self.client.search(index=index, **body).body)

    # -- the port ---------------------------------------------------------------------------------
    def enqueue(self, notifications: Sequence[Notification]) -> list[str]:
        if not notifications:
            return []
        ops = self._outbox_ops(notifications)
        outcomes = run_bulk(self.client, self.settings, ops, accepted=frozenset({201, 409}), refresh=True)
        return added_of(notifications, outcomes)

    def _outbox_ops(self, notifications: Sequence[Notification]) -> list[BulkOp]:
        """``enqueue``'s creates, for a bulk request of the caller's (a triage action's pages go with the action)."""
        if not notifications:
            return []
        index = self._outbox()
        first = self._reserve(OUTBOX, len(notifications))
        return [
            BulkOp(
                {"create": {"_index": index, "_id": notification.notification_id}},
                orjson.dumps(_document(notification, first + position)),
            )
            for position, notification in enumerate(notifications)
        ]

    def claim_due(
        self,
        now: datetime,
        lease_seconds: float,
        limit: int = 1,
        incident_id: str | None = None,
        skip_receivers: Sequence[str] = (),
    ) -> list[Notification]:
        now_us = _us(now)
        filters: list[dict[str, Any]] = [
            {"term": {"status": NotificationStatus.PENDING.value}},
            {"range": {"due_us": {"lte": now_us}}},
            {
                "bool": {
                    "should": [
                        {"bool": {"must_not": {"exists": {"field": "leased_until_us"}}}},
                        {"range": {"leased_until_us": {"lte": now_us}}},
                    ],
                    "minimum_should_match": 1,
                }
            },
        ]
        if incident_id is not None:
            filters.append({"term": {"incident_id": incident_id}})
        query: dict[str, Any] = {"bool": {"filter": filters}}
        skipped = [*skip_receivers, *self._resting_at(now)]
        if skipped:
            query["bool"]["must_not"] = [{"terms": {"receiver": skipped}}]
        claimed: list[Notification] = []
        after = None
        while len(claimed) < limit:
            body: dict[str, Any] = {
                "query": query,
                "sort": [{"due_us": "asc"}, {"line": "asc"}],
                "size": _PAGE,
                "track_total_hits": False,
            }
            if after is not None:
                body["search_after"] = after
            hits = self._outbox_search(body)["hits"]["hits"]
            for hit in hits:
                if not self._first_in_line(hit["_source"]):
                    continue
                taken = self._take(hit["_id"], now_us, now_us + round(lease_seconds * 1_000_000))
                if taken is not None:
                    claimed.append(taken)
                    if len(claimed) == limit:
                        break
            if len(hits) < _PAGE:
                break
            after = hits[-1]["sort"]
        return claimed

    def _first_in_line(self, source: dict[str, Any]) -> bool:
        """No earlier unconditional pending row to the same receiver about the same incident."""
        query = {
            "bool": {
                "filter": [
                    {"term": {"receiver": source["receiver"]}},
                    {"term": {"dedup_key": source["dedup_key"]}},
                    {"term": {"status": NotificationStatus.PENDING.value}},
                    {"term": {"conditional": False}},
                    {"range": {"line": {"lt": source["line"]}}},
                ]
            }
        }
        return not self._outbox_search({"query": query, "size": 1, "track_total_hits": False})["hits"]["hits"]

    def _take(self, doc_id: str, now_us: int, lease_us: int) -> Notification | None:
        """Lease the row if it is still free, with optimistic concurrency; None if someone was first."""
        doc = self._get(doc_id)
        if doc is None:
            return None
        source = doc["_source"]
        leased = source.get("leased_until_us")
        if source["status"] != NotificationStatus.PENDING.value or (leased is not None and leased > now_us):
            return None
        source["leased_until_us"] = lease_us
        if not self._put(doc_id, source, doc["_seq_no"], doc["_primary_term"]):
            return None
        return _notification(source)

    def settle(self, notification_id: str, settlement: Settlement) -> None:
        while True:
            doc = self._get(notification_id)
            if doc is None:
                raise KeyError(notification_id)
            source = doc["_source"]
            source["status"] = settlement.status.value
            source["attempts"] = source["attempts"] + int(settlement.attempted)
            source["leased_until_us"] = None
            if settlement.error is not None:
                source["last_error"] = settlement.error
            if settlement.retry_at is not None:
                source["due_us"] = _us(settlement.retry_at)
            final = settlement.status is not NotificationStatus.PENDING
            source["settled_us"] = _us(settlement.at) if final else None
            if settlement.sent_page is not None:
                planned = Notification.model_validate_json(source["body"])
                source["body"] = planned.model_copy(update={"page": settlement.sent_page}).model_dump_json()
            if self._put(notification_id, source, doc["_seq_no"], doc["_primary_term"]):
                return  # else another process changed it meanwhile: read it again

    def release(self, notification_id: str) -> None:
        while True:
            doc = self._get(notification_id)
            if doc is None:
                return
            source = doc["_source"]
            if source["status"] != NotificationStatus.PENDING.value or source.get("leased_until_us") is None:
                return  # settled meanwhile, or not held
            source["leased_until_us"] = None
            if self._put(notification_id, source, doc["_seq_no"], doc["_primary_term"]):
                return  # else another process changed it meanwhile: read it again

    def notifications(self, query: OutboxQuery) -> list[Notification]:
        filters: list[dict[str, Any]] = []
        if query.statuses:
            filters.append({"terms": {"status": [status.value for status in query.statuses]}})
        if query.kinds:
            filters.append({"terms": {"kind": [kind.value for kind in query.kinds]}})
        for field, value in (
            ("incident_id", query.incident_id),
            ("actor_id", query.actor_id),
            ("receiver", query.receiver),
        ):
            if value is not None:
                filters.append({"term": {field: value}})
        if query.created_since is not None:
            filters.append({"range": {"created_us": {"gte": _us(query.created_since)}}})
        order = "desc" if query.newest_first else "asc"
        found: list[Notification] = []
        after = None
        while len(found) < query.limit:
            body: dict[str, Any] = {
                "query": {"bool": {"filter": filters}},
                "sort": [{"created_us": order}, {"line": order}],
                "size": min(_PAGE, query.limit - len(found)),
                "track_total_hits": False,
            }
            if after is not None:
                body["search_after"] = after
            hits = self._outbox_search(body)["hits"]["hits"]
            found.extend(_notification(hit["_source"]) for hit in hits)
            if len(hits) < body["size"]:
                break
            after = hits[-1]["sort"]
        return found

    def outbox_counts(self) -> dict[NotificationStatus, int]:
        body = {"size": 0, "track_total_hits": False, "aggs": {"status": {"terms": {"field": "status", "size": 10}}}}
        buckets = self._outbox_search(body)["aggregations"]["status"]["buckets"]
        return {NotificationStatus(bucket["key"]): bucket["doc_count"] for bucket in buckets}

    # -- documents ---------------------------------------------------------------------------------
    def _get(self, doc_id: str) -> dict[str, Any] | None:
        index, client = self._outbox(), self.client
        response = call(
            self.settings, "read outbox", lambda: client.options(ignore_status=404).get(index=index, id=doc_id).body
        )
        return response if response.get("found") else None

    def _put(self, doc_id: str, source: dict[str, Any], seq_no: int, primary_term: int) -> bool:
        """Write the row if nobody changed it since it was read; False if somebody did."""
        index, client = self._outbox(), self.client
        try:
            call(
                self.settings,
                "write outbox",
                lambda: client.index(
                    index=index,
                    id=doc_id,
                    document=source,
                    if_seq_no=seq_no,
                    if_primary_term=primary_term,
                    refresh=True,
                ),
            )
        except ApiError as exc:
            if exc.meta.status == 409:
                return False
            raise
        return True
