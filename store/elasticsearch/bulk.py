"""Bulk requests where every item's result is read: nothing fails silently.

A bulk request answers 200 even when some of its items failed; each item
carries its own status.  Here each item's status is one of:

* accepted (``201`` created, ``200`` updated, or an outcome the caller
  expects such as ``409`` for a ``create`` of an id that exists: a duplicate);
* worth retrying (``429`` queue full, ``502``/``503``/``504``): only those
  items are sent again, after a backoff;
* anything else: the batch is refused with the item's id and reason
  (``BulkRejected``), never dropped.

A whole request that fails (429, 5xx, no connection) is retried the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from elasticsearch import Elasticsearch
from store.elasticsearch.client import RETRY_STATUSES, Backoff, describe_error, retriable
from store.elasticsearch.settings import ElasticsearchSettings


@dataclass(frozen=True, slots=True)
class BulkOp:
    """One bulk item: the action line (``{"create": {"_index": ..., "_id": ...}}``) and its body."""

    action: dict[str, Any]
    body: bytes | None  # serialised document (create/index) or update body; None for delete


class BulkRejected(Exception):
    """Elasticsearch refused items for a reason retrying cannot fix (a mapping error, a bad request)."""


_FILTER = "errors,items.*._id,items.*._index,items.*.status,items.*.error,items.*._seq_no,items.*._primary_term"


def run_bulk(
    client: Elasticsearch,
    settings: ElasticsearchSettings,
    ops: Sequence[BulkOp],
    accepted: frozenset[int] = frozenset({200, 201}),
    refresh: bool = False,
) -> list[dict[str, Any]]:
    """Send ``ops``; return each one's result (``status``, ``_id``, ...) in order."""
    results: dict[int, dict[str, Any]] = {}  # by position: every one is filled or _run_chunk raised
    size = settings.bulk_documents
    for start in range(0, len(ops), size):
        _run_chunk(client, settings, ops, range(start, min(start + size, len(ops))), accepted, refresh, results)
    return [results[position] for position in range(len(ops))]


def _run_chunk(
    client: Elasticsearch,
    settings: ElasticsearchSettings,
    ops: Sequence[BulkOp],
    positions: range,
    accepted: frozenset[int],
    refresh: bool,
    results: dict[int, dict[str, Any]],
) -> None:
    pending = list(positions)
    backoff = Backoff(settings)
    while pending:
        body = _ndjson(ops[i] for i in pending)
        try:
            # the stubs want a list of dicts; the client sends bytes as they are (ndjson built once, above)
            response = client.bulk(operations=body, refresh=refresh, filter_path=_FILTER)  # type: ignore[arg-type]
        except Exception as exc:
            if not retriable(exc):
                raise
            backoff.wait(f"bulk of {len(pending)} documents", describe_error(exc))
            continue
        items = response.get("items", [])
        if len(items) != len(pending):  # pragma: no cover - a broken server or proxy
            raise BulkRejected(f"bulk answered {len(items)} items for {len(pending)} sent")
        retry, refused = [], []
        for position, item in zip(pending, items, strict=True):
            (result,) = item.values()
            status = result.get("status", 0)
            if status in accepted:
                results[position] = result
            elif status in RETRY_STATUSES:
                retry.append(position)
            else:
                refused.append(result)
        if refused:
            raise BulkRejected(_refusal(refused))
        if retry:
            first = items[pending.index(retry[0])]
            (result,) = first.values()
            backoff.wait(f"{len(retry)} of {len(pending)} bulk items", _item_reason(result))
        pending = retry


def _ndjson(ops: Iterable[BulkOp]) -> bytes:
    parts = []
    dumps = orjson.dumps
    for op in ops:
        parts.append(dumps(op.action))
        if op.body is not None:
            parts.append(op.body)
    parts.append(b"")
    return b"\n".join(parts)


def _item_reason(result: dict[str, Any]) -> str:
    error = result.get("error") or {}
    if isinstance(error, dict):
        return f"HTTP {result.get('status')} {error.get('type', '')}: {error.get('reason', '')}".strip()
    return f"HTTP {result.get('status')} {error}"


def _refusal(refused: list[dict[str, Any]]) -> str:
    shown = "; ".join(f"{r.get('_index')}/{r.get('_id')}: {_item_reason(r)}" for r in refused[:3])
    more = f" (and {len(refused) - 3} more)" if len(refused) > 3 else ""
    return f"elasticsearch refused {len(refused)} documents: {shown}{more}"
