"""Pages on a terminal, the embedded default's pager: a first line to read at a glance, then the details.

The first line, within ``notify.base.FIRST_LINE_CHARS`` with its severity mark, says what happened to the
incident when a page is about that (acknowledged, closed, reopened, risen, escalated), then who did what, how
much and when, in plain words and in the organisation's clock (``notify.base.headline``).  Indented lines
under it quote the finding whole (the one the incident was first paged with, on every page), say when again
where the incident's span is wider than the finding's, the note of who acted, the incident's other detectors,
the command that shows the whole incident (``accesswatch incident``) and, without a dashboard link, the
commands that act on it.  Documented work says the purpose it cites beside the actor.
"""

from __future__ import annotations

import sys
from typing import TextIO

from models.page import Page, PageKind
from models.visible import visible
from notify.base import (
    FIRST_LINE_CHARS,
    Notifier,
    ReaderGone,
    ReceiverSettings,
    done_by,
    headline,
    look_step,
    next_step,
    refreshed_line,
    told,
    when,
)

_MARK = {"low": " ", "medium": "!", "high": "!!", "critical": "!!!"}
_INDENT = " " * 13  # under the first line's words, past its "[CRITICAL]!!!"


class ConsoleNotifier(Notifier[ReceiverSettings]):
    kind = "console"

    def __init__(
        self, name: str = "console", settings: ReceiverSettings | None = None, stream: TextIO | None = None
    ) -> None:
        super().__init__(name, settings or self.Settings())
        self.stream = stream

    def send(self, page: Page, delivery_id: str = "") -> None:
        alert = page.alert
        severity = page.incident.severity.value
        mark = f"[{severity.upper():8}]{_MARK[severity]:3} "
        room = FIRST_LINE_CHARS - len(mark)
        first = page.kind is PageKind.TRIGGER and not page.escalation_level  # the mark says its severity
        lines = [mark + (told(page, room) if first else headline(page, room))]
        grew = f" (grown, revision {alert.revision})" if alert.revision > 1 else ""
        details = [f"{alert.detector}: {alert.summary}{grew}"]
        said = when(page)
        if said not in lines[0]:  # the incident's span, wider than the finding's, or a time the line had no room for
            details.append(f"When: {said}")
        if page.action is not None and page.action.note:
            details.append(f"{done_by(page)}: {page.action.note}")
        details += [f"also {finding}" for finding in page.findings]
        late = refreshed_line(page)
        if late is not None:
            details.append(late)
        details.append(look_step(page))  # where the whole incident is, link or not
        if not page.link:  # the terminal never showed the dashboard's link; the commands are the next step
            details.append(next_step(page))
        lines += [_INDENT + line for line in details]
        stream = self.stream or sys.stdout  # looked up late: tests and the CLI swap sys.stdout
        # each line escaped (``models.visible``): an ESC, CR or LF in an id or summary would repaint or forge lines
        try:
            stream.write("".join(visible(line) + "\n" for line in lines))
            stream.flush()
        except BrokenPipeError:  # ``accesswatch pages --deliver | head -1``: the reader went, the page did not reach it
            raise ReaderGone(f"{self.name}: its output was closed (the reader of the pipe stopped reading)") from None
