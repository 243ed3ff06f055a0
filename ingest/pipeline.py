"""The one pipeline: parse, store, detect, alert.  Live ingestion and replays both run here.

Per batch: lines are parsed (bad ones become dead letters), the events are
written to the store (which says which ones are new), only the new ones go to
the detectors, in store order, and the alerts they raise are paged (into the
store's outbox, delivered by ``notify.dispatch``) and stored.  Detector state
is checkpointed with the store position it covers;
after a crash, the events stored past that position are fed to the
detectors again from the store, so nothing is judged twice or skipped, and
the same alerts come out (alert ids are deterministic, and a stored alert is
not paged again).
"""

from __future__ import annotations

import logging
import pickle
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

from detectors.engine import DetectionEngine, EngineOutput
from detectors.incidents import attach
from detectors.state_codec import decode_state, encode_state
from ingest.detection_worker import Answer, DetectionWorker
from ingest.metrics import PipelineMetrics
from ingest.parse import BatchParser, ParsedBatch, Parser
from ingest.sources import RawRecord, Source
from ingest.stage_times import StageTimes
from ingest.stored_alerts import StoredAlerts
from ingest.tampering import tampering_alerts
from models.alert import Alert, AlertStatus
from models.config import Settings
from models.incident import CLOSED, Incident
from notify.outbox import Pager
from store.base import IncomingEvent, Store, WriteResult

log = logging.getLogger(__name__)

CHECKPOINT = "detectors"


@dataclass(frozen=True, slots=True)
class Stored:
    """What publishing a judged batch needs of it: the batch itself is let go once it is sent to be judged."""

    tampering: list[Alert]  # refused rewrites of stored events (ingest.tampering): alerts of their own
    last_seq: int  # the store position after the batch
    events: int  # new events stored


@dataclass(frozen=True, slots=True)
class StateDue:
    """A checkpoint asked of the worker: its answer, the state, covers the store up to ``last_seq``."""

    last_seq: int


@dataclass(slots=True)
class IngestReport:
    lines_read: int = 0
    stored: int = 0
    duplicates: int = 0
    redelivered: int = 0  # of the duplicates, Kafka's messages again after a restart: judged again (``_to_judge``)
    dead_letters: int = 0
    late_events: int = 0  # stored, but their window had closed: not judged
    conflicts: int = 0  # an id seen before with other content
    alerts_raised: int = 0
    alerts_updated: int = 0
    recovered: int = 0  # events fed again to the detectors after a restart
    started: float = field(default_factory=time.monotonic)
    stages: StageTimes = field(default_factory=StageTimes)  # where the time went (ingest.stage_times)

    @property
    def balanced(self) -> bool:
        """Every line is accounted for: stored, a duplicate, or a dead letter."""
        return self.lines_read == self.stored + self.duplicates + self.dead_letters

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def as_dict(self) -> dict[str, int | float]:
        return {
            "lines_read": self.lines_read,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "dead_letters": self.dead_letters,
            "late_events": self.late_events,
            "conflicts": self.conflicts,
            "alerts_raised": self.alerts_raised,
            "alerts_updated": self.alerts_updated,
            "seconds": round(self.elapsed, 3),
        }


