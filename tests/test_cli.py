"""The ``accesswatch`` command as a person uses it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tomllib
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest

from tests.closed_pipe import into_a_closed_pipe
from tests.factories import event_dict

REPO = Path(__file__).resolve().parents[1]
COMMANDS = ["replay", "alerts", "deadletters", "simulate", "evaluate", "run", "demo", "check-config"]
SHANGHAI = ZoneInfo("Asia/Shanghai")  # the organisation's zone in configs/default.toml


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


def test_a_replay_logs_where_its_time_went_only_when_asked_for_debug(tmp_path):
    """Tester: every replay ended with a JSON info line on stderr, which on a terminal interleaved with the pages."""
    events = orjson.dumps(event_dict()) + b"\n"
    done = aw("replay", "-", "--data-dir", str(tmp_path / "a"), stdin=events)
    assert done.returncode == 0 and b"time went" not in done.stderr, done.stderr
    debug = {**os.environ, "ACCESSWATCH_LOGGING__LEVEL": "debug"}
    done = aw("replay", "-", "--data-dir", str(tmp_path / "b"), stdin=events, env=debug)
    (logged,) = [orjson.loads(line) for line in done.stderr.splitlines() if b"time went" in line]
    assert logged["level"] == "debug" and logged["reading"] >= 0 and "detection_cpu" in logged


def test_a_replay_with_late_events_says_they_were_not_judged_and_what_to_do(tmp_path):
    in_order = [event_dict(timestamp="2026-11-02T01:00:00Z"), event_dict(timestamp="2026-11-02T03:00:00Z")]
    done = aw(
        "replay", "-", "--data-dir", str(tmp_path / "a"), stdin=b"".join(orjson.dumps(e) + b"\n" for e in in_order)
    )
    assert done.returncode == 0 and b"late events 0" in done.stdout and b"warning" not in done.stderr
    # the hour of 01:00 closed once 03:00 was read (10 minutes' lateness): 01:30 comes too late to be judged
    late = [event_dict(timestamp="2026-11-02T03:00:00Z"), event_dict(timestamp="2026-11-02T01:30:00Z")]
    done = aw("replay", "-", "--data-dir", str(tmp_path / "b"), stdin=b"".join(orjson.dumps(e) + b"\n" for e in late))
    assert done.returncode == 0, done.stderr  # stored, so accounted for: the contract's exit 0
    assert b"late events 1," in done.stdout
    warning = [line for line in done.stderr.decode().splitlines() if "warning" in line]
    assert warning == [
        "accesswatch replay: warning: 1 event stored but not judged: its window had closed (more than"
        " windows.allowed_lateness, 600 s, behind the newest event read); to judge it, replay all the files in"
        " one replay, each in time order, into a fresh data dir, or raise windows.allowed_lateness"
    ]


def test_a_replay_that_stores_nothing_new_says_no_event_was_judged_and_what_to_do(tmp_path):
    """A replay into the data dir of an earlier one, after a change of configuration, judged nothing and
    said "alerts raised 0" as if the history had been judged under it."""
    data = str(tmp_path / "data")
    events = b"".join(orjson.dumps(event_dict(timestamp=f"2026-11-02T0{hour}:00:00Z")) + b"\n" for hour in (1, 2))
    first = aw("replay", "-", "--data-dir", data, stdin=events)
    assert first.returncode == 0 and b"judged" not in first.stderr, first.stderr
    again = aw("replay", "-", "--data-dir", data, stdin=events + b"{oops\n")
    assert again.returncode == 0 and b"read 3 lines: stored 0, duplicates 2, dead letters 1" in again.stdout
    said = [line for line in again.stderr.decode().splitlines() if "judged" in line]
    assert said == [
        "accesswatch replay: no event was judged: all 2 events read were stored before, and a stored event is not"
        " judged again; to judge history under a new configuration, replay into a fresh --data-dir"
    ]
    one_new = aw("replay", "-", "--data-dir", data, stdin=events + orjson.dumps(event_dict()) + b"\n")
    assert one_new.returncode == 0 and b"stored 1, duplicates 2" in one_new.stdout
    assert b"judged" not in one_new.stderr  # the new event was judged


def test_triage_help_says_whom_it_records_without_by():
    """Without --by, ``resolve`` recorded "root" (the login name under sudo) with nothing to say it would."""
    for command in ("ack", "resolve", "reopen"):
        done = aw(command, "--help")
        assert done.returncode == 0
        text = " ".join(done.stdout.decode().split())  # as argparse wraps it to the terminal
        assert "--by NAME the person acting, as the triage log and the receivers name them" in text
        assert "(default: the operating-system login name running the command, which under sudo or in a" in text


def test_a_missing_file_fails_without_a_traceback(tmp_path):
    done = aw("replay", str(tmp_path / "nope.jsonl"), "--data-dir", str(tmp_path))
    assert done.returncode == 1 and b"no such file" in done.stderr and b"Traceback" not in done.stderr


def test_a_reader_that_stops_early_ends_the_listing_quietly(tmp_path):
    """``accesswatch deadletters | head``: the pipe closes mid-listing; no traceback, SIGPIPE's status."""
    data = str(tmp_path / "data")
    # listed, this is far more than a pipe holds (650 kB against 64 kB), so the listing cannot end before the
    # reader goes; at the default limit of 100 (22 kB) it could, and did on a loaded machine
    bad = b"".join(b"{not json %d\n" % n for n in range(3000))
    assert aw("replay", "-", "--data-dir", data, stdin=bad).returncode == 0
    listed = ["deadletters", "--data-dir", data, "--format", "jsonl", "--limit", "3000"]
    with subprocess.Popen(
        [sys.executable, "-m", "accesswatch.cli", *listed],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as listing:
        assert listing.stdout is not None and listing.stderr is not None
        assert listing.stdout.read(100)
        listing.stdout.close()
        errors = listing.stderr.read()
        assert listing.wait(timeout=300) == 128 + signal.SIGPIPE
    assert b"Traceback" not in errors and b"BrokenPipe" not in errors


@pytest.mark.parametrize("listing", [["alerts"], ["incidents"], ["deadletters"], ["pages"], ["--version"]])
def test_a_short_listing_into_a_closed_pipe_ends_quietly(tmp_path, listing):
    """``accesswatch incidents | head -1`` with a few lines: all of them fit stdout's buffer, and the reader had
    gone when Python flushed it at exit ("Exception ignored ... BrokenPipeError", status 120)."""
    data = str(tmp_path / "data")
    assert aw("replay", "-", "--data-dir", data, stdin=orjson.dumps(event_dict()) + b"\n").returncode == 0
    # the reader gone before the first line
    done = into_a_closed_pipe(*listing, *(["--data-dir", data] if listing[0][0] != "-" else []))
    assert (done.returncode, done.stderr) == (128 + signal.SIGPIPE, b"")  # as a tool killed by SIGPIPE


def test_ctrl_c_while_the_command_imports_its_modules_is_quiet(tmp_path):
    """Ctrl-C in the first fraction of a second, before ``main`` runs: a traceback of the import it stopped.  The
    console script (``pyproject.toml``) is run as pip's wrapper runs it, with the interrupt landing in the
    import of pydantic, which the command's modules need first."""
    with open(REPO / "pyproject.toml", "rb") as toml:
        module, function = tomllib.load(toml)["project"]["scripts"]["accesswatch"].split(":")
    script = (
        "import importlib, sys\n"
        "class CtrlC:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'pydantic':\n"
        "            raise KeyboardInterrupt\n"
        "sys.meta_path.insert(0, CtrlC())\n"
        f"sys.exit(getattr(importlib.import_module({module!r}), {function!r})())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, "alerts", "--data-dir", str(tmp_path)], capture_output=True, timeout=300
    )
    assert (done.returncode, done.stderr) == (130, b"")


def test_alerts_on_an_empty_data_dir_says_so(tmp_path):
    done = aw("alerts", "--data-dir", str(tmp_path / "empty"))
    assert done.returncode == 1 and b"no store at" in done.stderr


@pytest.mark.parametrize(
    "command", [("pages",), ("ack", "inc-x"), ("resolve", "inc-x"), ("reopen", "inc-x"), ("purge", "--dry-run")]
)
def test_commands_that_work_on_a_store_refuse_a_data_dir_without_one_and_make_none(tmp_path, command):
    # a mistyped data dir at 3 a.m. must not answer "no pages" from an empty store made on the spot
    done = aw(*command, "--data-dir", str(tmp_path / "typo"))
    assert done.returncode == 1 and b"no store at" in done.stderr and b"Traceback" not in done.stderr
    assert not (tmp_path / "typo").exists() or not any((tmp_path / "typo").iterdir())


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


# -- operator acceptance: what an operator's mistakes and habits must get -------------------------------
SAMPLE = orjson.dumps(event_dict()) + b"\n"


def _quiet_env(**variables: str) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "ACCESSWATCH_LOGGING__LEVEL": "warning", **variables}


