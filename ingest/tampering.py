"""Tampering findings: an event id seen before, arriving with other content.

The store keeps the first version and refuses the second (``WriteResult.conflicts``).
That is never ignored: a producer that re-sends an event id with other
content is either broken or rewriting history at the source, and either way
the audit trail's reader must know.  Each such arrival becomes an alert of
the ``tampering`` detector about the actor the new version names, paged and
shown in the queue like any other.

The alert id is derived from the event id and the SHA-256 of the refused
bytes, so the same refused version replayed again is the same alert (raised
once), and a third version is a finding of its own.  The evidence names the
event and what the new version claims (time, action, resource, record
count), never the customer ids or fields it carries.
"""

from __future__ import annotations

import hashlib

from ingest.parse import ParsedBatch
from models.alert import Alert, Severity
from models.event import format_utc
from store.base import IncomingEvent, WriteResult

DETECTOR = "tampering"


def tampering_alerts(parsed: ParsedBatch, written: WriteResult) -> list[Alert]:
    """One alert per version the store refused (``WriteResult.refused``; the same version once)."""
    if not written.conflicts:
        return []
    alerts: dict[str, Alert] = {}
    for incoming in written.refused or _guess_refused(parsed, written):
        event = incoming.event
        digest = hashlib.sha256(incoming.raw).hexdigest()
        alert_id = "aw-" + hashlib.sha256(f"{DETECTOR}\x1f{event.event_id}\x1f{digest}".encode()).hexdigest()[:24]
        if alert_id in alerts:
            continue
        actor = event.actor
        alerts[alert_id] = Alert(
            alert_id=alert_id,
            detector=DETECTOR,
            severity=Severity.HIGH,
            actor_id=actor.id,
            actor_kind=actor.kind,
            actor_role=actor.role,
            actor_department=actor.department,
            actor_organization=actor.organization,
            window_start=event.timestamp,
            window_end=event.timestamp,
            score=1.0,
            summary=(
                f"Event {event.event_id} arrived again with different content: the stored original is kept and"
                " the new version refused; the access log may have been altered at its source."
            ),
            evidence={
                "event_ids": [event.event_id],
                "refused_sha256": digest,
                "refused_version": {
                    "timestamp": format_utc(event.timestamp),
                    "action": event.action.value,
                    "resource": f"{event.resource.system}/{event.resource.type}",
                    "record_count": event.record_count,
                    "outcome": event.outcome.value,
                },
            },
            created_at=event.timestamp,
            updated_at=event.timestamp,
        )
    return list(alerts.values())


def _guess_refused(parsed: ParsedBatch, written: WriteResult) -> list[IncomingEvent]:
    """For a store that names only the ids: every version of them in the batch that it did not store.

    That may include a plain repeat of the original beside the conflicting
    version; for tampering, saying too much is the safe side.
    """
    wanted, stored = set(written.conflicts), {id(incoming) for incoming in written.stored}
    return [i for i in parsed.events if i.event.event_id in wanted and id(i) not in stored]
