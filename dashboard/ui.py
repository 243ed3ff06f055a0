"""What every page shares: the session's settings, store and signed-in person, and a few display helpers."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import streamlit as st

from dashboard import queries
from dashboard.auth import (
    Identity,
    Permission,
    SignInThrottle,
    Throttled,
    checked_sign_in,
    email_unverified,
    oidc_identity,
)
from dashboard.explain import detector_title
from dashboard.markdown import markdown_text
from dashboard.masking import Masker, load_key
from models.config import Settings
from models.dashboard import DataAccessKind, FoldProgress
from models.flagged import Flagged, runs
from models.incident import Incident
from store.base import EventTotal, Store

HERE = Path(__file__).resolve().parent
log = logging.getLogger(__name__)
SEVERITY_COLOR = {"critical": "#ab091e", "high": "#f35627", "medium": "#f0b429", "low": "#9fb3c8"}
SEVERITY_BADGE = {"critical": "red", "high": "orange", "medium": "yellow", "low": "gray"}  # st.badge colours
STATUS_LABEL = {
    "open": "open",
    "acknowledged": "acknowledged",
    "resolved": "resolved",
    "false_positive": "false positive",
}


@dataclass(slots=True)
class Context:
    settings: Settings
    store: Store
    identity: Identity
    masker: Masker

    @property
    def zone(self) -> tzinfo:
        return self.settings.organisation.tz

    def can(self, permission: Permission) -> bool:
        return self.identity.can(permission)


@st.cache_resource(show_spinner=False)
def _settings(environment: tuple[tuple[str, str], ...]) -> Settings:
    from configs.loader import load_settings

    return load_settings(env=dict(environment))


def settings() -> Settings:
    """The configuration (``ACCESSWATCH_*`` and ``ACCESSWATCH_CONFIG``), read once per server and environment."""
    return _settings(_environment())


def _environment() -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("ACCESSWATCH_")))


def store() -> Store:
    """The session's own store connection: sessions run in threads, and a connection is not for sharing."""
    if "_store" not in st.session_state:
        from accesswatch.app import StoreUnreadable, open_store
        from store.base import StoreNeedsUpgrade, StoreTooNew

        config = settings()
        try:
            # refused as the CLI refuses it: a mistyped data dir would show the empty queue of a store of its making,
            # and a store a newer version upgraded would be misread
            st.session_state["_store"] = open_store(config, must_exist=True)
        except (FileNotFoundError, StoreUnreadable, StoreTooNew, StoreNeedsUpgrade) as exc:
            st.error(str(exc))
            st.stop()
        _background_fold(str(config.data_dir), config.dashboard.refresh, config)
    return st.session_state["_store"]


@st.cache_resource(show_spinner=False)
def _background_fold(data_dir: str, every: float, _config: Settings) -> threading.Thread:
    """One thread per server keeps an adapter's pre-aggregated figures up to date (SQLite's roll-ups).

    Pages fold a small backlog themselves; this folds a large one (a first
    look at a big store, a replay in progress) without a page waiting on it.
    """
    from accesswatch.app import open_store

    def loop() -> None:
        try:
            with open_store(_config, must_exist=True) as own:  # a connection of its own: this is another thread
                fold = getattr(own, "fold", None)
                while fold is not None:
                    fold()
                    time.sleep(every)
        except Exception:  # the pages still fold small backlogs themselves
            log.exception("background folding of %s stopped", data_dir)

    thread = threading.Thread(target=loop, name="dashboard-fold", daemon=True)
    thread.start()
    return thread


def signed_in() -> Identity | None:
    identity = st.session_state.get("_identity")
    if identity is not None:
        return identity
    oidc = settings().dashboard.oidc
    if oidc.enabled and getattr(st.user, "is_logged_in", False):
        identity = oidc_identity(settings().dashboard, _claim("email"), _claim("name"), st.user.get("email_verified"))
        if identity is not None:
            st.session_state["_identity"] = identity
        return identity
    return None


def _claim(name: str) -> str | None:
    """A text claim of the signed-in user; st.user also holds flags (``email_verified``) and tokens."""
    value = st.user.get(name)
    return value if isinstance(value, str) else None


