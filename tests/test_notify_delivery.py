"""Pages from planning to the receiver: every page delivered, none twice after success, escalation, resolve.

Real pieces throughout: the SQLite outbox, the planning (``notify.outbox``)
and delivery (``notify.dispatch``) the product runs, the receivers built
from configuration, and local PagerDuty and Slack servers over sockets.
Time is a test clock: backoff and escalation deadlines pass without sleeping.
"""

from __future__ import annotations

import io
import itertools
import json
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from detectors.incidents import attach
from models.alert import AlertStatus, Severity
from models.incident import TransitionRefused, TriageAction, TriageActionKind
from models.page import NotificationStatus, PageKind
from notify.base import FIRST_LINE_CHARS
from notify.dispatch import DeliveryReport, Dispatcher, backoff
from notify.outbox import Pager
from notify.registry import build_receivers
from store.outbox import OutboxQuery
from store.sqlite import SqliteStore
from tests import factories as f
from tests.fakes.paging_receivers import FakeReceiver, free_port
from tests.paging_factories import ROUTING_KEY, WEBHOOK_SECRET, Clock, episode, finding, settings_with

# a generous timeout: a loaded machine must not turn a slow answer into a second delivery
DELIVERY = {"timeout": "15s", "retry_initial": "10s", "retry_max": "5m", "give_up_after": "1h"}


class Rig:
    """One process of the product's paging: a store, the receivers, the pager and the dispatcher."""

    def __init__(self, tmp_path, clock: Clock, **notify: Any) -> None:
        self.settings = settings_with(tmp_path, **{"receivers": [], "delivery": DELIVERY, **notify})
        self.path = tmp_path / "store" / "accesswatch.db"
        self.clock = clock
        self.start()

    def start(self) -> None:
        self.store = SqliteStore(self.path, cache_mb=8)
        self.receivers = build_receivers(self.settings)
        self.pager = Pager(self.store, self.settings.notify, self.receivers, clock=self.clock)
        self.dispatcher = Dispatcher(self.store, self.receivers, self.settings.notify.delivery, clock=self.clock)

    def restart(self) -> None:
        """The process stops (or dies) and a new one starts on the same store."""
        self.store.close()
        self.start()

    def close(self) -> None:
        self.store.close()

    def raise_(self, *findings) -> None:
        """What the pipeline does with new findings: plan the pages, then store alerts and incidents."""
        self.pager.page(list(findings))
        self.store.upsert_alerts([a for a, _ in findings], [i for _, i in findings])

    def act(self, incident_id: str, kind: TriageActionKind, by: str = "alice"):
        action = TriageAction(incident_id=incident_id, kind=kind, by=by, at=self.clock())
        return self.pager.record_action(action)

    def deliver(self):
        return self.dispatcher.deliver_due()

    def rows(self, **query):
        return self.store.notifications(OutboxQuery(newest_first=False, **query))


@pytest.fixture
def pagerduty():
    with FakeReceiver("pagerduty") as fake:
        yield fake


@pytest.fixture
def slack():
    with FakeReceiver("slack") as fake:
        yield fake


@pytest.fixture
def clock():
    return Clock()


def both(pd: FakeReceiver, sl: FakeReceiver, **extra) -> dict:
    return {
        "routes": [{"name": "soc", "receivers": ["pagerduty", "slack"]}],
        "settings": {
            "pagerduty": {"routing_key": ROUTING_KEY, "url": pd.url},
            "slack": {"url": sl.url},
        },
        **extra,
    }


@pytest.fixture
def rig(tmp_path, clock, pagerduty, slack):
    rig = Rig(tmp_path, clock, **both(pagerduty, slack))
    yield rig
    rig.close()


def test_every_page_is_delivered_once_and_never_again(rig, pagerduty, slack, clock):
    findings = [finding(f"emp-{n:04d}") for n in range(5)]
    rig.raise_(*findings)
    report = rig.deliver()
    assert report.sent == 10 and report.failed == 0
    assert report.sent_to == {"pagerduty": 5, "slack": 5}  # what ``replay --page`` says: five pages, to each
    assert pagerduty.pages == 5 and len(slack.accepted) == 5
    assert {e["dedup_key"] for e in pagerduty.accepted} == {i.incident_id for _, i in findings}
    # later rounds, a restart, and planning the same findings again (a replay) send nothing more
    clock.advance(3600)
    assert rig.deliver().sent == 0
    rig.restart()
    rig.raise_(*findings)
    assert rig.deliver().sent == 0
    assert len(pagerduty.received) == 5 and len(slack.received) == 5
    assert all(row.status is NotificationStatus.SENT and row.attempts == 1 for row in rig.rows())


def test_a_report_of_several_rounds_counts_each_receivers_pages_in_all():
    report = DeliveryReport(sent=2, sent_to=Counter(pagerduty=1, file=1))
    report.add(DeliveryReport(sent=1, sent_to=Counter(file=1)))
    assert (report.sent, report.sent_to) == (3, {"pagerduty": 1, "file": 2})


def test_receivers_failing_for_a_while_get_every_page_once_they_recover(rig, pagerduty, slack, clock):
    findings = [finding(f"emp-{n:04d}") for n in range(3)]
    pagerduty.fail_next(2, 500)
    slack.fail_next(1, 429, retry_after="40")
    rig.raise_(*findings)
    first = rig.deliver()
    # one attempt each: a receiver that failed rests until its retry is due
    assert first.sent == 0 and first.retrying == 2
    assert len(pagerduty.received) == 1 and len(slack.received) == 1
    waiting = rig.rows(receiver="pagerduty")
    assert waiting[0].last_error.startswith("HTTP 500") and waiting[0].attempts == 1
    assert rig.deliver().sent == 0  # nothing is due yet: no request
    assert len(pagerduty.received) == 1 and len(slack.received) == 1
    for _ in range(20):
        clock.advance(15)
        rig.deliver()
    assert pagerduty.pages == 3 and len(pagerduty.accepted) == 3
    assert len(slack.accepted) == 3
    slack_first = [r for r in slack.received if r.answered == 429]
    assert len(slack_first) == 1
    assert all(row.status is NotificationStatus.SENT for row in rig.rows())
    assert sum(row.attempts for row in rig.rows(receiver="pagerduty")) == 3 + 2  # every failure counted


def test_retry_after_is_honoured(rig, slack, clock):
    slack.fail_next(1, 429, retry_after="120")
    rig.raise_(finding())
    rig.deliver()
    (row,) = rig.rows(receiver="slack")
    assert row.due_at == clock() + timedelta(seconds=120)
    clock.advance(119)
    rig.deliver()
    assert len(slack.received) == 1
    clock.advance(1)
    rig.deliver()
    assert len(slack.accepted) == 1


