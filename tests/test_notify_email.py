"""E-mail pages against a local SMTP server (aiosmtpd) that requires STARTTLS before AUTH."""

from __future__ import annotations

import re

import pytest

from models.alert import AlertStatus, Severity
from models.config import ConfigError
from models.incident import TriageAction, TriageActionKind
from models.page import Page, PageKind
from notify.base import DeliveryError
from notify.registry import build_receivers
from tests.fakes.paging_receivers import FakeSmtpServer, free_port
from tests.paging_factories import NOW, finding, settings_with, telling_page


@pytest.fixture
def smtp(tmp_path):
    with FakeSmtpServer(tmp_path) as server:
        yield server


def mailer(tmp_path, smtp: FakeSmtpServer | None = None, **section):
    values = {
        "kind": "email",
        "host": "127.0.0.1",
        "port": smtp.port if smtp else free_port(),
        "username": "pager",
        "password": "s3cret-pass",
        "from": "accesswatch@example.com",
        "to": ["soc@example.com", "dpo@example.com"],
        "ca_file": str(smtp.cert) if smtp else None,
        "timeout": "15s",
        **section,
    }
    settings = settings_with(tmp_path, receivers=[], settings={"mail": {k: v for k, v in values.items() if v}})
    return build_receivers(settings)["mail"]


def a_page(kind: PageKind = PageKind.TRIGGER) -> Page:
    alert, incident = finding(severity=Severity.CRITICAL)
    action = None
    if kind is PageKind.RESOLVE:
        incident = incident.model_copy(update={"status": AlertStatus.RESOLVED})
        action = TriageAction(incident_id=incident.incident_id, kind=TriageActionKind.RESOLVE, by="alice", at=NOW)
    return Page(
        kind=kind,
        dedup_key=incident.incident_id,
        incident=incident,
        alert=alert,
        action=action,
        link=f"https://aw.example.com/?incident={incident.incident_id}",
    )


def test_a_page_is_mailed_over_starttls_with_authentication(tmp_path, smtp):
    page = a_page()
    mailer(tmp_path, smtp).send(page, "ntf-1")
    assert smtp.logins == ["pager"]
    (mail,) = smtp.messages
    assert smtp.envelopes == [("accesswatch@example.com", ["soc@example.com", "dpo@example.com"])]
    assert mail["Subject"] == (
        f"[accesswatch] CRITICAL: employee {page.incident.actor_id} read 5,000 records, Mon 02 Nov 01:00-02:00 UTC"
    )
    body = mail.get_content().replace("\r\n", "\n")
    assert page.alert.summary in body and page.link in body and "bulk_read" in body
    # the dashboard's link, and where on the command line (tester T17: a woken person had no next step to read)
    assert f"Look: accesswatch incident {page.incident.incident_id}\nOpen it: {page.link}\n" in body
    assert mail["Message-ID"] == f"<{page.incident.incident_id}@accesswatch.invalid>"


def test_the_resolution_threads_under_the_first_page(tmp_path, smtp):
    notifier = mailer(tmp_path, smtp)
    trigger = a_page()
    notifier.send(trigger, "ntf-1")
    notifier.send(a_page(PageKind.RESOLVE).model_copy(update={"incident": trigger.incident}), "ntf-2")
    first, second = smtp.messages
    assert second["In-Reply-To"] == first["Message-ID"] and second["Message-ID"] == "<ntf-2@accesswatch.invalid>"
    assert "Closed as resolved by alice" in second["Subject"]


def test_a_wrong_password_is_not_retried(tmp_path, smtp):
    with pytest.raises(DeliveryError) as caught:
        mailer(tmp_path, smtp, password="wrong").send(a_page(), "ntf")
    assert not caught.value.retryable and "SMTP 535" in str(caught.value)
    assert smtp.messages == []


