"""The ``accesswatch`` command as a person uses it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import orjson
import pytest

from tests.factories import event_dict

COMMANDS = ["replay", "alerts", "deadletters", "simulate", "evaluate", "run", "demo"]


def aw(*args: str, stdin: bytes | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "accesswatch.cli", *args],
        input=stdin,
        capture_output=True,
        timeout=300,
        env=env,
    )


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    done = aw(command, "--help")
    assert done.returncode == 0 and b"usage: accesswatch " + command.encode() in done.stdout


def test_simulate_writes_events_and_labels(tmp_path):
    done = aw("simulate", "--days", "2", "--employees", "20", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    lines = (tmp_path / "events.jsonl").read_bytes().splitlines()
    assert summary["events"] == len(lines) > 0
    assert json.loads((tmp_path / "labels.json").read_text())["days"] == 2
    assert aw("simulate", "--days", "2", "--employees", "3", "--out", str(tmp_path)).returncode == 2


def test_replay_from_stdin_then_dead_letters_and_alert_table(tmp_path):
    data = str(tmp_path / "data")
    lines = [orjson.dumps(event_dict()), b"{oops", b"\xff\xfe"]
    done = aw("replay", "-", "--data-dir", data, stdin=b"\n".join(lines) + b"\n")
    assert done.returncode == 0, done.stderr
    assert b"read 3 lines: stored 1, duplicates 0, dead letters 2" in done.stdout
    letters = aw("deadletters", "--data-dir", data, "--format", "jsonl")
    records = [json.loads(line) for line in letters.stdout.splitlines()]
    assert [r["position"] for r in records] == ["line 2", "line 3"]
    assert records[0]["source"] == "stdin" and records[0]["raw"] == "{oops"
    assert records[1]["raw"] == "\\xff\\xfe" and "UTF-8" in records[1]["reason"]
    table = aw("alerts", "--data-dir", data)
    assert table.returncode == 0 and table.stdout.strip() == b"no alerts"


def test_a_missing_file_fails_without_a_traceback(tmp_path):
    done = aw("replay", str(tmp_path / "nope.jsonl"), "--data-dir", str(tmp_path))
    assert done.returncode == 1 and b"no such file" in done.stderr and b"Traceback" not in done.stderr


def test_a_reader_that_stops_early_ends_the_listing_quietly(tmp_path):
    """``accesswatch deadletters | head``: the pipe closes mid-listing; no traceback, SIGPIPE's status."""
    data = str(tmp_path / "data")
    bad = b"".join(b"{not json %d\n" % n for n in range(3000))  # listed, this is far more than a pipe holds
    assert aw("replay", "-", "--data-dir", data, stdin=bad).returncode == 0
    with subprocess.Popen(
        [sys.executable, "-m", "accesswatch.cli", "deadletters", "--data-dir", data, "--format", "jsonl"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as listing:
        assert listing.stdout is not None and listing.stderr is not None
        assert listing.stdout.read(100)
        listing.stdout.close()
        errors = listing.stderr.read()
        assert listing.wait(timeout=300) == 128 + signal.SIGPIPE
    assert b"Traceback" not in errors and b"BrokenPipe" not in errors


def test_alerts_on_an_empty_data_dir_says_so(tmp_path):
    done = aw("alerts", "--data-dir", str(tmp_path / "empty"))
    assert done.returncode == 1 and b"no store at" in done.stderr


def test_data_dir_defaults_to_the_environment_variable(tmp_path):
    env = {"ACCESSWATCH_DATA_DIR": str(tmp_path / "envdir"), "PATH": "/usr/bin:/bin"}
    done = aw("replay", "-", stdin=orjson.dumps(event_dict()) + b"\n", env=env)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "envdir" / "accesswatch.db").exists()


def test_run_stops_cleanly_on_sigterm_and_keeps_its_state(tmp_path):
    import signal
    import sqlite3
    import time

    data = tmp_path / "data"
    env = {
        "PATH": "/usr/bin:/bin",
        "ACCESSWATCH_SOURCE__SIMULATOR__SPEED": "20000",  # slow enough to be stopped half-way
        "ACCESSWATCH_SOURCE__SIMULATOR__EMPLOYEES": "30",
        "ACCESSWATCH_NOTIFY__RECEIVERS": '["file"]',
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "accesswatch.cli", "run", "--source", "simulator", "--data-dir", str(data)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    store = data / "accesswatch.db"
    deadline = time.monotonic() + 120
    events = 0
    while time.monotonic() < deadline and events < 2000:
        time.sleep(0.2)
        if store.exists():
            try:
                with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
                    events = db.execute("SELECT count(*) FROM events").fetchone()[0]
            except sqlite3.OperationalError:
                pass  # the schema is being created
    assert events >= 2000, "the simulator fed the store"
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert b"stopped: read" in stderr
    with sqlite3.connect(store) as db:
        stored = db.execute("SELECT count(*) FROM events").fetchone()[0]
        checkpoint = db.execute("SELECT seq FROM checkpoints WHERE name = 'detectors'").fetchone()
    assert checkpoint is not None and checkpoint[0] == stored  # state saved for everything stored
