"""Receivers' rests in Elasticsearch (``store.outbox.ReceiverRest``): one document per receiver that failed.

A mixin of ``ElasticsearchStore`` beside the outbox's: every instance that
delivers reads them before it claims (``ElasticsearchOutboxMixin.claim_due``),
so none sends inside a rest another one was told of (a Retry-After).  One
small index, ``<prefix>-receiver-rests``, created on first use; ``_id`` is the
receiver's name, so a rest replaces the one before; every write refreshes it.
Times are microseconds since the epoch, as in the outbox.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from store.elasticsearch.client import call, ensure_index
from store.outbox import ReceiverRest

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch
    from store.elasticsearch.settings import ElasticsearchSettings

RESTS = "receiver-rests"
_MOST = 10_000  # receivers: a configuration names a handful
_LONG = {"type": "long"}
MAPPING: dict[str, Any] = {
    "dynamic": False,
    "properties": {
        "receiver": {"type": "keyword", "ignore_above": 1024},
        "until_us": _LONG,
        "asked_until_us": _LONG,
        "failures": _LONG,
        "at_us": _LONG,
        "error": {"type": "keyword", "index": False, "doc_values": False},
    },
}


def _us(moment: datetime) -> int:
    return round(moment.timestamp() * 1_000_000)


def _moment(micros: int) -> datetime:
    return datetime.fromtimestamp(micros / 1_000_000, UTC)


class ElasticsearchRestsMixin:
    client: Elasticsearch
    settings: ElasticsearchSettings
    _rests_ready: bool = False

    def _rests(self) -> str:
        index = f"{self.settings.prefix}-{RESTS}"
        if not self._rests_ready:
            ensure_index(self.client, self.settings, index, MAPPING, "receiver rests")
            self._rests_ready = True
        return index

    def rest_receiver(self, rest: ReceiverRest) -> None:
        index, client = self._rests(), self.client
        document = {
            "receiver": rest.receiver,
            "until_us": _us(rest.until),
            "asked_until_us": _us(rest.asked_until) if rest.asked_until else None,
            "failures": rest.failures,
            "error": rest.error,
            "at_us": _us(rest.at),
        }
        call(
            self.settings,
            "write receiver rest",
            lambda: client.index(index=index, id=rest.receiver, document=document, refresh=True),
        )

    def end_rest(self, receiver: str, set_before: datetime | None = None) -> None:
        index, client = self._rests(), self.client
        found = call(
            self.settings,
            "read receiver rest",
            lambda: client.options(ignore_status=404).get(index=index, id=receiver).body,
        )
        if not found.get("found") or (set_before is not None and found["_source"]["at_us"] >= _us(set_before)):
            return
        # only the rest read: one another instance recorded meanwhile stands (a 409 then, left as it is)
        call(
            self.settings,
            "end receiver rest",
            lambda: client.options(ignore_status=(404, 409)).delete(
                index=index,
                id=receiver,
                if_seq_no=found["_seq_no"],
                if_primary_term=found["_primary_term"],
                refresh=True,
            ),
        )

    def receiver_rests(self) -> dict[str, ReceiverRest]:
        index, client = self._rests(), self.client
        hits = call(
            self.settings,
            "search receiver rests",
            lambda: client.search(index=index, query={"match_all": {}}, size=_MOST, track_total_hits=False).body,
        )
        rests = {}
        for hit in hits["hits"]["hits"]:
            source = hit["_source"]
            asked = source.get("asked_until_us")
            rests[source["receiver"]] = ReceiverRest(
                receiver=source["receiver"],
                until=_moment(source["until_us"]),
                asked_until=_moment(asked) if asked is not None else None,
                failures=source["failures"],
                error=source["error"],
                at=_moment(source["at_us"]),
            )
        return rests

    def _resting_at(self, now: datetime) -> list[str]:
        """The receivers whose rest lasts past ``now``: none of their pages is claimed."""
        return [name for name, rest in self.receiver_rests().items() if rest.until > now]
