"""Crash safety: ``run`` and ``replay`` killed with SIGKILL at random moments, restarted, lose and double nothing.

Each test ingests a small simulated organisation twice: once without
interruption, and once killed (SIGKILL, no chance to clean up) at a random
moment after each restart has stored a random number (1 to 10) of new
batches, 20 times, then run to the end.  Striking after so many batches, not
after so long, keeps the number of kills the log allows independent of how
fast the product is: a random delay let a faster store finish the log first.  The interrupted store must equal the
uninterrupted one: every event stored exactly once, the same alerts (ids and
contents) and incidents, the same detector state at the end, every page
planned once and delivered (the file receiver's page log has each of them),
and a hash chain that still verifies.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from detectors.state_codec import decode_state
from ingest.simulator import SimulationSettings, write_simulation
from store.sqlite import SqliteStore
from tests.engine_state import unordered

KILLS = 20
BATCH = 100  # events a transaction (ACCESSWATCH_STORE__SQLITE__TRANSACTION_EVENTS below)
MOST_BATCHES = 10  # a restart stores 1 to this many new batches before it is killed
ENV = {
    # small transactions and frequent checkpoints: many batches to be killed between, and
    # restarts that recover both from a checkpoint and from the events stored past it
    "ACCESSWATCH_INGEST__BATCH_LINES": "100",
    "ACCESSWATCH_STORE__SQLITE__TRANSACTION_EVENTS": "100",
    "ACCESSWATCH_INGEST__CHECKPOINT_EVENTS": "3000",
    "ACCESSWATCH_METRICS__ENABLED": "false",
    # a page a killed process had taken for delivery waits out its lease (timeout x 6 + 30 s: 36 s
    # here) before another process sends it: the last run keeps delivering past that
    "ACCESSWATCH_NOTIFY__DELIVERY__TIMEOUT": "1s",
    "ACCESSWATCH_NOTIFY__DELIVERY__DRAIN_ON_EXIT": "60s",
    # One string hashing for every process: detector state holds lists built from sets (the
    # resources an actor touched in a day, in set order), which another seed orders otherwise.
    # With it, the state after twenty deaths must equal the uninterrupted one exactly.
    "PYTHONHASHSEED": "0",
}


@pytest.fixture(scope="module")
def log(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("crash")
    # 40,423 events: KILLS restarts store at most KILLS x MOST_BATCHES x BATCH (20,000) of them, and
    # what the polling lets through before each strike (a few batches): the last run has the rest
    write_simulation(root, SimulationSettings(seed=11, days=16, employees=60))
    return root / "events.jsonl"


def _command(kind: str, log: Path, data: Path) -> list[str]:
    if kind == "run":
        return [sys.executable, "-m", "accesswatch.cli", "run", "--source", "file", str(log), "--data-dir", str(data)]
    return [sys.executable, "-m", "accesswatch.cli", "replay", str(log), "--page", "--data-dir", str(data)]


def _start(kind: str, log: Path, data: Path) -> subprocess.Popen:
    env = {key: value for key, value in os.environ.items() if not key.startswith("ACCESSWATCH_")} | ENV
    return subprocess.Popen(
        _command(kind, log, data), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )


def _stored(data: Path) -> int:
    try:
        db = sqlite3.connect(f"file:{data / 'accesswatch.db'}?mode=ro", uri=True, timeout=5)
        try:
            return db.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
        finally:
            db.close()
    except sqlite3.OperationalError:  # not created yet, or its schema not yet in place
        return 0


def _finish(process: subprocess.Popen) -> None:
    _, err = process.communicate(timeout=300)
    assert process.returncode == 0, err.decode()[-2000:]


def _interrupted(kind: str, log: Path, data: Path, seed: int) -> int:
    """Kill a fresh process ``KILLS`` times, each after it stored new batches; then let one finish."""
    chance = random.Random(seed)
    kills = 0
    while kills < KILLS:
        strike_at = _stored(data) + chance.randint(1, MOST_BATCHES) * BATCH
        process = _start(kind, log, data)
        deadline = time.monotonic() + 120
        while _stored(data) < strike_at and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        if process.poll() is not None:  # it reached the end before we struck: the log is done
            assert process.returncode == 0, process.stderr.read().decode()[-2000:]
            return kills
        time.sleep(chance.uniform(0, 0.05))  # anywhere in the work in flight: a write, a judgement, a page
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
        process.stderr.close()
        kills += 1
    _finish(_start(kind, log, data))
    return kills


def _state(data: Path) -> dict:
    with SqliteStore(data / "accesswatch.db") as store:
        db = store._db
        events = db.execute("SELECT count(*), count(DISTINCT event_id), max(seq) FROM events").fetchone()
        checkpoint = store.load_checkpoint("detectors")
        report = store.verify_chain()
        return {
            "events": events,
            "alerts": sorted(db.execute("SELECT alert_id, body FROM alerts").fetchall()),
            "incidents": sorted(db.execute("SELECT incident_id, body FROM incidents").fetchall()),
            "pages": sorted(db.execute("SELECT notification_id, receiver, kind, status FROM outbox").fetchall()),
            # sets listed in per-process order (a restart, the detection worker): compared as sets
            "checkpoint": (checkpoint.seq, unordered(decode_state(checkpoint.state))) if checkpoint else None,
            "chain_intact": (report.intact, report.problems[:5]),
        }


def _page_log(data: Path) -> dict[str, int]:
    """How many times each page (by its outbox id) reached the file receiver."""
    path = data / "pages.jsonl"
    counts: dict[str, int] = {}
    for line in path.read_bytes().splitlines() if path.exists() else []:
        delivery = orjson.loads(line)["page"]["delivery_id"]
        counts[delivery] = counts.get(delivery, 0) + 1
    return counts


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("kind", ["run", "replay"])
def test_killed_at_random_and_restarted_it_loses_and_doubles_nothing(kind, log, tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    _finish(_start(kind, log, whole))
    kills = _interrupted(kind, log, killed, seed=len(kind))
    assert kills >= KILLS, f"the log was ingested after {kills} kills: make it longer"

    expected, got = _state(whole), _state(killed)
    lines = len(log.read_bytes().splitlines())
    assert expected["events"] == (lines, lines, lines)
    assert got["events"] == (lines, lines, lines)  # every event stored once, and store positions never skipped
    assert got["chain_intact"] == (True, [])
    assert expected["alerts"], "the simulation raises alerts to compare"
    assert got["alerts"] == expected["alerts"]  # the same alert ids with the same contents
    assert got["incidents"] == expected["incidents"]
    assert got["checkpoint"] == expected["checkpoint"]  # detector state continuous: the same at the end
    # every page planned once and delivered; the page log has each of them (a page sent but not yet
    # settled when the process died is sent again: at least once, with the same delivery id)
    assert got["pages"] == expected["pages"] and expected["pages"]
    assert {status for *_, status in got["pages"]} <= {"sent", "suppressed"}
    sent_to_file = {nid for nid, receiver, _, status in got["pages"] if receiver == "file" and status == "sent"}
    assert set(_page_log(killed)) == sent_to_file == set(_page_log(whole))
