"""The one pipeline, end to end: simulated organisation in, alerts out, in event time."""

from __future__ import annotations

import sqlite3
import threading
from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from accesswatch import app
from accesswatch.evaluate import evaluate
from configs.loader import load_settings
from ingest.simulated_source import SimulatorSource
from ingest.simulator import SimulationSettings, write_simulation
from ingest.sources import FileSource
from models.alert import Severity
from store.base import AlertQuery
from store.sqlite import SqliteStore
from tests import factories
from tests.factories import T0, event_dict


def _settings(data_dir: Path, **overrides):
    return load_settings(env={}, overrides={"data_dir": str(data_dir), **overrides})


def _replay(settings, *paths: Path, pipeline_hook=None):
    with app.open_store(settings) as store:
        pipeline = app.build_pipeline(settings, store, notifier=None)
        if pipeline_hook:
            pipeline_hook(pipeline)
        report = pipeline.run(FileSource([str(p) for p in paths], settings.ingest.max_line_bytes), close_windows=True)
        alerts = store.query_alerts(AlertQuery(limit=100_000))
        incidents = store.stats()
    return report, alerts, incidents


def _alert_keys(alerts):
    return sorted((a.alert_id, a.severity.value, a.window_end.isoformat(), a.summary) for a in alerts)


@pytest.fixture(scope="module")
def month(tmp_path_factory):
    """The simulated month with its labels, replayed once."""
    root = tmp_path_factory.mktemp("month")
    write_simulation(root / "sim", SimulationSettings(seed=7, days=30))
    settings = _settings(root / "data")
    report, alerts, _ = _replay(settings, root / "sim" / "events.jsonl")
    labels = orjson.loads((root / "sim" / "labels.json").read_bytes())
    return settings, report, alerts, labels, root


@pytest.mark.slow
def test_a_month_every_scenario_is_alerted_and_benign_bulk_work_is_not_high(month):
    settings, report, alerts, labels, _ = month
    assert report.balanced and report.dead_letters == 0 and report.stored == report.lines_read
    with SqliteStore(Path(settings.data_dir) / "accesswatch.db") as store:
        active = store.active_actor_days(settings.organisation.tz)
    by_floor = {r.floor: r for r in evaluate(labels, alerts, active, settings.organisation.tz)}
    medium, high = by_floor[Severity.MEDIUM], by_floor[Severity.HIGH]
    missed = [s.kind for s in medium.scenarios if not s.detected]
    assert not missed, f"scenarios not alerted at medium or above: {missed}"
    assert len(medium.scenarios) == 7
    # benign periodic bulk work, new hires and the busy day: never high
    assert high.benign_alerts == {}, high.benign_examples
    assert medium.false_per_1000 <= 3.0 and high.false_per_1000 <= 1.0


@pytest.mark.slow
def test_replaying_the_same_month_again_stores_and_raises_nothing(month):
    settings, _, alerts, _, root = month
    report, again, _ = _replay(settings, root / "sim" / "events.jsonl")
    assert report.stored == 0 and report.duplicates == report.lines_read
    assert report.alerts_raised == 0 and report.alerts_updated == 0  # judged again unchanged: no update
    assert _alert_keys(again) == _alert_keys(alerts)


@pytest.fixture(scope="module")
def fortnight(tmp_path_factory):
    root = tmp_path_factory.mktemp("fortnight")
    write_simulation(root, SimulationSettings(seed=11, days=16, employees=40))
    return root / "events.jsonl"


def test_how_the_stream_is_cut_into_batches_changes_no_alert(fortnight, tmp_path):
    _, large, _ = _replay(_settings(tmp_path / "a", **{"ingest.batch_lines": 50_000}), fortnight)
    small_settings = _settings(tmp_path / "b", **{"ingest.batch_lines": 777, "store.sqlite.transaction_events": 777})
    _, small, _ = _replay(small_settings, fortnight)
    assert large, "the fortnight has alerts to compare"
    assert _alert_keys(small) == _alert_keys(large)


