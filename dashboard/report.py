"""The incident report a privacy officer files within the 48-hour deadline, as Markdown and HTML.

Built from one ``Report`` value so the two formats always say the same.
The list of affected customers goes in only when the reader may see it
(auditors), and the page that offers the download records that export.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo

from dashboard.markdown import markdown_text
from dashboard.queries import (
    SOURCE_KINDS,
    Impact,
    IncidentView,
    Ingested,
    Retained,
    event_time,
    inert_in_spreadsheets,
    local_time,
)
from detectors.classify import Classifier
from detectors.new_access import is_external
from models.config import Settings
from models.incident import Incident

MAX_LISTED_CUSTOMERS = 10_000
# Each value the report quotes from the log, the configuration or a person (an id, a name, a note) goes
# through one of these: ``markdown_text`` in the Markdown, unchanged in the HTML (escaped there line by line).
Quote = Callable[[str], str]


@dataclass(frozen=True, slots=True)
class Report:
    view: IncidentView
    impact: Impact
    settings: Settings
    prepared_by: str
    prepared_at: datetime
    customer_ids: list[str] | None  # None: not included (the reader may not see the list, or gave no reason)
    retained: Retained | None = None  # what retention left of the window, where it deleted some of its events
    may_list: bool = False  # the reader may see the list: left out for want of a reason, not of the right

    @property
    def incident(self) -> Incident:
        return self.view.incident


@dataclass(frozen=True, slots=True)
class Table:
    """A section that is a table: the column names, then the rows."""

    header: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)  # lines under the table: what its figures do not say alone


def _local(moment: datetime | None, zone: tzinfo) -> str:
    """With the UTC offset, not the zone's abbreviation: "CST" is China's and America's Central time both."""
    if moment is None:
        return "unknown"
    return local_time(moment, zone)


def _deadline_text(view: IncidentView, now: datetime, zone: tzinfo) -> str:
    """When the deadline falls and where the incident stands against it; closing it stops the clock."""
    if view.deadline is None:
        return "unknown (the incident predates the dashboard's record of when it was raised)"
    due = _local(view.deadline, zone)
    left = view.seconds_before_deadline(now)
    if view.is_open and left is not None:
        return f"{due} ({left / 3600:.0f} h left)" if left >= 0 else f"{due}: passed {-left / 3600:.0f} h ago"
    closed = view.incident.status.value.replace("_", " ")
    if left is None:
        return f"{due}; {closed}, no longer running"
    return f"{due}; {closed} {abs(left) / 3600:.0f} h {'before' if left >= 0 else 'after'} it"


def _as_is(value: str) -> str:
    return value


