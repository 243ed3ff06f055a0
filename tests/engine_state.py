"""Comparing detector states saved by different processes."""

from __future__ import annotations

from typing import Any

import orjson


def unordered(value: Any) -> Any:
    """A saved detector state with its lists sorted.

    Some lists are sets (customers, addresses, resources), listed in the set's
    order: string hashing is seeded per process, so the same set lists in
    another order in a detection worker, or after a restart.  Loaded back they
    are the same sets; only the listing differs.
    """
    if isinstance(value, dict):
        return {key: unordered(item) for key, item in value.items()}
    if isinstance(value, list):
        # int keys too: msgpack keeps the hour-of-week maps' keys as ints (detectors.state_codec)
        sort_key = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
        return sorted((unordered(item) for item in value), key=lambda item: orjson.dumps(item, option=sort_key))
    return value