def test_a_log_split_into_a_file_per_system_is_judged_as_the_one_stream_it_was(fortnight, tmp_path):
    # each system's export in time order, given to one replay: merged by event time (ingest.merge); read one
    # after another, every file after the first fell behind the watermark, stored and never judged
    report, whole, _ = _replay(_settings(tmp_path / "whole"), fortnight)
    by_system: dict[str, list[bytes]] = {}
    for line in fortnight.read_bytes().splitlines(keepends=True):
        by_system.setdefault(orjson.loads(line)["resource"]["system"], []).append(line)
    assert len(by_system) > 3
    paths = [tmp_path / f"{system}.jsonl" for system in sorted(by_system)]
    broken = len(by_system[sorted(by_system)[1]]) // 2  # a malformed line in the middle of the second file
    by_system[sorted(by_system)[1]].insert(broken, b"{not an event\n")
    for path in paths:
        path.write_bytes(b"".join(by_system[path.stem]))
    settings = _settings(tmp_path / "split")
    split_report, split, _ = _replay(settings, *paths)
    assert split_report.late_events == 0 and split_report.dead_letters == 1
    assert split_report.stored == report.stored == split_report.lines_read - 1
    assert whole, "the fortnight has alerts to compare"
    assert _alert_keys(split) == _alert_keys(whole)
    assert sorted((a.alert_id, a.revision) for a in split) == sorted((a.alert_id, a.revision) for a in whole)
    with SqliteStore(Path(settings.data_dir) / "accesswatch.db") as store:
        letters = store.dead_letters(limit=10)
    assert [(d.source, d.position, d.raw) for d in letters] == [
        (f"file:{paths[1].resolve()}", f"line {broken + 1}", b"{not an event")
    ]


