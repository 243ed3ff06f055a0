"""Migration 0017: the dashboard's roll-ups count the records of served accesses only.

Until then the roll-ups (``store.sqlite_dashboard``) added every event's
``record_count`` to its hour's records, and an export's to its exports, a
refused or failed one's too: the records it asked for, where the detectors,
the incident page's own events and the report's tables count the records
read (``detectors.windows``: only data actually served).  The fold now
counts served records only; this takes the others out of what was folded
before, by the same groups (actor, hour, kind, classes, action, resource).

A re-fold from the events would do it too, but would lose the figures of
the events retention deleted: retention folds them before it deletes them,
and those hourly figures are what the breach report gives as the window's
"as ingested".  Subtracting keeps them; what they counted of refused events
that are no longer stored cannot be taken out, since nothing says which
they were.  So the hours before the latest purge's horizon are marked
(``REFUSED_BEFORE`` in ``dash_fold``): their records may still include
refused or failed accesses', and the report says so of them.
"""

from __future__ import annotations

import sqlite3

from models.event import Action

HOUR_US = 3_600_000_000
REFUSED_BEFORE = "refused_records_before_hour"  # dash_fold's name for the first hour counted as served only
_NOT_SERVED = "outcome != 'success'"


def count_served_records_only(db: sqlite3.Connection) -> None:
    egress = ",".join(f"'{action.value}'" for action in Action if action.is_egress)  # enum values, not input
    folded = db.execute("SELECT coalesce((SELECT seq FROM dash_fold WHERE name = 'events'), 0)").fetchone()[0]
    db.execute(
        "CREATE TEMP TABLE dash_unserved AS SELECT actor_id, ts / ? AS hour, classes, action,"
        " system || '/' || resource_type AS resource, actor_kind, sum(record_count) AS records"
        f" FROM events WHERE seq <= ? AND {_NOT_SERVED} AND record_count != 0 GROUP BY 1, 2, 3, 4, 5, 6",
        (HOUR_US, folded),
    )
    egress_records = f"sum(CASE WHEN action IN ({egress}) THEN records ELSE 0 END)"
    for table, keys in (("dash_actor_hours", ("actor_id", "hour")), ("dash_hours", ("hour",))):
        matched = " AND ".join(f"{table}.{key} = u.{key}" for key in keys)
        db.execute(
            f"UPDATE {table} SET records = {table}.records - u.records, egress = {table}.egress - u.egress"
            f" FROM (SELECT {', '.join(keys)}, sum(records) AS records, {egress_records} AS egress"
            f" FROM dash_unserved GROUP BY {', '.join(keys)}) u WHERE {matched}"
        )
    # the classes of each group, split at their commas (few distinct sets), as the fold splits them
    db.execute("CREATE TEMP TABLE dash_unserved_classes (classes TEXT NOT NULL, class TEXT NOT NULL)")
    sets = [row[0] for row in db.execute("SELECT DISTINCT classes FROM dash_unserved")]
    db.executemany(
        "INSERT INTO dash_unserved_classes VALUES (?, ?)",
        [(text, name) for text in sets for name in text.split(",") if name],
    )
    by_class = "dash_unserved g JOIN dash_unserved_classes c ON c.classes = g.classes"
    db.execute(
        "UPDATE dash_class_kind_hours SET records = dash_class_kind_hours.records - u.records"
        f" FROM (SELECT g.hour, c.class, g.actor_kind, sum(g.records) AS records FROM {by_class} GROUP BY 1, 2, 3) u"
        " WHERE dash_class_kind_hours.hour = u.hour AND dash_class_kind_hours.class = u.class"
        " AND dash_class_kind_hours.actor_kind = u.actor_kind"
    )
    usage = (
        "UPDATE dash_usage SET records = dash_usage.records - u.records FROM ({}) u"
        " WHERE dash_usage.actor_id = u.actor_id AND dash_usage.facet = u.facet AND dash_usage.value = u.value"
        " AND dash_usage.day = u.day"
    )
    db.execute(
        usage.format(
            "SELECT g.actor_id, 'class' AS facet, c.class AS value, g.hour / 24 AS day, sum(g.records) AS records"
            f" FROM {by_class} GROUP BY 1, 3, 4"
        )
    )
    for facet in ("resource", "action"):
        db.execute(
            usage.format(
                f"SELECT actor_id, '{facet}' AS facet, {facet} AS value, hour / 24 AS day, sum(records) AS records"
                " FROM dash_unserved GROUP BY 1, 3, 4"
            )
        )
    db.execute("DROP TABLE temp.dash_unserved")
    db.execute("DROP TABLE temp.dash_unserved_classes")
    # the purged events' refused records stay in their hours: every hour before the latest horizon may hold some
    horizon = db.execute("SELECT max(max_ts) FROM chain WHERE kind = 'purge'").fetchone()[0]
    if horizon is not None and folded:
        db.execute(
            "INSERT INTO dash_fold VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET seq = excluded.seq",
            (REFUSED_BEFORE, -(-horizon // HOUR_US)),
        )