def _sections(report: Report, quote: Quote) -> list[tuple[str, list[str] | Table]]:
    """The report as titled sections: a list of lines, or a table; ``quote`` for each value it quotes."""
    incident, impact, settings = report.incident, report.impact, report.settings
    zone = settings.organisation.tz
    view = report.view
    deadline_text = _deadline_text(view, report.prepared_at, zone)
    q = quote
    who = [
        f"Actor: {q(incident.actor_id)} ({incident.actor_kind.value})",
        f"Role: {q(incident.actor_role or 'unknown')}; department: {q(incident.actor_department or 'unknown')}",
    ]
    if incident.actor_organization:
        who.append(f"Organisation: {q(incident.actor_organization)} (partner company)")
    what = [q(incident.summary), ""]
    what += [f"- {q(alert.detector)} ({alert.severity.value}): {q(alert.summary)}" for alert in view.alerts]
    flagged, inside = view.flagged, impact.in_flagged
    whole = " in the whole window" if inside is not None else ""
    if impact.egress_first is not None:
        egress = (
            f"First and last egress event{whole}: {_local(impact.egress_first, zone)} to"
            f" {_local(impact.egress_last, zone)}"
        )
    else:
        egress = f"First and last egress event{whole}: none (nothing exported, downloaded, printed or shared)"
    kept = " (of the events retention kept)" if report.retained is not None else ""
    when = [
        f"Flagged activity: {_local(flagged.start, zone)} to {_local(flagged.end, zone)} (at {flagged.severity.value},"
        " the incident's worst)",
        f"Activity: {_local(incident.window_start, zone)} to {_local(incident.window_end, zone)} (the incident's"
        " window, every finding merged in)",
    ]
    if inside is not None:  # the flagged activity's own first and last event, then the window's around it
        when += [
            f"First and last event read in the flagged hours: {_local(inside.first, zone)} to"
            f" {_local(inside.last, zone)}{kept}",
            f"First and last event read in the whole window: {_local(impact.first, zone)} to"
            f" {_local(impact.last, zone)}{kept}",
        ]
    else:
        when.append(f"First and last event read: {_local(impact.first, zone)} to {_local(impact.last, zone)}{kept}")
    if inside is not None and inside.egress_first is not None:
        when.append(
            f"First and last egress event in the flagged hours: {_local(inside.egress_first, zone)} to"
            f" {_local(inside.egress_last, zone)}"
        )
    when += [
        egress,
        f"Detected (raised) at: {_local(view.raised_at, zone)} (when accesswatch first stored the incident, on its"
        " own clock: the deadline counts from it; the times above are the events' own)",
        f"Reporting deadline: {deadline_text}",
        f"Status: {incident.status.value}; severity {incident.severity.value}; risk {incident.risk_score:.0f}/100",
    ]
    scope = [
        *_retention_lines(report.retained, zone),
        _events_line(impact),
        *_customer_lines(impact, listed=report.customer_ids is not None),
        *_routine_lines(impact, zone, listed=report.customer_ids is not None),
        ("Resources (the whole window): " if impact.in_flagged is not None else "Resources: ")
        + ", ".join(f"{q(name)} ({records:,})" for name, records in impact.resources.most_common(8)),
    ]
    triage = Table(
        ["When", "Who", "Action", "Note"],
        [
            [
                _local(a.at, zone),
                q(a.by),
                a.kind.value + (f" to {q(a.assignee)}" if a.assignee else ""),
                q(a.note or ""),
            ]
            for a in view.actions
        ],
    )
    sources = _sources(impact, settings, quote, kept)
    sections: list[tuple[str, list[str] | Table]] = [
        ("What happened", what),
        ("When", when),
        ("Who", who),
        ("Where from", sources if sources.rows else ["No event was read (all were refused)."]),
        ("Which data", _data_table(impact, settings, quote, kept)),
        ("How much, and whose", scope),
        ("Triage", triage if triage.rows else ["No triage action yet."]),
    ]
    if report.customer_ids is not None:
        sections.append(("Affected customers (confidential)", _customer_list(report, quote)))
        if impact.in_flagged is not None:
            sections.append((ROUTINE_HEADING, _routine_list(report, quote)))
    elif report.may_list:  # an auditor who prepared it without a reason: told how to have it, not who may
        sections.append(
            (
                "Affected customers",
                ["Not included: prepare the report with a reason to include the list; its export is recorded."],
            )
        )
    else:
        sections.append(("Affected customers", ["The list is available to auditors; its export is recorded."]))
    return sections + _to_write(report, quote)


def _events_line(impact: Impact) -> str:
    """The events, records and exports: the flagged hours' first where the window is wider than them."""
    inside = impact.in_flagged
    whole = (
        f"{impact.events:,} ({_not_served(impact)}); records read: {impact.records:,};"
        f" exported, downloaded, printed or shared: {impact.egress_records:,}"
    )
    if inside is None:
        return f"Events: {whole}"
    return (
        f"Events: {inside.events:,} in the flagged hours ({_not_served(inside)}); records read:"
        f" {inside.records:,}; exported, downloaded, printed or shared: {inside.egress_records:,}."
        f" In the whole window: {impact.events:,} events, {impact.records:,} records read,"
        f" {impact.egress_records:,} exported, downloaded, printed or shared"
    )


def _not_served(impact: Impact) -> str:
    """The accesses that read nothing: refused, and (where any) failed."""
    return f"{impact.denied:,} refused" + (f", {impact.failed:,} failed" if impact.failed else "")


