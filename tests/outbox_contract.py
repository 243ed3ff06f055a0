"""The behaviour every store adapter's outbox must have (``store.outbox.OutboxStore``).

A test module subclasses ``OutboxContract`` and provides a ``store`` fixture
(a fresh, empty store).  SQLite runs it in ``tests/test_notify_outbox.py``;
the Elasticsearch adapter can run the same class against its test server.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from models.alert import Severity
from models.page import NotificationStatus, PageKind
from store.outbox import OutboxQuery, OutboxStore, ReceiverRest, Settlement
from tests.paging_factories import NOW, notification, page

LEASE = 60.0


def _sent(at=NOW) -> Settlement:
    return Settlement(status=NotificationStatus.SENT, at=at)


def _retry(at, retry_at, error="HTTP 500 from pd") -> Settlement:
    return Settlement(status=NotificationStatus.PENDING, at=at, error=error, retry_at=retry_at)


def rest(receiver="pagerduty", seconds=120.0, asked=None, failures=1, at=NOW) -> ReceiverRest:
    return ReceiverRest(
        receiver=receiver,
        until=at + timedelta(seconds=seconds),
        asked_until=at + timedelta(seconds=asked) if asked is not None else None,
        failures=failures,
        error="HTTP 429 from pd",
        at=at,
    )


class OutboxContract:
    def test_enqueue_adds_new_ids_once(self, store: OutboxStore):
        first, second = notification("pagerduty"), notification("slack")
        assert store.enqueue([first, second]) == [first.notification_id, second.notification_id]
        assert store.enqueue([first, second]) == []
        assert len(store.notifications(OutboxQuery())) == 2

    def test_enqueueing_a_known_id_again_leaves_its_state(self, store: OutboxStore):
        row = notification()
        store.enqueue([row])
        store.claim_due(NOW, LEASE)
        store.settle(row.notification_id, _sent())
        store.enqueue([row])  # planned again (a replay, a recovery): it was sent, it stays sent
        (kept,) = store.notifications(OutboxQuery())
        assert kept.status is NotificationStatus.SENT and kept.attempts == 1
        assert store.claim_due(NOW + timedelta(days=1), LEASE) == []

    def test_rows_round_trip_with_their_page(self, store: OutboxStore):
        row = notification(the_page=page(PageKind.UPDATE, Severity.CRITICAL, previous_severity=Severity.HIGH))
        store.enqueue([row])
        (back,) = store.notifications(OutboxQuery())
        assert back == row

    def test_only_due_rows_are_claimed_oldest_due_first(self, store: OutboxStore):
        later = notification("a", due=NOW + timedelta(minutes=5))
        now = notification("b", due=NOW)
        earlier = notification("c", created=NOW - timedelta(minutes=1))
        store.enqueue([later, now, earlier])
        claimed = store.claim_due(NOW, 3600, limit=10)  # out for delivery for the rest of the test
        assert [row.notification_id for row in claimed] == [earlier.notification_id, now.notification_id]
        assert [row.receiver for row in store.claim_due(NOW + timedelta(minutes=5), LEASE, limit=10)] == ["a"]

    def test_a_claimed_row_is_not_given_out_again_until_settled_or_its_lease_runs_out(self, store: OutboxStore):
        row = notification()
        store.enqueue([row])
        assert len(store.claim_due(NOW, LEASE)) == 1
        assert store.claim_due(NOW + timedelta(seconds=LEASE - 1), LEASE) == []
        # the delivering process died: after the lease, another takes it
        assert len(store.claim_due(NOW + timedelta(seconds=LEASE + 1), LEASE)) == 1

    def test_a_claimed_row_shows_its_lease_and_one_given_back_is_due_again_at_once(self, store: OutboxStore):
        row = notification()
        store.enqueue([row])
        store.claim_due(NOW, LEASE)
        (held,) = store.notifications(OutboxQuery())
        assert held.leased_until == NOW + timedelta(seconds=LEASE)  # ``pages`` shows it
        store.release(row.notification_id)  # its process was stopped (Ctrl-C) before it settled
        (again,) = store.claim_due(NOW + timedelta(seconds=1), LEASE)
        assert again.attempts == 0 and again.due_at == row.due_at  # an attempt that never finished counts not

    def test_giving_back_a_row_settled_meanwhile_leaves_it_settled(self, store: OutboxStore):
        row = notification()
        store.enqueue([row])
        store.claim_due(NOW, LEASE)
        store.settle(row.notification_id, _sent())
        store.release(row.notification_id)  # the interrupt came just after the receiver took it
        store.release("no-such-id")
        (kept,) = store.notifications(OutboxQuery())
        assert kept.status is NotificationStatus.SENT and kept.leased_until is None
        assert store.claim_due(NOW + timedelta(days=1), LEASE) == []

    def test_a_retry_counts_the_attempt_and_waits_for_its_time(self, store: OutboxStore):
        row = notification()
        store.enqueue([row])
        store.claim_due(NOW, LEASE)
        store.settle(row.notification_id, _retry(NOW, NOW + timedelta(seconds=30)))
        assert store.claim_due(NOW + timedelta(seconds=29), LEASE) == []
        (again,) = store.claim_due(NOW + timedelta(seconds=30), LEASE)
        assert again.attempts == 1 and again.last_error == "HTTP 500 from pd"
        assert again.status is NotificationStatus.PENDING and again.settled_at is None

    def test_sent_is_final_and_keeps_when(self, store: OutboxStore):
        row = notification()
        store.enqueue([row])
        store.claim_due(NOW, LEASE)
        store.settle(row.notification_id, _sent(NOW + timedelta(seconds=1)))
        (done,) = store.notifications(OutboxQuery())
        assert done.status is NotificationStatus.SENT and done.settled_at == NOW + timedelta(seconds=1)
        assert store.claim_due(NOW + timedelta(days=30), LEASE) == []

    def test_one_receivers_pages_about_one_incident_go_in_order(self, store: OutboxStore):
        the_page = page()
        trigger = notification("pagerduty", the_page)
        resolve = notification(
            "pagerduty", the_page.model_copy(update={"kind": PageKind.RESOLVE}), created=NOW + timedelta(seconds=1)
        )
        other = notification("slack", the_page, created=NOW + timedelta(seconds=2))
        store.enqueue([trigger, resolve, other])
        store.claim_due(NOW, LEASE)  # the trigger, out for delivery
        store.settle(trigger.notification_id, _retry(NOW, NOW + timedelta(minutes=10)))
        later = NOW + timedelta(minutes=1)
        # the resolve waits behind the trigger in backoff; another receiver does not
        assert [row.receiver for row in store.claim_due(later, LEASE, limit=10)] == ["slack"]
        store.settle(other.notification_id, _sent(later))
        first = store.claim_due(NOW + timedelta(minutes=10), LEASE, limit=10)
        assert [row.kind for row in first] == [PageKind.TRIGGER]
        store.settle(trigger.notification_id, _sent(NOW + timedelta(minutes=10)))
        (second,) = store.claim_due(NOW + timedelta(minutes=10), LEASE, limit=10)
        assert second.notification_id == resolve.notification_id

    def test_an_escalation_waiting_for_its_deadline_does_not_hold_the_line(self, store: OutboxStore):
        the_page = page()
        escalation = notification("pagerduty", the_page, due=NOW + timedelta(minutes=15), conditional=True)
        direct = notification("pagerduty", the_page.model_copy(update={"kind": PageKind.UPDATE}))
        store.enqueue([escalation, direct])
        assert [row.notification_id for row in store.claim_due(NOW, LEASE, limit=10)] == [direct.notification_id]

    def test_claims_can_be_narrowed_to_an_incident_and_skip_receivers(self, store: OutboxStore):
        one, two = page(), page()
        rows = [notification("pagerduty", one), notification("slack", one), notification("pagerduty", two)]
        store.enqueue(rows)
        claimed = store.claim_due(NOW, LEASE, limit=10, incident_id=one.dedup_key, skip_receivers=["slack"])
        assert [row.notification_id for row in claimed] == [rows[0].notification_id]

    def test_settling_an_unknown_id_is_an_error(self, store: OutboxStore):
        with pytest.raises(KeyError):
            store.settle("ntf-unknown", _sent())

    def test_suppressed_rows_are_kept_with_the_reason_and_never_claimed(self, store: OutboxStore):
        row = notification(status=NotificationStatus.SUPPRESSED).model_copy(
            update={"last_error": "silenced by 'db migration'", "settled_at": NOW}
        )
        store.enqueue([row])
        assert store.claim_due(NOW + timedelta(days=1), LEASE) == []
        (kept,) = store.notifications(OutboxQuery(statuses=[NotificationStatus.SUPPRESSED]))
        assert kept.last_error == "silenced by 'db migration'"

    def test_queries_filter_and_order(self, store: OutboxStore):
        one, two = page(), page(PageKind.RESOLVE)
        rows = [
            notification("pagerduty", one, created=NOW),
            notification("slack", one, created=NOW + timedelta(minutes=1)),
            notification("pagerduty", two, created=NOW + timedelta(minutes=2)),
        ]
        store.enqueue(rows)
        ids = [row.notification_id for row in rows]
        newest = store.notifications(OutboxQuery())
        assert [row.notification_id for row in newest] == ids[::-1]
        assert [r.notification_id for r in store.notifications(OutboxQuery(newest_first=False, limit=2))] == ids[:2]
        assert len(store.notifications(OutboxQuery(incident_id=one.dedup_key))) == 2
        assert len(store.notifications(OutboxQuery(receiver="pagerduty"))) == 2
        assert len(store.notifications(OutboxQuery(kinds=[PageKind.RESOLVE]))) == 1
        assert len(store.notifications(OutboxQuery(actor_id=one.incident.actor_id))) == 3
        since = store.notifications(OutboxQuery(created_since=NOW + timedelta(minutes=1)))
        assert [row.notification_id for row in since] == ids[:0:-1]
        store.claim_due(NOW, LEASE)
        store.settle(ids[0], _sent())
        assert [r.notification_id for r in store.notifications(OutboxQuery(statuses=[NotificationStatus.SENT]))] == [
            ids[0]
        ]

    def test_counts_by_status(self, store: OutboxStore):
        rows = [notification("a"), notification("b"), notification("c")]
        store.enqueue(rows)
        store.claim_due(NOW, LEASE)
        store.settle(rows[0].notification_id, _sent())
        failed = Settlement(status=NotificationStatus.FAILED, at=NOW, error="HTTP 400 from pd")
        store.settle(rows[1].notification_id, failed)
        assert store.outbox_counts() == {
            NotificationStatus.SENT: 1,
            NotificationStatus.FAILED: 1,
            NotificationStatus.PENDING: 1,
        }

    def test_a_resting_receiver_s_pages_are_not_claimed_until_its_rest_ends(self, store: OutboxStore):
        """Before, a rest (a Retry-After) lived in the delivering process alone: another one sent inside it."""
        rows = [notification("pagerduty"), notification("slack"), notification("pagerduty", due=NOW)]
        store.enqueue(rows)
        store.rest_receiver(rest("pagerduty", seconds=120))
        claimed = store.claim_due(NOW + timedelta(seconds=119), LEASE, limit=10)
        assert [row.receiver for row in claimed] == ["slack"]
        later = store.claim_due(NOW + timedelta(seconds=120), LEASE, limit=10)
        assert [row.receiver for row in later] == ["pagerduty", "pagerduty"]

    def test_rests_round_trip_and_a_later_one_replaces_the_earlier(self, store: OutboxStore):
        first, second = rest(seconds=10), rest(seconds=3600, asked=3600, failures=2, at=NOW + timedelta(seconds=10))
        store.rest_receiver(first)
        store.rest_receiver(rest("slack"))
        store.rest_receiver(second)
        assert store.receiver_rests() == {"pagerduty": second, "slack": rest("slack")}

    def test_a_rest_ends_unless_it_started_after_the_given_moment(self, store: OutboxStore):
        store.rest_receiver(rest(at=NOW))
        store.end_rest("pagerduty", set_before=NOW)  # a failure seen while this page was on its way stands
        assert set(store.receiver_rests()) == {"pagerduty"}
        store.end_rest("pagerduty", set_before=NOW + timedelta(microseconds=1))
        store.end_rest("slack")  # none: nothing to end
        assert store.receiver_rests() == {}
        store.rest_receiver(rest(at=NOW))
        store.end_rest("pagerduty")
        assert store.receiver_rests() == {}

    def test_a_page_brought_up_to_date_when_sent_is_kept_as_sent(self, store: OutboxStore):
        row = notification()
        store.enqueue([row])
        store.claim_due(NOW, LEASE)
        grown = row.page.incident.model_copy(update={"severity": Severity.CRITICAL, "risk_score": 90.0})
        sent = row.page.model_copy(update={"incident": grown})
        store.settle(row.notification_id, Settlement(status=NotificationStatus.SENT, at=NOW, sent_page=sent))
        (kept,) = store.notifications(OutboxQuery())
        assert kept.page == sent and kept.status is NotificationStatus.SENT and kept.attempts == 1
