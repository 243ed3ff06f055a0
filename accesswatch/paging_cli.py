"""The paging commands: ``pages`` (the outbox), ``ack ID``, ``resolve ID``, ``reopen ID``, ``assign ID`` and
``note ID``.

``ack`` and ``resolve`` record the person's action on the incident (the
triage log keeps who and when) and tell the receivers that were paged and
can express it (PagerDuty acknowledge/resolve, Alertmanager's end, a Slack
message...); ``reopen`` tells the receivers that were told it was closed
(a PagerDuty trigger, Alertmanager firing again, a Slack message...).
They try to deliver at once; what a receiver does not take stays in the
outbox for the running pipeline (or ``pages --deliver``) to retry, and the
command says so.  They follow the incident's state machine,
as the dashboard does (``models.incident``): a closed incident is reopened
before it is acknowledged or resolved again, and a repeat changes nothing.
``assign`` records the assignment the dashboard's Assign records (any status,
a closed incident's too, as there), and ``note`` the note its Add a note
records; receivers are not told of either.  A note is taken as the dashboard
takes it: without its surrounding blanks, and a blank one is none; ``--by``
and ``--to`` without theirs, a blank one refused.  ``resolve --false-positive``
needs its reason (``--note``), as the dashboard's does.
"""

from __future__ import annotations

import argparse
import getpass
import shlex
import sys
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from typing import TextIO

from pydantic import ValidationError

from accesswatch import app, arguments
from accesswatch.words import plural
from models.config import Settings
from models.event import format_utc
from models.incident import Incident, TransitionRefused, TriageAction, TriageActionKind
from models.json_lines import json_line
from models.local_time import local_time
from models.page import Notification, NotificationStatus
from models.visible import visible
from notify.base import Notifier, actor
from notify.dispatch import DeliveryReport, next_try
from notify.jsonl_file import JsonlFileNotifier
from notify.outbox import ACTION_PAGES
from store.base import Store
from store.outbox import OutboxQuery, ReceiverRest

EXIT_OK, EXIT_FAILED = 0, 1


def add_commands(
    command: Callable[..., argparse.ArgumentParser], settings_of: Callable[[argparse.Namespace], Settings]
) -> None:
    """Add the subcommands; ``settings_of`` loads the configuration from the parsed arguments."""
    pages = command(
        "pages", _pages, "List the pages in the outbox: pending, sent, failed (with the last error), suppressed."
    )
    pages.set_defaults(settings_of=settings_of)
    pages.add_argument(
        "--status",
        action="append",
        choices=[status.value for status in NotificationStatus],
        help="only these (repeat for several; default: all)",
    )
    pages.add_argument(
        "--incident", metavar="ID", help="only the pages about this incident (or the incident of this alert)"
    )
    pages.add_argument(
        "--limit", type=arguments.count, default=50, metavar="N", help="the newest N (default: 50); 0: the counts alone"
    )
    pages.add_argument("--format", choices=["table", "jsonl"], default="table")
    pages.add_argument(
        "--deliver",
        action="store_true",
        help="first deliver the waiting pages now, without waiting out their backoff (after fixing a receiver)",
    )
    pages.add_argument(
        "--retry-failed",
        action="store_true",
        help="deliver as --deliver does, and send the failed pages again, as their incidents are now (a page the"
        " incident was acknowledged since is followed by the acknowledgement; one it was closed since is superseded)",
    )

    for name, kind, text in (
        ("ack", TriageActionKind.ACKNOWLEDGE, "Acknowledge an open incident and tell the receivers that were paged."),
        ("resolve", TriageActionKind.RESOLVE, "Resolve an open incident and tell the receivers that were paged."),
        ("reopen", TriageActionKind.REOPEN, "Reopen a closed incident and tell the receivers told it was closed."),
    ):
        sub = _triage_command(command, name, kind, text, settings_of)
        if kind is TriageActionKind.RESOLVE:
            sub.add_argument(
                "--false-positive",
                action="store_true",
                help="close it as a false positive rather than resolved (--note, the reason, is required then)",
            )
    assign = _triage_command(
        command,
        "assign",
        TriageActionKind.ASSIGN,
        "Assign an incident to a person, as the dashboard's Assign does (the triage log keeps who, when and to"
        " whom; receivers are not told).",
        settings_of,
    )
    assign.add_argument(
        "--to", required=True, metavar="NAME", help="the person it is assigned to: their dashboard user name"
    )
    _triage_command(
        command,
        "note",
        TriageActionKind.NOTE,
        "Add a note to an incident's triage log, as the dashboard's Add a note does (what you checked, whom you"
        " asked: the triage log keeps who and when; receivers are not told).",
        settings_of,
    )


