"""Pages on a terminal, the embedded default's pager: a line a page, then what else the incident holds.

The first line says what happened (the finding, or who acknowledged, closed
or reopened it, or that it rose or escalated), when (``notify.base.when``, as
every receiver says it: the headline finding's span in UTC, and the
incident's beside it when wider, so that a rise led by a finding days old
shows the episode it grew to) and the incident's id; indented lines under it
quote the finding it was first paged with (on every later page), the
incident's other detectors, the command that shows the whole incident
(``accesswatch incident``) and, without a dashboard link, the commands that
act on it.  Documented work says the purpose it cites before the finding.
"""

from __future__ import annotations

import sys
from typing import TextIO

from models.page import Page, PageKind
from models.visible import visible
from notify.base import Notifier, ReceiverSettings, documented, headline, look_step, next_step, refreshed_line, when

_MARK = {"low": " ", "medium": "!", "high": "!!", "critical": "!!!"}


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
        grew = f" (grown, revision {alert.revision})" if alert.revision > 1 else ""
        quoted = f"{alert.detector:<16} {alert.actor_id}: {alert.summary}{grew}"
        first = page.kind is PageKind.TRIGGER and not page.escalation_level
        if first:  # the headline() other receivers start with names the purpose; so does the finding quoted here
            cited = documented(page)
            text = f"({cited}) {quoted}" if cited else quoted
        else:
            text = headline(page) + (f" - {page.action.note}" if page.action and page.action.note else "")
        lines = [f"[{severity.upper():8}]{_MARK[severity]:3} {when(page)} {text}  [{page.incident.incident_id}]"]
        if not first:  # every later page quotes the finding the incident was first paged with, first
            lines.append(f"{'':13}{quoted}")
        lines += [f"{'':13}also {finding}" for finding in page.findings]
        late = refreshed_line(page)
        if late is not None:
            lines.append(f"{'':13}{late}")
        lines.append(f"{'':13}{look_step(page)}")  # where the whole incident is, link or not
        if not page.link:  # the terminal never showed the dashboard's link; the commands are the next step
            lines.append(f"{'':13}{next_step(page)}")
        stream = self.stream or sys.stdout  # looked up late: tests and the CLI swap sys.stdout
        # each line escaped (``models.visible``): an ESC, CR or LF in an id or summary would repaint or forge lines
        stream.write("".join(visible(line) + "\n" for line in lines))
        stream.flush()
