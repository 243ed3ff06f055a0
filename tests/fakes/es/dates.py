"""Dates the way Elasticsearch's ``date`` field sees them: epoch milliseconds (UTC instants).

Parsing supports ``strict_date_optional_time`` (RFC 3339 / ISO 8601), ``epoch_millis``,
``epoch_second``, a few named formats and simple Java patterns (``yyyy-MM-dd HH:mm:ss``);
``||``-separated alternatives; date math (``now-1h/d``, ``2024-01-01||+1M``); time zones
(``Z``, ``+01:00``, IANA names).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

UTC = UTC
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORD = date(1970, 1, 1).toordinal()
DEFAULT_FORMAT = "strict_date_optional_time||epoch_millis"

_ISO = re.compile(
    r"([+-]?\d{4,9})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2})(?::(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?)?)?)?"
    r"(Z|[+-]\d{2}(?::?\d{2})?)?\Z"
)


@lru_cache(maxsize=256)
def resolve_tz(name: str | None) -> tzinfo:
    if name is None or name in ("Z", "UTC", "utc", "GMT", "+00:00", "-00:00", "Etc/UTC"):
        return UTC
    m = re.fullmatch(r"([+-])(\d{1,2})(?::?(\d{2}))?", name)
    if m:
        minutes = int(m.group(2)) * 60 + int(m.group(3) or 0)
        return timezone(timedelta(minutes=minutes if m.group(1) == "+" else -minutes))
    try:
        return ZoneInfo(name)
    except Exception:
        raise ValueError(f"Unknown time-zone ID: {name}") from None


def _offset_ms(tzs: str) -> int:
    if tzs == "Z":
        return 0
    sign = 1 if tzs[0] == "+" else -1
    body = tzs[1:].replace(":", "")
    hours = int(body[:2])
    minutes = int(body[2:4] or 0)
    return sign * (hours * 3600000 + minutes * 60000)


def _local_to_ms(y: int, mo: int, d: int, h: int, mi: int, s: int, ms: int, tz: tzinfo) -> int:
    if tz is UTC:
        days = date(y, mo, d).toordinal() - _EPOCH_ORD
        return days * 86400000 + h * 3600000 + mi * 60000 + s * 1000 + ms
    dt = datetime(y, mo, d, h, mi, s, ms * 1000, tzinfo=tz)
    return to_ms(dt)


def to_ms(dt: datetime) -> int:
    delta = dt - EPOCH
    return delta.days * 86400000 + delta.seconds * 1000 + delta.microseconds // 1000


def from_ms(ms: int, tz: tzinfo = UTC) -> datetime:
    dt = EPOCH + timedelta(milliseconds=ms)
    return dt if tz is UTC else dt.astimezone(tz)


def parse_iso(text: str, tz: tzinfo = UTC, require_day: bool = False, round_up: bool = False) -> int | None:
    """round_up: missing time components take their maximum (ES does this for lte/gt bounds)."""
    m = _ISO.match(text)
    if m is None:
        return None
    y, mo, d, h, mi, s, frac, tzs = m.groups()
    if require_day and d is None:
        return None
    if len(y) != 4:
        return None
    if round_up:
        hh, mm, ss = int(h or 23), int(mi or 59), int(s or 59)
        millis = int(frac[:3].ljust(3, "0")) if frac else 999
    else:
        hh, mm, ss = int(h or 0), int(mi or 0), int(s or 0)
        millis = int((frac or "0")[:3].ljust(3, "0"))
    if hh > 23 or mm > 59 or ss > 59:
        raise ValueError(f"failed to parse date field [{text}]")
    try:
        if tzs is not None:
            base = _local_to_ms(int(y), int(mo or 1), int(d or 1), hh, mm, ss, millis, UTC)
            return base - _offset_ms(tzs)
        return _local_to_ms(int(y), int(mo or 1), int(d or 1), hh, mm, ss, millis, tz)
    except ValueError:
        raise ValueError(f"failed to parse date field [{text}]") from None


# ---------------------------------------------------------------- java-style patterns
_TOKEN = re.compile(r"'[^']*'|y+|u+|M+|d+|H+|h+|m+|s+|S+|Z+|X+|x+|a|.")


@lru_cache(maxsize=128)
def _compile_pattern(pattern: str) -> tuple[re.Pattern[str], list[str], list[tuple[str, str]]]:
    regex, groups, out = "", [], []
    for tok in _TOKEN.findall(pattern):
        c = tok[0]
        if c == "'":
            lit = tok[1:-1] or "'"
            regex += re.escape(lit)
            out.append(("lit", lit))
        elif c in "yu":
            regex += r"(\d{4})"
            groups.append("y")
            out.append(("y", tok))
        elif c in "MdHhms":
            regex += r"(\d{1,2})" if len(tok) == 1 else r"(\d{2})"
            groups.append(c)
            out.append((c, tok))
        elif c == "S":
            regex += r"(\d{" + str(len(tok)) + "})"
            groups.append("S")
            out.append(("S", tok))
        elif c in "ZXx":
            regex += r"(Z|[+-]\d{2}:?\d{2}|[+-]\d{2})"
            groups.append("Z")
            out.append(("Z", tok))
        else:
            regex += re.escape(tok)
            out.append(("lit", tok))
    return re.compile(regex + r"\Z"), groups, out


def _parse_pattern(text: str, pattern: str, tz: tzinfo) -> int | None:
    rx, groups, _ = _compile_pattern(pattern)
    m = rx.match(text)
    if m is None:
        return None
    vals = dict(y=1970, M=1, d=1, H=0, h=0, m=0, s=0, S=0)
    zone = None
    for g, v in zip(groups, m.groups(), strict=False):
        if g == "Z":
            zone = v
        elif g == "S":
            vals["S"] = int(v[:3].ljust(3, "0"))
        else:
            vals[g] = int(v)
    hour = vals["H"] or vals["h"]
    base = _local_to_ms(vals["y"], vals["M"], vals["d"], hour, vals["m"], vals["s"], vals["S"], UTC if zone else tz)
    return base - _offset_ms(zone) if zone else base


_NAMED = {
    "strict_date": "yyyy-MM-dd",
    "date": "yyyy-MM-dd",
    "basic_date": "yyyyMMdd",
    "basic_date_time": "yyyyMMdd'T'HHmmss.SSSZ",
    "basic_date_time_no_millis": "yyyyMMdd'T'HHmmssZ",
    "strict_date_hour_minute_second": "yyyy-MM-dd'T'HH:mm:ss",
    "date_hour_minute_second": "yyyy-MM-dd'T'HH:mm:ss",
    "strict_date_hour_minute_second_millis": "yyyy-MM-dd'T'HH:mm:ss.SSS",
    "date_hour_minute_second_millis": "yyyy-MM-dd'T'HH:mm:ss.SSS",
    "strict_date_hour_minute": "yyyy-MM-dd'T'HH:mm",
    "strict_year_month": "yyyy-MM",
    "year_month": "yyyy-MM",
    "strict_year": "yyyy",
    "year": "yyyy",
    "strict_hour_minute_second": "HH:mm:ss",
}
_ISO_NAMES = {
    "strict_date_optional_time",
    "date_optional_time",
    "strict_date_optional_time_nanos",
    "iso8601",
    "strict_date_time",
    "date_time",
    "strict_date_time_no_millis",
    "date_time_no_millis",
}


def _parse_one(value: Any, fmt: str, tz: tzinfo, round_up: bool = False) -> int | None:
    if fmt == "epoch_millis":
        if isinstance(value, bool):
            return None
        if isinstance(value, (int, float)):
            return int(value)
        try:
            return int(float(value)) if re.fullmatch(r"-?\d+(\.\d+)?", value) else None
        except ValueError:
            return None
    if fmt == "epoch_second":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return int(value * 1000)
        if re.fullmatch(r"-?\d+(\.\d+)?", value):
            return int(float(value) * 1000)
        return None
    text = value if isinstance(value, str) else str(value)
    if fmt in _ISO_NAMES:
        return parse_iso(text, tz, round_up=round_up)
    return _parse_pattern(text, _NAMED.get(fmt, fmt), tz)


def parse_date(value: Any, fmt: str | None = None, tz: tzinfo = UTC, round_up: bool = False) -> int:
    """Parse a date value to epoch millis; ValueError when no format accepts it."""
    if fmt is None or fmt == DEFAULT_FORMAT:
        if isinstance(value, str):
            r = parse_iso(value, tz, round_up=round_up)
            if r is not None:
                return r
            if re.fullmatch(r"-?\d+", value):
                return int(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            return value
        elif isinstance(value, float):
            return int(value)
        raise ValueError(f"failed to parse date field [{value}] with format [{DEFAULT_FORMAT}]")
    for f in fmt.split("||"):
        r = _parse_one(value, f.strip(), tz, round_up)
        if r is not None:
            return r
    raise ValueError(f"failed to parse date field [{value}] with format [{fmt}]")


def format_date(ms: int, fmt: str | None = None, tz: tzinfo = UTC) -> str:
    f = (fmt or "strict_date_optional_time").split("||")[0].strip()
    if f == "epoch_millis":
        return str(ms)
    if f == "epoch_second":
        return str(ms // 1000) if ms % 1000 == 0 else str(ms / 1000)
    dt = from_ms(ms, tz)
    if f in _ISO_NAMES or (f not in _NAMED and not re.search(r"[yMdHms]", f)):
        base = dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{dt.microsecond // 1000:03d}"
        off = dt.utcoffset() or timedelta(0)
        if off == timedelta(0):
            return base + "Z"
        total = int(off.total_seconds()) // 60
        sign = "+" if total >= 0 else "-"
        return base + f"{sign}{abs(total) // 60:02d}:{abs(total) % 60:02d}"
    _, _, out = _compile_pattern(_NAMED.get(f, f))
    parts = []
    for kind, tok in out:
        if kind == "lit":
            parts.append(tok)
        elif kind == "y":
            parts.append(f"{dt.year:04d}")
        elif kind == "S":
            parts.append(f"{dt.microsecond // 1000:03d}"[: len(tok)].ljust(len(tok), "0"))
        elif kind == "Z":
            off = int((dt.utcoffset() or timedelta(0)).total_seconds()) // 60
            sign = "+" if off >= 0 else "-"
            sep = ":" if len(tok) >= 3 or tok == "ZZ" else ""
            parts.append(
                "Z" if off == 0 and tok.startswith("X") else f"{sign}{abs(off) // 60:02d}{sep}{abs(off) % 60:02d}"
            )
        else:
            v = {"M": dt.month, "d": dt.day, "H": dt.hour, "h": (dt.hour % 12) or 12, "m": dt.minute, "s": dt.second}[
                kind
            ]
            parts.append(str(v) if len(tok) == 1 else f"{v:02d}")
    return "".join(parts)


# ---------------------------------------------------------------- calendar units
_UNIT_ALIASES = {
    "ms": "ms",
    "s": "s",
    "1s": "s",
    "second": "s",
    "m": "m",
    "1m": "m",
    "minute": "m",
    "h": "h",
    "H": "h",
    "1h": "h",
    "hour": "h",
    "d": "d",
    "1d": "d",
    "day": "d",
    "w": "w",
    "1w": "w",
    "week": "w",
    "M": "M",
    "1M": "M",
    "month": "M",
    "q": "q",
    "1q": "q",
    "quarter": "q",
    "y": "y",
    "1y": "y",
    "year": "y",
}
_FIXED_UNITS = {"ms": 1, "s": 1000, "m": 60000, "h": 3600000, "d": 86400000}


def parse_calendar_interval(text: str) -> str:
    unit = _UNIT_ALIASES.get(text)
    if unit is None or unit == "ms" or text in ("s", "m", "h", "d", "w", "M", "q", "y", "H"):
        raise ValueError(f"The supplied interval [{text}] could not be parsed as a calendar interval.")
    return unit


def parse_fixed_interval(text: str, setting: str = "date_histogram.fixedInterval") -> int:
    m = re.fullmatch(r"(\d+)(ms|s|m|h|d)", str(text).strip())
    if not m:
        raise ValueError(
            f"failed to parse setting [{setting}] with value [{text}] as a time value: unit is missing or unrecognized"
        )
    return int(m.group(1)) * _FIXED_UNITS[m.group(2)]


def _add_months(dt: datetime, months: int) -> datetime:
    total = dt.year * 12 + (dt.month - 1) + months
    y, mo = divmod(total, 12)
    mo += 1
    # clamp the day like java.time does
    for day in (dt.day, 30, 29, 28):
        try:
            return dt.replace(year=y, month=mo, day=min(dt.day, day))
        except ValueError:
            continue
    raise ValueError("bad date")


def _local(dt_utc_ms: int, tz: tzinfo) -> datetime:
    return from_ms(dt_utc_ms, tz).replace(tzinfo=None)


def _from_local(dt: datetime, tz: tzinfo) -> int:
    return to_ms(dt.replace(tzinfo=tz)) if tz is not UTC else to_ms(dt.replace(tzinfo=UTC))


def round_down(ms: int, unit: str, tz: tzinfo = UTC) -> int:
    if tz is UTC and unit in ("s", "m", "h", "d"):
        size = _FIXED_UNITS[unit]
        return ms - ms % size
    dt = _local(ms, tz)
    if unit == "s":
        dt = dt.replace(microsecond=0)
    elif unit == "m":
        dt = dt.replace(second=0, microsecond=0)
    elif unit == "h":
        dt = dt.replace(minute=0, second=0, microsecond=0)
    elif unit == "d":
        dt = dt.replace(hour=0, minute=0, second=0, microsecond=0)
    elif unit == "w":
        dt = (dt - timedelta(days=dt.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    elif unit == "M":
        dt = dt.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    elif unit == "q":
        dt = dt.replace(month=(dt.month - 1) // 3 * 3 + 1, day=1, hour=0, minute=0, second=0, microsecond=0)
    elif unit == "y":
        dt = dt.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    return _from_local(dt, tz)


def add_units(ms: int, amount: int, unit: str, tz: tzinfo = UTC) -> int:
    if unit in ("ms", "s", "m", "h"):
        return ms + amount * _FIXED_UNITS[unit]
    dt = _local(ms, tz)
    if unit == "d":
        dt = dt + timedelta(days=amount)
    elif unit == "w":
        dt = dt + timedelta(weeks=amount)
    elif unit == "M":
        dt = _add_months(dt, amount)
    elif unit == "q":
        dt = _add_months(dt, 3 * amount)
    elif unit == "y":
        dt = _add_months(dt, 12 * amount)
    return _from_local(dt, tz)


_MATH = re.compile(r"([+-])(\d+)([yMwdhHms])|/([yMwdhHms])")


def parse_date_math(
    value: Any,
    now_ms: int,
    round_up: bool = False,
    fmt: str | None = None,
    tz: tzinfo = UTC,
) -> int:
    """Resolve ``now-1d/d`` or ``2024-01-01||+1M/d``. round_up gives the last millisecond of the
    rounding unit (used for ``lte``/``gt``), like Elasticsearch's JavaDateMathParser."""
    if not isinstance(value, str):
        return parse_date(value, fmt, tz)
    if value.startswith("now"):
        base, math = now_ms, value[3:]
    elif "||" in value:
        anchor, math = value.split("||", 1)
        base = parse_date(anchor, fmt, tz)
    else:
        return parse_date(value, fmt, tz, round_up=round_up)
    pos = 0
    ms = base
    while pos < len(math):
        m = _MATH.match(math, pos)
        if m is None:
            raise ValueError(
                f"failed to parse date field [{value}]: operator not supported for date math [{math[pos:]}]"
            )
        if m.group(4):
            unit = "h" if m.group(4) == "H" else m.group(4)
            ms = round_down(ms, unit, tz)
            if round_up:
                ms = add_units(ms, 1, unit, tz) - 1
        else:
            unit = "h" if m.group(3) == "H" else m.group(3)
            amount = int(m.group(2)) * (1 if m.group(1) == "+" else -1)
            ms = add_units(ms, amount, unit, tz)
        pos = m.end()
    return ms


