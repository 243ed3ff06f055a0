"""JSON helpers: orjson when installed (fast bulk parsing), the standard library otherwise."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

try:  # pragma: no cover - depends on the environment
    import orjson as _orjson
except ImportError:  # pragma: no cover
    _orjson = None


def _default(obj: Any) -> Any:
    if isinstance(obj, (set, tuple)):
        return list(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


if _orjson is not None:
    _OPTS = _orjson.OPT_NON_STR_KEYS

    def loads(data: Any) -> Any:
        return _orjson.loads(data)

    def dumps(obj: Any) -> bytes:
        try:
            return _orjson.dumps(obj, default=_default, option=_OPTS)
        except TypeError:
            # e.g. integers beyond 64 bits
            return json.dumps(obj, default=_default, separators=(",", ":"), ensure_ascii=False).encode()

else:

    def loads(data: Any) -> Any:
        return json.loads(data)

    def dumps(obj: Any) -> bytes:
        return json.dumps(obj, default=_default, separators=(",", ":"), ensure_ascii=False).encode()


JSONDecodeError = json.JSONDecodeError if _orjson is None else (_orjson.JSONDecodeError, json.JSONDecodeError)


INF = float("inf")


def java_double(d: float) -> str:
    """Java's Double.toString, which Elasticsearch uses for double keys ("100.0", "1.0E7")."""
    if d != d:
        return "NaN"
    if d in (INF, -INF):
        return "Infinity" if d > 0 else "-Infinity"
    if d == 0:
        return "-0.0" if str(d).startswith("-") else "0.0"
    a = abs(d)
    if 1e-3 <= a < 1e7:
        s = repr(float(d))
        return s if "." in s else s + ".0"
    sign, digits, exp = Decimal(repr(float(d))).normalize().as_tuple()
    ds = "".join(map(str, digits))
    e10 = len(ds) - 1 + exp  # type: ignore[operator]
    mant = ds[0] + "." + (ds[1:] or "0")
    return ("-" if sign else "") + mant + "E" + str(e10)