class Pipeline:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        engine: DetectionEngine,
        notifier: Pager | None,  # None: page nobody (a replay without --page)
        progress: Callable[[IngestReport], None] | None = None,
        checkpoint_name: str = CHECKPOINT,
        checkpoint_events: int | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self._engine: DetectionEngine | None = engine
        self.notifier = notifier
        self.progress = progress
        self.parser: BatchParser = Parser(engine.classifier, settings.ingest)
        self.metrics: PipelineMetrics | None = None  # issue 7: set for run and demo (ingest.metrics)
        self.report = IngestReport()
        self._position = 0  # store position the detectors have seen up to
        self._since_checkpoint = 0
        # Kafka runs one pipeline per partition, each with a checkpoint of its own that the
        # source saves at an offset (ingest.kafka_source); 0: never on the pipeline's own count
        self.checkpoint_name = checkpoint_name
        self.checkpoint_events = settings.ingest.checkpoint_events if checkpoint_events is None else checkpoint_events
        # a replay's engine moves to a process of its own once it is worth the start-up (ingest.detection_worker)
        # what comes back with each answer: the batch judged, or the checkpoint asked (``ask_state``)
        self._worker: DetectionWorker[Stored | StateDue] | None = None
        self._spare: DetectionWorker[Stored | StateDue] | None = None  # started ahead, not yet handed the engine
        self._left_behind: tuple[bytes, int] = (b"", 0)
        # set when a run failed with the engine here: it has judged batches past the last checkpoint
        self._stale = False
        # during a replay, the pipeline's own store work (alerts, pages, checkpoints) queues on the
        # store writer's thread (``_in_store_order``)
        self._store_thread: ThreadPoolExecutor | None = None
        self._store_work: deque[Future[None]] = deque()

    @property
    def engine(self) -> DetectionEngine:
        """The detection engine; after a run that judged in a worker, restored on first use from what it saved."""
        if self._stale:
            # judging again from here would count those batches twice: a new pipeline recovers from the
            # last checkpoint, as a restart does
            raise RuntimeError("this pipeline's run failed with its detector state past the last checkpoint")
        if self._engine is None:
            assert self._worker is None, "the engine is in the detection worker"
            self._engine = self._restored()
        return self._engine

    @engine.setter
    def engine(self, engine: DetectionEngine) -> None:
        self._engine = engine

    def _restored(self) -> DetectionEngine:
        """As a restart finds it: the engine as it left for the worker, with the state the worker saved since."""
        engine: DetectionEngine = pickle.loads(self._left_behind[0])
        checkpoint = self.store.load_checkpoint(self.checkpoint_name)
        if checkpoint is not None:
            engine.load_state(decode_state(checkpoint.state))
        return engine

    # -- lifecycle ----------------------------------------------------------------
    def recover(self) -> int:
        """Restore detector state, and feed it what was stored after the last checkpoint."""
        checkpoint = self.store.load_checkpoint(self.checkpoint_name)
        if checkpoint is not None:
            self.engine.load_state(decode_state(checkpoint.state))
            self._position = checkpoint.seq
        recovered = 0
        for batch in self.store.events_after(self._position):
            output = self.engine.process([incoming.event for incoming in batch])
            self._publish(output.alerts)
            recovered += len(batch)
        if recovered:
            self._position = self._store_position()
            self.checkpoint()
            log.info("recovered detector state: %d stored events judged again", recovered)
        self.report.recovered = recovered
        return recovered

    def run(self, source: Source, close_windows: bool) -> IngestReport:
        """Ingest everything the source gives; at its end, close all windows if asked (a replay).

        When the source is finite and does not acknowledge what is stored (a
        replay of files), batch k is written by a writer thread on its own store
        connection while batch k-1 is judged and batch k+1 parsed: SQLite
        works without the GIL.  Once ``ingest.detection_process_after`` events
        are stored, the detection engine moves to a process of its own
        (``ingest.detection_worker``), so judging takes the second core while
        parsing and storing keep this one.  The order of events, and so every
        result, is the same as one batch at a time.  A live source, or one that acknowledges (Kafka offsets), is run
        one batch at a time: alerts never wait for the next batch, and only
        what is stored and judged is acknowledged.
        """
        self.recover()
        if self.metrics is not None:
            self.metrics.set_ready(True)
        # live sources are judged batch by batch: an alert must not wait for the next line to arrive
        overlap = type(source).commit is Source.commit and not source.live
        writer = self.store.open_writer() if overlap else self.store
        failed = True
        stages = self.report.stages
        on_cpu = time.thread_time()
        try:
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-writer") as pool:
                self._store_thread = pool if overlap else None
                try:
                    in_flight: tuple[Sequence[RawRecord], ParsedBatch, Future[WriteResult]] | None = None
                    for records in _timed(source.batches(self._batch_size(source)), stages):
                        if self.metrics is not None:
                            self.metrics.read(records)
                        started = time.perf_counter()
                        parsed = self.parser.parse(records)
                        stages.parsing += time.perf_counter() - started
                        writing = pool.submit(stages.store, writer.write, parsed.events, parsed.dead_letters)
                        if in_flight is not None:
                            self._judge(*in_flight)
                        in_flight = (records, parsed, writing)
                        if not overlap:
                            self._judge(*in_flight)
                            in_flight = None
                            source.commit()
                        elif self._worker is None:
                            self._move_to_worker_when_due()
                    if in_flight is not None:
                        self._judge(*in_flight)
                finally:
                    self._store_thread = None
                    queued, self._store_work = self._store_work, deque()
                for work in queued:  # waited for; a failure is raised here
                    work.result()
            failed = False
        finally:
            if writer is not self.store:
                writer.close()
            self._finish(close_windows and not source.stopping, failed)
            stages.main_cpu += time.thread_time() - on_cpu
        # a measurement for whoever tunes the pipeline (``bench/bench_replay.py`` asks for debug), not news for an
        # operator: at info every replay ended with a JSON line on stderr, amid its report and its pages
        log.debug("where the run's time went, in seconds", extra=stages.as_dict())
        return self.report

    def _move_to_worker_when_due(self) -> None:
        ingest = self.settings.ingest
        if not ingest.detection_process:
            return
        if self._spare is None and self.report.stored >= ingest.detection_process_after // 4:
            # Started ahead, while the engine still judges here and the other core is idle: the worker's
            # interpreter and its detectors' heavy imports (2 s of CPU with scikit-learn) are then not on
            # the path of every batch, which would wait behind them.
            imports = sorted({module for detector in self.engine.detectors for module in detector.imports})
            self._spare = DetectionWorker(imports=imports)
        if self.report.stored >= ingest.detection_process_after:
            self._move_engine_to_worker()

    def _move_engine_to_worker(self) -> None:
        # only a snapshot stays here (a fraction of the live engine's memory), to fall back on if the worker fails
        snapshot = pickle.dumps(self.engine, protocol=pickle.HIGHEST_PROTOCOL)
        worker, self._spare = self._spare or DetectionWorker(), None
        worker.adopt(snapshot)
        self._worker = worker
        self._left_behind = (snapshot, self._position)
        self._engine = None  # it lives in the worker now

    def _fall_back(self) -> None:
        """The engine as it left for the worker, and the position it covered: the last checkpoint stands."""
        snapshot, self._position = self._left_behind
        self._engine = pickle.loads(snapshot)

    def _finish(self, close_windows: bool, failed: bool) -> None:
        """Judge what is in flight, close the windows if asked, and save the detector state."""
        if self._spare is not None:  # started ahead for a run that ended before it was due
            self._spare.discard()
            self._spare = None
        worker = self._worker
        if worker is None:
            if failed:
                # As after a crash: the last checkpoint stands, and what was stored since is judged again
                # at the next start.  The engine here has seen batches whose alerts may not be stored:
                # closing its windows or saving its state now would put them past that.
                log.warning("run stopped early: the detector state since the last checkpoint is judged again")
                self._stale = True
                return
            if close_windows:
                self._publish(self.engine.flush().alerts)
            self.checkpoint()
            return
        judged = False
        try:
            if not failed:
                self._take(worker.drain())
                if close_windows:
                    self._publish(worker.flush().alerts)
                busy, cpu = worker.busy()
                self.report.stages.detection_busy += busy
                self.report.stages.detection_cpu += cpu
                self.checkpoint()
                judged = True
        finally:
            # Nothing more is asked of it.  Its engine is not brought back (a second copy of its memory
            # here): ``engine`` restores it from the checkpoint just saved, if anyone asks.
            self._worker = None
            worker.close()
            if not judged:
                # an interrupted exchange may have left the pipe mid-message: the last checkpoint
                # stands (the next run judges what was stored since, again)
                self._fall_back()
                if failed:
                    log.warning("run stopped early: the detector state since the last checkpoint is judged again")

    def _batch_size(self, source: Source) -> int:
        if source.live:
            return self.settings.ingest.batch_lines
        # a replay writes in large transactions: index upkeep is paid per page, not per row
        return max(self.settings.ingest.batch_lines, self._transaction_events())

    def _transaction_events(self) -> int:
        return self.settings.store.sqlite.transaction_events if self.settings.store.kind == "sqlite" else 5000

    # -- one batch ------------------------------------------------------------------
    def ingest(self, records: Sequence[RawRecord]) -> None:
        """Parse, store and judge one batch, here and now (Kafka: a partition's records, just polled)."""
        if self.metrics is not None:  # its latencies count from here, as ``run``'s do from the read
            self.metrics.read(records)
        try:
            parsed = self.parser.parse(records)
            self._record(records, parsed, self.store.write(parsed.events, parsed.dead_letters))
        finally:
            if self.metrics is not None:
                self.metrics.forget(records)  # not judged (the store failed): no latency, nor a stale read time

    def _judge(self, records: Sequence[RawRecord], parsed: ParsedBatch, writing: Future[WriteResult]) -> None:
        started = time.perf_counter()
        written = writing.result()
        self.report.stages.waiting_for_store += time.perf_counter() - started
        self._record(records, parsed, written)

    def _record(self, records: Sequence[RawRecord], parsed: ParsedBatch, written: WriteResult) -> None:
        report = self.report
        report.lines_read += len(records)
        report.stored += len(written.stored)
        report.duplicates += written.duplicates
        report.redelivered += len(written.redelivered)
        report.dead_letters += len(parsed.dead_letters)
        report.conflicts += len(written.conflicts)
        if written.conflicts:
            log.warning("event ids seen before with other content: %s", ", ".join(written.conflicts[:10]))
        if self.metrics is not None:
            self.metrics.batch(records, len(parsed.dead_letters), written)
        judging = _to_judge(parsed, written)
        stored = Stored(tampering_alerts(parsed, written), written.last_seq, len(written.stored))
        started = time.perf_counter()
        if self._worker is None:
            output = self.engine.process([incoming.event for incoming in judging])
            report.stages.judging += time.perf_counter() - started
            self._conclude(output, stored)
        else:
            answers = self._worker.submit(judging, stored)
            report.stages.judging += time.perf_counter() - started
            self._take(answers)
        self._since_checkpoint += stored.events
        if self.checkpoint_events and self._since_checkpoint >= self.checkpoint_events:
            if self._worker is None:
                self.checkpoint()
            else:
                # Asked, not waited for: the worker answers it after the batches sent before it, so the
                # state covers exactly those, and their alerts are published by the time it is saved
                # (``_take``).  Parsing and storing go on while it is serialised (a second at 1M events).
                self._take(self._worker.ask_state(StateDue(stored.last_seq)))
                self._since_checkpoint = 0

    def _take(self, answers: list[tuple[Answer, Stored | StateDue]]) -> None:
        """The worker's answers, in the order asked: judged batches, and states to save."""
        for answer, asked in answers:
            if isinstance(asked, StateDue):
                assert self._position == asked.last_seq, "a state saved must cover exactly what was published"
                # queued after the alerts it covers (``_conclude``): saved once they are stored
                self._in_store_order(self.store.save_checkpoint, self.checkpoint_name, asked.last_seq, answer)
            else:
                assert isinstance(answer, EngineOutput), "a judged batch is answered with the engine's output"
                self._conclude(answer, asked)

    def _conclude(self, output: EngineOutput, stored: Stored) -> None:
        """A judged batch: publish what it raised, and move the position the detector state covers."""
        self.report.late_events += output.late_events
        self._in_store_order(self._publish, [*output.alerts, *stored.tampering])  # never ignored (issue 7)
        self._position = stored.last_seq
        if self.progress is not None:
            self.progress(self.report)

    def _in_store_order(self, work: Callable[..., None], *args: object) -> None:
        """Do store work now, or during a replay queue it on the store writer's thread, after what is queued there.

        The pipeline's connection would otherwise wait for the writer's
        transaction to end in SQLite's busy handler, which sleeps in steps of
        up to 100 ms: a replay's main thread spent a third of its time asleep
        there, parsing nothing.  Queued there, the work is done in the order
        asked (an alert is stored before a checkpoint covering it is saved,
        and each batch's alerts are looked up after the last batch's are
        stored), by one thread, so the two connections never wait on each
        other.  A failure is raised at the next call, or at the end of the
        run, and nothing queued after it is done: no checkpoint is saved over
        alerts that were not stored.
        """
        if self._store_thread is None:
            work(*args)
            return
        while self._store_work and self._store_work[0].done():
            self._store_work.popleft().result()  # what is done of it: a failure is raised here
        before = self._store_work[-1] if self._store_work else None
        self._store_work.append(self._store_thread.submit(self.report.stages.store, _after, before, work, *args))

    def checkpoint(self, position: int | None = None) -> None:
        """Save the detector state; ``position``: what it covers when the source keeps the order (an offset)."""
        if position is not None:
            self._position = position
        # serialised where the engine lives (the worker's state never passes through here as objects)
        state = self._worker.state() if self._worker is not None else encode_state(self.engine.to_state())
        # after the alerts it covers, which may still be queued (``_in_store_order``)
        self._in_store_order(self.store.save_checkpoint, self.checkpoint_name, self._position, state)
        self._since_checkpoint = 0

    def _store_position(self) -> int:
        return getattr(self.store, "last_seq", self._position)

    def _publish(self, alerts: Sequence[Alert]) -> None:
        """Group alerts into incidents, page what is new or more severe, then store it all."""
        if not alerts:
            return
        gap = timedelta(seconds=self.settings.alerts.incident_gap)
        incidents: dict[str, Incident] = {}  # by actor: the incident this batch last touched
        changed: dict[str, Incident] = {}
        to_page: list[tuple[Alert, str]] = []  # with the id of the incident it is paged for
        grouped: list[Alert] = []
        # what the loop reads of the store, read up front: nothing is stored until the end
        stored = StoredAlerts(self.store)
        stored.fetch(alert.alert_id for alert in alerts)
        latest = self.store.latest_incidents([alert.actor_id for alert in alerts])
        stored.fetch(alert_id for incident in latest.values() for alert_id in incident.alert_ids)
        for alert in alerts:
            known = stored.get(alert.alert_id)
            if known is not None:  # judged again after a restart: only growth is a new revision (issue 7)
                alert = alert.model_copy(update={"incident_id": known.incident_id, "status": known.status})
            actors_latest = current = incidents.get(alert.actor_id) or latest.get(alert.actor_id)
            if (
                known is not None
                and known.incident_id
                and (current is None or current.incident_id != known.incident_id)
            ):
                current = changed.get(known.incident_id) or self.store.get_incident(known.incident_id)
            follows = None  # the closed case this alert grew out of: what it found past the close is news
            if known is not None and current is not None and current.incident_id == known.incident_id:
                if current.status in CLOSED:
                    if alert.revision <= known.revision:
                        # what the person closed, judged again (a replay, a restart from an earlier
                        # checkpoint): nothing they did not see, so the case stays as they left it
                        continue
                    # a closed case takes no more alerts: it goes where a new alert of the actor's would
                    follows, current = current, actors_latest
                    alert = alert.model_copy(update={"status": AlertStatus.OPEN})
            members = {a.alert_id: a for a in stored.of(current.alert_ids)} if current else {}
            members.update({a.alert_id: a for a in grouped if current and a.incident_id == current.incident_id})
            incident = attach(current, alert, gap, members, follows)
            alert = alert.model_copy(update={"incident_id": incident.incident_id})
            incidents[alert.actor_id] = changed[incident.incident_id] = incident
            grouped.append(alert)
            # documented work alone was not paged (``notify.page_documented``): undocumented findings make it news
            # at whatever severity
            news = current is not None and current.documented and not incident.documented
            if known is None:
                self.report.alerts_raised += 1
                if self.metrics is not None:
                    self.metrics.raised(alert)
            elif alert != known:  # the same alert judged again (a replay, a redelivery) is no update
                self.report.alerts_updated += 1
            if known is None or follows is not None:
                if (
                    current is None
                    or current.incident_id != incident.incident_id
                    or alert.severity.rank > current.severity.rank
                    or news
                ):
                    to_page.append((alert, incident.incident_id))  # a new incident, or one that became more severe
            elif news or (
                alert.severity.rank > known.severity.rank
                and alert.severity.rank > (current.severity.rank if current else -1)
            ):
                to_page.append((alert, incident.incident_id))
        # pages go into the store's outbox before the alerts are stored: a crash in between
        # plans them again on recovery under the same ids, so none is lost and none is sent
        # twice; a crash after finds the alerts known and plans nothing (notify.outbox)
        if to_page and self.notifier is not None:
            self.notifier.page([(alert, changed[incident_id]) for alert, incident_id in to_page])
        self.store.upsert_alerts(grouped, list(changed.values()))


