"""``accesswatch incidents``: the stored incidents, most urgent first, as the dashboard's queue lists them;
``accesswatch incident ID``: one of them with its alerts, the incidents related to it and its triage log, for
whoever takes over (the command a page's "Look:" line gives).

An incident is what ``ack``, ``resolve``, ``reopen``, ``assign``, ``note`` and ``pages --incident``
take and what the queue counts; ``alerts`` lists the findings inside them.
The order is the store's queue order (``IncidentQuery.order = "severity"``:
most severe, then newest flagged activity first, ``Incident.newest_flagged``),
so the command and the dashboard agree.  The triage log is the hand-over between
shifts: who acknowledged, assigned or closed an incident, when, and why (the
notes, in full, as the dashboard's Triage log tab shows them).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, tzinfo
from typing import TextIO

from accesswatch import app, arguments, paging_cli
from models.alert import Alert, AlertStatus, Severity
from models.config import Settings
from models.flagged import Flagged, flagged_of
from models.incident import CLOSED, Incident, TriageAction
from models.json_lines import json_line
from models.local_time import local_range, local_time
from models.visible import visible
from notify.base import actor
from store.base import IncidentQuery, Store
from store.related import related_incidents

EXIT_OK, EXIT_FAILED = 0, 1
# the statuses ``--status`` takes: each of the model's, and the two groups the triage state machine names
STATUS_CHOICES: dict[str, list[AlertStatus]] = {
    **{status.value: [status] for status in AlertStatus},
    "not_closed": [status for status in AlertStatus if status not in CLOSED],
    "closed": [status for status in AlertStatus if status in CLOSED],
}
PAGE = 100_000  # IncidentQuery's largest page
# the least of a summary a row shows, however narrow the terminal: shorter, it says too little (the row wraps then)
MIN_SUMMARY = 50
# on a terminal, the detectors column's room: five detectors' names took 60 characters, and with a day's span and an
# id left a 250-column terminal 65 for the summary; past it the names fit, the rest are counted (incident ID lists all)
DETECTORS_ROOM = 33  # "bulk_read,egress,sensitive_access"
# the purposes documented work lists, the rest counted: a day's invoices cite dozens, a reader checks a few
CITED_PURPOSES = 5


def add_commands(
    command: Callable[..., argparse.ArgumentParser], settings_of: Callable[[argparse.Namespace], Settings]
) -> None:
    """Add ``incidents``; ``settings_of`` loads the configuration from the parsed arguments."""
    incidents = command(
        "incidents",
        _incidents,
        "Print the stored incidents (what ack, resolve, reopen, assign, note and pages --incident take), most severe"
        " and newest first, as the dashboard's queue lists them.",
    )
    incidents.set_defaults(settings_of=settings_of)
    incidents.add_argument(
        "--status",
        action="append",
        choices=list(STATUS_CHOICES),
        metavar="S",
        help="only these (repeat for several; default: all): open (not yet acknowledged), acknowledged, resolved,"
        " false_positive; not_closed: open or acknowledged, the dashboard queue's default; closed: resolved or"
        " false_positive",
    )
    arguments.add_min_severity(incidents)
    incidents.add_argument("--actor", metavar="ID", help="only this actor's incidents")
    incidents.add_argument(
        "--format",
        choices=["table", "jsonl"],
        default="table",
        help="(default: table); jsonl: one incident a line, as the store holds it, with its triage log's latest"
        " action (last_action: kind, by, at, note, assignee; null if nobody acted yet)",
    )
    incident = command(
        "incident",
        _incident,
        "Print one incident and its triage log: who acknowledged, assigned, noted, resolved or reopened it, when,"
        " and the notes in full (the hand-over between shifts).",
    )
    incident.set_defaults(settings_of=settings_of)
    incident.add_argument("id", metavar="ID", help="the incident id (or the id of one of its alerts)")
    incident.add_argument(
        "--format",
        choices=["text", "jsonl"],
        default="text",
        help="(default: text); jsonl: one line, the incident as the store holds it with its triage log, oldest"
        " first (triage_log)",
    )


def _incidents(args: argparse.Namespace) -> int:
    settings = args.settings_of(args)
    statuses = sorted({s for name in args.status or () for s in STATUS_CHOICES[name]}, key=list(AlertStatus).index)
    query = IncidentQuery(
        min_severity=Severity(args.min_severity), statuses=statuses or None, actor_id=args.actor, limit=PAGE
    )
    out = sys.stdout
    with app.open_store(settings, readonly=True) as store:
        incidents = list(_all(store, query))
        if args.format == "jsonl":
            for incident in incidents:
                # a request per incident: a script reads who acted last and when without a command per id
                actions = store.actions(incident.incident_id)
                record = {**incident.model_dump(mode="json"), "last_action": _action(actions[-1]) if actions else None}
                out.write(json_line(record).decode())
            return EXIT_OK
        activity = flagged_of(store.get_alerts, incidents)
    table(incidents, settings.organisation.tz, out, terminal_width(out), activity)
    return EXIT_OK


def terminal_width(out: TextIO) -> int | None:
    """The width to fit the table to: ``COLUMNS`` when set (a pipe too: ``COLUMNS=80 accesswatch incidents |
    less``), else the terminal's when a person reads it there; None when piped (grep, a file, less -S: whole)."""
    columns = os.environ.get("COLUMNS", "").strip()
    if columns.isdecimal() and int(columns) > 0:
        return int(columns)
    return shutil.get_terminal_size().columns if out.isatty() else None


