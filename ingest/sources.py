"""Sources: where raw access-event lines come from.

A source yields batches of raw records and is told when a batch is safely
stored (``commit``), so that sources with offsets (Kafka) move them only
then.  The pipeline treats every source the same way: files, standard input,
the simulator and Kafka go through one code path.
"""

from __future__ import annotations

import io
import os
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import BinaryIO, overload

# What a dead letter keeps of a line too long to read whole.
OVERSIZE_KEEP = 4096
# How much of a stream is read at once: about 1,500 lines of the simulator's.
CHUNK_BYTES = 1 << 20
# How many bytes of lines a batch holds at most (one line more may pass it): ``ingest.batch_lines`` of the usual
# size (5,000 of about 700 bytes) are far below it; lines near ``ingest.max_line_bytes`` (20 MiB) would make a
# batch of 5,000 of them 100 GB, on hostile input.
BATCH_BYTES = 64 << 20
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


class KeptLines(Sequence[RawRecord]):
    """Lines kept as their bytes, a ``RawRecord`` made only when one is asked for (``record``): the parser reads
    ``lines`` and ``oversize``, and asks for a record only for a dead letter."""

    __slots__ = ()
    lines: list[bytes]
    oversize: dict[int, int]  # index of a line over the limit -> its size

    def record(self, index: int) -> RawRecord:
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.lines)

    @overload
    def __getitem__(self, index: int) -> RawRecord: ...
    @overload
    def __getitem__(self, index: slice) -> list[RawRecord]: ...
    def __getitem__(self, index: int | slice) -> RawRecord | list[RawRecord]:
        if isinstance(index, slice):
            return [self.record(number) for number in range(*index.indices(len(self.lines)))]
        return self.record(index)

    def __iter__(self) -> Iterator[RawRecord]:
        return map(self.record, range(len(self.lines)))


class LineBatch(KeptLines):
    """Consecutive lines of one stream, kept as their bytes: a ``RawRecord`` is made only when one is asked for.

    The parser needs a line's bytes, and its record (source, "line N", size) only for a dead letter; a record
    and its position made for every line were most of the reading (the read stage: 8,400 instructions an
    event so, 2,400 kept as lines, and split by ``readlines``; ``bench/instructions.py``, 20,000 events).
    """

    __slots__ = ("first_number", "lines", "oversize", "source")

    def __init__(
        self, lines: list[bytes], source: str, first_number: int, oversize: dict[int, int] | None = None
    ) -> None:
        self.lines = lines  # a line over the limit: only its head (``OVERSIZE_KEEP``)
        self.source = source
        self.first_number = first_number  # of lines[0]; the others follow it
        self.oversize = oversize if oversize is not None else {}  # index of a line over the limit -> its size

    def record(self, index: int) -> RawRecord:
        data = self.lines[index]  # an IndexError as a list's
        index %= len(self.lines)
        size = self.oversize.get(index)
        number = self.first_number + index
        if size is None:
            return RawRecord(data, self.source, f"line {number}", len(data))
        return RawRecord(data, self.source, f"line {number}", size, oversize=True)

    def extend(self, following: LineBatch) -> None:
        """Add the lines that follow these in the same stream."""
        if not self.lines:
            self.first_number = following.first_number
        shift = len(self.lines)
        self.lines += following.lines
        self.oversize.update({shift + index: size for index, size in following.oversize.items()})

    def take(self, count: int) -> LineBatch:
        """The first ``count`` lines, as a batch of their own, no longer in this one."""
        taken = LineBatch(self.lines[:count], self.source, self.first_number)
        del self.lines[:count]
        self.first_number += count
        if self.oversize:
            taken.oversize = {index: size for index, size in self.oversize.items() if index < count}
            self.oversize = {index - count: size for index, size in self.oversize.items() if index >= count}
        return taken