def _customer_lines(impact: Impact, listed: bool) -> list[str]:
    """How many customers: the ids logged, exported or only read, and what the log does not say.

    Where the window is wider than the flagged hours, the figures are those hours': the rest of the window is
    the actor's routine work (``_routine_lines``), and counting its customers would have the privacy officer
    notify people the breach did not touch.  The contract lets an event log a sample of its records'
    customers: the ids logged are then the known part only, and the report says so with the figures, so
    that the list is not notified as if it were whole (``listed``: the report holds the list, below).
    """
    counted = impact.in_flagged or impact
    where = " in the flagged hours" if impact.in_flagged is not None else ""
    logged, exported = len(counted.customers), counted.exported_customers
    lines = [
        f"Customers affected: {logged:,} distinct customer ids logged{where}"
        + ("" if impact.complete else " (at least: the count stopped at the reading limit)")
        + f": {exported:,} in egress events (exported, downloaded, printed or shared), {logged - exported:,} only read"
    ]
    if counted.sampled_events:
        lines.append(
            f"{counted.sampled_events:,} events listed fewer customer ids than records: up to"
            f" {counted.sampled_records:,} records' customers may be affected, of which only the ids logged are known."
            f" {logged:,} ids logged of up to {logged + counted.unlisted:,} customers in all (up to"
            f" {counted.unlisted:,} more not listed): "
            + ("the list below is not complete." if listed else "the ids logged are not all of them.")
        )
    else:
        lines.append("Every event listed a customer id for each of its records.")
    return lines


ROUTINE_HEADING = "Routine activity in the same window (confidential; not counted as affected)"


def _routine_lines(impact: Impact, zone: tzinfo, listed: bool) -> list[str]:
    """The rest of a window wider than the flagged hours, apart: it raised no finding, so its customers are not
    counted above; the figures say what it held, for the privacy officer to judge."""
    inside, hours = impact.in_flagged, impact.flagged
    if inside is None or hours is None:
        return []
    flagged_customers = len(inside.customers)
    return [
        f"Not counted above, the rest of the window ({impact.events - inside.events:,} events,"
        f" {impact.records - inside.records:,} records, {len(impact.customers) - flagged_customers:,} customer ids"
        " seen only there) raised no finding: the detectors judged it the actor's usual work, outside the flagged"
        f" hours ({_local(hours[0], zone)} to {_local(hours[1], zone)})."
        + (
            f' Its customers are listed apart, under "{ROUTINE_HEADING}"; the CSV of customers marks each id\'s hours.'
            if listed
            else ""
        )
    ]


def _retention_lines(retained: Retained | None, zone: tzinfo) -> list[str]:
    """What retention deleted of the window, and the figures that outlive it.

    The hourly figures are counted at ingestion and kept: they are the window's events, records and exports as
    they were, where the figures below them can only count the events still stored.  The customer ids logged
    went with the events; the alerts kept how many they saw, each of an hour or a day: a lower bound.
    """
    if retained is None:
        return []
    when = " and ".join(
        f"on {p.at.astimezone(zone).date().isoformat()} (events stamped before {_local(p.horizon, zone)})"
        for p in retained.purges
    )
    later = retained.later_purges
    # purges that found the window already past their predecessors' horizons: not named as deleting its events
    since = (
        (" The later purge whose horizon" if later == 1 else f" The {later:,} later purges whose horizons")
        + " passed the window's start deleted of it at most what an earlier one kept (an alert's evidence, the newest"
        " event) or a replay stored after it."
        if later
        else ""
    )
    lines = [
        f"{retained.deleted:,} events of this window were deleted by retention {when}; the figures below count the"
        f" {retained.kept:,} kept (the evidence the alerts cite is kept).{since}"
        if when
        else f"{retained.deleted:,} events of this window counted at ingestion are no longer stored (the store keeps"
        f" no record of its purges); the figures below count the {retained.kept:,} kept."
    ]
    window, inside = retained.window, retained.flagged
    ingested = (
        f"As ingested (the hourly figures, which retention keeps), the window held {window.events:,} events"
        f" ({window.denied:,} refused), " + _ingested_records(window)
    )
    if inside is not None:
        ingested += f"; the flagged hours {inside.events:,} events ({inside.denied:,} refused), " + _ingested_records(
            inside
        )
    if not retained.whole_hours:
        ingested += " (whole UTC hours: they may run past the window's edges)"
    lines.append(ingested + ".")
    gone = "Which customers the deleted events logged went with them: the customer ids below are the kept events' only"
    if retained.alert_customers is not None:
        # an alert counts the customers of one hour or day (its strongest or latest finding's), not of the whole
        # activity, and the days' counts cannot be added (a customer read on two days is in both): the largest is
        # a lower bound, said as one, where it read as the whole (808 of a week's 2,847, tester T19)
        gone += (
            f"; at least {retained.alert_customers:,} distinct customer ids were in the activity flagged (the largest"
            " count an alert recorded, of one hour or day of it: no alert counts the customers of the whole activity)"
        )
    lines.append(gone + ".")
    return lines


