"""Field types: normalising JSON values into indexed values per mapped type, the small analyzer used
for text fields, and the mapping validation Elasticsearch performs."""

from __future__ import annotations

import fnmatch
import ipaddress
import math
import re
import struct
from functools import lru_cache
from typing import Any

from . import dates
from .errors import EsError

TEXT_TYPES = {"text", "match_only_text"}
KEYWORD_TYPES = {"keyword", "constant_keyword", "wildcard", "version"}
INT_RANGES = {
    "long": (-(2**63), 2**63 - 1),
    "integer": (-(2**31), 2**31 - 1),
    "short": (-(2**15), 2**15 - 1),
    "byte": (-128, 127),
    "unsigned_long": (0, 2**64 - 1),
}
FLOAT_TYPES = {"double", "float", "half_float", "scaled_float"}
DATE_TYPES = {"date", "date_nanos"}
OBJECT_TYPES = {"object", "nested"}
_WORD = re.compile(r"\w+(?:['.’]\w+)*")


def analyze(text: str) -> tuple[str, ...]:
    """A small stand-in for the standard analyzer: unicode words, lowercased."""
    return tuple(_WORD.findall(text.lower()))


def kind_of(type_: str) -> str:
    if type_ in KEYWORD_TYPES:
        return "keyword"
    if type_ in TEXT_TYPES:
        return "text"
    if type_ in INT_RANGES:
        return "long"
    if type_ in FLOAT_TYPES:
        return "double"
    if type_ in DATE_TYPES:
        return "date"
    if type_ in ("boolean", "ip", "flattened"):
        return "keyword" if type_ == "flattened" else type_
    return "other"


class FieldType:
    __slots__ = ("coerce", "const", "fmt", "ignore_above", "kind", "params", "path", "subfields", "type")

    def __init__(self, path: str, spec: dict[str, Any]) -> None:
        self.path = path
        self.type = spec.get("type", "object")
        self.kind = kind_of(self.type)
        self.params = spec
        self.fmt = spec.get("format") if self.kind == "date" else None
        self.ignore_above = spec.get("ignore_above")
        self.coerce = spec.get("coerce", True)
        self.const = spec.get("value") if self.type == "constant_keyword" else None
        self.subfields: list[FieldType] = []

    @property
    def aggregatable(self) -> bool:
        return self.kind != "text" or bool(self.params.get("fielddata"))

    def normalize(self, value: Any) -> Any:
        """Indexed representation of one JSON scalar; None when not indexed; raises ValueError."""
        kind = self.kind
        if kind == "keyword":
            if isinstance(value, str):
                s = value
            elif isinstance(value, bool):
                s = "true" if value else "false"
            elif isinstance(value, (int, float)):
                s = str(value)
            else:
                raise ValueError(f"unexpected value {value!r}")
            if self.ignore_above is not None and len(s) > self.ignore_above:
                return None
            return s
        if kind == "date":
            if isinstance(value, bool):
                raise ValueError(f"failed to parse date field [{value}]")
            return dates.parse_date(value, self.fmt)
        if kind == "long":
            return self._to_int(value)
        if kind == "double":
            return self._to_float(value)
        if kind == "text":
            if isinstance(value, bool):
                value = "true" if value else "false"
            return analyze(str(value))
        if kind == "boolean":
            if value is True or value == "true":
                return True
            if value is False or value == "false" or value == "":
                return False
            raise ValueError(f"Failed to parse value [{value}] as only [true] or [false] are allowed.")
        if kind == "ip":
            return _normalize_ip(str(value))
        return None

    def _to_int(self, value: Any) -> int:
        if isinstance(value, bool):
            raise ValueError(
                f"Current token (VALUE_{str(value).upper()}) not numeric, can not use numeric value accessors"
            )
        if isinstance(value, int):
            v = value
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError(f"[{self.type}] supports only finite values, but got [{value}]")
            if not self.coerce and value != int(value):
                raise ValueError(f"Value [{value}] has a decimal part")
            v = int(value)
        elif isinstance(value, str) and self.coerce:
            try:
                v = int(value) if re.fullmatch(r"[+-]?\d+", value.strip()) else int(float(value))
            except (ValueError, OverflowError):
                raise ValueError(f'For input string: "{value}"') from None
        else:
            raise ValueError(f'For input string: "{value}"')
        lo, hi = INT_RANGES[self.type]
        if not lo <= v <= hi:
            raise ValueError(
                f"Value [{value}] is out of range for {'an' if self.type == 'integer' else 'a'} {self.type}"
            )
        return v

    def _to_float(self, value: Any) -> float:
        if isinstance(value, bool) or (isinstance(value, str) and not self.coerce):
            raise ValueError(f'For input string: "{value}"')
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise ValueError(f'For input string: "{value}"') from None
        if not math.isfinite(v):
            raise ValueError(f"[{self.type}] supports only finite values, but got [{value}]")
        if self.type == "float":
            v = struct.unpack("f", struct.pack("f", v))[0]
        elif self.type == "half_float":
            v = struct.unpack("e", struct.pack("e", v))[0]
        elif self.type == "scaled_float":
            factor = float(self.params.get("scaling_factor", 1))
            v = round(v * factor) / factor
        return v

    def parse_query_value(self, value: Any) -> Any:
        """Normalise a value given in a query (term, range bound, ...)."""
        if self.kind == "text":
            return str(value)
        if self.kind == "keyword" and isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        return self.normalize(value)


