"""Each receiver against a local server of its service, over real sockets.

The servers (``tests.fakes.paging_receivers``) check every request against
the service's documented format and refuse what does not match, so a test
that sees a page accepted has seen a valid one.
"""

from __future__ import annotations

import io
import json
import os
import re
from datetime import UTC, datetime, timedelta
from typing import TypeVar, get_args, get_origin

import orjson
import pytest
from pydantic import ValidationError

from configs.loader import load_settings
from models.alert import AlertStatus, Severity
from models.config import ConfigError
from models.incident import TriageAction, TriageActionKind
from models.page import MAX_FINDING_CHARS, MAX_FINDINGS, Page, PageKind, Refreshed, other_findings
from notify.base import FIRST_LINE_CHARS, DeliveryError, Notifier, headline, when
from notify.console import ConsoleNotifier
from notify.email_smtp import EmailSettings, compose
from notify.http import HttpNotifier
from notify.registry import RECEIVERS, build_receivers
from notify.webhook import verify_signature
from tests import factories as f
from tests.fakes.paging_receivers import CONTRACT_ALERT_KEYS, FakeReceiver, free_port
from tests.paging_factories import (
    MONTH_END,
    NOW,
    ROUTING_KEY,
    WEBHOOK_SECRET,
    Clock,
    documented_alert,
    episode,
    finding,
    incident_of,
    joined,
    settings_with,
    telling_page,
)

LINK = "https://accesswatch.example.com/?incident="


def receiver(tmp_path, name: str, **section) -> Notifier:
    settings = settings_with(tmp_path, receivers=[], settings={name: section}, dashboard_url="https://x")
    return build_receivers(settings)[name]


def a_page(kind: PageKind = PageKind.TRIGGER, severity: Severity = Severity.HIGH, **details) -> Page:
    alert, incident = finding(severity=severity, actor_organization="blue-sky-travel", actor_kind="partner")
    if kind in (PageKind.ACKNOWLEDGE, PageKind.RESOLVE):
        status = AlertStatus.ACKNOWLEDGED if kind is PageKind.ACKNOWLEDGE else AlertStatus.RESOLVED
        incident = incident.model_copy(update={"status": status})
        details.setdefault(
            "action",
            TriageAction(
                incident_id=incident.incident_id,
                kind=TriageActionKind(kind.value),
                by="alice",
                at=NOW,
                note="called the partner",
            ),
        )
    return Page(
        kind=kind,
        dedup_key=incident.incident_id,
        incident=incident,
        alert=alert,
        link=LINK + incident.incident_id,
        **details,
    )


# -- PagerDuty Events API v2 -----------------------------------------------------------------------
@pytest.fixture
def pagerduty(tmp_path):
    with FakeReceiver("pagerduty") as fake:
        yield fake, receiver(tmp_path, "pagerduty", routing_key=ROUTING_KEY, url=fake.url, timeout="15s")


def test_pagerduty_trigger_is_a_valid_event_keyed_by_the_incident(pagerduty):
    fake, notifier = pagerduty
    page = a_page(severity=Severity.CRITICAL)
    notifier.send(page, "ntf-1")
    assert fake.rejected == []
    (event,) = fake.accepted
    assert event["routing_key"] == ROUTING_KEY and event["event_action"] == "trigger"
    assert event["dedup_key"] == page.incident.incident_id
    payload = event["payload"]
    assert payload["severity"] == "critical" and payload["source"] == "accesswatch"
    # the notification a phone shows is the first line; the finding whole is in the details
    assert payload["summary"] == headline(page) and payload["summary"].startswith("CRITICAL: partner emp-0001")
    details = payload["custom_details"]
    assert details["summary"] == page.alert.summary
    assert all(isinstance(details[key], kind) for key, kind in CONTRACT_ALERT_KEYS.items())
    assert event["links"] == [{"href": page.link, "text": "Incident in accesswatch"}]


def test_pagerduty_severities_map_to_its_four(pagerduty):
    fake, notifier = pagerduty
    for severity in Severity:
        notifier.send(a_page(severity=severity), "ntf")
    assert [e["payload"]["severity"] for e in fake.accepted] == ["info", "warning", "error", "critical"]


def test_pagerduty_update_acknowledge_and_resolve_act_on_one_alert(pagerduty):
    fake, notifier = pagerduty
    trigger = a_page()
    key = trigger.dedup_key
    notifier.send(trigger, "ntf-1")
    notifier.send(trigger.model_copy(update={"kind": PageKind.UPDATE, "previous_severity": Severity.MEDIUM}), "n2")
    assert fake.pages == 1 and fake.pagerduty[key].status == "triggered"
    for kind in (PageKind.ACKNOWLEDGE, PageKind.RESOLVE):
        page = a_page(kind).model_copy(update={"dedup_key": key})
        notifier.send(page, f"ntf-{kind}")
    assert fake.rejected == []
    assert [e["event_action"] for e in fake.accepted] == ["trigger", "trigger", "acknowledge", "resolve"]
    assert set(fake.accepted[3]) == {"routing_key", "event_action", "dedup_key"}
    assert fake.pagerduty[key].status == "resolved" and fake.pages == 1


@pytest.mark.parametrize(
    ("status", "retryable", "retry_after"),
    [(400, False, None), (429, True, 30.0), (500, True, None), (502, True, None), (503, True, 2.0)],
)
def test_pagerduty_answers_decide_whether_to_retry(pagerduty, status, retryable, retry_after):
    fake, notifier = pagerduty
    fake.fail_next(1, status, retry_after=str(int(retry_after)) if retry_after else None)
    with pytest.raises(DeliveryError) as caught:
        notifier.send(a_page(), "ntf")
    assert caught.value.retryable is retryable and caught.value.retry_after == retry_after
    assert f"HTTP {status}" in str(caught.value)