@st.cache_resource(show_spinner=False)
def _throttle_for(environment: tuple[tuple[str, str], ...]) -> SignInThrottle:
    return SignInThrottle(_settings(environment).dashboard.sign_in)


def sign_in_throttle() -> SignInThrottle:
    """The failed sign-ins of every session of this server (and configuration)."""
    return _throttle_for(_environment())


def throttled_message(refused: Throttled) -> str:
    whose = "on this dashboard" if refused.every_name else "for this user name"
    return f"Too many failed sign-ins {whose}: try again in {duration(max(refused.retry_after, 1))}."


def sign_in_form() -> None:
    """The sign-in page: the configured users' form, and SSO when configured."""
    config = settings().dashboard
    _, middle, _ = st.columns([1, 1.2, 1])
    with middle:
        st.title("accesswatch")
        st.caption("Who reads customer data, and is it more than their work needs?")
        if config.oidc.enabled:
            if getattr(st.user, "is_logged_in", False):
                email = markdown_text(str(st.user.get("email")))  # the provider's text: shown, never formatted
                if email_unverified(st.user.get("email_verified")):
                    st.error(f"{email} is not verified by the sign-on provider: verify it there, then sign in again.")
                else:
                    st.error(f"{email} has no role in accesswatch: ask an administrator.")
                st.button("Sign out", on_click=st.logout)
            else:
                st.button("Sign in with single sign-on", type="primary", on_click=_oidc_login)
        if config.users:
            with st.form("sign-in"):
                username = st.text_input("User name", autocomplete="username")
                password = st.text_input("Password", type="password", autocomplete="current-password")
                if st.form_submit_button("Sign in", type="primary", width="stretch"):
                    identity = checked_sign_in(config, sign_in_throttle(), username, password)
                    if isinstance(identity, Throttled):
                        st.error(throttled_message(identity))
                    elif identity is None:
                        st.error("Wrong user name or password.")
                    else:
                        st.session_state["_identity"] = identity
                        st.rerun()
            if config.demo_sign_in:
                st.info("Demo: sign in as **demo**, **analyst** or **auditor** with password **accesswatch-demo**.")


def _oidc_login() -> None:
    st.login(settings().dashboard.oidc.provider)


def sign_out() -> None:
    identity: Identity | None = st.session_state.get("_identity")
    for key in list(st.session_state.keys()):
        if key != "_store":
            del st.session_state[key]
    if identity is not None and identity.via == "oidc":
        st.logout()


def context() -> Context:
    """The signed-in page's context; a page stops here when nobody is signed in."""
    identity = signed_in()
    if identity is None:
        sign_in_form()
        st.stop()
    config = settings()
    return Context(
        config,
        store(),
        identity,
        Masker(_mask_key(config), unmasked=unmasked(), references=config.dashboard.readable_references),
    )


@st.cache_resource(show_spinner=False)
def _mask_key_for(data_dir: str) -> bytes:
    return load_key(Path(data_dir))


def _mask_key(config: Settings) -> bytes:
    return _mask_key_for(str(config.data_dir))


def unmasked() -> bool:
    return bool(st.session_state.get("_unmask_reason"))


def unmask_control(ctx: Context) -> None:
    """In the sidebar: customer ids in clear, for those who may, with a recorded reason."""
    if not ctx.can(Permission.UNMASK):
        st.caption("Customer identifiers are masked.")
        return
    if unmasked():
        st.caption(f"Customer ids shown in clear: {st.session_state['_unmask_reason']}")
        if st.button("Mask again", key="mask-again"):
            del st.session_state["_unmask_reason"]
            st.rerun()
        return
    with st.popover("Show customer ids in clear"):
        reason = st.text_input("Reason (recorded)", key="unmask-reason", placeholder="e.g. DSAR 2026-118")
        if st.button("Unmask", key="unmask", disabled=not reason.strip()):
            queries.record_access(ctx.store, ctx.identity, DataAccessKind.UNMASK, reason)
            st.session_state["_unmask_reason"] = reason.strip()
            st.rerun()


