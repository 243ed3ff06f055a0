"""Soak: ``accesswatch run`` on the simulator at a steady rate for 10 minutes; is memory flat?

Samples the process' resident memory (``/proc/PID/status``) and its
Prometheus metrics (events stored, lag, batch latency) every
``SOAK_SAMPLE`` seconds, prints them as a table, and ends with the RSS growth
over the second half of the run, when start-up (imports, the first day's
actor profiles) is behind it: memory is flat when that growth is a few
percent at most.

``SOAK_SECONDS`` (default 600), ``SOAK_SPEED`` (event-seconds per second,
default 3600: an hour of the organisation's activity a second),
``SOAK_EMPLOYEES`` (default 240), ``SOAK_SAMPLE`` (default 15).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples if not s.labels}


def main() -> int:
    seconds = float(os.environ.get("SOAK_SECONDS", "600"))
    speed = os.environ.get("SOAK_SPEED", "3600")
    employees = os.environ.get("SOAK_EMPLOYEES", "240")
    every = float(os.environ.get("SOAK_SAMPLE", "15"))
    data = Path(tempfile.mkdtemp(prefix="accesswatch-soak-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACCESSWATCH_")} | {
        "ACCESSWATCH_METRICS__PORT": "0",
        "ACCESSWATCH_SOURCE__SIMULATOR__SPEED": speed,
        "ACCESSWATCH_SOURCE__SIMULATOR__EMPLOYEES": employees,
        "ACCESSWATCH_SOURCE__SIMULATOR__DAYS": "366",  # the longest simulation: 2.4 hours at 3600x
        "ACCESSWATCH_NOTIFY__RECEIVERS": '["file"]',
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "accesswatch.cli", "run", "--source", "simulator", "--data-dir", str(data)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    port_found = threading.Event()
    port: list[int] = []

    def read_logs() -> None:  # find the endpoint, then keep the pipe drained
        for line in process.stderr:
            if not port and (match := re.search(r"127\.0\.0\.1:(\d+)/metrics", line)):
                port.append(int(match.group(1)))
                port_found.set()

    threading.Thread(target=read_logs, daemon=True).start()
    if not port_found.wait(60):
        process.kill()
        print("the metrics endpoint never came up", file=sys.stderr)
        return 1
    print(f"soak: {seconds:.0f} s at {speed}x, {employees} employees, data in {data}; load {os.getloadavg()[0]:.2f}")
    print(f"{'t (s)':>7} {'RSS MB':>8} {'events':>10} {'events/s':>9} {'lag (d)':>8} {'batch mean ms':>14}")
    samples: list[tuple[float, float]] = []
    started, last_events, last_t = time.monotonic(), 0.0, 0.0
    try:
        while (elapsed := time.monotonic() - started) < seconds and process.poll() is None:
            figures = scrape(port[0])
            events = figures.get("accesswatch_events_stored_total", 0.0)
            batches = figures.get("accesswatch_batch_seconds_count", 0.0) or 1.0
            rate = (events - last_events) / max(elapsed - last_t, 1e-9)
            memory = rss_mb(process.pid)
            samples.append((elapsed, memory))
            print(
                f"{elapsed:7.0f} {memory:8.1f} {events:10.0f} {rate:9.0f}"
                f" {figures.get('accesswatch_lag_seconds', 0.0) / 86400:8.1f}"
                f" {1000 * figures.get('accesswatch_batch_seconds_sum', 0.0) / batches:14.1f}",
                flush=True,
            )
            last_events, last_t = events, elapsed
            time.sleep(every)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
    half = [m for t, m in samples if t >= seconds / 2]
    if len(half) >= 2:
        growth = (half[-1] - half[0]) / half[0] * 100
        print(
            json.dumps(
                {
                    "rss_start_mb": round(samples[0][1], 1),
                    "rss_half_mb": round(half[0], 1),
                    "rss_end_mb": round(half[-1], 1),
                    "rss_peak_mb": round(max(m for _, m in samples), 1),
                    "second_half_growth_percent": round(growth, 2),
                    "exit_code": process.returncode,
                    "load_average": round(os.getloadavg()[0], 2),
                }
            )
        )
    return 0 if process.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
