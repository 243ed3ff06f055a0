"""The audit search's summary by reader: who read the events a search matches, how much, why and when.

"Who read customers' passport numbers this month, and why?" is answered by actor, not by thousands of rows.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from models.event import AccessEvent, Actor


@dataclass(frozen=True, slots=True)
class ReaderSummary:
    """One actor's share of a search's events."""

    actor: Actor  # as their newest matching event names them (a role may have changed within the span)
    events: int
    records: int
    purposes: tuple[tuple[str, int], ...]  # the most stated first (events each), at most ``top_purposes``
    distinct_purposes: int
    no_purpose: int  # events that stated none
    first: datetime
    last: datetime


@dataclass(frozen=True, slots=True)
class ReadersSummary:
    """The readers with the most records first, at most ``top``; ``more_readers`` left out after them."""

    readers: list[ReaderSummary]
    more_readers: int
    events: int  # the events summarised
    complete: bool  # False: more events matched than the bound; the newest ``events`` were summarised


@dataclass(slots=True)
class _Reader:
    actor: Actor
    first: datetime
    last: datetime
    events: int = 0
    records: int = 0
    purposes: Counter[str] = field(default_factory=Counter)
    no_purpose: int = 0


class Tally:
    """Readers added up from events, or from groups of them a store counted (an actor and a purpose each)."""

    def __init__(self) -> None:
        self._readers: dict[str, _Reader] = {}
        self.events = 0

    def add(self, event: AccessEvent) -> None:
        stamp = event.timestamp
        self.add_group(event.actor, event.purpose, 1, event.record_count, stamp, stamp)

    def add_group(
        self, actor: Actor, purpose: str | None, events: int, records: int, first: datetime, last: datetime
    ) -> None:
        """``events`` of ``actor`` stating ``purpose``; ``actor`` as the newest of them names them."""
        reader = self._readers.get(actor.id)
        if reader is None:
            reader = self._readers[actor.id] = _Reader(actor, first, last)
        elif last > reader.last:  # the newest names them
            reader.actor, reader.last = actor, last
        reader.first = min(reader.first, first)
        reader.events += events
        reader.records += records
        if purpose:
            reader.purposes[purpose] += events
        else:
            reader.no_purpose += events
        self.events += events

    def summary(self, top: int, top_purposes: int, complete: bool) -> ReadersSummary:
        """Sorted by records, then events, then id: one order on every store."""
        ordered = sorted(self._readers.values(), key=lambda r: (-r.records, -r.events, r.actor.id))
        readers = [
            ReaderSummary(
                actor=reader.actor,
                events=reader.events,
                records=reader.records,
                # the most stated first; ties by name, so that two stores list them alike
                purposes=tuple(sorted(reader.purposes.items(), key=lambda p: (-p[1], p[0]))[:top_purposes]),
                distinct_purposes=len(reader.purposes),
                no_purpose=reader.no_purpose,
                first=reader.first,
                last=reader.last,
            )
            for reader in ordered[:top]
        ]
        return ReadersSummary(readers, max(0, len(ordered) - top), self.events, complete)