def _events_in(data_dir) -> int:
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(f"file:{data_dir / 'accesswatch.db'}?mode=ro", uri=True)) as db:
        return db.execute("SELECT count(*) FROM events").fetchone()[0]


def _demo(data_dir, *extra: str) -> subprocess.CompletedProcess:
    env = _quiet_env(ACCESSWATCH_SOURCE__SIMULATOR__EMPLOYEES="20")  # one small day: seconds, not minutes
    return aw("demo", "--data-dir", str(data_dir), "--days", "1", "--speed", "10000000", *extra, env=env)


def test_demo_never_touches_a_store_it_did_not_make(tmp_path):
    real = tmp_path / "real"
    assert aw("replay", "-", "--data-dir", str(real), stdin=SAMPLE).returncode == 0
    for extra in ((), ("--keep",)):  # replacing it loses data; adding a simulated organisation spoils it
        done = _demo(real, *extra)
        assert done.returncode == 2 and b"did not make" in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and b"Traceback" not in done.stderr
        assert _events_in(real) == 1


def test_demo_replaces_its_own_store_and_no_other_in_its_place(tmp_path):
    demo = tmp_path / "demo"
    first = _demo(demo)
    assert first.returncode == 0, first.stderr
    events = _events_in(demo)
    again = _demo(demo)  # replaced, as documented: the same day stored again, not found as duplicates
    assert again.returncode == 0, again.stderr
    assert _events_in(demo) == events and b"duplicates 0" in again.stderr
    kept = _demo(demo, "--keep")
    assert kept.returncode == 0 and f"stored 0, duplicates {events}".encode() in kept.stderr
    # the demo's store removed by hand, a real one made in its place: the marker left behind vouches for nothing
    for name in ("accesswatch.db", "accesswatch.db-wal", "accesswatch.db-shm"):
        (demo / name).unlink(missing_ok=True)
    assert aw("replay", "-", "--data-dir", str(demo), stdin=SAMPLE).returncode == 0
    assert _demo(demo).returncode == 2 and _events_in(demo) == 1


