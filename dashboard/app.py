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
PAGE_NAMES = ("queue", "incident", "actor", "search", "compliance", "health")


def linked_page() -> str:
    """The page a link asks for by its query: a pager's ``/?incident=<id>``, a profile's ``/?actor=<id>``."""
    if "incident" in st.query_params:
        return "incident"
    return "actor" if "actor" in st.query_params else "queue"


def page(name: str, title: str, icon: str) -> st.Page:
    return st.Page(pages_dir / f"{name}.py", title=title, icon=icon, url_path=name, default=name == linked_page())


if ui.signed_in() is None:
    # Every page known, none shown, so that the page asked for opens after the sign-in.  The linked page
    # must be the default here too: a link to "/" would otherwise be taken as the first page's (the
    # queue's), and the rerun after the sign-in asks for the page this run showed.
    st.navigation([page(name, name, ":material/lock:") for name in PAGE_NAMES], position="hidden")
    ui.sign_in_form()
    st.stop()
ctx = ui.context()
sections: dict[str, list] = {}
if ctx.can(Permission.QUEUE):
    sections["Triage"] = [
        page("queue", "Alerts queue", ":material/notifications_active:"),
        page("incident", "Incident", ":material/report:"),
        page("actor", "Actor profile", ":material/person_search:"),
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