def record_view(
    ctx: Context, view: dict, shown: list[str], events: int, content: tuple = (), incident_id: str | None = None
) -> None:
    """Unmasked, record that this page showed these customer ids in clear, under the session's unmask reason.

    ``view`` names the page as it was asked (an incident's events and their page, a search's query), so
    that the rows can be read again; ``content`` tells apart two showings of one view (the events' ids).
    Streamlit runs the page's script anew at each click in it: the same view of the same content, in this
    session and under this reason, is recorded once within ``dashboard.view_recorded_again``.
    """
    if not ctx.masker.unmasked or not events:
        return
    reason = st.session_state["_unmask_reason"]
    key = stable_key(reason, orjson.dumps(view, option=orjson.OPT_SORT_KEYS).decode(), *content, *shown)
    recorded: dict[str, float] = st.session_state.setdefault("_views_recorded", {})
    now = time.monotonic()
    again = ctx.settings.dashboard.view_recorded_again
    if key in recorded and now - recorded[key] < again:
        return
    queries.record_access(
        ctx.store, ctx.identity, DataAccessKind.VIEW, reason, view, events, incident_id, in_clear=shown
    )
    for old in [k for k, at in recorded.items() if now - at >= again]:  # a long session keeps a few
        del recorded[old]
    recorded[key] = now


# -- display helpers ----------------------------------------------------------------------
def local_time(ctx: Context, moment: datetime | None, seconds: bool = False) -> str:
    """The organisation's local time with its UTC offset (``2026-11-25 05:45 +08:00``): no reader guesses the zone."""
    if moment is None:
        return "—"
    return queries.local_time(moment, ctx.zone, seconds)


def local_span(ctx: Context, start: datetime, end: datetime) -> tuple[str, str]:
    """A span, short: its start (``28 Oct 14:00``), and its end with the offset (``to 28 Oct 15:00, UTC+08:00``).

    Two offsets when daylight saving changed the clock within the span.
    """
    first, last = start.astimezone(ctx.zone), end.astimezone(ctx.zone)
    on, off = queries.utc_offset(first), queries.utc_offset(last)
    zone = f"UTC{on}" if on == off else f"UTC{on} to UTC{off}"
    return first.strftime("%d %b %H:%M"), f"to {last.strftime('%d %b %H:%M')}, {zone}"


def short_range(ctx: Context, start: datetime, end: datetime) -> str:
    """A span in local time without the year or offset: ``16 Oct 14:00–17:00``, ``15 Oct 22:00 – 16 Oct 02:00``."""
    first, last = start.astimezone(ctx.zone), end.astimezone(ctx.zone)
    if first.date() == last.date():
        return f"{first:%d %b %H:%M}–{last:%H:%M}"
    return f"{first:%d %b %H:%M} – {last:%d %b %H:%M}"


def flagged_caption(ctx: Context, flagged: Flagged, incident: Incident, detected: datetime | None) -> str:
    """Under an incident's header: each run of flagged hours (the worst first), the incident's window around
    them, and which clock the detection time is on."""
    said = [
        f"{run.severity.value} {short_range(ctx, run.start, run.end)} ({', '.join(map(detector_title, run.detectors))})"
        for run in runs(flagged.spans)
    ]
    shown = "; ".join(said[:6]) + (f"; and {len(said) - 6} more" if len(said) > 6 else "")
    text = f"Flagged: {shown}." if said else ""
    if (incident.window_start, incident.window_end) != (flagged.start, flagged.end):
        window_from, window_to = local_span(ctx, incident.window_start, incident.window_end)
        text += f" The incident's window, its findings merged: {window_from} {window_to}."
    if detected is not None:
        text += (
            f" Detected {local_time(ctx, detected)} on this server's clock, when accesswatch first stored the incident"
            " (the activity's times are the events' own): the reporting deadline counts from then."
        )
    return text


