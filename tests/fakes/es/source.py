"""`_source` filtering (includes/excludes with wildcards, like ES's automaton-based filter) and the
`fields` option of search hits."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from . import dates
from .jsonutil import loads


# ------------------------------------------------------------------ _source filtering
def _compile_patterns(pats: Sequence[str]) -> list[re.Pattern[str]]:
    out = []
    for p in pats:
        # like ES, a pattern matching an object also matches dotted names below it ("a" matches "a.b")
        out.append(re.compile(".*".join(re.escape(x) for x in p.split("*")) + r"(?:\..*)?\Z", re.S))
    return out


def _prefix_ok(path: str, pats: list[str]) -> bool:
    """Could something below ``path`` match one of the include patterns?"""
    for p in pats:
        head = p.split("*", 1)[0]
        if head.startswith(path + ".") or ((path + ".").startswith(head) and "*" in p):
            return True
    return False


def filter_source(src: Any, includes: Sequence[str], excludes: Sequence[str]) -> Any:
    if not includes and not excludes:
        return src
    inc = _compile_patterns(includes)
    exc = _compile_patterns(excludes)

    def walk(obj: dict[str, Any], prefix: str, included: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in obj.items():
            path = prefix + k
            if exc and any(r.match(path) for r in exc):
                continue
            here = included or not inc or any(r.match(path) for r in inc)
            if isinstance(v, dict):
                if here or _prefix_ok(path, list(includes)):
                    sub = walk(v, path + ".", here)
                    if sub or (here and not v):
                        out[k] = sub
            elif isinstance(v, list) and any(isinstance(x, dict) for x in v):
                if here or _prefix_ok(path, list(includes)):
                    items = []
                    for x in v:
                        if isinstance(x, dict):
                            sub = walk(x, path + ".", here)
                            if sub:
                                items.append(sub)
                        elif here:
                            items.append(x)
                    if items or here:
                        out[k] = items
            elif here:
                out[k] = v
        return out

    return walk(src, "", False)


def source_spec(body_source: Any, params: dict[str, str]) -> tuple[bool, list[str], list[str]]:
    """-> (fetch, includes, excludes) from body `_source` and `_source*` URL params."""
    fetch, inc, exc = True, [], []
    spec = body_source
    if "_source" in params:
        p = params["_source"]
        if p in ("false", "true"):
            spec = p == "true"
        else:
            spec = p.split(",")
    if spec is False:
        fetch = False
    elif isinstance(spec, str):
        inc = [spec]
    elif isinstance(spec, list):
        inc = list(spec)
    elif isinstance(spec, dict):
        i = spec.get("includes", spec.get("include", []))
        e = spec.get("excludes", spec.get("exclude", []))
        inc = [i] if isinstance(i, str) else list(i)
        exc = [e] if isinstance(e, str) else list(e)
    if params.get("_source_includes"):
        inc = params["_source_includes"].split(",")
        fetch = True
    if params.get("_source_excludes"):
        exc = params["_source_excludes"].split(",")
        fetch = True
    return fetch, inc, exc


def fetch_fields(doc: Any, requested: list[Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    mapping = doc.idx.mapping
    src = None
    for item in requested:
        name = item if isinstance(item, str) else item.get("field")
        fmt = None if isinstance(item, str) else item.get("format")
        for path in mapping.match_fields(name):
            ft = mapping.field(path)
            if ft is None:
                continue
            if ft.kind == "text":
                if src is None:
                    src = loads(doc.source)
                vals = _source_values(src, path)
                if vals:
                    out[path] = [str(v) for v in vals]
                continue
            v = doc.fields.get(mapping.resolve_path(path))
            if v is None:
                continue
            vals = v if type(v) is list else [v]
            if ft.kind == "date":
                vals = [dates.format_date(x, fmt or ft.fmt) for x in vals]
            out[path] = list(vals)
    return out


def _source_values(src: Any, path: str) -> list[Any]:
    parts = path.split(".")
    cur = [src]
    for i, p in enumerate(parts):
        nxt = []
        for c in cur:
            if isinstance(c, dict):
                if p in c:
                    nxt.append(c[p])
                rest = ".".join(parts[i:])
                if i < len(parts) - 1 and rest in c:
                    return [c[rest]] if not isinstance(c[rest], list) else list(c[rest])
            elif isinstance(c, list):
                nxt.extend(x.get(p) for x in c if isinstance(x, dict) and p in x)
        cur = []
        for x in nxt:
            cur.extend(x if isinstance(x, list) else [x])
    return [x for x in cur if x is not None]
