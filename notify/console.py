"""Pages as lines on a terminal: the embedded default's pager."""

from __future__ import annotations

import sys
from typing import TextIO

from models.event import format_utc
from models.page import Page, PageKind
from notify.base import Notifier, ReceiverSettings, headline

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
        if page.kind is PageKind.TRIGGER and not page.escalation_level:
            grew = f" (grown, revision {alert.revision})" if alert.revision > 1 else ""
            text = f"{alert.detector:<16} {alert.actor_id}: {alert.summary}{grew}"
        else:
            text = headline(page) + (f" - {page.action.note}" if page.action and page.action.note else "")
        stream = self.stream or sys.stdout  # looked up late: tests and the CLI swap sys.stdout
        stream.write(
            f"[{severity.upper():8}]{_MARK[severity]:3} {format_utc(alert.window_start)} {text}"
            f"  [{page.incident.incident_id}]\n"
        )
        stream.flush()
