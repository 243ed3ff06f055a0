"""Operational metrics (Prometheus) and liveness/readiness probes for ``run`` and ``demo``.

The pipeline reports to a ``PipelineMetrics`` when it has one: a batch read,
a batch judged, an alert raised, recovery done.  The figures live in a
registry of their own (no process-wide globals), served over HTTP with the
probes by ``MetricsServer``:

- ``/metrics``: Prometheus text format;
- ``/livez``: 200 while the process and its ingesting thread are alive;
- ``/readyz``: 200 once recovery is done and until the pipeline stops, else 503.

Latencies, in wall-clock seconds: a batch's, from the moment it was read to
its events judged and alerts stored; an alert's (event to alert), from the
moment the batch holding the last event of its window was read to the alert
being raised, which includes the wait for the window to close.  Lag is the
wall-clock now minus the newest event time stored (a simulator playing a past
month shows that month's distance).  Labels are detector and severity names
only: no actor or customer ids, so the series stay few and carry no personal data.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from models.alert import Alert
from store.base import WriteResult

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_ALERT_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 3600, 7200, 21600, 86400)
_REMEMBERED_BATCHES = 4096  # read times kept to place alerts: bounded memory


class PipelineMetrics:
    def __init__(self, registry: CollectorRegistry | None = None, clock: Callable[[], float] = time.time) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.clock = clock
        r = self.registry
        self.lines_read = Counter("accesswatch_lines_read", "Lines or messages read from the source", registry=r)
        self.events_stored = Counter("accesswatch_events_stored", "Events new to the store", registry=r)
        self.duplicates = Counter("accesswatch_duplicates", "Events already stored (not stored again)", registry=r)
        self.dead_letters = Counter("accesswatch_dead_letters", "Lines that could not become events", registry=r)
        self.conflicts = Counter(
            "accesswatch_conflicts", "Event ids seen again with other content (tampering findings)", registry=r
        )
        self.alerts = Counter(
            "accesswatch_alerts_raised", "New alerts, by detector and severity", ["detector", "severity"], registry=r
        )
        self.batch_seconds = Histogram(
            "accesswatch_batch_seconds", "From a batch read to its events judged", buckets=_LATENCY_BUCKETS, registry=r
        )
        self.event_to_alert_seconds = Histogram(
            "accesswatch_event_to_alert_seconds",
            "From reading the last event of an alert's window to raising the alert",
            buckets=_ALERT_BUCKETS,
            registry=r,
        )
        self.lag_seconds = Gauge("accesswatch_lag_seconds", "Now minus the newest event time stored", registry=r)
        self.ready_gauge = Gauge("accesswatch_ready", "1 once recovery is done, until the pipeline stops", registry=r)
        self.last_batch = Gauge("accesswatch_last_batch_timestamp_seconds", "When a batch was last judged", registry=r)
        self._reading: deque[tuple[int, float]] = deque()  # (id of the records, read at), oldest first
        self._judged_ends: list[float] = []  # newest event time of each judged batch, ascending
        self._judged_reads: list[float] = []  # ... and when that batch was read
        self._newest = float("-inf")
        self._lock = threading.Lock()  # the HTTP thread reads while the pipeline writes
        self.ready = False

    # -- from the pipeline ---------------------------------------------------------------------------
    def set_ready(self, ready: bool) -> None:
        self.ready = ready
        self.ready_gauge.set(1 if ready else 0)

    def read(self, records: Sequence) -> None:
        with self._lock:
            self._reading.append((id(records), self.clock()))

    def forget(self, records: Sequence) -> None:
        """A batch read and not judged after all (the store failed under it); nothing if it was judged."""
        self._take_read(records)

    def batch(self, records: Sequence, dead_letters: int, written: WriteResult) -> None:
        now = self.clock()
        self.lines_read.inc(len(records))
        self.events_stored.inc(len(written.stored))
        self.duplicates.inc(written.duplicates)
        self.dead_letters.inc(dead_letters)
        self.conflicts.inc(len(written.conflicts))
        read_at = self._take_read(records)
        if read_at is not None:
            self.batch_seconds.observe(max(0.0, now - read_at))
        if written.stored:
            newest = max(incoming.event.timestamp.timestamp() for incoming in written.stored)
            with self._lock:
                self._newest = max(self._newest, newest)
                if read_at is not None and (not self._judged_ends or newest >= self._judged_ends[-1]):
                    self._judged_ends.append(newest)
                    self._judged_reads.append(read_at)
                    if len(self._judged_ends) > _REMEMBERED_BATCHES:
                        del (
                            self._judged_ends[: _REMEMBERED_BATCHES // 2],
                            self._judged_reads[: _REMEMBERED_BATCHES // 2],
                        )
        if self._newest > float("-inf"):
            self.lag_seconds.set(now - self._newest)
        self.last_batch.set(now)

    def raised(self, alert: Alert) -> None:
        self.alerts.labels(alert.detector, alert.severity.value).inc()
        end = alert.window_end.timestamp()
        with self._lock:
            index = bisect.bisect_left(self._judged_ends, end)
            if index < len(self._judged_ends):
                read_at = self._judged_reads[index]
            elif self._reading:  # its last event is in the batch being judged now
                read_at = self._reading[0][1]
            else:
                return  # raised while recovering: no batch of this process holds its events
        self.event_to_alert_seconds.observe(max(0.0, self.clock() - read_at))

    def _take_read(self, records: Sequence) -> float | None:
        with self._lock:
            for position, (key, read_at) in enumerate(self._reading):
                if key == id(records):
                    del self._reading[position]
                    return read_at
        return None

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class MetricsServer:
    """``/metrics``, ``/livez`` and ``/readyz`` on a thread of their own; ``port`` 0 picks a free one."""

    def __init__(self, metrics: PipelineMetrics, address: str, port: int, worker: threading.Thread | None = None):
        self.metrics = metrics
        self.worker = worker or threading.current_thread()  # the ingesting thread, whose life /livez reports
        self._server = ThreadingHTTPServer((address, port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics-http", daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # the name http.server calls
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._send(HTTPStatus.OK, server.metrics.exposition(), CONTENT_TYPE_LATEST)
                elif path == "/livez":
                    alive = server.worker.is_alive()
                    self._send(
                        HTTPStatus.OK if alive else HTTPStatus.SERVICE_UNAVAILABLE, b"ok\n" if alive else b"dead\n"
                    )
                elif path == "/readyz":
                    ready = server.metrics.ready
                    self._send(
                        HTTPStatus.OK if ready else HTTPStatus.SERVICE_UNAVAILABLE,
                        b"ready\n" if ready else b"not ready\n",
                    )
                else:
                    self._send(HTTPStatus.NOT_FOUND, b"not found: /metrics, /livez or /readyz\n")

            def _send(self, status: HTTPStatus, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # scraped every few seconds: not logged
                pass

        return Handler
