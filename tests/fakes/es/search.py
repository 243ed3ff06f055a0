"""Search execution: query -> matching docs -> sort / search_after / paging -> hits (+ aggregations).

Sort values are what Elasticsearch returns: dates and longs as integers (epoch millis for dates),
doubles as floats, keywords as strings, booleans as 1/0, a missing value as the sentinel ES uses
(Long.MAX_VALUE / Long.MIN_VALUE, "Infinity", or null for keywords).
"""

from __future__ import annotations

import time
from typing import Any

from . import dates
from .errors import EsError, bad_request, parsing, search_phase, unsupported
from .jsonutil import loads
from .query import Ctx, compile_query
from .sorting import (
    Hit,
    SortSpec,
    _out_value,
    order_docs,
    parse_sort,
    resolve_sort,
    sort_param,
)
from .source import fetch_fields, filter_source, source_spec

_BODY_KEYS = {
    "query",
    "size",
    "from",
    "sort",
    "search_after",
    "_source",
    "aggs",
    "aggregations",
    "track_total_hits",
    "track_scores",
    "pit",
    "timeout",
    "terminate_after",
    "post_filter",
    "min_score",
    "version",
    "seq_no_primary_term",
    "stored_fields",
    "docvalue_fields",
    "fields",
    "explain",
    "profile",
    "stats",
    "ext",
}
_UNSUPPORTED_BODY = {
    "collapse",
    "highlight",
    "rescore",
    "suggest",
    "knn",
    "script_fields",
    "runtime_mappings",
    "slice",
    "indices_boost",
    "rank",
    "retriever",
}


# ------------------------------------------------------------------ hits
def render_hit(
    h: Hit, specs: list[SortSpec], fetch: bool, inc: list[str], exc: list[str], with_score: bool, opts: dict[str, Any]
) -> dict[str, Any]:
    d = h.doc
    out: dict[str, Any] = {"_index": d.idx.name, "_id": d.id}
    if opts.get("version"):
        out["_version"] = d.version
    if opts.get("seq_no_primary_term"):
        out["_seq_no"] = d.seq_no
        out["_primary_term"] = 1
    out["_score"] = h.score if with_score else None
    if fetch:
        src = loads(d.source)
        out["_source"] = filter_source(src, inc, exc)
    fields = opts.get("fields")
    if fields:
        out_fields = fetch_fields(d, fields)
        if out_fields:
            out["fields"] = out_fields
    if specs:
        out["sort"] = [_out_value(sp, r) for sp, r in zip(specs, h.raw, strict=False)]
    return out


# ------------------------------------------------------------------ execution
class SearchRequest:
    def __init__(self, body: dict[str, Any], params: dict[str, str]):
        for k in body:
            if k in _UNSUPPORTED_BODY:
                raise unsupported(f"search [{k}]")
            if k not in _BODY_KEYS:
                raise parsing(f"Unknown key for a START_OBJECT in [{k}].")
        self.body = body
        self.query = body.get("query")
        if "q" in params:
            self.query = _uri_query(params["q"])
        self.size = int(params.get("size", body.get("size", 10)))
        self.from_ = int(params.get("from", body.get("from", 0)))
        if self.size < 0:
            raise bad_request(f"[size] parameter cannot be negative, found [{self.size}]")
        if self.from_ < 0:
            raise bad_request(f"[from] parameter cannot be negative, found [{self.from_}]")
        sort = body.get("sort")
        if "sort" in params:
            sort = sort_param(params["sort"])
        self.sort = parse_sort(sort)
        self.search_after = body.get("search_after")
        if self.search_after is not None:
            if not isinstance(self.search_after, list):
                raise parsing("[search_after] must be an array")
            if not self.sort:
                self.sort = [SortSpec("_score", "desc", None, None, None, None)]
            if self.from_ not in (0, -1):
                raise EsError(
                    400,
                    "action_request_validation_exception",
                    "Validation Failed: 1: `from` parameter must be set to 0 when `search_after` is used.;",
                )
        tth = params.get("track_total_hits", body.get("track_total_hits", 10000))
        if isinstance(tth, str):
            tth = True if tth == "true" else False if tth == "false" else int(tth)
        self.track_total_hits = tth
        self.fetch, self.includes, self.excludes = source_spec(body.get("_source"), params)
        if body.get("stored_fields") == "_none_" or params.get("stored_fields") == "_none_":
            self.fetch = False
        self.aggs = body.get("aggs", body.get("aggregations"))
        self.post_filter = body.get("post_filter")
        self.min_score = body.get("min_score")
        self.track_scores = bool(body.get("track_scores", False))
        self.opts = {
            "version": body.get("version") or params.get("version") == "true",
            "seq_no_primary_term": body.get("seq_no_primary_term") or params.get("seq_no_primary_term") == "true",
            "fields": list(body.get("fields") or []) + list(body.get("docvalue_fields") or []),
        }
        self.rest_total_hits_as_int = params.get("rest_total_hits_as_int") == "true"


def _uri_query(q: str) -> dict[str, Any]:
    if q in ("*", "*:*"):
        return {"match_all": {}}
    field, sep, value = q.partition(":")
    if not sep:
        raise unsupported("URI search without a field (q=text)")
    value = value.strip('"')
    if "*" in value:
        return {"wildcard": {field: value}}
    return {"match": {field: value}}