def _triage_command(
    command: Callable[..., argparse.ArgumentParser],
    name: str,
    kind: TriageActionKind,
    text: str,
    settings_of: Callable[[argparse.Namespace], Settings],
) -> argparse.ArgumentParser:
    sub = command(name, _triage, text)
    sub.set_defaults(action_kind=kind, settings_of=settings_of, command_name=name)
    sub.add_argument("id", metavar="ID", help="the incident id (or the id of one of its alerts)")
    sub.add_argument(
        "--by",
        metavar="NAME",
        help="the person acting, as the triage log and the receivers name them (default: the operating-system"
        " login name running the command, which under sudo or in a container is root or the service's account:"
        " give --by there); give their dashboard user name, so that the triage log knows one person by one name",
    )
    if kind is TriageActionKind.NOTE:
        sub.add_argument("--note", required=True, metavar="TEXT", help="the note, for the triage log")
        return sub
    told = "" if kind is TriageActionKind.ASSIGN else " and the receivers"  # an assignment pages nobody
    sub.add_argument("--note", metavar="TEXT", help=f"why, for the triage log{told}")
    return sub


def deliver_after_replay(settings: Settings, store: Store, receivers: dict[str, Notifier]) -> DeliveryReport:
    """After ``replay --page``: deliver what is due for up to ``notify.delivery.drain_on_exit``."""
    try:
        report = _deliver(settings, store, receivers)
    finally:
        for receiver in receivers.values():
            receiver.close()
    _say_gone(settings, store, "replay", report)
    retries, escalations = _waiting(store, datetime.now(UTC))
    line = f"pages: {_sent(report, receivers)}, {report.failed} failed, {retries} waiting to be retried"
    if retries:
        line += " (accesswatch pages lists them; a running pipeline or 'pages --deliver' retries them)"
    if escalations:
        line += (
            f"; {escalations} escalation{'s' if escalations != 1 else ''} due later if nobody acknowledges"
            " (sent only by a process delivering then: a running pipeline or 'pages --deliver')"
        )
    print(line)
    return report


def _sent(report: DeliveryReport, receivers: dict[str, Notifier]) -> str:
    """``11 sent to console, 11 to file (data/pages.jsonl)``: each receiver's count, not their sum, which counted
    every page once per receiver (22 for the 11 on the screen); and where a file receiver writes, said nowhere else
    after a replay."""
    if not receivers:
        return f"{report.sent} sent"
    told = [
        f"{report.sent_to[name]} {'to' if n else 'sent to'} {name}"
        + (f" ({receiver.path})" if isinstance(receiver, JsonlFileNotifier) else "")
        for n, (name, receiver) in enumerate(receivers.items())
    ]
    return ", ".join(told)


def undelivered(settings: Settings, store: Store, command: str) -> list[str]:
    """The lines to say on stderr after ``command`` stopped: the pages left waiting, and the command that
    delivers them; none when none is left.

    A replay delivers its pages after it has read everything, so one stopped
    before has delivered none of them.
    """
    deliver = _deliver_command(settings)
    try:
        retries, escalations = _waiting(store, datetime.now(UTC))
    except Exception:  # the store in no state to answer after the interrupt: where to look, then
        return [f"accesswatch {command}: pages may be waiting: '{deliver}' delivers them"]
    lines = []
    if retries:
        waiting = f"{retries} page{'s' if retries != 1 else ''} not delivered"
        lines.append(f"accesswatch {command}: stopped with {waiting}: '{deliver}' delivers them")
    if escalations:
        named = "that command" if retries else f"'{deliver}'"
        lines.append(
            f"accesswatch {command}: {escalations} escalation{'s' if escalations != 1 else ''} due later if nobody"
            f" acknowledges: sent only by a process delivering then (a running pipeline, or {named} once due)"
        )
    return lines


