"""Query DSL compilation: a query body becomes a tree of nodes (query_nodes.py), compiled per index
because mappings differ between indices."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from . import dates
from .errors import EsError, parsing, unsupported
from .fields import FieldType, analyze
from .query_nodes import (
    Bool,
    Constant,
    Ctx,
    DisMax,
    Exists,
    FieldPred,
    Ids,
    MatchAll,
    MatchNone,
    Node,
    Phrase,
    Terms,
    TermScan,
    TextMatch,
)

__all__ = ["Ctx", "Node", "compile_query"]


# ====================================================================== compilation
def _single(q: Any, name: str) -> tuple:
    if not isinstance(q, dict) or not q:
        raise parsing(f"[{name}] query malformed, no start_object after query name")
    if len(q) > 1:
        fields = [k for k in q if k not in ("boost", "_name")]
        if len(fields) > 1:
            raise parsing(f"[{name}] query doesn't support multiple fields, found [{fields[0]}] and [{fields[1]}]")
        if not fields:
            raise parsing(f"[{name}] query malformed, no field")
        return fields[0], q[fields[0]], float(q.get("boost", 1.0))
    ((field, body),) = q.items()
    return field, body, 1.0


def _shard_error(ctx: Ctx, reason: str) -> EsError:
    return EsError(
        400,
        "query_shard_exception",
        f"failed to create query: {reason}",
        index_uuid=ctx.index.uuid,
        index=ctx.index.name,
    )


def _qvalue(ctx: Ctx, ft: FieldType, value: Any) -> Any:
    try:
        v = ft.parse_query_value(value)
    except ValueError as exc:
        raise _shard_error(ctx, str(exc)) from None
    return v


def compile_query(q: dict[str, Any] | None, ctx: Ctx) -> Node:
    if q is None:
        return MatchAll()
    if not isinstance(q, dict):
        raise parsing("query malformed, must start with start_object")
    if len(q) != 1:
        if not q:
            return MatchAll()
        keys = list(q)
        raise parsing(f"[{keys[0]}] malformed query, expected [END_OBJECT] but found [FIELD_NAME]")
    ((kind, body),) = q.items()
    fn = _COMPILERS.get(kind)
    if fn is None:
        if kind in _UNSUPPORTED:
            raise unsupported(f"the [{kind}] query")
        raise parsing(f"unknown query [{kind}]")
    return fn(body, ctx)


def _boost(body: Any) -> float:
    return float(body.get("boost", 1.0)) if isinstance(body, dict) else 1.0


def _c_match_all(body: dict[str, Any], ctx: Ctx) -> Node:
    return MatchAll(_boost(body))


def _c_match_none(body: dict[str, Any], ctx: Ctx) -> Node:
    return MatchNone()


def _term_body(body: Any, key: str = "value") -> tuple:
    if isinstance(body, dict):
        if key not in body:
            raise parsing(f"[term] query does not support [{next(iter(body), '')}]")
        for k in body:
            if k not in (key, "boost", "_name", "case_insensitive"):
                raise parsing(f"[term] query does not support [{k}]")
        return body[key], float(body.get("boost", 1.0)), bool(body.get("case_insensitive", False))
    return body, 1.0, False


def _c_term(body: dict[str, Any], ctx: Ctx) -> Node:
    field, spec, _ = _single(body, "term")
    value, boost, ci = _term_body(spec)
    if isinstance(value, (dict, list)):
        raise parsing("[term] query does not support array of values")
    meta = _metadata_query(field, [value], ctx, boost)
    if meta is not None:
        return meta
    ft = ctx.mapping.field(field)
    if ft is None:
        return MatchNone()
    path = ctx.mapping.resolve_path(field)
    if ft.kind == "other":
        raise _shard_error(ctx, f"Field [{field}] of type [{ft.type}] does not support term queries")
    if ft.kind == "text":
        return Terms(path, [str(value)], boost, text=True)
    v = _qvalue(ctx, ft, value)
    if v is None:
        return MatchNone()
    if ci and isinstance(v, str):
        low = v.lower()
        return TermScan(path, lambda t: t.lower() == low, boost)
    return Terms(path, [v], boost)


def _c_terms(body: dict[str, Any], ctx: Ctx) -> Node:
    boost = float(body.get("boost", 1.0))
    fields = [k for k in body if k not in ("boost", "_name")]
    if len(fields) != 1:
        raise parsing("[terms] query does not support multiple fields" if fields else "[terms] query requires a field")
    field = fields[0]
    values = body[field]
    if isinstance(values, dict):
        raise unsupported("terms lookup")
    if not isinstance(values, list):
        raise parsing(f"[terms] query does not support [{field}]")
    meta = _metadata_query(field, values, ctx, boost)
    if meta is not None:
        return meta
    ft = ctx.mapping.field(field)
    if ft is None:
        return MatchNone()
    path = ctx.mapping.resolve_path(field)
    if ft.kind == "text":
        return Terms(path, [str(v) for v in values], boost, text=True)
    vals = [_qvalue(ctx, ft, v) for v in values]
    return Terms(path, [v for v in vals if v is not None], boost)


def _metadata_query(field: str, values: list[Any], ctx: Ctx, boost: float) -> Node | None:
    """term/terms on the `_id` and `_index` metadata fields."""
    if field == "_id":
        return Ids([str(v) for v in values], boost)
    if field == "_index":
        idx = ctx.index
        names = {idx.name} | ({idx.data_stream} if idx.data_stream else set()) | set(idx.aliases)
        return MatchAll(boost) if any(str(v) in names for v in values) else MatchNone()
    return None


def _c_ids(body: dict[str, Any], ctx: Ctx) -> Node:
    return Ids(body.get("values", []), _boost(body))


def _c_exists(body: dict[str, Any], ctx: Ctx) -> Node:
    field = body.get("field")
    if not field:
        raise parsing("[exists] must be provided with a [field]")
    paths = []
    for f in ctx.mapping.match_fields(field) if "*" in field else [field]:
        paths.extend(ctx.mapping.leaves_under(f))
    return Exists(paths, _boost(body))


def _range_bound_parser(ctx: Ctx, ft: FieldType, spec: dict[str, Any]) -> Callable[[Any, bool], Any]:
    if ft.kind == "date":
        fmt = spec.get("format") or ft.fmt
        try:
            tz = dates.resolve_tz(spec.get("time_zone"))
        except ValueError as exc:
            raise EsError(400, "illegal_argument_exception", str(exc)) from None

        def parse(v: Any, round_up: bool) -> Any:
            try:
                return dates.parse_date_math(v, ctx.now, round_up, fmt, tz)
            except ValueError as exc:
                raise _shard_error(ctx, str(exc)) from None

        return parse
    if ft.kind in ("long", "double"):

        def parse_num(v: Any, round_up: bool) -> Any:
            if isinstance(v, bool):
                raise _shard_error(ctx, f'For input string: "{v}"')
            if not isinstance(v, (int, float)):
                try:
                    v = int(v) if re.fullmatch(r"[+-]?\d+", str(v)) else float(v)
                except ValueError:
                    raise _shard_error(ctx, f'For input string: "{v}"') from None
            if ft.type in ("float", "half_float"):
                v = ft._to_float(v)  # compare in the field's precision, like FloatPoint range queries
            return v

        return parse_num
    if ft.kind == "boolean":
        return lambda v, r: _qvalue(ctx, ft, v)
    return lambda v, r: str(v).lower() if ft.kind == "text" else str(v)


def _c_range(body: dict[str, Any], ctx: Ctx) -> Node:
    field, spec, _ = _single(body, "range")
    if not isinstance(spec, dict):
        raise parsing("[range] query malformed, no start_object after field name")
    for k in spec:
        if k not in (
            "gt",
            "gte",
            "lt",
            "lte",
            "from",
            "to",
            "include_lower",
            "include_upper",
            "format",
            "time_zone",
            "boost",
            "relation",
            "_name",
        ):
            raise parsing(f"[range] query does not support [{k}]")
    ft = ctx.mapping.field(field)
    if ft is None:
        return MatchNone()
    if ft.kind == "other":
        raise _shard_error(ctx, f"Field [{field}] of type [{ft.type}] does not support range queries")
    path = ctx.mapping.resolve_path(field)
    parse = _range_bound_parser(ctx, ft, spec)
    lo = hi = None
    lo_inc = hi_inc = True
    if spec.get("from") is not None:
        lo, lo_inc = spec["from"], bool(spec.get("include_lower", True))
    if spec.get("to") is not None:
        hi, hi_inc = spec["to"], bool(spec.get("include_upper", True))
    if spec.get("gte") is not None:
        lo, lo_inc = spec["gte"], True
    if spec.get("gt") is not None:
        lo, lo_inc = spec["gt"], False
    if spec.get("lte") is not None:
        hi, hi_inc = spec["lte"], True
    if spec.get("lt") is not None:
        hi, hi_inc = spec["lt"], False
    # date math rounding: gt/lte round up, gte/lt round down
    lo_v = parse(lo, not lo_inc) if lo is not None else None
    hi_v = parse(hi, hi_inc) if hi is not None else None
    boost = float(spec.get("boost", 1.0))
    if lo_v is not None and hi_v is not None:
        if lo_inc and hi_inc:
            pred = lambda v: lo_v <= v <= hi_v  # noqa: E731
        elif lo_inc:
            pred = lambda v: lo_v <= v < hi_v  # noqa: E731
        elif hi_inc:
            pred = lambda v: lo_v < v <= hi_v  # noqa: E731
        else:
            pred = lambda v: lo_v < v < hi_v  # noqa: E731
    elif lo_v is not None:
        pred = (lambda v: v >= lo_v) if lo_inc else (lambda v: v > lo_v)
    elif hi_v is not None:
        pred = (lambda v: v <= hi_v) if hi_inc else (lambda v: v < hi_v)
    else:
        return Exists([path], boost)
    if ft.kind == "text":
        return TermScan(path, pred, boost)
    return FieldPred(path, pred, boost)


def _string_query(
    kind: str, body: dict[str, Any], ctx: Ctx, make: Callable[[str, bool], Callable[[str], bool]]
) -> Node:
    field, spec, _ = _single(body, kind)
    if isinstance(spec, dict):
        value = spec.get("value", spec.get(kind))
        boost = float(spec.get("boost", 1.0))
        ci = bool(spec.get("case_insensitive", False))
    else:
        value, boost, ci = spec, 1.0, False
    if value is None:
        raise parsing(f"[{kind}] query requires a value")
    ft = ctx.mapping.field(field)
    if ft is None:
        return MatchNone()
    if ft.kind not in ("keyword", "text", "ip"):
        raise _shard_error(
            ctx,
            f"Can only use {kind} queries on keyword and text fields - not on [{field}] which is of type [{ft.type}]",
        )
    return TermScan(ctx.mapping.resolve_path(field), make(str(value), ci), boost)


def _c_prefix(body: dict[str, Any], ctx: Ctx) -> Node:
    def make(value: str, ci: bool) -> Callable[[str], bool]:
        if ci:
            low = value.lower()
            return lambda t: t.lower().startswith(low)
        return lambda t: t.startswith(value)

    return _string_query("prefix", body, ctx, make)


def _wildcard_regex(pattern: str) -> str:
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if c == "*" else "." if c == "?" else re.escape(c))
        i += 1
    return "".join(out)


def _c_wildcard(body: dict[str, Any], ctx: Ctx) -> Node:
    def make(value: str, ci: bool) -> Callable[[str], bool]:
        rx = re.compile(_wildcard_regex(value), re.S | (re.I if ci else 0))
        return lambda t: rx.fullmatch(t) is not None

    return _string_query("wildcard", body, ctx, make)


def _c_regexp(body: dict[str, Any], ctx: Ctx) -> Node:
    def make(value: str, ci: bool) -> Callable[[str], bool]:
        try:
            rx = re.compile(value, re.S | (re.I if ci else 0))
        except re.error as exc:
            raise EsError(400, "illegal_argument_exception", f"invalid regular expression [{value}]: {exc}") from None
        return lambda t: rx.fullmatch(t) is not None

    return _string_query("regexp", body, ctx, make)


def _msm(spec: Any, n: int) -> int:
    if spec is None:
        return 1
    s = str(spec).strip()
    if s.endswith("%"):
        pct = int(float(s[:-1]))
        v = (n * abs(pct)) // 100
        return max(0, n - v) if pct < 0 else v
    v = int(s)
    return max(0, n + v) if v < 0 else v


def _c_match(body: dict[str, Any], ctx: Ctx, phrase: bool = False) -> Node:
    kind = "match_phrase" if phrase else "match"
    field, spec, _ = _single(body, kind)
    if isinstance(spec, dict):
        if "query" not in spec:
            raise parsing(f"[{kind}] query does not support [{next(iter(spec), '')}]")
        query = spec["query"]
        boost = float(spec.get("boost", 1.0))
        operator = str(spec.get("operator", "or")).lower()
        msm_spec = spec.get("minimum_should_match")
        lenient = bool(spec.get("lenient", False))
        zero_terms = str(spec.get("zero_terms_query", "none")).lower()
    else:
        query, boost, operator, msm_spec, lenient, zero_terms = spec, 1.0, "or", None, False, "none"
    ft = ctx.mapping.field(field)
    if ft is None:
        return MatchNone()
    path = ctx.mapping.resolve_path(field)
    if ft.kind == "text":
        tokens = list(analyze(str(query)))
        if not tokens:
            return MatchAll(boost) if zero_terms == "all" else MatchNone()
        if phrase:
            return Phrase(path, tokens, 0, boost)
        uniq = list(dict.fromkeys(tokens))
        required = len(uniq) if operator == "and" else max(1, _msm(msm_spec, len(uniq)) if msm_spec is not None else 1)
        return TextMatch(path, uniq, required, boost)
    if ft.kind == "other":
        return MatchNone()
    try:
        v = ft.parse_query_value(query)
    except ValueError as exc:
        if lenient:
            return MatchNone()
        raise _shard_error(ctx, str(exc)) from None
    return Terms(path, [v], boost) if v is not None else MatchNone()


def _c_match_phrase(body: dict[str, Any], ctx: Ctx) -> Node:
    return _c_match(body, ctx, phrase=True)


def _c_multi_match(body: dict[str, Any], ctx: Ctx) -> Node:
    fields = body.get("fields") or ["*"]
    query = body.get("query")
    nodes: list[Node] = []
    for f in fields:
        name, _, b = f.partition("^")
        for path in ctx.mapping.match_fields(name) if "*" in name else [name]:
            ft = ctx.mapping.field(path)
            if ft is None or ft.kind in ("other",):
                continue
            spec = {"query": query, "lenient": True, "boost": float(b or 1.0)}
            for k in ("operator", "minimum_should_match"):
                if k in body:
                    spec[k] = body[k]
            nodes.append(_c_match({path: spec}, ctx, phrase=body.get("type") == "phrase"))
    return DisMax(nodes, float(body.get("tie_breaker", 0.0)), _boost(body))


def _clauses(body: dict[str, Any], key: str, ctx: Ctx) -> list[Node]:
    v = body.get(key)
    if v is None:
        return []
    if isinstance(v, dict):
        v = [v]
    return [compile_query(c, ctx) for c in v]


def _c_bool(body: dict[str, Any], ctx: Ctx) -> Node:
    for k in body:
        if k not in (
            "must",
            "filter",
            "should",
            "must_not",
            "minimum_should_match",
            "boost",
            "_name",
            "adjust_pure_negative",
        ):
            raise parsing(f"[bool] query does not support [{k}]")
    must = _clauses(body, "must", ctx)
    filt = _clauses(body, "filter", ctx)
    should = _clauses(body, "should", ctx)
    must_not = _clauses(body, "must_not", ctx)
    if "minimum_should_match" in body and body["minimum_should_match"] is not None:
        msm = min(_msm(body["minimum_should_match"], len(should)), len(should))
    else:
        msm = 1 if should and not must and not filt else 0
    return Bool(must, filt, should, must_not, msm, _boost(body))


def _c_constant_score(body: dict[str, Any], ctx: Ctx) -> Node:
    if "filter" not in body:
        raise parsing("[constant_score] requires a 'filter' element")
    return Constant(compile_query(body["filter"], ctx), _boost(body))


def _c_dis_max(body: dict[str, Any], ctx: Ctx) -> Node:
    return DisMax(
        [compile_query(c, ctx) for c in body.get("queries", [])], float(body.get("tie_breaker", 0.0)), _boost(body)
    )


def _c_nested(body: dict[str, Any], ctx: Ctx) -> Node:
    # nested documents are stored as plain objects: the inner query runs on the whole document
    return compile_query(body.get("query"), ctx)


def _c_boosting(body: dict[str, Any], ctx: Ctx) -> Node:
    return compile_query(body.get("positive"), ctx)


_COMPILERS: dict[str, Callable[[Any, Ctx], Node]] = {
    "match_all": _c_match_all,
    "match_none": _c_match_none,
    "term": _c_term,
    "terms": _c_terms,
    "ids": _c_ids,
    "exists": _c_exists,
    "range": _c_range,
    "prefix": _c_prefix,
    "wildcard": _c_wildcard,
    "regexp": _c_regexp,
    "match": _c_match,
    "match_phrase": _c_match_phrase,
    "multi_match": _c_multi_match,
    "bool": _c_bool,
    "constant_score": _c_constant_score,
    "dis_max": _c_dis_max,
    "nested": _c_nested,
    "boosting": _c_boosting,
}
_UNSUPPORTED = {
    "query_string",
    "simple_query_string",
    "fuzzy",
    "function_score",
    "script",
    "script_score",
    "terms_set",
    "more_like_this",
    "geo_distance",
    "geo_bounding_box",
    "geo_shape",
    "has_child",
    "has_parent",
    "percolate",
    "knn",
    "match_bool_prefix",
    "match_phrase_prefix",
    "combined_fields",
    "intervals",
    "span_term",
    "distance_feature",
    "pinned",
    "rank_feature",
    "wrapper",
    "shape",
    "parent_id",
    "semantic",
    "sparse_vector",
    "text_expansion",
}