def run_search(
    views: list[Ctx], req: SearchRequest, id_fielddata: bool, pit: bool, limit_override: int | None = None
) -> tuple[dict[str, Any], list[Hit]]:
    """Returns (response body without pit/scroll ids, all ordered hits after `from` when scrolling)."""
    from .aggs import AggContext, parse_aggs, run_aggs  # local import: aggs imports search

    started = time.perf_counter()
    specs = req.sort
    if pit and specs and not any(sp.field == "_shard_doc" for sp in specs):
        specs = [*specs, SortSpec("_shard_doc", "asc", None, None, None, None)]
    resolve_sort(specs, views, id_fielddata, pit)
    if req.search_after is not None and len(req.search_after) != len(specs):
        raise search_phase(bad_request(f"search_after has {len(req.search_after)} value(s) but sort has {len(specs)}."))
    window = views[0].index.max_result_window if views else 10000
    if limit_override is None and req.from_ + req.size > window:
        raise search_phase(
            bad_request(
                f"Result window is too large, from + size must be less than or equal to: [{window}] but was "
                f"[{req.from_ + req.size}]. See the scroll api for a more efficient way to request large data sets. "
                f"This limit can be set by changing the [index.max_result_window] index level setting."
            )
        )
    agg_tree = parse_aggs(req.aggs) if req.aggs else None

    need_scores = not specs or any(sp.kind == "score" for sp in specs) or req.track_scores or req.min_score is not None
    docs: list[Any] = []
    scores: list[float] | None = [] if need_scores else None
    post: list[bool] = []
    for ctx in views:
        try:
            node = compile_query(req.query, ctx)
            post_node = compile_query(req.post_filter, ctx) if req.post_filter is not None else None
        except EsError as e:
            if e.type == "query_shard_exception":
                raise search_phase(e, index=ctx.index.name) from None
            raise
        slots = node.match(ctx, None)
        if not slots:
            continue
        vd = ctx.docs
        view_docs = [vd[s] for s in sorted(slots)]
        docs.extend(view_docs)
        if scores is not None:
            const = node.const
            scores.extend([const] * len(view_docs) if const is not None else [node.score(d) for d in view_docs])
        if post_node is not None:
            post.extend(post_node.test(d) for d in view_docs)
    if req.min_score is not None and scores is not None:
        ms = float(req.min_score)
        keep = [i for i, sc in enumerate(scores) if sc >= ms]
        docs = [docs[i] for i in keep]
        scores = [scores[i] for i in keep]
        if post:
            post = [post[i] for i in keep]

    aggregations = None
    if agg_tree is not None:
        lookup: dict[int, float] = {}
        agg_docs, agg_scores = docs, scores

        def score_of(d: Any) -> float:
            if agg_scores is None:
                return 1.0
            if not lookup:
                lookup.update((id(x), sc) for x, sc in zip(agg_docs, agg_scores, strict=True))
            return lookup.get(id(d), 1.0)

        actx = AggContext(views, views[0].now if views else dates.now_ms(), score_of, id_fielddata)
        aggregations = run_aggs(agg_tree, docs, actx)
    if req.post_filter is not None:
        docs = [d for d, ok in zip(docs, post, strict=True) if ok]
        if scores is not None:
            scores = [sc for sc, ok in zip(scores, post, strict=True) if ok]
    total = len(docs)

    eff_specs = specs or [SortSpec("_score", "desc", None, None, None, None)]
    if not specs:
        eff_specs[0].kind = "score"
    limit = None if limit_override is not None else req.from_ + req.size
    ordered = order_docs(docs, scores, eff_specs, limit, req.search_after, views)
    if not specs:
        for h in ordered:
            h.raw = []
    page = ordered[req.from_ :] if limit_override is not None else ordered[req.from_ : req.from_ + req.size]
    with_score = need_scores and (not specs or any(sp.kind == "score" for sp in specs) or req.track_scores)
    first = page if limit_override is None else page[:limit_override]
    hits = [render_hit(h, specs, req.fetch, req.includes, req.excludes, with_score, req.opts) for h in first]
    max_score = None
    if with_score and scores and req.size > 0:
        max_score = max(scores)
    hits_obj: dict[str, Any] = {}
    tth = req.track_total_hits
    if tth is not False:
        if tth is True or total <= int(tth):
            tot = {"value": total, "relation": "eq"}
        else:
            tot = {"value": int(tth), "relation": "gte"}
        hits_obj["total"] = tot["value"] if req.rest_total_hits_as_int else tot
    hits_obj["max_score"] = max_score
    hits_obj["hits"] = hits
    nshards = len(views)
    body: dict[str, Any] = {
        "took": int((time.perf_counter() - started) * 1000),
        "timed_out": False,
        "_shards": {"total": nshards, "successful": nshards, "skipped": 0, "failed": 0},
        "hits": hits_obj,
    }
    if aggregations is not None:
        body["aggregations"] = aggregations
    rest = page[limit_override:] if limit_override is not None else []
    return body, rest


def render_hits(rest: list[Hit], req: SearchRequest) -> list[dict[str, Any]]:
    specs = req.sort
    with_score = not specs or req.track_scores
    return [render_hit(h, specs, req.fetch, req.includes, req.excludes, with_score, req.opts) for h in rest]