def _say_undelivered(settings: Settings, store: Store, command: str) -> None:
    for line in undelivered(settings, store, command):
        print(line, file=sys.stderr)


def _say_gone(settings: Settings, store: Store, command: str, report: DeliveryReport) -> None:
    """On stderr, a line for each receiver whose reader went away (``pages --deliver | head -1``): its pages given
    back, and the command that delivers them.  Its stdout is the closed pipe: the command then ends as a reader
    gone ends it (``accesswatch.cli.main``: exit 141, quietly)."""
    for receiver in sorted(report.gone):
        pending = OutboxQuery(statuses=[NotificationStatus.PENDING], receiver=receiver, limit=100_000)
        waiting = plural(len(store.notifications(pending)), "page")
        print(
            f"accesswatch {command}: the output of {receiver} was closed (its reader stopped reading): {waiting} to"
            f" it not delivered: '{_deliver_command(settings)}' delivers them",
            file=sys.stderr,
        )


def _deliver_command(settings: Settings) -> str:
    return shlex.join(["accesswatch", "pages", "--deliver", *app.store_options(settings)])


def _waiting(store: Store, now: datetime) -> tuple[int, int]:
    """The pending pages: (retries, escalations not yet due).

    An escalation waits for its deadline, not for a retry: counting it as a
    retry would tell the operator a receiver is failing when none is.
    """
    pending = store.notifications(OutboxQuery(statuses=[NotificationStatus.PENDING], limit=100_000))
    escalations = sum(1 for row in pending if _escalation_not_yet_due(row, now))
    return len(pending) - escalations, escalations


def _escalation_not_yet_due(row: Notification, now: datetime) -> bool:
    return row.only_if_unacknowledged and row.attempts == 0 and row.due_at > now


def _deliver(settings: Settings, store: Store, receivers: dict[str, Notifier], retry: bool = False) -> DeliveryReport:
    """Deliver what is due, and for up to ``notify.delivery.drain_on_exit`` the retries falling due meanwhile."""
    dispatcher = app.open_dispatcher(settings, store, receivers)
    if retry:
        dispatcher.retry_now()
    return dispatcher.drain(settings.notify.delivery.drain_on_exit)


# -- pages ------------------------------------------------------------------------------------
def _pages(args: argparse.Namespace) -> int:
    settings = args.settings_of(args)
    sending = bool(args.deliver or args.retry_failed)  # --retry-failed implies --deliver, as its help says
    # a listing reads: an older store is refused, not upgraded, as by every command that only reads
    with app.open_store(settings, readonly=not sending, must_exist=True) as store:
        if sending:
            receivers = app.open_receivers(settings)
            try:
                if args.retry_failed:
                    retried, superseded = app.open_pager(settings, store, receivers).retry_failed()
                    print(
                        f"failed pages: {retried} sent again, {superseded} superseded"
                        + (" (the incident moved on since: pages --status cancelled says how)" if superseded else "")
                    )
                report = _deliver(settings, store, receivers, retry=True)
            # Ctrl-C, or the reader gone before they went out (``--retry-failed``'s line): the pages that wait,
            # as a stopped replay says them
            except (KeyboardInterrupt, BrokenPipeError):
                _say_undelivered(settings, store, "pages")
                raise
            finally:
                for receiver in receivers.values():
                    receiver.close()
            _say_gone(settings, store, "pages", report)
            # each receiver's count, as replay --page says them: their sum counted every page once per receiver
            print(f"delivered: {_sent(report, receivers)}, {report.retrying} to retry, {report.failed} failed")
        incident_id = incident_of(store, args.incident) if args.incident else None
        if args.incident and incident_id is None:  # "no pages" would read as "nobody was paged for it"
            print(f"accesswatch: no incident or alert {args.incident!r}", file=sys.stderr)
            return EXIT_FAILED
        query = OutboxQuery(
            statuses=[NotificationStatus(s) for s in args.status] if args.status else None,
            incident_id=incident_id,
            limit=max(1, min(args.limit, 100_000)),
        )
        rows = store.notifications(query) if args.limit else []  # --limit 0: the counts alone, as deadletters
        if incident_id is None:
            counts = store.outbox_counts()
        else:  # the incident's own pages: the whole outbox's counts would read as its
            every = store.notifications(OutboxQuery(incident_id=incident_id, limit=100_000))
            counts = Counter(row.status for row in every)
        rests = store.receiver_rests()  # kept by whichever process delivered: run's Retry-After too
        incident = store.get_incident(incident_id) if incident_id is not None else None
        actions = store.actions(incident_id) if incident_id is not None else []
    now = datetime.now(UTC)
    if args.format == "jsonl":
        for row in rows:
            sys.stdout.write(json_line(_record(row, rests, now)).decode())
        return EXIT_OK
    if incident is not None:
        _context(incident, actions, settings, sys.stdout)
    zone = settings.organisation.tz
    if args.limit:  # --limit 0: the counts alone ("no pages" would read as "nobody was paged")
        _table(rows, rests, sys.stdout, zone, now)
    summary = ", ".join(f"{counts.get(status, 0)} {status.value}" for status in NotificationStatus)
    sys.stdout.write(f"in all{f' for {incident_id}' if incident_id else ''}: {summary}\n")
    _resting(rests, now, sys.stdout, zone)
    return EXIT_OK


