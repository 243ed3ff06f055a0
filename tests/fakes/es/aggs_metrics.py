"""Metric aggregations: value_count, cardinality, sum, avg, min, max, stats, extended_stats,
percentiles (exact, linearly interpolated like ES's t-digest on small samples) and top_hits."""

from __future__ import annotations

import math
from typing import Any

from . import dates
from .aggs import Agg, AggContext
from .errors import bad_request, search_phase
from .jsonutil import java_double
from .search import render_hit
from .sorting import SortSpec, order_docs, parse_sort, resolve_sort
from .source import source_spec

NUMERIC = ("long", "double", "date", "boolean")


class Metric(Agg):
    is_metric = True
    allow: tuple = NUMERIC
    params_allowed = ("field", "missing", "format", "script", "value_type")

    def setup(self) -> None:
        self.f = self.field(self.allow)

    def numbers(self, docs: list[Any], actx: AggContext) -> tuple:
        f = self.f
        kind = f.kind(docs, actx.views)
        missing = self.params.get("missing")
        if missing is not None and kind == "date" and isinstance(missing, str):
            missing = dates.parse_date(missing)
        out: list[float] = []
        for d in docs:
            vals = f.values(d)
            if not vals:
                if missing is not None:
                    out.append(float(missing))
                continue
            for v in vals:
                out.append(float(v))
        return out, kind

    def with_string(self, out: dict[str, Any], key: str, value: float | None, kind: str | None) -> None:
        if kind == "date" and value is not None:
            out[key + "_as_string"] = dates.format_date(int(value), self.params.get("format"))


class ValueCount(Metric):
    type_name = "value_count"
    allow = ()

    def collect(self, docs: list[Any], actx: AggContext) -> dict[str, Any]:
        kind = self.f.kind(docs, actx.views)
        n = 0
        for d in docs:
            vals = self.f.values(d)
            n += len(set(vals)) if kind == "keyword" and len(vals) > 1 else len(vals)
        return {"value": n}


class Cardinality(Metric):
    type_name = "cardinality"
    allow = ()
    params_allowed = ("field", "missing", "precision_threshold", "execution_hint", "rehash", "script")

    def collect(self, docs: list[Any], actx: AggContext) -> dict[str, Any]:
        seen = set()
        missing = self.params.get("missing")
        for d in docs:
            vals = self.f.values(d)
            if not vals and missing is not None:
                seen.add(missing)
            seen.update(vals)
        return {"value": len(seen)}


class Sum(Metric):
    type_name = "sum"

    def collect(self, docs: list[Any], actx: AggContext) -> dict[str, Any]:
        vals, kind = self.numbers(docs, actx)
        out: dict[str, Any] = {"value": float(math.fsum(vals))}
        self.with_string(out, "value", out["value"] if vals else None, kind)
        return out


class Avg(Metric):
    type_name = "avg"

    def collect(self, docs: list[Any], actx: AggContext) -> dict[str, Any]:
        vals, kind = self.numbers(docs, actx)
        v = math.fsum(vals) / len(vals) if vals else None
        out: dict[str, Any] = {"value": v}
        self.with_string(out, "value", v, kind)
        return out


class Min(Metric):
    type_name = "min"

    def collect(self, docs: list[Any], actx: AggContext) -> dict[str, Any]:
        vals, kind = self.numbers(docs, actx)
        v = float(min(vals)) if vals else None
        out: dict[str, Any] = {"value": v}
        self.with_string(out, "value", v, kind)
        return out


class Max(Metric):
    type_name = "max"

    def collect(self, docs: list[Any], actx: AggContext) -> dict[str, Any]:
        vals, kind = self.numbers(docs, actx)
        v = float(max(vals)) if vals else None
        out: dict[str, Any] = {"value": v}
        self.with_string(out, "value", v, kind)
        return out


class Stats(Metric):
    type_name = "stats"

    def collect(self, docs: list[Any], actx: AggContext) -> dict[str, Any]:
        vals, kind = self.numbers(docs, actx)
        if not vals:
            return {"count": 0, "min": None, "max": None, "avg": None, "sum": 0.0}
        s = math.fsum(vals)
        out: dict[str, Any] = {
            "count": len(vals),
            "min": float(min(vals)),
            "max": float(max(vals)),
            "avg": s / len(vals),
            "sum": float(s),
        }
        for k in ("min", "max", "avg", "sum"):
            self.with_string(out, k, out[k], kind)
        return out