def _incident(args: argparse.Namespace) -> int:
    settings = args.settings_of(args)
    with app.open_store(settings, readonly=True) as store:
        incident_id = paging_cli.incident_of(store, args.id)
        incident = store.get_incident(incident_id) if incident_id is not None else None
        if incident is None:
            print(f"accesswatch: no incident or alert {args.id!r}", file=sys.stderr)
            return EXIT_FAILED
        actions = store.actions(incident.incident_id)
        alerts = sorted(store.get_alerts(incident.alert_ids), key=Alert.listing_order)
        related = related_incidents(store, incident)
        activity = flagged_of(store.get_alerts, [incident, *related])
        cited = documented_work(incident, store, settings.notify.page_documented)
    if args.format == "jsonl":
        record = {**incident.model_dump(mode="json"), "triage_log": [_action(action) for action in actions]}
        sys.stdout.write(json_line(record).decode())
        return EXIT_OK
    zone = settings.organisation.tz
    found = found_in(incident, alerts, related, activity, zone)
    hand_over(incident, actions, zone, sys.stdout, activity.get(incident.incident_id), cited, found)
    return EXIT_OK


def documented_work(incident: Incident, store: Store, page_documented: bool) -> str | None:
    """The line that says an incident is documented work alone (``Incident.documented``), the purposes it cites, and
    whether such work pages; None for any other.  Without it, the incident that paged nobody read as a gap."""
    if not incident.documented:
        return None
    # the headline finding's first: the incident's summary is its, and cites its purposes ('the accesses cite
    # month-end-close-2026-10'), which another finding's invoice numbers must not hide
    alerts = sorted(store.get_alerts(incident.alert_ids), key=lambda alert: alert.summary != incident.summary)
    purposes = list(dict.fromkeys(p for alert in alerts for p in alert.documented_purposes))
    more = len(purposes) - CITED_PURPOSES
    listed = ", ".join(purposes[:CITED_PURPOSES]) + (f" and {more} more" if more > 0 else "")
    cites = f" ({listed})" if purposes else ""
    paged = (
        "paged as any other (notify.page_documented = true)"
        if page_documented
        else "not paged (notify.page_documented = false): it waits in the queue for review"
    )
    return f"documented work: every finding cites a purpose{cites}; documented work alone is {paged}"


def _action(action: TriageAction) -> dict[str, object]:
    return action.model_dump(mode="json", exclude={"incident_id"})


def hand_over(
    incident: Incident,
    actions: list[TriageAction],
    zone: tzinfo,
    out: TextIO,
    flagged: Flagged | None = None,
    documented: str | None = None,
    found: list[str] | None = None,
) -> None:
    """The incident in a few lines, then its triage log, oldest first: when (local time with its offset), who,
    what, and each note whole under its action, a line of the note a line (the terminal wraps a long one).
    ``documented``: the line that says it is documented work (``documented_work``), after its summary; ``found``:
    its alerts and related incidents (``found_in``), before the log.

    The note is why someone acted: the one thing the next shift cannot find anywhere else, so it is never cut."""
    assigned = f", assigned to {incident.assignee}" if incident.assignee else ""
    start, end = (flagged.start, flagged.end) if flagged else (incident.window_start, incident.window_end)
    span = local_span(start, end, zone)
    window = local_span(incident.window_start, incident.window_end, zone)  # a day's finding: the whole local day
    lines = [
        f"{incident.incident_id}: {incident.severity.value}, {incident.status.value.replace('_', ' ')}{assigned}",
        f"actor: {actor(incident)}",
        f"flagged activity: {span}" + (f" (its window {window})" if window != span else ""),
        f"alerts: {len(incident.alert_ids)} ({', '.join(incident.detectors)})",
        f"summary: {incident.summary}",
        *([documented] if documented else []),
        *(found or []),
    ]
    if not actions:
        lines.append("triage log: nobody has acted on it yet")
    else:
        lines.append(f"triage log ({len(actions)}, oldest first):")
        who = max(len(visible(action.by)) for action in actions)
        for action in actions:
            did = action.kind.value.replace("_", " ") + (f" to {action.assignee}" if action.assignee else "")
            lines.append(f"  {local_time(action.at, zone, seconds=True)}  {visible(action.by):<{who}}  {did}")
            lines += [f"      {note}" for note in (action.note or "").splitlines()]
    # the log's and the analysts' words escaped (``models.visible``): a note's ESC or CR must not repaint a line
    out.write("".join(visible(line) + "\n" for line in lines))


