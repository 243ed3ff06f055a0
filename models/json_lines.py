"""One JSON value a line, safe for every reader's idea of a line.

JSON lets U+0085, U+2028 and U+2029 stand unescaped inside strings, and
orjson writes them so; but Python's ``str.splitlines`` (and JavaScript
before ES2019) ends a line at each of them, cutting a record in two.  An
actor id or a summary may hold them: escaped, the record reads back the same
and no reader splits it.  (orjson escapes the other line breaks, all below
U+0020, already.)
"""

from __future__ import annotations

from typing import Any

import orjson

# UTF-8 is self-synchronising: these byte sequences are those characters wherever they occur
_LINE_BREAKS = ((b"\xc2\x85", b"\\u0085"), (b"\xe2\x80\xa8", b"\\u2028"), (b"\xe2\x80\xa9", b"\\u2029"))


def json_line(value: Any) -> bytes:
    """``value`` as compact JSON and a newline, with no character any reader takes for a line break."""
    encoded = orjson.dumps(value)
    for raw, escaped in _LINE_BREAKS:
        if raw in encoded:
            encoded = encoded.replace(raw, escaped)
    return encoded + b"\n"
