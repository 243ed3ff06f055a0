"""The detectors in a process of their own: what they raise and learn is what they would in place.

A replay moves the detection engine to a worker process (the second core)
once ``ingest.detection_process_after`` events are stored.  These runs move
it early, so a small simulation crosses every path: batches in flight,
checkpoints while it works, the windows closed at the end, the engine
restored from what the worker saved; and a worker killed mid-run.
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

import orjson
import pytest

from accesswatch import app
from configs.loader import load_settings
from detectors.state_codec import decode_state, encode_state
from ingest.detection_worker import DetectionWorkerDied
from ingest.simulator import SimulationSettings, write_simulation
from ingest.sources import FileSource
from models.fast_event import validate_event
from store.base import AlertQuery, IncidentQuery
from tests import factories as f
from tests.engine_state import unordered


@pytest.fixture(scope="module")
def fortnight(tmp_path_factory):
    root = tmp_path_factory.mktemp("fortnight")
    write_simulation(root, SimulationSettings(seed=11, days=16, employees=40))
    return root / "events.jsonl"


def _settings(data_dir: Path, **ingest):
    overrides = {"data_dir": str(data_dir), "ingest.batch_lines": 4000, "store.sqlite.transaction_events": 4000}
    return load_settings(env={}, overrides=overrides | {f"ingest.{key}": value for key, value in ingest.items()})


def _outcome(settings):
    """What a replay left in the store: alerts, incidents, and the detector checkpoint."""
    with app.open_store(settings, readonly=True) as store:
        alerts = sorted(a.model_dump_json() for a in store.query_alerts(AlertQuery(limit=100_000)))
        incidents = sorted(i.model_dump_json() for i in store.query_incidents(IncidentQuery(limit=100_000)))
        checkpoint = store.load_checkpoint("detectors")
    return alerts, incidents, checkpoint.seq, unordered(decode_state(checkpoint.state))


def _replay(settings, path: Path, source=None):
    with app.open_store(settings) as store:
        pipeline = app.build_pipeline(settings, store, notifier=None)
        return pipeline.run(source or FileSource([str(path)], 1 << 20), close_windows=True)


@pytest.fixture(scope="module")
def in_place(fortnight, tmp_path_factory):
    settings = _settings(tmp_path_factory.mktemp("in-place"), detection_process=False, checkpoint_events=15_000)
    report = _replay(settings, fortnight)
    outcome = _outcome(settings)
    assert report.alerts_raised and outcome[0], "the fortnight has alerts to compare"
    return outcome


@pytest.mark.parametrize("after", [0, 20_000])
def test_a_worker_process_raises_and_learns_what_the_engine_does_in_place(fortnight, in_place, tmp_path, after):
    settings = _settings(tmp_path, detection_process_after=after, checkpoint_events=15_000)
    report = _replay(settings, fortnight)
    assert report.balanced and report.stored == report.lines_read
    alerts, incidents, seq, state = _outcome(settings)
    assert alerts == in_place[0]
    assert incidents == in_place[1]
    assert seq == in_place[2] == report.stored
    assert state == in_place[3]


@pytest.mark.parametrize("in_worker", [False, True], ids=["engine-in-place", "engine-in-worker"])
def test_a_replay_reports_where_its_time_went(fortnight, tmp_path, caplog, in_worker):
    settings = _settings(tmp_path, detection_process=in_worker, detection_process_after=0)
    with caplog.at_level(logging.DEBUG, logger="ingest.pipeline"):
        stages = _replay(settings, fortnight).stages
    assert stages.reading > 0 and stages.parsing > 0 and stages.judging > 0 and stages.waiting_for_store >= 0
    assert 0 < stages.store_cpu <= stages.store_busy + 0.05  # a thread is on a CPU at most as long as it works
    assert (stages.detection_busy > 0) is in_worker  # the worker's own figure; in place, judging says it all
    # each thread's CPU: the main thread's includes judging in place; the worker's, its start and imports
    assert stages.main_cpu > 0 and (stages.detection_cpu > 0) is in_worker
    (logged,) = [r for r in caplog.records if r.getMessage() == "where the run's time went, in seconds"]
    assert logged.store_busy == round(stages.store_busy, 3) and logged.detection_busy == round(stages.detection_busy, 3)
    assert logged.main_cpu == round(stages.main_cpu, 3) and logged.detection_cpu == round(stages.detection_cpu, 3)


def test_the_engine_asked_for_after_the_run_is_the_one_the_worker_ended_with(fortnight, in_place, tmp_path):
    settings = _settings(tmp_path, detection_process_after=0, checkpoint_events=15_000)
    with app.open_store(settings) as store:
        pipeline = app.build_pipeline(settings, store, notifier=None)
        pipeline.run(FileSource([str(fortnight)], 1 << 20), close_windows=True)
        engine = pipeline.engine  # never brought back from the worker: restored from its checkpoint
        assert any(detector.name == "isolation_forest" and detector.models["short"] for detector in engine.detectors)
        state = decode_state(encode_state(engine.to_state()))
    assert unordered(state) == in_place[3]


class _KillTheWorker(FileSource):
    """A file whose reading kills the detection worker after ``batches`` batches, as an OOM killer would."""

    def __init__(self, path: Path, batches: int) -> None:
        super().__init__([str(path)], 1 << 20)
        self.remaining = batches

    def batches(self, max_records):
        for batch in super().batches(max_records):
            yield batch
            self.remaining -= 1
            if self.remaining == 0:
                workers = list(_detection_workers())
                assert workers, "the worker runs"
                for pid in workers:
                    os.kill(pid, signal.SIGKILL)


def _detection_workers():
    """The pids of this process's detection workers (Linux: /proc)."""
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        for pid in (task / "children").read_text().split():
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if b"ingest.detection_worker" in command:
                yield int(pid)