def found_in(
    incident: Incident, alerts: list[Alert], related: list[Incident], activity: dict[str, Flagged], zone: tzinfo
) -> list[str]:
    """The incident's alerts, each with its id (what ``ack`` and the pages name), detector, severity, window in the
    organisation's local time, revision and summary whole; then the incidents the dashboard's Related tab lists
    (``store.related``), newest flagged first: a page's "Look:" line leads here, and its reader wants each finding,
    not the count the hand-over's head gives, and whether the actor did this before."""
    lines = [f"alerts ({len(alerts)}, by window):"]
    for alert in alerts:
        grew = f", revision {alert.revision}" if alert.revision > 1 else ""
        span = local_span(alert.window_start, alert.window_end, zone)
        lines.append(f"  {alert.alert_id}  {alert.detector}, {alert.severity.value}, {span}{grew}")
        lines.append(f"      {alert.summary}")
    missing = len(incident.alert_ids) - len(alerts)
    if missing:  # retention deleted them, or the store lost them: the count above says how many it had
        lines.append(f"  {missing} more not in the store")
    if not related:
        whose = "this actor's, or its organisation's within a day" if incident.actor_organization else "this actor's"
        lines.append(f"related incidents: none ({whose})")
    else:
        lines.append(f"related incidents ({len(related)}, newest first):")
        for other in related:
            start, end = _activity(other, activity)
            told = f"{other.actor_id}, {other.severity.value}, {other.status.value.replace('_', ' ')}"
            lines.append(f"  {other.incident_id}  {told}, {local_span(start, end, zone)}")
            lines.append(f"      {other.summary}")
    return lines


def _all(store: Store, query: IncidentQuery) -> Iterator[Incident]:
    """Every incident under the query, in its order: a page at a time past ``PAGE``."""
    offset = 0
    while True:
        page = store.query_incidents(query.model_copy(update={"offset": offset}))
        yield from page
        if len(page) < query.limit:
            return
        offset += len(page)


