"""PagerDuty Events API v2: ``trigger``, ``acknowledge`` and ``resolve``, with ``dedup_key`` = the incident id.

One PagerDuty alert per incident: later findings are sent as ``trigger``
events with the same ``dedup_key``, which PagerDuty adds to the open alert
instead of paging again; acknowledging or resolving the incident in
accesswatch (dashboard or CLI) sends ``acknowledge``/``resolve`` for the
same key, and reopening it a ``trigger``, which opens it there again.  A
page delivered twice (at least once) collapses the same way.

``POST /v2/enqueue`` answers 202 when it accepted the event, 400 when the
event is invalid (not retried), 429 when rate limited and 5xx on its own
trouble (both retried).
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from pydantic import AfterValidator, Field, SecretStr

from models.event import format_utc
from models.page import Page, PageKind
from notify.base import DeliveryError, headline, page_record
from notify.http import HttpNotifier, HttpSettings, HttpUrl, post_json

EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
# accesswatch severity -> PagerDuty's four
SEVERITY = {"low": "info", "medium": "warning", "high": "error", "critical": "critical"}


def _integration_key(value: SecretStr) -> SecretStr:
    if len(value.get_secret_value()) != 32:
        raise ValueError("the 32-character integration key of the service's Events API v2 integration")
    return value


class PagerDutySettings(HttpSettings):
    routing_key: Annotated[SecretStr, AfterValidator(_integration_key)]  # the service's Events API v2 key
    url: HttpUrl = EVENTS_URL  # EU accounts: https://events.eu.pagerduty.com/v2/enqueue
    source: str = Field(default="accesswatch", min_length=1)  # shown as the alert's source


def event(page: Page, settings: PagerDutySettings) -> dict[str, Any]:
    """The Events API v2 event for a page."""
    action = {
        PageKind.TRIGGER: "trigger",
        PageKind.UPDATE: "trigger",  # same dedup_key: added to the open alert, no new page
        PageKind.ACKNOWLEDGE: "acknowledge",
        PageKind.RESOLVE: "resolve",
        PageKind.REOPEN: "trigger",  # same dedup_key: the resolved alert is open again
    }[page.kind]
    body: dict[str, Any] = {
        "routing_key": settings.routing_key.get_secret_value(),
        "event_action": action,
        "dedup_key": page.dedup_key[:255],
    }
    if action != "trigger":
        return body
    incident = page.incident
    body["payload"] = {
        # what the phone's notification shows, and the alert's title: the first line, the finding whole in the details
        "summary": headline(page),
        "source": settings.source,
        "severity": SEVERITY[incident.severity.value],
        "timestamp": format_utc(incident.updated_at),
        "component": incident.actor_id,
        "group": incident.actor_organization or incident.actor_department or incident.actor_kind.value,
        "class": ",".join(incident.detectors),
        "custom_details": page_record(page),
    }
    body["client"] = "accesswatch"
    if page.link:
        body["client_url"] = page.link
        body["links"] = [{"href": page.link, "text": "Incident in accesswatch"}]
    return body


class PagerDutyNotifier(HttpNotifier[PagerDutySettings]):
    kind = "pagerduty"
    Settings = PagerDutySettings

    def send(self, page: Page, delivery_id: str = "") -> None:
        settings = self.settings
        answer = post_json(settings.url, orjson.dumps(event(page, settings)), settings.timeout)
        try:
            status = orjson.loads(answer.body).get("status")
        except (orjson.JSONDecodeError, AttributeError):
            status = None
        # 202 is PagerDuty's own answer; a compatible service or a proxy in front of it may answer another 2xx
        if not 200 <= answer.status < 300 or status != "success":
            raise DeliveryError(
                f"PagerDuty answered {answer.status} {answer.body[:200]!r}: expected 202 and status success",
                retryable=False,  # a 2xx that is not the Events API: a wrong URL
            )
