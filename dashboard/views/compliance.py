"""Compliance: the figures the privacy programme is judged by."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pandas as pd
import streamlit as st

from dashboard import charts, queries, ui
from dashboard.auth import Permission
from dashboard.explain import detector_title
from detectors.wording import KIND_NOUNS
from models.dashboard import CUSTOMERS_LISTED, DataAccess, DataAccessQuery, UnlistedMatch
from models.event import ActorKind

ctx = ui.context()
if not ctx.can(Permission.COMPLIANCE):
    st.error("Only auditors and administrators see the compliance figures.")
    st.stop()
PAGES = ui.HERE / "views"

st.title("Compliance")
days = (
    st.segmented_control("Period", [7, 30, 90], default=30, format_func=lambda d: f"last {d} days", key="c-days") or 30
)
now = datetime.now(UTC)
until = ui.newest_event(ctx) or now
view = queries.compliance(ctx.store, ctx.settings, until, days, now)
triage = view.triage
deadline_hours = ctx.settings.dashboard.report_deadline / 3600

figures = st.columns(4)
figures[0].metric("Incidents raised", f"{triage.incidents:,}", help="raised (wall-clock) in the period")
share = triage.reviewed / triage.incidents if triage.incidents else None
figures[1].metric(
    "Reviewed", f"{share:.0%}" if share is not None else "—", help="acknowledged, resolved or marked false positive"
)
ack = triage.median_seconds_to_acknowledge
figures[2].metric("Median time to acknowledge", ui.duration(ack) if ack is not None else "—")
figures[3].metric(
    f"Open past the {deadline_hours:.0f}-hour deadline",
    f"{triage.open_past_deadline:,}",
    help="still open or acknowledged, raised longer ago than the reporting deadline",
)

if triage.overdue_incident_ids:
    with st.expander(f"Overdue incidents ({triage.open_past_deadline:,}, oldest first)"):
        for incident_id in triage.overdue_incident_ids[:20]:
            st.page_link(PAGES / "incident.py", label=incident_id, query_params={"incident": incident_id})

left, right = st.columns(2)
with left:
    st.subheader("Alerts by severity")
    st.altair_chart(charts.alerts_by_severity(view.alerts), width="stretch")

KINDS = {kind.value: f"{KIND_NOUNS[kind]}s" for kind in ActorKind}  # "partners", "service accounts"
with right:
    st.subheader("Sensitive data read")
    if view.behind is not None:  # the trend and its table are summed from the hourly figures
        st.info(ui.still_folding(view.behind, "this trend and its table count only those, and will fill in"))
    whose = st.segmented_control(
        "Read by", list(KINDS), format_func=KINDS.__getitem__, key="c-kind", help="none chosen: everyone"
    )
    flagged_days: dict = {}
    for read in view.sensitive_alerts:
        if whose is None or read.alert.actor_kind.value == whose:
            told = f"{read.alert.actor_id} {read.records or 0:,} ({read.alert.severity.value})"
            day = read.day(ctx.zone)
            flagged_days[day] = f"{flagged_days[day]}; {told}" if day in flagged_days else told
    st.altair_chart(charts.class_trend(queries.sensitive_of(view.sensitive, whose), flagged_days), width="stretch")
    st.caption(
        "Records of the high-sensitivity classes read per local day, by "
        + (f"{KINDS[whose]} only." if whose else "everyone: service accounts' routine jobs included.")
        + " Red rules: days of high or critical sensitive-data alerts"
        + (f" about {KINDS[whose]}" if whose else "")
        + ", listed below."
    )
    totals = queries.sensitive_by_kind(view.sensitive)
    if totals:
        st.dataframe(
            pd.DataFrame(
                [
                    {"class": name, **{KINDS[kind]: records for kind, records in by_kind.items()}}
                    for name, by_kind in totals.items()
                ]
            ),
            hide_index=True,
            width="stretch",
            column_config={label: st.column_config.NumberColumn(format="localized") for label in KINDS.values()},
        )
        st.caption(f"Records read in the {days} days, by class and kind of actor.")

st.subheader("Sensitive data read in high or critical alerts")
if not view.sensitive_alerts:
    st.caption("None in the period.")
else:
    reads = pd.DataFrame(
        [
            {
                "flagged activity": queries.local_range(read.flagged.start, read.flagged.end, ctx.zone),
                "actor": f"{read.alert.actor_id} ({read.alert.actor_kind.value})",
                "severity": read.alert.severity.value,
                "sensitive records": read.records,
                "records, all its windows": read.alert.evidence.get(
                    "records_in_alert", read.alert.evidence.get("records")
                ),
                "classes": ", ".join(read.alert.evidence.get("classes") or []),
                "incident": read.alert.incident_id or "",
            }
            for read in view.sensitive_alerts
        ]
    )
    # figures with the separators every other page shows (40,000, not 40000), sorting as numbers still
    numbers = {
        name: st.column_config.NumberColumn(name, format="localized")
        for name in ("sensitive records", "records, all its windows")
    }
    chosen = ui.clickable_table(reads, "c-sensitive", column_config=numbers)
    opened = view.sensitive_alerts[chosen].alert.incident_id if chosen is not None else None
    if opened:
        st.switch_page(PAGES / "incident.py", query_params={"incident": opened})
    st.caption(
        "Newest first, each alert's strongest window: its records of high-sensitivity classes, and the records read in"
        " all the windows of its episode. A breach of tens of thousands of records is lost in the chart beside a"
        " service account's nightly million; here it stands on its own line. Click a row to open its incident."
    )

st.subheader("Partner accesses outside their usual scope")
if not view.partner_out_of_scope:
    st.caption("No partner alert in the period.")
else:
    partner = pd.DataFrame(
        [
            {"day": a.day.isoformat(), "detector": detector_title(a.detector), "alerts": a.alerts}
            for a in view.partner_out_of_scope
        ]
    )
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "company": c.organization,
                    "alerts": c.alerts,
                    "agents": c.agents,
                    "found": ", ".join(map(detector_title, c.detectors)),
                    "data classes": ", ".join(name.replace("_", " ") for name in c.classes),
                }
                for c in view.partner_companies
            ]
        ),
        hide_index=True,
        width="stretch",
    )
    st.caption(
        "By partner company (the agents' organisation in the log), the most alerts first, with what the detectors"
        " found and the data classes their alerts name (large reads and unusual hours name none)."
    )
    st.dataframe(
        partner.pivot_table(index="day", columns="detector", values="alerts", aggfunc="sum", fill_value=0),
        width="stretch",
    )
    st.caption("Partners' alerts a local day, by what was found: what their agents usually read, learned from habit.")

st.subheader("Partner reads outside their contract")
breaches = view.contract_breaches
st.metric(
    "Records read outside a contract",
    f"{sum(b.records for b in breaches):,}",
    help="by partners' agents, of data classes their company's declared contract does not cover",
)
if not breaches:
    st.caption("None in the period (contracts are declared in [detectors.partner_contract.contracts]).")
else:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "company": b.organization,
                    "records read outside the contract": b.records,
                    "agents": b.agents,
                    "alerts": b.alerts,
                    "classes": ", ".join(name.replace("_", " ") for name in b.classes),
                }
                for b in breaches
            ]
        ),
        hide_index=True,
        width="stretch",
        column_config={
            "records read outside the contract": st.column_config.NumberColumn(format="localized"),
        },
    )
    st.caption(
        "By company, the most records first: each alert's records read outside the contract in all its windows,"
        " as its summary adds them up. A declared contract broken is not counted above, among the habits."
    )

st.subheader("Dead letters")
st.metric("Lines that could not become events", f"{view.dead_letters:,}")
if view.dead_letters:
    latest = ctx.store.dead_letters(limit=20, offset=max(0, view.dead_letters - 20))
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "received": ui.local_time(ctx, d.received_at),
                    "source": d.source,
                    "position": d.position,
                    "reason": d.reason,
                }
                for d in reversed(latest)
            ]
        ),
        hide_index=True,
        width="stretch",
    )

ACCESS_PAGE = 200  # accesses a page of the audit of auditors
CUSTOMERS_SHOWN_HERE = 20  # of an access's customers in clear, in its row; a customer filter finds any of them


def access_log_section() -> None:
    """Who read customer data through the dashboard: filtered by person and local days, paged back to the first."""
    st.subheader("Who read customer data through the dashboard")
    row = st.columns(4)
    who = row[0].text_input("Person (user name)", key="c-who").strip()
    # a subject's question: who saw me in clear, or looked me up by my id
    customer = row[1].text_input("Customer id (shown in clear, or searched for)", key="c-customer").strip()
    since_day = row[2].date_input("From (local day)", value=None, key="c-since")
    until_day = row[3].date_input("To (local day, inclusive)", value=None, key="c-until")
    query = DataAccessQuery(
        by=who or None,
        customer_id=customer or None,
        since=datetime.combine(since_day, time(), ctx.zone) if since_day else None,
        until=datetime.combine(until_day + timedelta(days=1), time(), ctx.zone) if until_day else None,
        limit=ACCESS_PAGE,
    )
    # a page is where the one before it ended; new filters start again at the newest
    marks: list[queries.AccessMark | None] = st.session_state.setdefault("c-marks", [None])
    if st.session_state.get("c-filters") != query:
        st.session_state["c-filters"] = query
        marks[:] = [None]
    page = queries.access_log(ctx.store, query, marks[-1])
    if not page.accesses:
        st.caption("Nobody under these filters." if who or customer or since_day or until_day else "Nobody yet.")
        return
    # the customers each access showed, or searched for, are customers' ids too: masked as on every page, and,
    # unmasked, recorded
    shown = {id(a): in_clear_shown(a, customer) for a in page.accesses}
    on_page = {c for a in page.accesses for c in customers_on_row(a, shown[id(a)], customer)}
    ui.record_view(
        ctx,
        {
            "view": "access log",
            **query.model_dump(mode="json", exclude_none=True, exclude={"limit"}),
            "page": len(marks),
        },
        # in order, so that the rows this record adds (it is one of them) do not make the view another one
        sorted(c for c in on_page if ctx.masker.customer(c) == c),
        len(page.accesses),
    )
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "when": ui.local_time(ctx, a.at, seconds=True),
                    "who": a.by,
                    "role": a.role,
                    "what": a.kind.value,
                    "reason": a.reason,
                    "results": a.results,
                    "asked": ", ".join(f"{k}={v}" for k, v in ctx.masker.asked(a.what).items()),
                    "customers in clear": customers_in_clear(a, shown[id(a)], customer),
                }
                for a in page.accesses
            ]
        ),
        hide_index=True,
        width="stretch",
    )
    nav = st.columns([1, 1, 4])
    if nav[0].button("Newer", key="c-newer", disabled=len(marks) == 1):
        marks.pop()
        st.rerun()
    if nav[1].button("Older", key="c-older", disabled=page.older is None):
        marks.append(page.older)
        st.rerun()
    nav[2].caption(
        f"Page {len(marks)}, newest first, {ACCESS_PAGE} a page"
        + ("; the oldest under these filters." if page.older is None else ".")
    )
    st.caption(
        "Each search and export, each unmasking, and each page an unmasked session showed customer ids on (an"
        " incident's events, the audit search's results, this log), recorded once in "
        f"{ui.duration(ctx.settings.dashboard.view_recorded_again)} while it shows the same ids: the ids shown in"
        f" clear are listed, up to {CUSTOMERS_LISTED:,} an access; an export holding more lists its first and counts"
        " the rest, which its query reads again: a customer filter reads it again for that customer, and says"
        ' "possibly" where it cannot tell (retention deleted events the export held, or a list kept no query).'
    )


def in_clear_shown(access: DataAccess, wanted: str) -> list[str]:
    """The ids of ``access.customer_ids`` its row shows, the customer filtered for (``wanted``) first."""
    return sorted(access.customer_ids, key=lambda c: c != wanted)[:CUSTOMERS_SHOWN_HERE]  # stable: the rest in order


# how the customer filtered for was found in an access whose list was cut, before the ids it lists
UNLISTED_WORDS = {
    UnlistedMatch.FOUND: "not listed: found by its query, read again",
    UnlistedMatch.POSSIBLY_DELETED: "possibly: not in the events kept, and retention deleted some it held",
    UnlistedMatch.POSSIBLY: "possibly: not listed, and nothing kept tells either way",
}


def customers_on_row(access: DataAccess, shown: list[str], wanted: str) -> list[str]:
    """The customer ids an access's row names: those its cell shows, the one filtered for when found beyond
    them (``DataAccess.unlisted_match``), and the one its query asked for."""
    searched = access.what.get("customer_id")
    return [*shown, *([wanted] if access.unlisted_match else []), *([searched] if isinstance(searched, str) else [])]


def customers_in_clear(access: DataAccess, shown: list[str], wanted: str) -> str:
    """``c-1, c-2`` (masked as the viewer sees customers); ``c-1, ... and 4,000 more`` when the access held more
    than the row shows, saying how many its record does not list (its query reads them again); the customer
    filtered for first, said how, when found beyond the list."""
    listed = ", ".join(ctx.masker.customer(c) for c in shown)
    more = access.customers_in_clear - len(shown)
    if more > 0:
        unlisted = access.customers_unlisted
        listed += f" and {more:,} more" + (f" ({unlisted:,} not listed: read again by the query)" if unlisted else "")
    if access.unlisted_match is None:
        return listed
    found = f"{ctx.masker.customer(wanted)} ({UNLISTED_WORDS[access.unlisted_match]})"
    return f"{found}; {listed}" if listed else found


if ctx.can(Permission.ACCESS_LOG):
    access_log_section()
