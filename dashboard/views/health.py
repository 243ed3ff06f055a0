"""Health: ingestion rate, lag, dead letters, the notifier outbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import streamlit as st

from dashboard import charts, queries, ui
from models.dashboard import FoldProgress

ctx = ui.context()
st.title("Health")


@st.fragment(run_every=timedelta(seconds=ctx.settings.dashboard.refresh))
def live_health() -> None:
    now = datetime.now(UTC)
    view = queries.health(ctx.store, now)
    figures = st.columns(5)
    figures[0].metric("Events stored", f"{view.events:,}")
    figures[1].metric(
        "Ingestion rate",
        f"{view.rate_per_second:,.0f} /s" if view.rate_per_second is not None else "—",
        help="stored events per second over the last minutes, as sampled by the dashboard",
    )
    # the lag is the figure, short enough for a fifth of the page (a time and date is not); the time is below
    figures[2].metric(
        "Event-time lag",
        ui.duration(view.lag_seconds) if view.lag_seconds is not None else "—",
        help="how far the newest stored event's time is behind now: a replay of history is far behind,"
        " a live feed is not",
    )
    figures[3].metric("Dead letters", f"{view.dead_letters:,}")
    if view.outbox is None:
        figures[4].metric("Notifier outbox", "—", help="the paging outbox is not in this store")
    else:
        figures[4].metric(
            "Notifier outbox",
            f"{view.outbox.get('pending', 0):,} waiting",
            ", ".join(f"{s} {n:,}" for s, n in sorted(view.outbox.items())),
            delta_color="off",
            delta_arrow="off",
        )
    if view.unfolded_events:
        folded = FoldProgress(events=view.events, folded=view.events - view.unfolded_events)
        st.info(ui.still_folding(folded, "the events per hour below count only those, and will fill in"))
    if view.events_per_hour:
        rows = pd.DataFrame(
            [
                {"hour": h.hour.astimezone(ctx.zone).replace(tzinfo=None), "events": h.events, "denied": h.denied}
                for h in view.events_per_hour
            ]
        )
        st.subheader("Events per hour (event time, the last two days)")
        st.altair_chart(
            charts.events_per_hour(rows, ctx.zone, view.events_per_hour[0].hour, view.events_per_hour[-1].hour),
            width="stretch",
        )
    newest = f"Newest event: {ui.local_time(ctx, view.newest_event)} ({ctx.zone}). " if view.newest_event else ""
    st.caption(f"{newest}Refreshes every {ctx.settings.dashboard.refresh:.0f} s.")


live_health()
