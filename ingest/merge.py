"""Several files' lines merged into one stream in event time.

Detection runs in event time behind a watermark (the newest event time read minus ``windows.allowed_lateness``):
files read one after another, a month split into one file per source system, made every file after the first
late, stored and never judged.  Each file in time order, a k-way merge on each line's timestamp makes them one
stream in time order, holding one pending line per file (and the chunk it came in).  It costs the reading 3.1 µs
of CPU a line (3.8 against 0.7 for one file; the simulated month split into 7 files by system), half of it the
timestamps: a replay of one file is read as before, with no timestamp read.

A line's timestamp is read as the pipeline reads it (``models.event.utc_timestamps``, else ``parse_rfc3339``):
the merge places it at the instant the detectors will, offsets included.  A line whose timestamp cannot be read
(not JSON, no timestamp, a line over the limit) keeps its place in its file: it follows the line before it, and
reaches the pipeline as it is, with its file and line number, to be dead-lettered there.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from itertools import count, repeat
from operator import attrgetter, itemgetter
from typing import cast

import msgspec

from ingest.sources import KeptLines, LineReader, RawRecord
from models.event import parse_rfc3339, utc_timestamps

# A line in the merge: its instant, its file's index, its number in the file, its bytes, and its size if it is
# over the limit (only its head kept).  Compared as a tuple: at one instant the earlier file, then the earlier
# line, goes first, so the bytes are never compared.
Keyed = tuple[datetime, int, int, bytes, int | None]
_EARLIEST = datetime.min.replace(tzinfo=UTC)  # the key of a file's first lines, until one has a timestamp


class _Stamped(msgspec.Struct, gc=False):
    """All the merge reads of a line: msgspec skips the other keys without building them."""

    timestamp: str


_stamp = msgspec.json.Decoder(_Stamped).decode
_TIMESTAMP, _LINE, _SIZE = attrgetter("timestamp"), itemgetter(3), itemgetter(4)


class MergedBatch(KeptLines):
    """Lines of several files, in the merge's order, kept as bytes as a ``LineBatch`` keeps them."""

    __slots__ = ("keyed", "lines", "names", "oversize")

    def __init__(self, keyed: list[Keyed], names: Sequence[str]) -> None:
        self.keyed = keyed
        self.names = names  # of the files, by index
        self.lines = list(map(_LINE, keyed))
        sizes = list(map(_SIZE, keyed))
        self.oversize = {index: size for index, size in enumerate(sizes) if size is not None} if any(sizes) else {}

    def record(self, index: int) -> RawRecord:
        _, file, number, data, size = self.keyed[index]
        if size is None:
            return RawRecord(data, self.names[file], f"line {number}", len(data))
        return RawRecord(data, self.names[file], f"line {number}", size, oversize=True)


def merged_batches(readers: Sequence[LineReader], max_records: int, max_bytes: int) -> Iterator[MergedBatch]:
    """The readers' lines in batches of ``max_records``, merged by timestamp; a batch ends too with the line that
    takes it to ``max_bytes`` (``ingest.sources.BATCH_BYTES``)."""
    names = [reader.source for reader in readers]
    batch: list[Keyed] = []
    size = 0
    # a line at a time (about 0.1 us a line, against 3 for the merge): a piece taken at once could hold many
    # lines near ``ingest.max_line_bytes``
    for keyed in heapq.merge(*(_keyed(file, reader) for file, reader in enumerate(readers))):
        batch.append(keyed)
        size += len(keyed[3])
        if len(batch) >= max_records or size >= max_bytes:
            yield MergedBatch(batch, names)
            batch, size = [], 0
    if batch:
        yield MergedBatch(batch, names)


def _keyed(file: int, reader: LineReader) -> Iterator[Keyed]:
    """The reader's lines as the merge orders them: a line without a timestamp at the instant of the one before."""
    moment = _EARLIEST
    for chunk in reader.chunks():
        found = instants(chunk.lines)
        if None in found:
            for index, instant in enumerate(found):
                moment = found[index] = instant or moment
        elif found:
            moment = found[-1] or moment
        moments = cast(list[datetime], found)  # every None filled in
        sizes = map(chunk.oversize.get, range(len(chunk.lines)))
        yield from zip(moments, repeat(file), count(chunk.first_number), chunk.lines, sizes)


def instants(lines: Iterable[bytes]) -> list[datetime | None]:
    """Each line's timestamp in UTC, as the pipeline reads it; None where it cannot be read."""
    values: list[str | None] = []
    decoding = map(_TIMESTAMP, map(_stamp, lines))
    while True:
        try:
            values.extend(decoding)  # a refusal ends the extend, not the map: it goes on after that line
            break
        except (ValueError, RecursionError):  # not JSON, not UTF-8, no timestamp string, nested too deep
            values.append(None)
    together = utc_timestamps(values)  # None if one is not a string of known pieces (a None among them too)
    return cast(list[datetime | None], together) if together is not None else list(map(_one, values))


def _one(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_rfc3339(value)
    except ValueError:
        return None