def events_in_view(page_number: int, page_size: int, shown: int, total: EventTotal, last_page: bool) -> str:
    """``Page 2 of 2 · events 51–76 of 76, newest first``: where the page is among the events that match.

    The last page tells the total whatever the count said; before it, a count the store stopped short
    (``EventTotal.more``) is "more than" the most known: counted, or shown so far.
    """
    if not shown:
        return f"Page {page_number} · no events"
    first = (page_number - 1) * page_size + 1
    last = first + shown - 1
    if last_page:
        total = EventTotal(last)
    if not total.more:
        pages = max(1, -(-total.events // page_size))
        return f"Page {page_number} of {pages:,} · events {first:,}–{last:,} of {total.events:,}, newest first"
    known = max(total.events, last)
    uncounted = "" if total.events >= last else " (not counted further: that would read much of the store)"
    return f"Page {page_number} · events {first:,}–{last:,} of more than {known:,}{uncounted}, newest first"


def counted_events(total: EventTotal) -> str:
    """``76 events``, ``more than 10,000 events``; ``many events`` where the store stopped counting at once."""
    if not total.more:
        return f"{total.events:,} events"
    return f"more than {total.events:,} events" if total.events else "many events (too many to count quickly)"


def shortened(text: str, limit: int) -> str:
    """``text`` whole if it fits, else cut at the last word that fits and marked with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:-") + "…"


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None:
        return "—"
    seconds = ((now or datetime.now(UTC)) - moment).total_seconds()
    return f"{duration(abs(seconds))} {'ago' if seconds >= 0 else 'from now'}"


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def deadline_standing(view: queries.IncidentView, now: datetime) -> tuple[str, str]:
    """The reporting deadline as a metric's value and the start of its detail line.

    Open: the time left, or how long overdue.  Closed (resolved, false positive): the clock stopped
    when a person closed it, so the status, and the detail says how that fell against the deadline.
    """
    left = view.seconds_before_deadline(now)
    status = STATUS_LABEL[view.incident.status.value]
    if left is None:  # no deadline, or closed at a time the triage log does not hold
        return ("unknown" if view.is_open else status), ""
    if view.is_open:
        return duration(abs(left)) + (" left" if left >= 0 else " overdue"), ""
    return status, f"{duration(abs(left))} {'before' if left >= 0 else 'after'} the deadline · "


def severity_label(severity: str) -> str:
    """Markdown: the severity as a coloured badge (no emoji: fonts without them show boxes)."""
    return f":{SEVERITY_BADGE.get(severity, 'gray')}-badge[{severity}]"


def severity_cell_style(severity: str) -> str:
    """A pandas Styler rule for a severity cell of a table."""
    color = SEVERITY_COLOR.get(severity)
    text = "white" if severity in ("critical", "high") else "#1f2933"
    return f"background-color: {color}; color: {text}; font-weight: 600" if color else ""


def actor_label(incident: Incident) -> str:
    detail = incident.actor_role or incident.actor_kind.value
    if incident.actor_organization:
        detail += f", {incident.actor_organization}"
    return f"{incident.actor_id} ({detail})"


def still_folding(progress: FoldProgress, then: str) -> str:
    """The notice of a page whose figures the fold has not caught up with: how far it is, and what ``then``."""
    return (
        f"The hourly figures are still being computed: {progress.folded:,} of {progress.events:,} stored events"
        f" folded so far; {then}."
    )


def newest_event(ctx: Context) -> datetime | None:
    """Time ranges are anchored at the newest event, so a replayed month reads like a live one."""
    return ctx.store.health().newest_event


def period_choice(label: str, key: str, default: str = "all") -> timedelta | None:
    options = {
        "last 24 hours": timedelta(days=1),
        "last 7 days": timedelta(days=7),
        "last 30 days": timedelta(days=30),
        "all": None,
    }
    choice = st.selectbox(label, list(options), index=list(options).index(default), key=key)
    return options[choice]


def stable_key(*parts: object) -> str:
    return hashlib.sha1("\x1f".join(map(str, parts)).encode()).hexdigest()[:12]


def clickable_table(rows: pd.DataFrame, key: str, column_config: Any = None) -> int | None:
    """A table of incidents (severity coloured) whose rows open: the row picked by its tick box or by a click on
    any of its cells, else None."""
    picked = st.dataframe(
        rows.style.map(severity_cell_style, subset=["severity"]),
        hide_index=True,
        width="stretch",
        on_select="rerun",
        selection_mode=["single-row", "single-cell"],
        key=key,
        column_config=column_config,
    )
    if picked is None:
        return None
    chosen = picked.selection.rows or [row for row, _ in picked.selection.cells]
    return chosen[0] if chosen else None