def test_replay_reads_files_on_a_deployment_configured_for_kafka(tmp_path):
    env = _quiet_env(ACCESSWATCH_SOURCE__KIND="kafka")
    done = aw("replay", "-", "--data-dir", str(tmp_path / "data"), stdin=SAMPLE, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(b"read 1 line: stored 1,")  # one line, one line (not "1 lines")


def test_replay_reads_anything_readable_and_names_a_directory(tmp_path):
    data = str(tmp_path / "data")
    piped = aw("replay", "/dev/stdin", "--data-dir", data, stdin=SAMPLE)  # a pipe, as <(...) and FIFOs are
    assert piped.returncode == 0 and b"stored 1," in piped.stdout, piped.stderr
    (tmp_path / "adir").mkdir()
    directory = aw("replay", str(tmp_path / "adir"), "--data-dir", data)
    assert directory.returncode == 1 and directory.stderr.startswith(b"accesswatch: is a directory:")


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("replay into a data dir that is a file", 2),
        ("list the alerts of a data dir that is a file", 2),
        ("replay into a store that is not SQLite", 1),
        ("list the alerts of a store that is not SQLite", 1),
        ("simulate into a file", 2),
        ("evaluate against an events file", 2),
        ("evaluate against an empty object", 2),
        ("evaluate against a list", 2),
    ],
)
def test_operator_mistakes_get_one_line_and_no_traceback(tmp_path, case, status):
    afile, garbage = tmp_path / "afile", tmp_path / "garbage"
    afile.write_bytes(b"x")
    garbage.mkdir()
    (garbage / "accesswatch.db").write_bytes(b"garbage, not a database\n" * 100)
    (tmp_path / "events.jsonl").write_bytes(SAMPLE * 2)
    (tmp_path / "empty.json").write_bytes(b"{}")
    (tmp_path / "list.json").write_bytes(b"[]")
    data = str(tmp_path / "data")
    argv = {
        "replay into a data dir that is a file": ("replay", "-", "--data-dir", str(afile)),
        "list the alerts of a data dir that is a file": ("alerts", "--data-dir", str(afile / "sub")),
        "replay into a store that is not SQLite": ("replay", "-", "--data-dir", str(garbage)),
        "list the alerts of a store that is not SQLite": ("alerts", "--data-dir", str(garbage)),
        "simulate into a file": ("simulate", "--days", "1", "--employees", "20", "--out", str(afile)),
        "evaluate against an events file": ("evaluate", "--labels", str(tmp_path / "events.jsonl"), "--data-dir", data),
        "evaluate against an empty object": ("evaluate", "--labels", str(tmp_path / "empty.json"), "--data-dir", data),
        "evaluate against a list": ("evaluate", "--labels", str(tmp_path / "list.json"), "--data-dir", data),
    }[case]
    done = aw(*argv, stdin=SAMPLE, env=_quiet_env())
    assert done.returncode == status, done.stderr
    assert b"Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert (garbage / "accesswatch.db").read_bytes().startswith(b"garbage")  # left as it was


def test_dead_letters_give_back_their_exact_bytes(tmp_path):
    """Invalid bytes and text that spells them out read the same in ``raw``; ``raw_base64`` tells them apart."""
    import base64

    data = str(tmp_path / "data")
    lines = [b"\xff\xfe garbage", b"\\xff\\xfe garbage"]
    assert aw("replay", "-", "--data-dir", data, stdin=b"\n".join(lines) + b"\n").returncode == 0
    listing = aw("deadletters", "--data-dir", data, "--format", "jsonl")
    records = [json.loads(line) for line in listing.stdout.splitlines()]
    assert records[0]["raw"] == records[1]["raw"] == "\\xff\\xfe garbage"
    assert [base64.b64decode(r["raw_base64"]) for r in records] == lines


def test_run_refuses_files_its_source_would_ignore(tmp_path):
    # a short simulation: were the files ignored again, the run would end in seconds, not at the timeout
    env = _quiet_env(
        ACCESSWATCH_SOURCE__SIMULATOR__DAYS="1",
        ACCESSWATCH_SOURCE__SIMULATOR__EMPLOYEES="20",
        ACCESSWATCH_SOURCE__SIMULATOR__SPEED="10000000",
    )
    events = str(tmp_path / "events.jsonl")
    done = aw("run", "--source", "simulator", "--data-dir", str(tmp_path), events, env=env)
    assert done.returncode == 2 and b"--source file" in done.stderr and b"Traceback" not in done.stderr


def test_simulate_help_shows_its_defaults_and_no_store():
    help_text = aw("simulate", "--help").stdout
    assert b"(default: 30)" in help_text and b"(default: 7)" in help_text and b"(default: 240)" in help_text
    assert b"--data-dir" not in help_text


def test_deadletters_limit_is_explained_and_never_negative(tmp_path):
    assert b"--limit N" in aw("deadletters", "--help").stdout
    done = aw("deadletters", "--data-dir", str(tmp_path), "--limit", "-1")
    assert done.returncode == 2 and b"expected 0 or more" in done.stderr


def test_the_alert_table_keeps_its_columns_in_line_for_long_actor_ids():
    import io

    from accesswatch.cli import _alert_table
    from tests.factories import alert

    out = io.StringIO()
    _alert_table([alert(actor_id="emp-0001"), alert(actor_id="ptn-swift-logistics-01-eu-west")], out, SHANGHAI)
    header, *rows = out.getvalue().splitlines()
    score_ends = {header.index("score") + len("score")} | {row.index("5.00") + len("5.00") for row in rows}
    assert len(score_ends) == 1, out.getvalue()


def test_simulate_starts_on_the_day_asked(tmp_path):
    done = aw("simulate", "--days", "1", "--employees", "20", "--start", "2025-01-06", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    days = {json.loads(line)["timestamp"][:10] for line in (tmp_path / "events.jsonl").read_text().splitlines()}
    assert days and days <= {"2025-01-06", "2025-01-07"}  # shipping jitter may carry the last seconds over
    refused = aw("simulate", "--start", "6 Jan", "--out", str(tmp_path))
    assert refused.returncode == 2 and b"expected a date such as 2026-10-05" in refused.stderr


def test_send_reads_what_replay_reads_and_names_a_directory(tmp_path):
    # checked before Kafka is asked for anything: a wrong argument is one line, and no connection is tried
    done = aw("send", str(tmp_path), "--topic", "t", "--data-dir", str(tmp_path / "data"))
    assert done.returncode == 1 and f"is a directory: {tmp_path}".encode() in done.stderr
    missing = aw("send", str(tmp_path / "nope.jsonl"), "--topic", "t", "--data-dir", str(tmp_path / "data"))
    assert missing.returncode == 1 and b"no such file" in missing.stderr and b"Traceback" not in missing.stderr


def test_a_sqlite_file_of_another_program_is_not_taken_for_a_store(tmp_path):
    import sqlite3

    other = tmp_path / "accesswatch.db"
    with closing(sqlite3.connect(other)) as db:
        db.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount REAL)")
        db.commit()
    before = other.read_bytes()
    for args in (("replay", "-"), ("alerts",)):
        done = aw(*args, "--data-dir", str(tmp_path), stdin=orjson.dumps(event_dict()) + b"\n")
        assert done.returncode == 1 and b"not an accesswatch store" in done.stderr and b"(invoices)" in done.stderr
        assert b"Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1
    assert other.read_bytes() == before  # no tables of ours, and its journal mode left as it was


