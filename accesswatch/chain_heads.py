"""The store's chain head, logged while the pipeline runs, and checked later by ``verify --head``.

Whoever can write the store's file can delete its latest chain entries
together with their events; what is left is a consistent, shorter chain that
``verify`` calls intact. Only a record kept away from the store shows the cut.
A signed digest is one (``export-digest``), made by hand. This is the other,
made as the pipeline runs: ``run`` and ``demo`` log the head (entry, last
stored position, hash) every ``logging.chain_head_every``, and logs are
shipped away from the store in any deployment that keeps them. ``accesswatch
verify --head ENTRY:HASH``, given a head from the log, says whether the store
still has that entry with that hash.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from store.chain import ChainedStore, ChainHead, Problem

log = logging.getLogger(__name__)

_HEAD = re.compile(r"(?P<entry>[1-9][0-9]*):(?P<digest>[0-9a-f]{64})")


@dataclass(frozen=True, slots=True)
class LoggedHead:
    """A head as ``verify --head`` takes it: ``ENTRY:HASH``, the hash in hex."""

    entry: int
    digest: str

    @classmethod
    def parse(cls, text: str) -> LoggedHead:
        found = _HEAD.fullmatch(text.strip().lower())
        if found is None:
            raise ValueError(f"{text!r} is not ENTRY:HASH (a chain entry number, a colon, 64 hex digits)")
        return cls(int(found["entry"]), found["digest"])


def check_heads(store: ChainedStore, heads: list[LoggedHead]) -> list[Problem]:
    """What is wrong with the store's chain against heads logged earlier: nothing, if it still has each."""
    problems = []
    for logged in heads:
        now = store.chain_head(logged.entry)
        if now is None:
            detail = "the chain has no such entry, logged as its head earlier: it was cut back, or replaced"
            problems.append(Problem("chain", detail, entry=logged.entry))
        elif now.digest.hex() != logged.digest:
            detail = "the entry differs from the head logged earlier: the chain was rewritten"
            problems.append(Problem("chain", detail, entry=logged.entry))
    return problems


class HeadReader(Protocol):
    """A store connection of the log's own: it reads the head, then is closed."""

    def chain_head(self, entry: int | None = None) -> ChainHead | None: ...

    def close(self) -> None: ...


class ChainHeadLog:
    """Logs the chain's head at start, then every ``interval`` seconds while it has grown, on a thread.

    It reads on a connection of its own (``open_store``), as retention does (``store.retention``), so it
    never shares the pipeline's mid-transaction.  A failed read is logged and tried again next time.
    """

    def __init__(self, open_store: Callable[[], HeadReader], interval: float) -> None:
        self.open_store = open_store
        self.interval = interval
        self.logged: ChainHead | None = None  # the latest head logged
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="chain-head", daemon=True)

    def start(self) -> ChainHeadLog:
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        self.log_once()  # the head the run ends on: a cut made after it stopped shows too

    def log_once(self) -> ChainHead | None:
        """Log the head if it moved since the last one logged; return it (None: the store has no chain yet)."""
        try:
            store = self.open_store()
            try:
                head = store.chain_head()
            finally:
                store.close()
        except Exception:
            log.exception("chain head not read; trying again at the next interval")
            return None
        if head is not None and head != self.logged:
            log.info(
                "chain head",
                extra={"chain_entry": head.entry, "chain_last_seq": head.last_seq, "chain_head": head.digest.hex()},
            )
            self.logged = head
        return head

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.log_once()
            self._stop.wait(self.interval)
