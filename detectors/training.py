"""The behaviour model's training history: recent windows' features, in bounded memory.

Windows are kept per local day (an actor-day is the unit the alert budget
counts) and forgotten once older than the history the model trains on.  A
large organisation would keep far more windows than a forest needs (it fits
each tree on a few hundred), so each day keeps at most its share of
``max_windows``: whole actor-days are kept or dropped together, by a hash of
the actor and the day, so that which ones are kept depends on the stream
only (a replay keeps the same ones) and an actor-day is never half-counted.

The history is part of the detector's checkpointed state: float32 rows,
compressed, with the actors they belong to.
"""

from __future__ import annotations

import base64
import zlib
from dataclasses import dataclass, field

import numpy as np


def keep_share(actor_id: str, day: float) -> float:
    """A stable number in [0, 1) per actor-day: kept when under the day's rate."""
    return zlib.crc32(f"{actor_id}\x1f{int(day)}".encode()) / 2**32


@dataclass(slots=True)
class DayBucket:
    """The kept windows of one local day."""

    day: float
    keep_rate: float  # the share of actor-days kept, fixed when the day starts
    seen: int = 0  # windows offered, kept or not: sets the next day's rate
    _index: dict[str, int] = field(default_factory=dict)
    _owners: list[np.ndarray] = field(default_factory=list)
    _rows: list[np.ndarray] = field(default_factory=list)
    # actor -> kept at the current rate: an actor's every hour of the day asks (derived, not state)
    _kept: dict[str, bool] = field(default_factory=dict)

    def add(self, actor_ids: list[str], X: np.ndarray) -> None:
        self.seen += len(actor_ids)
        if self.keep_rate < 1.0:
            mask = np.array([self._keeps(a) for a in actor_ids], dtype=bool)
            actor_ids = [a for a, kept in zip(actor_ids, mask, strict=True) if kept]
            X = X[mask]
        if not actor_ids:
            return
        owners = np.array([self._index.setdefault(a, len(self._index)) for a in actor_ids], dtype=np.int32)
        self._owners.append(owners)
        self._rows.append(np.ascontiguousarray(X, dtype=np.float32))

    def _keeps(self, actor_id: str) -> bool:
        kept = self._kept.get(actor_id)
        if kept is None:
            kept = self._kept[actor_id] = keep_share(actor_id, self.day) < self.keep_rate
        return kept

    def thin(self, rate: float) -> None:
        """Keep only the actor-days under ``rate`` (never more than were kept)."""
        if rate >= self.keep_rate or not len(self):
            return
        kept = np.array([keep_share(actor, self.day) < rate for actor in self.actors], dtype=bool)
        mask = kept[self.owners]
        actors = [actor for actor, keep in zip(self.actors, kept, strict=True) if keep]
        renumber = np.cumsum(kept) - 1
        rows, owners = self.rows[mask], renumber[self.owners[mask]].astype(np.int32)
        self._index = {actor: n for n, actor in enumerate(actors)}
        self._rows, self._owners = ([rows], [owners]) if len(rows) else ([], [])
        self.keep_rate = rate
        self._kept = {}

    @property
    def actors(self) -> list[str]:
        return list(self._index)

    def owner(self, actor_id: str) -> int | None:
        return self._index.get(actor_id)

    @property
    def rows(self) -> np.ndarray:
        self._consolidate()
        return self._rows[0] if self._rows else np.zeros((0, 0), dtype=np.float32)

    @property
    def owners(self) -> np.ndarray:
        self._consolidate()
        return self._owners[0] if self._owners else np.zeros(0, dtype=np.int32)

    def __len__(self) -> int:
        return sum(len(owners) for owners in self._owners)

    def _consolidate(self) -> None:
        if len(self._rows) > 1:
            self._rows = [np.concatenate(self._rows)]
            self._owners = [np.concatenate(self._owners)]

    def to_state(self) -> dict:
        rows, owners = self.rows, self.owners
        return {
            "day": self.day,
            "keep_rate": self.keep_rate,
            "seen": self.seen,
            "actors": self.actors,
            "width": rows.shape[1] if rows.size else 0,
            "owners": _pack(owners.astype("<i4")),
            "rows": _pack(rows.astype("<f4")),
        }

    @classmethod
    def from_state(cls, state: dict) -> DayBucket:
        bucket = cls(state["day"], state["keep_rate"], state["seen"])
        bucket._index = {actor: n for n, actor in enumerate(state["actors"])}
        owners = np.frombuffer(_unpack(state["owners"]), dtype="<i4").astype(np.int32)
        if len(owners):
            rows = np.frombuffer(_unpack(state["rows"]), dtype="<f4").reshape(len(owners), state["width"])
            bucket._owners, bucket._rows = [owners], [rows.astype(np.float32)]
        return bucket


