"""The detection engine in a process of its own, beside the pipeline.

A replay is bound by Python's interpreter lock: parsing, storing and
detecting take turns on one core.  Moved to a worker process, the detection
engine judges batch k on the second core while the pipeline parses and
stores batch k+1.  The engine itself is shipped there (pickled, with all its
learned state), so what it learns and raises is exactly what it would have
learned and raised in place: it sees the same events in the same order.
What comes back is its checkpoint state, serialised there: the pipeline
saves it as it is, and never holds a second copy of the engine's memory.

The worker is told only what the pipeline stored: the events it decoded,
in msgpack (``models.fast_event.encode_events``; about 1 µs an event to
read there, against 3.5 to decode the JSON lines again).  It answers each
batch with the engine's output, at most ``IN_FLIGHT`` batches behind.  A
checkpoint is asked in line with the batches (``ask_state``): answered after
those sent before it, and saved by the pipeline once their alerts are
published, so the state saved always covers exactly the alerts already
published, and nobody waits for it.
"""

from __future__ import annotations

import fcntl
import gc
import importlib
import io
import logging
import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from multiprocessing.connection import Connection
from typing import Any, Generic, TypeVar

from detectors.engine import DetectionEngine, EngineOutput
from detectors.state_codec import encode_state
from models.fast_event import decode_for_detection, encode_events, validate_event
from store.base import IncomingEvent

log = logging.getLogger(__name__)

Context = TypeVar("Context")
Answer = EngineOutput | bytes  # a judged batch's output, or a state asked for (``ask_state``)

# Batches sent and not yet answered, at most: the pipeline parses and stores ahead of the worker by this
# much (each a batch of raw lines held in the worker, ~7 MB for 10,000 events), so neither waits on the
# other's every batch.
IN_FLIGHT = 2


# A batch goes over the pipe in pieces of the pipe's size, and each piece costs the worker's reading
# thread a turn of the interpreter lock, which its busy engine thread yields only every switch interval
# (5 ms).  Through Linux's default 64 KiB, a 10,000-event batch (5.5 MB) took 85 pieces: measured
# beside a busy thread, 0.45 s to send, the pipeline's main thread blocked all along.  Through 1 MiB
# (an unprivileged process's most, ``/proc/sys/fs/pipe-max-size``): 0.055 s.
PIPE_BYTES = 1 << 20


def widen_pipe(fd: int, size: int = PIPE_BYTES) -> int:
    """Make the pipe at ``fd`` hold ``size`` bytes if the system lets us; returns what it holds."""
    set_size, get_size = getattr(fcntl, "F_SETPIPE_SZ", None), getattr(fcntl, "F_GETPIPE_SZ", None)
    if set_size is None or get_size is None:  # not Linux: the pipe keeps its size
        return 0
    try:
        fcntl.fcntl(fd, set_size, size)
    except OSError:  # over this user's pipe quota, or a lower system limit: slower, not wrong
        pass
    return fcntl.fcntl(fd, get_size)


class DetectionWorkerDied(RuntimeError):
    """The worker process ended without answering: its engine state is lost, nothing past the last checkpoint counts."""


