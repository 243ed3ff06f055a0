"""The outbox in the embedded store: one row per notification (migration ``0003-paging-outbox``).

A mixin of ``SqliteStore``: it uses the store's connection (``self._db``),
so a notification is as durable as the alerts beside it.  The immutable part
of a notification is kept as JSON; what changes as it is delivered (status,
attempts, due time, lease, last error) are columns.  A page brought up to
date when it was sent (``Settlement.sent_page``) replaces the planned one in
the JSON.  Receivers' rests are rows of ``receiver_rests`` (migration
``0012-receiver-rests``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from models.page import Notification, NotificationStatus
from store.outbox import OutboxQuery, OutboxStore, ReceiverRest, Settlement

_COLUMNS = "id, status, attempts, due_at, settled_at, last_error, leased_until, body"


def _text(moment: datetime) -> str:
    """RFC 3339 UTC with microseconds: compares as time, as text."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _moment(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


class SqliteOutbox(OutboxStore):
    _db: sqlite3.Connection

    def enqueue(self, notifications: Sequence[Notification]) -> list[str]:
        if not notifications:
            return []
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            added = self._add_notifications(notifications)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return added

    def _add_notifications(self, notifications: Sequence[Notification]) -> list[str]:
        """``enqueue``'s rows, in the transaction under way (a triage action's pages go in with the action)."""
        added = []
        for notification in notifications:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO outbox (notification_id, receiver, dedup_key, kind, incident_id,"
                " actor_id, conditional, status, attempts, created_at, due_at, settled_at, last_error, body)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    notification.notification_id,
                    notification.receiver,
                    notification.dedup_key,
                    notification.kind.value,
                    notification.incident_id,
                    notification.actor_id,
                    int(notification.only_if_unacknowledged),
                    notification.status.value,
                    notification.attempts,
                    _text(notification.created_at),
                    _text(notification.due_at),
                    _text(notification.settled_at) if notification.settled_at else None,
                    notification.last_error,
                    notification.model_dump_json(),
                ),
            )
            if cursor.rowcount:
                added.append(notification.notification_id)
        return added

    def claim_due(
        self,
        now: datetime,
        lease_seconds: float,
        limit: int = 1,
        incident_id: str | None = None,
        skip_receivers: Sequence[str] = (),
    ) -> list[Notification]:
        now_text = _text(now)
        where = [
            "o.status = 'pending'",
            "o.due_at <= ?",
            "(o.leased_until IS NULL OR o.leased_until <= ?)",
            "NOT EXISTS (SELECT 1 FROM receiver_rests r WHERE r.receiver = o.receiver AND r.until > ?)",
        ]
        params: list = [now_text, now_text, now_text]
        if incident_id is not None:
            where.append("o.incident_id = ?")
            params.append(incident_id)
        if skip_receivers:
            where.append(f"o.receiver NOT IN ({','.join('?' * len(skip_receivers))})")
            params.extend(skip_receivers)
        # first in line: no earlier pending notification to the same receiver about the same
        # incident (an escalation waiting for its deadline does not hold the line)
        where.append(
            "NOT EXISTS (SELECT 1 FROM outbox p WHERE p.receiver = o.receiver AND p.dedup_key = o.dedup_key"
            " AND p.status = 'pending' AND p.conditional = 0 AND p.id < o.id)"
        )
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            rows = db.execute(
                f"SELECT {', '.join('o.' + c for c in _COLUMNS.split(', '))} FROM outbox o"
                f" WHERE {' AND '.join(where)} ORDER BY o.due_at, o.id LIMIT ?",
                (*params, limit),
            ).fetchall()
            lease = _text(now + timedelta(seconds=lease_seconds))
            db.executemany("UPDATE outbox SET leased_until = ? WHERE id = ?", [(lease, row[0]) for row in rows])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return [self._notification(row) for row in rows]

    def settle(self, notification_id: str, settlement: Settlement) -> None:
        final = settlement.status is not NotificationStatus.PENDING
        sent_page = settlement.sent_page.model_dump_json() if settlement.sent_page is not None else None
        cursor = self._db.execute(
            "UPDATE outbox SET status = ?, attempts = attempts + ?, leased_until = NULL,"
            " last_error = coalesce(?, last_error), due_at = coalesce(?, due_at), settled_at = ?,"
            " body = CASE WHEN ? IS NULL THEN body ELSE json_set(body, '$.page', json(?)) END"
            " WHERE notification_id = ?",
            (
                settlement.status.value,
                int(settlement.attempted),
                settlement.error,
                _text(settlement.retry_at) if settlement.retry_at else None,
                _text(settlement.at) if final else None,
                sent_page,
                sent_page,
                notification_id,
            ),
        )
        if not cursor.rowcount:
            raise KeyError(notification_id)

    def release(self, notification_id: str) -> None:
        self._db.execute(
            "UPDATE outbox SET leased_until = NULL WHERE notification_id = ? AND status = 'pending'",
            (notification_id,),
        )

    def notifications(self, query: OutboxQuery) -> list[Notification]:
        where = ["1 = 1"]
        params: list[str] = []
        if query.statuses:
            where.append(f"status IN ({','.join('?' * len(query.statuses))})")
            params.extend(status.value for status in query.statuses)
        if query.kinds:
            where.append(f"kind IN ({','.join('?' * len(query.kinds))})")
            params.extend(kind.value for kind in query.kinds)
        for column, value in (
            ("incident_id", query.incident_id),
            ("actor_id", query.actor_id),
            ("receiver", query.receiver),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if query.created_since is not None:
            where.append("created_at >= ?")
            params.append(_text(query.created_since))
        order = "DESC" if query.newest_first else "ASC"
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM outbox WHERE {' AND '.join(where)} ORDER BY created_at {order}, id {order}"
            " LIMIT ?",
            (*params, query.limit),
        ).fetchall()
        return [self._notification(row) for row in rows]

    def outbox_counts(self) -> dict[NotificationStatus, int]:
        rows = self._db.execute("SELECT status, count(*) FROM outbox GROUP BY status").fetchall()
        return {NotificationStatus(status): count for status, count in rows}

    def rest_receiver(self, rest: ReceiverRest) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO receiver_rests (receiver, until, asked_until, failures, error, at)"
            " VALUES (?,?,?,?,?,?)",
            (
                rest.receiver,
                _text(rest.until),
                _text(rest.asked_until) if rest.asked_until else None,
                rest.failures,
                rest.error,
                _text(rest.at),
            ),
        )

    def end_rest(self, receiver: str, set_before: datetime | None = None) -> None:
        if set_before is None:
            self._db.execute("DELETE FROM receiver_rests WHERE receiver = ?", (receiver,))
        else:
            self._db.execute("DELETE FROM receiver_rests WHERE receiver = ? AND at < ?", (receiver, _text(set_before)))

    def receiver_rests(self) -> dict[str, ReceiverRest]:
        rows = self._db.execute(
            "SELECT receiver, until, asked_until, failures, error, at FROM receiver_rests"
        ).fetchall()
        return {
            receiver: ReceiverRest(
                receiver=receiver,
                until=datetime.fromisoformat(until),
                asked_until=_moment(asked_until),
                failures=failures,
                error=error,
                at=datetime.fromisoformat(at),
            )
            for receiver, until, asked_until, failures, error, at in rows
        }

    @staticmethod
    def _notification(row: tuple) -> Notification:
        _, status, attempts, due_at, settled_at, last_error, leased_until, body = row
        planned = Notification.model_validate_json(body)
        return planned.model_copy(
            update={
                "status": NotificationStatus(status),
                "attempts": attempts,
                "due_at": _moment(due_at),
                "settled_at": _moment(settled_at),
                "last_error": last_error,
                "leased_until": _moment(leased_until),
            }
        )
