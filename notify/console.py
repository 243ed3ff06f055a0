"""Alerts as lines on a terminal: the embedded default's pager."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from models.alert import Alert
from models.event import format_utc
from notify.base import Notifier

_MARK = {"low": " ", "medium": "!", "high": "!!", "critical": "!!!"}


class ConsoleNotifier(Notifier):
    name = "console"

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def notify(self, alerts: Sequence[Alert]) -> None:
        for alert in alerts:
            grew = f" (grown, revision {alert.revision})" if alert.revision > 1 else ""
            self.stream.write(
                f"[{alert.severity.value.upper():8}]{_MARK[alert.severity.value]:3} {format_utc(alert.window_start)}"
                f" {alert.detector:<16} {alert.actor_id}: {alert.summary}{grew}\n"
            )
        self.stream.flush()
