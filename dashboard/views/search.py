"""Audit search: events by actor, customer, data class, resource, action, outcome and time; each search recorded."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, time, timedelta

import pandas as pd
import streamlit as st

from dashboard import queries, ui
from dashboard.auth import Permission
from models.dashboard import DataAccessKind
from models.event import Action, Outcome
from store.base import EventQuery

ctx = ui.context()
if not ctx.can(Permission.AUDIT_SEARCH):
    st.error("Only auditors search the access log.")
    st.stop()

st.title("Audit search")
st.caption("Who read this customer's data, and why? Every search is itself recorded: who, what, when and the reason.")
EXPORT_LIMIT = 10_000

with st.form("s-form"):
    row = st.columns(3)
    actor_id = row[0].text_input("Actor id", key="s-actor")
    customer_id = row[1].text_input("Customer id", key="s-customer")
    data_class = row[2].selectbox("Data class", ["any", *sorted(ctx.settings.classification.classes)], key="s-class")
    row = st.columns(3)
    resource = row[0].text_input("Resource (system, system/type or system/type/id)", key="s-resource")
    action = row[1].selectbox("Action", ["any", *[a.value for a in Action]], key="s-action")
    outcome = row[2].selectbox("Outcome", ["any", *[o.value for o in Outcome]], key="s-outcome")
    row = st.columns(3)
    newest = ui.newest_event(ctx) or datetime.now(UTC)
    since_day = row[0].date_input("From (local day)", value=(newest - timedelta(days=30)).astimezone(ctx.zone).date(),
                                  key="s-since")
    until_day = row[1].date_input("To (local day, inclusive)", value=newest.astimezone(ctx.zone).date(),
                                  key="s-until")
    reason = row[2].text_input("Reason (recorded)", key="s-reason", placeholder="e.g. DSAR 2026-118, case 31")
    searched = st.form_submit_button("Search", type="primary")


def current_query(limit: int, cursor: str | None = None) -> EventQuery:
    return EventQuery(
        actor_id=actor_id.strip() or None,
        customer_id=customer_id.strip() or None,
        data_class=None if data_class == "any" else data_class,
        resource=resource.strip() or None,
        action=None if action == "any" else Action(action),
        outcome=None if outcome == "any" else Outcome(outcome),
        since=datetime.combine(since_day, time(), ctx.zone) if since_day else None,
        until=datetime.combine(until_day + timedelta(days=1), time(), ctx.zone) if until_day else None,
        limit=limit,
        cursor=cursor,
    )


if searched:
    if not reason.strip():
        st.error("Give the reason for this search (a case or request number): it is recorded with the search.")
        st.stop()
    st.session_state["s-cursors"] = [None]
    st.session_state["s-active"] = True
    st.session_state.pop("s-csv", None)

if not st.session_state.get("s-active"):
    st.stop()

cursors: list[str | None] = st.session_state["s-cursors"]
query = current_query(ctx.settings.dashboard.page_size, cursors[-1])
# a page redrawn (another widget changed) is not a new search: record each asked page once
recorded: set[str] = st.session_state.setdefault("s-recorded", set())
key = ui.stable_key(query.model_dump_json(), reason.strip())
page = queries.audit_search(ctx.store, ctx.identity, query, reason, record=key not in recorded)
recorded.add(key)
rows = [queries.event_row(item, ctx.masker, ctx.zone) for item in page.items]
if not rows:
    st.info("No event matches.")
    st.stop()
st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
nav = st.columns([1, 1, 2, 2])
if nav[0].button("Newer", key="s-newer", disabled=len(cursors) == 1):
    cursors.pop()
    st.rerun()
if nav[1].button("Older", key="s-older", disabled=page.next_cursor is None):
    cursors.append(page.next_cursor)
    st.rerun()
nav[2].caption(f"Page {len(cursors)}, newest first; this search was recorded.")
if nav[3].button(f"Prepare CSV export (up to {EXPORT_LIMIT:,} events, recorded)", key="s-export"):
    export = ctx.store.query_events(current_query(EXPORT_LIMIT))
    out = io.StringIO()
    export_rows = [queries.event_row(item, ctx.masker, ctx.zone) for item in export.items]
    writer = csv.DictWriter(out, fieldnames=list(export_rows[0]))
    writer.writeheader()
    writer.writerows(export_rows)
    asked = current_query(EXPORT_LIMIT).model_dump(mode="json", exclude_none=True, exclude={"newest_first"})
    queries.record_access(ctx.store, ctx.identity, DataAccessKind.EXPORT, reason, asked, len(export_rows))
    st.session_state["s-csv"] = out.getvalue()
if "s-csv" in st.session_state:
    st.download_button("Download CSV", st.session_state["s-csv"], "accesswatch-events.csv", "text/csv", key="s-csv-dl")
