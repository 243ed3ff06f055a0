"""Audit search: events by id, actor, customer, data class, field, resource, action, outcome and time; each recorded."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pandas as pd
import streamlit as st

from dashboard import deleted, queries, subject_access, ui
from dashboard.auth import Permission
from dashboard.markdown import markdown_text
from detectors.classify import UNCLASSIFIED, Classifier
from models.event import Action, Outcome
from store.base import EventQuery, EventTotal

ctx = ui.context()
if not ctx.can(Permission.AUDIT_SEARCH):
    st.error("Only auditors search the access log.")
    st.stop()

st.title("Audit search")
st.caption("Who read this customer's data, and why? Every search is itself recorded: who, what, when and the reason.")
classifier = Classifier(ctx.settings.classification)

with st.form("s-form"):
    row = st.columns(3)
    actor_id = row[0].text_input("Actor id", key="s-actor")
    # a person's access request covers everything kept of them, not the last month the dates show by default
    customer_id = row[1].text_input("Customer id (all the history kept: the dates then do not apply)", key="s-customer")
    # an alert's evidence links here with the event's id (``?event=``)
    event_id = row[2].text_input(
        "Event id (the dates then do not apply)", value=st.query_params.get("event", ""), key="s-event"
    )
    row = st.columns(3)
    data_class = row[0].selectbox(
        "Data class", ["any", *sorted(ctx.settings.classification.classes), UNCLASSIFIED], key="s-class"
    )
    field = row[1].text_input("Field (e.g. passport_number)", key="s-field")
    every_class = row[2].checkbox(
        "Look for the field in every class (slow)",
        key="s-every-class",
        help="A field is looked for among the events of its class, as classified when stored. After the"
        " classification changed, a field's older events may be under another class: this finds them.",
    )
    row = st.columns(3)
    resource = row[0].text_input("Resource (system, system/type or system/type/id)", key="s-resource")
    action = row[1].selectbox("Action", ["any", *[a.value for a in Action]], key="s-action")
    outcome = row[2].selectbox("Outcome", ["any", *[o.value for o in Outcome]], key="s-outcome")
    row = st.columns(3)
    newest = ui.newest_event(ctx) or datetime.now(UTC)
    since_day = row[0].date_input(
        "From (local day)", value=(newest - timedelta(days=30)).astimezone(ctx.zone).date(), key="s-since"
    )
    until_day = row[1].date_input("To (local day, inclusive)", value=newest.astimezone(ctx.zone).date(), key="s-until")
    reason = row[2].text_input("Reason (recorded)", key="s-reason", placeholder="e.g. DSAR 2026-118, case 31")
    searched = st.form_submit_button("Search", type="primary")


def class_to_search() -> str | None:
    """The class asked for; with a field and any class, the field's own class, whose index narrows the search."""
    if data_class != "any":
        return data_class
    if field.strip() and not every_class:
        return classifier.class_of(field.strip())
    return None