def test_pagerduty_accepted_with_another_2xx_and_status_success_is_delivered(pagerduty):
    # a PagerDuty-compatible service or a proxy answering 200: the page was marked failed, and not retried
    fake, notifier = pagerduty
    fake.pagerduty_status = 200
    notifier.send(a_page(), "ntf")
    assert fake.pages == 1 and fake.rejected == []
    # ... but a 2xx that does not say success is not the Events API (a wrong URL): refused, not retried
    fake.fail_next(1, 200)
    with pytest.raises(DeliveryError, match="expected 202 and status success") as caught:
        notifier.send(a_page(), "ntf-2")
    assert caught.value.retryable is False


def test_an_invalid_event_is_not_retried(tmp_path):
    with FakeReceiver("pagerduty") as fake:
        # a routing key of the right length, but PagerDuty's answer to a malformed event is a 400
        notifier = receiver(tmp_path, "pagerduty", routing_key=ROUTING_KEY, url=fake.url)
        page = a_page()
        long_key = page.model_copy(update={"dedup_key": ""})  # empty: refused by the documented schema
        with pytest.raises(DeliveryError) as caught:
            notifier.send(long_key, "ntf")
        assert not caught.value.retryable and fake.rejected


def test_a_receiver_that_does_not_answer_in_time_is_retried(tmp_path):
    with FakeReceiver("pagerduty") as fake:
        notifier = receiver(tmp_path, "pagerduty", routing_key=ROUTING_KEY, url=fake.url, timeout="0.3s")
        fake.hang_next(1, seconds=10)
        with pytest.raises(DeliveryError) as caught:
            notifier.send(a_page(), "ntf")
        assert caught.value.retryable and "no answer" in str(caught.value)


def test_a_dropped_connection_and_a_refused_one_are_retried(tmp_path):
    with FakeReceiver("pagerduty") as fake:
        notifier = receiver(tmp_path, "pagerduty", routing_key=ROUTING_KEY, url=fake.url, timeout="15s")
        fake.drop_next(1)
        with pytest.raises(DeliveryError) as caught:
            notifier.send(a_page(), "ntf")
        assert caught.value.retryable
    nobody = receiver(tmp_path, "pagerduty", routing_key=ROUTING_KEY, url=f"http://127.0.0.1:{free_port()}/v2/enqueue")
    with pytest.raises(DeliveryError) as caught:
        nobody.send(a_page(), "ntf")
    assert caught.value.retryable and "cannot reach 127.0.0.1" in str(caught.value)


def test_pagerduty_settings_are_checked_and_the_key_never_shown(tmp_path):
    with pytest.raises(ConfigError) as caught:
        receiver(tmp_path, "pagerduty", routing_key="not-a-32-character-key-at-all")
    message = str(caught.value)
    assert "notify.settings.pagerduty.routing_key" in message and "not-a-32" not in message
    with pytest.raises(ConfigError, match=re.escape("notify.settings.pagerduty.url")):
        receiver(tmp_path, "pagerduty", routing_key=ROUTING_KEY, url="ftp://example.com")


# -- Alertmanager API v2 ------------------------------------------------------------------------------
@pytest.fixture
def alertmanager(tmp_path):
    with FakeReceiver("alertmanager") as fake:
        notifier = receiver(tmp_path, "alertmanager", url=fake.url, labels={"team": "soc"}, ends_after="2d")
        notifier.clock = Clock()
        yield fake, notifier


def test_alertmanager_gets_one_alert_per_incident_with_labels_to_route_on(alertmanager):
    fake, notifier = alertmanager
    page = a_page()
    notifier.send(page, "ntf")
    assert fake.rejected == []
    (alert,) = fake.firing(NOW)
    assert alert["labels"] == {
        "alertname": "AccesswatchIncident",
        "incident_id": page.incident.incident_id,
        "actor_id": page.incident.actor_id,
        "actor_kind": "partner",
        "organization": "blue-sky-travel",
        "severity": "high",
        "team": "soc",
    }
    assert alert["annotations"]["description"] == page.alert.summary
    assert alert["generatorURL"] == page.link
    assert fake.firing(NOW + timedelta(days=2, seconds=1)) == []  # ends_after: it does not fire forever


def test_alertmanager_a_page_sent_twice_is_one_alert(alertmanager):
    fake, notifier = alertmanager
    page = a_page()
    notifier.send(page, "ntf")
    notifier.send(page, "ntf")
    assert len(fake.accepted) == 2 and len(fake.alertmanager) == 1


def test_alertmanager_a_severity_rise_ends_the_old_label_set(alertmanager):
    fake, notifier = alertmanager
    page = a_page(severity=Severity.HIGH)
    notifier.send(page, "ntf-1")
    notifier.clock.advance(60)
    critical = page.incident.model_copy(update={"severity": Severity.CRITICAL})
    notifier.send(
        page.model_copy(update={"kind": PageKind.UPDATE, "incident": critical, "previous_severity": Severity.HIGH}),
        "ntf-2",
    )
    firing = fake.firing(notifier.clock() + timedelta(seconds=1))
    assert [a["labels"]["severity"] for a in firing] == ["critical"]


def test_alertmanager_a_trigger_sent_again_at_a_higher_severity_ends_the_planned_label_set(alertmanager):
    """An attempt that timed out may have fired the planned severity's alert: the page sent again ends it."""
    fake, notifier = alertmanager
    page = a_page(severity=Severity.HIGH)
    notifier.send(page, "ntf-1")  # the receiver took it, the answer was lost
    notifier.clock.advance(60)
    critical = page.incident.model_copy(update={"severity": Severity.CRITICAL})
    refreshed = Refreshed(at=notifier.clock(), planned_status=AlertStatus.OPEN, planned_severity=Severity.HIGH)
    notifier.send(page.model_copy(update={"incident": critical, "refreshed": refreshed}), "ntf-1")
    (firing,) = fake.firing(notifier.clock() + timedelta(seconds=1))
    assert firing["labels"]["severity"] == "critical"
    assert firing["annotations"]["refreshed"].startswith("Sent again after failing, as the incident is now: open")