def _timed(batches: Iterable[Sequence[RawRecord]], stages: StageTimes) -> Iterator[Sequence[RawRecord]]:
    """The source's batches, the time taken to get each added to ``stages.reading``."""
    batches = iter(batches)
    while True:
        started = time.perf_counter()
        records = next(batches, None)
        stages.reading += time.perf_counter() - started
        if records is None:
            return
        yield records


def _after(before: Future[None] | None, work: Callable[..., None], *args: object) -> None:
    """``work``, unless the work queued before it failed (then that failure, again)."""
    if before is not None:
        before.result()  # done: one thread does the queue in order
    work(*args)


def _to_judge(parsed: ParsedBatch, written: WriteResult) -> list[IncomingEvent]:
    """The new events, and the ones delivered again that no checkpoint has seen, in the batch's order.

    A redelivery (the same Kafka message again, after a consumer died between
    storing a batch and checkpointing it) is a duplicate to the store but news
    to detector state restored from before it.
    """
    if not written.redelivered:
        return written.stored
    wanted = {incoming.event.event_id for incoming in (*written.stored, *written.redelivered)}
    judged = []
    for incoming in parsed.events:
        if incoming.event.event_id in wanted:
            wanted.discard(incoming.event.event_id)  # a repeat within the batch is judged once
            judged.append(incoming)
    return judged
