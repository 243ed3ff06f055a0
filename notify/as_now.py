"""A page sent again after it failed says the incident as it is then, not as it was planned.

A trigger that failed for an hour, then went out (a retry, ``pages
--retry-failed``), said "open, high" of an incident a person had acknowledged
and that had grown critical meanwhile; the acknowledgement sent right behind
it set the receiver's final state, but what it showed on the way contradicted
the incident: Slack's message offered ``accesswatch ack`` for an acknowledged
incident, a webhook stored "open".  So the pages that say what the incident
is (a trigger, a rise, a reopening) are brought up to date when they go out
after a failure: the incident's status, severity, risk and other findings as
they are then, and who acknowledged it, with what the page said when planned
(``models.page.Refreshed``).  The dedup key, the kind and the headline finding
stay: PagerDuty folds the trigger into the same alert, and on-call staff
recognise the incident by its first finding.  A person's action (an
acknowledgement, a close) is a record of then and is sent as planned.
"""

from __future__ import annotations

from datetime import datetime

from models.alert import Alert, AlertStatus
from models.incident import Incident, TriageActionKind
from models.page import Page, PageKind, Refreshed, other_findings
from store.base import Store

REFRESHED = frozenset({PageKind.TRIGGER, PageKind.UPDATE, PageKind.REOPEN})


def as_now(page: Page, incident: Incident | None, store: Store, at: datetime) -> Page:
    """``page`` saying ``incident`` (as stored now), marked as brought up to date; as planned if nothing changed.

    A stored incident older than the page's (its batch not stored yet) or gone leaves the page as planned.
    """
    planned = page.incident
    if page.kind not in REFRESHED or incident is None or incident.revision < planned.revision or incident == planned:
        return page
    acknowledged = None
    if incident.status is AlertStatus.ACKNOWLEDGED:
        actions = store.actions(incident.incident_id)
        kind = TriageActionKind.ACKNOWLEDGE
        acknowledged = next((action for action in reversed(actions) if action.kind is kind), None)
    refreshed = Refreshed(
        at=at, planned_status=planned.status, planned_severity=planned.severity, acknowledged=acknowledged
    )
    update = {"incident": incident, "findings": other_findings(incident, page.alert), "refreshed": refreshed}
    return page.model_copy(update={**update, "strongest": strongest_now(store, incident, page.alert)})


def strongest_now(store: Store, incident: Incident, headline: Alert, found: Alert | None = None) -> Alert | None:
    """The incident's strongest finding as it stands (``found``: one of the batch being paged, maybe not stored
    yet), with the incident's status, as the store keeps its alerts; None when that is ``headline`` as it is.

    The alert record a file or webhook body carries (``notify.base.page_record``): a SIEM filtering on its
    ``severity`` or ``status`` reads the incident's, not those of the finding it was first paged with.
    """
    alerts = {alert.alert_id: alert for alert in store.get_alerts(incident.alert_ids)}
    if found is not None:
        alerts[found.alert_id] = found
    best = max(alerts.values(), key=lambda alert: (alert.severity.rank, alert.score), default=None)
    if best is None:
        return None
    best = best.model_copy(update={"status": incident.status})
    return None if best == headline else best
