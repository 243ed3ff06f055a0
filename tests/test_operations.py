"""Operations: Prometheus metrics, liveness/readiness probes, structured JSON logs (issue 7)."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import timedelta

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from accesswatch import app
from accesswatch.logging import JsonFormatter, configure, describe_error
from configs.loader import load_settings
from ingest.metrics import MetricsServer, PipelineMetrics
from ingest.simulator import SimulationSettings, write_simulation
from ingest.sources import FileSource
from models.config import Logging
from models.event import AccessEvent
from models.fast_event import from_model
from store.base import IncomingEvent, WriteResult
from tests.factories import T0, alert, event_dict


def _samples(metrics: PipelineMetrics) -> dict[tuple, float]:
    found = {}
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.fixture(scope="module")
def fortnight(tmp_path_factory):
    root = tmp_path_factory.mktemp("ops")
    write_simulation(root, SimulationSettings(seed=11, days=16, employees=40))
    return root / "events.jsonl"


def test_the_metrics_count_what_the_pipeline_reports(fortnight, tmp_path):
    settings = load_settings(env={}, overrides={"data_dir": str(tmp_path / "data"), "ingest.batch_lines": 3000})
    extra = tmp_path / "extra.jsonl"
    first = fortnight.read_bytes().splitlines()[0]
    extra.write_bytes(first + b"\n{broken\n")  # a duplicate and a dead letter
    metrics = PipelineMetrics()
    with app.open_store(settings) as store:
        pipeline = app.build_pipeline(settings, store, notifier=None)
        pipeline.metrics = metrics
        report = pipeline.run(FileSource([str(fortnight), str(extra)], 1 << 20), close_windows=False)
    values = _samples(metrics)
    assert values[("accesswatch_lines_read_total", ())] == report.lines_read
    assert values[("accesswatch_events_stored_total", ())] == report.stored
    assert values[("accesswatch_duplicates_total", ())] == report.duplicates == 1
    assert values[("accesswatch_dead_letters_total", ())] == report.dead_letters == 1
    raised = {labels: v for (name, labels), v in values.items() if name == "accesswatch_alerts_raised_total"}
    assert report.alerts_raised > 0 and sum(raised.values()) == report.alerts_raised
    assert all(dict(labels).keys() == {"detector", "severity"} for labels in raised)
    batches = -(-report.lines_read // settings.store.sqlite.transaction_events)  # a replay's transactions
    assert values[("accesswatch_batch_seconds_count", ())] >= batches - 1
    assert values[("accesswatch_event_to_alert_seconds_count", ())] == report.alerts_raised
    assert values[("accesswatch_lag_seconds", ())] > 0  # the simulated fortnight is in the past
    assert values[("accesswatch_ready", ())] == 1


def test_alert_latency_is_from_reading_the_batch_that_held_the_last_event():
    clock = iter([100.0, 103.0, 110.0, 117.5]).__next__
    metrics = PipelineMetrics(clock=clock)
    event = AccessEvent.model_validate_json(orjson.dumps(event_dict(at=T0)))
    records = [object()]
    metrics.read(records)  # 100.0
    stored = [IncomingEvent(from_model(event), b"", frozenset())]
    metrics.batch(records, 0, WriteResult(stored=stored))  # judged at 103.0
    metrics.raised(alert(window_start=T0 - timedelta(hours=1), window_end=T0))  # raised at 110.0: read at 100.0
    metrics.read([object()])  # 117.5: a batch being judged holds the events after T0
    values = _samples(metrics)
    assert values[("accesswatch_batch_seconds_sum", ())] == pytest.approx(3.0)
    assert values[("accesswatch_event_to_alert_seconds_sum", ())] == pytest.approx(10.0)


def test_probes_say_live_while_the_worker_lives_and_ready_once_recovered():
    metrics = PipelineMetrics()
    done = threading.Event()
    worker = threading.Thread(target=done.wait, daemon=True)
    worker.start()
    server = MetricsServer(metrics, "127.0.0.1", 0, worker=worker).start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        assert _get(base + "/livez")[0] == 200
        assert _get(base + "/readyz")[0] == 503
        metrics.set_ready(True)
        assert _get(base + "/readyz")[0] == 200
        status, body = _get(base + "/metrics")
        assert status == 200 and b"accesswatch_lines_read_total 0.0" in body
        assert _get(base + "/nope")[0] == 404
        done.set()
        worker.join(timeout=10)
        assert _get(base + "/livez")[0] == 503
    finally:
        server.close()


def test_run_serves_metrics_and_probes_and_logs_json_lines(tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith("ACCESSWATCH_")} | {
        "ACCESSWATCH_METRICS__PORT": "0",
        "ACCESSWATCH_SOURCE__SIMULATOR__DAYS": "3",
        "ACCESSWATCH_SOURCE__SIMULATOR__EMPLOYEES": "20",
        "ACCESSWATCH_SOURCE__SIMULATOR__SPEED": "20000",
        "ACCESSWATCH_NOTIFY__DELIVERY__DRAIN_ON_EXIT": "1s",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "accesswatch.cli", "run", "--source", "simulator", "--data-dir", str(tmp_path)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stderr.readline()  # the first log line says where the endpoint is
        entry = json.loads(line)
        assert entry["level"] == "info" and entry["logger"] == "accesswatch.app"
        port = int(re.search(r":(\d+)/metrics", entry["message"]).group(1))
        deadline = time.monotonic() + 120
        stored = 0.0
        while stored == 0 and time.monotonic() < deadline:
            _, body = _get(f"http://127.0.0.1:{port}/metrics")
            stored = next(
                s.value
                for f in text_string_to_metric_families(body.decode())
                for s in f.samples
                if s.name == "accesswatch_events_stored_total"
            )
            time.sleep(0.1)
        assert stored > 0
        assert _get(f"http://127.0.0.1:{port}/readyz")[0] == 200
        assert _get(f"http://127.0.0.1:{port}/livez")[0] == 200
    finally:
        process.send_signal(signal.SIGTERM)
        _, rest = process.communicate(timeout=120)
    assert process.returncode == 0
    for line in rest.splitlines():
        if line.startswith("{"):
            json.loads(line)  # every log line is one JSON object


def test_logs_carry_ids_and_never_the_customers_data(tmp_path):
    secret = "c-SECRET-CUSTOMER"
    original = event_dict(event_id="evt-log-1", customer_ids=[secret], fields=["passport_number"])
    rewritten = {**original, "record_count": 900}
    path = tmp_path / "log.jsonl"
    path.write_bytes(orjson.dumps(original) + b"\n" + orjson.dumps(rewritten) + b"\n")
    stream = io.StringIO()
    settings = load_settings(env={}, overrides={"data_dir": str(tmp_path / "data"), "ingest.max_future_skew": "3650d"})
    configure(Logging(format="json", level="debug"), stream)
    try:
        with app.open_store(settings) as store:
            app.build_pipeline(settings, store, notifier=None).run(FileSource([str(path)], 1 << 20), True)
        try:
            AccessEvent.model_validate_json(orjson.dumps({**original, "record_count": "lots"}))
        except ValidationError as exc:
            refused = exc
            logging.getLogger("accesswatch.test").exception("refused")
    finally:
        logging.getLogger().handlers = [h for h in logging.getLogger().handlers if not getattr(h, "accesswatch", 0)]
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert any("evt-log-1" in entry["message"] and entry["level"] == "warning" for entry in lines)
    assert lines[-1]["error"].startswith("ValidationError: record_count")
    text = stream.getvalue()
    assert secret not in text and "passport_number" not in text and "lots" not in text
    assert describe_error(refused) == lines[-1]["error"]


def test_the_json_formatter_keeps_extra_scalars_and_drops_objects():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "batch %d", (7,), None)
    record.stored = 5
    record.body = {"customer_ids": ["c-1"]}  # not a scalar: never written
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "batch 7" and entry["stored"] == 5 and "body" not in entry


@pytest.mark.parametrize("level", ["info", "debug"])
def test_client_libraries_log_only_warnings_unless_debug_is_asked(level):
    stream = io.StringIO()
    configure(Logging(format="json", level=level), stream)
    try:
        logging.getLogger("kafka.conn").info("connecting to broker 1")
        logging.getLogger("elastic_transport.transport").info("POST /_bulk 200")
        logging.getLogger("kafka.coordinator").warning("heartbeat failed")
        logging.getLogger("ingest.pipeline").info("recovered")
    finally:
        logging.getLogger().handlers = [h for h in logging.getLogger().handlers if not getattr(h, "accesswatch", 0)]
    messages = [json.loads(line)["message"] for line in stream.getvalue().splitlines()]
    chatter = ["connecting to broker 1", "POST /_bulk 200"] if level == "debug" else []
    assert messages == [*chatter, "heartbeat failed", "recovered"]
