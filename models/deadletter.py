"""A line or message that could not become an event: kept, never dropped."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class DeadLetter(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str  # e.g. "file:/var/log/access.jsonl" or "kafka:access-events/3"
    position: str  # line number, or partition offset: where to find the original
    reason: str  # one line a person can act on
    raw: bytes  # the bytes as received (truncated only past the configured line limit)
    received_at: datetime  # wall-clock: when the product saw it, not an event time
    raw_size: int  # the original size, even when raw was truncated
