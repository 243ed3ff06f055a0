"""Incident: what happened in words, the evidence, the timeline, the events, related incidents, triage, report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import streamlit as st

from dashboard import charts, deleted, queries, report, ui
from dashboard.auth import Permission
from dashboard.explain import detector_title, explain
from dashboard.markdown import markdown_text
from models.alert import AlertStatus
from models.dashboard import DataAccessKind
from models.flagged import flagged as flagged_activity
from models.flagged import flagged_of
from models.incident import TriageActionKind
from store import unlisted
from store.base import EventQuery, IncidentQuery

ctx = ui.context()
PAGES = ui.HERE / "views"

incident_id = st.query_params.get("incident")
if not incident_id:
    st.title("Incident")
    st.caption("Open one from the queue, or pick one of the most urgent here.")
    urgent = ctx.store.query_incidents(IncidentQuery(statuses=queries.OPEN_STATUSES, limit=20))
    if not urgent:
        st.info("No open incident.")
        st.stop()
    summaries = queries.summaries_shown(ctx.store, urgent, ctx.masker)  # quoted purposes masked
    choice = st.selectbox(
        "Incident",
        [i.incident_id for i in urgent],
        key="i-pick",
        format_func=lambda iid: next(
            f"{i.severity.value} · {i.actor_id} · {ui.shortened(summaries[i.incident_id], 100)}"
            for i in urgent
            if i.incident_id == iid
        ),
    )
    if st.button("Open", type="primary", key="i-pick-open"):
        st.query_params["incident"] = choice
        st.rerun()
    st.stop()

view = queries.incident_view(ctx.store, ctx.settings, incident_id)
if view is None:
    st.error(f"No incident {markdown_text(incident_id)}.")  # the address's words, shown as typed, never as a link
    st.page_link(PAGES / "queue.py", label="Back to the queue", icon=":material/arrow_back:")
    st.stop()
# the purposes the summaries quote, masked for a masked viewer as the evidence's (the page's and the report's)
view = queries.view_shown(view, ctx.masker)
incident = view.incident
flagged = view.flagged
now = datetime.now(UTC)
deadline_hours = ctx.settings.dashboard.report_deadline / 3600

# -- header -------------------------------------------------------------------------------
st.page_link(PAGES / "queue.py", label="Queue", icon=":material/arrow_back:")
st.title(f"{markdown_text(incident.actor_id)}: {incident.severity.value} incident")
st.markdown(
    f"{ui.severity_label(incident.severity.value)} :gray-badge[{ui.STATUS_LABEL[incident.status.value]}]"
    f" {markdown_text(incident.summary)}"  # a purpose it quotes masked for a masked viewer (queries.view_shown)
)
st.caption(
    f"`{incident.incident_id}` · {markdown_text(ui.actor_label(incident))} · detectors:"
    f" {', '.join(map(detector_title, incident.detectors))}"
)
top = st.columns(4)
top[0].metric("Risk", f"{incident.risk_score:.0f} / 100")
top[1].metric("Assignee", incident.assignee or "nobody")
activity_from, activity_to = ui.local_span(ctx, flagged.start, flagged.end)
top[2].metric(
    "Flagged activity",
    activity_from,
    activity_to,
    delta_color="off",
    delta_arrow="off",
    help="When the activity flagged at the incident's worst severity took place (event time). The incident's"
    " window, every finding merged in, can be a whole day around it: it is given below.",
)
if view.deadline is not None:
    standing, detail = ui.deadline_standing(view, now)
    top[3].metric(
        "Reporting deadline",
        standing,
        f"{detail}detected {ui.local_time(ctx, view.raised_at)}",
        delta_color="off",
        delta_arrow="off",
        help=f"The {deadline_hours:.0f} hours count from when accesswatch detected the incident: when it first"
        " stored it, on this server's clock. The activity's own time (event time) can be long before: a replay"
        " of old events detects them when it runs.",
    )
st.caption(ui.flagged_caption(ctx, flagged, incident, view.raised_at))
st.page_link(
    PAGES / "actor.py",
    label=f"Profile of {incident.actor_id}",
    icon=":material/person_search:",
    query_params={"actor": incident.actor_id},
)


# -- triage ---------------------------------------------------------------------------------
def act(kind: TriageActionKind, note: str | None = None, assignee: str | None = None) -> None:
    try:
        queries.triage(ctx.store, ctx.settings, ctx.identity, incident.incident_id, kind, note, assignee)
    except queries.TriageRefused as exc:
        st.session_state["i-flash"] = ("error", str(exc))
    else:
        st.session_state["i-flash"] = (
            "success",
            f"Recorded: {kind.value.replace('_', ' ')} by {ctx.identity.username}.",
        )


flash = st.session_state.pop("i-flash", None)
if flash:
    (st.error if flash[0] == "error" else st.success)(flash[1])

if ctx.can(Permission.TRIAGE):
    with st.container(horizontal=True, vertical_alignment="center"):
        is_open = incident.status in (AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED)
        if incident.status is AlertStatus.OPEN:
            st.button("Acknowledge", type="primary", key="i-ack", on_click=act, args=(TriageActionKind.ACKNOWLEDGE,))
        if is_open:
            st.button("Resolve", key="i-resolve", on_click=act, args=(TriageActionKind.RESOLVE,))
        else:
            st.button("Reopen", key="i-reopen", on_click=act, args=(TriageActionKind.REOPEN,))
        with st.popover("Assign"):
            st.text_input("Assign to", key="i-assignee")
            st.button(
                "Assign",
                key="i-assign",
                on_click=lambda: act(TriageActionKind.ASSIGN, assignee=st.session_state.get("i-assignee")),
            )
        with st.popover("Add a note"):
            st.text_area("Note", key="i-note", placeholder="What you checked, whom you asked...")
            st.button(
                "Add note",
                key="i-add-note",
                on_click=lambda: act(TriageActionKind.NOTE, note=st.session_state.get("i-note")),
            )
        with st.popover("False positive"):
            st.text_area("Why is this no incident? (kept for the auditors)", key="i-fp-reason")
            st.button(
                "Mark false positive",
                key="i-fp",
                on_click=lambda: act(TriageActionKind.FALSE_POSITIVE, note=st.session_state.get("i-fp-reason")),
            )
else:
    st.caption("Read-only: your role does not triage incidents.")


# -- the timeline, in view: is this far from the usual? ------------------------------------------
def draw_timeline() -> None:
    newest = ui.newest_event(ctx)
    timeline = queries.timeline(ctx.store, ctx.settings, incident, newest)
    if timeline.behind is not None:  # the roll-ups alone would draw the incident as a flat zero
        st.info(
            ui.still_folding(
                timeline.behind,
                "this actor's records are counted from its events, and its peers' median is drawn once they are"
                if timeline.points
                else "this actor has too many events waiting to count them here: the chart is drawn once they are",
            )
        )
    elif folding:  # caught up since the page was drawn: the page again, which then no longer refreshes itself
        st.rerun()
    if timeline.points:
        st.altair_chart(
            charts.timeline(timeline.points, (incident.window_start, incident.window_end), flagged.spans, ctx.zone),
            width="stretch",
        )
        st.caption(
            "Records per hour, local time. Grey band: this actor's usual range for such an hour (10th to 90th"
            f" percentile over the previous {ctx.settings.dashboard.timeline_days} days); dashed: the median of its"
            " active peers (same kind, role and organisation); dark red: the hours the detectors flagged; light red:"
            " the rest of the incident's window."
        )


# while the hourly figures are behind, the chart and its notice redraw themselves as the fold goes on, as the queue
# does: the fold runs in the server's background, and reloading the page asks for the sign-in again (tester T18)
folding = queries.fold_behind(ctx.store) is not None
st.fragment(draw_timeline, run_every=timedelta(seconds=ctx.settings.dashboard.refresh) if folding else None)()

# -- the tabs ---------------------------------------------------------------------------------
explained, events_tab, related_tab, log_tab, report_tab = st.tabs(
    ["What happened", "Events", "Related", f"Triage log ({len(view.actions)})", "Report"]
)

with explained:
    st.caption(f"{len(view.alerts)} alert(s), strongest first, with what the detectors saw.")
    for alert in view.alerts:
        with st.container(border=True):
            own = flagged_activity([alert], alert.window_start, alert.window_end)
            when = f"flagged {queries.local_range(own.start, own.end, ctx.zone)}"
            if (own.start, own.end) != (alert.window_start, alert.window_end):  # grown over a wider window
                when += f" (its window {ui.short_range(ctx, alert.window_start, alert.window_end)})"
            st.markdown(
                f"**{ui.severity_label(alert.severity.value)} · {detector_title(alert.detector)}** · {when}"
                f" · score {alert.score:.1f}"
            )
            st.markdown(markdown_text(alert.summary))
            # record ids in the evidence masked as in the Events tab (an analyst sees customers' records masked)
            shown = alert.model_copy(update={"evidence": ctx.masker.evidence(alert.evidence)})
            for line in explain(shown):
                st.markdown(f"- {markdown_text(line)}")
            with st.expander("Evidence (the detector's figures)"):
                evidence = dict(shown.evidence)
                samples = evidence.pop("event_ids", [])
                st.json(evidence, expanded=False)
                if samples:
                    st.caption("Sample events: " + ", ".join(markdown_text(e) for e in samples[:10]))
                if samples and ctx.can(Permission.AUDIT_SEARCH):  # each opens in Audit search, by its id
                    for sample in samples[:10]:
                        st.page_link(
                            PAGES / "search.py",
                            label=f"Look up {markdown_text(sample)}",
                            icon=":material/manage_search:",
                            query_params={"event": sample},
                        )

with events_tab:
    page_size = ctx.settings.dashboard.page_size
    # the flagged hours first: in a day's window they are a few events among the day's routine ones
    spans = {"flagged": (flagged.start, flagged.end), "window": (incident.window_start, incident.window_end)}
    if spans["flagged"] == spans["window"]:
        del spans["window"]
    counts = {name: queries.events_in(ctx.store, incident.actor_id, *span) for name, span in spans.items()}

    def span_label(name: str) -> str:
        what = f"the flagged hours ({flagged.severity.value})" if name == "flagged" else "the whole window"
        return f"{what}, {ui.short_range(ctx, *spans[name])}: {ui.counted_events(counts[name])}"

    in_view = "flagged"
    if len(spans) > 1:
        in_view = st.radio(
            "Events of", list(spans), format_func=span_label, horizontal=True, key=f"i-span-{incident.incident_id}"
        )
    # the incident's figures (its summary, the alerts') count what was logged; the events listed, what retention kept
    gone = deleted.deleted_in(
        ctx.store,
        EventQuery(actor_id=incident.actor_id, since=spans[in_view][0], until=spans[in_view][1]),
        now,
        ctx.settings.retention.events_days,
    )
    if gone is not None:
        st.info(deleted.note(gone, ctx.zone))
    stack_key = f"i-cursors-{incident.incident_id}-{in_view}"
    cursors: list[str | None] = st.session_state.setdefault(stack_key, [None])
    page = queries.incident_events(ctx.store, incident, page_size, cursors[-1], spans[in_view])
    rows = [queries.event_row(item, ctx.masker, ctx.zone) for item in page.items]
    ui.record_view(  # before the rows are shown, as a search is recorded before its answer
        ctx,
        {"view": "incident events", "incident_id": incident.incident_id, "events_of": in_view, "page": len(cursors)},
        queries.customers_on_screen(page.items, ctx.masker),
        len(rows),
        content=tuple(item.event.event_id for item in page.items),
        incident_id=incident.incident_id,
    )
    separated = {name: st.column_config.NumberColumn(name, format="localized") for name in queries.EVENT_COUNTS}
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", column_config=separated)
    nav = st.columns([1, 1, 4])
    if nav[0].button("Newer", key="i-newer", disabled=len(cursors) == 1):
        cursors.pop()
        st.rerun()
    if nav[1].button("Older", key="i-older", disabled=page.next_cursor is None):
        cursors.append(page.next_cursor)
        st.rerun()
    nav[2].caption(
        ui.events_in_view(len(cursors), page_size, len(rows), counts[in_view], page.next_cursor is None)
        + " · customer ids "
        + ("in clear" if ctx.masker.unmasked else "masked")
    )

with related_tab:
    related = queries.related_incidents(ctx.store, incident)
    if not related:
        st.caption("No other incident of this actor or, for a partner, of its organisation.")
    activities = flagged_of(ctx.store.get_alerts, related)  # when each was flagged, as the queue shows it
    summaries = queries.summaries_shown(ctx.store, related, ctx.masker)
    for other in related:
        activity = activities[other.incident_id]
        st.page_link(
            PAGES / "incident.py",
            label=f"{ui.severity_label(other.severity.value)} · {other.actor_id} · "
            f"{queries.local_range(activity.start, activity.end, ctx.zone)} · {ui.STATUS_LABEL[other.status.value]} · "
            f"{markdown_text(ui.shortened(summaries[other.incident_id], 110))}",
            query_params={"incident": other.incident_id},
        )

with log_tab:
    if not view.actions:
        st.caption("Nobody has acted on this incident yet.")
    # a block an action, as `accesswatch incident ID` prints the log: when, who, what, then the note whole. The note
    # (why someone acted: what the next shift needs) is plain text, never Markdown, for whoever typed it may have
    # typed anything: st.text keeps its lines and breaks a long unbroken string (a URL) at the block's width, where
    # a table's Markdown cell ran the lines together and scrolled the URL sideways (tester T18)
    for action in view.actions:
        with st.container(border=True):
            assigned = f" to {markdown_text(action.assignee)}" if action.assignee else ""
            st.markdown(
                f"{ui.local_time(ctx, action.at, seconds=True)} · **{markdown_text(action.by)}** ·"
                f" {action.kind.value.replace('_', ' ')}{assigned}"
            )
            if action.note:
                st.text(action.note, width="stretch")

with report_tab:
    st.markdown(
        "The report a privacy officer files within the deadline: what happened and when, who, from where, which"
        " data, how many customers, and the triage so far; a draft whose last sections (the cause, the likely"
        " consequences, the measures, the contact point) the privacy officer writes."
    )
    include_reason = ""
    if ctx.can(Permission.CUSTOMER_LIST):
        include_reason = st.text_input(
            "To include the list of affected customers (in the report and as CSV), give the reason (recorded)",
            key="r-reason",
            placeholder="e.g. breach notification to the regulator, case 2026-31",
        )
    if st.button("Prepare the report", type="primary", key="r-make"):
        impact = queries.impact(ctx.store, incident, flagged=(flagged.start, flagged.end))
        customers = None
        if include_reason.strip() and ctx.can(Permission.CUSTOMER_LIST):
            customers = sorted(impact.customers)
            # one record for the list in the report and its CSV: both are offered from this one preparation
            queries.record_access(
                ctx.store,
                ctx.identity,
                DataAccessKind.CUSTOMER_LIST,
                include_reason,
                {
                    "incident_id": incident.incident_id,
                    "formats": ["report", "csv"],
                    "customer_ids": "in clear",
                    # what the list is made of, so a customer past its first ids can be found again (store.unlisted)
                    **unlisted.report_list(
                        incident.actor_id, incident.window_start, incident.window_end, impact.events, impact.complete
                    ),
                },
                len(customers),
                incident.incident_id,
                in_clear=customers,
            )
        # where retention deleted some of the window's events, the figures counted at ingestion say what it held
        retained = queries.retained(ctx.store, incident, view.alerts, impact, (flagged.start, flagged.end))
        made = report.Report(
            view,
            impact,
            ctx.settings,
            ctx.identity.username,
            datetime.now(UTC),
            customers,
            retained,
            may_list=ctx.can(Permission.CUSTOMER_LIST),
        )
        customers_csv = report.customers_csv(made) if customers is not None else None
        st.session_state["r-made"] = (
            (incident.incident_id, ctx.masker.unmasked),
            report.markdown(made),
            report.html_document(made),
            customers_csv,
            report.download_name(made, ""),
        )
    prepared = st.session_state.get("r-made")
    # a report made in clear is not shown once the viewer masked again: prepared again, it is masked
    if prepared and prepared[0] == (incident.incident_id, ctx.masker.unmasked):
        _, report_markdown, html_text, customers_csv, name = prepared
        downloads = st.columns(3)
        downloads[0].download_button("Download Markdown", report_markdown, f"{name}.md", "text/markdown", key="r-md")
        downloads[1].download_button("Download HTML", html_text, f"{name}.html", "text/html", key="r-html")
        if customers_csv is not None:
            downloads[2].download_button(
                "Download customers CSV", customers_csv, f"{name}-customers.csv", "text/csv", key="r-csv"
            )
        with st.container(border=True):
            st.markdown(report_markdown)
