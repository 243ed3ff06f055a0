"""Bucket aggregations: terms, date_histogram, histogram, range, date_range, filter, filters, global,
missing, composite."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from . import dates
from .aggs import Agg, AggContext, Field, _needs_sub_for_order, group, key_as_string, key_of, order_buckets, parsing_agg
from .errors import EsError, bad_request, search_phase
from .jsonutil import java_double


# ---------------------------------------------------------------------- bucket aggregations
class Terms(Agg):
    type_name = "terms"
    params_allowed = (
        "field",
        "size",
        "shard_size",
        "order",
        "min_doc_count",
        "shard_min_doc_count",
        "missing",
        "include",
        "exclude",
        "execution_hint",
        "collect_mode",
        "show_term_doc_count_error",
        "value_type",
        "format",
        "script",
    )

    def setup(self) -> None:
        self.f = self.field()
        self.size = int(self.params.get("size", 10))
        if self.size <= 0:
            raise bad_request(f"[size] must be greater than 0. Found [{self.size}] in [{self.name}]")
        self.min_doc_count = int(self.params.get("min_doc_count", 1))
        inc, exc = self.params.get("include"), self.params.get("exclude")
        if isinstance(inc, dict) or isinstance(exc, dict):
            raise EsError(
                400,
                "illegal_argument_exception",
                "[fake-es] terms include partitions are not supported by FakeElasticsearch",
            )
        self.include = self._filter(inc)
        self.exclude = self._filter(exc)

    @staticmethod
    def _filter(spec: Any) -> Callable[[Any], bool] | None:
        if spec is None:
            return None
        if isinstance(spec, list):
            vals = {str(v) for v in spec}
            return lambda k: str(k) in vals
        rx = re.compile(str(spec))
        return lambda k: rx.fullmatch(str(k)) is not None

    def collect(self, docs: list[Any], actx: AggContext) -> dict[str, Any]:
        f = self.f
        kind = f.kind(docs, actx.views)
        missing = self.params.get("missing")
        if missing is not None and kind is not None:
            ft = f.ft(actx.views)
            try:
                missing = ft.parse_query_value(missing)
            except ValueError:
                raise search_phase(bad_request(f"failed to parse missing value [{missing}]")) from None
        want_docs = bool(self.subs)
        groups = group(docs, f.column(docs), None, want_docs, missing)
        if self.min_doc_count == 0 and kind is not None:
            for d in actx.all_docs():
                for k in f.values(d):
                    groups.setdefault(k, [] if want_docs else 0)
        if self.include or self.exclude:
            groups = {
                k: v
                for k, v in groups.items()
                if (self.include is None or self.include(k)) and (self.exclude is None or not self.exclude(k))
            }
        order = self.params.get("order")
        need_subs = _needs_sub_for_order(order)
        fmt = self.params.get("format")
        buckets = []
        for k, g in groups.items():
            count = len(g) if want_docs else g
            if count < self.min_doc_count:
                continue
            key = key_of(kind, k)
            b: dict[str, Any] = {"key": key}
            kas = key_as_string(kind, key, fmt)
            if kas is not None:
                b["key_as_string"] = kas
            b["doc_count"] = count
            if want_docs:
                b["_docs"] = g
                if need_subs:
                    self.bucket(b, g, actx)
            buckets.append(b)
        buckets = order_buckets(buckets, order, [("_count", "desc")])
        top, rest = buckets[: self.size], buckets[self.size :]
        for b in top:
            g = b.pop("_docs", None)
            if want_docs and not need_subs:
                self.bucket(b, g, actx)
        return {
            "doc_count_error_upper_bound": 0,
            "sum_other_doc_count": sum(b["doc_count"] for b in rest),
            "buckets": top,
        }


class Histo(Agg):
    """Shared by histogram and date_histogram."""

    date = False

    def _round(self) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
        raise NotImplementedError

    def _bound(self, v: Any) -> Any:
        raise NotImplementedError

    def _render_key(self, key: Any, kind: str | None) -> dict[str, Any]:
        raise NotImplementedError

    def collect(self, docs: list[Any], actx: AggContext) -> dict[str, Any]:
        self.now = actx.now
        f = self.f
        kind = f.kind(docs, actx.views)
        rnd, nxt = self._round()
        missing = self.params.get("missing")
        hard = self.params.get("hard_bounds")
        hb_min = self._bound(hard.get("min")) if hard and hard.get("min") is not None else None
        hb_max = self._bound(hard.get("max")) if hard and hard.get("max") is not None else None
        col = f.column(docs)
        if hb_min is not None or hb_max is not None:

            def inb(v: Any) -> bool:
                return (hb_min is None or v >= hb_min) and (hb_max is None or v <= hb_max)

            col = [
                None
                if v is None
                else ([x for x in v if inb(x)] or None)
                if type(v) is list
                else (v if inb(v) else None)
                for v in col
            ]
        want_docs = bool(self.subs)
        groups = group(docs, col, rnd, want_docs, self._bound(missing) if missing is not None else None)
        min_doc_count = int(self.params.get("min_doc_count", 0))
        keys = sorted(groups)
        if min_doc_count == 0:
            ext = self.params.get("extended_bounds")
            lo = keys[0] if keys else None
            hi = keys[-1] if keys else None
            if ext:
                if ext.get("min") is not None:
                    e = rnd(self._bound(ext["min"]))
                    lo = e if lo is None else min(lo, e)
                if ext.get("max") is not None:
                    e = rnd(self._bound(ext["max"]))
                    hi = e if hi is None else max(hi, e)
                if lo is not None and hi is None:
                    hi = lo
                if hi is not None and lo is None:
                    lo = hi
            if hb_min is not None and lo is not None:
                lo = max(lo, rnd(hb_min))
            if hb_max is not None and hi is not None:
                hi = min(hi, rnd(hb_max))
            if lo is not None:
                filled = []
                k = lo
                guard = 0
                while k <= hi:
                    filled.append(k)
                    k = nxt(k)
                    guard += 1
                    if guard > 65536:
                        raise EsError(
                            400,
                            "too_many_buckets_exception",
                            "Trying to create too many buckets. Must be less than or equal to: [65536].",
                            max_buckets=65536,
                        )
                keys = sorted(set(filled) | set(keys))
        buckets = []
        for k in keys:
            g = groups.get(k, [] if want_docs else 0)
            count = len(g) if want_docs else g
            if count < min_doc_count:
                continue
            b = self._render_key(k, kind)
            b["doc_count"] = count
            buckets.append(self.bucket(b, g if want_docs else [], actx))
        order = self.params.get("order")
        if order is not None:
            buckets = order_buckets(buckets, order, [("_key", "asc")])
        if self.params.get("keyed"):
            return {
                "buckets": {(b["key_as_string"] if "key_as_string" in b else java_double(b["key"])): b for b in buckets}
            }
        return {"buckets": buckets}


class DateHistogram(Histo):
    type_name = "date_histogram"
    date = True
    params_allowed = (
        "field",
        "calendar_interval",
        "fixed_interval",
        "format",
        "time_zone",
        "offset",
        "min_doc_count",
        "extended_bounds",
        "hard_bounds",
        "missing",
        "keyed",
        "order",
        "script",
    )

    def setup(self) -> None:
        self.f = self.field(("date", "long", "double"))
        cal, fixed = self.params.get("calendar_interval"), self.params.get("fixed_interval")
        if cal is None and fixed is None:
            raise bad_request("Invalid interval specified, must be non-null and non-empty")
        if cal is not None and fixed is not None:
            raise bad_request("Cannot use [fixed_interval] with [calendar_interval] configuration option.")
        try:
            self.cal = dates.parse_calendar_interval(str(cal)) if cal is not None else None
            self.fixed = dates.parse_fixed_interval(fixed) if fixed is not None else None
            self.tz = dates.resolve_tz(self.params.get("time_zone"))
        except ValueError as e:
            raise bad_request(str(e)) from None
        off = self.params.get("offset", 0)
        self.offset = _parse_offset(off)
        self.fmt = self.params.get("format")

    def _round(self) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
        return dates.make_rounder(self.cal, self.fixed, self.tz, self.offset)

    def _bound(self, v: Any) -> Any:
        try:
            return dates.parse_date_math(v, self.now, False, self.fmt, self.tz)
        except ValueError as e:
            raise search_phase(bad_request(str(e))) from None

    def _render_key(self, key: Any, kind: str | None) -> dict[str, Any]:
        return {"key_as_string": dates.format_date(key, self.fmt, self.tz), "key": key}


def _parse_offset(off: Any) -> int:
    if isinstance(off, (int, float)):
        return int(off)
    s = str(off).strip()
    sign = -1 if s.startswith("-") else 1
    s = s.lstrip("+-")
    try:
        return sign * dates.parse_fixed_interval(s, "date_histogram.offset")
    except ValueError as e:
        raise bad_request(str(e)) from None


class Histogram(Histo):
    type_name = "histogram"
    params_allowed = (
        "field",
        "interval",
        "offset",
        "min_doc_count",
        "extended_bounds",
        "hard_bounds",
        "missing",
        "keyed",
        "order",
        "format",
        "script",
    )

    def setup(self) -> None:
        self.f = self.field(("long", "double", "date", "boolean"))
        if "interval" not in self.params:
            raise bad_request(f"[interval] must be >0 for histogram aggregation [{self.name}]")
        self.interval = float(self.params["interval"])
        if self.interval <= 0:
            raise bad_request(f"[interval] must be >0 for histogram aggregation [{self.name}]")
        self.offset = float(self.params.get("offset", 0))

    def _round(self) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
        iv, off = self.interval, self.offset
        import math

        return (lambda v: math.floor((float(v) - off) / iv) * iv + off), (lambda k: k + iv)

    def _bound(self, v: Any) -> Any:
        return float(v)

    def _render_key(self, key: Any, kind: str | None) -> dict[str, Any]:
        return {"key": float(key)}


class Range(Agg):
    type_name = "range"
    params_allowed = ("field", "ranges", "keyed", "format", "missing", "script")

    def setup(self) -> None:
        self.f = self.field(("long", "double", "date", "boolean"))
        self.ranges = self.params.get("ranges")
        if not self.ranges:
            raise bad_request(f"No [ranges] specified for the [{self.name}] aggregation")

    def _parse(self, v: Any, kind: str | None, actx: AggContext) -> float | None:
        if v is None:
            return None
        if kind == "date" and not isinstance(v, (int, float)):
            try:
                return float(dates.parse_date_math(v, actx.now, False, self.params.get("format")))
            except ValueError as e:
                raise search_phase(bad_request(str(e))) from None
        return float(v)

    def collect(self, docs: list[Any], actx: AggContext) -> dict[str, Any]:
        kind = self.f.kind(docs, actx.views)
        is_date = kind == "date" or self.type_name == "date_range"
        fmt = self.params.get("format")
        rs = []
        for r in self.ranges:
            lo, hi = (
                self._parse(r.get("from"), "date" if is_date else kind, actx),
                self._parse(r.get("to"), "date" if is_date else kind, actx),
            )
            rs.append((lo, hi, r.get("key")))
        rs.sort(key=lambda t: (-INF if t[0] is None else t[0], INF if t[1] is None else t[1]))
        buckets = []
        missing = self.params.get("missing")
        for lo, hi, key in rs:
            in_range = [
                d
                for d in docs
                if any(
                    (lo is None or v >= lo) and (hi is None or v < hi)
                    for v in (self.f.values(d) or ((missing,) if missing is not None else ()))
                )
            ]
            if is_date:
                fs = dates.format_date(int(lo), fmt) if lo is not None else None
                ts = dates.format_date(int(hi), fmt) if hi is not None else None
                k = key if key is not None else f"{fs or '*'}-{ts or '*'}"
            else:
                k = (
                    key
                    if key is not None
                    else f"{java_double(lo) if lo is not None else '*'}-{java_double(hi) if hi is not None else '*'}"
                )
            b: dict[str, Any] = {"key": k}
            if lo is not None:
                b["from"] = lo
                if is_date:
                    b["from_as_string"] = fs
            if hi is not None:
                b["to"] = hi
                if is_date:
                    b["to_as_string"] = ts
            b["doc_count"] = len(in_range)
            buckets.append(self.bucket(b, in_range, actx))
        if self.params.get("keyed"):
            out = {}
            for b in buckets:
                k = b.pop("key")
                out[k] = b
            return {"buckets": out}
        return {"buckets": buckets}


INF = float("inf")


class DateRange(Range):
    type_name = "date_range"
    params_allowed = ("field", "ranges", "keyed", "format", "missing", "time_zone", "script")


class Filter(Agg):
    type_name = "filter"

    def collect(self, docs: list[Any], actx: AggContext) -> dict[str, Any]:
        q = self.params
        kept = [d for d in docs if actx.node(q, d.idx).test(d)]
        return self.bucket({"doc_count": len(kept)}, kept, actx)


class Filters(Agg):
    type_name = "filters"
    params_allowed = ("filters", "other_bucket", "other_bucket_key", "keyed")

    def collect(self, docs: list[Any], actx: AggContext) -> dict[str, Any]:
        filters = self.params.get("filters")
        if filters is None:
            raise parsing_agg("[filters] cannot be null.")
        keyed = isinstance(filters, dict)
        items = sorted(filters.items()) if keyed else list(enumerate(filters))
        other = bool(self.params.get("other_bucket")) or "other_bucket_key" in self.params
        other_key = self.params.get("other_bucket_key", "_other_")
        matched_any = set()
        buckets = []
        for key, q in items:
            kept = [d for d in docs if actx.node(q, d.idx).test(d)]
            matched_any.update(id(d) for d in kept)
            b = self.bucket({"doc_count": len(kept)}, kept, actx)
            buckets.append((key, b))
        if other:
            rest = [d for d in docs if id(d) not in matched_any]
            buckets.append((other_key, self.bucket({"doc_count": len(rest)}, rest, actx)))
        if keyed and self.params.get("keyed", True):
            return {"buckets": {k: b for k, b in buckets}}
        if keyed:
            return {"buckets": [dict({"key": k}, **b) for k, b in buckets]}
        return {"buckets": [b for _, b in buckets]}


class Global(Agg):
    type_name = "global"

    def collect(self, docs: list[Any], actx: AggContext) -> dict[str, Any]:
        all_docs = actx.all_docs()
        return self.bucket({"doc_count": len(all_docs)}, all_docs, actx)


class Missing(Agg):
    type_name = "missing"
    params_allowed = ("field",)

    def setup(self) -> None:
        self.f = self.field()

    def collect(self, docs: list[Any], actx: AggContext) -> dict[str, Any]:
        kept = [d for d in docs if not self.f.values(d)]
        return self.bucket({"doc_count": len(kept)}, kept, actx)


class _CompositeSource:
    """One `sources` entry of a composite aggregation: how to turn doc values into key parts."""

    def __init__(self, name: str, kind: str, opts: dict[str, Any]):
        if kind not in ("terms", "date_histogram", "histogram"):
            raise EsError(
                400,
                "illegal_argument_exception",
                f"[fake-es] composite source [{kind}] is not supported by FakeElasticsearch",
            )
        self.name, self.kind, self.opts = name, kind, opts
        allow = (
            ("keyword", "long", "double", "date", "boolean", "ip") if kind == "terms" else ("long", "double", "date")
        )
        self.field = Field(opts["field"], "composite", name, allow)
        self.desc = str(opts.get("order", "asc")).lower() == "desc"
        self.missing_bucket = bool(opts.get("missing_bucket"))
        missing_order = opts.get("missing_order", "default")
        self.missing_first = missing_order == "first" or (missing_order == "default" and not self.desc)
        self.fmt = opts.get("format")
        self.tz = dates.resolve_tz(opts.get("time_zone"))
        self.rnd: Callable[[Any], Any] | None = None
        if kind == "date_histogram":
            cal, fixed = opts.get("calendar_interval"), opts.get("fixed_interval")
            try:
                self.rnd, _ = dates.make_rounder(
                    dates.parse_calendar_interval(cal) if cal else None,
                    dates.parse_fixed_interval(fixed) if fixed else None,
                    self.tz,
                    _parse_offset(opts.get("offset", 0)),
                )
            except ValueError as e:
                raise bad_request(str(e)) from None
        elif kind == "histogram":
            self.interval = float(opts["interval"])

    def convert(self, v: Any, field_kind: str | None) -> Any:
        if self.rnd is not None:
            return self.rnd(v)
        if self.kind == "histogram":
            return math.floor(float(v) / self.interval) * self.interval
        return key_of(field_kind, v)

    def render(self, k: Any) -> Any:
        if k is None:
            return None
        if self.kind == "date_histogram" and self.fmt:
            return dates.format_date(k, self.fmt, self.tz)
        return float(k) if self.kind == "histogram" else k

    def sort_key(self, k: Any) -> tuple[int, Any]:
        if k is None:
            return (0 if self.missing_first else 2, 0)
        return (1, k)

    def parse_after(self, v: Any, field_kind: str | None) -> Any:
        if v is not None and isinstance(v, str) and field_kind == "date":
            return dates.parse_date(v, self.fmt, self.tz)
        return v


class Composite(Agg):
    type_name = "composite"
    params_allowed = ("sources", "size", "after")

    def setup(self) -> None:
        self.size = int(self.params.get("size", 10))
        self.sources = []
        for src in self.params.get("sources") or []:
            ((name, spec),) = src.items()
            ((kind, opts),) = spec.items()
            self.sources.append(_CompositeSource(name, kind, opts))
        if not self.sources:
            raise bad_request("Composite [sources] cannot be null or empty")

    def collect(self, docs: list[Any], actx: AggContext) -> dict[str, Any]:
        srcs = self.sources
        kinds = [src.field.kind(docs, actx.views) for src in srcs]
        groups: dict[tuple[Any, ...], list[Any]] = {}
        for d in docs:
            combos: list[tuple[Any, ...]] = [()]
            for src, fk in zip(srcs, kinds, strict=True):
                vals = {src.convert(v, fk) for v in src.field.values(d)}
                if not vals:
                    if not src.missing_bucket:
                        combos = []
                        break
                    vals = {None}
                combos = [(*c, v) for c in combos for v in vals]
            for c in combos:
                groups.setdefault(c, []).append(d)
        keys = list(groups)
        for i in range(len(srcs) - 1, -1, -1):
            src = srcs[i]
            keys.sort(key=lambda c, i=i, src=src: src.sort_key(c[i]), reverse=src.desc)
        after = self.params.get("after")
        if after:
            akey = [src.parse_after(after.get(src.name), fk) for src, fk in zip(srcs, kinds, strict=True)]

            def is_after(c: tuple[Any, ...]) -> bool:
                for i, src in enumerate(srcs):
                    a, b = src.sort_key(c[i]), src.sort_key(akey[i])
                    if a != b:
                        return (a > b) != src.desc
                return False

            keys = [k for k in keys if is_after(k)]
        buckets = []
        for k in keys[: self.size]:
            key = {src.name: src.render(v) for src, v in zip(srcs, k, strict=True)}
            buckets.append(self.bucket({"key": key, "doc_count": len(groups[k])}, groups[k], actx))
        out: dict[str, Any] = {}
        if buckets:
            out["after_key"] = dict(buckets[-1]["key"])
        out["buckets"] = buckets
        return out


BUCKETS = {
    "terms": Terms,
    "date_histogram": DateHistogram,
    "histogram": Histogram,
    "range": Range,
    "date_range": DateRange,
    "filter": Filter,
    "filters": Filters,
    "global": Global,
    "missing": Missing,
    "composite": Composite,
}