def current_query(limit: int, cursor: str | None = None) -> EventQuery:
    # an alert's event may be older than the dates shown by default; a customer's reads are asked for whole
    whole_history = bool(event_id.strip() or customer_id.strip())
    return EventQuery(
        event_id=event_id.strip() or None,
        actor_id=actor_id.strip() or None,
        customer_id=customer_id.strip() or None,
        data_class=class_to_search(),
        field=field.strip() or None,
        resource=resource.strip() or None,
        action=None if action == "any" else Action(action),
        outcome=None if outcome == "any" else Outcome(outcome),
        since=datetime.combine(since_day, time(), ctx.zone) if since_day and not whole_history else None,
        until=datetime.combine(until_day + timedelta(days=1), time(), ctx.zone)
        if until_day and not whole_history
        else None,
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
    st.session_state.pop("s-totals", None)  # counted again: events may have come since
    st.session_state.pop("s-readers", None)
    st.session_state.pop("s-answer-csv", None)

if not st.session_state.get("s-active"):
    st.stop()

cursors: list[str | None] = st.session_state["s-cursors"]
query = current_query(ctx.settings.dashboard.page_size, cursors[-1])
# a page redrawn (another widget changed) is not a new search: record each asked page once
recorded: set[str] = st.session_state.setdefault("s-recorded", set())
key = ui.stable_key(query.model_dump_json(), reason.strip())
page = queries.audit_search(ctx.store, ctx.identity, query, reason, record=key not in recorded)
recorded.add(key)
if query.field is not None and data_class == "any" and query.data_class is not None:
    st.caption(
        f"`{query.field}` looked for in the events classified `{query.data_class}` (its class);"
        " tick *every class* to look in all."
    )


def offer_download(state: str, label: str, cut: str) -> None:
    """The CSV prepared under ``state`` (its file's name under ``state``-name), to download; ``cut`` warns above it
    when the cap left events out.

    ``label`` and ``cut`` name the CSV's ``{events}``.
    """
    made: queries.Export | None = st.session_state.get(state)
    if made is None:
        return
    if not made.complete:
        st.warning(cut.format(events=made.events, cap=queries.EXPORT_CAP))
    if isinstance(made, queries.EventsExport):  # the events' CSV with its provenance: one file, they travel together
        st.download_button(
            label.format(events=made.events), made.archive, made.archive_name, "application/zip", key=f"{state}-dl"
        )
        return
    name = st.session_state[f"{state}-name"]
    st.download_button(label.format(events=made.events), made.csv, name, "text/csv", key=f"{state}-dl")


def file_name(stem: str, extension: str = "csv") -> str:
    """Named for the customer searched (as shown: masked until unmasked) and today: two requests' files differ."""
    customer = ctx.masker.customer(customer_id.strip()) if customer_id.strip() else None
    return queries.download_name(stem, customer, datetime.now(UTC), ctx.zone, extension)


def offer_answer() -> None:
    """For one customer's search, what to hand the person who asked; also when nothing matched (an answer too)."""
    if not customer_id.strip():
        return
    # the export is the organisation's record; this is what to hand the person who asked
    st.caption(
        "The answer to this customer's access request, two files to send together: a cover note (text) with the"
        " period it covers and what retention deleted before it, and a table (CSV) of each access that served their"
        " data, oldest first, with who read it in words (a role and team, a partner company, an automated process),"
        " the action, the fields and the purpose; no other customer, employee id, address or record count. With no"
        " access in the period, the note says so."
    )
    if st.button("Prepare the requester's answer (a table and its note, recorded)", key="s-answer"):
        # to the newest event too: a log replayed from the future (a simulation) is not left outside the period
        now = max(datetime.now(UTC), newest)
        st.session_state["s-answer-csv"] = subject_access.subject_access_answer(
            ctx.store,
            ctx.identity,
            customer_id,
            reason,
            ctx.zone,
            retention_days=ctx.settings.retention.events_days,
            partners=subject_access.partner_names(ctx.settings.detectors),
            labels=subject_access.Labels.of(ctx.settings.classification),
            references=ctx.settings.dashboard.readable_references,
            now=now,
        )
        st.session_state["s-answer-csv-name"] = file_name("access-request-answer")
        st.session_state["s-answer-note-name"] = file_name("access-request-answer-note", "txt")
    answer: subject_access.SubjectAnswer | None = st.session_state.get("s-answer-csv")
    if answer is not None:
        st.caption(" ".join(answer.notes))
        # the note apart: lines of prose above the CSV's header were rows to a spreadsheet (subject_access)
        note = answer.cover_note(st.session_state["s-answer-csv-name"])
        name = st.session_state["s-answer-note-name"]
        st.download_button("Download the answer's cover note (text)", note, name, "text/plain", key="s-answer-note-dl")
        if answer.review:  # for whoever sends it: the accesses of an incident, which the file words as any other
            st.warning("\n\n".join(markdown_text(line) for line in answer.review))
    offer_download(
        "s-answer-csv",
        "Download the answer's table ({events:,} accesses)",
        "The answer holds the oldest {events:,} accesses only: more were kept than the {cap:,} one file may hold.",
    )


rows = [queries.event_row(item, ctx.masker, ctx.zone) for item in page.items]
# a range reaching before retention's horizon: what it deleted is neither shown nor counted, and the page says so
gone = deleted.deleted_in(
    ctx.store,
    query.model_copy(update={"cursor": None}),
    max(datetime.now(UTC), newest),
    ctx.settings.retention.events_days,
)
if gone is not None:
    st.info(deleted.note(gone, ctx.zone))
if not rows:
    st.info("No event matches.")
    offer_answer()
    st.stop()
# how many match, counted once a search (not again for each of its pages), by the store without reading them
totals: dict[str, EventTotal] = st.session_state.setdefault("s-totals", {})
search_key = ui.stable_key(query.model_copy(update={"cursor": None}).model_dump_json())
if search_key not in totals:
    totals[search_key] = ctx.store.count_events(query, queries.EVENTS_COUNTED)
# the search (recorded above under its reason) names no customer; unmasked, the ids this page shows are
ui.record_view(
    ctx,
    {
        "view": "audit search",
        **query.model_dump(mode="json", exclude_none=True, exclude={"limit", "cursor", "newest_first"}),
        "page": len(cursors),
    },
    queries.customers_on_screen(page.items, ctx.masker),
    len(rows),
    content=tuple(item.event.event_id for item in page.items),
)
st.dataframe(
    pd.DataFrame(rows, columns=queries.EVENT_COLUMNS),
    hide_index=True,
    width="stretch",
    column_config={name: st.column_config.NumberColumn(name, format="localized") for name in queries.EVENT_COUNTS},
)
nav = st.columns([1, 1, 2, 2])
if nav[0].button("Newer", key="s-newer", disabled=len(cursors) == 1):
    cursors.pop()
    st.rerun()
if nav[1].button("Older", key="s-older", disabled=page.next_cursor is None):
    cursors.append(page.next_cursor)
    st.rerun()
position = ui.events_in_view(
    len(cursors), ctx.settings.dashboard.page_size, len(rows), totals[search_key], page.next_cursor is None
)
nav[2].caption(
    f"{position}; this search was recorded. Times are {ctx.zone} with their UTC offset; customer ids "
    + ("in clear" if ctx.masker.unmasked else "masked (unmask in the sidebar)")
    + "."
)
if nav[3].button(f"Prepare CSV export (up to {queries.EXPORT_CAP:,} events, recorded)", key="s-export"):
    st.session_state["s-csv"] = queries.export_events(
        ctx.store,
        ctx.identity,
        current_query(queries.EXPORT_PAGE),
        reason,
        ctx.masker,
        ctx.zone,
        queries.EXPORT_CAP,
        retention_days=ctx.settings.retention.events_days,
    )
if "s-csv" in st.session_state:
    st.caption(
        "The export is a zip of the CSV and its provenance (JSON, named alike): the search, the period, the time"
        " zone, who exported it, when and why, whether it holds every matching event (the cap, retention) and the"
        " CSV's SHA-256, which the audit log records with the export."
    )
offer_download(
    "s-csv",
    "Download the export ({events:,} events: CSV and provenance, zip)",
    "The export holds the newest {events:,} events only: more matched than the {cap:,} one export may hold."
    " Narrow the search (dates, actor) to export the rest.",
)


def show_readers() -> None:
    """Who read what the search matches: one row per actor, the most records first; once a search, recorded."""
    if query.event_id is not None:  # one event: its row says who read it
        return
    summaries: dict[str, queries.ReadersSummary] = st.session_state.setdefault("s-readers", {})
    if search_key not in summaries:
        summaries[search_key] = queries.search_readers(ctx.store, ctx.identity, current_query(1000), reason)
    summary = summaries[search_key]
    st.subheader("Readers")
    scope = f"the {summary.events:,} matching events" if summary.complete else f"the newest {summary.events:,} events"
    st.caption(
        f"Who read {scope}, the most records first: the purposes they stated most (events each), how many of their"
        f" accesses stated none, and their first and last access ({ctx.zone} with the UTC offset)."
    )
    rows = [queries.reader_row(reader, ctx.masker, ctx.zone) for reader in summary.readers]
    # the counts with the separators every other table shows (6,000, not 6000), sorting as numbers still
    counts = {name: st.column_config.NumberColumn(name, format="localized") for name in queries.READER_COUNTS}
    st.dataframe(
        pd.DataFrame(rows, columns=queries.READER_COLUMNS), hide_index=True, width="stretch", column_config=counts
    )
    if summary.more_readers:
        st.caption(f"and {summary.more_readers:,} more readers")


show_readers()
offer_answer()
