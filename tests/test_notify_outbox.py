"""The outbox in the embedded store: the shared outbox contract, plus what only SQLite shows."""

from __future__ import annotations

from datetime import timedelta

import pytest

from models.page import NotificationStatus
from store.outbox import OutboxQuery, Settlement
from store.sqlite import SqliteStore
from tests.outbox_contract import LEASE, OutboxContract, rest
from tests.paging_factories import NOW, notification


class TestSqliteOutbox(OutboxContract):
    @pytest.fixture
    def store(self, sqlite_store):
        return sqlite_store


def test_the_outbox_survives_closing_the_store(tmp_path):
    path = tmp_path / "a.db"
    rows = [notification("pagerduty"), notification("slack")]
    with SqliteStore(path) as store:
        store.enqueue(rows)
        store.claim_due(NOW, LEASE)
        store.settle(rows[0].notification_id, Settlement(status=NotificationStatus.SENT, at=NOW))
    with SqliteStore(path) as store:
        assert {row.receiver: row.status for row in store.notifications(OutboxQuery())} == {
            "pagerduty": NotificationStatus.SENT,
            "slack": NotificationStatus.PENDING,
        }
        assert [row.receiver for row in store.claim_due(NOW, LEASE, limit=10)] == ["slack"]


def test_two_connections_never_take_the_same_row(tmp_path):
    path = tmp_path / "a.db"
    rows = [notification(f"r{n}") for n in range(20)]
    with SqliteStore(path) as one, SqliteStore(path) as two:
        one.enqueue(rows)
        taken: list[str] = []
        for turn in range(20):
            store = one if turn % 2 else two
            taken += [row.notification_id for row in store.claim_due(NOW, LEASE)]
        assert sorted(taken) == sorted(row.notification_id for row in rows)
        assert one.claim_due(NOW + timedelta(seconds=1), LEASE, limit=100) == []


def test_a_rest_one_connection_recorded_holds_back_the_other(tmp_path):
    path = tmp_path / "a.db"
    with SqliteStore(path) as running, SqliteStore(path) as command:
        running.enqueue([notification("pagerduty")])
        running.rest_receiver(rest("pagerduty", seconds=3600, asked=3600))
        assert command.claim_due(NOW + timedelta(minutes=59), LEASE) == []
        assert command.receiver_rests() == running.receiver_rests()