def _ingested_records(figures: Ingested) -> str:
    """The hourly figures count the records of served accesses only, as the detectors and the tables below do.

    Hours a store counted before that (``store.dash_served``) whose events retention deleted may still hold
    the records a refused or failed access asked for: which ones is gone with the events, so it is said.
    """
    if not figures.records_include_refused:
        return f"{figures.records:,} records read, {figures.egress_records:,} exported, downloaded, printed or shared"
    return (
        f"{figures.records:,} records read or asked for, {figures.egress_records:,} of them exported, downloaded,"
        " printed or shared or asked to be (refused or failed accesses' records may be included: these hours were"
        " counted before the hourly figures left them out, and the events that would tell them apart are deleted)"
    )


def _customer_list(report: Report, quote: Quote) -> list[str]:
    """The ids, exported ones first: the part of the list a report holds (the CSV holds them all).

    The flagged hours' ids only, where the window is wider: the rest are the routine activity's
    (``_routine_list``), under their own heading.
    """
    ids = report.customer_ids or []
    traces = report.impact.customers
    if report.impact.in_flagged is not None:
        traces = report.impact.in_flagged.customers
        ids = [c for c in ids if c in traces]
    listed = ids[:MAX_LISTED_CUSTOMERS]
    exported = [c for c in listed if c in traces and traces[c].exported]
    read = [c for c in listed if not (c in traces and traces[c].exported)]
    lines = [
        f"Exported, downloaded, printed or shared ({len(exported):,}): " + (_listed(exported, quote) or "none"),
        f"Only read ({len(read):,}): " + (_listed(read, quote) or "none"),
    ]
    if len(ids) > len(listed):
        lines.append(f"... and {len(ids) - len(listed):,} more (in the CSV of customers)")
    lines.append(
        f"The CSV of customers ({quote(download_name(report, '-customers.csv'))}) lists each id with whether it was"
        " exported or only read, its first and last time, its events, and its hours (flagged, or rest: the routine"
        " activity)."
    )
    if (report.impact.in_flagged or report.impact).sampled_events:
        lines.append("These are the ids logged only: the events above listed fewer ids than records.")
    if report.retained is not None:
        lines.append("These are the ids of the events retention kept only: those of the deleted events are gone.")
    return lines


def _routine_list(report: Report, quote: Quote) -> list[str]:
    """The ids seen only outside the flagged hours: kept apart from the affected, with why."""
    inside = report.impact.in_flagged
    rest = [c for c in report.customer_ids or [] if inside is None or c not in inside.customers]
    listed = rest[:MAX_LISTED_CUSTOMERS]
    lines = [
        "The actor's routine activity in the same window, outside the flagged hours: it raised no finding (the"
        " detectors judged it the actor's usual work), so these customers are not counted as affected and are not"
        " in the list above. They are here for the privacy officer to judge, not to notify as they stand.",
        f"Seen only in the routine activity ({len(rest):,}): " + (_listed(listed, quote) or "none"),
    ]
    if len(rest) > len(listed):
        lines.append(f"... and {len(rest) - len(listed):,} more (in the CSV of customers, hours: rest)")
    return lines