def table(
    incidents: list[Incident],
    zone: tzinfo,
    out: TextIO,
    width: int | None = None,
    activity: dict[str, Flagged] | None = None,
) -> None:
    """One incident a line, and their counts; ``width``: the terminal's, to fit them to (None: whole).

    On a terminal the summary has the room the other columns leave (the detectors column held to
    ``DETECTORS_ROOM``); one too narrow for a row with ``MIN_SUMMARY`` of it gets three lines an incident
    (``_stacked``).

    The activity column is the flagged activity (``activity``, by incident id), as the dashboard's queue leads
    with it: the incident's window may be a whole local day around an hour's theft."""
    if not incidents:
        out.write("no incidents\n")
        return
    activity = activity or {}
    header = ["incident id", "status", "severity", "risk", "actor", f"flagged activity ({zone})", "alerts", "detectors"]
    # the log's words escaped (``models.visible``) before the columns are measured: an id's ESC or CR is shown
    rows = [
        [
            incident.incident_id,
            incident.status.value,
            incident.severity.value,
            f"{incident.risk_score:.0f}",
            visible(incident.actor_id),
            local_span(*_activity(incident, activity), zone),
            str(len(incident.alert_ids)),
            visible(",".join(incident.detectors) if width is None else detectors(incident.detectors, DETECTORS_ROOM)),
        ]
        for incident in incidents
    ]
    # each column as wide as its longest value: a partner's long actor id must not push the rest out of line
    widths = [max(len(header[n]), *(len(row[n]) for row in rows)) for n in range(len(header))]
    right = {3, 6}  # figures

    def line(cells: list[str]) -> str:
        return " ".join(
            c.rjust(w) if n in right else c.ljust(w) for n, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    if width is not None and len(line(header)) + 2 + MIN_SUMMARY > width:
        _stacked(incidents, rows, zone, out, width)
        return
    out.write(f"{line(header)}  summary\n")
    for incident, row in zip(incidents, rows, strict=True):
        start = line(row)
        out.write(f"{start}  {cut(visible(incident.summary), width - len(start) - 2 if width else None)}\n")
    out.write(counts(incidents) + "\n")


def _stacked(incidents: list[Incident], rows: list[list[str]], zone: tzinfo, out: TextIO, width: int) -> None:
    """The table for a terminal too narrow for its row (80 columns: the id, the span and the detectors alone take
    more): three lines an incident, each cut to ``width``, so that none wraps.

    The first line the id, status, severity, risk and actor, in line from one incident to the next (an id is
    what ``ack`` and ``incident`` take, so it starts a line); the second the flagged activity, the alerts and
    the detectors; the third the summary, cut at a word."""
    widths = [max(len(row[n]) for row in rows) for n in range(5)]
    out.write(fit(f"incidents, most severe and newest first (flagged activity in {zone}):", width) + "\n")
    for incident, row in zip(incidents, rows, strict=True):
        figures = [row[0].ljust(widths[0]), row[1].ljust(widths[1]), row[2].ljust(widths[2])]
        figures.append("risk " + row[3].rjust(widths[3]))
        alerts = f"{row[6]} alert{'s' if row[6] != '1' else ''}"
        out.write(fit(" ".join([*figures, row[4]]), width) + "\n")
        out.write(fit(f"    {row[5]}  {alerts}  {row[7]}", width) + "\n")
        out.write(f"    {cut(visible(incident.summary), width - 4, least=1)}\n")
    counted = counts(incidents)  # by severity; by status: a line each when they do not fit in one, never cut
    out.write("".join(part + "\n" for part in ([counted] if len(counted) <= width else counted.split("; "))))


def detectors(names: list[str], room: int) -> str:
    """The detectors' names in ``room`` characters, those past it counted: ``bulk_read,egress +3`` (one name at
    least, whatever the room)."""
    for shown in range(len(names), 0, -1):
        text = ",".join(names[:shown]) + (f" +{len(names) - shown}" if shown < len(names) else "")
        if len(text) <= room or shown == 1:
            return text
    return ""


def fit(text: str, width: int) -> str:
    """``text`` in ``width`` characters: cut with an ellipsis when longer."""
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def _activity(incident: Incident, activity: dict[str, Flagged]) -> tuple[datetime, datetime]:
    found = activity.get(incident.incident_id)
    return (found.start, found.end) if found is not None else (incident.window_start, incident.window_end)


def local_span(start: datetime, end: datetime, zone: tzinfo) -> str:
    """The span in the organisation's local time with its UTC offset, as README shows times, in a terminal's
    characters: ``2026-11-02 09:00-10:00 +08:00``; ``2026-11-02 00:00 to 2026-11-03 00:00 +08:00`` across days."""
    return local_range(start, end, zone, to=" to ", dash="-")


def cut(summary: str, room: int | None, least: int = MIN_SUMMARY) -> str:
    """The summary in ``room`` characters (at least ``least``), ended at a word with an ellipsis; whole
    when it fits, or with no room given (a pipe: ``grep`` must find the whole sentence)."""
    if room is None:
        return summary
    room = max(room, least)
    if len(summary) <= room:
        return summary
    kept = summary[: room - 1]
    space = kept.rfind(" ")
    if space >= room * 2 // 3:  # at a word, unless that throws away a third of the room
        kept = kept[:space]
    return kept.rstrip(" ,;:") + "…"


def counts(incidents: list[Incident]) -> str:
    """``22 incidents: 3 critical, 2 high, 1 medium, 16 low; 21 open, 1 resolved``, as the queue counts them."""
    severities = Counter(incident.severity for incident in incidents)
    statuses = Counter(incident.status for incident in incidents)
    by_severity = ", ".join(f"{severities[s]} {s.value}" for s in sorted(Severity, key=lambda s: -s.rank))
    by_status = ", ".join(f"{statuses[s]} {s.value}" for s in AlertStatus if statuses[s])
    noun = "incident" if len(incidents) == 1 else "incidents"
    return f"{len(incidents)} {noun}: {by_severity}; {by_status}"