def test_a_temporary_refusal_is_retried_and_a_permanent_one_is_not(tmp_path, smtp):
    notifier = mailer(tmp_path, smtp)
    smtp.reply_next("451 4.3.0 try again later", "554 5.7.1 message rejected")
    with pytest.raises(DeliveryError) as temporary:
        notifier.send(a_page(), "ntf")
    with pytest.raises(DeliveryError) as permanent:
        notifier.send(a_page(), "ntf")
    assert temporary.value.retryable and "451" in str(temporary.value)
    assert not permanent.value.retryable and "554" in str(permanent.value)
    notifier.send(a_page(), "ntf")
    assert len(smtp.messages) == 1


def test_a_certificate_nobody_vouches_for_is_refused(tmp_path, smtp):
    with pytest.raises(DeliveryError) as caught:
        mailer(tmp_path, smtp, ca_file=None).send(a_page(), "ntf")  # the system's CAs do not know it
    assert not caught.value.retryable and "certificate" in str(caught.value)
    assert smtp.messages == []


def test_a_server_that_is_down_is_retried(tmp_path):
    with pytest.raises(DeliveryError) as caught:
        mailer(tmp_path, None, timeout="2s").send(a_page(), "ntf")
    assert caught.value.retryable


def test_a_password_is_never_sent_in_clear(tmp_path):
    with pytest.raises(ConfigError, match=re.escape("notify.settings.mail")) as caught:
        mailer(tmp_path, None, security="none")
    assert "s3cret-pass" not in str(caught.value)


def test_the_mail_quotes_the_other_findings_and_says_how_to_act_without_a_link(tmp_path, smtp):
    page = telling_page()
    mailer(tmp_path, smtp).send(page, "ntf-1")
    body = smtp.messages[0].get_content().replace("\r\n", "\n")
    assert "Also found:\n" + "".join(f"- {line}\n" for line in page.findings) in body
    incident_id = page.incident.incident_id
    assert f"Act on it: accesswatch ack {incident_id} | accesswatch resolve {incident_id}" in body
    assert f"\nLook: accesswatch incident {incident_id}\nAct on it: " in body
    assert "When:       Mon 02 Nov 01:00-02:00 UTC" in body and "Who:        svc-etl (service)" in body


def test_a_reopen_is_mailed_in_the_incidents_thread(tmp_path, smtp):
    notifier = mailer(tmp_path, smtp)
    page = a_page()
    action = TriageAction(
        incident_id=page.incident.incident_id, kind=TriageActionKind.REOPEN, by="erin", at=NOW, note="not over"
    )
    assert PageKind.REOPEN in notifier.handles
    notifier.send(page.model_copy(update={"kind": PageKind.REOPEN, "action": action}), "ntf-3")
    (mail,) = smtp.messages
    assert (
        "Reopened by erin" in mail["Subject"]
        and mail["In-Reply-To"] == f"<{page.incident.incident_id}@accesswatch.invalid>"
    )
    assert "By:         erin: not over" in mail.get_content()


def test_a_line_break_in_an_actor_id_is_escaped_in_the_subject_and_cannot_add_a_header(tmp_path, smtp):
    """Tester T9: an actor id holding CR LF made the subject refused ("Header values may not contain linefeed"),
    so this receiver alone never got the page, retried for a day; escaped, it is mailed, and injects nothing."""
    hostile = "emp-0098\r\nBcc: attacker@evil.example\r\n\x1b[32m\u202e"
    alert, incident = finding(actor_id=hostile, severity=Severity.CRITICAL)
    page = Page(kind=PageKind.TRIGGER, dedup_key=incident.incident_id, incident=incident, alert=alert)
    mailer(tmp_path, smtp).send(page, "ntf-1")
    (mail,) = smtp.messages
    assert smtp.envelopes == [("accesswatch@example.com", ["soc@example.com", "dpo@example.com"])]
    assert mail["Bcc"] is None
    shown = r"emp-0098\r\nBcc: attacker@evil.example\r\n\x1b[32m\u202e"
    assert mail["Subject"] == f"[accesswatch] CRITICAL: employee {shown} read 5,000 records, Mon 02 Nov 01:00-02:00 UTC"
    body = mail.get_content().splitlines()
    assert not any(line.startswith("Bcc:") for line in body) and f"Who:        {shown} (employee)" in body
