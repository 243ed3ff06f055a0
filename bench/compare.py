"""Compare the replay benchmark of this tree with another revision's, interleaved: A B A B ...

    .venv/bin/python -m bench.compare REV [--rounds 2] [--events 300000]

Why interleaved.  This machine's speed drifts by a third from hour to hour
(the same tree measured 114 and 162 CPU seconds on two days): two runs an
hour apart compare the hours, not the trees.  Runs alternated in the same
hour share the drift, so their ratio is the figure to read.

The other revision is checked out in a temporary git worktree that shares
this tree's ``bench/out`` (the simulated log is made once) and runs with this
tree's interpreter; the worktree is removed afterwards.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
_RATE = re.compile(r"^end to end:\s+([\d,]+) events/s", re.MULTILINE)
_CPU = re.compile(r"^CPU time:\s+([\d.]+) s", re.MULTILINE)


@dataclass(frozen=True)
class Run:
    rate: float  # events/s end to end
    cpu: float  # CPU seconds, the replay and its worker


def parse_report(text: str) -> Run:
    """The figures of one ``bench_replay`` report."""
    rate, cpu = _RATE.search(text), _CPU.search(text)
    if rate is None or cpu is None:
        raise ValueError(f"not a bench_replay report:\n{text}")
    return Run(float(rate.group(1).replace(",", "")), float(cpu.group(1)))


def replay_bench(tree: Path, events: int) -> Run:
    env = {**os.environ, "BENCH_EVENTS": str(events), "PYTHONPATH": str(tree)}
    done = subprocess.run(
        [sys.executable, "-m", "bench.bench_replay"], cwd=tree, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise SystemExit(f"bench_replay failed in {tree}:\n{done.stdout}\n{done.stderr}")
    return parse_report(done.stdout)


def summary(name: str, runs: list[Run]) -> str:
    rates = ", ".join(f"{run.rate:,.0f}" for run in runs)
    cpus = ", ".join(f"{run.cpu:.1f}" for run in runs)
    return f"{name:>12}: events/s {rates} (median {statistics.median(r.rate for r in runs):,.0f}); CPU s {cpus}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("revision", help="the git revision to compare this tree with")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each tree, alternated (default 2)")
    parser.add_argument("--events", type=int, default=300_000, help="events replayed in each run (default 300,000)")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.events < 1000:
        parser.error("--rounds must be at least 1 and --events at least 1000")
    with tempfile.TemporaryDirectory(prefix="accesswatch-compare-") as scratch:
        other = Path(scratch) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(other), args.revision], cwd=ROOT, check=True)
        try:
            # one simulated log for both trees: the other tree's bench/out is this one's
            (HERE / "out").mkdir(exist_ok=True)
            out = other / "bench" / "out"
            if out.exists():
                subprocess.run(["rm", "-rf", str(out)], check=True)
            out.symlink_to(HERE / "out", target_is_directory=True)
            mine: list[Run] = []
            theirs: list[Run] = []
            for round_ in range(1, args.rounds + 1):
                for name, tree, runs in (("this tree", ROOT, mine), (args.revision, other, theirs)):
                    runs.append(replay_bench(tree, args.events))
                    print(f"round {round_} {name}: {runs[-1].rate:,.0f} events/s, {runs[-1].cpu:.1f} CPU s", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(other)], cwd=ROOT, check=False)
    print(summary("this tree", mine))
    print(summary(args.revision, theirs))
    ratio = statistics.median(r.rate for r in mine) / statistics.median(r.rate for r in theirs)
    print(f"this tree / {args.revision}: {ratio:.3f} (medians of events/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
