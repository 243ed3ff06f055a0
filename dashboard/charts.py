"""The charts of the pages (Altair), from plain values.

Times are drawn as naive local times of the organisation: Vega reads a
naive time as the browser's local time and shows it unchanged, so a SOC in
one zone and an auditor in another see the same hours the summaries name.
"""

from __future__ import annotations

from datetime import datetime, tzinfo

import altair as alt
import pandas as pd

from dashboard.queries import TimelinePoint, local_axis_title
from models.dashboard import AlertDayCount, ClassDay

SEVERITY_COLORS = {"low": "#9fb3c8", "medium": "#f0b429", "high": "#f35627", "critical": "#ab091e"}


def _naive(moment: datetime, zone: tzinfo) -> datetime:
    return moment.astimezone(zone).replace(tzinfo=None)


def timeline(points: list[TimelinePoint], start: datetime, end: datetime, zone: tzinfo) -> alt.LayerChart:
    """Records per hour against the actor's usual band and its peers' median, the incident shaded."""
    rows = pd.DataFrame(
        [
            {
                "hour": _naive(p.hour, zone),
                "this actor": p.records,
                "peers' median": p.peer_median,
                "usual_low": p.usual_low,
                "usual_high": p.usual_high,
            }
            for p in points
        ]
    )
    x = alt.X("hour:T", title=local_axis_title(zone, end), axis=alt.Axis(format="%a %d %b %H:%M", labelAngle=0))
    incident = (
        alt.Chart(pd.DataFrame([{"start": _naive(start, zone), "end": _naive(end, zone)}]))
        .mark_rect(color="#f35627", opacity=0.15)
        .encode(x="start:T", x2="end:T")
    )
    band = (
        alt.Chart(rows)
        .mark_area(color="#486581", opacity=0.18, interpolate="step-after")
        .encode(
            x=x,
            y=alt.Y("usual_low:Q"),
            y2="usual_high:Q",
            tooltip=[
                alt.Tooltip("hour:T", format="%a %d %b %H:00"),
                alt.Tooltip("usual_low:Q", title="usual from", format=",.0f"),
                alt.Tooltip("usual_high:Q", title="usual to", format=",.0f"),
            ],
        )
    )
    long = rows.melt(
        id_vars=["hour"], value_vars=["this actor", "peers' median"], var_name="series", value_name="records"
    ).dropna()
    lines = (
        alt.Chart(long)
        .mark_line(interpolate="step-after", strokeWidth=2)
        .encode(
            x=x,
            y=alt.Y("records:Q", title="records per hour"),
            color=alt.Color(
                "series:N",
                scale=alt.Scale(domain=["this actor", "peers' median"], range=["#d62728", "#7b8794"]),
                legend=alt.Legend(orient="top", title=None),
            ),
            strokeDash=alt.StrokeDash(
                "series:N",
                scale=alt.Scale(domain=["this actor", "peers' median"], range=[[1, 0], [5, 3]]),
                legend=None,
            ),
            tooltip=[
                alt.Tooltip("hour:T", format="%a %d %b %H:00"),
                "series:N",
                alt.Tooltip("records:Q", format=",.0f"),
            ],
        )
    )
    # LayerChart itself: alt.layer returns a FacetChart only for layers sharing a facet, which these never do
    return alt.LayerChart(layer=[incident, band, lines]).properties(height=260)


def alerts_by_severity(counts: list[AlertDayCount]) -> alt.Chart:
    rows = pd.DataFrame([{"day": c.day.isoformat(), "severity": c.severity, "alerts": c.alerts} for c in counts])
    if rows.empty:
        rows = pd.DataFrame(columns=["day", "severity", "alerts"])
    return (
        alt.Chart(rows)
        .mark_bar()
        .encode(
            x=alt.X("day:T", title=None, axis=alt.Axis(format="%d %b")),
            y=alt.Y("sum(alerts):Q", title="alerts"),
            color=alt.Color(
                "severity:N",
                scale=alt.Scale(domain=list(SEVERITY_COLORS), range=list(SEVERITY_COLORS.values())),
                legend=alt.Legend(orient="top", title=None),
            ),
            order=alt.Order("severity:N"),
            tooltip=["day:T", "severity:N", "sum(alerts):Q"],
        )
        .properties(height=260)
    )


def class_trend(days: list[ClassDay]) -> alt.Chart:
    rows = pd.DataFrame([{"day": d.day.isoformat(), "class": d.data_class, "records": d.records} for d in days])
    if rows.empty:
        rows = pd.DataFrame(columns=["day", "class", "records"])
    return (
        alt.Chart(rows)
        .mark_line(point=True)
        .encode(
            x=alt.X("day:T", title=None, axis=alt.Axis(format="%d %b")),
            y=alt.Y("records:Q", title="records read"),
            color=alt.Color("class:N", legend=alt.Legend(orient="top", title=None)),
            tooltip=["day:T", "class:N", alt.Tooltip("records:Q", format=",")],
        )
        .properties(height=260)
    )


def heatmap(cells: list[tuple[int, int, float]]) -> alt.Chart:
    names = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    rows = pd.DataFrame([{"day": names[d], "hour": h, "events": v} for d, h, v in cells])
    return (
        alt.Chart(rows)
        .mark_rect()
        .encode(
            x=alt.X("hour:O", title="local hour"),
            y=alt.Y("day:O", sort=names, title=None),
            color=alt.Color("events:Q", scale=alt.Scale(scheme="greys", type="sqrt"), title="events / week"),
            tooltip=["day:O", "hour:O", alt.Tooltip("events:Q", format=",.1f")],
        )
        .properties(height=220)
    )


def volume_against_peers(volume: list[tuple[datetime, int, float | None]], zone: tzinfo) -> alt.Chart:
    """Records per day against the peers' median, on a linear axis from zero.

    Linear, as the incident's timeline is: a day 100 times the usual stands 100 times as high. On a
    log axis (ticks at the powers of ten only) it looked a bump above the rest, and a reader does not
    expect a log scale where the axis does not say so.
    """
    rows = pd.DataFrame(
        [{"day": _naive(d, zone), "series": "this actor", "records": own} for d, own, _ in volume]
        + [{"day": _naive(d, zone), "series": "peers' median", "records": p} for d, _, p in volume if p is not None]
    )
    if rows.empty:
        rows = pd.DataFrame(columns=["day", "series", "records"])
    return (
        alt.Chart(rows)
        .mark_line(point=True)
        .encode(
            x=alt.X("day:T", title=None, axis=alt.Axis(format="%d %b")),
            y=alt.Y("records:Q", title="records per day", scale=alt.Scale(type="linear", zero=True)),
            color=alt.Color(
                "series:N",
                scale=alt.Scale(domain=["this actor", "peers' median"], range=["#d62728", "#7b8794"]),
                legend=alt.Legend(orient="top", title=None),
            ),
            tooltip=["day:T", "series:N", alt.Tooltip("records:Q", format=",.0f")],
        )
        .properties(height=240)
    )