@lru_cache(maxsize=65536)
def _normalize_ip(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ValueError(f"'{text}' is not an IP string literal.") from None


def _wild(pattern: str, text: str) -> bool:
    return fnmatch.fnmatchcase(text, pattern)


ROOT_KEYS = {
    "properties",
    "dynamic",
    "dynamic_templates",
    "_source",
    "_meta",
    "date_detection",
    "numeric_detection",
    "dynamic_date_formats",
    "_routing",
    "runtime",
    "_data_stream_timestamp",
    "enabled",
    "subobjects",
    "_field_names",
    "_size",
}
KNOWN_TYPES = (
    TEXT_TYPES
    | KEYWORD_TYPES
    | set(INT_RANGES)
    | FLOAT_TYPES
    | DATE_TYPES
    | OBJECT_TYPES
    | {
        "boolean",
        "ip",
        "flattened",
        "alias",
        "geo_point",
        "geo_shape",
        "binary",
        "dense_vector",
        "sparse_vector",
        "search_as_you_type",
        "completion",
        "token_count",
        "integer_range",
        "float_range",
        "long_range",
        "double_range",
        "date_range",
        "ip_range",
        "histogram",
        "aggregate_metric_double",
        "point",
        "shape",
        "rank_feature",
        "rank_features",
        "percolator",
        "semantic_text",
        "counted_keyword",
        "passthrough",
    }
)


def _mapper_error(reason: str) -> EsError:
    return EsError(400, "mapper_parsing_exception", reason)


def validate_mapping(m: dict[str, Any]) -> None:
    """The checks ES makes when a mapping is created: root parameters and field types."""
    bad = [k for k in m if k not in ROOT_KEYS]
    if bad:
        k = bad[0]
        raise _mapper_error(f"Root mapping definition has unsupported parameters:  [{k} : {m[k]}]")

    def walk(props: Any, prefix: str) -> None:
        if not isinstance(props, dict):
            raise _mapper_error(f"Expected map for property [fields] on field [{prefix.rstrip('.')}]")
        for name, spec in props.items():
            if not isinstance(spec, dict):
                raise _mapper_error(
                    f"Expected map for property [fields] on field [{prefix}{name}] but got a class java.lang.String"
                )
            t = spec.get("type")
            if t is not None and t not in KNOWN_TYPES:
                raise _mapper_error(f"No handler for type [{t}] declared on field [{name}]")
            if t == "date" and spec.get("format"):
                pass
            if "properties" in spec:
                if t is not None and t not in OBJECT_TYPES:
                    raise _mapper_error(
                        f"Mapping definition for [{name}] has unsupported parameters:  "
                        f"[properties : {spec['properties']}]"
                    )
                walk(spec["properties"], prefix + name + ".")
            if "fields" in spec:
                walk(spec["fields"], prefix + name + ".")

    walk(m.get("properties", {}), "")


def _check_conflicts(old: dict[str, Any], new: dict[str, Any], prefix: str) -> None:
    for name, spec in new.items():
        cur = old.get(name)
        if cur is None:
            continue
        t_old, t_new = cur.get("type", "object"), spec.get("type", "object")
        if t_old != t_new:
            raise EsError(
                400,
                "illegal_argument_exception",
                f"mapper [{prefix}{name}] cannot be changed from type [{t_old}] to [{t_new}]",
            )
        if "properties" in spec and "properties" in cur:
            _check_conflicts(cur["properties"], spec["properties"], prefix + name + ".")


def values_of(v: Any) -> tuple[Any, ...] | list[Any]:
    """All indexed values of a doc-values entry (scalar or list)."""
    if v is None:
        return ()
    if type(v) is list:
        return v
    return (v,)