def test_a_crash_before_the_checkpoint_loses_and_doubles_nothing(fortnight, tmp_path):
    _, uninterrupted, _ = _replay(_settings(tmp_path / "whole"), fortnight)

    settings = _settings(tmp_path / "crashed", **{"ingest.checkpoint_events": 20_000})
    lines = fortnight.read_bytes().splitlines(keepends=True)
    first_part = tmp_path / "part1.jsonl"
    first_part.write_bytes(b"".join(lines[: len(lines) * 2 // 3]))
    with app.open_store(settings) as store:
        pipeline = app.build_pipeline(settings, store, notifier=None)
        pipeline.recover()
        for records in FileSource([str(first_part)], 1 << 20).batches(5000):
            pipeline.ingest(records)  # events stored; the last checkpoint is behind: a crash now
        assert store.load_checkpoint("detectors").seq < store.stats().events
    # restart: the whole file again (the producer re-sends), through a new process' pipeline
    report, recovered, _ = _replay(settings, fortnight)
    assert report.recovered > 0
    assert _alert_keys(recovered) == _alert_keys(uninterrupted)
    with SqliteStore(Path(settings.data_dir) / "accesswatch.db") as store:
        assert store.stats().events == len(lines)


@pytest.mark.parametrize("in_worker", [False, True], ids=["engine-in-place", "engine-in-worker"])
def test_alerts_that_fail_to_be_stored_stop_the_replay_and_no_state_is_saved_past_them(fortnight, tmp_path, in_worker):
    # A replay stores alerts and checkpoints on the store writer's thread, queued behind its writes
    # (Pipeline._in_store_order): a failure there must stop the run, and nothing queued after it
    # (a checkpoint above all) may be done, or a restart would never raise the alerts that were lost.
    _, uninterrupted, _ = _replay(_settings(tmp_path / "whole"), fortnight)
    batch = {"ingest.batch_lines": 2000, "store.sqlite.transaction_events": 2000, "ingest.checkpoint_events": 2000}
    worker = {"ingest.detection_process": in_worker, "ingest.detection_process_after": 0}
    settings = _settings(tmp_path / "failed", **batch, **worker)
    events: list[str] = []
    with app.open_store(settings) as store:
        upsert, save = store.upsert_alerts, store.save_checkpoint

        def failing(alerts, incidents=()):
            events.append("alerts")
            if events.count("alerts") == 3:
                events.append("failed")
                raise sqlite3.OperationalError("disk I/O error")
            upsert(alerts, incidents)

        def saving(name, seq, state):
            events.append("checkpoint")
            save(name, seq, state)

        store.upsert_alerts, store.save_checkpoint = failing, saving  # type: ignore[method-assign]
        pipeline = app.build_pipeline(settings, store, notifier=None)
        with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
            pipeline.run(FileSource([str(fortnight)], 1 << 20), close_windows=True)
        checkpoint = store.load_checkpoint("detectors")
        stored = store.stats().events
        if not in_worker:  # its engine has judged past that checkpoint: it must not judge again
            with pytest.raises(RuntimeError, match="past the last checkpoint"):
                pipeline.run(FileSource([str(fortnight)], 1 << 20), close_windows=True)
    assert "failed" in events and "checkpoint" in events[: events.index("failed")], "it failed mid-run"
    assert "checkpoint" not in events[events.index("failed") :]
    assert checkpoint.seq < stored
    report, recovered, _ = _replay(settings, fortnight)  # the restart: what was lost is raised, nothing twice
    assert report.recovered == stored - checkpoint.seq
    assert _alert_keys(recovered) == _alert_keys(uninterrupted)


def test_a_replay_stores_its_alerts_on_the_writers_thread_and_a_live_run_as_it_goes(fortnight, tmp_path):
    # A replay's own connection used to wait for the writer's transactions in SQLite's busy handler,
    # asleep in steps up to 100 ms (a third of a replay's main thread); a live run stores as it judges.
    def threads_storing_alerts(settings, source):
        names = set()
        with app.open_store(settings) as store:
            upsert = store.upsert_alerts

            def recording(alerts, incidents=()):
                names.add(threading.current_thread().name.partition("_")[0])
                upsert(alerts, incidents)

            store.upsert_alerts = recording  # type: ignore[method-assign]
            app.build_pipeline(settings, store, notifier=None).run(source, close_windows=True)
        return names

    batches = {"ingest.batch_lines": 2000, "store.sqlite.transaction_events": 2000}
    replayed = threads_storing_alerts(_settings(tmp_path / "replay", **batches), FileSource([str(fortnight)], 1 << 20))
    # the windows still open at the end are closed once the writer's thread is done: those alerts are stored here
    assert replayed == {"store-writer", "MainThread"}
    live = SimulatorSource(SimulationSettings(seed=5, days=10, employees=20), speed=float("inf"))
    assert threads_storing_alerts(_settings(tmp_path / "live", **batches), live) == {"MainThread"}


def test_the_live_simulator_source_gives_the_alerts_of_a_replay(tmp_path):
    simulation = SimulationSettings(seed=5, days=14, employees=30)
    write_simulation(tmp_path / "sim", simulation)
    _, replayed, _ = _replay(_settings(tmp_path / "replay"), tmp_path / "sim" / "events.jsonl")
    settings = _settings(tmp_path / "live")
    with app.open_store(settings) as store:
        pipeline = app.build_pipeline(settings, store, notifier=None)
        pipeline.run(SimulatorSource(simulation, speed=float("inf")), close_windows=True)
        live = store.query_alerts(AlertQuery(limit=100_000))
    assert replayed and _alert_keys(live) == _alert_keys(replayed)


def test_late_events_are_stored_counted_and_not_judged(tmp_path):
    settings = _settings(tmp_path)
    lines = [
        event_dict(timestamp="2026-11-02T01:00:00Z"),
        event_dict(timestamp="2026-11-02T05:00:00Z"),  # the watermark passes 02:00: 01:xx is closed
        event_dict(timestamp="2026-11-02T01:30:00Z"),  # late: its hour has closed
        event_dict(timestamp="2026-11-02T04:55:00Z"),  # within the allowed lateness: not late
    ]
    path = tmp_path / "late.jsonl"
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    report, _, stats = _replay(settings, path)
    assert report.late_events == 1 and report.stored == 4 and stats.events == 4


def test_every_line_is_accounted_for(tmp_path):
    settings = _settings(tmp_path)
    good = [orjson.dumps(event_dict()) for _ in range(3)]
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join([good[0], b"{broken", good[1], good[0], b"\xff", good[2]]) + b"\n")
    report, _, stats = _replay(settings, path)
    assert (report.lines_read, report.stored, report.duplicates, report.dead_letters) == (6, 3, 1, 2)
    assert report.balanced and stats.dead_letters == 2


def test_publishing_a_batch_reads_the_store_in_a_few_statements_however_many_alerts_it_holds(tmp_path):
    # During a replay a batch's alerts are published on the store writer's thread, where each statement lets
    # go of the interpreter lock and may wait out the parser's switch interval to take it back: one look-up
    # an alert (its stored revision, its actor's incident, that incident's alerts) cost seconds at 1M events.
    settings = _settings(tmp_path)

    def batch(actors: int, hour: int) -> list:
        return [
            factories.alert(
                actor_id=f"emp-{n:04d}",
                window_start=T0 + timedelta(hours=hour),
                window_end=T0 + timedelta(hours=hour + 1),
            )
            for n in range(actors)
        ]

    def statements(store: SqliteStore, alerts: list) -> tuple[list[str], list[str]]:
        """The reads and the writes that publishing ``alerts`` runs."""
        run: list[str] = []
        store._db.set_trace_callback(run.append)
        try:
            pipeline._publish(alerts)
        finally:
            store._db.set_trace_callback(None)
        reads = [s for s in run if s.startswith("SELECT")]
        writes = [s for s in run if s.startswith("INSERT")]
        return reads, writes

    with app.open_store(settings) as store:
        pipeline = app.build_pipeline(settings, store, notifier=None)
        pipeline._publish(batch(40, 0))
        (few, _), (many, writes) = statements(store, batch(3, 1)), statements(store, batch(40, 2))
        assert len(many) == len(few) <= 5, many
        # the alerts and the incidents each go in a statement per power of two (store.sqlite_bulk)
        assert len(writes) <= 2 * (40).bit_length(), writes
        # and what was read was used: each actor's alerts make one incident
        for n in (0, 2, 39):
            incident = store.latest_incident(f"emp-{n:04d}")
            assert incident is not None and len(incident.alert_ids) == (3 if n < 3 else 2)
        # an alert judged again (after a restart) keeps its incident, and is read in the same few statements
        incident = store.latest_incident("emp-0007")
        again = store.get_alerts(incident.alert_ids)[-1]
        reads, _ = statements(store, [again.model_copy(update={"incident_id": None})])
        assert len(reads) <= 5
        assert store.latest_incident("emp-0007") == incident


def test_a_deployment_configured_for_kafka_replays_files_through_the_file_pipeline(tmp_path):
    from ingest.kafka_source import KafkaIngest

    settings = _settings(tmp_path / "data", **{"source.kind": "kafka"})
    path = tmp_path / "events.jsonl"
    path.write_bytes(orjson.dumps(event_dict()) + b"\n")
    with app.open_store(settings) as store:
        assert isinstance(app.build_pipeline(settings, store, notifier=None), KafkaIngest)  # what `run` reads with
        pipeline = app.build_pipeline(settings, store, notifier=None, source_kind="file")  # what `replay` does
        report = pipeline.run(FileSource([str(path)], settings.ingest.max_line_bytes), close_windows=True)
    assert report.balanced and report.stored == 1