class DetectionWorker(Generic[Context]):
    """The engine in a worker process; ``submit`` answers with the batches judged meanwhile (``IN_FLIGHT`` behind).

    ``Context`` is whatever the caller needs back with a batch's output (its
    store position, say): it is kept here, not sent.
    """

    def __init__(self, engine: bytes | None = None, imports: Sequence[str] = ()) -> None:
        """``engine``: the pickled engine (the caller keeps the bytes, not a second live engine), now or
        later (``adopt``); ``imports``: modules the process imports while it waits for it (``Detector.imports``).
        """
        # A command of its own, not multiprocessing: fork could hand the child a lock that one of the
        # pipeline's threads held (the store writer, the metrics server), and spawn re-runs whatever
        # script started this process.  It sees the modules this process sees.
        environment = {**os.environ, "PYTHONPATH": os.pathsep.join(path for path in sys.path if path)}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "ingest.detection_worker", *(f"--import={module}" for module in imports)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=environment,
            # A process group of its own: a terminal's Ctrl-C goes to its whole foreground group, and
            # reached the worker still importing, before it could ignore it (a KeyboardInterrupt
            # traceback).  Ctrl-C is the pipeline's to handle; the worker ends when its pipe closes.
            process_group=0,
        )
        assert self._process.stdin is not None and self._process.stdout is not None
        for pipe in (self._process.stdin, self._process.stdout):
            widen_pipe(pipe.fileno())
        self._to = Connection(os.dup(self._process.stdin.fileno()), readable=False)
        self._from = Connection(os.dup(self._process.stdout.fileno()), writable=False)
        self._process.stdin.close()
        self._process.stdout.close()
        self._pending: deque[Context] = deque()
        self._closed = False
        if engine is not None:
            self.adopt(engine)

    def adopt(self, engine: bytes) -> None:
        """Hand the worker its engine (pickled): batches may be submitted from now on."""
        self._send(("engine", engine))

    def submit(self, events: Sequence[IncomingEvent], context: Context) -> list[tuple[Answer, Context]]:
        try:
            encoded = encode_events([incoming.event for incoming in events])
        except (OverflowError, ValueError):  # a 65-bit integer in someone's ``extra``: the lines, as they came
            self._send(("judge", [incoming.raw for incoming in events]))
        else:
            self._send_batch(encoded)
        self._pending.append(context)
        return self._answers(keep=IN_FLIGHT)

    def ask_state(self, context: Context) -> list[tuple[Answer, Context]]:
        """Ask for the checkpoint state without waiting for it: ``bytes``, answered after the batches sent before.

        It comes back among the answers of ``submit`` and ``drain``, with
        ``context``, in the order asked; meanwhile the caller goes on.
        """
        self._send(("state", None))
        self._pending.append(context)
        return self._answers(keep=IN_FLIGHT)

    def drain(self) -> list[tuple[Answer, Context]]:
        return self._answers(keep=0)

    def state(self) -> bytes:
        """The engine's checkpoint state, as bytes: ``DetectionEngine.to_state``, encoded in the worker
        (``detectors.state_codec``)."""
        assert not self._pending, "drain before asking for the state: it must cover what was published"
        self._send(("state", None))
        return self._receive()

    def flush(self) -> EngineOutput:
        assert not self._pending, "drain before flushing"
        self._send(("flush", None))
        return self._receive()

    def busy(self) -> tuple[float, float]:
        """Seconds the worker has spent on what it was asked, and its process's CPU seconds so far
        (``ingest.stage_times``)."""
        assert not self._pending, "drain before asking"
        self._send(("busy", None))
        return self._receive()

    def close(self) -> None:
        """End the worker: what its engine learned since the last ``state`` asked of it is let go."""
        self._stop()

    def discard(self) -> None:
        """End a worker never handed an engine, at once: it has nothing to finish (maybe its imports)."""
        if self._closed:
            return
        self._closed = True
        self._process.kill()
        self._process.wait(timeout=30)
        self._to.close()
        self._from.close()

    # -- the wire ------------------------------------------------------------------------
    def _answers(self, keep: int) -> list[tuple[Answer, Context]]:
        answered = []
        while len(self._pending) > keep:
            answered.append((self._receive(), self._pending.popleft()))
        return answered

    def _send(self, message: tuple[str, Any]) -> None:
        try:
            self._to.send(message)
        except (BrokenPipeError, ConnectionResetError, EOFError, OSError) as exc:
            raise self._died() from exc

    def _send_batch(self, encoded: bytes) -> None:
        """A batch's msgpack: its size as a message, then the bytes themselves, written as they are.

        Sent inside a message, the batch (5.5 MB for 10,000 events) was copied by pickle on this side, and
        on the worker's by the connection's buffer and by pickle again, those two while its reading thread
        held the interpreter lock its engine needs: measured, 100 such batches cost 0.18 s of this process's
        CPU and 0.70 s of the receiver's, against 0.10 s and 0.21 s written and read whole (``_read_batch``).
        """
        self._send(("batch", len(encoded)))
        view, fd = memoryview(encoded), self._to.fileno()
        try:
            while view:
                view = view[os.write(fd, view) :]
        except OSError as exc:
            raise self._died() from exc

    def _receive(self) -> Any:
        try:
            kind, payload = self._from.recv()
        except (EOFError, ConnectionResetError, OSError) as exc:
            raise self._died() from exc
        if kind == "error":
            raise DetectionWorkerDied(f"the detection worker failed: {payload}")
        return payload

    def _died(self) -> DetectionWorkerDied:
        try:
            code = self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        return DetectionWorkerDied(f"the detection worker ended (exit code {code})")

    def _stop(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._to.send(("stop", None))
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass
        self._to.close()
        self._from.close()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=5)


