"""Fuzz the parser and the store's write path: any bytes in, never a crash, every line accounted for.

Each input is cut into lines as a file would be (``LineReader``, with a small
line limit so oversize lines happen), parsed, and written to a real SQLite
store.  Checked on every input:

- every line is an event or a dead letter, and the store says so too;
- a dead letter's reason is one line;
- an accepted event's bytes are strict JSON (``orjson``) that SQLite's JSON
  functions accept (the dashboard and the auditors' queries run them), and
  its model reads back equal from them.

With atheris (coverage-guided, libFuzzer) when it is installed, else
hypothesis with many examples.  ``FUZZ_SECONDS`` bounds the run (default 300).
"""

from __future__ import annotations

import io
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import orjson

with_atheris = False
try:
    import atheris

    with_atheris = True
except ImportError:
    atheris = None

if with_atheris:
    with atheris.instrument_imports():
        from ingest.parse import Parser
        from ingest.sources import LineReader
else:
    from ingest.parse import Parser
    from ingest.sources import LineReader

from configs.loader import load_settings  # noqa: E402
from detectors.classify import Classifier  # noqa: E402
from models.event import AccessEvent  # noqa: E402
from models.fast_event import from_model  # noqa: E402
from store.sqlite import SqliteStore  # noqa: E402

SETTINGS = load_settings(env={}, overrides={"ingest.max_future_skew": "3650d"})
# a limit below the configurable one (models.config.LARGEST_EVENT_LINE): a fuzzed input reaches it
SETTINGS = SETTINGS.model_copy(update={"ingest": SETTINGS.ingest.model_copy(update={"max_line_bytes": 2048})})
PARSER = Parser(Classifier(SETTINGS.classification), SETTINGS.ingest)
STORE = SqliteStore(Path(tempfile.mkdtemp(prefix="accesswatch-fuzz-")) / "fuzz.db", cache_mb=8)
JSON_CHECK = sqlite3.connect(":memory:")
RUNS = {"inputs": 0, "lines": 0, "events": 0, "dead_letters": 0}


def check(data: bytes) -> None:
    records = list(LineReader(io.BytesIO(data), "fuzz", SETTINGS.ingest.max_line_bytes))
    batch = PARSER.parse(records)
    assert len(batch.events) + len(batch.dead_letters) == len(records)
    for letter in batch.dead_letters:
        assert letter.reason and "\n" not in letter.reason, letter.reason
    for incoming in batch.events:
        orjson.loads(incoming.raw)  # strict JSON: no NaN, no invalid UTF-8, no lone surrogates
        assert JSON_CHECK.execute("SELECT json_valid(?)", (incoming.raw.decode(),)).fetchone()[0] == 1
        # the model accepts it too, with equal values (the pipeline carries the model's fast twin)
        assert from_model(AccessEvent.model_validate_json(incoming.raw)) == incoming.event
    written = STORE.write(batch.events, batch.dead_letters)
    unique = len({incoming.event.event_id for incoming in batch.events})
    assert len(written.stored) + written.duplicates == len(batch.events)
    assert len(written.stored) <= unique
    RUNS["inputs"] += 1
    RUNS["lines"] += len(records)
    RUNS["events"] += len(batch.events)
    RUNS["dead_letters"] += len(batch.dead_letters)


def seeds() -> list[bytes]:
    """Valid events to mutate from: the contract's samples."""
    contract = Path(__file__).resolve().parents[1].parent / "shared" / "contract" / "sample-events.jsonl"
    lines = contract.read_bytes().splitlines() if contract.exists() else []
    return [line for line in lines if line.strip()][:20]


def fuzz_with_atheris(seconds: int) -> None:
    corpus = Path(tempfile.mkdtemp(prefix="accesswatch-fuzz-corpus-"))
    for number, line in enumerate(seeds()):
        (corpus / f"seed-{number}").write_bytes(line + b"\n")
    atheris.Setup([sys.argv[0], f"-max_total_time={seconds}", "-max_len=4096", "-print_final_stats=1", str(corpus)],
                  check)  # fmt: skip
    atheris.Fuzz()


def fuzz_with_hypothesis(seconds: int) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    lines = st.one_of(st.binary(max_size=300), st.sampled_from(seeds() or [b"{}"]))
    deadline = time.monotonic() + seconds

    @given(st.lists(lines, max_size=20).map(lambda parts: b"\n".join(parts)))
    @settings(max_examples=10**9, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def run(data: bytes) -> None:
        if time.monotonic() > deadline:
            raise TimeoutError
        check(data)

    try:
        run()
    except TimeoutError:
        pass


def main() -> None:
    seconds = int(os.environ.get("FUZZ_SECONDS", "300"))
    print(f"fuzzing with {'atheris' if with_atheris else 'hypothesis'} for {seconds} s", flush=True)
    if with_atheris:
        fuzz_with_atheris(seconds)  # libFuzzer prints its statistics, and exits non-zero on a failure
        return
    started = time.monotonic()
    fuzz_with_hypothesis(seconds)
    elapsed = time.monotonic() - started
    print(f"{RUNS} in {elapsed:.0f} s ({RUNS['inputs'] / max(elapsed, 1e-9):,.0f} inputs/s);"
          f" load {os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