def test_alertmanager_resolve_ends_the_alert_and_it_has_no_acknowledge(alertmanager):
    fake, notifier = alertmanager
    page = a_page()
    notifier.send(page, "ntf-1")
    notifier.clock.advance(600)
    resolved = a_page(PageKind.RESOLVE).model_copy(update={"incident": page.incident, "dedup_key": page.dedup_key})
    resolved = resolved.model_copy(
        update={"incident": page.incident.model_copy(update={"status": AlertStatus.RESOLVED})}
    )
    notifier.send(resolved, "ntf-2")
    assert fake.rejected == [] and fake.firing(notifier.clock() + timedelta(seconds=1)) == []
    assert PageKind.ACKNOWLEDGE not in notifier.handles


def test_alertmanager_label_names_are_checked(tmp_path):
    with pytest.raises(ConfigError, match=re.escape("notify.settings.alertmanager.labels")):
        receiver(tmp_path, "alertmanager", url="http://am:9093", labels={"bad-name": "x"})


# -- Slack ------------------------------------------------------------------------------------------------
@pytest.fixture
def slack(tmp_path):
    with FakeReceiver("slack") as fake:
        yield fake, receiver(tmp_path, "slack", url=fake.url)


def test_slack_message_says_severity_who_what_why_and_links_the_dashboard(slack):
    fake, notifier = slack
    page = a_page(severity=Severity.CRITICAL)
    notifier.send(page, "ntf")
    assert fake.rejected == []
    (message,) = fake.accepted
    text = json.dumps(message)
    header = message["blocks"][0]
    assert header["type"] == "header" and "CRITICAL" in header["text"]["text"]
    assert page.incident.actor_id in header["text"]["text"]
    assert page.alert.summary in text and "bulk_read" in text and "blue-sky-travel" in text
    (button,) = message["blocks"][-1]["elements"]
    assert button["url"] == page.link
    assert message["text"] == headline(page)  # the notification's text: the first line, the details are the blocks'


def test_slack_data_cannot_mention_or_format(slack):
    fake, notifier = slack
    page = a_page()
    sneaky = page.alert.model_copy(update={"summary": "<!channel> read <https://evil|this> & more"})
    notifier.send(page.model_copy(update={"alert": sneaky}), "ntf")
    text = json.dumps(fake.accepted[0])
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text
    assert "&lt;!channel&gt;" in fake.accepted[0]["text"]  # the first line quotes the summary: escaped too


def test_slack_long_texts_stay_within_block_kit_limits(slack):
    fake, notifier = slack
    page = a_page()
    long = page.alert.model_copy(update={"summary": "x" * 5000})
    incident = page.incident.model_copy(update={"actor_id": "a" * 300})
    notifier.send(page.model_copy(update={"alert": long, "incident": incident}), "ntf")
    assert fake.rejected == [] and len(fake.accepted) == 1


def test_slack_resolve_says_who_closed_it(slack):
    fake, notifier = slack
    notifier.send(a_page(PageKind.RESOLVE), "ntf")
    (message,) = fake.accepted
    assert "Closed as resolved by alice" in message["blocks"][0]["text"]["text"]
    context = [b for b in message["blocks"] if b["type"] == "context"]
    assert "alice" in context[0]["elements"][0]["text"] and "called the partner" in context[0]["elements"][0]["text"]


def test_slack_rate_limit_is_retried_after_what_it_asks(slack):
    fake, notifier = slack
    fake.fail_next(1, 429, retry_after="7")
    with pytest.raises(DeliveryError) as caught:
        notifier.send(a_page(), "ntf")
    assert caught.value.retryable and caught.value.retry_after == 7.0
    assert "/services/" not in str(caught.value)  # the webhook URL is the credential: never in an error


# -- generic webhook -----------------------------------------------------------------------------------------
@pytest.fixture
def webhook(tmp_path):
    with FakeReceiver("webhook", secret=WEBHOOK_SECRET) as fake:
        notifier = receiver(
            tmp_path, "webhook", url=fake.url, secret=WEBHOOK_SECRET.decode(), headers={"X-Tenant": "acme"}
        )
        yield fake, notifier


def test_webhook_posts_the_contract_alert_record_signed(webhook):
    fake, notifier = webhook
    page = a_page()
    notifier.send(page, "ntf-123")
    assert fake.rejected == []
    (record,) = fake.accepted
    assert {key: record[key] for key in CONTRACT_ALERT_KEYS} == {
        key: value for key, value in page.alert.to_record().items() if key in CONTRACT_ALERT_KEYS
    }
    assert record["page"]["kind"] == "trigger" and record["page"]["incident_id"] == page.incident.incident_id
    (request,) = fake.received
    assert request.headers["x-accesswatch-dedup-key"] == page.incident.incident_id
    assert request.headers["x-accesswatch-delivery"] == "ntf-123"
    assert request.headers["x-tenant"] == "acme"
    timestamp, signature = request.headers["x-accesswatch-timestamp"], request.headers["x-accesswatch-signature"]
    assert verify_signature(WEBHOOK_SECRET, timestamp, request.body, signature)
    assert not verify_signature(WEBHOOK_SECRET, timestamp, request.body + b" ", signature)
    assert not verify_signature(b"another-secret-entirely-000000", timestamp, request.body, signature)


def test_webhook_signed_with_the_wrong_secret_is_refused_for_good(tmp_path):
    with FakeReceiver("webhook", secret=WEBHOOK_SECRET) as fake:
        notifier = receiver(tmp_path, "webhook", url=fake.url, secret="a-different-secret-0123456789")
        with pytest.raises(DeliveryError) as caught:
            notifier.send(a_page(), "ntf")
        assert not caught.value.retryable and "HTTP 401" in str(caught.value)


def test_webhook_needs_a_real_secret(tmp_path):
    with pytest.raises(ConfigError, match=re.escape("notify.settings.webhook.secret")):
        receiver(tmp_path, "webhook", url="https://hooks.example.com/x", secret="short")