class Source(ABC):
    """A stream of raw records in batches; finite (files) or live (simulator, Kafka)."""

    name: str = "source"
    live: bool = False

    def __init__(self) -> None:
        self._stop = threading.Event()

    @abstractmethod
    def batches(self, max_records: int) -> Iterator[Sequence[RawRecord]]:
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

    def chunks(self) -> Iterator[LineBatch]:
        """The lines of each chunk read, until the end of the stream (for now, if it is a log being followed)."""
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
                yield self._skipped()
                chunk = rest
                if not chunk:  # the line skipped ended with the chunk
                    continue
            endings = b"\r" in chunk or b"\r" in self._partial
            # each line with its newline, found by memchr: ``bytes.split`` looks at every byte in a loop of
            # its own (4,060 instructions a line against 1,840 with the newline taken off, in ``_records``)
            lines = io.BytesIO(chunk).readlines()
            if self._partial:  # joined to its line alone, not to the whole chunk (a copy of a MiB each read)
                lines[0] = self._partial + lines[0]
            self._partial = b"" if lines[-1].endswith(b"\n") else lines.pop()
            if len(self._partial) > self.max_line_bytes:
                self._skip_partial(is_first_line=self.line_number == 0 and not lines)
            if lines:
                yield self._records(lines, endings)

    def _skip_partial(self, is_first_line: bool) -> None:
        """Skip the line begun in ``_partial`` if it is over the limit; a byte order mark before it does not count."""
        line = self._partial.removeprefix(UTF8_BOM) if is_first_line else self._partial
        if len(line) > self.max_line_bytes:
            self._skipping, self._partial = (line[:OVERSIZE_KEEP], len(line)), b""

    def _records(self, lines: list[bytes], endings: bool) -> LineBatch:
        """The lines (each with its newline, but for a last one with none) as a batch."""
        first = self.line_number + 1
        self.line_number += len(lines)
        if first == 1 and lines[0].startswith(UTF8_BOM):  # the stream's very start: not part of the first line
            lines[0] = lines[0][len(UTF8_BOM) :]
        limit = self.max_line_bytes
        if max(map(len, lines)) <= limit:  # the common case, in one map: neither newline nor limit counts it
            # "\r\n" endings (and stray "\r"s, which were never data) go with the newline
            return LineBatch(list(map(bytes.rstrip, lines, repeat(b"\r\n" if endings else b"\n"))), self.source, first)
        lines = list(map(bytes.rstrip, lines, repeat(b"\n")))  # a line's size counts its "\r"s
        oversize = {}
        for index, line in enumerate(lines):
            if len(line) > limit:  # over the limit by its bytes before the newline, as a line skipped in pieces is
                lines[index], oversize[index] = line[:OVERSIZE_KEEP], len(line)
            else:
                lines[index] = line.rstrip(b"\r")
        return LineBatch(lines, self.source, first, oversize)

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

    def _skipped(self) -> LineBatch:
        assert self._skipping is not None
        (head, size), self._skipping = self._skipping, None
        self.line_number += 1
        return LineBatch([head], self.source, self.line_number, {0: size})

    def _at_end(self) -> LineBatch:
        """The last line, if the stream does not end with a newline."""
        if self._skipping is not None:
            return self._skipped()
        last, self._partial = self._partial, b""
        return self._records([last], b"\r" in last) if last else LineBatch([], self.source, self.line_number + 1)


class FileSource(Source):
    """JSON Lines files, one event a line; ``-`` is standard input."""

    name = "file"

    def __init__(
        self,
        paths: list[str],
        max_line_bytes: int,
        follow: bool = False,
        poll: float = 0.5,
        max_batch_bytes: int = BATCH_BYTES,
    ) -> None:
        super().__init__()
        self.paths = paths
        self.max_line_bytes = max_line_bytes
        self.max_batch_bytes = max_batch_bytes
        self.follow = follow
        self.live = follow
        self.poll = poll

    def batches(self, max_records: int) -> Iterator[Sequence[RawRecord]]:
        if len(self.paths) > 1 and not self.follow:
            yield from self._merged(max_records)
            return
        for path in self.paths:
            if self.stopping:
                return
            with _opened(path) as (handle, name):
                yield from self._batches(handle, name, max_records)

    def _merged(self, max_records: int) -> Iterator[Sequence[RawRecord]]:
        """Several files as one stream in event time (``ingest.merge``): read one after another, the files after
        the first would be behind the watermark the first moved, stored but never judged."""
        from ingest.merge import merged_batches

        with ExitStack() as files:
            readers = [LineReader(*files.enter_context(_opened(path)), self.max_line_bytes) for path in self.paths]
            for batch in merged_batches(readers, max_records, self.max_batch_bytes):
                yield batch
                if self.stopping:
                    return

    def _batches(self, handle: BinaryIO, name: str, max_records: int) -> Iterator[LineBatch]:
        batch = LineBatch([], name, 1)
        size = 0  # of the lines in ``batch``: a chunk's lines are counted once, in C
        lines = LineReader(handle, name, self.max_line_bytes, wait_for_newline=self.follow)
        while not self.stopping:
            for records in lines.chunks():
                batch.extend(records)
                size += sum(map(len, records.lines))
                while len(batch) >= max_records or size >= self.max_batch_bytes:
                    yield batch.take(min(max_records, _within(batch.lines, self.max_batch_bytes)))
                    size = sum(map(len, batch.lines))
                    if self.stopping:
                        return
            if batch:
                yield batch.take(len(batch))
            if not self.follow or self.stopping:
                return
            time.sleep(self.poll)  # a live log: wait for it to grow


def _within(lines: list[bytes], max_bytes: int) -> int:
    """How many of the first lines fit in ``max_bytes``: at least one, so that a batch is never empty."""
    total = 0
    for count, line in enumerate(lines):
        total += len(line)
        if total > max_bytes:
            return max(count, 1)
    return len(lines)


@contextmanager
def _opened(path: str) -> Iterator[tuple[BinaryIO, str]]:
    """The stream of ``path`` (``-``: standard input, left open) and its name in dead letters."""
    if path == "-":
        yield sys.stdin.buffer, "stdin"
        return
    with open(path, "rb") as handle:
        yield handle, f"file:{_display_path(path)}"


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
