"""Copying SQLite's write-ahead log into the database file on a thread of its own.

In WAL mode a commit appends pages to the log; a checkpoint copies them
into the database file and ends with an fsync.  SQLite runs it inside
whichever commit finds the log past ``wal_autocheckpoint``, so the replay's
store writer slept there on the disk: about 12 µs an event (2.4 s in a
200,000-event replay, on a disk taking 240 MB/s), a third of its time, on
the path every batch waits for.  Here a thread of its own does it, on its
own connection, while the writer goes on: a PASSIVE checkpoint never
blocks a writer, and copies what is committed.  The writer still
checkpoints by itself past a larger log, should this thread fall behind.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger(__name__)


class WalCheckpointer:
    def __init__(self, path: Path, interval: float = 0.25) -> None:
        self.path = path
        self.interval = interval
        self.checkpoints = 0  # completed, for tests and curiosity
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wal-checkpointer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        db = sqlite3.connect(f"file:{self.path}", uri=True, isolation_level=None, timeout=30)
        try:
            while not self._stop.wait(self.interval):
                try:
                    busy, _, _ = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error as exc:  # the writer's own checkpoints remain: note it and go on
                    log.debug("background WAL checkpoint failed: %s", exc)
                    continue
                if not busy:
                    self.checkpoints += 1
        finally:
            db.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
