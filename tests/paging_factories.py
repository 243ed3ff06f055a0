"""Incidents, pages and a clock for the paging tests, built through the real models."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from configs.loader import load_settings
from detectors.incidents import attach
from models.alert import Alert, Severity
from models.config import Settings
from models.incident import Incident
from models.page import Notification, NotificationStatus, Page, PageKind, notification_id, other_findings
from tests import factories as f

NOW = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)  # wall-clock of the tests: an hour after the first finding
ROUTING_KEY = "R0UT1NGKEY0123456789abcdefABCDEF"  # 32 characters, as PagerDuty's integration keys
WEBHOOK_SECRET = b"webhook-shared-secret-0123456789"


class Clock:
    """Wall-clock time that moves only when told: escalations and backoff without sleeping."""

    def __init__(self, start: datetime = NOW) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def alert_for(actor_id: str = "emp-0001", severity: Severity = Severity.HIGH, **overrides: Any) -> Alert:
    return f.alert(actor_id=actor_id, severity=severity, summary=f"{actor_id} read 5,000 records.", **overrides)


def incident_of(alert: Alert, **overrides: Any) -> Incident:
    data: dict[str, Any] = {
        "incident_id": f"inc-{alert.alert_id[-12:]}",
        "actor_id": alert.actor_id,
        "actor_kind": alert.actor_kind,
        "actor_organization": alert.actor_organization,
        "severity": alert.severity,
        "risk_score": 60.0,
        "window_start": alert.window_start,
        "window_end": alert.window_end,
        "alert_ids": [alert.alert_id],
        "detectors": [alert.detector],
        "summary": alert.summary,
        "created_at": alert.window_end,
        "updated_at": alert.window_end,
    }
    data.update(overrides)
    return Incident.model_validate(data)


def finding(actor_id: str = "emp-0001", severity: Severity = Severity.HIGH, **overrides: Any):
    """An alert and its incident, the alert carrying the incident's id (as the pipeline hands them over)."""
    alert = alert_for(actor_id, severity, **overrides)
    incident = incident_of(alert)
    return alert.model_copy(update={"incident_id": incident.incident_id}), incident


# A compromised service account: the first finding processed pages; the others join its incident in the same batch.
EPISODE = (
    ("sensitive_access", Severity.HIGH, 4.0, "Service account svc-etl read 54,370 records with bank account data."),
    ("egress", Severity.HIGH, 6.0, "Service account svc-etl exported or downloaded 35,575 records, 276x their usual."),
    ("new_access", Severity.MEDIUM, 3.0, "Service account svc-etl used the new address 198.51.100.77."),
    ("dormant", Severity.MEDIUM, 2.0, "Service account svc-etl, silent for 16 days, read 54,370 records."),
)


def episode(detectors: int = len(EPISODE)) -> tuple[Alert, Incident]:
    """The first alert of the episode and the incident all of them make, as the pipeline hands them to the pager."""
    incident, members = None, {}
    for detector, severity, score, summary in EPISODE[:detectors]:
        alert = f.alert(
            detector=detector, severity=severity, score=score, summary=summary, actor_id="svc-etl", actor_kind="service"
        )
        incident = attach(incident, alert, timedelta(hours=2), members)
        members[alert.alert_id] = alert.model_copy(update={"incident_id": incident.incident_id})
    assert incident is not None
    first = next(iter(members.values()))
    return first, incident


MONTH_END = "month-end-close-2026-10"


def documented_alert(actor_id: str = "emp-0017", detector: str = "isolation_forest") -> Alert:
    """A month-end job's finding, capped at medium as the detectors cap documented work (``detectors.base``)."""
    return f.alert(
        actor_id=actor_id,
        severity=Severity.MEDIUM,
        detector=detector,
        summary=f"Employee {actor_id} exported 103,408 records, 103,408x their usual of 1.",
        evidence={"records": 103_408, "event_ids": ["evt-1"], "documented": {"share": 1.0, "purposes": [MONTH_END]}},
    )


def joined(alert: Alert, incident: Incident | None = None, known: Sequence[Alert] = ()) -> tuple[Alert, Incident]:
    """The alert and the incident it makes, or continues with ``known`` (its alerts), as the pipeline hands them."""
    after = attach(incident, alert, timedelta(hours=12), {member.alert_id: member for member in known})
    return alert.model_copy(update={"incident_id": after.incident_id}), after


def telling_page(kind: PageKind = PageKind.TRIGGER, **details: Any) -> Page:
    """A page about the episode, its findings gathered as the pager gathers them."""
    alert, incident = episode()
    findings = other_findings(incident, alert)
    return Page(kind=kind, dedup_key=incident.incident_id, incident=incident, alert=alert, findings=findings, **details)


def page(kind: PageKind = PageKind.TRIGGER, severity: Severity = Severity.HIGH, **details: Any) -> Page:
    alert, incident = finding(severity=severity)
    return Page(kind=kind, dedup_key=incident.incident_id, incident=incident, alert=alert, **details)


def notification(
    receiver: str = "pagerduty",
    the_page: Page | None = None,
    created: datetime = NOW,
    due: datetime | None = None,
    conditional: bool = False,
    status: NotificationStatus = NotificationStatus.PENDING,
) -> Notification:
    the_page = the_page or page()
    return Notification(
        notification_id=notification_id(receiver, the_page, discriminator=f"{created.isoformat()}{conditional}"),
        receiver=receiver,
        route="test",
        page=the_page,
        status=status,
        only_if_unacknowledged=conditional,
        created_at=created,
        due_at=due or created,
    )


def settings_with(tmp_path, **notify: Any) -> Settings:
    """The default configuration with a data dir in ``tmp_path`` and ``notify.<key>`` overrides."""
    overrides = {"data_dir": str(tmp_path / "data"), **{f"notify.{key}": value for key, value in notify.items()}}
    return load_settings(env={}, overrides=overrides)