class TrainingHistory:
    """Day buckets of window features, oldest first."""

    def __init__(self, max_windows: int, history_days: float) -> None:
        self.max_windows = max_windows
        self.history_days = history_days
        self.buckets: dict[float, DayBucket] = {}

    def add(self, day: float, actor_ids: list[str], X: np.ndarray) -> None:
        bucket = self.buckets.get(day)
        if bucket is None:
            rate = 1.0
            if self.buckets:
                # the day before is whole now: it keeps its share of the budget (its own rate was set before it
                # was seen, from the day before it), and sets the next day's rate, which must be known at the
                # day's first window for the choice to be replayable
                previous = self.buckets[max(self.buckets)]
                rate = self._rate_after(previous)
                previous.thin(rate)
            bucket = self.buckets[day] = DayBucket(day, rate)
        bucket.add(actor_ids, X)

    def _rate_after(self, day: DayBucket) -> float:
        per_day = self.max_windows / max(self.history_days, 1.0)
        return min(1.0, per_day / day.seen) if day.seen else 1.0

    @property
    def first_day(self) -> float | None:
        return min(self.buckets) if self.buckets else None

    def training(self, start: float, end: float) -> tuple[np.ndarray, np.ndarray, float | None]:
        """The kept windows of the days in [start, end): features, actor-day ids, and the first day."""
        chosen = [b for day, b in sorted(self.buckets.items()) if start <= day < end and len(b)]
        if not chosen:
            return np.zeros((0, 0), dtype=np.float32), np.zeros(0, dtype=np.int64), None
        groups, offset = [], 0
        for bucket in chosen:
            groups.append(bucket.owners.astype(np.int64) + offset)
            offset += len(bucket._index)
        return np.concatenate([b.rows for b in chosen]), np.concatenate(groups), chosen[0].day

    def actor_rows(self, actor_id: str, start: float, end: float) -> np.ndarray:
        """The kept windows of one actor in [start, end): its own history, for explanations."""
        found = []
        for day, bucket in self.buckets.items():
            owner = bucket.owner(actor_id)
            if owner is not None and start <= day < end:
                found.append(bucket.rows[bucket.owners == owner])
        return np.concatenate(found) if found else np.zeros((0, 0), dtype=np.float32)

    def evict(self, before: float) -> None:
        for day in [day for day in self.buckets if day < before]:
            del self.buckets[day]

    def __len__(self) -> int:
        return sum(len(bucket) for bucket in self.buckets.values())

    def to_state(self) -> list[dict]:
        return [bucket.to_state() for _, bucket in sorted(self.buckets.items())]

    def load_state(self, state: list[dict]) -> None:
        self.buckets = {item["day"]: DayBucket.from_state(item) for item in state}


def _pack(array: np.ndarray) -> str:
    return base64.b64encode(zlib.compress(array.tobytes(), 1)).decode("ascii")


def _unpack(text: str) -> bytes:
    return zlib.decompress(base64.b64decode(text))