# -- console and file ---------------------------------------------------------------------------------------------
def test_file_receiver_makes_its_file_and_dir_owner_only_and_keeps_an_existing_files_mode(tmp_path):
    before = os.umask(0o022)
    try:
        notifier = build_receivers(settings_with(tmp_path, receivers=["file"]))["file"]
        notifier.send(a_page(), "ntf-1")
        pages = tmp_path / "data" / "pages.jsonl"
        assert (pages.parent.stat().st_mode & 0o777, pages.stat().st_mode & 0o777) == (0o700, 0o600)
        pages.chmod(0o640)  # the operator's choice
        notifier.send(a_page(), "ntf-2")
        assert pages.stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(before)


def test_file_receiver_appends_one_record_a_page(tmp_path):
    settings = settings_with(tmp_path, receivers=["file"])
    notifier = build_receivers(settings)["file"]
    notifier.send(a_page(), "ntf-1")
    notifier.send(a_page(PageKind.RESOLVE), "ntf-2")
    lines = [orjson.loads(line) for line in (tmp_path / "data" / "pages.jsonl").read_bytes().splitlines()]
    assert [line["page"]["kind"] for line in lines] == ["trigger", "resolve"]
    assert lines[1]["page"]["action"]["by"] == "alice" and lines[0]["page"]["delivery_id"] == "ntf-1"
    assert all(isinstance(lines[0][key], kind) for key, kind in CONTRACT_ALERT_KEYS.items())


def test_file_receiver_writes_a_delivery_id_once_while_its_line_is_in_the_file_s_tail(tmp_path):
    """A page given back by a process stopped after writing it (Ctrl-C) comes again under the same id."""
    from notify.jsonl_file import TAIL_BYTES

    notifier = build_receivers(settings_with(tmp_path, receivers=["file"]))["file"]
    pages = tmp_path / "data" / "pages.jsonl"
    notifier.send(a_page(), "ntf-1")
    notifier.send(a_page(PageKind.RESOLVE), "ntf-2")
    notifier.send(a_page(), "ntf-1")  # delivered again: already there
    notifier.send(a_page(), "ntf-")  # an id the first is a prefix of, and the reverse, are other pages
    notifier.send(a_page(), "ntf-10")
    ids = [orjson.loads(line)["page"]["delivery_id"] for line in pages.read_bytes().splitlines()]
    assert ids == ["ntf-1", "ntf-2", "ntf-", "ntf-10"]
    with pages.open("ab") as handle:  # a line cut short (a full disk) does not count as the page written
        handle.write(orjson.dumps({"page": {"delivery_id": "ntf-3"}})[:-2])
    notifier.send(a_page(), "ntf-3")
    assert pages.read_bytes().count(b'"delivery_id":"ntf-3"}}\n') == 1
    # past the tail (the at least once README states): written again
    while pages.stat().st_size < 2 * TAIL_BYTES:
        notifier.send(a_page(), f"ntf-other-{pages.stat().st_size}")
    notifier.send(a_page(), "ntf-1")
    assert pages.read_bytes().count(b'"delivery_id":"ntf-1"}') == 2


def test_console_receiver_prints_a_line_a_page_and_later_pages_quote_the_finding_under_it():
    out = io.StringIO()
    notifier = ConsoleNotifier(stream=out)
    triggered, acknowledged = a_page(severity=Severity.HIGH), a_page(PageKind.ACKNOWLEDGE)
    notifier.send(triggered, "ntf")
    notifier.send(acknowledged, "ntf")
    first, finding, look, second, quoted, note, again = out.getvalue().splitlines()
    assert first == "[HIGH    ]!!  partner emp-0001 (blue-sky-travel) read 5,000 records, Mon 02 Nov 01:00-02:00 UTC"
    # where the whole incident is, on every page, beside the dashboard's link (which the terminal never showed)
    assert look == " " * 13 + f"Look: accesswatch incident {triggered.incident.incident_id}"
    assert again == " " * 13 + f"Look: accesswatch incident {acknowledged.incident.incident_id}"
    assert second.startswith("[HIGH    ]!!  Acknowledged by alice, HIGH: partner emp-0001 (blue-sky-travel) read")
    assert quoted == finding == " " * 13 + f"bulk_read: {triggered.alert.summary}"
    assert note == " " * 13 + "Acknowledged by alice: called the partner"


def test_a_page_sent_again_as_the_incident_is_now_says_so_on_the_console_and_in_mail(tmp_path):
    """Before, the console and the mail showed the incident acknowledged with nothing saying who, or that the
    page was late (e-mail never hears of an acknowledgement otherwise)."""
    page = a_page(severity=Severity.HIGH)
    carol = TriageAction(incident_id=page.dedup_key, kind=TriageActionKind.ACKNOWLEDGE, by="carol", at=NOW)
    now = page.incident.model_copy(update={"status": AlertStatus.ACKNOWLEDGED, "severity": Severity.CRITICAL})
    refreshed = Refreshed(at=NOW, planned_status=AlertStatus.OPEN, planned_severity=Severity.HIGH, acknowledged=carol)
    late = page.model_copy(update={"incident": now, "refreshed": refreshed, "link": None})
    said = "Sent again after failing, as the incident is now: acknowledged by carol, critical (planned as open, high)"
    out = io.StringIO()
    ConsoleNotifier(stream=out).send(late, "ntf")
    assert " " * 13 + said in out.getvalue().splitlines()
    assert "accesswatch ack" not in out.getvalue()
    mail_settings = {"host": "mail.example.com", "to": ["soc@example.com"], "from": "aw@example.com", "timeout": 5}
    mail = compose(late, EmailSettings.model_validate(mail_settings), "ntf")
    assert said in mail.get_content()


def test_unknown_receivers_and_kinds_are_configuration_errors(tmp_path):
    with pytest.raises(ConfigError, match=re.escape("receiver 'pd-oncall'")):
        build_receivers(settings_with(tmp_path, receivers=["pd-oncall"]))
    with pytest.raises(ConfigError, match=re.escape("notify.settings.pd.kind = 'pagerdooty'")):
        build_receivers(settings_with(tmp_path, receivers=["pd"], settings={"pd": {"kind": "pagerdooty"}}))
    named = settings_with(
        tmp_path, receivers=["pd-soc"], settings={"pd-soc": {"kind": "pagerduty", "routing_key": ROUTING_KEY}}
    )
    assert build_receivers(named)["pd-soc"].kind == "pagerduty"


