"""The incidents related to one: what the dashboard's Related tab and ``accesswatch incident ID`` list beside it.

One query for both, so that the person woken by a page reads on the command line the incidents the dashboard
would show them: the actor's other incidents, and for a partner its organisation's within a day of this one.
"""

from __future__ import annotations

from datetime import timedelta

from models.incident import Incident
from store.base import IncidentQuery, Store


def related_incidents(store: Store, incident: Incident, limit: int = 20) -> list[Incident]:
    """The actor's other incidents, and incidents of its organisation overlapping it in time."""
    own = store.query_incidents(IncidentQuery(actor_id=incident.actor_id, order="newest", limit=limit))
    related = {i.incident_id: i for i in own if i.incident_id != incident.incident_id}
    if incident.actor_organization:
        near = store.query_incidents(
            IncidentQuery(
                organization=incident.actor_organization,
                since=incident.window_start - timedelta(days=1),
                until=incident.window_end + timedelta(days=1),
                order="newest",
                limit=limit,
            )
        )
        related.update({i.incident_id: i for i in near if i.incident_id != incident.incident_id})
    # the store's "newest", across the two lists: by when their flagged activity ended (``Incident.newest_flagged``)
    by_id = sorted(related.values(), key=lambda i: i.incident_id)  # ties as the store orders them
    return sorted(by_id, key=lambda i: i.newest_flagged, reverse=True)[:limit]