def test_a_worker_killed_mid_run_loses_nothing_that_was_stored(fortnight, in_place, tmp_path):
    settings = _settings(tmp_path, detection_process_after=0, checkpoint_events=15_000)
    with pytest.raises(DetectionWorkerDied):
        _replay(settings, fortnight, source=_KillTheWorker(fortnight, batches=8))
    with app.open_store(settings, readonly=True) as store:
        stored, checkpoint = store.stats().events, store.load_checkpoint("detectors")
    assert checkpoint is not None and 0 < checkpoint.seq < stored  # the state it lost is judged again
    report = _replay(settings, fortnight)  # the restart: the whole file again
    assert report.recovered == stored - checkpoint.seq
    alerts, incidents, seq, state = _outcome(settings)
    assert (alerts, incidents, seq, state) == in_place


def _checkpoints_as_saved(settings, path: Path) -> list[tuple[int, int, dict]]:
    """Every checkpoint a replay saves: its position, the alerts stored by then, and its state."""
    saved = []
    with app.open_store(settings) as store:
        save = store.save_checkpoint

        def recording(name: str, seq: int, state: bytes) -> None:
            published = len(store.query_alerts(AlertQuery(limit=100_000)))
            saved.append((seq, published, unordered(decode_state(state))))
            save(name, seq, state)

        store.save_checkpoint = recording  # type: ignore[method-assign]
        app.build_pipeline(settings, store, notifier=None).run(FileSource([str(path)], 1 << 20), close_windows=True)
    return saved


def test_a_checkpoint_asked_of_the_worker_mid_run_is_the_one_saved_in_place_at_that_position(fortnight, tmp_path):
    # the worker is asked for its state without the pipeline waiting; what comes back, and when it is saved
    # (after the alerts of every batch it covers are published), must be what the engine in place saves
    in_place = _checkpoints_as_saved(
        _settings(tmp_path / "a", detection_process=False, checkpoint_events=9_000), fortnight
    )
    in_worker = _checkpoints_as_saved(
        _settings(tmp_path / "b", detection_process_after=0, checkpoint_events=9_000), fortnight
    )
    assert len(in_place) >= 4, "several checkpoints mid-run"
    assert [(seq, published) for seq, published, _ in in_worker] == [(seq, published) for seq, published, _ in in_place]
    assert [state for *_, state in in_worker] == [state for *_, state in in_place]


def test_a_batch_msgpack_cannot_carry_goes_as_its_lines_and_is_judged_alike(settings):
    import json
    import pickle

    from ingest.detection_worker import DetectionWorker
    from tests import factories as f

    lines = [orjson.dumps(f.event_dict(at=f.at(hours=h), record_count=10 * h + 1)) for h in range(30)]
    lines[5] = json.dumps({**f.event_dict(at=f.at(hours=5)), "extra": {"n": 2**70}}).encode()  # past 64 bits
    batches = [[f.incoming(settings)._replace(raw=raw, event=validate_event(raw)) for raw in lines[:10]],
               [f.incoming(settings)._replace(raw=raw, event=validate_event(raw)) for raw in lines[10:]]]  # fmt: skip
    in_place = app.build_engine(settings)
    expected = [in_place.process([i.event for i in batch]) for batch in batches]
    worker = DetectionWorker(pickle.dumps(app.build_engine(settings)))
    try:
        answers = [answer for batch in batches for answer, _ in worker.submit(batch, None)] + [
            answer for answer, _ in worker.drain()
        ]
        state = decode_state(worker.state())
    finally:
        worker.close()
    assert answers == expected
    assert unordered(state) == unordered(decode_state(encode_state(in_place.to_state())))


