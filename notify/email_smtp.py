"""E-mail over SMTP: STARTTLS (or implicit TLS) and authentication.

One message per page, plain text.  The Message-ID is derived from the
delivery id, and updates, acknowledgements and resolutions refer to the
first page's Message-ID (``In-Reply-To``/``References``), so mail clients
thread an incident and a message delivered twice carries the same id.

SMTP answers 4xx for trouble that passes (retried) and 5xx for refusals
(not retried: a wrong password or address will not fix itself).
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, model_validator

from models.config import CaCertificates, cross_field_error
from models.config import Settings as Config  # ``Settings`` below is the receiver's own
from models.page import Page, PageKind
from models.visible import visible
from notify.base import (
    FIRST_LINE_CHARS,
    DeliveryError,
    Notifier,
    ReceiverSettings,
    actor,
    headline,
    look_step,
    next_step,
    refreshed_line,
    when,
)
from notify.http import Timeout

log = logging.getLogger(__name__)

_DOMAIN = "accesswatch.invalid"


class EmailSettings(ReceiverSettings):
    host: Annotated[str, Field(min_length=1)]
    port: Annotated[int, Field(ge=1, le=65535)] = 587
    security: Literal["starttls", "tls", "none"] = "starttls"  # none: only for a relay on the same host
    username: str | None = None
    password: SecretStr | None = None
    sender: Annotated[str, Field(alias="from", min_length=3)]
    to: Annotated[list[str], Field(min_length=1)]
    # a private CA for the relay's certificate (default: the system's), checked when the configuration loads: the
    # client loads it only when it connects, and a missing one, or one not PEM, then failed each page, retried
    ca_file: CaCertificates | None = None
    subject_prefix: str = "[accesswatch]"
    timeout: Timeout

    @model_validator(mode="after")
    def _no_password_in_clear(self) -> EmailSettings:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password together, or neither")
        if self.username is not None and self.security == "none":
            raise ValueError("security 'starttls' or 'tls' when authenticating: a password is never sent in clear")
        if self.ca_file is not None and self.security == "none":  # it would be dropped without a word
            raise cross_field_error(
                ["ca_file", "security"],
                "security 'starttls' or 'tls' beside it, not 'none': ca_file is used over TLS only",
            )
        return self


def message_id(delivery_id: str) -> str:
    return f"<{delivery_id}@{_DOMAIN}>"


def thread_id(incident_id: str) -> str:
    return f"<{incident_id}@{_DOMAIN}>"


def compose(page: Page, settings: EmailSettings, delivery_id: str) -> EmailMessage:
    incident, alert = page.incident, page.alert
    mail = EmailMessage()
    # escaped (``models.visible``): a CR LF in an actor id would inject a header, and the mail library refuses
    # such a subject outright, so this receiver alone would never get the page
    room = FIRST_LINE_CHARS - len(settings.subject_prefix) - 1  # a phone's mail list shows about a line
    mail["Subject"] = visible(f"{settings.subject_prefix} {headline(page, room)}".strip())
    mail["From"] = settings.sender
    mail["To"] = ", ".join(settings.to)
    mail["Date"] = formatdate(localtime=False)
    if page.kind is PageKind.TRIGGER and not page.escalation_level:
        mail["Message-ID"] = thread_id(incident.incident_id)  # the thread's root
    else:
        mail["Message-ID"] = message_id(delivery_id or incident.incident_id)
        mail["In-Reply-To"] = thread_id(incident.incident_id)
        mail["References"] = thread_id(incident.incident_id)
    mail["X-Accesswatch-Incident"] = incident.incident_id
    lines = [headline(page), "", alert.summary, ""]
    if page.findings:
        lines += ["Also found:", *(f"- {finding}" for finding in page.findings), ""]
    lines += [
        f"Severity:   {incident.severity.value}"
        + (f" (was {page.previous_severity.value})" if page.previous_severity else ""),
        f"Who:        {actor(incident)}",
        f"Detectors:  {', '.join(incident.detectors)}",
        f"When:       {when(page)}",
        f"Risk:       {incident.risk_score:g} / 100 over {len(incident.alert_ids)} alert(s)",
        f"Incident:   {incident.incident_id} ({incident.status.value.replace('_', ' ')})",
    ]
    if page.action is not None:
        lines.append(f"By:         {page.action.by}" + (f": {page.action.note}" if page.action.note else ""))
    late = refreshed_line(page)
    if late is not None:
        lines += ["", late]
    lines += ["", look_step(page), next_step(page)]  # where to read the whole incident, then what to do
    # each line escaped alike: a line break in the log's words would forge lines ("Severity:   low") in the body
    mail.set_content("".join(visible(line) + "\n" for line in lines))
    return mail


class EmailNotifier(Notifier[EmailSettings]):
    kind = "email"
    Settings = EmailSettings
    handles = frozenset({PageKind.TRIGGER, PageKind.UPDATE, PageKind.RESOLVE, PageKind.REOPEN})

    @classmethod
    def complete(cls, section: dict[str, Any], config: Config) -> dict[str, Any]:
        return {"timeout": config.notify.delivery.timeout, **section}

    def send(self, page: Page, delivery_id: str = "") -> None:
        settings = self.settings
        mail = compose(page, settings, delivery_id)
        where = f"{settings.host}:{settings.port}"
        try:
            with self._connect() as smtp:
                if settings.username is not None and settings.password is not None:
                    smtp.login(settings.username, settings.password.get_secret_value())
                refused = smtp.send_message(mail)
        except smtplib.SMTPResponseException as exc:
            text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
            raise DeliveryError(f"SMTP {exc.smtp_code} from {where}: {text}", retryable=exc.smtp_code < 500) from None
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise DeliveryError(
                f"{where} refused every recipient: {exc.recipients}", retryable=all(c < 500 for c in codes)
            ) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryError(f"{where}: {exc}", retryable=False) from None
        except ssl.SSLCertVerificationError as exc:
            raise DeliveryError(f"{where}: certificate not trusted: {exc.verify_message}", retryable=False) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"{where}: {type(exc).__name__}: {exc}") from None
        if refused:
            # the others took it: the page reached people, and sending it again would repeat it to them
            log.warning("%s: %s delivered, but %s refused: %s", self.name, delivery_id, where, refused)

    def _connect(self) -> smtplib.SMTP:
        settings = self.settings
        context = ssl.create_default_context(cafile=str(settings.ca_file) if settings.ca_file else None)
        if settings.security == "tls":
            return smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout, context=context)
        smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        try:
            smtp.ehlo()
            if settings.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise smtplib.SMTPNotSupportedError("the server does not offer STARTTLS")
                smtp.starttls(context=context)
                smtp.ehlo()
        except BaseException:
            smtp.close()
            raise
        return smtp
