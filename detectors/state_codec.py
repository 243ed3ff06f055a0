"""The detection engine's checkpoint state as bytes, and back.

msgpack (msgspec), not JSON.  A month of 1,400 actors is a state of about a
quarter of a million baselines, nearly all floats: as JSON, 23 MB that a 1M
replay built, formatted, sent, stored and let go of five times, for 0.5 to
1.2 s of CPU each time across the detection worker, the store writer and
the main thread (4 to 9% of the replay's CPU, measured).  msgpack writes a float as its 8 bytes, exactly, and
encodes int-keyed maps as they are, with no copy built first: less to make,
less to store (``bench/bench_replay.py`` prints the run's CPU by thread).
The baselines (``detectors.profiles.EwStat``, a slotted class) are handed
over as they are too, and written as ``[sw, swx, swx2]`` by the encoder's
hook, as each is met.

A state saved as JSON, as every version before this one saved it, is still
read: it starts with ``{``, which no msgpack map does (0x80-0x8f, 0xde,
0xdf).  The state's own layout did not change, only its encoding, so
``DetectionEngine.load_state`` takes either; maps keyed by hour of the week
or weekday come back with int keys from msgpack and str keys from JSON, and
are read with ``int()``.
"""

from __future__ import annotations

from typing import Any

import msgspec
import orjson

from detectors.profiles import EwStat


def _encode_baseline(obj: Any) -> Any:
    """The encoder's hook for what msgpack does not know: a baseline (``EwStat``), as ``[sw, swx, swx2]``.

    It runs for each of a month's quarter of a million baselines: the list is made here, not by a call more.
    """
    if type(obj) is EwStat:
        return [obj.sw, obj.swx, obj.swx2]
    raise TypeError(f"a detector state holds no {type(obj).__name__}")  # as the encoder alone refused it


_ENCODER = msgspec.msgpack.Encoder(enc_hook=_encode_baseline)
_DECODER = msgspec.msgpack.Decoder()


def encode_state(state: dict[str, Any]) -> bytes:
    """``DetectionEngine.to_state()`` as bytes; call it before the engine judges anything more.

    ``to_state`` hands over the engine's own baselines, not copies (copying them was most of its cost).
    """
    return _ENCODER.encode(state)


def decode_state(data: bytes) -> dict[str, Any]:
    """What ``encode_state`` made, or a JSON state saved by an earlier version; for ``load_state``."""
    state = orjson.loads(data) if data[:1] == b"{" else _DECODER.decode(data)
    if not isinstance(state, dict):
        raise ValueError(f"a detector state is a map, not {type(state).__name__}")
    return state
