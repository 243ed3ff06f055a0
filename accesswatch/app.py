"""Assembling the parts the configuration chose: store, source, notifiers, detectors.

The only place that knows the concrete adapters; everything else sees the
ports (``store.base.Store``, ``ingest.sources.Source``, ``notify.base.Notifier``).
"""

from __future__ import annotations

from pathlib import Path

from detectors.engine import DetectionEngine
from detectors.registry import build_detectors
from ingest.pipeline import Pipeline
from ingest.sources import FileSource, Source
from models.config import ConfigError, Settings
from notify.base import Fanout, Notifier
from store.base import Store


def open_store(settings: Settings, readonly: bool = False) -> Store:
    if settings.store.kind == "sqlite":
        from store.sqlite import SqliteStore

        path = Path(settings.data_dir) / settings.store.sqlite.filename
        if readonly and not path.exists():
            raise FileNotFoundError(f"no store at {path}: replay or run something into this data dir first")
        return SqliteStore(path, cache_mb=settings.store.sqlite.cache_mb, readonly=readonly)
    raise ConfigError(f"configuration error: store.kind = {settings.store.kind!r}: its adapter is not installed yet")


def open_source(settings: Settings) -> Source:
    source = settings.source
    if source.kind == "file":
        if not source.file.paths:
            raise ConfigError("configuration error: source.file.paths is empty: expected at least one file or '-'")
        return FileSource(source.file.paths, settings.ingest.max_line_bytes, follow=source.file.follow)
    if source.kind == "simulator":
        from ingest.simulated_source import SimulatorSource
        from ingest.simulator import SimulationSettings

        simulation = SimulationSettings(
            seed=source.simulator.seed, days=source.simulator.days, employees=source.simulator.employees
        )
        return SimulatorSource(simulation, speed=source.simulator.speed)
    raise ConfigError(f"configuration error: source.kind = {source.kind!r}: its adapter is not installed yet")


def open_notifier(settings: Settings) -> Notifier:
    receivers: list[Notifier] = []
    for name in settings.notify.receivers:
        if name == "console":
            from notify.console import ConsoleNotifier

            receivers.append(ConsoleNotifier())
        elif name == "file":
            from notify.jsonl_file import JsonlFileNotifier

            receivers.append(JsonlFileNotifier(Path(settings.data_dir) / settings.notify.file))
        else:
            raise ConfigError(f"configuration error: notify.receivers has {name!r}: expected 'console' or 'file'")
    return Fanout(receivers, settings.notify.min_severity)


def build_engine(settings: Settings) -> DetectionEngine:
    return DetectionEngine(settings, build_detectors(settings.detectors))


def build_pipeline(settings: Settings, store: Store, notifier: Notifier | None, progress=None) -> Pipeline:
    return Pipeline(settings, store, build_engine(settings), notifier, progress)