def _listed(values: list[str], quote: Quote) -> str:
    """``values`` joined by commas, each in double quotes (doubled inside, as in a CSV) when one of them holds a
    comma: "c,1", "c2" is two ids, where c,1, c2 would read as three."""
    if not any("," in value for value in values):
        return ", ".join(map(quote, values))
    return ", ".join('"' + quote(value.replace('"', '""')) + '"' for value in values)


MAX_SOURCES = 20  # values of each kind in the report; the rest as one row


ROUTINE_SOURCES = 3  # values of a kind seen only in the routine activity listed one by one; more as one row


def _sources(impact: Impact, settings: Settings, quote: Quote, kept: str) -> Table:
    """Where the events came from: each source address (marked when outside the organisation's networks), user
    agent and session, with its events; those of the flagged hours apart from the routine rest of a wider
    window.  ``kept``: said of the counts' columns where retention deleted some of the window's events."""
    networks = settings.organisation.internal_networks

    def shown(kind: str, value: str) -> str:
        text = quote(value) if value else "(not given)"
        return text + " (external)" if kind == SOURCE_KINDS[0] and value and is_external(value, networks) else text

    if impact.in_flagged is not None:
        return _split_sources(impact, impact.in_flagged, shown, kept)
    rows = []
    for kind in SOURCE_KINDS:
        seen = [(value, events) for (k, value), events in impact.sources.most_common() if k == kind]
        for value, events in seen[:MAX_SOURCES]:
            egress = impact.egress_sources.get((kind, value), 0)
            rows.append([kind, shown(kind, value), f"{events:,}", f"{egress:,}"])
        if len(seen) > MAX_SOURCES:
            rest = seen[MAX_SOURCES:]
            more = sum(impact.egress_sources.get((kind, value), 0) for value, _ in rest)
            rows.append([kind, f"({len(rest):,} more)", f"{sum(e for _, e in rest):,}", f"{more:,}"])
    return Table(["Seen as", "Value", f"Events{kept}", f"Egress events{kept}"], rows)


def _split_sources(impact: Impact, inside: Impact, shown: Callable[[str, str], str], kept: str) -> Table:
    """The sources of the flagged hours with their events there and in the rest of the window; those seen only
    in the rest (the actor's routine) after them, marked, and as one row when many: a routine sync's sessions
    are a new one every few minutes."""
    rows = []
    for kind in SOURCE_KINDS:
        seen = [(value, events) for (k, value), events in impact.sources.most_common() if k == kind]
        flagged = [(value, events) for value, events in seen if inside.sources.get((kind, value))]
        for value, events in flagged[:MAX_SOURCES]:
            own = inside.sources[kind, value]
            egress = inside.egress_sources.get((kind, value), 0)
            rows.append([kind, shown(kind, value), f"{own:,}", f"{egress:,}", f"{events - own:,}"])
        if len(flagged) > MAX_SOURCES:
            rest = flagged[MAX_SOURCES:]
            own = sum(inside.sources[kind, value] for value, _ in rest)
            egress = sum(inside.egress_sources.get((kind, value), 0) for value, _ in rest)
            events = sum(e for _, e in rest)
            rows.append([kind, f"({len(rest):,} more)", f"{own:,}", f"{egress:,}", f"{events - own:,}"])
        routine = [(value, events) for value, events in seen if not inside.sources.get((kind, value))]
        if len(routine) <= ROUTINE_SOURCES:
            rows += [[kind, shown(kind, value) + " (routine only)", "0", "0", f"{e:,}"] for value, e in routine]
        else:
            events = sum(e for _, e in routine)
            rows.append([kind, f"({len(routine):,} seen in the routine activity only)", "0", "0", f"{events:,}"])
    header = ["Seen as", "Value", f"Events in the flagged hours{kept}", f"Egress events in them{kept}"]
    return Table([*header, f"Events in the rest of the window{kept}"], rows)