def test_unknown_receivers_are_refused_when_the_configuration_loads(tmp_path):
    """Not only when paging: a plain ``replay`` accepted them, so a broken config was found at the first page."""
    with pytest.raises(ConfigError) as caught:
        load_settings(env={"ACCESSWATCH_NOTIFY__RECEIVERS": '["console", "nosuch"]'})
    assert str(caught.value).startswith(
        "configuration error: notify.receivers = ['console', 'nosuch'] (from ACCESSWATCH_NOTIFY__RECEIVERS):"
        " expected receiver names that are kinds (alertmanager, console, email, file, pagerduty, slack, webhook)"
    )
    assert str(caught.value).endswith("receiver 'nosuch' has neither")
    config = tmp_path / "site.toml"
    config.write_text(
        '[[notify.routes]]\nreceivers = ["console"]\nescalate = [{ after = "15m", receivers = ["ghost"] }]\n'
    )
    expected = f"notify.routes.0.escalate.0.receivers = ['ghost'] (from {config})"
    with pytest.raises(ConfigError, match=re.escape(expected)):
        load_settings(config, env={})
    with pytest.raises(ConfigError, match=re.escape("notify.settings.soc.kind = (absent) (from ACCESSWATCH_NOTIFY")):
        load_settings(env={"ACCESSWATCH_NOTIFY__SETTINGS__SOC__URL": "https://hooks.example.com/x"})


