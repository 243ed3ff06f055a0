"""Kafka -> accesswatch -> store, end to end: events/s into the Elasticsearch test server and into SQLite, same run.

The Kafka test broker and the Elasticsearch test server each run in a
process of their own, as a broker and a cluster would; the real
kafka-python and elasticsearch clients talk to them over loopback sockets.
One accesswatch instance (``KafkaIngest``: one pipeline per partition)
consumes a topic holding a simulated month, first into Elasticsearch, then,
as another consumer group, into SQLite.  A rate is end to end: from the
first poll until every partition's last offset is stored, judged and
checkpointed.  The test servers are Python programs, far slower than Kafka
and Elasticsearch: the figures bound what the product's own code costs on
this path, not what a real cluster would take.

``BENCH_PRODUCTION_EVENTS`` (default 100,000) sizes the month; ``BENCH_PARTITIONS`` (6) the topic.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import threading
import time
from pathlib import Path

from accesswatch.app import build_engine
from bench.bench_replay import simulated_log
from configs.loader import load_settings
from ingest.kafka_send import send_lines
from ingest.kafka_settings import KafkaSettings
from ingest.kafka_source import KafkaIngest, KafkaSource
from ingest.pipeline import Pipeline
from models.config import Settings
from store.base import Store

OUT = Path(__file__).parent / "out" / "production"
TOPIC = "access-events"
CLIENT = {"retry_backoff_ms": 50, "reconnect_backoff_ms": 50}
TIMEOUT = 3600.0  # a run that has not finished in an hour has hung


# -- the test servers, each in its own process -------------------------------------------------------------
def _serve_broker(conn, partitions: int) -> None:
    from tests.fakes.kafka_broker import FakeKafkaBroker

    with FakeKafkaBroker(default_partitions=partitions) as broker:
        broker.create_topic(TOPIC, partitions=partitions)
        broker.create_topic(f"{TOPIC}.deadletter", partitions=1)
        conn.send(broker.bootstrap)
        conn.recv()  # until told to stop


def _serve_elasticsearch(conn) -> None:
    from tests.fakes.es_server import FakeElasticsearch

    with FakeElasticsearch(realtime=False, refresh_interval=1.0) as server:
        conn.send(server.url)
        conn.recv()


class Served:
    def __init__(self, target, *args) -> None:
        self.conn, child = multiprocessing.Pipe()
        self.process = multiprocessing.Process(target=target, args=(child, *args), daemon=True)
        self.process.start()
        self.address: str = self.conn.recv()

    def stop(self) -> None:
        self.conn.send("stop")
        self.process.join(30)


# -- one run ------------------------------------------------------------------------------------------------
def consume(settings: Settings, kafka: KafkaSettings, store: Store, total: int) -> tuple[float, dict]:
    """Seconds until every message is stored, judged and checkpointed; the run's report."""
    source = KafkaSource(kafka, settings.ingest.max_line_bytes, CLIENT)

    def pipeline(checkpoint: str) -> Pipeline:
        return Pipeline(settings, store, build_engine(settings), None, None, checkpoint, 0)

    ingest = KafkaIngest(store, pipeline, settings.ingest.batch_lines)
    thread = threading.Thread(target=ingest.run, args=(source,), daemon=True)
    started = time.perf_counter()
    thread.start()
    deadline = time.monotonic() + TIMEOUT
    while sum(part.checkpointed for part in list(ingest._parts.values())) < total:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the run did not finish")
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    source.stop()
    thread.join(60)
    source.close()
    return seconds, ingest.report.as_dict()


def main() -> None:
    events = int(os.environ.get("BENCH_PRODUCTION_EVENTS", "100000"))
    partitions = int(os.environ.get("BENCH_PARTITIONS", "6"))
    lines = simulated_log(events).read_bytes().splitlines()
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    settings = load_settings(env={}, overrides={"data_dir": str(OUT / "data")})
    load = os.getloadavg()
    broker, cluster = Served(_serve_broker, partitions), Served(_serve_elasticsearch)
    try:
        kafka = {
            "bootstrap_servers": [broker.address],
            "topics": [TOPIC],
            "dead_letter_topic": f"{TOPIC}.deadletter",
            "fetch_max_wait": 0.1,
        }
        started = time.perf_counter()
        sent = send_lines(lines, TOPIC, KafkaSettings(**kafka), CLIENT)
        produce = time.perf_counter() - started
        print(
            f"{sent.sent:,} events produced to {partitions} partitions in {produce:.1f} s"
            f" ({sent.sent / produce:,.0f}/s); load average before: {load[0]:.2f}"
        )

        from store.elasticsearch import ElasticsearchSettings, ElasticsearchStore
        from store.sqlite import SqliteStore

        runs = {
            "elasticsearch": lambda: ElasticsearchStore(ElasticsearchSettings(hosts=[cluster.address], replicas=0)),
            "sqlite": lambda: SqliteStore(OUT / "data" / "accesswatch.db"),
        }
        for name, open_store in runs.items():
            store = open_store()
            seconds, report = consume(settings, KafkaSettings(**kafka, group_id=f"bench-{name}"), store, sent.sent)
            store.close()
            print(
                f"into {name:<13}: {report['stored']:,} events in {seconds:.1f} s = {report['stored'] / seconds:,.0f}"
                f" events/s end to end; alerts raised {report['alerts_raised']}, duplicates"
                f" {report['duplicates']}, dead letters {report['dead_letters']}"
            )
    finally:
        broker.stop()
        cluster.stop()
    print(f"load average after: {os.getloadavg()[0]:.2f} (2 cores; other work on the machine shows here)")


if __name__ == "__main__":
    main()
