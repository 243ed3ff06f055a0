"""The accesswatch dashboard: ``accesswatch dashboard`` runs this with ``streamlit run``.

Sign-in first; then the pages the person's role allows (``dashboard.auth``).
A page link from a pager, ``/?incident=<id>``, opens that incident.
"""

from __future__ import annotations

import streamlit as st

from dashboard import ui
from dashboard.auth import Permission

st.set_page_config(page_title="accesswatch", page_icon="🛡️", layout="wide")

pages_dir = ui.HERE / "views"
linked_incident = "incident" in st.query_params
linked_actor = "actor" in st.query_params and not linked_incident


def page(name: str, title: str, icon: str, default: bool = False) -> st.Page:
    return st.Page(pages_dir / f"{name}.py", title=title, icon=icon, url_path=name, default=default)


if ui.signed_in() is None:
    # every page known, none shown: the page asked for (a link from a pager) opens after the sign-in
    st.navigation([page(name, name, ":material/lock:") for name in ("queue", "incident", "actor", "search",
                                                                     "compliance", "health")], position="hidden")
    ui.sign_in_form()
    st.stop()
ctx = ui.context()
sections: dict[str, list] = {}
if ctx.can(Permission.QUEUE):
    sections["Triage"] = [
        page("queue", "Alerts queue", ":material/notifications_active:", default=not (linked_incident or linked_actor)),
        page("incident", "Incident", ":material/report:", default=linked_incident),
        page("actor", "Actor profile", ":material/person_search:", default=linked_actor),
    ]
audit = []
if ctx.can(Permission.AUDIT_SEARCH):
    audit.append(page("search", "Audit search", ":material/manage_search:"))
if ctx.can(Permission.COMPLIANCE):
    audit.append(page("compliance", "Compliance", ":material/verified_user:"))
if audit:
    sections["Audit"] = audit
if ctx.can(Permission.HEALTH):
    sections["Operations"] = [page("health", "Health", ":material/monitor_heart:")]

navigation = st.navigation(sections)
with st.sidebar:
    st.markdown(f"**{ctx.identity.display_name}**  \n{ctx.identity.role.value} · `{ctx.identity.username}`")
    ui.unmask_control(ctx)
    if st.button("Sign out", key="sign-out"):
        ui.sign_out()
        st.rerun()
navigation.run()