def _data_table(impact: Impact, settings: Settings, quote: Quote, kept: str) -> Table:
    """Each class with the fields read in it (today's classification of the field names), then the total.

    An access counts its records in each class it touched (a passport number and a name: government id and
    identity), so the rows add up to more than were read: the total row, and the line under the table, count
    each access once.  ``kept``: said of the counts where retention deleted some of the window's events.
    """
    classifier = Classifier(settings.classification)
    fields: dict[str, list[str]] = {}
    for name in sorted(impact.fields):
        fields.setdefault(classifier.class_of(name), []).append(name)
    classes = [name for name, _ in impact.records_by_class.most_common()]
    classes += sorted(set(fields) - set(classes))  # classified so since the events were stored
    rows = []
    for name in classes:
        records = impact.records_by_class.get(name)
        rows.append(
            [
                quote(name),
                quote(classifier.sensitivity.get(name, settings.classification.unclassified_sensitivity)),
                f"{records:,}" if records is not None else "(classified so since the events were stored)",
                _listed(fields.get(name, []), quote) or "(none named)",
            ]
        )
    several = (
        "One access can touch several data classes and counts its records in each: the rows above can add up to"
        " more than the total."
    )
    inside = impact.in_flagged
    if inside is None:
        rows.append([TOTAL_ROW, "", f"{impact.records:,}", ""])
        notes = [f"In all{kept}: {_accesses(impact)}. {several}"]
        return Table(["Data class", "Sensitivity", f"Records{kept}", "Fields read"], rows, notes)
    for row, name in zip(rows, classes, strict=True):  # the flagged hours' records beside the window's
        row.insert(2, f"{inside.records_by_class.get(name, 0):,}")
    rows.append([TOTAL_ROW, "", f"{inside.records:,}", f"{impact.records:,}", ""])
    notes = [
        f"In all{kept}: in the flagged hours, {_accesses(inside)}; in the whole window, {_accesses(impact)}. {several}"
    ]
    return Table(
        [
            "Data class",
            "Sensitivity",
            f"Records in the flagged hours{kept}",
            f"Records in the window{kept}",
            "Fields read",
        ],
        rows,
        notes,
    )


TOTAL_ROW = "All classes (each access once)"


def _accesses(impact: Impact) -> str:
    """The accesses that read data and their records: a refused or failed one read none, and is in no class's row."""
    read = impact.events - impact.denied - impact.failed
    text = f"{read:,} {'access' if read == 1 else 'accesses'} read {impact.records:,} records"
    return text + (f" ({_not_served(impact)} read none)" if impact.denied or impact.failed else "")


_YOURS = "To be written by the privacy officer: "


def _to_write(report: Report, quote: Quote) -> list[tuple[str, list[str] | Table]]:
    """What GDPR art. 33(3) and PIPL art. 57 ask beyond the figures: the privacy officer's to write.

    Headings that say so, so that the report reads as a draft to complete, not as a finished filing.
    """
    zone = report.settings.organisation.tz
    notes = [
        f"- {_local(a.at, zone)} {quote(a.by)} ({a.kind.value}): {quote(a.note)}" for a in report.view.actions if a.note
    ]
    measures = [
        _YOURS + "what was done and what is proposed to stop the breach and lessen its harm, and what the"
        " customers can do themselves (GDPR art. 33(3)(d); PIPL art. 57)."
    ]
    if notes:
        measures += ["The triage notes so far, to quote where they apply:", *notes]
    return [
        (
            "Nature and cause of the breach",
            [
                _YOURS + "how the data left and why it could (GDPR art. 33(3)(a); PIPL art. 57). The figures above"
                " are the log's; the cause is not in it."
            ],
        ),
        (
            "Likely consequences",
            [_YOURS + "the harm the customers may suffer from these data classes (GDPR art. 33(3)(c); PIPL art. 57)."],
        ),
        ("Measures taken or proposed", measures),
        (
            "Contact point",
            [
                _YOURS + "the name and contact details of the privacy officer or other contact (GDPR art. 33(3)(b);"
                " PIPL art. 57)."
            ],
        ),
    ]


CSV_COLUMNS = ("customer_id", "access", "first", "last", "events", "hours")


