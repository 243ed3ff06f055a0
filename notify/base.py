"""The notifier port: one small interface for every way of telling a person.

A notifier (a "receiver" in the configuration) sends one ``Page`` at a time
and says, by raising ``DeliveryError``, whether trying again later may help.
It never decides who is paged, retries, or remembers what it sent: routing
(``notify.routing``) and the durable outbox (``notify.outbox``,
``notify.dispatch``) do that once for all receivers.
"""

from __future__ import annotations

import shlex
from abc import ABC, abstractmethod
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar
from zoneinfo import ZoneInfo

from pydantic import ConfigDict

from models.alert import Alert, AlertStatus

# as Config: in a notifier's class body ``Settings`` is its own receiver settings model
from models.config import Settings as Config
from models.event import format_utc
from models.incident import Incident
from models.page import Page, PageKind
from models.settings_base import SettingsModel
from notify import local_span
from notify.gist import gist


class DeliveryError(Exception):
    """A page did not reach the receiver.

    ``retryable``: an outage, a timeout, a rate limit or a server error (try
    again with backoff); otherwise the receiver refused the page itself (a bad
    key, a malformed payload): retrying the same bytes cannot help.
    """

    def __init__(self, message: str, retryable: bool = True, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after  # seconds the receiver asked us to wait (HTTP Retry-After)


class ReaderGone(Exception):
    """The receiver's reader went away (the console piped into ``head``, which stopped reading): the page was not
    delivered, and no page to this receiver can be in this process.

    Not a ``DeliveryError``: nothing is wrong with the page or the receiver, so it is not an attempt, and it earns
    no backoff; the page waits, due at once, for the next process that delivers.  Raised by the receiver itself
    on its own stream: a ``BrokenPipeError`` from a socket (a webhook's server hanging up) is an outage, retried.
    """


class ReceiverSettings(SettingsModel):
    """A receiver's section, ``notify.settings.<name>``: unknown keys are mistakes, inf and nan no setting."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


SettingsT = TypeVar("SettingsT", bound=ReceiverSettings)


class Notifier(ABC, Generic[SettingsT]):
    """A receiver type; ``Notifier[FileSettings]`` with ``Settings = FileSettings`` types ``self.settings``."""

    kind: ClassVar[str]  # the receiver type, as written in ``notify.settings.<name>.kind``
    Settings: ClassVar[type[ReceiverSettings]] = ReceiverSettings  # a ClassVar cannot name SettingsT
    handles: ClassVar[frozenset[PageKind]] = frozenset(PageKind)  # the page kinds it can express

    def __init__(self, name: str, settings: SettingsT) -> None:
        self.name = name  # the configured receiver name (two PagerDuty services are two names)
        self.settings = settings

    @classmethod
    def complete(cls, section: dict[str, Any], config: Config) -> dict[str, Any]:
        """The section with what comes from elsewhere in the configuration filled in (a timeout, a path)."""
        return section

    @abstractmethod
    def send(self, page: Page, delivery_id: str) -> None:
        """Deliver one page, or raise ``DeliveryError``.

        ``delivery_id`` is the outbox notification's id: a page delivered
        again (at least once) carries the same one, so a receiver can drop it.
        """

    def close(self) -> None:  # not abstract: most receivers hold nothing to release
        """Release files and connections."""


def page_record(page: Page, delivery_id: str | None = None) -> dict[str, Any]:
    """The contract's alert record, plus what the page is about (``page``): one JSON object.

    The contract asks for "at least" the alert keys, so receivers that read
    alert records read these too.  The alert is the incident's strongest finding
    as it stood when the page was planned, with the incident's status
    (``Page.current``): a SIEM filtering on ``severity`` or ``status`` reads the
    incident's, where the finding the pages quote first, the one the incident was
    first paged with, said ``medium`` and ``open`` on a critical incident's
    close.  That finding is ``page.first_paged``; ``page.headline`` is the first
    line the text receivers show.  ``page`` says whether it is a new incident,
    an update, an acknowledgement, a resolution or a reopening, and by whom,
    what the incident's other detectors found (``findings``), the command that
    shows the whole incident (``look``) and, without a dashboard link, the
    commands that act on it (``commands``).
    """
    incident = page.incident
    first = page.alert
    about: dict[str, Any] = {
        "kind": page.kind.value,
        "headline": headline(page),
        "dedup_key": page.dedup_key,
        "incident_id": incident.incident_id,
        "incident_status": incident.status.value,
        "incident_severity": incident.severity.value,
        "risk_score": incident.risk_score,
        "detectors": incident.detectors,
        "alert_count": len(incident.alert_ids),
        "incident_window_start": format_utc(incident.window_start),
        "incident_window_end": format_utc(incident.window_end),
        "escalation_level": page.escalation_level,
        "findings": list(page.findings),
        # what the text pages quote first, on every page about the incident: on-call staff recognise it by it
        "first_paged": {
            "alert_id": first.alert_id,
            "detector": first.detector,
            "severity": first.severity.value,
            "summary": first.summary,
            "revision": first.revision,
        },
    }
    if page.escalation_level and page.escalated_after is not None:
        about["unacknowledged_for"] = page.escalated_after  # seconds, before it escalated to this receiver
    if page.previous_severity is not None:
        about["previous_severity"] = page.previous_severity.value
    if page.action is not None:
        about["action"] = page.action.model_dump(mode="json", exclude_none=True)
    if page.refreshed is not None:  # sent again after it failed, as the incident is now (``notify.as_now``)
        about["refreshed"] = page.refreshed.model_dump(mode="json", exclude_none=True)
    if page.link:
        about["link"] = page.link
    else:
        about["commands"] = commands(page)
    about["look"] = look_command(page)  # where the whole incident is, link or not, as the text pages' "Look:"
    if delivery_id:  # last: the file receiver looks for a line's end by it
        about["delivery_id"] = delivery_id
    return {**page.current.to_record(), "page": about}


# about what a phone's lock screen shows of a notification, and a mail client of a subject: the first line's room
FIRST_LINE_CHARS = 160


def headline(page: Page, limit: int = FIRST_LINE_CHARS) -> str:
    """The line a person woken by the page reads first, within ``limit`` characters: what happened to the
    incident and how bad ('CRITICAL', 'Acknowledged by sam, CRITICAL', 'Now HIGH (was MEDIUM)'), then
    ``told``: who, what and how much, and when."""
    lead = situation(page)
    return f"{lead}: {told(page, limit - len(lead) - 2)}"


def situation(page: Page) -> str:
    """'CRITICAL', 'Now CRITICAL (was HIGH)', 'Acknowledged by sam, CRITICAL', 'ESCALATED, unacknowledged for
    15 min, HIGH': the incident's severity, and what became of it when a page is about that."""
    severity = page.incident.severity.value.upper()
    if page.kind in (PageKind.ACKNOWLEDGE, PageKind.RESOLVE, PageKind.REOPEN):
        return f"{done_by(page)}, {severity}"
    if page.kind is PageKind.UPDATE:
        before = page.previous_severity.value.upper() if page.previous_severity else "?"
        return f"Now {severity} (was {before})"
    if page.escalation_level:
        return f"ESCALATED, unacknowledged for {duration(page.escalated_after or 0)}, {severity}"
    return severity


def told(page: Page, limit: int) -> str:
    """The leading finding in plain words, within ``limit`` characters: 'employee emp-0004 (sales) read 17,651
    records after 19 days of silence, Mon 26 Oct 10:00-11:00 Asia/Shanghai'.

    The actor, and the purpose documented work cites; the finding's gist (``notify.gist``); the hour or day it
    tells, in the organisation's clock.  Where they do not fit, the time goes first (every page says it in its
    details), then the end of the finding's words.
    """
    who = named(page.incident, documented(page))
    what = gist(leading(page))
    start, end = active_span(leading(page))
    when_active = local_span.span(start, end, ZoneInfo(page.zone))
    line = f"{who} {what}, {when_active}"
    return line if len(line) <= limit else _clip(f"{who} {what}", limit)


def leading(page: Page) -> Alert:
    """The finding a page's first line tells: a rise's, the one that raised it (the incident's strongest then:
    'Now CRITICAL (was HIGH)' says why); else the headline, the finding the incident was first paged with, which
    the details quote first on every page."""
    if page.kind is PageKind.UPDATE and page.strongest is not None:
        return page.strongest
    return page.alert


def _clip(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters, cut at a word's end where one is near (a figure is not halved)."""
    if len(text) <= limit:
        return text
    head = text[: max(limit - 1, 0)]
    space = head.rfind(" ")
    return (head[:space].rstrip(",;:") if space >= limit // 2 else head) + "…"


# what a page calls each kind of actor, as the summaries do (``detectors.wording.KIND_NOUNS``)
_KIND_NOUNS = {"employee": "employee", "partner": "partner", "service": "service account"}


def named(incident: Incident, cited: str | None = None) -> str:
    """'employee emp-0042 (sales)', 'partner ptn-7 (blue-sky-travel)', 'service account svc-crm-sync (crm sync)':
    the actor, and the one trait that says most about them (a partner's company, else the role), and ``cited``
    beside it ('employee emp-0017 (finance; documented: month-end-close-2026-10)')."""
    kind = incident.actor_kind.value
    trait = incident.actor_organization if kind == "partner" else None
    beside = [said for said in (trait or (incident.actor_role or "").replace("_", " "), cited) if said]
    text = f"{_KIND_NOUNS.get(kind, kind)} {incident.actor_id}"
    return f"{text} ({'; '.join(beside)})" if beside else text


def documented(page: Page) -> str | None:
    """'documented: month-end-close-2026-10' when the leading finding is documented work, else None.

    Capped at medium, documented work pages only with ``notify.page_documented`` or beside undocumented findings:
    either way the first line says so, not only the finding's sentence or the other findings' lines below it.
    Beside undocumented findings it says that those are not.
    """
    purposes = leading(page).documented_purposes
    if not purposes:
        return None
    return f"documented: {', '.join(purposes[:2])}" + ("" if page.incident.documented else "; other findings are not")


def refreshed_line(page: Page) -> str | None:
    """For a page sent late, brought up to date: 'Sent again after failing, as the incident is now:
    acknowledged by carol (planned as open, high)'; None for a page sent as planned."""
    refreshed = page.refreshed
    if refreshed is None:
        return None
    status = page.incident.status.value.replace("_", " ")
    if refreshed.acknowledged is not None:
        status += f" by {refreshed.acknowledged.by}"
    now = f"{status}, {page.incident.severity.value}"
    planned = f"{refreshed.planned_status.value.replace('_', ' ')}, {refreshed.planned_severity.value}"
    return f"Sent again after failing, as the incident is now: {now} (planned as {planned})"


def done_by(page: Page) -> str:
    """What a person did and who: 'Acknowledged by alice', 'Closed as false positive by bob', 'Reopened by erin'."""
    by = page.action.by if page.action is not None else "someone"
    if page.kind is PageKind.RESOLVE:
        closed = "false positive" if page.incident.status.value == "false_positive" else "resolved"
        return f"Closed as {closed} by {by}"
    return f"{'Reopened' if page.kind is PageKind.REOPEN else 'Acknowledged'} by {by}"


def duration(seconds: float) -> str:
    """'45 s', '15 min', '2 h 5 min': an escalation after under a minute is not '0 min'."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes // 60} h" + (f" {minutes % 60} min" if minutes % 60 else "")


def actor(incident: Incident) -> str:
    """'emp-0042 (employee, role sales, department sales)'."""
    return f"{incident.actor_id} ({traits(incident)})"


def traits(incident: Incident) -> str:
    """'employee, role sales, department sales': each one named, since a role and a department may read alike."""
    named = [incident.actor_kind.value]
    for label, value in (
        ("role", incident.actor_role),
        ("department", incident.actor_department),
        ("organisation", incident.actor_organization),
    ):
        if value:
            named.append(f"{label} {value}")
    return ", ".join(named)


def when(page: Page) -> str:
    """When the headline finding was active, in the organisation's clock; the incident's span beside it when
    wider: 'Sat 17 Oct 01:00-02:00 Asia/Shanghai (incident: 01:00-04:00)'.

    An alert's window and its incident's are unions of findings' windows (whole local days for
    the daily rules): shown alone, they read as if the activity had lasted that long.
    """
    start, end = active_span(page.alert)
    incident = page.incident
    zone = ZoneInfo(page.zone)
    if (incident.window_start, incident.window_end) == (start, end):
        return local_span.span(start, end, zone)
    return local_span.span_within(start, end, (incident.window_start, incident.window_end), zone)


def active_span(alert: Alert) -> tuple[datetime, datetime]:
    """The window of the alert's strongest finding, the one its summary tells; else the alert's window.

    A grown alert keeps its findings' spans (``detectors.alerts``) as ``[start, end, score,
    severity]``; its summary is its strongest finding's.
    """
    best: tuple[float, datetime, datetime] | None = None
    for span in alert.evidence.get("spans") or ():
        try:
            start, end, score = datetime.fromisoformat(span[0]), datetime.fromisoformat(span[1]), float(span[2])
        except (TypeError, ValueError, IndexError):
            continue
        if best is None or score > best[0]:
            best = (score, start, end)
    return (best[1], best[2]) if best else (alert.window_start, alert.window_end)


# what a person may do next with an incident in each status (the state machine of ``models.incident``)
_NEXT = {
    AlertStatus.OPEN: ("ack", "resolve"),
    AlertStatus.ACKNOWLEDGED: ("resolve",),
    AlertStatus.RESOLVED: ("reopen",),
    AlertStatus.FALSE_POSITIVE: ("reopen",),
}


def commands(page: Page) -> list[str]:
    """The commands that act on the incident: 'accesswatch ack inc-...', for pages without a dashboard link."""
    options = f" {shlex.join(page.act_with)}" if page.act_with else ""
    return [f"accesswatch {verb} {page.incident.incident_id}{options}" for verb in _NEXT[page.incident.status]]


def next_step(page: Page) -> str:
    """One line: the dashboard link when there is one, else the commands to act."""
    if page.link:
        return f"Open it: {page.link}"
    lead = "Act on it: " if page.incident.open else "Not over? "
    return lead + " | ".join(commands(page))


def look_step(page: Page) -> str:
    """'Look: accesswatch incident inc-...': where a person woken by the page reads the whole incident (its alerts
    and triage log), with or without a dashboard link."""
    return f"Look: {look_command(page)}"


def look_command(page: Page) -> str:
    """'accesswatch incident inc-... --data-dir DIR': the command that shows the whole incident."""
    options = f" {shlex.join(page.act_with)}" if page.act_with else ""
    return f"accesswatch incident {page.incident.incident_id}{options}"