def test_a_short_webhook_secret_is_refused_when_the_configuration_loads(tmp_path):
    config = tmp_path / "site.toml"
    config.write_text('[notify.settings.hook]\nkind = "webhook"\nurl = "https://hooks.example.com/x"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(config, env={"ACCESSWATCH_NOTIFY__SETTINGS__HOOK__SECRET": "short"})
    assert str(caught.value) == (
        "configuration error: notify.settings.hook.secret = '<secret>'"
        # characters of a string, not "items"; the secret's own length is not told
        " (from ACCESSWATCH_NOTIFY__SETTINGS__HOOK__SECRET): expected at least 16 characters"
    )


def test_each_receiver_validates_with_the_settings_it_is_typed_by():
    """A notifier names its settings twice: ``Notifier[X]`` for the type checker, ``Settings = X`` for validating
    its section (a ClassVar cannot name the type variable). The two must be the same class."""
    for kind, receiver in RECEIVERS.items():
        typed = [
            get_args(base)[0]
            for klass in receiver.__mro__
            for base in klass.__dict__.get("__orig_bases__", ())
            if get_origin(base) in (Notifier, HttpNotifier) and not isinstance(get_args(base)[0], TypeVar)
        ]
        assert typed[:1] == [receiver.Settings], kind


# -- what a page says: the incident's other findings, when, the next step ---------------------------------------
def test_slack_quotes_the_incidents_other_findings_and_labels_who_and_when(slack):
    fake, notifier = slack
    page = telling_page(link=LINK + "x")
    incident = page.incident.model_copy(update={"actor_role": "sales", "actor_department": "sales"})
    notifier.send(page.model_copy(update={"incident": incident}), "ntf")
    assert fake.rejected == []
    text = json.dumps(fake.accepted[0], ensure_ascii=False)
    # the headline finding, and what the other detectors found in the same episode, strongest first
    assert page.alert.summary in text
    also = next(b for b in fake.accepted[0]["blocks"] if b.get("text", {}).get("text", "").startswith("*Also found*"))
    lines = also["text"]["text"].splitlines()[1:]
    assert [line.split(",")[0] for line in lines] == ["• egress", "• new_access", "• dormant"]
    assert "35,575 records" in lines[0] and "198.51.100.77" in lines[1] and "silent for 16 days" in lines[2]
    assert "(service, role sales, department sales)" in text  # not "(service, sales, sales)"
    assert "*When*\\nMon 02 Nov 01:00-02:00 UTC" in text


def test_slack_says_who_acted_as_a_sentence(slack):
    fake, notifier = slack
    notifier.send(a_page(PageKind.ACKNOWLEDGE), "ntf")
    context, look = [b for b in fake.accepted[0]["blocks"] if b["type"] == "context"]
    assert context["elements"][0]["text"] == "Acknowledged by alice: called the partner"
    assert look["elements"][0]["text"].startswith("Look: `accesswatch incident ")


def test_without_a_dashboard_link_every_page_says_the_command_to_act(tmp_path):
    with FakeReceiver("slack") as fake:
        notifier = build_receivers(settings_with(tmp_path, receivers=[], settings={"slack": {"url": fake.url}}))
        page = telling_page()
        notifier["slack"].send(page, "ntf")
        notifier["slack"].send(a_page(PageKind.RESOLVE).model_copy(update={"link": None}), "ntf-2")
    trigger, resolve = (json.dumps(message) for message in fake.accepted)
    incident_id = page.incident.incident_id
    assert f"`accesswatch ack {incident_id}`" in trigger and f"`accesswatch resolve {incident_id}`" in trigger
    assert "accesswatch reopen" in resolve and "Open in accesswatch" not in trigger
    out = io.StringIO()
    ConsoleNotifier(stream=out).send(page, "ntf")
    assert out.getvalue().splitlines()[-1].strip() == (
        f"Act on it: accesswatch ack {incident_id} | accesswatch resolve {incident_id}"
    )


def test_webhook_and_file_bodies_carry_the_findings_as_a_list_and_the_commands(webhook, tmp_path):
    fake, notifier = webhook
    page = telling_page()
    notifier.send(page, "ntf")
    (record,) = fake.accepted
    assert record["page"]["findings"] == page.findings and len(page.findings) == 3
    incident_id = page.incident.incident_id
    assert record["page"]["commands"] == [f"accesswatch ack {incident_id}", f"accesswatch resolve {incident_id}"]
    file = build_receivers(settings_with(tmp_path, receivers=["file"]))["file"]
    file.send(page.model_copy(update={"link": LINK + incident_id}), "ntf")
    (line,) = (tmp_path / "data" / "pages.jsonl").read_bytes().splitlines()
    about = orjson.loads(line)["page"]
    assert about["findings"] == page.findings and "commands" not in about and about["link"] == LINK + incident_id


def test_an_escalation_says_how_long_it_went_unacknowledged(webhook):
    fake, notifier = webhook
    page = a_page(escalation_level=1, escalated_after=45.0)
    notifier.send(page, "ntf")
    assert fake.accepted[0]["page"]["unacknowledged_for"] == 45.0
    assert headline(page).startswith("ESCALATED, unacknowledged for 45 s, HIGH: ")  # not "for 0 min"
    assert headline(a_page(escalation_level=1, escalated_after=900.0)).startswith(
        "ESCALATED, unacknowledged for 15 min"
    )


def test_console_quotes_the_findings_under_its_line_in_the_organisations_clock():
    out = io.StringIO()
    page = telling_page(link=LINK + "x", zone="Asia/Shanghai")
    ConsoleNotifier(stream=out).send(page, "ntf")
    first, quoted, *also = out.getvalue().splitlines()
    assert first == (
        "[HIGH    ]!!  service account svc-etl read 54,370 records with bank account data,"
        " Mon 02 Nov 09:00-10:00 Asia/Shanghai"
    )
    assert quoted.strip() == f"sensitive_access: {page.alert.summary}"
    *also, look = also
    assert [line.strip() for line in also] == [f"also {finding}" for finding in page.findings]
    assert look.strip() == f"Look: accesswatch incident {page.incident.incident_id}"


def test_the_console_says_when_as_every_receiver_does_the_incidents_span_beside_a_stale_finding():
    """Tester T17: a rise to critical led with the first finding's day, 8 days before the rise, and the console
    alone never showed the incident's span (README: "the incident's span beside it when that is wider")."""
    page = telling_page(PageKind.UPDATE, previous_severity=Severity.MEDIUM, link=LINK + "x")
    grown = page.incident.model_copy(update={"window_end": page.incident.window_end + timedelta(days=8)})
    page = page.model_copy(update={"incident": grown})
    out = io.StringIO()
    ConsoleNotifier(stream=out).send(page, "ntf")
    first, _, told_when = out.getvalue().splitlines()[:3]
    said = when(page)
    assert said == "Mon 02 Nov 01:00-02:00 UTC (incident: Mon 02 Nov 01:00 to Tue 10 Nov 02:00)"
    assert first.startswith("[HIGH    ]!!  Now HIGH (was MEDIUM): service account svc-etl ")
    assert first.endswith(", Mon 02 Nov 01:00-02:00 UTC") and told_when.strip() == f"When: {said}"
    mail_settings = {"host": "mail.example.com", "to": ["soc@example.com"], "from": "aw@example.com", "timeout": 5}
    assert f"When:       {said}\n" in compose(page, EmailSettings.model_validate(mail_settings), "ntf").get_content()


def test_the_headline_tells_the_span_its_summary_tells_not_the_merged_day():
    """A grown alert's window covers every finding merged in (a whole local day); its summary is the strongest's."""
    page = telling_page()
    spans = [
        ["2026-11-01T16:00:00.000Z", "2026-11-02T16:00:00.000Z", 3.0, "high"],
        ["2026-11-02T02:00:00.000Z", "2026-11-02T03:00:00.000Z", 4.0, "high"],
    ]
    alert = page.alert.model_copy(
        update={
            "window_start": page.alert.window_start - timedelta(hours=9),
            "window_end": page.alert.window_end + timedelta(hours=14),
            "evidence": {"spans": spans},
        }
    )
    assert when(page.model_copy(update={"alert": alert})) == "Mon 02 Nov 02:00-03:00 UTC (incident: 01:00-02:00)"


def test_pagerduty_and_alertmanager_carry_the_findings(pagerduty, alertmanager):
    page = telling_page(link=LINK + "x")
    pd_fake, pd = pagerduty
    pd.send(page, "ntf")
    assert pd_fake.accepted[0]["payload"]["custom_details"]["page"]["findings"] == page.findings
    am_fake, am = alertmanager
    am.send(page, "ntf")
    (alert,) = am_fake.firing(NOW)
    assert alert["annotations"]["findings"] == "\n".join(page.findings)


# -- a reopen ---------------------------------------------------------------------------------------------------------
def _reopened(page: Page) -> Page:
    action = TriageAction(
        incident_id=page.incident.incident_id, kind=TriageActionKind.REOPEN, by="erin", at=NOW, note="not over"
    )
    return page.model_copy(update={"kind": PageKind.REOPEN, "action": action})


def test_a_reopen_opens_the_pagerduty_alert_again(pagerduty):
    fake, notifier = pagerduty
    trigger = a_page()
    notifier.send(trigger, "ntf-1")
    notifier.send(a_page(PageKind.RESOLVE).model_copy(update={"dedup_key": trigger.dedup_key}), "ntf-2")
    notifier.send(_reopened(trigger), "ntf-3")
    assert fake.rejected == [] and [e["event_action"] for e in fake.accepted] == ["trigger", "resolve", "trigger"]
    assert fake.pagerduty[trigger.dedup_key].status == "triggered"
    assert fake.accepted[2]["payload"]["summary"].startswith("Reopened by erin, HIGH: partner emp-0001")


def test_a_reopen_fires_the_alertmanager_alert_again(alertmanager):
    fake, notifier = alertmanager
    page = a_page()
    notifier.send(page, "ntf-1")
    notifier.clock.advance(600)
    closed = page.incident.model_copy(update={"status": AlertStatus.RESOLVED})
    notifier.send(a_page(PageKind.RESOLVE).model_copy(update={"incident": closed}), "ntf-2")
    notifier.clock.advance(600)
    notifier.send(_reopened(page), "ntf-3")
    (alert,) = fake.firing(notifier.clock() + timedelta(seconds=1))
    assert alert["annotations"]["reopened_by"] == "erin" and PageKind.REOPEN in notifier.handles


def test_slack_and_console_say_who_reopened_it_and_why(slack):
    fake, notifier = slack
    page = _reopened(a_page())
    notifier.send(page, "ntf")
    blocks = fake.accepted[0]["blocks"]
    assert "Reopened by erin, HIGH: partner emp-0001" in blocks[0]["text"]["text"]
    context, _ = [b for b in blocks if b["type"] == "context"]  # then where to look
    assert context["elements"][0]["text"] == "Reopened by erin: not over"
    out = io.StringIO()
    ConsoleNotifier(stream=out).send(page, "ntf")
    first, _, note, *_ = out.getvalue().splitlines()
    assert "Reopened by erin, HIGH: partner emp-0001" in first and note.strip() == "Reopened by erin: not over"


def test_a_page_carries_at_most_a_bounded_number_of_findings():
    alert, incident = episode(detectors=1)
    evidence = {
        f"detector_{n:02d}": {"severity": "medium", "score": float(n), "summary": f"finding {n} " + "x" * 900}
        for n in range(12)
    }
    lines = other_findings(incident.model_copy(update={"evidence": evidence}), alert)
    assert len(lines) == MAX_FINDINGS and lines[0].startswith("detector_11, medium: finding 11")
    assert all(len(line) <= MAX_FINDING_CHARS for line in lines)
    assert lines[-1] == "and 5 more: detector_04, detector_03, detector_02, detector_01, detector_00"
    with pytest.raises(ValidationError):
        a_page(findings=["a line"] * (MAX_FINDINGS + 1))
    # a long summary is cut at a word's end, so no figure is shown halved
    words = {"bulk_read": {"severity": "high", "score": 9.0, "summary": "so read 1,234,567 records " * 40}}
    (line,) = other_findings(incident.model_copy(update={"evidence": words}), alert)
    whole = "bulk_read, high: " + words["bulk_read"]["summary"]
    assert len(line) <= MAX_FINDING_CHARS and line.endswith("…")
    assert whole.startswith(line[:-1] + " "), line[-30:]  # it ends where a word ends


def test_the_console_pager_shows_control_characters_in_the_logs_words_as_escapes():
    """Tester T9: an ESC sequence in an actor id repainted a critical page as a green "all clear" and its line
    breaks forged lines; escaped, each page is its own lines and shows the id as it is."""
    hostile = "emp-0077\x1b[2K\r\x1b[32m[LOW     ]    all clear\x1b[0m\nforged\u202egpj.exe\x85"
    alert, incident = finding(actor_id=hostile, severity=Severity.CRITICAL)
    out = io.StringIO()
    notifier = ConsoleNotifier(stream=out)
    notifier.send(Page(kind=PageKind.TRIGGER, dedup_key=incident.incident_id, incident=incident, alert=alert), "n")
    acted = TriageAction(
        incident_id=incident.incident_id,
        kind=TriageActionKind.ACKNOWLEDGE,
        by="al\x1b]8;;x\x07ice",
        at=NOW,
        note="a\nb",
    )
    acknowledged = incident.model_copy(update={"status": AlertStatus.ACKNOWLEDGED})
    notifier.send(Page(kind=PageKind.ACKNOWLEDGE, dedup_key="k", incident=acknowledged, alert=alert, action=acted), "n")
    lines = out.getvalue().split("\n")
    assert lines[-1] == "" and all(line.isprintable() for line in lines), repr(out.getvalue())
    # each page: its line, the finding, then where to look and the commands to act (no dashboard link)
    first, finding_line, _, _, second, quoted, *details = lines[:-1]
    note = next(line for line in details if line.strip().startswith("Acknowledged"))
    shown = r"emp-0077\x1b[2K\r\x1b[32m[LOW     ]    all clear\x1b[0m\nforged\u202egpj.exe\x85"
    assert first.startswith("[CRITICAL]!!!") and shown in first and shown in finding_line
    assert (
        r"Acknowledged by al\x1b]8;;x\x07ice" in second and note.strip() == r"Acknowledged by al\x1b]8;;x\x07ice: a\nb"
    )
    assert quoted == finding_line and quoted.strip().startswith("bulk_read")


def documented_page(**details) -> Page:
    alert, incident = joined(documented_alert())
    return Page(kind=PageKind.TRIGGER, dedup_key=incident.incident_id, incident=incident, alert=alert, **details)


def test_a_page_about_documented_work_names_the_purpose_in_its_first_line(slack, pagerduty):
    """Tester T17: the month-end close's page led with the isolation forest's sentence; only the also lines below
    it cited the purpose."""
    page = documented_page(link=LINK + "x")
    cited = f"(documented: {MONTH_END})"
    assert headline(page) == f"MEDIUM: employee emp-0017 {cited} had an unusual hour, Mon 02 Nov 01:00-02:00 UTC"
    out = io.StringIO()
    ConsoleNotifier(stream=out).send(page, "ntf")
    assert cited in out.getvalue().splitlines()[0]
    slack[1].send(page, "ntf")
    assert cited in slack[0].accepted[0]["blocks"][0]["text"]["text"]
    pagerduty[1].send(page, "ntf")
    assert pagerduty[0].accepted[0]["payload"]["summary"] == headline(page)
    mail_settings = {"host": "mail.example.com", "to": ["soc@example.com"], "from": "aw@example.com", "timeout": 5}
    assert cited in compose(page, EmailSettings.model_validate(mail_settings), "ntf")["Subject"]
    # beside an undocumented finding, the first line says the others are not documented
    off_hours = finding("emp-0017", Severity.HIGH, detector="off_hours")[0]
    mixed = page.incident.model_copy(update={"documented": False})
    assert f"(documented: {MONTH_END}; other findings are not) " in headline(
        page.model_copy(update={"incident": mixed})
    )
    assert "documented" not in headline(page.model_copy(update={"alert": off_hours}))


# -- the first line: a page read on a phone at night ------------------------------------------------------------
# two alerts of the seed-7 simulated month, as the detectors wrote them
_OFF_HOURS = (
    "Employee emp-0123 (customer_service) made 77 accesses to 77 records on Sat 17 Oct 01:00-02:00 Asia/Shanghai, an"
    " hour in which they never work, outside business hours; the strongest of 3 findings on Sat 17 Oct 01:00-04:00"
    " Asia/Shanghai, 278 records read in their windows in all."
)
_FOREST = (
    "Employee emp-0024 (customer_service) on Mon 19 Oct: as unusual as the most unusual of the 979 actor-days the model"
    " learned from; they read 215 distinct customers, 3.2x their usual of 68, more than every other customer service"
    " employee active that day; made 124 accesses, 2.5x their usual of 50, more than 88 of the 89 other customer"
    " service employees active that day; read 237 records, 2.8x their usual of 86, more than 88 of the 89 other"
    " customer service employees active that day."
)


def _seed_month_page(detector: str, actor_id: str, summary: str, evidence: dict, hours: tuple, **incident) -> Page:
    start = datetime(2026, 10, 16, 17, tzinfo=UTC) if hours == (17, 18) else datetime(2026, 10, 18, 16, tzinfo=UTC)
    end = start + timedelta(hours=1 if hours == (17, 18) else 24)
    alert = f.alert(
        actor_id=actor_id,
        severity=Severity.MEDIUM,
        detector=detector,
        summary=summary,
        evidence=evidence,
        window_start=start,
        window_end=end,
        actor_role="customer_service",
    )
    opened = incident_of(alert, actor_role="customer_service", **incident)
    return Page(kind=PageKind.TRIGGER, dedup_key=opened.incident_id, incident=opened, alert=alert, zone="Asia/Shanghai")


def test_a_page_leads_with_who_did_what_and_how_much_in_the_organisations_clock():
    """Tester T24, paged at night on a simulated month: the console's first lines were 500 to 600 characters (the
    isolation forest's sentence whole, "as unusual as 1 in 979 of the 979 actor-days"), and one put the finding's
    hour in UTC on Fri 16 Oct before its summary's same hour on Sat 17 Oct Asia/Shanghai."""
    evidence = {"events": 77, "records": 77, "usual_level": 0.0, "baseline_from": "own", "event_ids": ["evt-1"]}
    wider = {"window_end": datetime(2026, 10, 16, 20, tzinfo=UTC)}
    page = _seed_month_page("off_hours", "emp-0123", _OFF_HOURS, evidence, (17, 18), **wider)
    out = io.StringIO()
    ConsoleNotifier(stream=out).send(page, "ntf")
    first, quoted, said, *_ = out.getvalue().splitlines()
    assert first == (
        "[MEDIUM  ]!   employee emp-0123 (customer service) accessed 77 records in an hour they never work,"
        " Sat 17 Oct 01:00-02:00 Asia/Shanghai"
    )
    assert quoted.strip() == f"off_hours: {_OFF_HOURS}"  # the details: the finding whole, then the incident's span
    assert said.strip() == "When: Sat 17 Oct 01:00-02:00 Asia/Shanghai (incident: 01:00-04:00)"
    assert "UTC" not in out.getvalue() and "16 Oct" not in out.getvalue()  # one clock, one date
    explained = {"figure": "customers", "value": 215.0, "baseline": 68.2, "baseline_from": "own"}
    evidence = {"scale": "long", "explanation": [explained], "event_ids": ["evt-1"]}
    forest = _seed_month_page("isolation_forest", "emp-0024", _FOREST, evidence, (16, 16))
    assert headline(forest) == (
        "MEDIUM: employee emp-0024 (customer service) had an unusual day: read 215 distinct customers,"
        " 3.2x their usual, Mon 19 Oct"
    )
    mail_settings = {"host": "mail.example.com", "to": ["soc@example.com"], "from": "aw@example.com", "timeout": 5}
    mail = compose(forest, EmailSettings.model_validate(mail_settings), "ntf")
    assert mail["Subject"] == f"[accesswatch] {headline(forest)}" and "When:       Mon 19 Oct\n" in mail.get_content()


def test_a_first_line_too_long_for_a_phone_gives_its_time_to_the_details_then_cuts_the_finding():
    page = a_page(severity=Severity.CRITICAL)
    long = page.alert.model_copy(update={"summary": f"{page.alert.actor_id} read " + "very " * 60 + "many records."})
    page = page.model_copy(update={"alert": long})
    line = headline(page)
    assert len(line) <= FIRST_LINE_CHARS and line.endswith("very…") and "UTC" not in line
    out = io.StringIO()
    ConsoleNotifier(stream=out).send(page, "ntf")
    first, _, said, *_ = out.getvalue().splitlines()
    assert len(first) <= FIRST_LINE_CHARS and said.strip() == "When: Mon 02 Nov 01:00-02:00 UTC"


def test_the_file_webhook_and_alertmanager_say_where_to_look_as_the_text_pages_do(webhook, alertmanager, tmp_path):
    """Tester T24: the text pages said `Look: accesswatch incident ID`; the JSON bodies and the annotations did not."""
    page = a_page().model_copy(update={"act_with": ["--data-dir", "/srv/aw data"]})
    look = f"accesswatch incident {page.incident.incident_id} --data-dir '/srv/aw data'"
    webhook[1].send(page, "ntf")
    assert webhook[0].accepted[0]["page"]["look"] == look
    file = build_receivers(settings_with(tmp_path, receivers=["file"]))["file"]
    file.send(page, "ntf")
    (line,) = (tmp_path / "data" / "pages.jsonl").read_bytes().splitlines()
    assert orjson.loads(line)["page"]["look"] == look
    file.send(page, "ntf")  # delivered again: its id still ends the line, and the file holds it once
    assert len((tmp_path / "data" / "pages.jsonl").read_bytes().splitlines()) == 1
    alertmanager[1].send(page, "ntf")
    (firing,) = alertmanager[0].firing(alertmanager[1].clock() + timedelta(seconds=1))
    assert firing["annotations"]["look"] == look