def _context(incident: Incident, actions: list[TriageAction], settings: Settings, out: TextIO) -> None:
    """What the on-call person needs beside an incident's pages: whose activity it is, where it stands, and the
    latest triage note, whole, with who wrote it and when (``accesswatch incident ID`` has the whole log)."""
    assigned = f", assigned to {incident.assignee}" if incident.assignee else ""
    lines = [f"{incident.incident_id}: {actor(incident)}, {incident.severity.value}, {_status(incident)}{assigned}"]
    noted = next((action for action in reversed(actions) if action.note), None)
    if noted is None:
        lines.append(f"no triage note yet ({len(actions)} action{'s' if len(actions) != 1 else ''} in its log)")
    else:
        when = local_time(noted.at, settings.organisation.tz, seconds=True)
        lines.append(f"latest note, {noted.kind.value.replace('_', ' ')} by {noted.by} at {when}:")
        lines += [f"    {line}" for line in (noted.note or "").splitlines()]
    # the analysts' and the log's words escaped (``models.visible``): a note's ESC or CR must not repaint a line
    out.write("".join(visible(line) + "\n" for line in lines))


def _resting(rests: dict[str, ReceiverRest], now: datetime, out: TextIO, zone: tzinfo) -> None:
    """One line per receiver resting now: until when, whether it asked for it, and why."""
    for rest in sorted(rests.values(), key=lambda rest: rest.receiver):
        if rest.until <= now:
            continue  # its rest is over: it is tried with the next page (its failures still count)
        asked = rest.asked_until is not None and rest.asked_until >= rest.until
        why = "as it asked (Retry-After)" if asked else f"backing off after {rest.failures} failure(s) in a row"
        line = f"{rest.receiver} rests until {_when(rest.until, zone)}, {why}: {rest.error}"
        out.write(visible(line) + "\n")  # an error may quote the log's words


def _record(row: Notification, rests: dict[str, ReceiverRest], now: datetime) -> dict:
    """A page as one JSON object for scripts: the outbox fields, without the page's whole payload."""
    refreshed = row.page.refreshed
    return {
        "notification_id": row.notification_id,
        "status": row.status.value,
        "receiver": row.receiver,
        "route": row.route,
        "kind": row.kind.value,
        "escalation_level": row.page.escalation_level,
        "incident_id": row.incident_id,
        "actor_id": row.actor_id,
        "severity": row.page.severity.value,
        "attempts": row.attempts,
        "created_at": format_utc(row.created_at),
        "due_at": format_utc(row.due_at),
        "settled_at": format_utc(row.settled_at) if row.settled_at else None,
        # a waiting page: when it is really tried, after its receiver's rest
        "next_try_at": format_utc(next_try(row, rests)) if row.status is NotificationStatus.PENDING else None,
        "last_error": row.last_error,
        # taken for delivery until then: a process sending it, or one that died sending it
        "leased_until": format_utc(lease) if (lease := _lease(row, now)) else None,
        # sent again after it failed, as the incident was then (``notify.as_now``): when, and what it said before
        "refreshed": refreshed.model_dump(mode="json", exclude_none=True) if refreshed else None,
    }


