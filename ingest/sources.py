"""Sources: where raw access-event lines come from.

A source yields batches of raw records and is told when a batch is safely
stored (``commit``), so that sources with offsets (Kafka) move them only
then.  The pipeline treats every source the same way: files, standard input,
the simulator and Kafka go through one code path.
"""

from __future__ import annotations

import os
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
# How much of a stream is read at once: about 1,500 lines of the simulator's.
CHUNK_BYTES = 1 << 20
# What some editors (Windows ones) put at the start of a UTF-8 file; RFC 8259 lets a parser ignore it there.
UTF8_BOM = b"\xef\xbb\xbf"


# Not frozen: one is made for every line, and a frozen dataclass sets each field through
# ``object.__setattr__``, four times the cost (1.0 µs against 0.23, measured).
@dataclass(slots=True)
class RawRecord:
    data: bytes
    source: str  # "file:/path", "stdin", "simulator", "kafka:topic/partition"
    position: str  # where to find the original: "line 12", "offset 4411"
    size: int  # the original size (larger than len(data) for a truncated oversize line, whose "\r" counts)
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

    The stream is read a chunk at a time and split, not a line at a time: a
    ``readline`` and a frozen record per line were a fifth of a replay's main
    thread.  With ``wait_for_newline`` (a log still being written) a last line
    with no newline yet is kept for the next read, so it is never split in two.
    """

    def __init__(self, handle: BinaryIO, source: str, max_line_bytes: int, wait_for_newline: bool = False) -> None:
        self.handle = handle
        self.source = source
        self.max_line_bytes = max_line_bytes
        self.wait_for_newline = wait_for_newline
        self.line_number = 0
        self._partial = b""  # the start of a line whose newline is not read yet
        self._skipping: tuple[bytes, int] | None = None  # an oversize line being skipped: its head, its size so far

    def __iter__(self) -> Iterator[RawRecord]:
        for records in self.chunks():
            yield from records

    def chunks(self) -> Iterator[list[RawRecord]]:
        """The records of each chunk read, until the end of the stream (for now, if it is a log being followed)."""
        # read1: what the stream holds now, up to a chunk; a pipe's reader does not wait for a whole chunk
        read = getattr(self.handle, "read1", self.handle.read)
        while True:
            chunk = read(CHUNK_BYTES)
            if not chunk:
                if not self.wait_for_newline:
                    yield self._at_end()
                return
            if self._skipping is not None:
                rest = self._skip(chunk)
                if rest is None:
                    continue
                yield [self._skipped()]
                chunk = rest
            endings = b"\r" in chunk or b"\r" in self._partial
            lines = (self._partial + chunk).split(b"\n") if self._partial else chunk.split(b"\n")
            self._partial = lines.pop()
            if len(self._partial) > self.max_line_bytes:
                self._skip_partial(is_first_line=self.line_number == 0 and not lines)
            if lines:
                yield self._records(lines, endings)

    def _skip_partial(self, is_first_line: bool) -> None:
        """Skip the line begun in ``_partial`` if it is over the limit; a byte order mark before it does not count."""
        line = self._partial.removeprefix(UTF8_BOM) if is_first_line else self._partial
        if len(line) > self.max_line_bytes:
            self._skipping, self._partial = (line[:OVERSIZE_KEEP], len(line)), b""

    def _records(self, lines: list[bytes], endings: bool) -> list[RawRecord]:
        first = self.line_number + 1
        self.line_number += len(lines)
        if first == 1 and lines[0].startswith(UTF8_BOM):  # the stream's very start: not part of the first line
            lines[0] = lines[0][len(UTF8_BOM) :]
        source, limit = self.source, self.max_line_bytes
        if max(map(len, lines)) <= limit:  # the common case, in one comprehension
            if endings:  # "\r\n" endings (and stray "\r"s, which were never data)
                lines = [line.rstrip(b"\r") for line in lines]
            return [RawRecord(line, source, f"line {n}", len(line)) for n, line in enumerate(lines, first)]
        return [
            RawRecord(data := line.rstrip(b"\r"), source, f"line {n}", len(data))
            if len(line) <= limit
            # over the limit by its bytes before the newline, as a line skipped in pieces is (``_skip``)
            else RawRecord(line[:OVERSIZE_KEEP], source, f"line {n}", len(line), oversize=True)
            for n, line in enumerate(lines, first)
        ]

    def _skip(self, chunk: bytes) -> bytes | None:
        """Count ``chunk`` into the oversize line being skipped: what follows the line's end, or None."""
        assert self._skipping is not None
        head, size = self._skipping
        end = chunk.find(b"\n")
        length = len(chunk) if end < 0 else end  # of this piece of the line (no copy of up to a chunk)
        if len(head) < OVERSIZE_KEEP:  # a limit under OVERSIZE_KEEP: the head is kept as long as any other's
            head += chunk[: min(length, OVERSIZE_KEEP - len(head))]
        self._skipping = (head, size + length)
        return None if end < 0 else chunk[end + 1 :]

    def _skipped(self) -> RawRecord:
        assert self._skipping is not None
        (head, size), self._skipping = self._skipping, None
        self.line_number += 1
        return RawRecord(head, self.source, f"line {self.line_number}", size, oversize=True)

    def _at_end(self) -> list[RawRecord]:
        """The last line, if the stream does not end with a newline."""
        if self._skipping is not None:
            return [self._skipped()]
        last, self._partial = self._partial, b""
        return self._records([last], b"\r" in last) if last else []


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
                yield from self._batches(handle, f"file:{_display_path(path)}", max_records)

    def _batches(self, handle: BinaryIO, name: str, max_records: int) -> Iterator[list[RawRecord]]:
        batch: list[RawRecord] = []
        lines = LineReader(handle, name, self.max_line_bytes, wait_for_newline=self.follow)
        while not self.stopping:
            for records in lines.chunks():
                batch += records
                while len(batch) >= max_records:
                    yield batch[:max_records]
                    del batch[:max_records]
                    if self.stopping:
                        return
            if batch:
                yield batch
                batch = []
            if not self.follow or self.stopping:
                return
            time.sleep(self.poll)  # a live log: wait for it to grow


def unreadable_reason(path: str) -> str | None:
    """Why ``path`` cannot be read as a JSON Lines input, or None if it can (``-`` is standard input).

    Anything readable but a directory will do, not only a regular file: a FIFO, ``<(zcat log.gz)``,
    ``/dev/stdin``.  Checked before reading, so that nothing is stored when one path of several is wrong.
    """
    if path == "-":
        return None
    target = Path(path)
    if target.is_dir():
        return f"is a directory: {path}"
    if not target.exists():  # a dangling symbolic link too
        return f"no such file: {path}"
    if not os.access(target, os.R_OK):
        return f"cannot read (permission denied): {path}"
    return None


def _display_path(path: str) -> str:
    """A regular file by its real path; a pipe or device (``/dev/fd/63``) as named: resolved, it says ``pipe:[…]``."""
    target = Path(path)
    return str(target.resolve()) if target.is_file() else os.path.abspath(path)