def test_the_pipes_to_and_from_the_worker_hold_a_large_piece_of_a_batch(settings):
    """Each piece of a batch costs the worker's busy process a turn of its interpreter lock: few pieces."""
    import fcntl
    import pickle

    from ingest.detection_worker import PIPE_BYTES, DetectionWorker, widen_pipe

    if not hasattr(fcntl, "F_GETPIPE_SZ") or int(Path("/proc/sys/fs/pipe-max-size").read_text()) < PIPE_BYTES:
        pytest.skip("pipes cannot be widened here (not Linux, or a lower pipe-max-size)")
    read_end, write_end = os.pipe()
    try:
        assert widen_pipe(write_end) == PIPE_BYTES
        os.set_blocking(write_end, False)
        assert os.write(write_end, bytes(PIPE_BYTES)) == PIPE_BYTES  # a whole mebibyte, nobody reading yet
    finally:
        os.close(read_end)
        os.close(write_end)
    worker = DetectionWorker(pickle.dumps(app.build_engine(settings)))
    try:
        for connection in (worker._to, worker._from):
            assert fcntl.fcntl(connection.fileno(), fcntl.F_GETPIPE_SZ) == PIPE_BYTES
    finally:
        worker.close()


def test_a_worker_started_ahead_imports_its_detectors_heavy_modules_before_it_has_an_engine(settings):
    import pickle
    import time

    from ingest.detection_worker import DetectionWorker

    maps = Path("/proc/self/maps")
    if not maps.exists():
        pytest.skip("reads the worker's memory map from /proc")
    engine = app.build_engine(settings)
    imports = sorted({module for detector in engine.detectors for module in detector.imports})
    assert imports == ["sklearn.ensemble"]  # the isolation forest's, on the first fit otherwise
    worker = DetectionWorker(imports=[*imports, "no_such_module_anywhere"])  # one it cannot: a warning
    try:
        mapped = Path(f"/proc/{worker._process.pid}/maps")
        deadline = time.monotonic() + 120  # liveness: it must happen at all
        while "sklearn/tree/_tree" not in mapped.read_text():
            assert time.monotonic() < deadline, "scikit-learn's trees were never loaded in the worker"
            time.sleep(0.05)
        worker.adopt(pickle.dumps(engine))
        batch = [f.incoming(settings, at=f.at(hours=h)) for h in range(3)]
        assert [answer for answer, _ in worker.submit(batch, "ctx")] == []
        ((output, context),) = worker.drain()
        assert context == "ctx" and output == app.build_engine(settings).process([i.event for i in batch])
    finally:
        worker.close()


def test_a_replay_ending_before_its_worker_is_due_discards_the_one_started_ahead(fortnight, tmp_path):
    import subprocess

    # 10,000 of the fortnight's events in place (due at 20,000): one started ahead past 5,000, never used
    settings = _settings(tmp_path, detection_process_after=20_000, checkpoint_events=15_000)
    head = tmp_path / "head.jsonl"
    head.write_bytes(b"".join(fortnight.read_bytes().splitlines(keepends=True)[:10_000]))
    started = []
    real = subprocess.Popen

    def watched(args, *rest, **kwargs):
        process = real(args, *rest, **kwargs)
        if "ingest.detection_worker" in args:
            started.append(process)
        return process

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(subprocess, "Popen", watched)
        report = _replay(settings, head)
    assert report.stored == 10_000 and report.stages.detection_busy == 0.0  # judged here
    assert len(started) == 1 and started[0].poll() is not None  # it is gone, not left running


def test_a_batch_cut_short_by_the_pipeline_going_away_is_not_judged_as_a_shorter_batch():
    """A batch's bytes follow its size (``_send_batch``): a pipe closed mid-batch is the pipeline gone."""
    import io

    from ingest.detection_worker import _read_batch

    read_end, write_end = os.pipe()
    with io.FileIO(read_end, "rb") as raw:
        os.write(write_end, b"0123456789")
        assert _read_batch(raw, 4) == bytearray(b"0123")  # exactly its size: the rest is the next message's
        os.close(write_end)
        with pytest.raises(EOFError):
            _read_batch(raw, 10)


@pytest.mark.parametrize("asked", ["busy", "state"])
def test_a_worker_whose_pipeline_went_away_ends_quietly(settings, asked):
    """Ctrl-C: the pipeline closes its ends with requests still in line; their answers have nowhere to go.

    The pipeline says so in one line itself; a traceback from the worker would only bury it.
    """
    import pickle
    import subprocess
    import sys
    from multiprocessing.connection import Connection

    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(path for path in sys.path if path)}
    process = subprocess.Popen(
        [sys.executable, "-m", "ingest.detection_worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment,
    )
    process.stdout.close()  # the pipeline stopped reading answers
    requests = Connection(os.dup(process.stdin.fileno()), readable=False)
    process.stdin.close()
    requests.send(("engine", pickle.dumps(app.build_engine(settings))))
    requests.send((asked, None))
    requests.close()  # and went away
    err = process.stderr.read()
    process.stderr.close()
    assert (process.wait(), err.decode()) == (0, "")


def test_a_terminal_s_ctrl_c_does_not_reach_the_worker():
    """A terminal signals its whole foreground process group; the worker, still importing, could not ignore it."""
    from ingest.detection_worker import DetectionWorker

    worker = DetectionWorker()
    try:
        assert os.getpgid(worker._process.pid) != os.getpgrp()
    finally:
        worker.discard()