def _table(
    rows: list[Notification], rests: dict[str, ReceiverRest], out: TextIO, zone: tzinfo, now: datetime | None = None
) -> None:
    """The pages, one a line; ``rests``: the receivers' rests, which hold back their waiting pages.

    Times in the organisation's zone, named in the header, each with its UTC offset: as ``incidents`` and
    ``incident`` give the activity and the triage log that the pages are about.
    """
    now = now or datetime.now(UTC)
    if not rows:
        out.write("no pages\n")
        return
    header = [f"created ({zone})", "status", "receiver", "page", "incident", "actor", "severity", "tries"]
    settled = f"next / done ({zone})"
    # the log's words escaped (``models.visible``) before the columns are measured: an actor id's ESC or CR is
    # shown, and an error may quote it
    shown = [
        [
            _when(row.created_at, zone),
            row.status.value,
            row.receiver,
            row.kind.value + (f"+{row.page.escalation_level}" if row.page.escalation_level else ""),
            row.incident_id,
            visible(row.actor_id),
            row.page.severity.value,
            str(row.attempts),
            _when(row.settled_at if row.settled_at else next_try(row, rests), zone),
        ]
        for row in rows
    ]
    # each column as wide as its longest value, as ``incidents`` sizes its own: a partner's long actor id must not
    # push the rest out of line
    widths = [max(len(name), *(len(cells[n]) for cells in shown)) for n, name in enumerate([*header, settled])]

    def line(cells: list[str]) -> str:
        sized = [c.rjust(w) if n == 7 else c.ljust(w) for n, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return " ".join(sized[:8]) + "  " + sized[8]

    out.write(f"{line([*header, settled])} last error\n")
    for row, cells in zip(rows, shown, strict=True):
        out.write(f"{line(cells)} {visible(_shown(row, now, zone))}\n")


def _lease(row: Notification, now: datetime) -> datetime | None:
    """Until when a waiting page is taken for delivery by some process, if its lease has not run out."""
    held = row.status is NotificationStatus.PENDING and row.leased_until is not None and row.leased_until > now
    return row.leased_until if held else None


def _shown(row: Notification, at: datetime, zone: tzinfo) -> str:
    """The last column: the error, and for a page sent again as its incident was then, what changed; for one
    held under a lease at ``at``, until when (else its next try, the lease's end, would be unexplained)."""
    lease = _lease(row, at)
    if lease is not None:
        held = (
            f"taken for delivery until {_when(lease, zone)} (a process is sending it, or stopped"
            " without giving it back: it is tried again then)"
        )
        return f"{held}; {_error_shown(row)}" if row.last_error else held
    refreshed = row.page.refreshed
    if refreshed is None:
        return _error_shown(row)
    incident = row.page.incident
    now = f"{_status(incident)}, {incident.severity.value}"
    if refreshed.acknowledged is not None:
        now += f" by {refreshed.acknowledged.by}"
    planned = f"{refreshed.planned_status.value.replace('_', ' ')}, {refreshed.planned_severity.value}"
    said = f"sent as the incident was at {_when(refreshed.at, zone)}: {now} (planned: {planned})"
    return f"{said}; {_error_shown(row)}" if row.last_error else said


def _error_shown(row: Notification) -> str:
    """The last error, marked as an earlier attempt's on a page that was sent in the end.

    The outbox keeps the last error after a success (why a page took several
    tries is worth knowing), but shown bare beside "sent" it reads as if the
    page had failed.
    """
    if not row.last_error:
        return ""
    if row.status is NotificationStatus.SENT:
        return f"earlier attempt: {row.last_error}"
    return row.last_error


def _when(moment: datetime, zone: tzinfo) -> str:
    return local_time(moment, zone, seconds=True)


# -- ack, resolve and reopen ------------------------------------------------------------------------
def _triage(args: argparse.Namespace) -> int:
    settings = args.settings_of(args)
    kind = TriageActionKind.FALSE_POSITIVE if getattr(args, "false_positive", False) else args.action_kind
    receivers = app.open_receivers(settings)
    try:
        with app.open_store(settings, must_exist=True) as store:
            return _act(args, kind, settings, store, receivers)
    finally:
        for receiver in receivers.values():
            receiver.close()


def _act(
    args: argparse.Namespace, kind: TriageActionKind, settings: Settings, store: Store, receivers: dict[str, Notifier]
) -> int:
    """Record the action, try to tell the receivers at once, and say what became of it."""
    incident_id = incident_of(store, args.id)
    before = store.get_incident(incident_id) if incident_id is not None else None
    if before is None:
        print(f"accesswatch: no incident or alert {args.id!r}", file=sys.stderr)
        return EXIT_FAILED
    # as the dashboard takes them (``dashboard.queries.triage``): without their surrounding blanks; blank is none
    # (a --by given blank is refused: it is no one, not the login name recorded without --by)
    by = args.by.strip() if args.by is not None else getpass.getuser()
    assignee = (getattr(args, "to", None) or "").strip() or None
    note = (args.note or "").strip() or None
    refusal = _refusal(kind, note, assignee, by)
    if refusal:
        print(f"accesswatch: {refusal}", file=sys.stderr)
        return EXIT_FAILED
    try:
        action = TriageAction(
            incident_id=before.incident_id, kind=kind, by=by, at=datetime.now(UTC), note=note, assignee=assignee
        )
    except ValidationError as exc:  # a note past the triage log's 4,000 characters: one line, not a traceback
        print(f"accesswatch: {_too_long(exc)}", file=sys.stderr)
        return EXIT_FAILED
    try:
        incident, planned = app.open_pager(settings, store, receivers).record_action(action)
    except TransitionRefused as refused:
        print(f"accesswatch: {refused}", file=sys.stderr)
        return EXIT_FAILED
    # once it is recorded: an action refused was recorded under no name
    for option, name in (("--by", by), ("--to", assignee)):
        warning = _not_a_user(settings, option, name)
        if warning:
            print(warning, file=sys.stderr)
    if before.repeats(kind):
        _say_repeat(incident, action)
        return EXIT_OK
    # one try now; a receiver that is down gets it from the running pipeline (or pages --deliver)
    try:
        report = app.open_dispatcher(settings, store, receivers).deliver_due(incident_id=incident.incident_id)
    except KeyboardInterrupt:  # the action is recorded: only its pages wait
        _say_undelivered(settings, store, args.command_name)
        raise
    _say_gone(settings, store, args.command_name, report)
    rows = {row.notification_id: row for row in store.notifications(OutboxQuery(incident_id=incident.incident_id))}
    told = [rows.get(row.notification_id, row) for row in planned]
    _say_done(incident, kind, told, store.receiver_rests(), settings.organisation.tz)
    return EXIT_OK


def _refusal(kind: TriageActionKind, note: str | None, assignee: str | None, by: str) -> str | None:
    """What the dashboard refuses the action for lacking, worded as it is there with the option to give; or None."""
    if not by:
        return "name the person acting (--by)"
    # a false-positive classification without its reason is the one auditors question
    if kind is TriageActionKind.FALSE_POSITIVE and note is None:
        return "say why this is a false positive (--note): the reason is kept for the auditors"
    if kind is TriageActionKind.ASSIGN and assignee is None:
        return "name the person to assign it to (--to)"
    if kind is TriageActionKind.NOTE and note is None:
        return "the note is empty (--note)"
    return None


_OPTIONS = {"by": "--by", "note": "--note", "assignee": "--to"}


def _too_long(exc: ValidationError) -> str:
    """``--note: at most 4,000 characters, and it has 4,210``: the first of the triage log's limits exceeded."""
    error = exc.errors()[0]
    field = str(error["loc"][0]) if error["loc"] else ""
    given = error.get("input")
    limit = (error.get("ctx") or {}).get("max_length")
    if limit is None or not isinstance(given, str):
        return f"{_OPTIONS.get(field, field)}: {error['msg']}"
    return f"{_OPTIONS.get(field, field)}: at most {limit:,} characters, and it has {len(given):,}"


def dashboard_users(settings: Settings) -> frozenset[str] | None:
    """The names the dashboard records its users under (``Identity.username``): the embedded users who sign in
    and the e-mail addresses OIDC gives a role; None when there are none, or when any address may sign in
    (``oidc.default_role``), so that no name can be said to be unknown."""
    dashboard = settings.dashboard
    if dashboard.oidc.enabled and dashboard.oidc.default_role is not None:
        return None
    names = {name for name, user in dashboard.users.items() if dashboard.demo_sign_in or not user.demo}
    if dashboard.oidc.enabled:
        names |= set(dashboard.oidc.roles)  # lower case, as the identity is
    return frozenset(names) or None


def _not_a_user(settings: Settings, option: str, name: str | None) -> str | None:
    """One line of warning when ``name`` is not a dashboard user's: the triage log would then know the person
    under two names (``oncall-sam`` here, ``sam`` on the dashboard).  Not an error: an on-call person with no
    dashboard account must still be able to act."""
    users = dashboard_users(settings)
    # as written: the dashboard records "Sam" as "Sam" and an OIDC address in lower case, so "sam" is another name
    if users is None or name is None or name in users:
        return None
    known = ", ".join(sorted(users)[:5]) + (", ..." if len(users) > 5 else "")
    return visible(
        f"accesswatch: warning: {option} {name!r} is not a dashboard user ({known}): recorded as given; the"
        " triage log names a person alike only under their dashboard user name"
    )


def _say_repeat(incident: Incident, action: TriageAction) -> None:
    kept = " (the note is kept in the triage log)" if action.note else ""
    print(f"{incident.incident_id} is already {_status(incident)}: nothing changed, nobody told again{kept}")


def _say_done(
    incident: Incident,
    kind: TriageActionKind,
    told: list[Notification],
    rests: dict[str, ReceiverRest],
    zone: tzinfo,
) -> None:
    who = visible(incident.actor_id)
    now = _status(incident)
    if kind is TriageActionKind.NOTE:  # the incident stands as it was: the note is what happened
        print(f"{incident.incident_id} ({who}, {incident.severity.value}, {now}): note added to its triage log")
    elif kind is TriageActionKind.ASSIGN:
        print(
            f"{incident.incident_id} ({who}, {incident.severity.value}) is now assigned to"
            f" {visible(incident.assignee or '')} ({now})"
        )
    else:
        print(f"{incident.incident_id} ({who}, {incident.severity.value}) is now {now}")
    for row in told:
        line = f"  {row.receiver}: {row.kind.value} {row.status.value}"
        if row.status is NotificationStatus.PENDING:
            error = row.last_error or (rests[row.receiver].error if row.receiver in rests else None)
            line += f", next try {_when(next_try(row, rests), zone)}" + (f" ({error})" if error else "")
        elif row.status is NotificationStatus.FAILED:
            line += f": {row.last_error}"
        print(visible(line))  # an error may quote the log's words
    if told:
        return
    if kind in (TriageActionKind.ASSIGN, TriageActionKind.NOTE):
        what = "an assignment" if kind is TriageActionKind.ASSIGN else "a note"
        print(f"  receivers are not told of {what}: 'accesswatch incident ID' shows it")
    elif kind not in ACTION_PAGES:
        print(f"  receivers are not told of a {kind.value}")
    else:
        print("  no receiver to tell (none was paged for it, none can express this, or they were told it was closed)")


def _status(incident: Incident) -> str:
    return incident.status.value.replace("_", " ")  # "false positive", as a person writes it


def incident_of(store: Store, given: str) -> str | None:
    """The id of the incident ``given`` names, itself or through one of its alerts; None if neither is stored."""
    if store.get_incident(given) is not None:
        return given
    alert = store.get_alert(given)
    return alert.incident_id if alert is not None else None
