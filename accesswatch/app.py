"""Assembling the parts the configuration chose: store, source, notifiers, detectors.

The only place that knows the concrete adapters; everything else sees the
ports (``store.base.Store``, ``ingest.sources.Source``, ``notify.base.Notifier``); paging goes
through the store's outbox (``notify.outbox`` plans, ``notify.dispatch`` delivers).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from accesswatch.chain_heads import ChainHeadLog
from detectors.engine import DetectionEngine
from detectors.registry import build_detectors
from ingest.metrics import MetricsServer, PipelineMetrics
from ingest.pipeline import IngestReport, Pipeline
from ingest.sources import FileSource, Source
from models.config import ConfigError, Settings
from notify.base import Notifier
from notify.dispatch import DeliveryLoop, Dispatcher
from notify.outbox import Pager
from store.base import Store, StoreUnavailable
from store.retention import RetentionLoop, RetentionPolicy

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from ingest.kafka_source import KafkaIngest
    from store.sqlite import SqliteStore


class StoreUnreadable(Exception):
    """The store's file is there but is not a store SQLite can open (garbage, another program's file)."""


def open_store(settings: Settings, readonly: bool = False, must_exist: bool = False) -> Store:
    """``must_exist``: a command that writes only to a store it works on (triage, pages, purge) refuses to make one,
    as a reader does: a mistyped data dir would answer "no pages" from an empty store of its own making."""
    if settings.store.kind == "sqlite":
        return _open_sqlite(settings, readonly, must_exist)
    if settings.store.kind == "elasticsearch":
        from store.elasticsearch import ElasticsearchStore
        from store.elasticsearch.settings import load

        retention = settings.retention  # one storage-limitation setting for both stores: ILM applies it here
        elasticsearch = load(settings.store.elasticsearch).model_copy(
            update={
                "events_retention": retention.events_days * 86400.0,
                "alerts_retention": retention.alerts_days * 86400.0,
            }
        )
        # a reader (CLI, dashboard) does not install templates: it may lack the privilege; nor does a command that
        # works on a store (a mistyped prefix made its state and outbox indices and answered "no pages")
        hosts = ", ".join(elasticsearch.hosts)
        try:
            store = ElasticsearchStore(elasticsearch, install=False)
            try:
                if readonly or must_exist:
                    if not store.exists():
                        raise FileNotFoundError(
                            f"no store at {hosts} with prefix {elasticsearch.prefix!r}"
                            " (store.elasticsearch.prefix): run something into it first"
                        )
                    store.refuse_if_not_migrated()  # checked, never written: upgrading is the installing writers'
                else:
                    store.install()
            except BaseException:  # refused: its client is closed, as SQLite closes its connection
                store.close()
                raise
        except StoreUnavailable as exc:  # its retries spent: one line, as for Kafka out of reach
            raise StoreUnreadable(f"cannot reach Elasticsearch at {hosts}: {exc}") from None
        return store
    raise ConfigError(f"configuration error: store.kind = {settings.store.kind!r}: its adapter is not installed yet")


def _open_sqlite(settings: Settings, readonly: bool = False, must_exist: bool = False) -> SqliteStore:
    from store.sqlite import SqliteStore

    path = Path(settings.data_dir) / settings.store.sqlite.filename
    if (readonly or must_exist) and not path.exists():
        raise FileNotFoundError(f"no store at {path}: replay or run something into this data dir first")
    try:
        store = SqliteStore(path, cache_mb=settings.store.sqlite.cache_mb, readonly=readonly)
    except sqlite3.DatabaseError as exc:  # "file is not a database", "database disk image is malformed", ...
        raise StoreUnreadable(
            f"cannot open the store at {path}: {exc} (move that file aside, or choose another data dir)"
        ) from None
    _warn_if_world_readable(path)  # a store's, not some other file's there
    return store


_WARNED_READABLE: set[Path] = set()  # once a process: a command opens its store more than once


def _warn_if_world_readable(path: Path) -> None:
    """The store holds customer ids in clear; one made by the product is 0600, one the operator made keeps its mode."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if mode & 0o004 and path not in _WARNED_READABLE:
        _WARNED_READABLE.add(path)
        log.warning(
            "the store %s is readable by every local user (mode %03o), and holds customer ids in clear:"
            " chmod 600 %s (and its -wal and -shm files), chmod 700 its directory",
            path,
            mode & 0o777,
            path,
        )


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
    if source.kind == "kafka":
        from ingest.kafka_settings import load
        from ingest.kafka_source import KafkaSource

        return KafkaSource(load(source.kafka), settings.ingest.max_line_bytes)
    raise ConfigError(f"configuration error: source.kind = {source.kind!r}: its adapter is not installed yet")


def open_receivers(settings: Settings) -> dict[str, Notifier]:
    """The configured receivers by name (``notify.registry``); ``ConfigError`` on a wrong value."""
    from notify.registry import build_receivers

    return build_receivers(settings)


