"""Sources: where raw access-event lines come from.

A source yields batches of raw records and is told when a batch is safely
stored (``commit``), so that sources with offsets (Kafka) move them only
then.  The pipeline treats every source the same way: files, standard input,
the simulator and Kafka go through one code path.
"""

from __future__ import annotations

import sys
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

# What a dead letter keeps of a line too long to read whole.
OVERSIZE_KEEP = 4096


@dataclass(frozen=True, slots=True)
class RawRecord:
    data: bytes
    source: str  # "file:/path", "stdin", "simulator", "kafka:topic/partition"
    position: str  # where to find the original: "line 12", "offset 4411"
    size: int  # the original size (larger than len(data) for a truncated oversize line)
    oversize: bool = False


class Source(ABC):
    """A stream of raw records in batches; finite (files) or live (simulator, Kafka)."""

    name: str = "source"
    live: bool = False

    def __init__(self) -> None:
        self._stop = threading.Event()

    @abstractmethod
    def batches(self, max_records: int) -> Iterator[list[RawRecord]]:
        """Yield batches until the source is exhausted or ``stop`` is called."""

    def commit(self) -> None:  # noqa: B027 - only sources with offsets need it
        """Everything yielded so far is durably stored."""

    def stop(self) -> None:
        """Ask ``batches`` to end after the current batch (safe from a signal handler)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def close(self) -> None:  # noqa: B027
        """Release files and connections."""


class LineReader:
    """Lines of a JSON Lines stream; a line over the limit is reported, never read whole into memory.

    With ``wait_for_newline`` (a log still being written) a last line with
    no newline yet is left for the next read, so it is never split in two.
    """

    def __init__(self, handle: BinaryIO, source: str, max_line_bytes: int, wait_for_newline: bool = False) -> None:
        self.handle = handle
        self.source = source
        self.max_line_bytes = max_line_bytes
        self.wait_for_newline = wait_for_newline
        self.line_number = 0

    def __iter__(self) -> Iterator[RawRecord]:
        handle, limit = self.handle, self.max_line_bytes
        while True:
            line = handle.readline(limit + 1)
            if not line:
                return
            if not line.endswith(b"\n"):
                if len(line) > limit:
                    yield self._oversize(line)
                    continue
                if self.wait_for_newline:
                    handle.seek(-len(line), 1)
                    return
            self.line_number += 1
            data = line.rstrip(b"\r\n")
            yield RawRecord(data, self.source, f"line {self.line_number}", len(data))

    def _oversize(self, head: bytes) -> RawRecord:
        self.line_number += 1
        size = len(head)
        while True:  # skip the rest of the line in bounded chunks
            chunk = self.handle.readline(1 << 20)
            size += len(chunk)
            if chunk.endswith(b"\n"):
                size -= len(chunk) - len(chunk.rstrip(b"\r\n"))  # the size of the line, not its ending
                break
            if not chunk:
                break
        return RawRecord(head[:OVERSIZE_KEEP], self.source, f"line {self.line_number}", size, oversize=True)


class FileSource(Source):
    """JSON Lines files, one event a line; ``-`` is standard input."""

    name = "file"

    def __init__(self, paths: list[str], max_line_bytes: int, follow: bool = False, poll: float = 0.5) -> None:
        super().__init__()
        self.paths = paths
        self.max_line_bytes = max_line_bytes
        self.follow = follow
        self.live = follow
        self.poll = poll

    def batches(self, max_records: int) -> Iterator[list[RawRecord]]:
        for path in self.paths:
            if self.stopping:
                return
            if path == "-":
                yield from self._batches(sys.stdin.buffer, "stdin", max_records)
                continue
            with open(path, "rb") as handle:
                yield from self._batches(handle, f"file:{Path(path).resolve()}", max_records)

    def _batches(self, handle: BinaryIO, name: str, max_records: int) -> Iterator[list[RawRecord]]:
        batch: list[RawRecord] = []
        lines = LineReader(handle, name, self.max_line_bytes, wait_for_newline=self.follow)
        while not self.stopping:
            for record in lines:
                batch.append(record)
                if len(batch) >= max_records:
                    yield batch
                    batch = []
                    if self.stopping:
                        return
            if batch:
                yield batch
                batch = []
            if not self.follow or self.stopping:
                return
            time.sleep(self.poll)  # a live log: wait for it to grow
