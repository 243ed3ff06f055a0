"""Index mappings: explicit + dynamic mapping and turning a ``_source`` into indexed values.

A parsed document is a flat ``{dotted.path: value}`` dict ("doc values"). A field with several values
holds a ``list``; ``text`` fields hold one tuple of lowercase tokens (``None`` between the values of an
array, as the position gap). Values are normalised per mapped type: keyword -> str, long -> int,
double/float -> float, date -> epoch millis (int), boolean -> bool, ip -> canonical str.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from typing import Any

from . import dates
from .errors import EsError
from .fields import (
    OBJECT_TYPES,
    FieldType,
    _check_conflicts,
    _wild,
    validate_mapping,
)


class Mapping:
    def __init__(self, mappings: dict[str, Any] | None = None, dynamic_strings: str = "keyword") -> None:
        self.root: dict[str, Any] = copy.deepcopy(mappings or {})
        self.root.setdefault("properties", {})
        self.dynamic_strings = dynamic_strings
        self.fields: dict[str, FieldType] = {}
        self.objects: dict[str, dict[str, Any]] = {}
        self.aliases: dict[str, str] = {}
        self.constants: list[FieldType] = []
        self._compile()

    # ------------------------------------------------------------ structure
    def _compile(self) -> None:
        self.fields, self.objects, self.aliases = {}, {}, {}
        self.constants = []
        self._compile_props(self.root.get("properties", {}), "")

    def _compile_props(self, props: dict[str, Any], prefix: str) -> None:
        for name, spec in props.items():
            path = prefix + name
            t = spec.get("type")
            if (t is None and "properties" in spec) or t in OBJECT_TYPES:
                self.objects[path] = spec
                self._compile_props(spec.get("properties", {}), path + ".")
                continue
            if t is None:
                self.objects[path] = spec
                continue
            if t == "alias":
                self.aliases[path] = spec.get("path", "")
                continue
            ft = FieldType(path, spec)
            self.fields[path] = ft
            if ft.type == "constant_keyword":
                self.constants.append(ft)
            for sub, sub_spec in (spec.get("fields") or {}).items():
                sft = FieldType(path + "." + sub, sub_spec)
                ft.subfields.append(sft)
                self.fields[sft.path] = sft

    def field(self, path: str) -> FieldType | None:
        ft = self.fields.get(path)
        if ft is None and path in self.aliases:
            ft = self.fields.get(self.aliases[path])
        return ft

    def resolve_path(self, path: str) -> str:
        return self.aliases.get(path, path)

    def leaves_under(self, path: str) -> list[str]:
        """Mapped leaf fields equal to or below ``path`` (for ``exists`` on objects)."""
        path = self.resolve_path(path)
        if path in self.fields:
            return [path]
        prefix = path + "."
        return [p for p in self.fields if p.startswith(prefix)]

    def match_fields(self, pattern: str) -> list[str]:
        if "*" not in pattern:
            return [pattern] if self.field(pattern) is not None else []
        return [p for p in list(self.fields) + list(self.aliases) if _wild(pattern, p)]

    def to_dict(self) -> dict[str, Any]:
        out = copy.deepcopy(self.root)
        if not out.get("properties"):
            out.pop("properties", None)
        return out

    def merge(self, other: dict[str, Any] | None, check_conflicts: bool = False) -> None:
        """Merge another mapping (template composition; PUT _mapping with check_conflicts)."""
        if not other:
            return
        validate_mapping(other)
        if check_conflicts:
            _check_conflicts(self.root.get("properties", {}), other.get("properties", {}), "")
        for key, val in other.items():
            if key == "properties":
                _merge_props(self.root.setdefault("properties", {}), val)
            elif key == "dynamic_templates":
                self.root[key] = list(self.root.get(key, [])) + [t for t in val if t not in self.root.get(key, [])]
            else:
                self.root[key] = copy.deepcopy(val)
        self._compile()

    def _insert(self, path: str, spec: dict[str, Any]) -> None:
        parts = path.split(".")
        props = self.root.setdefault("properties", {})
        for part in parts[:-1]:
            node = props.setdefault(part, {})
            if "type" not in node and "properties" not in node:
                node["properties"] = {}
            props = node.setdefault("properties", {})
        if parts[-1] in props and "properties" in props[parts[-1]] and "properties" in spec:
            return
        props.setdefault(parts[-1], spec)

    # ------------------------------------------------------------ documents
    def parse_document(self, source: dict[str, Any], doc_id: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        pending: dict[str, dict[str, Any]] = {}
        ctx = _ParseCtx(self, out, pending, doc_id)
        ctx.walk(source, "", self.root.get("dynamic", True))
        if pending:
            for path, spec in pending.items():
                self._insert(path, spec)
            self._compile()
        for ft in self.constants:
            if ft.const is not None and ft.path not in out:
                out[ft.path] = ft.const
        return out


def _merge_props(dst: dict[str, Any], src: dict[str, Any]) -> None:
    for name, spec in src.items():
        if name in dst and "properties" in dst[name] and "properties" in spec:
            merged = {k: copy.deepcopy(v) for k, v in spec.items() if k != "properties"}
            dst[name].update(merged)
            _merge_props(dst[name]["properties"], spec["properties"])
        else:
            dst[name] = copy.deepcopy(spec)


def _preview(value: Any) -> str:
    return str(value) if not isinstance(value, bool) else str(value).lower()


class _ParseCtx:
    __slots__ = ("doc_id", "m", "out", "pending", "pending_fields")

    def __init__(self, mapping: Mapping, out: dict[str, Any], pending: dict[str, dict[str, Any]], doc_id: str | None):
        self.m = mapping
        self.out = out
        self.pending = pending
        self.doc_id = doc_id
        self.pending_fields: dict[str, FieldType] = {}

    def fail(self, path: str, ft: FieldType, value: Any, cause: str) -> EsError:
        return EsError(
            400,
            "document_parsing_exception",
            f"[1:1] failed to parse field [{path}] of type [{ft.type}] in document with id '{self.doc_id}'. "
            f"Preview of field's value: '{_preview(value)}'",
            caused_by=EsError(400, "illegal_argument_exception", cause),
        )

    def walk(self, obj: dict[str, Any], prefix: str, dynamic: Any) -> None:
        fields = self.m.fields
        out = self.out
        for key, value in obj.items():
            if not key or ((key[0] == "." or key[-1] == "." or ".." in key) and "." in key):
                raise EsError(400, "document_parsing_exception", "[1:1] field name cannot be an empty string")
            path = prefix + key
            t = type(value)
            if t is str or t is int or t is float:
                # fast path: an already mapped single field without multi-fields
                ft = fields.get(path)
                if ft is not None and not ft.subfields and ft.kind != "text" and ft.type != "constant_keyword":
                    if ft.kind == "keyword" and t is str and ft.ignore_above is None:
                        v = value
                    else:
                        try:
                            v = ft.normalize(value)
                        except ValueError as exc:
                            if ft.params.get("ignore_malformed"):
                                continue
                            raise self.fail(path, ft, value, str(exc)) from None
                        if v is None:
                            continue
                    path = ft.path  # the mapping's string: shared by all docs instead of one copy each
                    prev = out.get(path, _MISSING)
                    if prev is _MISSING:
                        out[path] = v
                    elif type(prev) is list:
                        prev.append(v)
                    else:
                        out[path] = [prev, v]
                    continue
            self.value(path, value, dynamic)

    def _dynamic_for_new(self, path: str, dynamic: Any) -> Any:
        # a dotted key ("a.b") may cross objects that carry their own `dynamic`
        parts = path.split(".")
        for i in range(len(parts) - 1, 0, -1):
            obj = self.m.objects.get(".".join(parts[:i]))
            if obj is not None and "dynamic" in obj:
                return obj["dynamic"]
        return dynamic

    def _new(self, path: str, dynamic: Any, kind: str, value: Any) -> dict[str, Any] | None:
        dyn = str(self._dynamic_for_new(path, dynamic)).lower()
        if dyn == "strict":
            parent, _, leaf = path.rpartition(".")
            raise EsError(
                400,
                "strict_dynamic_mapping_exception",
                f"[1:1] mapping set to strict, dynamic introduction of [{leaf}] within [{parent or '_doc'}] "
                "is not allowed",
            )
        if dyn == "false":
            return None
        for parent in _parents(path):
            if parent not in self.m.objects and parent not in self.pending:
                if parent in self.m.fields:
                    raise EsError(
                        400,
                        "document_parsing_exception",
                        f"[1:1] Could not dynamically add mapping for field [{path}]. Existing mapping for "
                        f"[{parent}] must be of type object but found [{self.m.fields[parent].type}].",
                    )
                self.pending[parent] = {"properties": {}}
        spec = self._dynamic_template(path, kind, value)
        if spec is None:
            spec = self._default_spec(kind, value)
        self.pending[path] = spec
        return spec

    def _default_spec(self, kind: str, value: Any) -> dict[str, Any]:
        if kind == "object":
            return {"properties": {}}
        if kind == "string":
            if self.m.root.get("date_detection", True) is not False:
                try:
                    if dates.parse_iso(value, require_day=True) is not None:
                        return {"type": "date"}
                except ValueError:
                    pass
            if self.m.root.get("numeric_detection"):
                if re.fullmatch(r"[+-]?\d+", value):
                    return {"type": "long"}
                if re.fullmatch(r"[+-]?\d*\.\d+([eE][+-]?\d+)?", value):
                    return {"type": "float"}
            if self.m.dynamic_strings == "text":
                return {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}
            return {"type": "keyword"}
        return {"type": {"long": "long", "double": "float", "boolean": "boolean"}[kind]}

    def _dynamic_template(self, path: str, kind: str, value: Any) -> dict[str, Any] | None:
        templates = self.m.root.get("dynamic_templates") or []
        if not templates:
            return None
        leaf = path.rsplit(".", 1)[-1]
        detected = self._default_spec(kind, value)
        dyn_type = detected.get("type", "object")
        mtype = {"text": "string", "keyword": "string", "float": "double"}.get(dyn_type, dyn_type)
        for entry in templates:
            ((_name, tpl),) = entry.items()
            mmt = tpl.get("match_mapping_type")
            if mmt is not None and mmt != "*" and mtype not in (mmt if isinstance(mmt, list) else [mmt]):
                continue
            regex = tpl.get("match_pattern") == "regex"

            def ok(pattern: Any, text: str, use_regex: bool = regex) -> bool:
                pats = pattern if isinstance(pattern, list) else [pattern]
                return any(re.fullmatch(p, text) if use_regex else _wild(p, text) for p in pats)

            if "match" in tpl and not ok(tpl["match"], leaf):
                continue
            if "unmatch" in tpl and ok(tpl["unmatch"], leaf):
                continue
            if "path_match" in tpl and not ok(tpl["path_match"], path):
                continue
            if "path_unmatch" in tpl and ok(tpl["path_unmatch"], path):
                continue
            if not any(k in tpl for k in ("match_mapping_type", "match", "unmatch", "path_match", "path_unmatch")):
                continue
            spec = copy.deepcopy(tpl.get("mapping", {}))
            spec = _substitute(spec, leaf, dyn_type)
            if kind == "object":
                if spec.get("type", "object") in OBJECT_TYPES:
                    spec.setdefault("properties", {})
                    return spec
                return spec
            spec.setdefault("type", dyn_type)
            return spec
        return None

    def _lookup(self, path: str) -> FieldType | None:
        ft = self.m.fields.get(path)
        if ft is None:
            ft = self.pending_fields.get(path)
            if ft is None and path in self.pending and "type" in self.pending[path]:
                spec = self.pending[path]
                if spec["type"] not in OBJECT_TYPES:
                    ft = FieldType(path, spec)
                    for sub, sub_spec in (spec.get("fields") or {}).items():
                        ft.subfields.append(FieldType(path + "." + sub, sub_spec))
                    self.pending_fields[path] = ft
        return ft

    def value(self, path: str, value: Any, dynamic: Any) -> None:
        if value is None:
            ft = self._lookup(path)
            if ft is not None and ft.params.get("null_value") is not None:
                self.scalar(path, ft, ft.params["null_value"])
            return
        if isinstance(value, dict):
            ft = self._lookup(path)
            if ft is not None:
                if ft.type == "flattened":
                    for leaf_path, leaf in _flatten(value, ""):
                        self.scalar(path, ft, leaf)
                        self._add(
                            path + "." + leaf_path, str(leaf) if not isinstance(leaf, bool) else str(leaf).lower()
                        )
                    return
                raise EsError(
                    400,
                    "document_parsing_exception",
                    f"[1:1] failed to parse field [{path}] of type [{ft.type}] in document with id "
                    f"'{self.doc_id}'. Preview of field's value: '{value}'",
                    caused_by=EsError(400, "illegal_state_exception", "Can't get text on a START_OBJECT at 1:1"),
                )
            obj = self.m.objects.get(path)
            if obj is None and path not in self.pending:
                if self._new(path, dynamic, "object", value) is None:
                    return
                obj = self.pending[path]
            elif obj is None:
                obj = self.pending[path]
            if obj.get("enabled", True) is False:
                return
            self.walk(value, path + ".", obj.get("dynamic", dynamic))
            return
        if isinstance(value, list):
            for v in value:
                self.value(path, v, dynamic)
            return
        ft = self._lookup(path)
        if ft is None:
            if path in self.m.objects:
                raise EsError(
                    400,
                    "document_parsing_exception",
                    f"[1:1] object mapping for [{path}] tried to parse field [{path}] as object, "
                    f"but found a concrete value",
                )
            if path in self.m.aliases:
                raise EsError(400, "document_parsing_exception", f"[1:1] Cannot write to a field alias [{path}].")
            if isinstance(value, bool):
                kind = "boolean"
            elif isinstance(value, int):
                kind = "long"
            elif isinstance(value, float):
                kind = "double"
            else:
                kind = "string"
            if self._new(path, dynamic, kind, value) is None:
                return
            ft = self._lookup(path)
            if ft is None:
                return
        self.scalar(path, ft, value)

    def scalar(self, path: str, ft: FieldType, value: Any) -> None:
        if ft.kind == "other":
            return
        if ft.type == "constant_keyword":
            if ft.const is None:
                ft.const = str(value)
                ft.params["value"] = ft.const  # params is the spec dict inside the mapping tree
            elif str(value) != ft.const:
                raise EsError(
                    400,
                    "document_parsing_exception",
                    f"[1:1] failed to parse field [{path}] of type [constant_keyword] in document with id "
                    f"'{self.doc_id}'. Preview of field's value: '{value}'",
                    caused_by=EsError(
                        400,
                        "illegal_argument_exception",
                        f"[constant_keyword] field [{path}] only accepts values that are equal "
                        f"to the value defined in the mappings [{ft.const}], but got [{value}]",
                    ),
                )
        try:
            v = ft.normalize(value)
        except ValueError as exc:
            if ft.params.get("ignore_malformed"):
                return
            raise self.fail(path, ft, value, str(exc)) from None
        if path == ft.path:
            path = ft.path
        if v is not None:
            if ft.kind == "text":
                self._add_text(path, v)
            else:
                self._add(path, v)
        for sub in ft.subfields:
            try:
                sv = sub.normalize(value)
            except ValueError as exc:
                if sub.params.get("ignore_malformed"):
                    continue
                raise self.fail(sub.path, sub, value, str(exc)) from None
            if sv is not None:
                if sub.kind == "text":
                    self._add_text(sub.path, sv)
                else:
                    self._add(sub.path, sv)

    def _add(self, path: str, v: Any) -> None:
        out = self.out
        prev = out.get(path, _MISSING)
        if prev is _MISSING:
            out[path] = v
        elif type(prev) is list:
            prev.append(v)
        else:
            out[path] = [prev, v]

    def _add_text(self, path: str, tokens: tuple[str, ...]) -> None:
        prev = self.out.get(path)
        self.out[path] = tokens if prev is None else (*prev, None, *tokens)


_MISSING = object()


def _parents(path: str) -> Iterable[str]:
    parts = path.split(".")
    for i in range(1, len(parts)):
        yield ".".join(parts[:i])


def _flatten(obj: dict[str, Any], prefix: str) -> Iterable[tuple[str, Any]]:
    for k, v in obj.items():
        if isinstance(v, dict):
            yield from _flatten(v, prefix + k + ".")
        elif isinstance(v, list):
            for item in v:
                if isinstance(item, dict):
                    yield from _flatten(item, prefix + k + ".")
                elif item is not None:
                    yield prefix + k, item
        elif v is not None:
            yield prefix + k, v


def _substitute(spec: Any, name: str, dyn_type: str) -> Any:
    if isinstance(spec, dict):
        return {k: _substitute(v, name, dyn_type) for k, v in spec.items()}
    if isinstance(spec, list):
        return [_substitute(v, name, dyn_type) for v in spec]
    if isinstance(spec, str):
        return spec.replace("{name}", name).replace("{dynamic_type}", dyn_type)
    return spec
