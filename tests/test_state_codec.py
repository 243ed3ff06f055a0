"""The detector checkpoint's encoding: exact, smaller than JSON, and still reading JSON states of earlier versions."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import msgspec
import orjson
import pytest

from accesswatch import app
from configs.loader import load_settings
from detectors.classify import Classifier
from detectors.profiles import EwStat
from detectors.state_codec import decode_state, encode_state
from ingest.parse import Parser
from ingest.simulator import SimulationSettings, write_simulation
from ingest.sources import FileSource


@pytest.fixture(scope="module")
def week(tmp_path_factory):
    """A simulated week's events, parsed: days of baselines learned, and windows still open at the cut."""
    root = tmp_path_factory.mktemp("week")
    simulation = SimulationSettings(seed=5, days=8, employees=30)
    write_simulation(root, simulation)
    settings = load_settings(env={}, overrides={"data_dir": str(root / "data")})
    just_after = simulation.start.timestamp() + 9 * 86400  # the parser's clock: none of it is in the future
    parser = Parser(Classifier(settings.classification), settings.ingest, wall_clock=lambda: just_after)
    events = [i.event for records in FileSource([str(root / "events.jsonl")], 1 << 20).batches(5000)
              for i in parser.parse(records).events]  # fmt: skip
    return settings, events


def _engine_after(settings, events):
    engine = app.build_engine(settings)
    for start in range(0, len(events), 2000):
        engine.process(events[start : start + 2000])
    return engine


def _restored(settings, data: bytes):
    engine = app.build_engine(settings)
    engine.load_state(decode_state(data))
    return engine


def test_a_restored_engine_saves_the_same_bytes_and_judges_the_rest_alike(week):
    settings, events = week
    cut = len(events) * 3 // 4
    engine = _engine_after(settings, events[:cut])
    saved = encode_state(engine.to_state())
    restored = _restored(settings, saved)
    assert encode_state(restored.to_state()) == saved
    assert engine.profiles.actors, "the week learned baselines"
    went_on = [engine.process(events[cut:]).alerts, engine.flush().alerts]
    assert went_on == [restored.process(events[cut:]).alerts, restored.flush().alerts]
    assert encode_state(restored.to_state()) == encode_state(engine.to_state())


def test_a_json_state_saved_by_an_earlier_version_is_read(week):
    # Earlier versions saved ``to_state`` through orjson: keys of the hour-of-week and weekday maps as
    # strings, each baseline as [sw, swx, swx2].  msgspec's JSON encoder writes exactly that form.
    settings, events = week
    cut = len(events) // 2
    engine = _engine_after(settings, events[:cut])
    as_json = msgspec.json.encode(engine.to_state(), enc_hook=EwStat.to_state)
    assert as_json[:1] == b"{" and b'"hourly":{"records":[' in as_json  # the earlier layout
    from_json, from_msgpack = _restored(settings, as_json), _restored(settings, encode_state(engine.to_state()))
    assert encode_state(from_json.to_state()) == encode_state(from_msgpack.to_state())
    assert from_json.process(events[cut:]).alerts == from_msgpack.process(events[cut:]).alerts


def test_it_is_smaller_than_the_same_state_as_json(week):
    settings, events = week
    state = _engine_after(settings, events).to_state()
    assert len(encode_state(state)) < 0.8 * len(msgspec.json.encode(state, enc_hook=EwStat.to_state))


@pytest.mark.parametrize("value", [0.1 + 0.2, 5e-324, 1.7976931348623157e308, -0.0, 1 / 3])
def test_floats_come_back_to_the_last_bit(value):
    state = decode_state(encode_state({"stat": EwStat(value, value, value), "plain": value}))
    assert state == {"stat": [value, value, value], "plain": value}
    assert math.copysign(1.0, state["plain"]) == math.copysign(1.0, value)


def test_an_undecodable_state_is_refused():
    with pytest.raises(msgspec.DecodeError):
        decode_state(b"\xc1")  # never used in msgpack
    with pytest.raises(orjson.JSONDecodeError):
        decode_state(b"{not json")
    with pytest.raises(ValueError, match="a detector state is a map, not list"):
        decode_state(encode_state([1, 2]))  # type: ignore[arg-type]


# A process of its own per hash seed: the engine's state after a story whose accesses touch several data classes
_STATE_DIGEST = """
import hashlib
from datetime import UTC, datetime
from configs.loader import load_settings
from detectors.engine import DetectionEngine
from detectors.state_codec import encode_state
from tests.test_batch_fold import _story
engine = DetectionEngine(load_settings(env={}), [])
engine.process(_story(datetime(2026, 10, 24, 20, tzinfo=UTC)))
print(hashlib.sha256(encode_state(engine.to_state())).hexdigest())
"""


def test_the_same_events_give_the_same_checkpoint_bytes_whatever_the_processs_string_hashing() -> None:
    """A set of strings iterates in an order that depends on the process's hash seed: a window's maps must not
    keep it (a touch's classes are folded in name order), or two runs of one replay save different checkpoints."""
    repo = Path(__file__).resolve().parent.parent
    digests = {
        subprocess.run(
            [sys.executable, "-c", _STATE_DIGEST],
            cwd=repo,
            env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(repo)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(digests) == 1