def customers_csv(report: Report) -> str:
    """The report's customers as CSV, one row an id: exported or only read, first and last time, events.

    Every id of ``customer_ids`` (the report lists at most ``MAX_LISTED_CUSTOMERS``); an id a
    spreadsheet would run as a formula starts with an apostrophe.
    """
    zone = report.settings.organisation.tz
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    inside = report.impact.in_flagged
    # the flagged hours' ids first: the routine rest after them, marked so in ``hours``
    ordered = sorted(report.customer_ids or [], key=lambda c: inside is not None and c not in inside.customers)
    for customer in ordered:
        trace = report.impact.customers[customer]
        writer.writerow(
            [
                inert_in_spreadsheets(customer),
                "exported" if trace.exported else "read",
                event_time(trace.first, zone),
                event_time(trace.last, zone),
                trace.events,
                # in the flagged hours, or only in the rest of a wider window; "window" where they are the same
                "window" if report.impact.in_flagged is None else "flagged" if trace.flagged else "rest",
            ]
        )
    return out.getvalue()


def download_name(report: Report, suffix: str) -> str:
    """A download's file name: the incident and the local day the report was prepared, so that the drafts of
    several incidents, or of one on several days, do not overwrite one another in a downloads folder."""
    day = report.prepared_at.astimezone(report.settings.organisation.tz).date().isoformat()
    return f"{report.incident.incident_id}-{day}{suffix}"


def _header(report: Report, quote: Quote) -> list[str]:
    zone = report.settings.organisation.tz
    return [
        quote(report.incident.incident_id),  # after "Incident report: "
        f"Prepared by {quote(report.prepared_by)} at {_local(report.prepared_at, zone)} with accesswatch;"
        f" times are local to {zone}, with their offset from UTC. A draft: the privacy officer writes"
        " its last four sections before filing it",
    ]


def markdown(report: Report) -> str:
    title, prepared = _header(report, markdown_text)
    out = [f"# Incident report: {title}", "", f"_{prepared}_", ""]
    for heading, body in _sections(report, markdown_text):
        out += [f"## {heading}", ""]
        if isinstance(body, Table):
            out.append("| " + " | ".join(body.header) + " |")
            out.append("|" + "---|" * len(body.header))
            out += ["| " + " | ".join(row) + " |" for row in body.rows]
            if body.notes:
                out += ["", *_markdown_lines(body.notes)]
        else:
            out += _markdown_lines(body)
        out.append("")
    return "\n".join(out)


def _markdown_lines(lines: list[str]) -> list[str]:
    """Each line a paragraph of its own, as in the HTML, and the ``- `` lines one list.

    Markdown joins adjacent lines into one paragraph: "Activity: ..." and "Detected at: ..."
    would read as one sentence.
    """
    out: list[str] = []
    for line in (line for line in lines if line):
        if out and not (line.startswith("- ") and out[-1].startswith("- ")):
            out.append("")
        out.append(line)
    return out


_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; color: #1f2933; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; border-bottom: 1px solid #d9e2ec; padding-bottom: .2rem; }
table { border-collapse: collapse; } td, th { border: 1px solid #d9e2ec; padding: .25rem .6rem; text-align: left; }
.prepared { color: #52606d; font-style: italic; } .confidential { color: #b42318; }
"""


def html_document(report: Report) -> str:
    title, prepared = _header(report, _as_is)
    e = html.escape
    out = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Incident report: {e(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>Incident report: {e(title)}</h1>",
        f'<p class="prepared">{e(prepared)}</p>',
    ]
    for heading, body in _sections(report, _as_is):
        css = ' class="confidential"' if "confidential" in heading else ""
        out.append(f"<h2{css}>{e(heading)}</h2>")
        if isinstance(body, Table):
            out.append("<table><thead><tr>" + "".join(f"<th>{e(c)}</th>" for c in body.header) + "</tr></thead><tbody>")
            out += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in body.rows]
            out.append("</tbody></table>")
            out += [f"<p>{e(line)}</p>" for line in body.notes]
        else:
            items = [line for line in body if line]
            bullets = [line[2:] for line in items if line.startswith("- ")]
            for line in items:
                if not line.startswith("- "):
                    out.append(f"<p>{e(line)}</p>")
            if bullets:
                out.append("<ul>" + "".join(f"<li>{e(b)}</li>" for b in bullets) + "</ul>")
    out.append("</body></html>")
    return "\n".join(out)
