"""Alerts appended to a JSON Lines file, one contract alert record a line: the embedded default's page log."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import orjson

from models.alert import Alert
from notify.base import Notifier


class JsonlFileNotifier(Notifier):
    name = "file"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def notify(self, alerts: Sequence[Alert]) -> None:
        lines = b"".join(orjson.dumps(alert.to_record()) + b"\n" for alert in alerts)
        # one write of whole lines, then fsync: a page is on disk before we go on
        with open(self.path, "ab") as handle:
            handle.write(lines)
            handle.flush()
            os.fsync(handle.fileno())
