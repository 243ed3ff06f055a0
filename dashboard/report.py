"""The incident report a privacy officer files within the 48-hour deadline, as Markdown and HTML.

Built from one ``Report`` value so the two formats always say the same.
The list of affected customers goes in only when the reader may see it
(auditors), and the page that offers the download records that export.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime, tzinfo

from dashboard.queries import Impact, IncidentView, local_time
from models.config import Settings
from models.incident import Incident

MAX_LISTED_CUSTOMERS = 10_000


@dataclass(frozen=True, slots=True)
class Report:
    view: IncidentView
    impact: Impact
    settings: Settings
    prepared_by: str
    prepared_at: datetime
    customer_ids: list[str] | None  # None: not included (the reader may not see the list)

    @property
    def incident(self) -> Incident:
        return self.view.incident


@dataclass(frozen=True, slots=True)
class Table:
    """A section that is a table: the column names, then the rows."""

    header: list[str]
    rows: list[list[str]]


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


def _sections(report: Report) -> list[tuple[str, list[str] | Table]]:
    """The report as titled sections: a list of lines, or a table."""
    incident, impact, settings = report.incident, report.impact, report.settings
    zone = settings.organisation.tz
    view = report.view
    deadline_text = _deadline_text(view, report.prepared_at, zone)
    sensitivity = {name: c.sensitivity for name, c in settings.classification.classes.items()}
    who = [
        f"Actor: {incident.actor_id} ({incident.actor_kind.value})",
        f"Role: {incident.actor_role or 'unknown'}; department: {incident.actor_department or 'unknown'}",
    ]
    if incident.actor_organization:
        who.append(f"Organisation: {incident.actor_organization} (partner company)")
    what = [incident.summary, ""]
    what += [f"- {alert.detector} ({alert.severity.value}): {alert.summary}" for alert in view.alerts]
    when = [
        f"Activity: {_local(incident.window_start, zone)} to {_local(incident.window_end, zone)}",
        f"First and last event read: {_local(impact.first, zone)} to {_local(impact.last, zone)}",
        f"Detected (raised) at: {_local(view.raised_at, zone)}",
        f"Reporting deadline: {deadline_text}",
        f"Status: {incident.status.value}; severity {incident.severity.value}; risk {incident.risk_score:.0f}/100",
    ]
    data = Table(
        ["Data class", "Sensitivity", "Records"],
        [
            [name, sensitivity.get(name, settings.classification.unclassified_sensitivity), f"{records:,}"]
            for name, records in impact.records_by_class.most_common()
        ],
    )
    scope = [
        f"Events: {impact.events:,} ({impact.denied:,} refused); records read: {impact.records:,};"
        f" exported, downloaded, printed or shared: {impact.egress_records:,}",
        f"Customers affected: {len(impact.customers):,} distinct customer ids"
        + ("" if impact.complete else " (at least: the count stopped at the reading limit)"),
        "Resources: " + ", ".join(f"{name} ({records:,})" for name, records in impact.resources.most_common(8)),
    ]
    triage = Table(
        ["When", "Who", "Action", "Note"],
        [
            [_local(a.at, zone), a.by, a.kind.value + (f" to {a.assignee}" if a.assignee else ""), a.note or ""]
            for a in view.actions
        ],
    )
    sections: list[tuple[str, list[str] | Table]] = [
        ("What happened", what),
        ("When", when),
        ("Who", who),
        ("Which data", data),
        ("How much, and whose", scope),
        ("Triage", triage if triage.rows else ["No triage action yet."]),
    ]
    if report.customer_ids is not None:
        listed = report.customer_ids[:MAX_LISTED_CUSTOMERS]
        lines = [", ".join(listed)]
        if len(report.customer_ids) > len(listed):
            lines.append(f"... and {len(report.customer_ids) - len(listed):,} more (export the events for all)")
        sections.append(("Affected customers (confidential)", lines))
    else:
        sections.append(("Affected customers", ["The list is available to auditors; its export is recorded."]))
    return sections


def _header(report: Report) -> list[str]:
    zone = report.settings.organisation.tz
    return [
        report.incident.incident_id,  # after "Incident report: "
        f"Prepared by {report.prepared_by} at {_local(report.prepared_at, zone)} with accesswatch;"
        f" times are local to {zone}, with their offset from UTC",
    ]


def markdown(report: Report) -> str:
    title, prepared = _header(report)
    out = [f"# Incident report: {title}", "", f"_{prepared}_", ""]
    for heading, body in _sections(report):
        out += [f"## {heading}", ""]
        if isinstance(body, Table):
            out.append("| " + " | ".join(body.header) + " |")
            out.append("|" + "---|" * len(body.header))
            out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in body.rows]
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
    title, prepared = _header(report)
    e = html.escape
    out = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Incident report: {e(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>Incident report: {e(title)}</h1>",
        f'<p class="prepared">{e(prepared)}</p>',
    ]
    for heading, body in _sections(report):
        css = ' class="confidential"' if "confidential" in heading else ""
        out.append(f"<h2{css}>{e(heading)}</h2>")
        if isinstance(body, Table):
            out.append("<table><thead><tr>" + "".join(f"<th>{e(c)}</th>" for c in body.header) + "</tr></thead><tbody>")
            out += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in body.rows]
            out.append("</tbody></table>")
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
