"""The charts of the pages (Altair), from plain values.

Times are drawn as naive local times of the organisation: Vega reads a
naive time as the browser's local time and shows it unchanged, so a SOC in
one zone and an auditor in another see the same hours the summaries name.
"""

from __future__ import annotations

from datetime import date, datetime, tzinfo

import altair as alt
import pandas as pd

from dashboard.queries import TimelinePoint, local_axis_title
from models.dashboard import AlertDayCount, ClassDay
from models.flagged import FlaggedSpan

SEVERITY_COLORS = {"low": "#9fb3c8", "medium": "#f0b429", "high": "#f35627", "critical": "#ab091e"}
SEVERITY_ORDER = {name: rank for rank, name in enumerate(SEVERITY_COLORS)}  # stacked bars: low at the bottom
# a day axis with a tick a day at most: left to itself, Vega ticks every 12 hours and says each date twice
DAY_AXIS = alt.Axis(format="%d %b", tickCount={"interval": "day", "step": 1}, labelOverlap=True, labelAngle=0)


def _naive(moment: datetime, zone: tzinfo) -> datetime:
    return moment.astimezone(zone).replace(tzinfo=None)


def timeline(
    points: list[TimelinePoint], window: tuple[datetime, datetime], flagged: list[FlaggedSpan], zone: tzinfo
) -> alt.LayerChart:
    """Records per hour against the actor's usual band and its peers' median; the incident's window shaded
    lightly, the hours its findings flagged strongly (a day's window would otherwise hide the hour that mattered)."""
    start, end = window
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
    first, last = (points[0].hour, points[-1].hour) if points else (start, end)
    x = alt.X("hour:T", title=local_axis_title(zone, first, last), axis=alt.Axis(format="%a %d %b %H:%M", labelAngle=0))
    incident = (
        alt.Chart(pd.DataFrame([{"start": _naive(start, zone), "end": _naive(end, zone)}]))
        .mark_rect(color="#f35627", opacity=0.07)
        .encode(x="start:T", x2="end:T")
    )
    hours = pd.DataFrame(
        [
            {"start": _naive(span.start, zone), "end": _naive(span.end, zone), "severity": span.severity.value}
            for span in flagged
        ],
        columns=["start", "end", "severity"],
    )
    marked = (
        alt.Chart(hours)
        .mark_rect(color="#d62728", opacity=0.28)
        .encode(
            x="start:T",
            x2="end:T",
            tooltip=[
                alt.Tooltip("start:T", title="flagged from", format="%a %d %b %H:%M"),
                alt.Tooltip("end:T", title="to", format="%a %d %b %H:%M"),
                "severity:N",
            ],
        )
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
            # the same legend as the colour's: one legend of both (a hidden one conflicts with it, Vega warns)
            strokeDash=alt.StrokeDash(
                "series:N",
                scale=alt.Scale(domain=["this actor", "peers' median"], range=[[1, 0], [5, 3]]),
                legend=alt.Legend(orient="top", title=None),
            ),
            tooltip=[
                alt.Tooltip("hour:T", format="%a %d %b %H:00"),
                "series:N",
                alt.Tooltip("records:Q", format=",.0f"),
            ],
        )
    )
    # LayerChart itself: alt.layer returns a FacetChart only for layers sharing a facet, which these never do
    return alt.LayerChart(layer=[incident, marked, band, lines]).properties(height=260)


def alerts_by_severity(counts: list[AlertDayCount]) -> alt.Chart:
    """Alerts per local day, a bar a day stacked by severity (low at the bottom)."""
    rows = pd.DataFrame(
        [
            {
                "day": c.day.isoformat(),
                "severity": c.severity,
                "rank": SEVERITY_ORDER.get(c.severity, 0),
                "alerts": c.alerts,
            }
            for c in counts
        ],
        columns=["day", "severity", "rank", "alerts"],
    )
    return (
        alt.Chart(rows)
        .mark_bar()
        .encode(
            # a day is a band of its own (ordinal), named once: a time axis ticked it twice a day
            x=alt.X("yearmonthdate(day):O", title=None, axis=alt.Axis(format="%d %b", labelAngle=0, labelOverlap=True)),
            y=alt.Y("sum(alerts):Q", title="alerts"),
            color=alt.Color(
                "severity:N",
                scale=alt.Scale(domain=list(SEVERITY_COLORS), range=list(SEVERITY_COLORS.values())),
                legend=alt.Legend(orient="top", title=None),
            ),
            # the stacking order by a number: an order on a nominal field is one Vega warns about
            order=alt.Order("rank:Q"),
            tooltip=[
                alt.Tooltip("yearmonthdate(day):T", title="day", format="%a %d %b"),
                "severity:N",
                "sum(alerts):Q",
            ],
        )
        .properties(height=260)
    )


def class_trend(days: list[ClassDay], flagged_days: dict[date, str] | None = None) -> alt.LayerChart:
    """Records of each high-sensitivity class read per local day; the days of high or critical
    ``sensitive_access`` alerts marked by a red rule (what they read is small beside a service's nightly job)."""
    rows = pd.DataFrame(
        [{"day": d.day.isoformat(), "class": d.data_class, "records": d.records} for d in days],
        columns=["day", "class", "records"],
    )
    marks = pd.DataFrame(
        [{"day": day.isoformat(), "flagged": told} for day, told in sorted((flagged_days or {}).items())],
        columns=["day", "flagged"],
    )
    x = alt.X("day:T", title=None, axis=DAY_AXIS)
    rules = (
        alt.Chart(marks)
        .mark_rule(color="#ab091e", strokeWidth=3, opacity=0.6)
        .encode(x=x, tooltip=[alt.Tooltip("day:T", format="%a %d %b"), "flagged:N"])
    )
    lines = (
        alt.Chart(rows)
        .mark_line(point=True)
        .encode(
            x=x,
            y=alt.Y("records:Q", title="records read"),
            color=alt.Color("class:N", legend=alt.Legend(orient="top", title=None)),
            tooltip=[alt.Tooltip("day:T", format="%a %d %b"), "class:N", alt.Tooltip("records:Q", format=",")],
        )
    )
    # no rule layer without a day to mark: an empty one has no extent, and Vega warns of an infinite one
    return alt.LayerChart(layer=[rules, lines] if flagged_days else [lines]).properties(height=260)


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
            x=alt.X("day:T", title=None, axis=DAY_AXIS),
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


def events_per_hour(rows: pd.DataFrame, zone: tzinfo, first: datetime, last: datetime) -> alt.Chart:
    """The Health page's events per hour (``hour`` naive local), on the 24-hour clock the other charts use."""
    return (
        alt.Chart(rows)
        .mark_bar()
        .encode(
            x=alt.X(
                "hour:T",
                title=local_axis_title(zone, first, last),
                axis=alt.Axis(format="%a %d %b %H:%M", labelAngle=0, labelOverlap=True),
            ),
            y=alt.Y("events:Q"),
            tooltip=[alt.Tooltip("hour:T", format="%a %d %b %H:00"), "events:Q", "denied:Q"],
        )
        .properties(height=240)
    )