class ExtendedStats(Metric):
    type_name = "extended_stats"
    params_allowed = (*Metric.params_allowed, "sigma")

    def collect(self, docs: list[Any], actx: AggContext) -> dict[str, Any]:
        vals, _kind = self.numbers(docs, actx)
        sigma = float(self.params.get("sigma", 2.0))
        n = len(vals)
        if not n:
            nulls = {
                "upper": None,
                "lower": None,
                "upper_population": None,
                "lower_population": None,
                "upper_sampling": None,
                "lower_sampling": None,
            }
            return {
                "count": 0,
                "min": None,
                "max": None,
                "avg": None,
                "sum": 0.0,
                "sum_of_squares": None,
                "variance": None,
                "variance_population": None,
                "variance_sampling": None,
                "std_deviation": None,
                "std_deviation_population": None,
                "std_deviation_sampling": None,
                "std_deviation_bounds": nulls,
            }
        s = math.fsum(vals)
        sq = math.fsum(v * v for v in vals)
        avg = s / n
        var = max(0.0, sq / n - avg * avg)
        var_s = max(0.0, (sq - s * s / n) / (n - 1)) if n > 1 else float("nan")
        sd, sd_s = math.sqrt(var), (math.sqrt(var_s) if n > 1 else float("nan"))
        return {
            "count": n,
            "min": float(min(vals)),
            "max": float(max(vals)),
            "avg": avg,
            "sum": s,
            "sum_of_squares": sq,
            "variance": var,
            "variance_population": var,
            "variance_sampling": var_s if n > 1 else "NaN",
            "std_deviation": sd,
            "std_deviation_population": sd,
            "std_deviation_sampling": sd_s if n > 1 else "NaN",
            "std_deviation_bounds": {
                "upper": avg + sigma * sd,
                "lower": avg - sigma * sd,
                "upper_population": avg + sigma * sd,
                "lower_population": avg - sigma * sd,
                "upper_sampling": avg + sigma * sd_s if n > 1 else "NaN",
                "lower_sampling": avg - sigma * sd_s if n > 1 else "NaN",
            },
        }


def quantile(sorted_vals: list[float], q: float) -> float:
    """Elasticsearch's exact digest (SortingDigest/Dist.quantile): linear interpolation on index q*(n-1)."""
    n = len(sorted_vals)
    index = q * (n - 1)
    if index <= 0:
        return sorted_vals[0]
    if index >= n - 1:
        return sorted_vals[-1]
    lo = math.floor(index)
    w = index - lo
    return sorted_vals[lo] + w * (sorted_vals[lo + 1] - sorted_vals[lo])


class Percentiles(Metric):
    type_name = "percentiles"
    params_allowed = (*Metric.params_allowed, "percents", "keyed", "tdigest", "hdr", "compression")

    def collect(self, docs: list[Any], actx: AggContext) -> dict[str, Any]:
        vals, kind = self.numbers(docs, actx)
        vals.sort()
        percents = self.params.get("percents", [1.0, 5.0, 25.0, 50.0, 75.0, 95.0, 99.0])
        for p in percents:
            if not 0 <= float(p) <= 100:
                raise search_phase(bad_request(f"percent must be in [0,100], got [{p}]"))
        keyed = self.params.get("keyed", True)
        results = []
        for p in percents:
            v = quantile(vals, float(p) / 100.0) if vals else None
            results.append((float(p), v))
        if keyed:
            out: dict[str, Any] = {}
            for p, v in results:
                out[java_double(p)] = v
                if kind == "date" and v is not None:
                    out[java_double(p) + "_as_string"] = dates.format_date(int(v), self.params.get("format"))
            return {"values": out}
        lst = []
        for p, v in results:
            item: dict[str, Any] = {"key": p, "value": v}
            if kind == "date" and v is not None:
                item["value_as_string"] = dates.format_date(int(v), self.params.get("format"))
            lst.append(item)
        return {"values": lst}


class TopHits(Agg):
    type_name = "top_hits"
    is_metric = True
    params_allowed = (
        "size",
        "from",
        "sort",
        "_source",
        "version",
        "seq_no_primary_term",
        "track_scores",
        "explain",
        "stored_fields",
        "docvalue_fields",
        "fields",
    )

    def setup(self) -> None:
        self.size = int(self.params.get("size", 3))
        self.from_ = int(self.params.get("from", 0))
        if self.size + self.from_ > 100:
            raise bad_request(
                f"Top hits result window is too large, the top hits aggregator [{self.name}]'s from + size must be "
                f"less than or equal to: [100] but was [{self.size + self.from_}]. This limit can be set by changing "
                f"the [index.max_inner_result_window] index level setting."
            )
        self.sort = parse_sort(self.params.get("sort"))
        self.fetch, self.inc, self.exc = source_spec(self.params.get("_source"), {})

    def collect(self, docs: list[Any], actx: AggContext) -> dict[str, Any]:
        specs = list(self.sort)
        resolve_sort(specs, actx.views, actx.id_fielddata, False)
        eff = specs or [SortSpec("_score", "desc", None, None, None, None)]
        if not specs:
            eff[0].kind = "score"
        scores = [actx.score_of(d) for d in docs]
        ordered = order_docs(docs, scores, eff, self.from_ + self.size, None, actx.views)[self.from_ :]
        if not specs:
            for h in ordered:
                h.raw = []
        with_score = not specs or any(s.kind == "score" for s in specs) or bool(self.params.get("track_scores"))
        opts = {
            "version": self.params.get("version"),
            "seq_no_primary_term": self.params.get("seq_no_primary_term"),
            "fields": list(self.params.get("fields") or []) + list(self.params.get("docvalue_fields") or []),
        }
        rendered = [render_hit(h, specs, self.fetch, self.inc, self.exc, with_score, opts) for h in ordered]
        max_score = max(scores, default=None) if with_score else None
        return {"hits": {"total": {"value": len(docs), "relation": "eq"}, "max_score": max_score, "hits": rendered}}


METRICS = {
    "value_count": ValueCount,
    "cardinality": Cardinality,
    "sum": Sum,
    "avg": Avg,
    "min": Min,
    "max": Max,
    "stats": Stats,
    "extended_stats": ExtendedStats,
    "percentiles": Percentiles,
    "top_hits": TopHits,
}
