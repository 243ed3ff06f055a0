"""Migration 0003 of the Elasticsearch store: the incidents' ``flagged_end_us``, the queue's "newest".

The queue sorts incidents by when their flagged activity ended (``Incident.newest_flagged``), not by
their window's start: a day's finding widens the window to the whole local day, and an incident flagged
at 16:00 listed below one flagged at 09:00.  The incidents' indices made before this version are given
the field's mapping (a month's index lives on under the template it was made with), and their stored
incidents the field, from their stored alerts' spans, as the pages show them.  Idempotent: an incident
that has it is not read again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from models.alert import Alert
from models.flagged import flagged
from models.incident import Incident
from store.elasticsearch import documents as docs
from store.elasticsearch import mappings as m
from store.elasticsearch.bulk import BulkOp, run_bulk

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch
    from store.elasticsearch.settings import ElasticsearchSettings

INCIDENTS_PAGE = 500  # incidents read, with their alerts, and updated at a time
ALERTS_PAGE = 5000  # alerts read in one search (below the default max_result_window of 10,000)
_LACKING = {"bool": {"must_not": [{"exists": {"field": "accesswatch.flagged_end_us"}}]}}


def add_flagged_end(client: Elasticsearch, settings: ElasticsearchSettings) -> None:
    incidents = m.pattern(settings, m.INCIDENTS)
    client.indices.put_mapping(
        index=incidents, properties={"accesswatch": {"properties": {"flagged_end_us": m.LONG}}}, allow_no_indices=True
    )
    after: list[Any] | None = None
    while True:
        page = client.search(
            index=incidents,
            allow_no_indices=True,
            ignore_unavailable=True,
            query=_LACKING,
            sort=[{"accesswatch.incident_id": "asc"}],
            size=INCIDENTS_PAGE,
            search_after=after,
            track_total_hits=False,
        )["hits"]["hits"]
        if not page:
            return
        kept = [(hit, docs.incident_from(hit["_source"])) for hit in page]
        alerts = _alerts(client, settings, [alert_id for _, incident in kept for alert_id in incident.alert_ids])
        ops = [
            BulkOp({"update": {"_index": hit["_index"], "_id": hit["_id"]}}, _given_flagged_end(incident, alerts))
            for hit, incident in kept
        ]
        run_bulk(client, settings, ops, refresh=True)
        after = page[-1]["sort"]


def _given_flagged_end(incident: Incident, alerts: dict[str, Alert]) -> bytes:
    """The partial update giving the incident its ``flagged_end``: the sort field, and the record read back."""
    members = [alerts[alert_id] for alert_id in incident.alert_ids if alert_id in alerts]
    upgraded = incident.model_copy(
        update={"flagged_end": flagged(members, incident.window_start, incident.window_end).end}
    )
    fields = docs.incident_fields(upgraded)["accesswatch"]
    return orjson.dumps({"doc": {"accesswatch": {key: fields[key] for key in ("flagged_end_us", "record")}}})


def _alerts(client: Elasticsearch, settings: ElasticsearchSettings, alert_ids: list[str]) -> dict[str, Alert]:
    found = {}
    unique = list(dict.fromkeys(alert_ids))
    for start in range(0, len(unique), ALERTS_PAGE):
        chunk = unique[start : start + ALERTS_PAGE]
        hits = client.search(
            index=m.pattern(settings, m.ALERTS),
            allow_no_indices=True,
            ignore_unavailable=True,
            query={"ids": {"values": chunk}},
            size=len(chunk),
            track_total_hits=False,
        )["hits"]["hits"]
        found.update({hit["_id"]: docs.alert_from(hit["_source"]) for hit in hits})
    return found
