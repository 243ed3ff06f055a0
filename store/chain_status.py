"""``verify``'s check of the stored incidents' statuses against the triage log the chain holds.

The incidents and alerts tables are not chained as rows: an alert grows
while a replay judges, its incident with it, and a chain over rows that
change would be a hash a change (what only goes one way, an incident's
creation and the rises of its severity, is: ``store.chain_incidents``).
What a person decided is chained: each triage action
(``store.chain_audit``).  ``record_action`` sets an incident's status, and
that of the alerts it holds (``store.base.held_by``: not one moved to a
follow-up), in the transaction that adds the action's row, and nothing else
in the product changes a stored status: the pipeline keeps the status it
finds stored (``SqliteStore.upsert_alerts``), and retention deletes an
incident with its triage log, recording that purge in the chain.  So an
incident's status is implied by its log as the chain lists it: that of its
latest action that sets one (``models.incident.STATUS_AFTER``), or open, a
new incident's, if none did.  An incident stored otherwise (``UPDATE
incidents SET status='open'`` putting a closed case back in the queue, or
``'false_positive'`` hiding one) is named, both its status column (what the
queue filters on) and its body (what a page shows); so is an incident gone
whose log the chain still holds unpurged.

An alert's status is implied less exactly.  An alert that joins an incident
after it was acknowledged is open in it, and one that grows after its
incident was closed moves to another incident, open in it
(``ingest.pipeline``), while the closed incident lists it too, or was purged
since.  Earlier versions moved it to a new incident keeping the status the
person gave it, and did so for an alert only judged again (a replay, a
restart).  So an alert is named only where no incident listing it accounts
for its status: the status its log leaves it in, open while that is open or
acknowledged, and, in an incident no action set a status of, a closed status
carried in.  An alert of a closed incident set back to open is found; one of
an untouched incident set closed is not.

The log the chain lists is the log as recorded: a row deleted or edited
since still counts as it was (``verify`` names the row), and one inserted
behind the chain's back does not count.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from models.alert import AlertStatus
from models.incident import CLOSED, STATUS_AFTER, TriageActionKind
from store.chain import Problem
from store.chain_audit import ChainedAction

_KINDS = {kind.value: kind for kind in TriageActionKind}
_OPEN = frozenset({AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED})

# groups of problems, each listed up to ``LISTED`` (a bulk UPDATE is one line past that)
INCIDENTS = "incidents in a status their triage log does not leave them in"
ALERTS = "alerts in a status their incidents' triage logs do not account for"
GONE = "incidents gone whose triage log the chain holds"


@dataclass(frozen=True, slots=True)
class _Implied:
    """What an incident's chained log says of its status."""

    status: AlertStatus
    by: ChainedAction | None  # the action that set it; None: none did (a new incident's open)

    def alert_statuses(self) -> frozenset[str]:
        """The statuses an alert the incident lists may be in (the module's doc says why each), as stored."""
        allowed = {self.status}
        if self.status in _OPEN:  # an alert that joined since
            allowed.add(AlertStatus.OPEN)
        if self.by is None:  # an alert moved, closed, out of a closed incident by an earlier version
            allowed |= CLOSED
        return frozenset(status.value for status in allowed)

    def says(self) -> str:
        if self.by is None:
            return f"its triage log leaves it {self.status.value} (no action set its status)"
        return f"its triage log leaves it {self.status.value} (triage action {self.by.row}: {self.by.summary})"


_NEW = _Implied(AlertStatus.OPEN, None)  # an incident no action was taken on


def check_statuses(db: sqlite3.Connection, log: Sequence[ChainedAction], add: Callable[[str, Problem], None]) -> None:
    """Compare each stored incident's status, and its alerts', with what ``log`` (the chain's) implies."""
    implied = _implied(log)
    stored: set[str] = set()
    rows = db.execute("SELECT incident_id, status, json_extract(body, '$.status') FROM incidents ORDER BY incident_id")
    for incident_id, column, body in rows:
        stored.add(incident_id)
        expected = implied.get(incident_id, _NEW)
        if expected is not None and (column, body) != (expected.status.value, expected.status.value):
            detail = f"{_stored_as(column, body)}, but {expected.says()}"
            add(INCIDENTS, Problem("status", detail, incident_id=incident_id))
    _check_alerts(db, implied, add)
    gone = set(implied) - stored
    if gone:
        of_gone = [action for action in log if action.incident_id in gone]
        for incident_id in sorted(gone):
            actions = [action for action in of_gone if action.incident_id == incident_id]
            detail = (
                f"no longer stored, though the chain lists {len(actions)} triage actions of it (the latest: triage"
                f" action {actions[-1].row}, {actions[-1].summary}) and no purge recorded deleting them"
            )
            add(GONE, Problem("removed", detail, incident_id=incident_id))


def _implied(log: Sequence[ChainedAction]) -> dict[str, _Implied | None]:
    """Each incident the log names, with its implied status; None where a row's kind cannot be read (a body older
    than the chain without one): what that action did is not known, so the incident is not compared."""
    implied: dict[str, _Implied | None] = {}
    for action in log:
        before = implied.get(action.incident_id, _NEW)
        kind = _KINDS.get(action.kind)
        if before is None or kind is None:
            implied[action.incident_id] = None
            continue
        status = STATUS_AFTER[kind]
        implied[action.incident_id] = before if status is None else _Implied(status, action)
    return implied


def _check_alerts(
    db: sqlite3.Connection, implied: dict[str, _Implied | None], add: Callable[[str, Problem], None]
) -> None:
    """Each alert some stored incident lists, against what the logs of all those listing it allow."""
    allowed: dict[str, frozenset[str] | None] = {}  # None: listed by an incident whose log cannot be read
    found: dict[str, tuple[str, str | None]] = {}  # alert id: its status column, its body's
    listing: dict[str, list[str]] = defaultdict(list)  # alert id: the incidents that list it
    rows = db.execute(
        "SELECT i.incident_id, a.alert_id, a.status, json_extract(a.body, '$.status')"
        " FROM incidents i, json_each(i.body, '$.alert_ids') j JOIN alerts a ON a.alert_id = j.value"
        " ORDER BY a.alert_id, i.incident_id"
    )
    for incident_id, alert_id, column, body in rows:
        found[alert_id] = (column, body)
        listing[alert_id].append(incident_id)
        expected, so_far = implied.get(incident_id, _NEW), allowed.get(alert_id, frozenset())
        allowed[alert_id] = None if so_far is None or expected is None else so_far | expected.alert_statuses()
    for alert_id, statuses in allowed.items():
        column, body = found[alert_id]
        if statuses is None or (column in statuses and body in statuses):
            continue
        incidents, allows = listing[alert_id], _either(statuses)
        if len(incidents) == 1:
            expected = implied.get(incidents[0], _NEW)
            assert expected is not None  # else ``statuses`` is None
            why = f"incident {incidents[0]} lists it, and {expected.says()}: an alert of it can be {allows} only"
        else:
            why = f"incidents {', '.join(incidents)} list it, whose triage logs allow {allows} only"
        detail = f"{_stored_as(column, body)}, but {why}"
        add(ALERTS, Problem("status", detail, incident_id=incidents[-1], alert_id=alert_id))


def _stored_as(column: str, body: str | None) -> str:
    if column == body:
        return f"stored as {column}"
    return f"stored as {column} (its status column) and {body} (its body)"


def _either(statuses: frozenset[str]) -> str:
    names = [status.value for status in AlertStatus if status.value in statuses]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
