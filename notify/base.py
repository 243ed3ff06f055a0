"""The notifier port: one small interface for every way of telling a person.

A notifier (a "receiver" in the configuration) sends one ``Page`` at a time
and says, by raising ``DeliveryError``, whether trying again later may help.
It never decides who is paged, retries, or remembers what it sent: routing
(``notify.routing``) and the durable outbox (``notify.outbox``,
``notify.dispatch``) do that once for all receivers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

# as Config: in a notifier's class body ``Settings`` is its own receiver settings model
from models.config import Settings as Config
from models.event import format_utc
from models.page import Page, PageKind


class DeliveryError(Exception):
    """A page did not reach the receiver.

    ``retryable``: an outage, a timeout, a rate limit or a server error (try
    again with backoff); otherwise the receiver refused the page itself (a bad
    key, a malformed payload): retrying the same bytes cannot help.
    """

    def __init__(self, message: str, retryable: bool = True, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after  # seconds the receiver asked us to wait (HTTP Retry-After)


class ReceiverSettings(BaseModel):
    """A receiver's section, ``notify.settings.<name>``: unknown keys are mistakes, inf and nan no setting."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


SettingsT = TypeVar("SettingsT", bound=ReceiverSettings)


class Notifier(ABC, Generic[SettingsT]):
    """A receiver type; ``Notifier[FileSettings]`` with ``Settings = FileSettings`` types ``self.settings``."""

    kind: ClassVar[str]  # the receiver type, as written in ``notify.settings.<name>.kind``
    Settings: ClassVar[type[ReceiverSettings]] = ReceiverSettings  # a ClassVar cannot name SettingsT
    handles: ClassVar[frozenset[PageKind]] = frozenset(PageKind)  # the page kinds it can express

    def __init__(self, name: str, settings: SettingsT) -> None:
        self.name = name  # the configured receiver name (two PagerDuty services are two names)
        self.settings = settings

    @classmethod
    def complete(cls, section: dict[str, Any], config: Config) -> dict[str, Any]:
        """The section with what comes from elsewhere in the configuration filled in (a timeout, a path)."""
        return section

    @abstractmethod
    def send(self, page: Page, delivery_id: str) -> None:
        """Deliver one page, or raise ``DeliveryError``.

        ``delivery_id`` is the outbox notification's id: a page delivered
        again (at least once) carries the same one, so a receiver can drop it.
        """

    def close(self) -> None:  # not abstract: most receivers hold nothing to release
        """Release files and connections."""


def page_record(page: Page, delivery_id: str | None = None) -> dict[str, Any]:
    """The contract's alert record, plus what the page is about (``page``): one JSON object.

    The contract asks for "at least" the alert keys, so receivers that read
    alert records read these too; ``page`` says whether it is a new incident,
    an update, an acknowledgement or a resolution, and by whom.
    """
    incident = page.incident
    about: dict[str, Any] = {
        "kind": page.kind.value,
        "dedup_key": page.dedup_key,
        "incident_id": incident.incident_id,
        "incident_status": incident.status.value,
        "incident_severity": incident.severity.value,
        "risk_score": incident.risk_score,
        "detectors": incident.detectors,
        "alert_count": len(incident.alert_ids),
        "incident_window_start": format_utc(incident.window_start),
        "incident_window_end": format_utc(incident.window_end),
        "escalation_level": page.escalation_level,
    }
    if page.previous_severity is not None:
        about["previous_severity"] = page.previous_severity.value
    if page.action is not None:
        about["action"] = page.action.model_dump(mode="json", exclude_none=True)
    if page.link:
        about["link"] = page.link
    if delivery_id:
        about["delivery_id"] = delivery_id
    return {**page.alert.to_record(), "page": about}


def headline(page: Page) -> str:
    """One line a person reads first: what happened, how bad, about whom."""
    incident = page.incident
    severity = incident.severity.value.upper()
    who = f"{incident.actor_kind.value} {incident.actor_id}"
    if page.kind is PageKind.ACKNOWLEDGE:
        return f"Acknowledged by {_by(page)}: {severity} incident on {who}"
    if page.kind is PageKind.RESOLVE:
        closed = "false positive" if incident.status.value == "false_positive" else "resolved"
        return f"Closed as {closed} by {_by(page)}: {severity} incident on {who}"
    if page.kind is PageKind.UPDATE:
        before = page.previous_severity.value.upper() if page.previous_severity else "?"
        return f"Now {severity} (was {before}): incident on {who}"
    if page.escalation_level:
        minutes = round((page.escalated_after or 0) / 60)
        return f"ESCALATED, unacknowledged for {minutes} min: {severity} incident on {who}"
    return f"{severity} incident on {who}"


def _by(page: Page) -> str:
    return page.action.by if page.action is not None else "someone"