def open_pager(
    settings: Settings, store: Store, receivers: dict[str, Notifier], wake: Callable[[], None] | None = None
) -> Pager:
    """Plans pages into ``store``'s outbox (give it the pipeline's store: pages go in before the alerts)."""
    zone = settings.organisation.timezone
    return Pager(store, settings.notify, receivers, wake=wake, act_with=store_options(settings), zone=zone)


def store_options(settings: Settings) -> list[str]:
    """What a command needs to reach this store: ``--config FILE`` if one was loaded, and ``--data-dir DIR``
    unless the store is in ./data, where a command run in the service's directory looks by default (both
    absolute: a page is read anywhere)."""
    options = ["--config", str(settings.config_file)] if settings.config_file is not None else []
    data_dir = Path(settings.data_dir).resolve()
    return options + ([] if data_dir == Path("data").resolve() else ["--data-dir", str(data_dir)])


def open_dispatcher(settings: Settings, store: Store, receivers: dict[str, Notifier]) -> Dispatcher:
    """Delivers the outbox; from another thread, give it a store connection of its own."""
    return Dispatcher(store, receivers, settings.notify.delivery)


@contextmanager
def live_paging(settings: Settings, store: Store) -> Iterator[Pager]:
    """A pager for the pipeline's ``store``, and a delivery thread on a connection of its own until exit."""
    receivers = open_receivers(settings)
    delivery_store = open_store(settings)
    delivery = settings.notify.delivery
    dispatcher = open_dispatcher(settings, delivery_store, receivers)
    loop = DeliveryLoop(dispatcher, delivery.poll_interval, delivery.drain_on_exit)
    loop.start()
    try:
        yield open_pager(settings, store, receivers, wake=loop.wake)
    finally:
        loop.stop()
        delivery_store.close()
        for receiver in receivers.values():
            receiver.close()


def build_engine(settings: Settings) -> DetectionEngine:
    # detectors that keep files (trained models) keep them in the data dir
    return DetectionEngine(settings, build_detectors(settings.detectors, data_dir=Path(settings.data_dir)))


def build_pipeline(
    settings: Settings,
    store: Store,
    notifier: Pager | None,
    progress: Callable[[IngestReport], None] | None = None,
    source_kind: str | None = None,
) -> Pipeline | KafkaIngest:
    """The pipeline for a source of ``source_kind`` (default: the configured ``source.kind``).

    ``replay`` reads files whatever source ``run`` is configured for: it names the kind it reads.
    """
    if (source_kind or settings.source.kind) == "kafka":
        from ingest.kafka_source import KafkaIngest

        # one pipeline per partition, each with its own detector state (see ingest.kafka_source)
        def partition_pipeline(checkpoint: str) -> Pipeline:
            return Pipeline(settings, store, build_engine(settings), notifier, progress, checkpoint, 0)

        return KafkaIngest(store, partition_pipeline, settings.ingest.batch_lines)
    return Pipeline(settings, store, build_engine(settings), notifier, progress)


@contextmanager
def serving_metrics(settings: Settings) -> Iterator[PipelineMetrics | None]:
    """Metrics for the pipeline, served with the probes while inside (``[metrics]``); None when disabled."""
    if not settings.metrics.enabled:
        yield None
        return
    metrics = PipelineMetrics()
    server: MetricsServer | None  # declared apart: mypy then keeps the try's narrowing in its else
    try:
        server = MetricsServer(metrics, settings.metrics.address, settings.metrics.port).start()
    except OSError as exc:  # a port in use must not stop ingestion: the operator is told, loudly
        log.error("metrics endpoint not served on %s:%s: %s", settings.metrics.address, settings.metrics.port, exc)
        server = None
    else:
        log.info("metrics and probes on http://%s:%d/metrics", settings.metrics.address, server.port)
    try:
        yield metrics
    finally:
        metrics.set_ready(False)
        if server is not None:
            server.close()


@contextmanager
def logging_chain_heads(settings: Settings) -> Iterator[ChainHeadLog | None]:
    """The chain's head logged while inside: at once, then every ``logging.chain_head_every`` (0: never)."""
    every = settings.logging.chain_head_every
    if not every or settings.store.kind != "sqlite":  # Elasticsearch keeps no chain
        yield None
        return
    heads = ChainHeadLog(lambda: _open_sqlite(settings, readonly=True), every).start()
    try:
        yield heads
    finally:
        heads.stop()


@contextmanager
def purging(settings: Settings) -> Iterator[RetentionLoop | None]:
    """Retention applied while inside: at once, then every ``retention.purge_every`` (0: never)."""
    retention = settings.retention
    if not retention.purge_every or settings.store.kind != "sqlite":  # Elasticsearch: its ILM policies apply it
        yield None
        return
    loop = RetentionLoop(
        lambda: _open_sqlite(settings),  # SQLite only (above): it purges itself
        lambda now: RetentionPolicy.of(retention.events_days, retention.alerts_days, now),
        retention.purge_every,
    ).start()
    try:
        yield loop
    finally:
        loop.stop()
