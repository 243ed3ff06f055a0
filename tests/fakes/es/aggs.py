"""Aggregations (bucket aggregations here, metrics in aggs_metrics.py), computed exactly over the
matching documents, with the response shapes of Elasticsearch 8."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from typing import Any

from . import dates
from .errors import EsError, bad_request, fielddata_text, search_phase, x_content
from .fields import FieldType
from .jsonutil import java_double
from .query import Ctx, compile_query


class AggContext:
    def __init__(self, views: list[Ctx], now: int, score_of: Callable[[Any], float], id_fielddata: bool = False):
        self.views = views
        self.now = now
        self.score_of = score_of
        self.id_fielddata = id_fielddata
        self._nodes: dict[tuple[int, int], Any] = {}

    def view_of(self, idx: Any) -> Ctx:
        for v in self.views:
            if v.index is idx:
                return v
        raise KeyError(idx.name)

    def node(self, query: Any, idx: Any) -> Any:
        key = (id(query), idx.ordinal)
        n = self._nodes.get(key)
        if n is None:
            try:
                n = compile_query(query, self.view_of(idx))
            except EsError as e:
                if e.type == "query_shard_exception":
                    raise search_phase(e, index=idx.name) from None
                raise
            self._nodes[key] = n
        return n

    def all_docs(self) -> list[Any]:
        out = []
        for v in self.views:
            docs = v.docs
            out.extend(docs[s] for s in v.visible)
        return out


class Field:
    """Per-index resolution of an aggregated field (mappings may differ between indices)."""

    def __init__(self, name: str, agg_type: str, agg_name: str, allow: tuple[str, ...] = ()):
        self.name = name
        self.agg_type = agg_type
        self.agg_name = agg_name
        self.allow = allow
        self._cache: dict[int, tuple[str | None, Any]] = {}

    def resolve(self, idx: Any) -> tuple[str | None, Any]:
        r = self._cache.get(idx.ordinal)
        if r is None and self.name == "_index":
            # the _index metadata field: a constant keyword per index (see column()/values())
            r = self._cache[idx.ordinal] = ("_index", FieldType("_index", {"type": "keyword"}))
        if r is None:
            ft = idx.mapping.field(self.name)
            if ft is None:
                r = (None, None)
            else:
                if ft.kind == "text" and not ft.aggregatable:
                    raise search_phase(fielddata_text(self.name), index=idx.name)
                if self.allow and ft.kind not in self.allow:
                    raise search_phase(
                        bad_request(
                            f"Field [{self.name}] of type [{ft.type}] is not supported for aggregation "
                            f"[{self.agg_type}]"
                        ),
                        index=idx.name,
                    )
                r = (idx.mapping.resolve_path(self.name), ft)
            self._cache[idx.ordinal] = r
        return r

    def kind(self, docs: list[Any], views: list[Ctx]) -> str | None:
        for v in views:
            _path, ft = self.resolve(v.index)
            if ft is not None:
                return ft.kind
        return None

    def ft(self, views: list[Ctx]) -> Any:
        for v in views:
            _, ft = self.resolve(v.index)
            if ft is not None:
                return ft
        return None

    def values(self, doc: Any) -> Any:
        if self.name == "_index":
            return (doc.idx.name,)
        path, _ = self.resolve(doc.idx)
        if path is None:
            return ()
        v = doc.fields.get(path)
        if v is None:
            return ()
        if type(v) is list:
            return v
        return (v,)

    def column(self, docs: list[Any]) -> list[Any]:
        """Raw doc values (scalar, list or None) of every doc, resolving the path once per index."""
        out: list[Any] = []
        start = 0
        n = len(docs)
        while start < n:
            idx = docs[start].idx
            end = start
            while end < n and docs[end].idx is idx:
                end += 1
            path, _ = self.resolve(idx)
            if self.name == "_index":
                out.extend([idx.name] * (end - start))
            elif path is None:
                out.extend([None] * (end - start))
            else:
                out.extend([d.fields.get(path) for d in docs[start:end]])
            start = end
        return out


def group(
    docs: list[Any], col: list[Any], keyfn: Callable[[Any], Any] | None, want_docs: bool, missing: Any = None
) -> dict[Any, Any]:
    """key -> docs (want_docs) or key -> count; a doc counts once per distinct key."""
    if not want_docs:
        scal = [v for v in col if v is not None and type(v) is not list]
        counts: Counter[Any] = Counter(scal if keyfn is None else map(keyfn, scal))
        for v in col:
            if type(v) is list:
                counts.update(set(v) if keyfn is None else {keyfn(x) for x in v})
        if missing is not None:
            n_missing = sum(1 for v in col if v is None)
            if n_missing:
                counts[missing if keyfn is None else keyfn(missing)] += n_missing
        return counts
    groups: dict[Any, list[Any]] = {}
    for d, v in zip(docs, col, strict=True):
        if v is None:
            if missing is None:
                continue
            v = missing
        if type(v) is list:
            keys = set(v) if keyfn is None else {keyfn(x) for x in v}
            for k in keys:
                g = groups.get(k)
                if g is None:
                    groups[k] = [d]
                else:
                    g.append(d)
            continue
        k = v if keyfn is None else keyfn(v)
        g = groups.get(k)
        if g is None:
            groups[k] = [d]
        else:
            g.append(d)
    return groups


class Agg:
    type_name = ""
    params_allowed: tuple[str, ...] = ()

    def __init__(self, name: str, params: dict[str, Any], subs: list[Agg], meta: Any):
        self.name = name
        self.params = params if isinstance(params, dict) else {}
        self.subs = subs
        self.meta = meta
        if self.params_allowed and isinstance(params, dict):
            for k in params:
                if k not in self.params_allowed:
                    raise x_content(f"[{self.type_name}] unknown field [{k}]")
        self.setup()

    def setup(self) -> None:
        pass

    def field(self, allow: tuple[str, ...] = ()) -> Field:
        f = self.params.get("field")
        if f is None:
            if "script" in self.params:
                raise EsError(
                    400,
                    "illegal_argument_exception",
                    "[fake-es] aggregation scripts are not supported by FakeElasticsearch",
                )
            raise bad_request("Required one of fields [field, script], but none were specified.")
        return Field(f, self.type_name, self.name, allow)

    def collect(self, docs: list[Any], actx: AggContext) -> dict[str, Any]:
        raise NotImplementedError

    def result(self, docs: list[Any], actx: AggContext) -> dict[str, Any]:
        out = self.collect(docs, actx)
        if self.meta is not None:
            out = dict(out)
            out["meta"] = self.meta
        return out

    def bucket(self, base: dict[str, Any], docs: list[Any], actx: AggContext) -> dict[str, Any]:
        if self.subs:
            base.update(run_aggs(self.subs, docs, actx))
        return base


def parse_aggs(spec: Any) -> list[Agg]:
    from .aggs_buckets import BUCKETS
    from .aggs_metrics import METRICS

    if not isinstance(spec, dict):
        raise parsing_agg("Aggregation definition must be an object")
    out: list[Agg] = []
    for name, body in spec.items():
        if not re.fullmatch(r"[^\[\]>]+", name):
            raise parsing_agg(
                f"Invalid aggregation name [{name}]. Aggregation names can contain any character except "
                "'[', ']', and '>'"
            )
        if not isinstance(body, dict):
            raise parsing_agg(f"Expected [START_OBJECT] under [{name}], but got a [VALUE_STRING] in [{name}]")
        subs_spec = body.get("aggs", body.get("aggregations"))
        types = [k for k in body if k not in ("aggs", "aggregations", "meta")]
        if not types:
            raise parsing_agg(f"Missing definition for aggregation [{name}]")
        if len(types) > 1:
            raise parsing_agg(f"Found two aggregation type definitions in [{name}]: [{types[0]}] and [{types[1]}]")
        t = types[0]
        cls = BUCKETS.get(t) or METRICS.get(t)
        if cls is None:
            if t in _UNSUPPORTED_AGGS:
                raise EsError(
                    400,
                    "illegal_argument_exception",
                    f"[fake-es] the [{t}] aggregation is not supported by FakeElasticsearch",
                )
            raise EsError(
                400,
                "x_content_parse_exception",
                f"[1:1] Unknown aggregation type [{t}]",
                caused_by=EsError(400, "named_object_not_found_exception", f"[1:1] unknown field [{t}]"),
            )
        subs = parse_aggs(subs_spec) if subs_spec else []
        if subs and getattr(cls, "is_metric", False):
            raise parsing_agg(f"Aggregator [{name}] of type [{t}] cannot accept sub-aggregations")
        agg = cls(name, body[t], subs, body.get("meta"))
        out.append(agg)
    return out


def parsing_agg(reason: str) -> EsError:
    return EsError(400, "parsing_exception", reason, line=1, col=1)


def run_aggs(aggs: list[Agg], docs: list[Any], actx: AggContext) -> dict[str, Any]:
    return {a.name: a.result(docs, actx) for a in aggs}


_UNSUPPORTED_AGGS = {
    "significant_terms",
    "significant_text",
    "rare_terms",
    "multi_terms",
    "auto_date_histogram",
    "geo_distance",
    "geohash_grid",
    "geotile_grid",
    "ip_range",
    "ip_prefix",
    "nested",
    "reverse_nested",
    "sampler",
    "diversified_sampler",
    "adjacency_matrix",
    "variable_width_histogram",
    "bucket_script",
    "bucket_selector",
    "bucket_sort",
    "avg_bucket",
    "max_bucket",
    "min_bucket",
    "sum_bucket",
    "stats_bucket",
    "derivative",
    "cumulative_sum",
    "moving_fn",
    "serial_diff",
    "scripted_metric",
    "geo_bounds",
    "geo_centroid",
    "median_absolute_deviation",
    "weighted_avg",
    "string_stats",
    "boxplot",
    "t_test",
    "rate",
    "top_metrics",
    "percentile_ranks",
    "matrix_stats",
    "categorize_text",
    "frequent_item_sets",
    "time_series",
    "random_sampler",
    "children",
    "parent",
}


# ---------------------------------------------------------------------- key helpers
def key_of(kind: str | None, v: Any) -> Any:
    if kind == "boolean":
        return 1 if v else 0
    if kind == "double":
        return float(v)
    return v


def key_as_string(kind: str | None, key: Any, fmt: str | None = None, tz: Any = dates.UTC) -> str | None:
    if kind == "date":
        return dates.format_date(int(key), fmt, tz)
    if kind == "boolean":
        return "true" if key else "false"
    return None


def _metric_sort_value(bucket: dict[str, Any], path: str) -> Any:
    name, _, metric = path.partition(".")
    if name == "_count":
        return bucket["doc_count"]
    if name in ("_key", "_term"):
        return bucket["key"]
    sub = bucket.get(name)
    if sub is None:
        raise bad_request(f"Invalid aggregation order path [{path}]. Unknown aggregation [{name}]")
    if not metric:
        if "value" in sub:
            return sub["value"]
        if "doc_count" in sub:
            return sub["doc_count"]
        raise bad_request(
            f"Invalid aggregation order path [{path}]. The provided aggregation [{name}] is a multi-value "
            "aggregation and requires a metric name"
        )
    if "values" in sub and isinstance(sub["values"], dict):
        return sub["values"].get(metric) if metric in sub["values"] else sub["values"].get(java_double(float(metric)))
    return sub.get(metric)


def order_buckets(buckets: list[dict[str, Any]], order: Any, default: list[tuple[str, str]]) -> list[dict[str, Any]]:
    if order is None:
        orders = default
    else:
        items = order if isinstance(order, list) else [order]
        orders = []
        for item in items:
            for k, v in item.items():
                orders.append((k, str(v).lower()))
    keys = [k for k, _ in orders]
    if not any(k in ("_key", "_term") for k in keys):
        orders = [*orders, ("_key", "asc")]
    out = list(buckets)
    for path, direction in reversed(orders):
        desc = direction == "desc"

        def sk(b: dict[str, Any], path: str = path, desc: bool = desc) -> Any:
            v = _metric_sort_value(b, path)
            missing = v is None or (isinstance(v, float) and v != v)
            # nulls sort last whatever the direction
            return (1 if not desc else -1, 0) if missing else (0, v)

        out.sort(key=sk, reverse=desc)
    return out


def _needs_sub_for_order(order: Any) -> bool:
    if order is None:
        return False
    items = order if isinstance(order, list) else [order]
    return any(k not in ("_count", "_key", "_term") for item in items for k in item)
