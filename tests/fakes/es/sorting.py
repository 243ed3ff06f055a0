"""Sorting: sort specs, missing values, search_after, and ordering the matching documents (with a heap for
top-k). Sort values are what Elasticsearch returns: dates and longs as integers (epoch millis for dates),
doubles as floats, keywords as strings, booleans as 1/0, a missing value as the sentinel ES uses
(Long.MAX_VALUE / Long.MIN_VALUE, "Infinity", or null for keywords).
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Callable, Sequence
from typing import Any

from . import dates
from .errors import EsError, bad_request, fielddata_text, parsing, search_phase, unsupported
from .query import Ctx

LONG_MAX = 2**63 - 1
LONG_MIN = -(2**63)
INF = float("inf")


# ------------------------------------------------------------------ sorting
class SortSpec:
    def __init__(
        self, field: str, order: str, missing: Any, mode: str | None, unmapped_type: str | None, fmt: str | None
    ):
        self.field = field
        self.order = order
        self.missing = missing
        self.mode = mode
        self.unmapped_type = unmapped_type
        self.fmt = fmt
        self.kind = "keyword"  # resolved against the mappings
        self.ft: Any = None

    @property
    def desc(self) -> bool:
        return self.order == "desc"


def parse_sort(sort: Any) -> list[SortSpec]:
    if sort is None:
        return []
    if not isinstance(sort, list):
        sort = [sort]
    specs = []
    for item in sort:
        if isinstance(item, str):
            if ":" in item and item not in ("_score", "_doc"):
                f, _, order = item.rpartition(":")
                specs.append(SortSpec(f, order.lower(), None, None, None, None))
            else:
                specs.append(SortSpec(item, "desc" if item == "_score" else "asc", None, None, None, None))
        elif isinstance(item, dict) and len(item) == 1:
            ((field, opts),) = item.items()
            if field in ("_script", "_geo_distance"):
                raise unsupported(f"sorting by [{field}]")
            if isinstance(opts, str):
                opts = {"order": opts}
            order = str(opts.get("order", "desc" if field == "_score" else "asc")).lower()
            if order not in ("asc", "desc"):
                raise parsing(f"Unknown SortOrder [{order}]")
            specs.append(
                SortSpec(
                    field, order, opts.get("missing"), opts.get("mode"), opts.get("unmapped_type"), opts.get("format")
                )
            )
        else:
            raise parsing("[sort] malformed")
    return specs


def sort_param(value: str) -> list[Any]:
    out: list[Any] = []
    for part in value.split(","):
        f, sep, order = part.rpartition(":")
        out.append({f: order} if sep else part)
    return out


def resolve_sort(specs: list[SortSpec], views: list[Ctx], id_fielddata: bool, pit: bool) -> None:
    for sp in specs:
        f = sp.field
        if f == "_score":
            sp.kind = "score"
            continue
        if f == "_doc":
            sp.kind = "doc"
            continue
        if f == "_shard_doc":
            if not pit:
                raise search_phase(bad_request("[_shard_doc] sort field cannot be used without [point in time]"))
            sp.kind = "shard_doc"
            continue
        if f == "_id":
            if not id_fielddata:
                raise search_phase(
                    bad_request(
                        "Fielddata access on the _id field is disallowed, you can re-enable it by updating the dynamic "
                        "cluster setting: indices.id_field_data.enabled"
                    )
                )
            sp.kind = "id"
            continue
        fts = [v.mapping.field(f) for v in views]
        mapped = [ft for ft in fts if ft is not None]
        if not mapped:
            if sp.unmapped_type is None and views:
                raise search_phase(
                    EsError(
                        400,
                        "query_shard_exception",
                        f"No mapping found for [{f}] in order to sort on",
                        index_uuid=views[0].index.uuid,
                        index=views[0].index.name,
                    ),
                    index=views[0].index.name,
                )
            kind = {
                "long": "long",
                "integer": "long",
                "short": "long",
                "byte": "long",
                "date": "date",
                "double": "double",
                "float": "double",
                "boolean": "boolean",
            }.get(sp.unmapped_type or "keyword", "keyword")
            sp.kind = kind
            continue
        ft = mapped[0]
        if ft.kind == "text" and not ft.aggregatable:
            raise search_phase(fielddata_text(f))
        if ft.kind == "other":
            raise search_phase(bad_request(f"Field [{f}] of type [{ft.type}] does not support sorting"))
        sp.kind = ft.kind
        sp.ft = ft


def _numeric_kind(kind: str) -> bool:
    return kind in ("long", "date", "double", "boolean", "score", "doc", "shard_doc")


def _missing_value(sp: SortSpec) -> Any:
    m = sp.missing if sp.missing is not None else "_last"
    numeric = _numeric_kind(sp.kind)
    if m in ("_last", "_first"):
        last = m == "_last"
        if not numeric:
            return None
        if sp.kind == "double":
            return INF if last != sp.desc else -INF
        return LONG_MAX if last != sp.desc else LONG_MIN
    return parse_sort_value(sp, m)


def parse_sort_value(sp: SortSpec, v: Any) -> Any:
    """A search_after / missing value in the representation used for comparisons."""
    k = sp.kind
    if v is None:
        return None
    if k in ("long", "doc", "shard_doc"):
        if isinstance(v, str) and not re.fullmatch(r"[+-]?\d+", v):
            try:
                return int(float(v))
            except ValueError:
                raise search_phase(bad_request(f"Failed to parse search_after value for field [{sp.field}].")) from None
        return int(v)
    if k == "boolean":
        return 1 if v in (True, "true", 1) else 0
    if k == "date":
        if isinstance(v, (int, float)):
            return int(v)
        try:
            return dates.parse_date(v, sp.fmt or (sp.ft.fmt if sp.ft is not None else None))
        except ValueError:
            raise search_phase(bad_request(f"Failed to parse search_after value for field [{sp.field}].")) from None
    if k in ("double", "score"):
        if v in ("Infinity", "-Infinity"):
            return INF if v == "Infinity" else -INF
        return float(v)
    return str(v)


def _column(sp: SortSpec, docs: list[Any], views: Sequence[Ctx]) -> list[Any]:
    """Raw sort values of `docs` for one sort spec (missing replaced as ES does)."""
    k = sp.kind
    if k == "doc":
        return [d.slot for d in docs]
    if k == "shard_doc":
        return [(d.idx.ordinal << 32) | d.slot for d in docs]
    if k == "id":
        return [d.id for d in docs]
    missing = _missing_value(sp)
    field = sp.field
    if any(field in v.mapping.aliases for v in views) or not views:
        col = [d.fields.get(d.idx.mapping.resolve_path(field), missing) for d in docs]
    else:
        col = [d.fields.get(field, missing) for d in docs]
    mode = sp.mode
    if mode in ("sum", "avg", "median"):

        def reduce(v: list[Any]) -> Any:
            if mode == "sum":
                return sum(v)
            if mode == "avg":
                return sum(v) / len(v)
            return sorted(v)[len(v) // 2]

    else:
        reduce = max if (mode == "max" or (mode is None and sp.desc)) else min  # type: ignore[assignment]
    col = [reduce(v) if type(v) is list else v for v in col]
    if k == "boolean":
        col = [int(v) if v is True or v is False else v for v in col]
    return col


def _key_fn(sp: SortSpec) -> Callable[[Any], Any] | None:
    """raw value -> comparable key; None when the raw value is its own key (numbers)."""
    if _numeric_kind(sp.kind):
        return None
    m = sp.missing if sp.missing is not None else "_last"
    if m == "_first":
        rank = 1 if sp.desc else -1
    else:
        rank = -1 if sp.desc else 1
    return lambda v: (rank, "") if v is None else (0, v)


def _out_value(sp: SortSpec, v: Any) -> Any:
    if v is None:
        return None
    if sp.kind == "double" or sp.kind == "score":
        if v in (INF, -INF):
            return "Infinity" if v > 0 else "-Infinity"
        return float(v)
    if sp.kind == "date" and sp.fmt:
        return dates.format_date(v, sp.fmt)
    return v


class Hit:
    __slots__ = ("doc", "raw", "score")

    def __init__(self, doc: Any, score: float | None, raw: list[Any] | None = None):
        self.doc = doc
        self.score = score
        self.raw = raw or []


def order_docs(
    docs: list[Any],
    scores: list[float] | None,
    specs: list[SortSpec],
    limit: int | None,
    after: list[Any] | None,
    views: Sequence[Ctx],
) -> list[Hit]:
    """Order docs by `specs` (ties keep the incoming order: index, then slot), keep those strictly after
    `after`, return the first `limit` as Hits. Only the returned hits are materialized."""
    n = len(docs)
    cols: list[list[Any]] = []
    keycols: list[list[Any]] = []
    for sp in specs:
        col = (scores if scores is not None else [0.0] * n) if sp.kind == "score" else _column(sp, docs, views)
        cols.append(col)
        kf = _key_fn(sp)
        keycols.append(col if kf is None else [kf(v) for v in col])
    idxs: Sequence[int] = range(n)
    if after is not None:
        akeys = []
        for sp, v in zip(specs, after, strict=False):
            kf = _key_fn(sp)
            pv = parse_sort_value(sp, v)
            akeys.append(pv if kf is None else kf(pv))
        descs = [sp.desc for sp in specs]
        m = len(specs)

        def is_after(i: int) -> bool:
            for j in range(m):
                k, a = keycols[j][i], akeys[j]
                if k == a:
                    continue
                try:
                    gt = k > a
                except TypeError:
                    gt = str(k) > str(a)
                return gt != descs[j]
            return False

        idxs = [i for i in idxs if is_after(i)]
    if limit is not None and limit < len(idxs) and specs:
        directions = {sp.desc for sp in specs}
        if len(specs) == 1:
            kc = keycols[0]
            pick = heapq.nlargest if specs[0].desc else heapq.nsmallest
            sel = pick(limit, idxs, key=kc.__getitem__)
        elif len(directions) == 1:
            pick = heapq.nlargest if specs[0].desc else heapq.nsmallest
            sel = pick(limit, idxs, key=lambda i: tuple(kc[i] for kc in keycols))
        elif all(_numeric_kind(sp.kind) for sp in specs):
            signs = [-1 if sp.desc else 1 for sp in specs]
            sel = heapq.nsmallest(
                limit, idxs, key=lambda i: tuple(sg * kc[i] for sg, kc in zip(signs, keycols, strict=True))
            )
        else:
            sel = _full_sort(list(idxs), specs, keycols)[:limit]
    else:
        sel = _full_sort(list(idxs), specs, keycols)
        if limit is not None:
            sel = sel[:limit]
    return [Hit(docs[i], scores[i] if scores is not None else None, [col[i] for col in cols]) for i in sel]


def _full_sort(order: list[int], specs: list[SortSpec], keycols: list[list[Any]]) -> list[int]:
    for j in range(len(specs) - 1, -1, -1):
        order.sort(key=keycols[j].__getitem__, reverse=specs[j].desc)
    return order