def test_a_receiver_down_backs_off_longer_after_each_failure_whichever_page_it_tried(tmp_path, clock, pagerduty):
    # a backlog: each failure is the first attempt of another page, and the receiver's rest still grows
    rig = Rig(
        tmp_path,
        clock,
        receivers=["pagerduty"],
        settings={"pagerduty": {"routing_key": ROUTING_KEY, "url": pagerduty.url}},
    )
    pagerduty.fail_next(4, 503)
    rig.raise_(*[finding(f"emp-{n:04d}") for n in range(6)])
    tried_at = []
    for _ in range(200):
        before = len(pagerduty.received)
        rig.deliver()
        if len(pagerduty.received) > before:
            tried_at.append(clock())
        clock.advance(1)
    waits = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(tried_at)]
    for step, wait in enumerate(waits[:4], start=1):  # retry_initial 10 s, doubling, 75-100% of it
        assert 0.75 * 10 * 2 ** (step - 1) <= wait <= 10 * 2 ** (step - 1) + 1, waits
    assert len(pagerduty.accepted) == 6 and {row.status for row in rig.rows()} == {NotificationStatus.SENT}
    # a page accepted starts the backoff again from retry_initial
    pagerduty.fail_next(1, 503)
    rig.raise_(finding("emp-0100"))
    rig.deliver()
    (row,) = rig.rows(actor_id="emp-0100")
    assert row.attempts == 1 and (row.due_at - clock()).total_seconds() <= 10
    rig.close()


def test_backoff_doubles_up_to_its_cap_with_a_spread(tmp_path):
    delivery = settings_with(tmp_path, delivery=DELIVERY).notify.delivery
    waits = [backoff(delivery, attempt, "ntf-x") for attempt in range(1, 12)]
    for attempt, wait in enumerate(waits, start=1):
        full = min(300.0, 10.0 * 2 ** (attempt - 1))
        assert 0.75 * full <= wait <= full
    assert backoff(delivery, 3, "ntf-a") != backoff(delivery, 3, "ntf-b")


def test_a_receiver_that_times_out_but_took_the_page_collapses_the_repeat(tmp_path, clock, pagerduty, slack):
    rig = Rig(tmp_path, clock, **both(pagerduty, slack), delivery={**DELIVERY, "timeout": "0.5s"})
    pagerduty.hang_next(1, seconds=5, then_accept=True)  # slower than the timeout, but it takes the page
    alert, incident = finding()
    rig.raise_((alert, incident))
    report = rig.deliver()
    assert report.retrying >= 1
    clock.advance(30)
    rig.deliver()
    # sent at least once: PagerDuty got it twice, with one dedup key: one alert, one page to on-call
    (row,) = rig.rows(receiver="pagerduty")
    assert row.status is NotificationStatus.SENT
    assert pagerduty.pages == 1 and len(pagerduty.pagerduty) == 1
    rig.close()


def test_a_refusal_fails_at_once_and_keeps_the_error(rig, pagerduty, clock):
    pagerduty.fail_next(1, 400)
    rig.raise_(finding())
    report = rig.deliver()
    assert report.failed == 1
    (row,) = rig.rows(receiver="pagerduty")
    assert row.status is NotificationStatus.FAILED and "HTTP 400" in row.last_error and row.attempts == 1
    clock.advance(86400)
    rig.deliver()
    assert len(pagerduty.received) == 1


def test_a_receiver_down_for_longer_than_give_up_after_fails_the_page(tmp_path, clock):
    notify = {
        "receivers": ["pagerduty"],
        "settings": {"pagerduty": {"routing_key": ROUTING_KEY, "url": f"http://127.0.0.1:{free_port()}/v2/enqueue"}},
    }
    rig = Rig(tmp_path, clock, **notify)
    rig.raise_(finding())
    for _ in range(40):
        rig.deliver()
        clock.advance(300)
    (row,) = rig.rows()
    assert row.status is NotificationStatus.FAILED
    assert row.last_error.startswith("gave up after") and "cannot reach 127.0.0.1" in row.last_error
    rig.close()


def test_a_restart_in_the_middle_loses_nothing_and_repeats_nothing(rig, pagerduty, slack, clock):
    early = [finding(f"emp-{n:04d}") for n in range(2)]
    rig.raise_(*early)
    rig.deliver()  # delivered before the restart
    pagerduty.fail_next(100, 503)
    late = [finding(f"emp-{n:04d}") for n in range(2, 5)]
    rig.raise_(*late)
    rig.deliver()  # PagerDuty down: pending
    rig.restart()
    pagerduty.heal()  # PagerDuty is back
    for _ in range(10):
        clock.advance(30)
        rig.deliver()
    assert pagerduty.pages == 5 and len(pagerduty.accepted) == 5
    assert len(slack.accepted) == 5 and len(slack.received) == 5
    assert {row.status for row in rig.rows()} == {NotificationStatus.SENT}


def test_a_crash_between_sending_and_recording_sends_again_under_the_same_keys(rig, pagerduty, clock):
    alert, incident = finding()
    rig.raise_((alert, incident))
    # the process takes the page and sends it, then dies before recording that it did
    (row,) = rig.store.claim_due(clock(), rig.dispatcher.lease_seconds, incident_id=None, skip_receivers=["slack"])
    rig.receivers[row.receiver].send(row.page, row.notification_id)
    rig.restart()
    rig.deliver()
    assert pagerduty.events("trigger")[0]["dedup_key"] == incident.incident_id
    assert len(pagerduty.received) == 1  # its lease still holds: not yet sent again
    clock.advance(rig.dispatcher.lease_seconds + 1)
    rig.deliver()
    assert len(pagerduty.accepted) == 2 and pagerduty.pages == 1  # at least once; collapsed by the key
    assert rig.rows(receiver="pagerduty")[0].status is NotificationStatus.SENT


@pytest.mark.parametrize("written", [False, True], ids=["before-the-receiver-took-it", "after"])
def test_a_delivery_stopped_by_ctrl_c_gives_its_page_back_and_the_file_gets_it_once(
    tmp_path, clock, monkeypatch, written
):
    rig = Rig(tmp_path, clock, receivers=["file"])
    try:
        rig.raise_(finding())
        file = rig.receivers["file"]
        real = file.send

        def interrupted(page, delivery_id):
            if written:
                real(page, delivery_id)
            raise KeyboardInterrupt  # Ctrl-C lands here

        monkeypatch.setattr(file, "send", interrupted)
        with pytest.raises(KeyboardInterrupt):
            rig.deliver()
        (row,) = rig.rows()
        # given back: due at once, not held by a lease no live process will settle
        assert row.status is NotificationStatus.PENDING and row.attempts == 0 and row.leased_until is None
        rig.restart()  # the next process delivering (pages --deliver, the replay again), at the same moment
        assert rig.deliver().sent == 1
        lines = (tmp_path / "data" / rig.settings.notify.file).read_bytes().splitlines()
        assert [json.loads(line)["page"]["delivery_id"] for line in lines] == [row.notification_id]
    finally:
        rig.close()


