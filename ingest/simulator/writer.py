"""Writing a simulation to disk: events.jsonl and labels.json."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from .settings import SimulationSettings
from .simulation import simulate

try:
    import orjson

    def dump_line(event: dict) -> bytes:
        return orjson.dumps(event, option=orjson.OPT_APPEND_NEWLINE)

    def dump_document(document: dict) -> bytes:
        return orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
except ImportError:  # same bytes for our data (ASCII, no floats), only slower
    def dump_line(event: dict) -> bytes:
        return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"

    def dump_document(document: dict) -> bytes:
        return json.dumps(document, indent=2, ensure_ascii=False).encode() + b"\n"

WRITE_BUFFER = 1 << 20


def write_events(path: Path, events: Iterable[dict], dump: Callable[[dict], bytes] = dump_line) -> Counter:
    """Write JSON Lines; returns event counts per actor kind."""
    kinds: Counter = Counter()

    def lines() -> Iterator[bytes]:
        for event in events:
            kinds[event["actor"]["kind"]] += 1
            yield dump(event)

    with path.open("wb", buffering=WRITE_BUFFER) as out:
        out.writelines(lines())
    return kinds


def write_simulation(out_dir: Path, settings: SimulationSettings) -> dict:
    """Write out_dir/events.jsonl and out_dir/labels.json; return a summary."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    simulation = simulate(settings)
    events_path, labels_path = out_dir / "events.jsonl", out_dir / "labels.json"
    kinds = write_events(events_path, simulation.events())
    labels = simulation.labels()
    labels_path.write_bytes(dump_document(labels))
    elapsed = time.perf_counter() - began
    events = sum(kinds.values())
    return {
        "events": events,
        "actors": len(labels["actors"]),
        "scenarios": len(labels["scenarios"]),
        "benign": len(labels["benign"]),
        "events_by_actor_kind": dict(sorted(kinds.items())),
        "start": labels["start"],
        "end": labels["end"],
        "events_path": str(events_path),
        "labels_path": str(labels_path),
        "seconds": round(elapsed, 3),
        "events_per_second": round(events / elapsed) if elapsed > 0 else None,
        "notes": labels["notes"],
    }