def now_ms() -> int:
    return to_ms(datetime.now(UTC))


def make_rounder(
    calendar: str | None, fixed: int | None, tz: tzinfo, offset: int
) -> tuple[Callable[[int], int], Callable[[int], int]]:
    """(round(ms) -> bucket key, next(key) -> following bucket key) for date histograms."""
    if calendar is not None:
        unit = calendar
        if tz is UTC and offset == 0 and unit in ("s", "m", "h", "d"):
            size = _FIXED_UNITS[unit]
            return (lambda ms: ms - ms % size), (lambda key: key + size)
        if tz is UTC and offset == 0 and unit == "w":
            week, monday = 7 * 86400000, 4 * 86400000  # 1970-01-05 was a Monday
            return (lambda ms: ms - (ms - monday) % week), (lambda key: key + week)
        memo: dict[int, int] = {}
        grain = 60000  # every unit here is a whole number of local minutes

        def rnd(ms: int) -> int:
            m = ms // grain
            r = memo.get(m)
            if r is None:
                r = memo[m] = round_down(ms - offset, unit, tz) + offset
            return r

        def nxt(key: int) -> int:
            return add_units(key - offset, 1, unit, tz) + offset

        return rnd, nxt
    assert fixed is not None
    size = fixed
    if tz is UTC:
        return (lambda ms: ms - (ms - offset) % size), (lambda key: key + size)

    def rnd_tz(ms: int) -> int:
        local_off = int((from_ms(ms, tz).utcoffset() or timedelta(0)).total_seconds() * 1000)
        local = ms + local_off
        local_key = local - (local - offset) % size
        key_off = int((from_ms(local_key - local_off, tz).utcoffset() or timedelta(0)).total_seconds() * 1000)
        return local_key - key_off

    return rnd_tz, (lambda key: rnd_tz(key + size))
