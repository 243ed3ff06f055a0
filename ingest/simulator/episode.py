"""Episodes: labelled activity that is not an actor's routine.

An episode is either an injected insider scenario or a piece of legitimate
bulk work (weekly export, month-end report, nightly jobs). Its events come
from its own random stream, so labels can regenerate them exactly.
Label-only episodes (a new hire's first week, the sale day) have no events
of their own, only a span.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .events import EventBuilder
from .organisation import Actor

Play = Callable[[EventBuilder], str]  # emits the events, returns a one-sentence description


@dataclass(frozen=True)
class Episode:
    kind: str
    actor: Actor | None
    day: int  # local day its events start on; none of them is earlier
    play: Play | None = None
    scenario_id: str | None = None  # set for insider scenarios
    span: tuple[int, int] | None = None  # for label-only episodes: [start, end] in ms
    description: str = ""  # for label-only episodes

    @property
    def is_scenario(self) -> bool:
        return self.scenario_id is not None

    @property
    def stream_key(self) -> tuple[str, int, str]:
        return (self.kind, self.day, self.actor.actor_id if self.actor else "")
