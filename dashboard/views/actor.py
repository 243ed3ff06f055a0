"""Actor profile: usual hours, data classes and resources touched, volume against peers, past incidents."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from dashboard import charts, queries, ui
from dashboard.markdown import markdown_text
from models.dashboard import Usage

ctx = ui.context()
PAGES = ui.HERE / "views"

st.title("Actor profile")
actor_id = st.query_params.get("actor", "")
typed = st.text_input("Actor id", value=actor_id, key="a-id", placeholder="e.g. emp-0042, ptn-agency-7, svc-billing")
if typed.strip() and typed.strip() != actor_id:
    st.query_params["actor"] = typed.strip()
    st.rerun()
if not typed.strip():
    st.caption("Give an actor id, or open one from an incident.")
    st.stop()

until = ui.newest_event(ctx) or datetime.now(UTC)
view = queries.actor_view(ctx.store, ctx.settings, typed.strip(), until)
if view is None:
    behind = queries.fold_behind(ctx.store)
    if behind is None:
        st.warning(f"No events of {markdown_text(typed.strip())} in the store.")
    else:  # its events may be among those not folded yet
        st.info(ui.still_folding(behind, f"{markdown_text(typed.strip())} is not in them yet: look again in a moment"))
    st.stop()
profile = view.profile
if view.behind is not None:
    st.info(ui.still_folding(view.behind, "this profile and its charts count only those, and will fill in"))
days = ctx.settings.dashboard.timeline_days

facts = st.columns(4)
facts[0].metric("Kind", profile.kind)
facts[1].metric("Role", profile.role or "—")
facts[2].metric("Department / organisation", profile.organization or profile.department or "—")
facts[3].metric("Incidents", len(view.incidents))
st.caption(
    f"{profile.name or profile.actor_id} · first seen {ui.local_time(ctx, profile.first_seen)} · last seen"
    f" {ui.local_time(ctx, profile.last_seen)} · figures over the {days} days to {ui.local_time(ctx, until)}"
)

left, right = st.columns(2)
with left:
    st.subheader("Usual hours")
    st.altair_chart(charts.heatmap(view.heatmap), width="stretch")
    st.caption("Events per week in each local hour of the week: when this actor usually works.")
with right:
    st.subheader("Volume against peers")
    st.altair_chart(charts.volume_against_peers(view.volume, ctx.zone), width="stretch")
    st.caption("Records per local day; the peers' line adds up the hourly medians of the active peers.")


def usage_table(title: str, items: list[Usage]) -> None:
    st.markdown(f"**{title}**")
    if not items:
        st.caption("None in this span.")
        return
    st.dataframe(
        pd.DataFrame([{"name": u.name, "records": u.records, "events": u.events} for u in items]),
        hide_index=True,
        width="stretch",
    )


cols = st.columns(3)
with cols[0]:
    usage_table("Data classes", profile.data_classes)
with cols[1]:
    usage_table("Resources", profile.resources)
with cols[2]:
    usage_table("Actions", profile.actions)

st.subheader("Past incidents")
if not view.incidents:
    st.caption("None.")
summaries = queries.summaries_shown(ctx.store, view.incidents, ctx.masker)  # quoted purposes masked
for incident in view.incidents:
    activity = view.flagged[incident.incident_id]
    when = queries.local_range(activity.start, activity.end, ctx.zone)
    st.page_link(
        PAGES / "incident.py",
        label=f"{ui.severity_label(incident.severity.value)} · {when} · {ui.STATUS_LABEL[incident.status.value]}"
        f" · {markdown_text(ui.shortened(summaries[incident.incident_id], 160))}",
        query_params={"incident": incident.incident_id},
    )