# -- a new user's findings: every failure one line, with the README's status --------------------------------------
def _closed_port() -> int:
    """A local port nothing listens on: bound, then let go."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _one_line(done: subprocess.CompletedProcess) -> str:
    assert b"Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    return done.stderr.decode().strip()


@pytest.mark.parametrize(
    ("flag", "value", "key"), [("--port", "70000", "dashboard.port"), ("--address", "999.1.1.1", "dashboard.address")]
)
def test_dashboard_flags_are_checked_as_the_configured_values_are(tmp_path, flag, value, key):
    done = aw("dashboard", flag, value, "--data-dir", str(tmp_path), env=_quiet_env())
    assert done.returncode == 2 and _one_line(done).startswith(f"configuration error: {key} = ")
    assert b"http://" not in done.stdout  # refused before anything is announced or started


def test_dashboard_on_a_port_in_use_says_so_before_announcing_it(tmp_path):
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        done = aw("dashboard", "--port", str(port), "--data-dir", str(tmp_path), env=_quiet_env())
    assert done.returncode == 1 and b"http://" not in done.stdout, done.stdout
    assert _one_line(done) == f"accesswatch dashboard: cannot listen on 127.0.0.1 port {port}: Address already in use"


@pytest.mark.parametrize("command", [("run", "--source", "kafka"), ("send", "-", "--topic", "t1")])
def test_kafka_out_of_reach_is_one_line_not_a_traceback(tmp_path, command):
    port = _closed_port()
    env = _quiet_env(
        ACCESSWATCH_SOURCE__KAFKA__BOOTSTRAP_SERVERS=f'["127.0.0.1:{port}"]',
        ACCESSWATCH_SOURCE__KAFKA__BOOTSTRAP_TIMEOUT="0.5s",  # not the default 30 s
        ACCESSWATCH_METRICS__PORT="0",
    )
    done = aw(*command, "--data-dir", str(tmp_path), stdin=SAMPLE, env=env)
    assert done.returncode == 1 and b"Traceback" not in done.stderr, done.stderr
    # kafka-python's own log lines (JSON, at warning and error) come before it
    last = done.stderr.decode().strip().splitlines()[-1]
    assert last.startswith(f"accesswatch: cannot reach Kafka at 127.0.0.1:{port}: no broker answered within 0.5 s")


@pytest.mark.parametrize("command", [("alerts",), ("run", "--source", "file", "-")])
def test_elasticsearch_out_of_reach_is_one_line_not_a_traceback(tmp_path, command):
    port = _closed_port()
    env = _quiet_env(
        ACCESSWATCH_STORE__KIND="elasticsearch",
        ACCESSWATCH_STORE__ELASTICSEARCH__HOSTS=f'["http://127.0.0.1:{port}"]',
        ACCESSWATCH_STORE__ELASTICSEARCH__RETRY_FOR="0.5s",  # not the default 120 s
        ACCESSWATCH_METRICS__PORT="0",
    )
    done = aw(*command, "--data-dir", str(tmp_path), stdin=SAMPLE, env=env)
    assert done.returncode == 1 and b"Traceback" not in done.stderr, done.stderr
    last = done.stderr.decode().strip().splitlines()[-1]
    assert last.startswith(f"accesswatch: cannot reach Elasticsearch at http://127.0.0.1:{port}: elasticsearch:")


@pytest.mark.parametrize("command", [("alerts",), ("pages",), ("ack", "inc-1", "--by", "ana")])
def test_a_mistyped_elasticsearch_prefix_is_no_store_and_makes_none(tmp_path, command):
    # as a mistyped data dir: it made the prefix's state and outbox indices and answered "no pages"
    from tests.fakes.es_server import FakeElasticsearch

    with FakeElasticsearch() as server:
        env = _quiet_env(
            ACCESSWATCH_STORE__KIND="elasticsearch",
            ACCESSWATCH_STORE__ELASTICSEARCH__HOSTS=f'["{server.url}"]',
            ACCESSWATCH_STORE__ELASTICSEARCH__PREFIX="typo",
        )
        done = aw(*command, "--data-dir", str(tmp_path), env=env)
        assert done.returncode == 1 and b"Traceback" not in done.stderr, done.stderr
        assert _one_line(done).startswith(f"accesswatch: no store at {server.url} with prefix 'typo'")
        assert not [name for name in server.cluster.indices if name.startswith("typo")]


def test_an_elasticsearch_host_without_its_scheme_is_a_settings_mistake(tmp_path):
    env = _quiet_env(ACCESSWATCH_STORE__KIND="elasticsearch", ACCESSWATCH_STORE__ELASTICSEARCH__HOSTS='["es:9200"]')
    done = aw("alerts", "--data-dir", str(tmp_path), env=env)
    assert done.returncode == 2 and b"Traceback" not in done.stderr
    assert "store.elasticsearch.hosts" in _one_line(done) and "'https://es:9200'" in _one_line(done)


def _production_env(tmp_path, **variables: str) -> dict[str, str]:
    """Kafka and Elasticsearch at ports nobody listens on, with SASL and a password: a connection would fail."""
    secret = tmp_path / "sasl-password"
    secret.write_text("KAFKA-s3cret\n")
    production = dict(
        ACCESSWATCH_SOURCE__KIND="kafka",
        ACCESSWATCH_SOURCE__KAFKA__BOOTSTRAP_SERVERS=f'["127.0.0.1:{_closed_port()}"]',
        ACCESSWATCH_SOURCE__KAFKA__BOOTSTRAP_TIMEOUT="0.5s",
        ACCESSWATCH_SOURCE__KAFKA__SECURITY_PROTOCOL="SASL_PLAINTEXT",
        ACCESSWATCH_SOURCE__KAFKA__SASL_USERNAME="aw",
        ACCESSWATCH_SOURCE__KAFKA__SASL_PASSWORD_FILE=str(secret),
        ACCESSWATCH_STORE__KIND="elasticsearch",
        ACCESSWATCH_STORE__ELASTICSEARCH__HOSTS=f'["http://127.0.0.1:{_closed_port()}"]',
        ACCESSWATCH_STORE__ELASTICSEARCH__RETRY_FOR="0.5s",
        ACCESSWATCH_STORE__ELASTICSEARCH__USERNAME="aw",
        ACCESSWATCH_STORE__ELASTICSEARCH__PASSWORD="ES-s3cret",
        ACCESSWATCH_DETECTORS__DORMANT__ENABLED="false",
    )
    return _quiet_env(**{**production, **variables})


def test_check_config_validates_what_run_would_without_connecting_or_making_a_store(tmp_path):
    # there was no command for CI or an init container: `alerts` served, and answered "no store" once it was good
    data = tmp_path / "data"
    done = aw("check-config", "--data-dir", str(data), env=_production_env(tmp_path))
    assert done.returncode == 0, done.stderr
    out = done.stdout.decode()
    assert out.startswith("accesswatch check-config: the configuration is valid; nothing was connected to\n")
    assert "  source: kafka, topics access-events at 127.0.0.1:" in out
    assert "SASL_PLAINTEXT as aw (SCRAM-SHA-512, password from a file)" in out
    assert "  store: elasticsearch at http://127.0.0.1:" in out and "user aw, password set" in out
    assert "  receivers: console, file; pages at medium or above\n" in out
    assert (
        "  detectors: bulk_read, " in out
        and "(off: dormant)" in out
        and "ACCESSWATCH_STORE__ELASTICSEARCH__PASSWORD" in out
    )
    assert "s3cret" not in out + done.stderr.decode() and not data.exists()


@pytest.mark.parametrize(
    ("variables", "line"),
    [
        (  # run read it only when the consumer was made, after the metrics server started
            {"ACCESSWATCH_SOURCE__KAFKA__SASL_PASSWORD_FILE": "/nonexistent/sasl"},
            "configuration error: source.kafka.sasl_password_file = '/nonexistent/sasl' (from"
            " ACCESSWATCH_SOURCE__KAFKA__SASL_PASSWORD_FILE): expected a readable file: there is none at that path",
        ),
        (  # a traceback ending in ssl.SSLError when the consumer was made; now when the configuration loads
            {
                "ACCESSWATCH_SOURCE__KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
                "ACCESSWATCH_SOURCE__KAFKA__SSL_CAFILE": "{ca}",
            },
            "configuration error: source.kafka.ssl_cafile = '{ca}' (from ACCESSWATCH_SOURCE__KAFKA__SSL_CAFILE):"
            " expected a file of CA certificates in PEM (NO_CERTIFICATE_OR_CRL_FOUND)",
        ),
        (  # dropped without a word: the connection went in clear
            {"ACCESSWATCH_SOURCE__KAFKA__SSL_CAFILE": "{certificate}"},
            "configuration error: source.kafka.ssl_cafile = '{certificate}' (from"
            " ACCESSWATCH_SOURCE__KAFKA__SSL_CAFILE): expected security_protocol SSL or SASL_SSL beside it, not"
            " SASL_PLAINTEXT: TLS settings (ssl_cafile) are used with those only",
        ),
        (  # "cannot reach Elasticsearch" after retry_for: the client loads its CA only when it connects
            {
                "ACCESSWATCH_STORE__ELASTICSEARCH__HOSTS": '["https://127.0.0.1:9200"]',
                "ACCESSWATCH_STORE__ELASTICSEARCH__CA_CERTS": "{ca}",
            },
            "configuration error: store.elasticsearch.ca_certs = '{ca}' (from"
            " ACCESSWATCH_STORE__ELASTICSEARCH__CA_CERTS): expected a file of CA certificates in PEM"
            " (NO_CERTIFICATE_OR_CRL_FOUND)",
        ),
        (  # each page failed as an SSLError, retried until it was given up
            {
                "ACCESSWATCH_NOTIFY__RECEIVERS": '["mail"]',
                "ACCESSWATCH_NOTIFY__SETTINGS__MAIL__KIND": "email",
                "ACCESSWATCH_NOTIFY__SETTINGS__MAIL__HOST": "smtp.internal",
                "ACCESSWATCH_NOTIFY__SETTINGS__MAIL__FROM": "accesswatch@example.com",
                "ACCESSWATCH_NOTIFY__SETTINGS__MAIL__TO": '["soc@example.com"]',
                "ACCESSWATCH_NOTIFY__SETTINGS__MAIL__CA_FILE": "{ca}",
            },
            "configuration error: notify.settings.mail.ca_file = '{ca}' (from"
            " ACCESSWATCH_NOTIFY__SETTINGS__MAIL__CA_FILE): expected a file of CA certificates in PEM"
            " (NO_CERTIFICATE_OR_CRL_FOUND)",
        ),
    ],
)
def test_check_config_tells_a_mistake_in_one_line_and_exit_2(tmp_path, variables, line):
    from tests.fakes.paging_receivers import self_signed_certificate

    ca = tmp_path / "ca.pem"
    ca.write_text("not a certificate\n")
    files = {"ca": ca, "certificate": self_signed_certificate(tmp_path)[0]}
    env = _production_env(tmp_path, **{name: value.format(**files) for name, value in variables.items()})
    done = aw("check-config", "--data-dir", str(tmp_path / "data"), env=env)
    assert done.returncode == 2 and done.stdout == b""
    assert done.stderr.decode() == line.format(**files) + "\n"


def test_verify_digest_of_a_file_that_is_no_digest_is_not_valid_in_one_line(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    public = tmp_path / "audit.pub"
    public.write_bytes(
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    for name, content in (("empty.json", b""), ("text.json", b"not json\n"), ("object.json", b'{"events": 3}')):
        (tmp_path / name).write_bytes(content)
        done = aw("verify-digest", str(tmp_path / name), "--public-key", str(public))
        assert done.returncode == 1  # NOT VALID's status: it verifies nothing
        assert _one_line(done).startswith(f"accesswatch verify-digest: not a digest file: {tmp_path / name} (")
    missing = aw("verify-digest", str(tmp_path / "nope.json"), "--public-key", str(public))
    assert (
        missing.returncode == 1
        and _one_line(missing) == f"accesswatch verify-digest: no such file: {tmp_path}/nope.json"
    )


def test_missing_files_are_named_as_replay_names_them(tmp_path):
    data = tmp_path / "data"
    labels = aw("evaluate", "--labels", str(tmp_path / "x"), "--data-dir", str(data))
    assert labels.returncode == 1 and _one_line(labels) == f"accesswatch evaluate: --labels: no such file: {tmp_path}/x"
    run = aw("run", "--source", "file", str(tmp_path / "x.jsonl"), "--data-dir", str(data), env=_quiet_env())
    assert run.returncode == 1 and _one_line(run) == f"accesswatch: no such file: {tmp_path}/x.jsonl"
    assert not data.exists()  # checked before the store is opened (or made)


def test_limits_take_the_same_counts_and_name_the_mistake(tmp_path):
    data = str(tmp_path)
    assert aw("replay", "-", "--data-dir", data, stdin=SAMPLE).returncode == 0
    words = aw("deadletters", "--limit", "abc", "--data-dir", data)
    assert words.returncode == 2 and b"--limit: expected a whole number, 0 or more, got 'abc'" in words.stderr
    assert b"_count" not in words.stderr
    for command in ("pages", "deadletters"):
        assert aw(command, "--limit", "-3", "--data-dir", data).returncode == 2
        counts = aw(command, "--limit", "0", "--data-dir", data)
        assert counts.returncode == 0 and len(counts.stdout.splitlines()) == 1, counts.stdout  # the counts alone


def test_wrong_times_of_export_digest_and_purge_are_wrong_arguments(tmp_path):
    key = tmp_path / "audit.key"
    key.write_bytes(b"never read")
    data = str(tmp_path)
    assert aw("replay", "-", "--data-dir", data, stdin=SAMPLE).returncode == 0
    backwards = aw("export-digest", "--from", "2026-11-02", "--to", "2026-11-01", "--key", str(key), "--data-dir", data)
    assert backwards.returncode == 2 and "is not after --from 2026-11-02" in _one_line(backwards)
    garbled = aw("export-digest", "--from", "junk", "--to", "2026-11-01", "--key", str(key), "--data-dir", data)
    assert garbled.returncode == 2 and _one_line(garbled).startswith("accesswatch export-digest: --from 'junk': ")
    purge = aw("purge", "--as-of", "junk", "--data-dir", data)
    assert purge.returncode == 2 and _one_line(purge).startswith("accesswatch purge: --as-of 'junk': ")


def test_a_purge_as_of_a_later_time_than_now_is_a_wrong_argument_dry_or_not(tmp_path):
    """It would delete events retention still keeps; a dry run says what the same command does: refuse."""
    data = str(tmp_path)
    assert aw("replay", "-", "--data-dir", data, stdin=SAMPLE).returncode == 0
    for dry in ([], ["--dry-run"]):
        later = aw("purge", *dry, "--as-of", "2999-01-01T00:00:00Z", "--data-dir", data)
        line, named = _one_line(later), "accesswatch purge: --as-of '2999-01-01T00:00:00Z'"
        assert later.returncode == 2 and later.stdout == b"", later
        assert line.startswith(f"{named}: expected a time not after now ("), line
        assert line.endswith("): a purge as of a later time would delete events retention still keeps"), line
    # a time read off a clock a few seconds ahead of this host's is within the tolerance
    ahead = (datetime.now(UTC) + timedelta(seconds=30)).isoformat()
    purge = aw("purge", "--dry-run", "--as-of", ahead, "--data-dir", data)
    assert purge.returncode == 0 and b"would purge 0 events" in purge.stdout, purge


@pytest.mark.parametrize(
    ("start", "end", "status", "said"),
    [
        ("2026-11-02T00:00:00Z", "2026-11-03T00:00:00Z", 0, None),
        ("2026-11-02T00:00:00Z", "2026-11-02T01:30:00Z", 2, "not the simulation replayed into this store"),
        ("2026-10-20T00:00:00Z", "2026-11-03T00:00:00Z", 0, "warning: the labels cover 2026-10-20 00:00 UTC"),
    ],
)
def test_evaluate_refuses_labels_of_another_simulation_and_warns_of_a_longer_one(tmp_path, start, end, status, said):
    events = [event_dict(timestamp="2026-11-02T01:00:00Z"), event_dict(timestamp="2026-11-02T03:00:00Z")]
    data = str(tmp_path / "data")
    assert (
        aw("replay", "-", "--data-dir", data, stdin=b"".join(orjson.dumps(e) + b"\n" for e in events)).returncode == 0
    )
    labels = tmp_path / "labels.json"
    labels.write_bytes(orjson.dumps({"start": start, "end": end, "scenarios": [], "benign": []}))
    done = aw("evaluate", "--labels", str(labels), "--data-dir", data, env=_quiet_env())
    assert done.returncode == status, done.stderr
    if said is None:
        assert done.stderr == b""
    else:
        assert said in _one_line(done) and "the store's events run from 2026-11-02 01:00 UTC" in _one_line(done)


def test_the_alert_table_shows_the_id_that_ack_takes():
    import io

    from accesswatch.cli import _alert_table
    from tests.factories import alert

    out = io.StringIO()
    alerts = [alert(), alert(actor_id="ptn-swift-logistics-01")]
    _alert_table(alerts, out, SHANGHAI)
    header, *rows = out.getvalue().splitlines()
    assert header.startswith("alert id ")
    assert [row.split()[0] for row in rows] == [a.alert_id for a in alerts]


def test_the_alert_table_shows_each_alerts_incident_and_its_status():
    """The incident id is what ``ack``, ``resolve``, ``reopen`` and ``pages --incident`` take (tester T5)."""
    import io

    from accesswatch.cli import _alert_table
    from models.alert import AlertStatus
    from tests.factories import alert

    out = io.StringIO()
    alerts = [alert(incident_id="inc-0123456789abcdef0123"), alert(status=AlertStatus.FALSE_POSITIVE)]
    alerts.append(alert(incident_id="inc-2"))
    _alert_table(alerts, out, SHANGHAI)
    header, *rows = out.getvalue().splitlines()
    assert header.split()[:5] == ["alert", "id", "incident", "id", "status"]
    assert [row.split()[1:3] for row in rows] == [
        ["inc-0123456789abcdef0123", "open"],
        ["-", "false_positive"],  # an alert of a store from before incidents
        ["inc-2", "open"],
    ]
    assert len({row.index("2026-11-02 09:00") for row in rows} | {header.index("window start")}) == 1


def test_the_alert_table_gives_the_window_start_in_the_organisations_clock_as_incidents_and_pages_do():
    """The one listing left in UTC beside ``incidents`` and ``pages`` in local time: an alert's 01:00 UTC read
    as the incident's 09:00 +08:00, an hour apart in Berlin's summer; ``jsonl`` keeps the contract's UTC."""
    import io

    from accesswatch.cli import _alert_table
    from tests.factories import alert

    for zone, shown in [(SHANGHAI, "2026-11-02 09:00 +08:00"), (ZoneInfo("Europe/Berlin"), "2026-11-02 02:00 +01:00")]:
        out = io.StringIO()
        _alert_table([alert(), alert(actor_id="ptn-swift-logistics-01")], out, zone)
        header, *rows = out.getvalue().splitlines()
        assert f" window start ({zone.key}) " in header and "UTC" not in header
        assert {row.index(f" {shown} ") for row in rows} == {header.index(" window start")}, out.getvalue()