def _serve(requests: Connection, answers: Connection, imports: Sequence[str] = ()) -> None:
    """The worker's loop: an engine, then batches to judge, until told to stop or the pipeline goes away."""
    # Ctrl-C is the pipeline's to handle: it drains, takes the engine back and saves its state
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    arriving = _read_ahead(requests)  # reading from now on: the pipeline never waits on our imports
    for module in imports:
        # scikit-learn: 1.5 s of CPU on first use, while every batch would wait behind it
        try:
            importlib.import_module(module)
        except ImportError as exc:  # the detector that needs it says so when it runs
            log.warning("detection worker could not import %s ahead: %s", module, exc)
    gc.freeze()
    gc.set_threshold(1_000_000, 50, 100)  # as the command line sets it (accesswatch.cli says why)
    engine: DetectionEngine | None = None
    busy = 0.0
    for kind, payload in arriving:
        if kind in ("stop", "gone"):
            return  # told to, or the pipeline is gone
        started = time.perf_counter()
        try:
            if kind == "busy":
                if not _answer(answers, ("ok", (busy, time.process_time()))):
                    return
                continue
            if kind == "engine":
                engine = pickle.loads(payload)
                continue
            assert engine is not None, "no engine yet"
            if kind == "judge":
                if type(payload) is bytearray:  # msgpack (``_send_batch``)
                    answer: Any = engine.process(decode_for_detection(payload))
                else:  # the lines themselves, which msgpack could not carry (rare): validated in full
                    answer = engine.process([validate_event(raw) for raw in payload])
            elif kind == "state":
                answer = encode_state(engine.to_state())
            elif kind == "flush":
                answer = engine.flush()
            else:
                raise ValueError(f"unknown request {kind!r}")
        except Exception as exc:  # told to the pipeline, which stops: the engine's state is no longer sound
            log.exception("detection worker failed")
            _answer(answers, ("error", f"{type(exc).__name__}: {exc}"))
            return
        busy += time.perf_counter() - started
        if not _answer(answers, ("ok", answer)):
            return


def _answer(answers: Connection, message: tuple[str, Any]) -> bool:
    """Send an answer; False if the pipeline is gone.

    A pipeline stopped (Ctrl-C) closes its end with batches still in line
    here: it says so itself, in one line, and its last checkpoint stands.
    A traceback from here would only bury that line.
    """
    try:
        answers.send(message)
    except (BrokenPipeError, ConnectionResetError):
        return False
    return True


def _read_ahead(requests: Connection) -> Iterator[tuple[str, Any]]:
    """The requests, read on a thread of their own (started now) as they come.

    A pipe holds 1 MiB at most: without this, the pipeline's send of a batch
    would wait for the batch before it to be judged.  How far ahead it reads
    is bounded by the pipeline, which waits for answers beyond ``IN_FLIGHT``.
    """
    arrived: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()

    # the same descriptor, unbuffered: a batch's bytes follow its "batch" message (``_send_batch``)
    raw = io.FileIO(requests.fileno(), "rb", closefd=False)

    def read() -> None:
        while True:
            try:
                message = requests.recv()
                if message[0] == "batch":
                    message = ("judge", _read_batch(raw, message[1]))
            except (EOFError, OSError):
                arrived.put(("gone", None))
                return
            arrived.put(message)
            if message[0] == "stop":
                return

    threading.Thread(target=read, name="requests", daemon=True).start()
    return iter(arrived.get, None)  # never None: "stop" or "gone" ends the loop


def _read_batch(raw: io.FileIO, size: int) -> bytearray:
    """``size`` bytes from the pipe, read straight into one buffer (the lock let go while the kernel copies)."""
    batch = bytearray(size)
    view, done = memoryview(batch), 0
    while done < size:
        got = raw.readinto(view[done:])
        if not got:
            raise EOFError("the pipeline went away in the middle of a batch")
        done += got
    return batch


def main() -> None:
    """The worker command: requests on standard input, answers on standard output."""
    requests = Connection(os.dup(0), writable=False)
    answers = Connection(os.dup(1), readable=False)
    os.dup2(2, 1)  # whatever a library prints goes to standard error, not into the answers
    imports = [arg.removeprefix("--import=") for arg in sys.argv[1:] if arg.startswith("--import=")]
    _serve(requests, answers, imports)
    # Everything asked is answered.  The engine's memory is the system's to take back: freeing it
    # object by object, which the pipeline waits for, took half a second after 200,000 events.
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
