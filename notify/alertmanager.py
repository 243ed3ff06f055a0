"""Prometheus Alertmanager API v2: ``POST /api/v2/alerts``, for teams that already route and silence there.

Each incident is one Alertmanager alert, identified by its labels
(``alertname``, ``incident_id``, ``actor_id``, ``actor_kind``, ``severity``,
``organization`` when known, and the configured static labels), so a page
sent again collapses into the same alert.  Alertmanager resolves an alert at
its ``endsAt``; accesswatch sets it ``ends_after`` (default two days) ahead,
since it does not re-send like Prometheus does, and to now when the incident
is closed (a reopening fires it again).  When the incident's severity rises, its label set changes: the
alert under the old severity is ended in the same request (also by a page sent again after a failure at a
severity other than the one it was planned with).

Acknowledging has no Alertmanager equivalent (a silence is the closest, and
belongs to the operators there): acknowledge pages are not sent to it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from pydantic import field_validator

from models.config import Seconds
from models.event import format_utc
from models.page import Page, PageKind
from notify.base import headline, look_command, next_step, refreshed_line, when
from notify.http import HttpNotifier, HttpSettings, HttpUrl, post_json

ALERTNAME = "AccesswatchIncident"
_ACTED_BY = {PageKind.ACKNOWLEDGE: "acknowledged_by", PageKind.RESOLVE: "closed_by", PageKind.REOPEN: "reopened_by"}
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


class AlertmanagerSettings(HttpSettings):
    url: HttpUrl  # Alertmanager's base URL, e.g. http://alertmanager:9093
    ends_after: Seconds = 2 * 86400.0
    labels: dict[str, str] = {}  # added to every alert (team, env); cannot replace accesswatch's own
    headers: dict[str, str] = {}  # e.g. Authorization for a proxy in front of Alertmanager

    @field_validator("labels")
    @classmethod
    def _label_names(cls, labels: dict[str, str]) -> dict[str, str]:
        for name in labels:
            if not _LABEL_NAME.match(name) or name.startswith("__"):
                raise ValueError(f"label names matching [a-zA-Z_][a-zA-Z0-9_]* (not {name!r})")
        return labels


def alerts(page: Page, settings: AlertmanagerSettings, now: datetime) -> list[dict[str, Any]]:
    """The postable alerts for a page (two when a severity change replaces the label set)."""
    incident = page.incident
    closing = page.kind is PageKind.RESOLVE
    ends = now if closing else now + timedelta(seconds=settings.ends_after)
    annotations = {
        "summary": headline(page),
        "description": page.alert.summary,
        "when": when(page),
        "next_step": next_step(page),
        "look": look_command(page),  # the command that shows the whole incident, as the text pages' "Look:"
        "detectors": ",".join(incident.detectors),
        "risk_score": f"{incident.risk_score:g}",
        "window": f"{format_utc(incident.window_start)}/{format_utc(incident.window_end)}",
        "status": incident.status.value,
    }
    if page.findings:
        annotations["findings"] = "\n".join(page.findings)  # the incident's other detectors, one a line
    if page.action is not None:
        annotations[_ACTED_BY.get(page.kind, "by")] = page.action.by
    late = refreshed_line(page)
    if late is not None:
        annotations["refreshed"] = late
    if page.link:
        annotations["dashboard"] = page.link
    current = _alert(page, settings, incident.severity.value, annotations, ends)
    found = [current]
    ended = {incident.severity}
    # a rise, and a page sent again at a severity above the one it was planned with (an earlier attempt
    # may have reached Alertmanager and fired that one): the alert under the old label set ends
    for before in (
        page.previous_severity if page.kind is PageKind.UPDATE else None,
        page.refreshed.planned_severity if page.refreshed is not None else None,
    ):
        if before is not None and before not in ended:
            found.append(_alert(page, settings, before.value, annotations, now))
            ended.add(before)
    return found


def _alert(page: Page, settings: AlertmanagerSettings, severity: str, annotations: dict, ends: datetime) -> dict:
    incident = page.incident
    labels = {
        **settings.labels,
        "alertname": ALERTNAME,
        "incident_id": incident.incident_id,
        "actor_id": incident.actor_id,
        "actor_kind": incident.actor_kind.value,
        "severity": severity,
    }
    if incident.actor_organization:
        labels["organization"] = incident.actor_organization
    starts = min(incident.window_start, ends - timedelta(seconds=1))
    alert: dict[str, Any] = {
        "labels": labels,
        "annotations": annotations,
        "startsAt": format_utc(starts),
        "endsAt": format_utc(ends),
    }
    if page.link:
        alert["generatorURL"] = page.link
    return alert


class AlertmanagerNotifier(HttpNotifier[AlertmanagerSettings]):
    kind = "alertmanager"
    Settings = AlertmanagerSettings
    handles = frozenset({PageKind.TRIGGER, PageKind.UPDATE, PageKind.RESOLVE, PageKind.REOPEN})

    def __init__(self, name: str, settings: AlertmanagerSettings, clock: Callable[[], datetime] | None = None) -> None:
        super().__init__(name, settings)
        self.clock = clock or (lambda: datetime.now(UTC))

    def send(self, page: Page, delivery_id: str = "") -> None:
        settings = self.settings
        body = orjson.dumps(alerts(page, settings, self.clock()))
        post_json(settings.url.rstrip("/") + "/api/v2/alerts", body, settings.timeout, settings.headers)