def test_the_alert_table_of_a_replay_is_in_the_configured_zone_and_its_jsonl_in_utc(tmp_path):
    data = str(tmp_path / "data")
    # over bulk_read's absolute limit for an employee (50,000 records an hour), which judges without a baseline
    burst = [
        event_dict(timestamp=f"2026-11-02T01:{minute:02d}:00Z", record_count=30000, customer_ids=[f"c-{minute}"])
        for minute in range(2)
    ]
    assert aw("replay", "-", "--data-dir", data, stdin=b"".join(orjson.dumps(e) + b"\n" for e in burst)).returncode == 0
    table = aw("alerts", "--data-dir", data).stdout.decode()
    records = [json.loads(line) for line in aw("alerts", "--data-dir", data, "--format", "jsonl").stdout.splitlines()]
    assert records and table.startswith("alert id ") and "window start (Asia/Shanghai)" in table.splitlines()[0]
    for record in records:
        assert record["window_start"].endswith("Z")  # RFC 3339 UTC: the contract's alert record
        started = datetime.fromisoformat(record["window_start"]).astimezone(SHANGHAI)
        assert f" {started:%Y-%m-%d %H:%M} +08:00 " in table


def test_the_dead_letter_table_escapes_invalid_bytes_as_it_escapes_control_characters(tmp_path):
    data = str(tmp_path)
    assert aw("replay", "-", "--data-dir", data, stdin=b"\xff\xfe garbage\n\x01\tcontrol\n").returncode == 0
    table = aw("deadletters", "--data-dir", data).stdout.decode()
    assert "    '\\xff\\xfe garbage'\n" in table and "    '\\x01\\tcontrol'\n" in table, table


