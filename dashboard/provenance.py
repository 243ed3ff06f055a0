"""What an auditor's export of the access log holds and how it was made, handed over with it.

The export leaves the organisation (a regulator, a court), where nobody can ask the dashboard which search made
it.  So it is a zip of two files named alike: the CSV, a header and one row an event as every CSV reader expects
(no lines of prose above the header, which readers take for the header), and its provenance as JSON: the search
as the file shows it, the period and the time zone of its times, who exported it, when and why, whether it holds
every event that matched (the export's cap) and every event of its period (retention), and the CSV's SHA-256.
The audit log records the export with the same file name and digest, so a file handed over is matched to the
record of its making, and a file changed since no longer matches.  The file's name says what it holds (the actor,
customer or event searched, the class or field, the period) and the second it was made: two exports of a day,
or of two searches, do not take each other's name.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from datetime import datetime, timedelta, tzinfo
from typing import Any

from pydantic import BaseModel, ConfigDict

from accesswatch import __version__
from dashboard.auth import Identity
from models.local_time import local_time
from store.base import EventQuery, KeptHistory

STEM = "accesswatch-events"
_UNSAFE_IN_FILE_NAMES = re.compile(r"[^A-Za-z0-9._-]+")
NAME_PART = 48  # characters of one searched value in a file's name: an id can be of any length
TIMES = "local time in {zone}, with each time's UTC offset, to the millisecond; newest first"


def name_part(value: str) -> str:
    """A value as a file's name may hold it: runs of anything but letters, digits, ``.``, ``_`` and ``-`` one
    dash, no leading or trailing dot (``cust#3fa9c2e1`` -> ``cust-3fa9c2e1``; ``../x`` -> ``x``)."""
    return _UNSAFE_IN_FILE_NAMES.sub("-", value).strip("-.")[:NAME_PART].strip("-.")


class Retained(BaseModel):
    """What retention left of the period: events older than ``deleted_before`` are gone, not merely unmatched."""

    model_config = ConfigDict(frozen=True)

    events_days: int | None  # the policy (``[retention] events_days``); None: not given
    oldest_event_kept: str | None
    deleted_before: str | None  # None: no purge deleted any yet
    period_complete: bool  # False: the period reaches before what is kept


class ExportProvenance(BaseModel):
    model_config = ConfigDict(frozen=True)

    file: str  # the CSV's name, in the zip beside this
    sha256: str  # of the CSV's bytes (UTF-8), as the audit log records it
    events: int
    complete: bool  # every matching event is in the file (the cap cut none) and retention deleted none of the period
    cap: int
    cut_by_cap: bool
    query: dict[str, Any]  # as the audit log records it, customer and record ids as the file shows them
    period: str
    time_zone: str
    times: str
    customer_ids: str  # "masked", "in clear", "the searched one in clear"
    exported_by: dict[str, str]
    exported_at: str  # local, with its offset
    reason: str
    retention: Retained
    recorded: str
    notes: list[str]
    made_by: str


def file_stem(query: EventQuery, customer_shown: str | None, zone: tzinfo, now: datetime) -> str:
    """``accesswatch-events-actor-emp-0001-2026-10-26-to-2026-11-25-exported-2026-11-25-143502``.

    ``customer_shown`` as the file shows the customer (a pseudonym unless unmasked): a file's name is seen where
    its content is not, a download list or a mail's subject.
    """
    searched = [
        ("event", query.event_id),
        ("actor", query.actor_id),
        ("customer", customer_shown),
        ("class", query.data_class),
        ("field", query.field),
        ("action", query.action.value if query.action else None),
        ("outcome", query.outcome.value if query.outcome else None),
    ]
    parts = [STEM, *(f"{what}-{name_part(value)}" for what, value in searched if value)]
    parts.append(_period_in_name(query, zone))
    parts.append(f"exported-{now.astimezone(zone):%Y-%m-%d-%H%M%S}")
    return "-".join(part for part in parts if part)


def _last_day(query: EventQuery, zone: tzinfo) -> str | None:
    # ``until`` is the first moment after the period: its day is the one after the last asked for
    return (query.until - timedelta(microseconds=1)).astimezone(zone).date().isoformat() if query.until else None


def _period_in_name(query: EventQuery, zone: tzinfo) -> str:
    first = query.since.astimezone(zone).date().isoformat() if query.since else None
    last = _last_day(query, zone)
    if first and last:
        return f"{first}-to-{last}"
    if first or last:
        return f"from-{first}" if first else f"to-{last}"
    return "all-history"


def _period_in_words(query: EventQuery, zone: tzinfo, now: datetime) -> str:
    start = local_time(query.since, zone, seconds=True) if query.since else "the oldest event kept"
    end = local_time(query.until, zone, seconds=True) if query.until else f"the export, {local_time(now, zone, True)}"
    return f"events stamped from {start} up to (not including) {end}"


def _retained(query: EventQuery, history: KeptHistory, zone: tzinfo, events_days: int | None) -> Retained:
    horizon = history.deleted_before
    return Retained(
        events_days=events_days,
        oldest_event_kept=local_time(history.oldest, zone, seconds=True) if history.oldest else None,
        deleted_before=local_time(horizon, zone, seconds=True) if horizon else None,
        period_complete=horizon is None or (query.since is not None and query.since >= horizon),
    )


def describe(
    csv_text: str,
    events: int,
    *,
    cut_by_cap: bool,
    cap: int,
    query: EventQuery,
    query_shown: dict[str, Any],
    customer_shown: str | None,
    customer_ids: str,
    identity: Identity,
    reason: str,
    zone: tzinfo,
    now: datetime,
    history: KeptHistory,
    events_days: int | None,
) -> ExportProvenance:
    """The provenance of one export's CSV, its name included."""
    retained = _retained(query, history, zone, events_days)
    notes = [f"The file holds {events:,} events matching the query, newest first."]
    if cut_by_cap:
        notes.append(
            f"More events matched than the {cap:,} one export may hold: the file holds the newest {events:,}. Narrow"
            " the search (dates, actor) to export the rest."
        )
    if not retained.period_complete:
        notes.append(
            f"Retention deleted the events stamped before {retained.deleted_before}"
            + (f" (kept {events_days} days)" if events_days else "")
            + ": the period reaches before them, so the file cannot hold them."
        )
    if customer_ids != "in clear":
        notes.append(
            "Customer ids other than those in clear are pseudonyms (cust#...): stable across this installation's"
            " exports, so still personal data, and not reversible without its key."
        )
    return ExportProvenance(
        file=file_stem(query, customer_shown, zone, now) + ".csv",
        sha256=hashlib.sha256(csv_text.encode()).hexdigest(),
        events=events,
        complete=not cut_by_cap and retained.period_complete,
        cap=cap,
        cut_by_cap=cut_by_cap,
        query=query_shown,
        period=_period_in_words(query, zone, now),
        time_zone=str(zone),
        times=TIMES.format(zone=zone),
        customer_ids=customer_ids,
        exported_by={"user": identity.username, "name": identity.display_name, "role": identity.role.value},
        exported_at=local_time(now, zone, seconds=True),
        reason=reason,
        retention=retained,
        recorded="in the dashboard's audit log as an export, by the user above, under the reason above, with this"
        " file's name and SHA-256",
        notes=notes,
        made_by=f"accesswatch {__version__}",
    )


def archive(csv_text: str, provenance: ExportProvenance, now: datetime, zone: tzinfo) -> bytes:
    """The zip handed over: ``<name>.csv`` and ``<name>.provenance.json``, dated the export's local time."""
    stem = provenance.file.removesuffix(".csv")
    stamp = now.astimezone(zone).timetuple()[:6]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr(zipfile.ZipInfo(provenance.file, stamp), csv_text.encode(), zipfile.ZIP_DEFLATED)
        body = provenance.model_dump_json(indent=2).encode()
        bundle.writestr(zipfile.ZipInfo(f"{stem}.provenance.json", stamp), body, zipfile.ZIP_DEFLATED)
    return out.getvalue()
