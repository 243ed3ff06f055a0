"""``verify``'s check that each stored alert and incident is still the actor's its id was made from.

The alerts and incidents tables are not chained as rows (``store.chain_status``
says why), but their ids are derived from what they are about, in event time,
so a replay makes the same ones: an alert's from its detector, its actor and
the start of its first finding (``detectors.alerts.alert_id``), which its
body keeps as the first of its spans (``opened_at``: its window may have
grown to an earlier start since); an incident's from its actor and the first
finding of the alert that opened it (``detectors.incidents.incident_id``), or,
for a case opened after a closed one, from that case's id and the alert's
(``follow_up_id``).  So a row moved to another actor (``UPDATE alerts SET
actor_id=...``, and its body) no longer re-derives its id: ``verify`` names
it "moved", and the actor the id was made from where the chain tells it: the
actor of the events the alert cites (retention keeps those while the alert is
kept), or of its alerts, for an incident.

What cannot be re-derived is not compared.  A ``tampering`` alert's id is made
from the refused event's id and bytes, not from an actor.  An id made from no
actor at all (its detector or start changed too, or another program's) does
not tell which actor it was.  A follow-up whose closed case retention purged
has nothing left to derive its id from; its actor is still compared with its
alerts'.

An incident lists its alerts, and retention deletes an alert only once no
stored incident lists it (``store.retention``), and records no alert's purge:
so an alert an incident lists that is not stored was deleted behind the
product's back, and is named.  Deleting it from the list too leaves the
incident's own figures: its evidence names each detector's strongest alert,
and its severity is its strongest alert's (an alert's only rises), so an
incident that names an alert it no longer lists, or stands above every alert
it lists, is named as well.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from models.alert import Severity
from models.event import format_utc, parse_rfc3339
from store.chain import Problem

# groups of problems, each listed up to ``LISTED`` (a bulk UPDATE is one line past that)
MOVED_ALERTS = "alerts whose id was not made from their stored actor"
MOVED_INCIDENTS = "incidents stored under an actor their id or their alerts are not of"
MISSING = "alerts incidents list or name that are no longer stored"
_TAMPERING = "tampering"  # ``ingest.tampering``'s detector: its ids are made from the refused event, not an actor
_CITED = 5  # cited events looked up for the actor a moved alert's id was made from (one is enough, if stored)
_RANKS = {severity.value: severity.rank for severity in Severity}


@dataclass(slots=True)
class _Alert:
    actor: str  # the actor its id was made from, where found; else its stored actor
    opened: str | None  # the start of its first finding, as its id hashed it; None: not readable
    rank: int


def check_ids(db: sqlite3.Connection, add: Callable[[str, Problem], None]) -> None:
    """One pass over the alerts, one over the incidents: ids re-derived, actors and lists compared."""
    alerts = _check_alerts(db, add)
    _check_incidents(db, alerts, add)


def _check_alerts(db: sqlite3.Connection, add: Callable[[str, Problem], None]) -> dict[str, _Alert]:
    found: dict[str, _Alert] = {}
    rows = db.execute(
        "SELECT alert_id, detector, actor_id, json_extract(body, '$.detector'), json_extract(body, '$.actor_id'),"
        " coalesce(json_extract(body, '$.evidence.spans[0][0]'), json_extract(body, '$.window_start')),"
        " json_extract(body, '$.severity'), json_extract(body, '$.evidence.event_ids') FROM alerts ORDER BY alert_id"
    )
    for alert_id, detector, actor, body_detector, body_actor, start, severity, cited in rows:
        opened = _utc(start)
        rank = _RANKS.get(severity, -1)
        if detector == _TAMPERING and body_detector == _TAMPERING:
            found[alert_id] = _Alert(actor, opened, rank)  # its id is not made from an actor: nothing to compare
            continue
        stored = list(dict.fromkeys((actor, body_actor)))  # its column's and its body's, once if they agree
        made_from = [a for a in stored if opened and _alert_id(detector, a, opened) == alert_id]
        if body_detector != detector:
            made_from = []
        if made_from == stored:
            found[alert_id] = _Alert(actor, opened, rank)
            continue
        original = made_from[0] if made_from else _cited_actor(db, alert_id, detector, opened, _cited(cited))
        if original is None:
            # made from no actor: its detector or start changed too, or another program's id (a test's, an
            # import's): which actor it was is not known, and nothing says it was moved
            found[alert_id] = _Alert(actor, opened, rank)
            continue
        found[alert_id] = _Alert(original, opened, rank)
        why = f"its id was made from {original}'s" + ("" if made_from else " (the actor of the events it cites)")
        add(MOVED_ALERTS, Problem("moved", f"{_stored_under(stored)}, but {why}", alert_id=alert_id))
    return found


def _check_incidents(db: sqlite3.Connection, alerts: dict[str, _Alert], add: Callable[[str, Problem], None]) -> None:
    rows = db.execute(
        "SELECT incident_id, actor_id, json_extract(body, '$.actor_id'), json_extract(body, '$.alert_ids'),"
        " json_extract(body, '$.evidence'), severity_rank FROM incidents ORDER BY incident_id"
    ).fetchall()
    listing: dict[str, list[str]] = defaultdict(list)  # alert id: the incidents that list it
    lists: dict[str, list[str]] = {}
    for incident_id, _, _, listed, _, _ in rows:
        lists[incident_id] = _ids(listed)
        for alert_id in lists[incident_id]:
            listing[alert_id].append(incident_id)
    for incident_id, actor, body_actor, _, evidence, rank in rows:
        listed = lists[incident_id]
        members = [(alert_id, alerts[alert_id]) for alert_id in listed if alert_id in alerts]
        _check_list(incident_id, listed, len(members), evidence, rank, alerts, add)
        problem = _moved_incident(incident_id, list(dict.fromkeys((actor, body_actor))), members, listing)
        if problem is not None:
            add(MOVED_INCIDENTS, Problem("moved", problem, incident_id=incident_id))


def _check_list(
    incident_id: str,
    listed: list[str],
    stored: int,
    evidence: object,
    rank: object,
    alerts: dict[str, _Alert],
    add: Callable[[str, Problem], None],
) -> None:
    """The alerts the incident lists, or its evidence names, that are gone; its severity above theirs."""
    for alert_id in listed:
        if alert_id not in alerts:
            detail = (
                f"incident {incident_id} lists it, but it is no longer stored, and retention deletes no alert"
                " an incident lists"
            )
            add(MISSING, Problem("removed", detail, incident_id=incident_id, alert_id=alert_id))
    for detector, alert_id in _named(evidence):
        if alert_id not in listed:
            where = "stored" if alert_id in alerts else "no longer stored"
            detail = (
                f"incident {incident_id}'s evidence names it (its strongest of {detector}), but the incident"
                f" does not list it ({where})"
            )
            add(MISSING, Problem("removed", detail, incident_id=incident_id, alert_id=alert_id))
    if not stored or stored != len(listed) or not isinstance(rank, int) or not 0 <= rank <= 3:
        return  # an alert gone is named above; a rank that cannot be read, by ``store.chain_incidents``
    strongest = max(alerts[alert_id].rank for alert_id in listed)
    if 0 <= strongest < rank:
        detail = (
            f"stored at {Severity.from_rank(rank).value}, above every alert it lists (the strongest"
            f" {Severity.from_rank(strongest).value}): its stronger alert was removed"
        )
        add(MISSING, Problem("removed", detail, incident_id=incident_id))


def _moved_incident(
    incident_id: str, stored: list[str], members: list[tuple[str, _Alert]], listing: dict[str, list[str]]
) -> str | None:
    """Why the incident is not its stored actor's, or None: its alerts, or its id, made from another's."""
    others = sorted({member.actor for _, member in members if member.actor not in stored})
    made_from = [actor for actor in (*stored, *others) if _derives(incident_id, actor, members, listing)]
    if len(stored) == 1 and not others and made_from in ([], stored):
        return None  # its actor's; or nothing left to derive its id from (a follow-up whose closed case went)
    parts = [f"its alerts are {' and '.join(others)}'s"] if others else []
    if made_from and (len(stored) > 1 or made_from[0] not in stored):
        parts.append(f"its id was made from {made_from[0]}'s")
    elif len(stored) > 1:
        parts.append("its column and its body disagree")
    return f"{_stored_under(stored)}, but {' and '.join(parts)}"


def _derives(incident_id: str, actor: str, members: list[tuple[str, _Alert]], listing: dict[str, list[str]]) -> bool:
    """Whether the id is ``detectors.incidents``'s for ``actor`` and one of its alerts: the case it opened, or a
    follow-up of a closed case that listed it, or of the one its id would have made (``incidents.attach``)."""
    for alert_id, member in members:
        if member.opened is None:
            continue
        first = _hash("inc-", 20, actor, member.opened)
        if first == incident_id:
            return True
        for closed in (first, *listing[alert_id]):
            if closed != incident_id and _hash("inc-", 20, closed, alert_id) == incident_id:
                return True
    return False


def _cited_actor(
    db: sqlite3.Connection, alert_id: str, detector: str, opened: str | None, cited: list[str]
) -> str | None:
    """The actor of the events the alert cites whose id re-derives the alert's, if one does."""
    if opened is None:
        return None
    from store.sqlite import id_key  # here: ``store.sqlite`` imports ``verify``, which imports this module

    for event_id in cited[:_CITED]:
        row = db.execute("SELECT actor_id FROM events WHERE id_key = ?", (id_key(event_id),)).fetchone()
        if row is not None and _alert_id(detector, row[0], opened) == alert_id:
            return str(row[0])
    return None