def test_the_demo_says_when_its_first_pages_can_come_and_which():
    from accesswatch.cli import _demo_pages
    from configs.loader import load_settings

    settings = load_settings(None, env={}, overrides={"source.kind": "simulator"})
    assert _demo_pages(settings) == (
        "the detectors learn for the first 7 simulated days (about 2.8 min at this speed), then pages at medium or"
        " above print below as they are raised"
    )
    short = load_settings(None, env={}, overrides={"source.simulator.days": 7})
    assert _demo_pages(short).startswith("no alerts: the detectors learn for the first 7 simulated days")


def test_the_package_license_is_an_spdx_expression():
    """setuptools deprecates the table form (``{ text = ... }``) from 77, and refuses it from 2027-02-18."""
    import tomllib
    from pathlib import Path

    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert pyproject["project"]["license"] == "Apache-2.0"
    assert "setuptools>=77" in pyproject["build-system"]["requires"]


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (("alerts", "--nope"), "accesswatch alerts: unrecognized arguments: --nope; see accesswatch alerts --help"),
        (
            ("alerts", "--format", "xml"),
            "accesswatch alerts: argument --format: invalid choice: 'xml' (choose from 'jsonl', 'table');"
            " see accesswatch alerts --help",
        ),
        (("alerts", "--min-severity"), "accesswatch alerts: argument --min-severity: expected one argument"),
        (("replay",), "accesswatch replay: the following arguments are required: FILE; see accesswatch replay --help"),
        (("replay", "a.jsonl", "--bogus"), "accesswatch replay: unrecognized arguments: --bogus;"),
        (("evaluate",), "accesswatch evaluate: the following arguments are required: --labels;"),
        (("--nope",), "accesswatch: unrecognized arguments: --nope; see accesswatch --help"),
        (("nope",), "accesswatch: argument COMMAND: invalid choice: 'nope' (choose from 'replay', 'alerts',"),
    ],
)
def test_a_mistake_in_the_arguments_is_one_line_pointing_at_help_and_exit_2(args, line, capsys):
    """argparse printed its usage, then the error: the product's rule is one line on a wrong value, exit 2."""
    from accesswatch import cli

    with pytest.raises(SystemExit) as exited:
        cli._parser().parse_command(list(args))
    captured = capsys.readouterr()
    assert exited.value.code == 2 and captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith(line), captured.err
    assert captured.err.rstrip().endswith("--help") and "usage:" not in captured.err


