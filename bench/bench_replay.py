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
import tempfile
import time
from pathlib import Path

import orjson

from ingest.simulator import SimulationSettings, write_simulation

OUT = Path(__file__).parent / "out" / "replay"
EVENTS_PER_EMPLOYEE_DAY = 23  # the simulator's documented rate
FIXED_PER_DAY = 1140


def simulated_log(events: int) -> Path:
    """The simulated month sized to about ``events`` events, generated once and kept with its labels.

    The labels (``labels-<employees>.json``) let the replay's store be scored afterwards:
    ``accesswatch evaluate --data-dir bench/out/replay/data --labels bench/out/replay/labels-<employees>.json``.
    """
    days = 30
    employees = max(20, round((events / days - FIXED_PER_DAY) / EVENTS_PER_EMPLOYEE_DAY))
    path, labels = OUT / f"events-{employees}.jsonl", OUT / f"labels-{employees}.json"
    if not path.exists() or not labels.exists():  # the same seed makes the same log: made again with its labels
        OUT.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        write_simulation(OUT / "sim", SimulationSettings(days=days, employees=employees))
        (OUT / "sim" / "events.jsonl").replace(path)
        (OUT / "sim" / "labels.json").replace(labels)
        print(f"simulated {employees} employees for {days} days in {time.perf_counter() - started:.1f} s")
    return path


def orjson_rate(path: Path) -> tuple[int, float]:
    lines = path.read_bytes().splitlines()
    loads = orjson.loads
    started = time.perf_counter()
    for line in lines:
        loads(line)
    return len(lines), len(lines) / (time.perf_counter() - started)


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants, now (0 once it has ended)."""
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(child) for child in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) / 1024
    return total


def stage_times(stderr: str) -> dict[str, float]:
    """The stages the replay logged (its JSON log lines on standard error); empty if it logged none."""
    for line in stderr.splitlines():
        if line.startswith("{"):
            entry = orjson.loads(line)
            if entry.get("message") == "where the run's time went, in seconds":
                return {key: value for key, value in entry.items() if key not in ("ts", "level", "logger", "message")}
    return {}


def main() -> None:
    path = simulated_log(int(os.environ.get("BENCH_EVENTS", "1000000")))
    data = OUT / "data"
    shutil.rmtree(data, ignore_errors=True)
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        replay = subprocess.Popen(
            [sys.executable, "-m", "accesswatch.cli", "replay", str(path), "--data-dir", str(data)],
            stdout=out,
            stderr=err,
            text=True,
            # the stage times are logged at debug (``ingest.pipeline``)
            env={**os.environ, "ACCESSWATCH_LOGGING__LEVEL": "debug"},
        )
        # the replay judges in a worker process of its own: the memory that counts is both together
        tree_peak_mb = 0.0
        while replay.poll() is None:
            tree_peak_mb = max(tree_peak_mb, tree_rss_mb(replay.pid))
            time.sleep(0.2)
        elapsed = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        done = subprocess.CompletedProcess(replay.args, replay.returncode, out.read(), err.read())
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
    busy = cpu / elapsed
    print(f"CPU time:             {cpu:.1f} s ({lines / cpu:,.0f} events per CPU-second; {busy:.2f} cores busy)")
    print(f"peak RSS:             {peak_mb:,.0f} MB (the largest single process)")
    print(f"peak RSS, all:        {tree_peak_mb:,.0f} MB (the replay and its detection worker together, sampled)")
    print(f"orjson parse only:    {parse_rate:,.0f} lines/s")
    print(f"end to end / parsing: {rate / parse_rate:.3f}")
    print(f"load average:         {os.getloadavg()[0]:.2f} (other work on the machine slows every figure)")
    print("where the time went (ingest.stage_times; the main thread's, then the writer's and the worker's):")
    stages = stage_times(done.stderr)
    for name, seconds in stages.items():
        print(f"  {name.replace('_', ' ') + ':':<20} {seconds:6.1f} s, {seconds / lines * 1e6:5.1f} us an event")
    if stages:
        # what no stage covers: the main process's start and imports, the WAL checkpointer, the pipes' readers
        rest = cpu - stages.get("main_cpu", 0.0) - stages.get("store_cpu", 0.0) - stages.get("detection_cpu", 0.0)
        print(f"  {'other CPU:':<20} {rest:6.1f} s, {rest / lines * 1e6:5.1f} us an event (start-up, WAL checkpointer)")


if __name__ == "__main__":
    main()
