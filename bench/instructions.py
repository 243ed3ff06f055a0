"""Instructions an event, stage by stage, counted by valgrind: a measure the machine's drift cannot move.

    .venv/bin/python -m bench.instructions [--events 40000] [--skip 0] [--stages parse,store,detect]

Why.  Wall clock and CPU time on this machine drift by a third within an
hour, so a change worth 3% cannot be seen in events/s, not even
interleaved.  The number of instructions a stage executes can: cachegrind
counts them (``--cache-sim=no``: counting only), and two counts of the same
code mostly agree to about half a percent (once, for the parse stage, 1.9%:
count twice before trusting a change under 2%).  An instruction is not a nanosecond
(a cache miss costs more than an add), so this says which version does less
work, and the replay benchmark still says how fast it runs.  One skew to
know: valgrind does not emulate the CPU's SHA extensions, so OpenSSL hashes
in software under it (the store's chain leaves count about 30,000
instructions an event that the CPU does in a tenth of that); compare
counts with each other, not with a run's seconds.

How.  Each stage runs twice under cachegrind on the first ``--events`` lines
of the simulated log: once with its inputs prepared and the work skipped,
once doing it.  The difference, over the number of events, is the stage's
cost: the interpreter's start, the imports and the preparation cancel out.
With ``--skip N``, the first N lines are part of the preparation: every
stage does them in both runs, and the count is of the ``--events`` lines
after them, against the state they left.  Detection needs it: its first
week of event time is the system's warm-up, in which no detector judges, so
a count of the log's first 20,000 events sees the fold and the learning but
no judging (``--skip 80000 --events 20000`` counts two days past the warm-up
of the 300,000-event log: 107,944 and 106,999 instructions an event at
3ec41ae, against 68,271 for the first 20,000).

- ``parse``: ``ingest.parse.Parser`` over the lines as read (``read`` is the
  reading alone: ``ingest.sources.FileSource``'s batches);
- ``store``: ``SqliteStore.write`` of the parsed batches into a fresh store
  through the replay's writer;
- ``detect``: the detection engine fed the batches as the worker is (msgpack,
  ``decode_for_detection``), then its windows closed.

Needs valgrind (Debian's ``valgrind`` package).  Under it the stages run
about fifty times slower: 40,000 events take a few minutes in all.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from itertools import islice
from pathlib import Path

from bench.bench_replay import simulated_log

STAGES = ("read", "parse", "store", "detect")
BATCH = 10_000
_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def run_stage(stage: str, lines_path: Path, skip: int, work: bool) -> None:
    """Prepare ``stage``'s inputs (doing its work on the first ``skip`` lines), and do its work on the rest if
    ``work``: the process cachegrind counts."""
    from accesswatch.cli import tune_garbage_collector
    from configs.loader import load_settings
    from detectors.classify import Classifier
    from ingest.parse import Parser
    from ingest.sources import FileSource

    settings = load_settings()
    source = FileSource([str(lines_path)], settings.ingest.max_line_bytes)
    warm = skip // BATCH  # batches done in both runs
    if stage == "read":
        tune_garbage_collector()  # as the command line does: what was prepared is never garbage
        reading = source.batches(BATCH)
        for _ in islice(reading, warm):
            pass
        if work:
            for _ in reading:
                pass
        return
    parser = Parser(Classifier(settings.classification), settings.ingest, wall_clock=lambda: 1.8e9)
    if stage == "parse":
        batches = list(source.batches(BATCH))
        tune_garbage_collector()
        for records in batches[:warm] + (batches[warm:] if work else []):
            parser.parse(records)
        return
    parsed = [parser.parse(records).events for records in source.batches(BATCH)]
    with tempfile.TemporaryDirectory() as data_dir:
        if stage == "store":
            from store.sqlite import SqliteStore

            store = SqliteStore(Path(data_dir) / "store.db")
            writer = store.open_writer()
            tune_garbage_collector()
            for events in parsed[:warm] + (parsed[warm:] if work else []):
                writer.write(events)
            writer.close()
            store.close()
        elif stage == "detect":
            import sklearn.ensemble  # noqa: F401 - imported by the worker before its first batch

            from accesswatch.app import build_engine
            from models.fast_event import decode_for_detection, encode_events

            engine = build_engine(settings.model_copy(update={"data_dir": data_dir}))
            payloads = [encode_events([incoming.event for incoming in events]) for events in parsed]
            del parsed
            tune_garbage_collector()
            for payload in payloads[:warm] + (payloads[warm:] if work else []):
                engine.process(decode_for_detection(payload))
            if work:
                engine.flush()
        else:
            raise SystemExit(f"unknown stage {stage!r}: one of {', '.join(STAGES)}")


def count(stage: str, lines_path: Path, skip: int, work: bool) -> int:
    """Instructions executed by a process running ``stage`` (with or without its work)."""
    done = subprocess.run(
        [
            "valgrind",
            "--tool=cachegrind",
            "--cache-sim=no",
            "--cachegrind-out-file=/dev/null",
            sys.executable,
            "-m",
            "bench.instructions",
            "--run",
            stage,
            "--lines",
            str(lines_path),
            "--skip",
            str(skip),
            *(["--work"] if work else []),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONHASHSEED": "0"},  # the same set and dict orders in both runs
    )
    found = _REFS.search(done.stderr)
    if done.returncode or found is None:
        raise SystemExit(f"the {stage} stage failed under valgrind:\n{done.stdout}\n{done.stderr[-3000:]}")
    return int(found.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=40_000, help="the first N lines of the simulated log")
    parser.add_argument(
        "--skip",
        type=int,
        default=0,
        help=f"lines done, uncounted, before the counted ones: a multiple of {BATCH:,} (see above)",
    )
    parser.add_argument("--stages", default=",".join(STAGES), help="comma-separated, of " + ", ".join(STAGES))
    parser.add_argument("--run", help=argparse.SUPPRESS)  # one stage, in the process valgrind counts
    parser.add_argument("--lines", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.skip < 0 or args.skip % BATCH:
        parser.error(f"--skip must be a multiple of {BATCH:,} (a batch is never cut), not {args.skip}")
    if args.run:
        run_stage(args.run, args.lines, args.skip, args.work)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    stages = [stage.strip() for stage in args.stages.split(",") if stage.strip()]
    with tempfile.TemporaryDirectory() as scratch:
        lines_path = Path(scratch) / "events.jsonl"
        with simulated_log(300_000).open("rb") as log, lines_path.open("wb") as out:
            events = 0
            for line in log:
                if events == args.skip + args.events:
                    break
                out.write(line)
                events += 1
        events -= args.skip
        after = f", after {args.skip:,} done uncounted" if args.skip else ""
        print(f"{events:,} events{after}, instructions an event (cachegrind):")
        for stage in stages:
            spent = count(stage, lines_path, args.skip, work=True) - count(stage, lines_path, args.skip, work=False)
            print(f"  {stage + ':':<8} {spent / events:>10,.0f}", flush=True)


if __name__ == "__main__":
    main()