def test_the_command_itself_tells_a_mistake_in_one_line_and_keeps_its_help():
    done = aw("alerts", "--format", "xml", env=_quiet_env())
    assert done.returncode == 2 and done.stdout == b""
    assert _one_line(done).endswith("; see accesswatch alerts --help")
    helped = aw("alerts", "--help", env=_quiet_env())
    assert helped.returncode == 0 and helped.stdout.startswith(b"usage: accesswatch alerts [-h]")


# an actor id as tester T9 planted it: the contract sets no pattern on ids, so it is stored, and must be shown inert
HOSTILE_ID = "emp-0077\x1b[2K\r\x1b[32m[LOW     ]    all clear\x1b[0m\nforged line\u202egpj.exe\x85"


def _only_printable_lines(text: str) -> list[str]:
    lines = text.split("\n")
    assert lines[-1] == "" and all(line.isprintable() for line in lines), repr(text)
    return lines[:-1]


def test_the_alert_table_shows_control_characters_in_the_logs_words_as_escapes():
    """An ESC sequence would repaint a critical alert's line as a green "all clear", a CR or LF forge lines (T9)."""
    import io

    from accesswatch.cli import _alert_table
    from tests.factories import alert

    out = io.StringIO()
    _alert_table(
        [alert(actor_id=HOSTILE_ID, summary=f"Employee {HOSTILE_ID} read 5,000 records."), alert()], out, SHANGHAI
    )
    header, hostile, plain = _only_printable_lines(out.getvalue())
    shown = r"emp-0077\x1b[2K\r\x1b[32m[LOW     ]    all clear\x1b[0m\nforged line\u202egpj.exe\x85"
    assert hostile.count(shown) == 2  # the actor column and the summary
    assert len({row.index("5.00") for row in (hostile, plain)} | {header.index("score") + 1}) == 1  # in line