def _alert_id(detector: str, actor: str, opened: str) -> str:
    return _hash("aw-", 24, detector, actor, opened)


def _hash(prefix: str, length: int, *parts: str) -> str:
    return prefix + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:length]


def _utc(text: object) -> str | None:
    """A time as the ids hash it (``format_utc``); None where it cannot be read."""
    try:
        return format_utc(parse_rfc3339(str(text)))
    except (ValueError, TypeError):
        return None


def _cited(value: object) -> list[str]:
    ids = _json(value)
    return [item for item in ids if isinstance(item, str)] if isinstance(ids, list) else []


def _ids(value: object) -> list[str]:
    return _cited(value)


def _named(value: object) -> list[tuple[str, str]]:
    """The alert each detector's figures in an incident's evidence name (``incidents._figures``)."""
    evidence = _json(value)
    if not isinstance(evidence, dict):
        return []
    return [
        (str(detector), figures["alert_id"])
        for detector, figures in evidence.items()
        if isinstance(figures, dict) and isinstance(figures.get("alert_id"), str)
    ]


def _json(value: object) -> object:
    if not isinstance(value, str):
        return None
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return None


def _stored_under(actors: list[str]) -> str:
    if len(actors) == 1:
        return f"stored under {actors[0]}"
    return f"stored under {actors[0]} (its actor_id column) and {actors[1]} (its body)"
