"""Alerts queue: open incidents, most severe and newest first, refreshing by itself."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

import pandas as pd
import streamlit as st

from dashboard import queries, ui
from dashboard.explain import detector_title
from detectors.registry import DETECTORS
from models.alert import AlertStatus, Severity
from models.event import ActorKind
from store.base import IncidentQuery

ctx = ui.context()
st.title("Alerts queue")

STATUS_CHOICES = {
    "open or acknowledged": queries.OPEN_STATUSES,
    "open (not yet acknowledged)": [AlertStatus.OPEN],
    "acknowledged": [AlertStatus.ACKNOWLEDGED],
    "resolved": [AlertStatus.RESOLVED],
    "false positive": [AlertStatus.FALSE_POSITIVE],
    "any": None,
}

row1 = st.columns([1, 1.3, 1.2, 1, 1.3, 1])
# set through the session, not index=: the hidden incidents' line sets it too (Streamlit warns of a widget given both)
st.session_state.setdefault("q-severity", ctx.settings.dashboard.queue_min_severity.value)
min_severity = row1[0].selectbox("Severity at least", [s.value for s in Severity], key="q-severity")
status = row1[1].selectbox("Status", list(STATUS_CHOICES), key="q-status")
detector = row1[2].selectbox(
    "Detector",
    ["any", *sorted(DETECTORS, key=detector_title)],
    key="q-detector",
    format_func=lambda name: name if name == "any" else detector_title(name),
)
kind = row1[3].selectbox("Actor kind", ["any", *[k.value for k in ActorKind]], key="q-kind")
organization = row1[4].selectbox("Partner organisation", ["any", *queries.organizations(ctx.store)], key="q-org")
with row1[5]:
    period = ui.period_choice("Time", key="q-period")
Order = Literal["severity", "newest", "oldest"]  # IncidentQuery.order
ORDERS: dict[Order, str] = {"severity": "Most severe first", "newest": "Newest first", "oldest": "Oldest first"}
order = st.radio(
    "Order",
    list(ORDERS),
    horizontal=True,
    key="q-order",
    label_visibility="collapsed",
    format_func=lambda o: ORDERS[o],
)
page_size = ctx.settings.dashboard.page_size


def build_query(offset: int) -> IncidentQuery:
    newest = ui.newest_event(ctx) if period else None
    return IncidentQuery(
        min_severity=Severity(min_severity),
        statuses=STATUS_CHOICES[status],
        detector=None if detector == "any" else detector,
        actor_kind=None if kind == "any" else kind,
        organization=None if organization == "any" else organization,
        since=newest - period if newest and period else None,
        order=order,
        limit=page_size,
        offset=offset,
    )


def open_incident(incident_id: str) -> None:
    st.switch_page(ui.HERE / "views" / "incident.py", query_params={"incident": incident_id})


def show_every_severity() -> None:
    st.session_state["q-severity"] = Severity.LOW.value


def hidden_line(hidden: dict[str, int]) -> str:
    """'84 low incidents hidden: show them', or '3 medium and 84 low incidents hidden: show them'."""
    counts = [f"{count:,} {severity}" for severity, count in hidden.items()]
    listed = counts[0] if len(counts) == 1 else ", ".join(counts[:-1]) + f" and {counts[-1]}"
    noun = "incident" if sum(hidden.values()) == 1 else "incidents"
    return f"{listed} {noun} hidden: show them"


@st.fragment(run_every=timedelta(seconds=ctx.settings.dashboard.refresh))
def live_queue() -> None:
    page_number = st.session_state.get("q-page", 1)
    view = queries.queue(ctx.store, build_query((page_number - 1) * page_size))
    counts = st.columns(5)
    for column, (severity, count) in zip(counts, view.by_severity.items(), strict=False):
        column.metric(severity.capitalize(), f"{count:,}")
    counts[4].metric("In the queue", f"{view.total:,}")
    # the severity filter's default leaves the many low findings out of the morning's review: say how many, and
    # bring them back in one click (the filter above does the same, in three)
    if view.hidden and st.button(
        hidden_line(view.hidden),
        type="tertiary",
        icon=":material/visibility:",
        key="q-show",
        on_click=show_every_severity,
    ):
        st.rerun()  # the whole page: the filter above is outside this fragment
    if not view.incidents:
        st.success("Nothing in the queue under these filters.")
        return
    # the purposes a documented finding's sentence quotes, masked for a masked viewer as its evidence's
    summaries = queries.summaries_shown(ctx.store, view.incidents, ctx.masker)
    # what a hand-over reads first (how bad, where it stands, who has it, whom, when) fits a 1440-pixel screen beside
    # the sidebar; the long summary comes last, where it may run off to the right
    rows = pd.DataFrame(
        [
            {
                "severity": i.severity.value,
                "status": ui.STATUS_LABEL[i.status.value],
                "assignee": i.assignee or "",
                "actor": ui.actor_label(i),
                # when the flagged activity was: the window may be the whole day a day's finding merged in
                "flagged activity": queries.local_range(
                    view.flagged[i.incident_id].start, view.flagged[i.incident_id].end, ctx.zone
                ),
                "risk": round(i.risk_score),
                "detectors": ", ".join(map(detector_title, i.detectors)),
                "summary": summaries[i.incident_id],
            }
            for i in view.incidents
        ]
    )
    # a click on any cell opens its row's incident, as the tick box at the row's start does
    chosen = ui.clickable_table(
        rows,
        "q-table",
        column_config={
            "severity": st.column_config.TextColumn("severity", width="small"),
            "status": st.column_config.TextColumn("status", width=110),  # "acknowledged", "false positive"
            "assignee": st.column_config.TextColumn("assignee", width=110),
            "actor": st.column_config.TextColumn("actor", width="medium"),
            "flagged activity": st.column_config.TextColumn("flagged activity", width=260),  # a span of two days
            "risk": st.column_config.ProgressColumn("risk", min_value=0, max_value=100, format="%d", width="small"),
            "detectors": st.column_config.TextColumn("detectors", width="medium"),
            "summary": st.column_config.TextColumn("summary", width="large"),
        },
    )
    if chosen is not None:
        open_incident(view.incidents[chosen].incident_id)
    pages = max(1, -(-view.total // page_size))
    left, middle, right = st.columns([2, 1, 1])
    choice = left.selectbox(
        "Open incident",
        [i.incident_id for i in view.incidents],
        format_func=lambda iid: next(
            f"{i.severity.value} · {i.actor_id} · {ui.shortened(summaries[i.incident_id], 90)}"
            for i in view.incidents
            if i.incident_id == iid
        ),
        key="q-open-choice",
    )
    if middle.button("Open this incident", type="primary", key="q-open"):
        open_incident(choice)
    right.number_input(f"Page (of {pages})", min_value=1, max_value=pages, key="q-page")
    st.caption(
        f"Refreshes every {ctx.settings.dashboard.refresh:.0f} s. Click a row to open its incident. *Flagged activity*:"
        " when the activity the detectors flagged at the incident's worst severity took place (event time); newest"
        " is the one whose flagged activity ended last."
    )


live_queue()