UTC_ZONE = ZoneInfo("UTC")


def test_the_pages_table_shows_control_characters_in_the_logs_words_as_escapes():
    import io

    from accesswatch import paging_cli
    from models.page import NotificationStatus, Page, PageKind
    from tests.paging_factories import finding, notification

    alert, incident = finding(actor_id=HOSTILE_ID)
    page = Page(kind=PageKind.TRIGGER, dedup_key=incident.incident_id, incident=incident, alert=alert)
    row = notification("mail", page, status=NotificationStatus.FAILED)
    row = row.model_copy(update={"last_error": f"refused {HOSTILE_ID}"})
    out = io.StringIO()
    paging_cli._table([row], {}, out, UTC_ZONE)
    _, line = _only_printable_lines(out.getvalue())
    assert line.count(r"emp-0077\x1b[2K\r\x1b[32m") == 2  # the actor column and the error quoting it


def test_the_pages_table_keeps_its_columns_in_line_beside_a_partners_long_actor_id():
    """Tester: 'ptn-blue-sky-travel-01 high         1': a 16-character actor column pushed the rest of the row out."""
    import io

    from accesswatch import paging_cli
    from models.page import Page, PageKind
    from tests.paging_factories import finding, notification

    rows = []
    for actor_id in ("emp-0001", "ptn-blue-sky-travel-01"):
        alert, incident = finding(actor_id=actor_id)
        page = Page(kind=PageKind.TRIGGER, dedup_key=incident.incident_id, incident=incident, alert=alert)
        rows.append(notification("slack", page))
    out = io.StringIO()
    paging_cli._table(rows, {}, out, UTC_ZONE)
    header, short, long = out.getvalue().splitlines()
    for column, cell in (("severity", "high"), ("next / done", "2026-11-02")):
        assert header.index(column) == short.index(cell, len("2026-11-02")) == long.index(cell, len("2026-11-02"))
    tries = header.index("tries") + len("tries")  # right-aligned: its figures end where its name does
    assert short[tries - 1 : tries + 2] == long[tries - 1 : tries + 2] == "0  "


def test_pages_gives_its_times_in_the_organisations_zone_named_as_incidents_and_incident_do():
    """Before, the table and the rests were in UTC beside ``incidents`` and ``incident`` in the local time: an
    on-call person read a page created at 02:00 for activity flagged at 10:00 the same moment."""
    import io
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from accesswatch import paging_cli
    from store.outbox import ReceiverRest
    from tests.paging_factories import NOW, notification

    shanghai = ZoneInfo("Asia/Shanghai")
    lease = NOW + timedelta(seconds=90)
    held = notification("file", due=NOW - timedelta(minutes=1)).model_copy(update={"leased_until": lease})
    out = io.StringIO()
    paging_cli._table([held], {}, out, shanghai, now=NOW)
    header, line = out.getvalue().splitlines()
    assert header.startswith("created (Asia/Shanghai) ") and " next / done (Asia/Shanghai) " in header
    assert "UTC" not in header + line
    assert line.startswith(f"{held.created_at.astimezone(shanghai):%Y-%m-%d %H:%M:%S} +08:00 ")
    assert "  2026-11-02 10:01:30 +08:00 " in line  # the lease's end, as its next try
    assert "taken for delivery until 2026-11-02 10:01:30 +08:00 (" in line
    assert header.index("next / done") == line.index("2026-11-02 10:01:30 +08:00")  # in line under its header
    rest = ReceiverRest(receiver="pagerduty", until=lease, failures=2, error="HTTP 503", at=NOW)
    out = io.StringIO()
    paging_cli._resting({"pagerduty": rest}, NOW, out, shanghai)
    assert out.getvalue().startswith("pagerduty rests until 2026-11-02 10:01:30 +08:00, backing off after 2 ")


def test_the_pages_table_and_jsonl_say_until_when_a_page_is_taken_for_delivery():
    """A process stopped hard (kill -9) leaves its page under a lease: its next try is the lease's end, and why."""
    import io
    from datetime import timedelta

    from accesswatch import paging_cli
    from tests.paging_factories import NOW, notification

    lease = NOW + timedelta(seconds=90)
    held = notification("file", due=NOW - timedelta(minutes=1)).model_copy(update={"leased_until": lease})
    out = io.StringIO()
    paging_cli._table([held], {}, out, UTC_ZONE, now=NOW)
    _, line = out.getvalue().splitlines()
    assert f"  {lease:%Y-%m-%d %H:%M:%S} +00:00 " in line  # not the due time, in the past
    assert f"taken for delivery until {lease:%Y-%m-%d %H:%M:%S} +00:00" in line
    record = paging_cli._record(held, {}, NOW)
    assert record["leased_until"] == record["next_try_at"] == "2026-11-02T02:01:30.000Z"
    # a lease run out (its process died long ago) holds nothing: not shown
    later = NOW + timedelta(hours=1)
    assert paging_cli._record(held, {}, later)["leased_until"] is None
    out = io.StringIO()
    paging_cli._table([held], {}, out, UTC_ZONE, now=later)
    assert "taken for delivery" not in out.getvalue()
