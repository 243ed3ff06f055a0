"""Replay 1,000,000 simulated events into a fresh SQLite store: events/s, peak RSS, and the parse floor.

The floor is the rate of merely parsing the same lines with orjson, measured
in the same run on the same machine: the ratio of the two says how much the
whole product (validation, storage with its indexes, detection) costs over
reading JSON at all.  ``BENCH_EVENTS`` changes the size (default 1,000,000).
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import orjson

from ingest.simulator import SimulationSettings, write_simulation

OUT = Path(__file__).parent / "out" / "replay"
EVENTS_PER_EMPLOYEE_DAY = 23  # the simulator's documented rate
FIXED_PER_DAY = 1140


def simulated_log(events: int) -> Path:
    """The simulated month sized to about ``events`` events, generated once and kept."""
    days = 30
    employees = max(20, round((events / days - FIXED_PER_DAY) / EVENTS_PER_EMPLOYEE_DAY))
    path = OUT / f"events-{employees}.jsonl"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        write_simulation(OUT / "sim", SimulationSettings(days=days, employees=employees))
        (OUT / "sim" / "events.jsonl").rename(path)
        print(f"simulated {employees} employees for {days} days in {time.perf_counter() - started:.1f} s")
    return path


def orjson_rate(path: Path) -> tuple[int, float]:
    lines = path.read_bytes().splitlines()
    loads = orjson.loads
    started = time.perf_counter()
    for line in lines:
        loads(line)
    return len(lines), len(lines) / (time.perf_counter() - started)


def main() -> None:
    path = simulated_log(int(os.environ.get("BENCH_EVENTS", "1000000")))
    data = OUT / "data"
    shutil.rmtree(data, ignore_errors=True)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "accesswatch.cli", "replay", str(path), "--data-dir", str(data)],
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    # the child's peak, read before this process holds the file in memory: a
    # forked child's high-water mark includes its parent's image before exec
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak_mb = usage.ru_maxrss / 1024
    cpu = usage.ru_utime + usage.ru_stime
    if done.returncode:
        print(done.stdout, done.stderr)
        raise SystemExit(done.returncode)
    lines, parse_rate = orjson_rate(path)
    rate = lines / elapsed
    print(done.stdout.strip())
    print(f"events:               {lines:,}")
    print(f"end to end:           {rate:,.0f} events/s ({elapsed:.1f} s, process start included)")
    print(f"CPU time:             {cpu:.1f} s ({lines / cpu:,.0f} events per CPU-second; {cpu / elapsed:.2f} cores busy)")
    print(f"peak RSS:             {peak_mb:,.0f} MB")
    print(f"orjson parse only:    {parse_rate:,.0f} lines/s")
    print(f"end to end / parsing: {rate / parse_rate:.3f}")
    print(f"load average:         {os.getloadavg()[0]:.2f} (other work on the machine slows every figure)")


if __name__ == "__main__":
    main()