def test_a_page_recorded_as_sent_just_before_ctrl_c_stays_sent(tmp_path, clock, monkeypatch):
    rig = Rig(tmp_path, clock, receivers=["file"])
    try:
        rig.raise_(finding())
        real = rig.store.settle

        def settle_then_interrupted(notification_id, settlement):
            real(notification_id, settlement)
            raise KeyboardInterrupt

        monkeypatch.setattr(rig.store, "settle", settle_then_interrupted)
        with pytest.raises(KeyboardInterrupt):
            rig.deliver()
        (row,) = rig.rows()
        assert row.status is NotificationStatus.SENT  # not given back to be sent again
    finally:
        rig.close()


class _ClosedPipe(io.StringIO):
    """A console's stdout whose reader went away (``accesswatch pages --deliver | head -1``)."""

    def flush(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_console_whose_reader_went_gives_its_pages_back_and_the_other_receivers_go_on(tmp_path, clock, capsys):
    """Tester: ``pages --deliver | head -1``: the console's page failed with BrokenPipe, its receiver rested, the
    drain waited for its retries, and a later process sent it again as a retry.  The console did not deliver it:
    the page is given back (no attempt, no rest), and the file receiver's pages are delivered all the same."""
    rig = Rig(tmp_path, clock, receivers=["console", "file"])
    try:
        rig.raise_(*(finding(f"emp-{n:04d}") for n in range(3)))
        rig.receivers["console"].stream = _ClosedPipe()
        sleeps: list[float] = []
        report = rig.dispatcher.drain(60, sleep=sleeps.append)
        assert report.gone == {"console"} and report.sent_to == {"file": 3} and report.retrying == 0
        assert sleeps == []  # nothing to wait for: the console's pages are for another process
        console = rig.rows(receiver="console")
        assert len(console) == 3
        assert all(row.status is NotificationStatus.PENDING and row.attempts == 0 for row in console)
        assert all(row.last_error is None and row.leased_until is None for row in console)
        assert rig.store.receiver_rests() == {}
        rig.restart()  # the next process, its stdout a terminal
        capsys.readouterr()
        again = rig.deliver()
        assert again.sent_to == {"console": 3} and again.gone == set()
        assert capsys.readouterr().out.count("emp-00") >= 3
        lines = (tmp_path / "data" / rig.settings.notify.file).read_bytes().splitlines()
        assert len(lines) == 3  # the file's pages sent once
    finally:
        rig.close()


# -- grouping: one page per incident ------------------------------------------------------------------------
def test_later_findings_update_the_incident_instead_of_paging_again(rig, pagerduty, slack, clock):
    alert, incident = finding(severity=Severity.HIGH)
    rig.raise_((alert, incident))
    rig.deliver()
    same = incident.model_copy(update={"revision": 2, "alert_ids": [*incident.alert_ids, "aw-2"]})
    rig.raise_((alert, same))  # grew, not more severe: nothing to tell
    assert rig.deliver().sent == 0
    worse = same.model_copy(update={"severity": Severity.CRITICAL, "revision": 3})
    rig.raise_((alert.model_copy(update={"severity": Severity.CRITICAL}), worse))
    rig.deliver()
    assert [e["event_action"] for e in pagerduty.accepted] == ["trigger", "trigger"]
    assert pagerduty.pages == 1 and pagerduty.accepted[1]["payload"]["severity"] == "critical"
    update = slack.accepted[1]["blocks"][0]["text"]["text"]
    assert "Now CRITICAL (was HIGH)" in update
    kinds = [row.kind for row in rig.rows(receiver="slack")]
    assert kinds == [PageKind.TRIGGER, PageKind.UPDATE]


def test_a_severity_rise_into_another_route_triggers_there(tmp_path, clock, pagerduty, slack):
    notify = both(pagerduty, slack)
    notify["routes"] = [
        {"name": "page on-call", "receivers": ["pagerduty"], "min_severity": "critical", "continue": True},
        {"name": "tell the channel", "receivers": ["slack"]},
    ]
    rig = Rig(tmp_path, clock, **notify)
    alert, incident = finding(severity=Severity.HIGH)
    rig.raise_((alert, incident))
    rig.deliver()
    assert pagerduty.accepted == [] and len(slack.accepted) == 1
    critical = incident.model_copy(update={"severity": Severity.CRITICAL})
    rig.raise_((alert.model_copy(update={"severity": Severity.CRITICAL}), critical))
    rig.deliver()
    assert pagerduty.pages == 1
    assert [(row.receiver, row.kind) for row in rig.rows()] == [
        ("slack", PageKind.TRIGGER),
        ("pagerduty", PageKind.TRIGGER),
        ("slack", PageKind.UPDATE),
    ]
    rig.close()


# -- escalation, acknowledge, resolve ---------------------------------------------------------------------------------
def escalating(pd: FakeReceiver, sl: FakeReceiver) -> dict:
    notify = both(pd, sl)
    notify["routes"] = [
        {"name": "soc", "receivers": ["slack"], "escalate": [{"after": "15m", "receivers": ["pagerduty"]}]}
    ]
    return notify


def test_an_unacknowledged_page_escalates_to_the_next_receiver_after_the_timeout(tmp_path, clock, pagerduty, slack):
    rig = Rig(tmp_path, clock, **escalating(pagerduty, slack))
    alert, incident = finding()
    rig.raise_((alert, incident))
    rig.deliver()
    assert len(slack.accepted) == 1 and pagerduty.received == []
    clock.advance(14 * 60 + 59)
    rig.deliver()
    assert pagerduty.received == []
    clock.advance(1)
    rig.deliver()
    (event,) = pagerduty.accepted
    assert event["dedup_key"] == incident.incident_id and event["payload"]["summary"].startswith("ESCALATED")
    assert pagerduty.pages == 1
    (row,) = rig.rows(receiver="pagerduty")
    assert row.page.escalation_level == 1 and row.status is NotificationStatus.SENT
    rig.close()


def test_a_receiver_paged_by_escalation_hears_the_resolution_too(tmp_path, clock, pagerduty, slack):
    rig = Rig(tmp_path, clock, **escalating(pagerduty, slack))
    alert, incident = finding()
    rig.raise_((alert, incident))
    rig.deliver()
    clock.advance(16 * 60)
    rig.deliver()
    clock.advance(60)
    _, planned = rig.act(incident.incident_id, TriageActionKind.RESOLVE)
    rig.deliver()
    assert sorted(row.receiver for row in planned) == ["pagerduty", "slack"]
    assert [e["event_action"] for e in pagerduty.accepted] == ["trigger", "resolve"]
    assert pagerduty.pagerduty[incident.incident_id].status == "resolved"
    rig.close()


def test_an_escalation_survives_a_restart(tmp_path, clock, pagerduty, slack):
    rig = Rig(tmp_path, clock, **escalating(pagerduty, slack))
    rig.raise_(finding())
    rig.deliver()
    rig.restart()
    clock.advance(16 * 60)
    rig.deliver()
    assert pagerduty.pages == 1
    rig.close()


def test_acknowledging_in_time_cancels_the_escalation(tmp_path, clock, pagerduty, slack):
    rig = Rig(tmp_path, clock, **escalating(pagerduty, slack))
    alert, incident = finding()
    rig.raise_((alert, incident))
    rig.deliver()
    clock.advance(5 * 60)
    rig.act(incident.incident_id, TriageActionKind.ACKNOWLEDGE)
    rig.deliver()
    clock.advance(60 * 60)
    rig.deliver()
    assert pagerduty.received == []
    assert "Acknowledged by alice" in slack.accepted[-1]["blocks"][0]["text"]["text"]
    (escalation,) = rig.rows(receiver="pagerduty")
    assert escalation.status is NotificationStatus.CANCELLED
    assert "acknowledged by alice" in escalation.last_error
    rig.close()


def test_an_incident_acknowledged_elsewhere_is_not_escalated(tmp_path, clock, pagerduty, slack):
    rig = Rig(tmp_path, clock, **escalating(pagerduty, slack))
    alert, incident = finding()
    rig.raise_((alert, incident))
    rig.deliver()
    # the dashboard wrote the action straight to the store, without the pager
    rig.store.record_action(
        TriageAction(incident_id=incident.incident_id, kind=TriageActionKind.ACKNOWLEDGE, by="bob", at=clock())
    )
    clock.advance(20 * 60)
    assert rig.deliver().cancelled == 1
    assert pagerduty.received == []
    rig.close()


def test_resolve_reaches_pagerduty(rig, pagerduty, slack, clock):
    alert, incident = finding()
    rig.raise_((alert, incident))
    rig.deliver()
    clock.advance(600)
    _, planned = rig.act(incident.incident_id, TriageActionKind.RESOLVE)
    assert {row.receiver for row in planned} == {"pagerduty", "slack"}
    rig.deliver()
    assert [e["event_action"] for e in pagerduty.accepted] == ["trigger", "resolve"]
    assert pagerduty.pagerduty[incident.incident_id].status == "resolved"
    assert "Closed as resolved by alice" in slack.accepted[-1]["blocks"][0]["text"]["text"]


def test_acknowledge_reaches_pagerduty_and_a_false_positive_resolves_it(rig, pagerduty, clock):
    alert, incident = finding()
    rig.raise_((alert, incident))
    rig.deliver()
    rig.act(incident.incident_id, TriageActionKind.ACKNOWLEDGE)
    rig.deliver()
    assert pagerduty.pagerduty[incident.incident_id].status == "acknowledged"
    clock.advance(60)
    rig.act(incident.incident_id, TriageActionKind.FALSE_POSITIVE)
    rig.deliver()
    assert [e["event_action"] for e in pagerduty.accepted] == ["trigger", "acknowledge", "resolve"]


def test_a_resolve_never_overtakes_the_trigger_it_resolves(rig, pagerduty, clock):
    pagerduty.fail_next(3, 502)
    alert, incident = finding()
    rig.raise_((alert, incident))
    rig.deliver()
    rig.act(incident.incident_id, TriageActionKind.RESOLVE)
    for _ in range(12):
        clock.advance(20)
        rig.deliver()
    assert [e["event_action"] for e in pagerduty.accepted] == ["trigger", "resolve"]
    assert pagerduty.pagerduty[incident.incident_id].status == "resolved"


def test_notes_and_assignments_tell_no_receiver(rig, pagerduty):
    alert, incident = finding()
    rig.raise_((alert, incident))
    rig.deliver()
    _, planned = rig.act(incident.incident_id, TriageActionKind.NOTE)
    assert planned == [] and rig.deliver().sent == 0


def test_an_unknown_incident_is_a_key_error(rig):
    with pytest.raises(KeyError):
        rig.act("inc-nope", TriageActionKind.RESOLVE)


# -- the triage state machine: closed stays closed, a repeat tells nobody ---------------------------------------
def _acted(rig: Rig, incident_id: str) -> list[TriageActionKind]:
    return [action.kind for action in rig.store.actions(incident_id)]


def test_acknowledging_a_resolved_incident_is_refused_and_pages_nobody(rig, pagerduty, clock):
    alert, incident = finding()
    rig.raise_((alert, incident))
    rig.act(incident.incident_id, TriageActionKind.RESOLVE)
    rig.deliver()
    clock.advance(60)
    with pytest.raises(TransitionRefused, match="is closed as resolved: reopen it before you acknowledge it"):
        rig.act(incident.incident_id, TriageActionKind.ACKNOWLEDGE)
    assert rig.deliver().sent == 0
    assert [e["event_action"] for e in pagerduty.accepted] == ["trigger", "resolve"]
    assert rig.store.get_incident(incident.incident_id).status is AlertStatus.RESOLVED
    assert {a.status for a in rig.store.get_alerts(incident.alert_ids)} == {AlertStatus.RESOLVED}
    assert _acted(rig, incident.incident_id) == [TriageActionKind.RESOLVE]
    # reopened first, it may be acknowledged again
    rig.act(incident.incident_id, TriageActionKind.REOPEN)
    updated, _ = rig.act(incident.incident_id, TriageActionKind.ACKNOWLEDGE)
    assert updated.status is AlertStatus.ACKNOWLEDGED


def test_resolving_a_false_positive_keeps_the_label_and_sends_no_second_resolve(rig, pagerduty, slack, clock):
    alert, incident = finding()
    rig.raise_((alert, incident))
    rig.act(incident.incident_id, TriageActionKind.FALSE_POSITIVE)
    rig.deliver()
    clock.advance(60)
    with pytest.raises(TransitionRefused, match="is closed as a false positive: reopen it before you resolve it"):
        rig.act(incident.incident_id, TriageActionKind.RESOLVE)
    assert rig.deliver().sent == 0
    assert rig.store.get_incident(incident.incident_id).status is AlertStatus.FALSE_POSITIVE
    assert [e["event_action"] for e in pagerduty.accepted] == ["trigger", "resolve"]
    assert len(slack.accepted) == 2


def test_a_resolved_incident_reclassified_as_a_false_positive_tells_nobody_again(rig, pagerduty, clock):
    alert, incident = finding()
    rig.raise_((alert, incident))
    rig.act(incident.incident_id, TriageActionKind.RESOLVE)
    rig.deliver()
    clock.advance(60)
    updated, planned = rig.act(incident.incident_id, TriageActionKind.FALSE_POSITIVE)
    assert updated.status is AlertStatus.FALSE_POSITIVE and planned == []
    assert rig.deliver().sent == 0 and [e["event_action"] for e in pagerduty.accepted] == ["trigger", "resolve"]


@pytest.mark.parametrize("kind", [TriageActionKind.ACKNOWLEDGE, TriageActionKind.RESOLVE])
def test_repeating_an_action_is_a_no_op_that_tells_nobody_again(rig, pagerduty, clock, kind):
    alert, incident = finding()
    rig.raise_((alert, incident))
    rig.act(incident.incident_id, kind)
    rig.deliver()
    sent = len(pagerduty.accepted)
    clock.advance(60)
    again, planned = rig.act(incident.incident_id, kind, by="bob")
    assert planned == [] and rig.deliver().sent == 0 and len(pagerduty.accepted) == sent
    assert again.status is rig.store.get_incident(incident.incident_id).status
    assert _acted(rig, incident.incident_id) == [kind]  # nothing recorded for the repeat


def test_a_repeat_keeps_its_note_as_a_note(rig, clock):
    alert, incident = finding()
    rig.raise_((alert, incident))
    rig.act(incident.incident_id, TriageActionKind.ACKNOWLEDGE)
    action = TriageAction(
        incident_id=incident.incident_id, kind=TriageActionKind.ACKNOWLEDGE, by="bob", at=clock(), note="called her"
    )
    _, planned = rig.pager.record_action(action)
    assert planned == []
    assert _acted(rig, incident.incident_id) == [TriageActionKind.ACKNOWLEDGE, TriageActionKind.NOTE]
    assert rig.store.actions(incident.incident_id)[-1].note == "called her"


def test_a_reopen_tells_the_receivers_that_were_told_it_was_closed(rig, pagerduty, slack, clock):
    """Else the acknowledgement after it reaches them unexplained: "Closed as resolved", then "Acknowledged"."""
    alert, incident = finding()
    rig.raise_((alert, incident))
    rig.act(incident.incident_id, TriageActionKind.RESOLVE, by="bob")
    rig.deliver()
    clock.advance(60)
    reopened, planned = rig.act(incident.incident_id, TriageActionKind.REOPEN, by="erin")
    assert reopened.status is AlertStatus.OPEN
    assert {(row.receiver, row.kind) for row in planned} == {("pagerduty", PageKind.REOPEN), ("slack", PageKind.REOPEN)}
    rig.deliver()
    assert pagerduty.pagerduty[incident.incident_id].status == "triggered"  # open there again
    clock.advance(60)
    rig.act(incident.incident_id, TriageActionKind.ACKNOWLEDGE, by="erin")
    rig.deliver()
    assert [e["event_action"] for e in pagerduty.accepted] == ["trigger", "resolve", "trigger", "acknowledge"]
    assert pagerduty.pagerduty[incident.incident_id].status == "acknowledged"
    headers = [message["blocks"][0]["text"]["text"] for message in slack.accepted]
    assert [text.split(" ", 1)[1].split(":")[0] for text in headers] == [
        "HIGH",
        "Closed as resolved by bob, HIGH",
        "Reopened by erin, HIGH",
        "Acknowledged by erin, HIGH",
    ]


_SILENCE = {"name": "maintenance", "ends_at": "2026-12-01T00:00:00+00:00"}


def test_a_reopen_tells_nobody_who_was_never_told_it_was_closed(tmp_path, clock, pagerduty, slack):
    """Closed before anyone was paged (a silence held the page back): the reopen has nobody to tell."""
    rig = Rig(tmp_path, clock, **both(pagerduty, slack, silences=[_SILENCE]))
    try:
        alert, incident = finding()
        rig.raise_((alert, incident))
        rig.act(incident.incident_id, TriageActionKind.RESOLVE)
        _, planned = rig.act(incident.incident_id, TriageActionKind.REOPEN)
        assert planned == [] and rig.deliver().sent == 0
    finally:
        rig.close()


def test_every_page_about_an_incident_quotes_its_other_findings(rig, slack, clock):
    alert, incident = episode()
    rig.raise_((alert, incident))
    rig.act(incident.incident_id, TriageActionKind.ACKNOWLEDGE)
    rig.deliver()
    assert len(slack.accepted) == 2
    for message in slack.accepted:
        text = str(message)
        assert "35,575 records" in text and "198.51.100.77" in text and "silent for 16 days" in text


# -- failed pages sent again, as the incident is now --------------------------------------------------------------
@pytest.fixture
def hooked(tmp_path, clock, pagerduty):
    """PagerDuty and a signed webhook, both paged for every incident."""
    with FakeReceiver("webhook", secret=WEBHOOK_SECRET) as hook:
        notify = {
            "routes": [{"name": "soc", "receivers": ["pagerduty", "hook"]}],
            "settings": {
                "pagerduty": {"routing_key": ROUTING_KEY, "url": pagerduty.url},
                "hook": {"kind": "webhook", "url": hook.url, "secret": WEBHOOK_SECRET.decode()},
            },
        }
        rig = Rig(tmp_path, clock, **notify)
        yield rig, hook
        rig.close()


def _trigger_fails_for_good(rig: Rig, clock: Clock, *receivers: FakeReceiver):
    """Both receivers answer 500 until give_up_after (1 h) has passed: the trigger fails for good."""
    for receiver in receivers:
        receiver.fail_next(1000, 500)
    alert, incident = finding()
    rig.raise_((alert, incident))
    for _ in range(30):
        rig.deliver()
        clock.advance(300)
    assert {row.status for row in rig.rows()} == {NotificationStatus.FAILED}
    for receiver in receivers:
        receiver.heal()
    return incident


def test_a_failed_page_sent_again_after_an_acknowledgement_is_followed_by_it(hooked, pagerduty, clock):
    """Before, the retried trigger left PagerDuty's alert triggered (and escalating) for an acknowledged incident."""
    rig, hook = hooked
    incident = _trigger_fails_for_good(rig, clock, pagerduty, hook)
    _, planned = rig.act(incident.incident_id, TriageActionKind.ACKNOWLEDGE, by="carol")
    assert planned == []  # nobody was told of the incident, so nobody is told of the acknowledgement
    clock.advance(60)
    assert rig.pager.retry_failed() == (2, 0)
    rig.deliver()
    assert [e["event_action"] for e in pagerduty.accepted] == ["trigger", "acknowledge"]
    assert pagerduty.pagerduty[incident.incident_id].status == "acknowledged"
    # the trigger says the incident as it is now, the acknowledgement behind it what carol did
    assert [(r["page"]["kind"], r["page"]["incident_status"]) for r in hook.accepted] == [
        ("trigger", "acknowledged"),
        ("acknowledge", "acknowledged"),
    ]
    assert hook.accepted[0]["page"]["refreshed"]["acknowledged"]["by"] == "carol"
    assert hook.accepted[1]["page"]["action"]["by"] == "carol"
    assert {row.status for row in rig.rows()} == {NotificationStatus.SENT}
    # sent again later, nothing more: the acknowledgement is planned once
    assert rig.pager.retry_failed() == (0, 0) and rig.deliver().sent == 0


def test_a_failed_trigger_sent_again_after_its_acknowledgement_was_sent_is_acknowledged_again(hooked, pagerduty, clock):
    """Pending when acknowledged, the trigger then failed for good while the acknowledgement got through."""
    rig, hook = hooked
    pagerduty.fail_next(1000, 500)
    alert, incident = finding()
    rig.raise_((alert, incident))
    rig.deliver()  # the webhook takes the trigger; PagerDuty rests
    clock.advance(3000)  # acknowledged late enough that its own give_up_after has not passed when PagerDuty is back
    _, planned = rig.act(incident.incident_id, TriageActionKind.ACKNOWLEDGE, by="carol")
    assert {row.receiver for row in planned} == {"pagerduty", "hook"}
    while rig.rows(receiver="pagerduty")[0].status is NotificationStatus.PENDING:
        clock.advance(300)
        rig.deliver()
    pagerduty.heal()
    clock.advance(300)
    rig.deliver()
    trigger, acknowledge = rig.rows(receiver="pagerduty")
    assert trigger.status is NotificationStatus.FAILED and acknowledge.status is NotificationStatus.SENT
    assert rig.pager.retry_failed() == (1, 0)
    rig.deliver()
    assert [e["event_action"] for e in pagerduty.accepted] == ["acknowledge", "trigger", "acknowledge"]
    assert pagerduty.pagerduty[incident.incident_id].status == "acknowledged"
    assert [r["page"]["kind"] for r in hook.accepted] == ["trigger", "acknowledge"]  # told already: no repeat


@pytest.mark.parametrize(
    ("kind", "status"), [(TriageActionKind.RESOLVE, "resolved"), (TriageActionKind.FALSE_POSITIVE, "false positive")]
)
def test_a_failed_page_of_an_incident_closed_since_is_superseded_not_sent(hooked, pagerduty, clock, kind, status):
    """A trigger then its resolve would still page on-call staff, for an incident a colleague has closed."""
    rig, hook = hooked
    incident = _trigger_fails_for_good(rig, clock, pagerduty, hook)
    rig.act(incident.incident_id, kind, by="bob")
    assert rig.pager.retry_failed() == (0, 2)
    assert rig.deliver().sent == 0
    assert pagerduty.accepted == [] and hook.accepted == []
    for row in rig.rows():
        assert row.status is NotificationStatus.CANCELLED
        assert row.last_error.startswith(f"superseded: the incident is {status} now (bob, ")
        assert row.last_error.endswith("this trigger would contradict it")


def test_a_failed_acknowledgement_of_an_incident_closed_since_is_superseded(rig, pagerduty, clock):
    alert, incident = finding()
    rig.raise_((alert, incident))
    rig.deliver()
    pagerduty.fail_next(1, 400)  # refused: failed at once
    rig.act(incident.incident_id, TriageActionKind.ACKNOWLEDGE)
    rig.deliver()
    clock.advance(60)
    rig.act(incident.incident_id, TriageActionKind.RESOLVE)
    rig.deliver()
    assert rig.pager.retry_failed() == (0, 1)
    rig.deliver()
    assert [e["event_action"] for e in pagerduty.accepted] == ["trigger", "resolve"]
    acknowledge = rig.rows(receiver="pagerduty", kinds=[PageKind.ACKNOWLEDGE])[0]
    assert acknowledge.status is NotificationStatus.CANCELLED and "resolved now" in acknowledge.last_error


def test_a_failed_page_of_an_incident_still_open_is_sent_as_it_was(hooked, pagerduty, clock):
    rig, hook = hooked
    incident = _trigger_fails_for_good(rig, clock, pagerduty, hook)
    assert rig.pager.retry_failed() == (2, 0)
    rig.deliver()
    assert [e["event_action"] for e in pagerduty.accepted] == ["trigger"]
    assert pagerduty.pagerduty[incident.incident_id].status == "triggered"
    assert [r["page"]["kind"] for r in hook.accepted] == ["trigger"]


def test_the_console_quotes_the_first_finding_on_every_later_page(tmp_path, clock, capsys):
    """Before, an acknowledgement printed who acknowledged, then only the other detectors' lines."""
    rig = Rig(tmp_path, clock, receivers=["console"])
    try:
        alert, incident = episode()
        rig.raise_((alert, incident))
        rig.deliver()
        capsys.readouterr()
        for kind in (TriageActionKind.ACKNOWLEDGE, TriageActionKind.RESOLVE, TriageActionKind.REOPEN):
            clock.advance(60)
            rig.act(incident.incident_id, kind, by="alice")
            rig.deliver()
            first, quoted, also = capsys.readouterr().out.splitlines()[:3]
            assert " by alice, HIGH: service account svc-etl " in first and alert.summary not in first
            assert quoted.strip() == f"{alert.detector}: {alert.summary}"
            assert also.lstrip().startswith("also ")
    finally:
        rig.close()


# -- one headline for one incident ------------------------------------------------------------------------------
_FIRST = "Employee emp-0001 read 5,000 records, 50x their usual of 100."
_EGRESS = "Employee emp-0001 exported 4,000 records, 80x their usual."


def _grown(incident, alert, known):
    """The incident after ``alert`` joins it, and the alert carrying its id (as the pipeline hands them over)."""
    grown = attach(incident, alert, timedelta(hours=2), known)
    return alert.model_copy(update={"incident_id": grown.incident_id}), grown


def test_every_page_of_an_incident_on_every_receiver_quotes_the_finding_it_was_first_paged_with(
    tmp_path, clock, pagerduty, slack, capsys
):
    """Trigger, rise, acknowledge, resolve, reopen: one headline, so on-call staff know the incident again.

    Before, the acknowledgement, resolution and reopening quoted the incident's strongest alert, the later egress.
    The rise's first line leads with the finding that raised it, and the file and webhook bodies' alert record is
    the incident's strongest finding as it stood (tests below).
    """
    with FakeReceiver("webhook", secret=WEBHOOK_SECRET) as hook:
        notify = both(pagerduty, slack)
        notify["routes"] = [{"name": "soc", "receivers": ["pagerduty", "slack", "hook", "console", "file"]}]
        notify["settings"]["hook"] = {"kind": "webhook", "url": hook.url, "secret": WEBHOOK_SECRET.decode()}
        rig = Rig(tmp_path, clock, **notify)
        try:
            read = f.alert(summary=_FIRST, score=5.0)
            read, incident = _grown(None, read, {})
            rig.raise_((read, incident))
            clock.advance(600)
            exported = f.alert(detector="egress", severity=Severity.CRITICAL, score=9.0, summary=_EGRESS)
            exported, worse = _grown(incident, exported, {read.alert_id: read})
            rig.raise_((exported, worse))  # the rise: the egress is now the incident's strongest alert
            for kind in (TriageActionKind.ACKNOWLEDGE, TriageActionKind.RESOLVE, TriageActionKind.REOPEN):
                clock.advance(60)
                rig.act(incident.incident_id, kind)
            rig.deliver()
            rows = rig.rows()
            kinds = {row.kind for row in rows}
            assert kinds == set(PageKind) and {row.receiver for row in rows} == {
                "pagerduty",
                "slack",
                "hook",
                "console",
                "file",
            }
            assert {(row.page.alert.alert_id, row.page.alert.summary) for row in rows} == {(read.alert_id, _FIRST)}
            for row in rows:  # what was found since is in the page's other lines
                assert row.kind is PageKind.TRIGGER or row.page.findings == [f"egress, critical: {_EGRESS}"]
            # what each receiver shows
            triggers = [e for e in pagerduty.accepted if e["event_action"] == "trigger"]  # trigger, rise, reopen
            # the first line tells it (``notify.gist``), the details whole
            assert len(triggers) == 3 and all(
                _FIRST == e["payload"]["custom_details"]["page"]["first_paged"]["summary"] for e in triggers
            )
            assert [
                "employee emp-0001 read 5,000 records, 50x their usual" in e["payload"]["summary"] for e in triggers
            ] == [True, False, True]  # the rise leads with the egress that raised it
            assert all(_FIRST in message["blocks"][1]["text"]["text"] for message in slack.accepted)
            assert len(slack.accepted) == 5
            assert [record["page"]["first_paged"]["summary"] for record in hook.accepted] == [_FIRST] * 5
            written = (tmp_path / "data" / rig.settings.notify.file).read_text().splitlines()
            assert [json.loads(line)["page"]["first_paged"]["summary"] for line in written] == [_FIRST] * 5
            printed = capsys.readouterr().out
            headlines = [line for line in printed.splitlines() if line.startswith("[")]
            assert len(headlines) == 5 and all(line.endswith(", Mon 02 Nov 01:00-02:00 UTC") for line in headlines)
            assert "also egress, critical" in printed
        finally:
            rig.close()


def test_the_file_and_webhook_bodies_say_the_incident_as_it_stands_and_a_rise_leads_with_what_raised_it(
    tmp_path, clock, pagerduty, slack
):
    """Tester T24 (30 days, seed 23): the file and webhook bodies kept their alert keys at the first page's
    finding: "Now CRITICAL (was HIGH)" carried ``"severity": "medium"``, a false-positive close ``"status": "open"``,
    and a SIEM filtering on them went wrong; the rise's first line told the first finding again, the ramp that
    raised it on line 4.  Now the alert record is the incident's strongest finding as it stood, with its status,
    the first-paged finding is ``page.first_paged``, and ``page.headline`` is the first line, which a rise leads
    with the finding that raised it."""
    with FakeReceiver("webhook", secret=WEBHOOK_SECRET) as hook:
        notify = both(pagerduty, slack)
        notify["routes"] = [{"name": "soc", "receivers": ["hook", "file"]}]
        notify["settings"]["hook"] = {"kind": "webhook", "url": hook.url, "secret": WEBHOOK_SECRET.decode()}
        rig = Rig(tmp_path, clock, **notify)
        try:
            read = f.alert(summary=_FIRST, severity=Severity.MEDIUM, score=5.0)
            read, incident = _grown(None, read, {})
            rig.raise_((read, incident))
            clock.advance(600)
            ramp = f.alert(
                detector="ramp",
                severity=Severity.CRITICAL,
                score=9.0,
                summary="Employee emp-0001 read more each working day for 5 days, 1,800 records on the last.",
                evidence={"days": 5, "value": 1800, "baseline": None},
            )
            ramp, worse = _grown(incident, ramp, {read.alert_id: read})
            rig.raise_((ramp, worse))
            clock.advance(60)
            rig.act(incident.incident_id, TriageActionKind.FALSE_POSITIVE)
            rig.deliver()
            written = (tmp_path / "data" / rig.settings.notify.file).read_text().splitlines()
            for bodies in ([json.loads(line) for line in written], hook.accepted):
                trigger, rise, close = bodies
                assert [body["page"]["kind"] for body in bodies] == ["trigger", "update", "resolve"]
                said = [(body["alert_id"], body["severity"], body["status"]) for body in bodies]
                assert said == [
                    (read.alert_id, "medium", "open"),
                    (ramp.alert_id, "critical", "open"),
                    (ramp.alert_id, "critical", "false_positive"),
                ]
                assert all(body["page"]["first_paged"]["alert_id"] == read.alert_id for body in bodies)
                assert all(body["page"]["first_paged"]["summary"] == _FIRST for body in bodies)
                assert trigger["page"]["headline"].startswith("MEDIUM: employee emp-0001 read 5,000 records")
                assert rise["page"]["headline"].startswith(
                    "Now CRITICAL (was MEDIUM): employee emp-0001 read more each working day for 5 days"
                )
                assert close["page"]["headline"].startswith("Closed as false positive by alice, CRITICAL: ")
                assert all(len(body["page"]["headline"]) <= FIRST_LINE_CHARS for body in bodies)
            stored = rig.store.get_alerts([ramp.alert_id])[0]
            assert (stored.status, stored.severity) == (AlertStatus.FALSE_POSITIVE, Severity.CRITICAL)
        finally:
            rig.close()


def test_a_rise_of_the_headline_s_own_detector_is_quoted_beside_the_headline(rig, slack, clock):
    read = f.alert(summary=_FIRST, score=5.0)
    read, incident = _grown(None, read, {})
    rig.raise_((read, incident))
    grown = read.model_copy(update={"severity": Severity.CRITICAL, "score": 9.0, "revision": 2, "summary": "more"})
    grown, worse = _grown(incident, grown, {read.alert_id: read})
    rig.raise_((grown, worse))
    rig.deliver()
    trigger, update = rig.rows(receiver="slack")
    assert (trigger.page.findings, trigger.page.alert.summary) == ([], _FIRST)
    assert (update.kind, update.page.alert.summary) == (PageKind.UPDATE, _FIRST)
    assert update.page.findings == ["bulk_read, critical: more"]
    assert "bulk_read, critical: more" in str(slack.accepted[1])


def test_an_acknowledgement_lists_the_headline_once_when_its_alert_grew_by_weaker_findings(rig, slack, clock):
    """Tester T24: the acknowledgement of an incident whose bulk_read alert had grown by a weaker finding since it
    paged listed bulk_read twice: the headline as first paged, and an also line of the same strongest finding with
    a longer tail.  A stronger finding since is a line of its own (above)."""
    read = f.alert(summary=_FIRST, score=5.0)
    read, incident = _grown(None, read, {})
    rig.raise_((read, incident))
    tail = f"{_FIRST[:-1]}; the strongest of 2 findings on Mon 02 Nov, 5,100 records read in their windows in all."
    grown, same = _grown(incident, read.model_copy(update={"revision": 2, "summary": tail}), {read.alert_id: read})
    rig.raise_((grown, same))
    clock.advance(60)
    rig.act(incident.incident_id, TriageActionKind.ACKNOWLEDGE, by="sam")
    rig.deliver()
    _, acknowledged = rig.rows(receiver="slack")
    assert acknowledged.kind is PageKind.ACKNOWLEDGE and acknowledged.page.alert.summary == _FIRST
    assert acknowledged.page.findings == [] and "Also found" not in str(slack.accepted[-1])


def test_a_page_sent_again_after_failing_says_the_incident_as_it_is_now(tmp_path, clock, pagerduty, slack):
    """Before, the retried trigger said "open, high" of an incident acknowledged and critical by then: Slack
    offered ``accesswatch ack``, the webhook stored "open", then "Now CRITICAL (was HIGH)" followed."""
    with FakeReceiver("webhook", secret=WEBHOOK_SECRET) as hook:
        notify = both(pagerduty, slack)
        notify["routes"][0]["receivers"].append("hook")
        notify["settings"]["hook"] = {"kind": "webhook", "url": hook.url, "secret": WEBHOOK_SECRET.decode()}
        rig = Rig(tmp_path, clock, **notify)
        for receiver in (pagerduty, slack, hook):
            receiver.fail_next(1, 500)
        alert, incident = finding(severity=Severity.HIGH)
        rig.raise_((alert, incident))
        rig.deliver()  # every receiver fails the trigger once
        worse = incident.model_copy(update={"severity": Severity.CRITICAL, "revision": 2, "risk_score": 90.0})
        rig.raise_((alert.model_copy(update={"severity": Severity.CRITICAL}), worse))  # a rise behind it
        rig.act(incident.incident_id, TriageActionKind.ACKNOWLEDGE, by="carol")
        clock.advance(60)
        rig.deliver()
        # PagerDuty: the same key and headline, at the severity of now, then acknowledged
        assert [e["event_action"] for e in pagerduty.accepted] == ["trigger", "acknowledge"]
        trigger = pagerduty.accepted[0]
        assert trigger["dedup_key"] == incident.incident_id and trigger["payload"]["severity"] == "critical"
        assert (
            trigger["payload"]["summary"]
            == "CRITICAL: employee emp-0001 read 5,000 records, Mon 02 Nov 01:00-02:00 UTC"
        )
        details = trigger["payload"]["custom_details"]["page"]
        assert (details["incident_status"], details["risk_score"]) == ("acknowledged", 90.0)
        assert pagerduty.pagerduty[incident.incident_id].status == "acknowledged"
        # Slack: says who took it and offers what is left to do; no "was HIGH" for a channel that never saw HIGH
        first = str(slack.accepted[0])
        assert "Sent again after failing, as the incident is now: acknowledged by carol, critical" in first
        assert "(planned as open, high)" in first and "accesswatch ack" not in first and "accesswatch resolve" in first
        assert len(slack.accepted) == 2 and "Acknowledged by carol" in str(slack.accepted[1])
        # the webhook: the same delivery id as the attempt that failed, the incident as it is, and what was planned
        (planned_trigger,) = rig.rows(receiver="hook", kinds=[PageKind.TRIGGER])
        body = hook.accepted[0]["page"]
        assert (body["kind"], body["delivery_id"]) == ("trigger", planned_trigger.notification_id)
        assert (body["incident_status"], body["incident_severity"]) == ("acknowledged", "critical")
        assert body["refreshed"]["planned_status"] == "open" and body["refreshed"]["planned_severity"] == "high"
        assert body["refreshed"]["acknowledged"]["by"] == "carol"
        assert [r["page"]["kind"] for r in hook.accepted] == ["trigger", "acknowledge"]
        # the outbox keeps what was sent; the rises it told already are superseded
        for receiver in ("pagerduty", "slack", "hook"):
            sent, rise, acknowledge = rig.rows(receiver=receiver)
            assert sent.page.refreshed is not None and sent.page.severity is Severity.CRITICAL
            assert sent.page.alert == alert  # the headline finding, as first paged
            assert rise.kind is PageKind.UPDATE and rise.status is NotificationStatus.CANCELLED
            assert rise.last_error == "superseded: the trigger sent again said critical already"
            assert acknowledge.status is NotificationStatus.SENT
        rig.close()


def test_a_page_sent_as_planned_is_not_marked_refreshed(rig, pagerduty, clock):
    pagerduty.fail_next(1, 500)
    rig.raise_(finding())
    rig.deliver()
    clock.advance(60)
    rig.deliver()  # nothing changed meanwhile: sent as planned
    (row,) = rig.rows(receiver="pagerduty")
    assert row.status is NotificationStatus.SENT and row.page.refreshed is None
    assert "refreshed" not in pagerduty.accepted[0]["payload"]["custom_details"]["page"]


# -- a receiver's rest, seen by every process ---------------------------------------------------------------------
def test_a_retry_after_one_process_was_given_holds_back_the_others(tmp_path, clock, pagerduty, slack):
    """Before, the rest lived in the process that was told: ``ack``, ``pages --deliver`` or ``--retry-failed``,
    run beside ``run``, sent inside Slack's Retry-After."""
    run = Rig(tmp_path, clock, **both(pagerduty, slack))
    command = Rig(tmp_path, clock, **both(pagerduty, slack))
    slack.fail_next(1, 429, retry_after="3600")
    run.raise_(finding("emp-0001"))
    run.deliver()
    run.raise_(finding("emp-0002"))  # due now, never tried
    command.deliver()
    assert len(slack.received) == 1 and len(pagerduty.accepted) == 2
    (rest,) = command.store.receiver_rests().values()
    assert (rest.receiver, rest.until, rest.asked_until) == ("slack", clock() + timedelta(seconds=3600), rest.until)
    command.dispatcher.retry_now()  # pages --deliver: the backoff ends, what Slack asked for stands
    command.deliver()
    assert len(slack.received) == 1
    clock.advance(3600)
    command.deliver()
    assert len(slack.accepted) == 2 and command.store.receiver_rests() == {}
    run.close()
    command.close()


def test_pages_deliver_ends_a_backoff_for_every_process(tmp_path, clock, pagerduty, slack):
    run = Rig(tmp_path, clock, **both(pagerduty, slack))
    command = Rig(tmp_path, clock, **both(pagerduty, slack))
    pagerduty.fail_next(1, 503)  # no Retry-After: a backoff of our own
    run.raise_(finding())
    run.deliver()
    assert command.store.receiver_rests()["pagerduty"].failures == 1
    command.dispatcher.retry_now()  # a person fixed the receiver
    assert command.store.receiver_rests() == {}
    run.deliver()  # the running process takes it at once too
    assert len(pagerduty.accepted) == 1
    run.close()
    command.close()
