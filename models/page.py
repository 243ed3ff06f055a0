"""Pages: what a receiver is told about an incident, and the outbox row that carries it.

A ``Page`` is the message (the incident, the finding behind it, one line for
each other detector's finding about the same episode, and what happened:
raised, grew more severe, acknowledged, resolved, reopened).  A
``Notification`` is one page for one receiver, kept in the store's outbox
until it is delivered: its id is derived from what it says, so planning the
same page twice (a replay, a restart after a crash) finds the row already
there instead of paging again.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from models.alert import Alert, AlertStatus, Severity, UtcTime
from models.incident import Incident, TriageAction


class PageKind(StrEnum):
    TRIGGER = "trigger"  # a new incident for this receiver (or an escalation to it)
    UPDATE = "update"  # an incident this receiver was paged for became more severe
    ACKNOWLEDGE = "acknowledge"  # a person took it
    RESOLVE = "resolve"  # a person closed it (resolved or false positive)
    REOPEN = "reopen"  # a person put a closed incident back in the queue


# What a page quotes of the incident's other findings: a person acts on the whole episode (who
# exported what, from where, after how long a silence), not on the one finding that paged.
MAX_FINDINGS = 8  # lines: one per other detector, strongest first
MAX_FINDING_CHARS = 500  # a line: a detector's summary is one sentence
Finding = Annotated[str, Field(min_length=1, max_length=MAX_FINDING_CHARS)]


def _known_zone(name: str) -> str:
    ZoneInfo(name)  # an unknown name raises here, on loading a row, not at its first delivery
    return name


# an IANA zone name, validated as ``models.config.Organisation.timezone`` was when the page was planned
Zone = Annotated[str, AfterValidator(_known_zone)]


class Refreshed(BaseModel):
    """A page sent again after it failed, brought up to date: it says the incident as it is then.

    The same dedup key, kind and headline finding; the incident (status, severity, risk, findings)
    as it was when the page went out, and what it said when it was planned, so that a receiver and
    ``accesswatch pages`` can tell (``notify.as_now``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    at: UtcTime  # wall-clock: when it was brought up to date
    planned_status: AlertStatus  # the incident as the page was planned
    planned_severity: Severity
    acknowledged: TriageAction | None = None  # who acknowledged the incident, when it is acknowledged now


class Page(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: PageKind
    dedup_key: str  # the incident id: receivers that deduplicate collapse repeats on it
    incident: Incident
    alert: Alert  # the headline finding, the one the incident was first paged with: the contract's alert record
    # the incident's strongest finding as it stood when the page was planned, with the incident's status (which the
    # store gives its alerts), when that is not ``alert`` as first paged: a rise's leads its first line, and it is the
    # alert record of the file and webhook bodies; None on a row planned before pages carried it
    strongest: Alert | None = None
    # the incident's other detectors, one line each ("egress, high: ..."), strongest first
    findings: list[Finding] = Field(default_factory=list, max_length=MAX_FINDINGS)
    previous_severity: Severity | None = None  # an update: the severity the receiver was told before
    escalation_level: int = Field(default=0, ge=0)  # 0: the first page; n: the n-th escalation
    escalated_after: float | None = None  # seconds the incident went unacknowledged before this escalation
    action: TriageAction | None = None  # acknowledge/resolve/reopen: who did it, when, with what note
    link: str | None = None  # the incident in the dashboard
    # what the commands to act on it need to reach this store (``--config FILE``, ``--data-dir DIR``)
    act_with: list[str] = Field(default_factory=list)
    refreshed: Refreshed | None = None  # sent again after it failed, as the incident was then
    # the organisation's zone (``organisation.timezone``): the clock every time a receiver shows is in, as the
    # summaries' own; a row planned before pages carried it reads as UTC, the clock pages showed then
    zone: Zone = "UTC"

    @property
    def severity(self) -> Severity:
        return self.incident.severity

    @property
    def current(self) -> Alert:
        """The incident's strongest finding as the page tells it now; the headline on a row older than that."""
        return self.strongest or self.alert


def other_findings(incident: Incident, headline: Alert) -> list[str]:
    """One line per detector of the incident, its strongest finding, strongest first, but for the headline itself.

    Read from ``Incident.evidence`` (each detector's strongest alert, kept as the incident grows), so
    a page planned before its batch's alerts are stored still quotes them all.  The headline's own
    detector has a line when it found something stronger since (another alert, or a stronger finding
    grew the headline's): a page keeps the headline it was first paged with (``notify.outbox``).  Its
    alert grown by weaker findings only is the same finding, told once, by the headline.
    """
    found = []
    for detector, figures in incident.evidence.items():
        summary = figures.get("summary") if isinstance(figures, dict) else None
        if not isinstance(summary, str) or not summary:
            continue
        try:
            severity = Severity(figures.get("severity"))
        except ValueError:
            continue
        if detector == headline.detector and _same_finding(figures, severity, summary, headline):
            continue  # the headline says it
        score = figures.get("score")
        found.append((severity.rank, score if isinstance(score, int | float) else 0.0, detector, severity, summary))
    found.sort(key=lambda item: (-item[0], -item[1], item[2]))
    lines = [_cut(f"{detector}, {severity.value}: {summary}") for _, _, detector, severity, summary in found]
    if len(lines) > MAX_FINDINGS:
        rest = [item[2] for item in found[MAX_FINDINGS - 1 :]]
        lines = [*lines[: MAX_FINDINGS - 1], _cut(f"and {len(rest)} more: {', '.join(rest)}")]
    return lines


def _same_finding(figures: dict, severity: Severity, summary: str, headline: Alert) -> bool:
    """Whether the detector's strongest alert tells the headline's finding: its very words, or the headline's
    alert grown since by weaker findings only (its score, its severity: the same strongest finding, with a longer
    tail of 'the strongest of N findings'), which a second line would list twice."""
    if (summary, severity) == (headline.summary, headline.severity):
        return True
    return figures.get("alert_id") == headline.alert_id and (figures.get("score"), severity) == (
        headline.score,
        headline.severity,
    )


def _cut(text: str) -> str:
    """The line within ``MAX_FINDING_CHARS``, cut at a word's end where one is near (a figure is not halved)."""
    if len(text) <= MAX_FINDING_CHARS:
        return text
    head = text[: MAX_FINDING_CHARS - 1]
    space = head.rfind(" ")
    return (head[:space] if space >= MAX_FINDING_CHARS // 2 else head) + "…"


class NotificationStatus(StrEnum):
    PENDING = "pending"  # waiting to be sent, or to be retried
    SENT = "sent"  # the receiver accepted it: never sent again
    FAILED = "failed"  # the receiver refused it for good, or retries ran out
    SUPPRESSED = "suppressed"  # a silence or the actor's throttle held it back (the reason is kept)
    CANCELLED = "cancelled"  # an escalation made moot: the incident was acknowledged or closed in time


class Notification(BaseModel):
    """One page for one receiver: an outbox row."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    notification_id: str
    receiver: str
    route: str  # the route that chose the receiver, for the operator's "why was I paged"
    page: Page
    status: NotificationStatus = NotificationStatus.PENDING
    # an escalation: sent only if the incident is still unacknowledged when it falls due
    only_if_unacknowledged: bool = False
    attempts: int = 0
    created_at: UtcTime  # wall-clock: when it was planned
    due_at: UtcTime  # wall-clock: not before this (an escalation's deadline, a retry's backoff)
    settled_at: UtcTime | None = None  # wall-clock: when it was sent, failed, suppressed or cancelled
    last_error: str | None = None  # why the last attempt failed, or why it was suppressed
    # wall-clock: taken for delivery until then (by a process delivering it, or one that died, whose lease
    # must run out); the store's to keep, beside the page, never in it
    leased_until: UtcTime | None = Field(default=None, exclude=True)

    @property
    def kind(self) -> PageKind:
        return self.page.kind

    @property
    def incident_id(self) -> str:
        return self.page.incident.incident_id

    @property
    def actor_id(self) -> str:
        return self.page.incident.actor_id

    @property
    def dedup_key(self) -> str:
        return self.page.dedup_key


def notification_id(receiver: str, page: Page, discriminator: str = "") -> str:
    """The outbox id of ``page`` for ``receiver``: the same page planned again gets the same id.

    What distinguishes two pages about one incident: the kind, the severity
    (a trigger held back at ``high`` may go out when the incident reaches
    ``critical``), the escalation level, and for a person's action, when it
    was taken (a reopened incident resolved again is another resolve).
    """
    parts = [receiver, page.dedup_key, page.kind.value, page.severity.value, str(page.escalation_level)]
    if page.action is not None:
        parts.append(page.action.at.isoformat())
    parts.append(discriminator)
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    return f"ntf-{digest[:24]}"
