"""The notifier port: one small interface for every way of telling a person."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from models.alert import Alert, Severity


class Notifier(ABC):
    name: str = "notifier"

    @abstractmethod
    def notify(self, alerts: Sequence[Alert]) -> None:
        """Deliver these alerts (new ones, or ones that grew more severe)."""

    def close(self) -> None:  # noqa: B027 - optional
        """Release files and connections."""


class Fanout(Notifier):
    """Sends each alert at or above a severity to every receiver."""

    name = "fanout"

    def __init__(self, receivers: Sequence[Notifier], min_severity: Severity) -> None:
        self.receivers = list(receivers)
        self.min_severity = min_severity

    def notify(self, alerts: Sequence[Alert]) -> None:
        chosen = [alert for alert in alerts if alert.severity.at_least(self.min_severity)]
        if chosen:
            for receiver in self.receivers:
                receiver.notify(chosen)

    def close(self) -> None:
        for receiver in self.receivers:
            receiver.close()
