"""Signed digests of the audit trail: what an auditor hands a third party.

A digest document states, for a period of event time, how many events the
store held and one SHA-256 over them (``store.chain.period_digest``), and the
chain's head when it was made; it is signed with the auditors' Ed25519 key.
Anyone with the public key checks the signature without the store; with the
store, ``check_against_store`` also proves that the period's events are the
same as when it was signed, and that the chain still has the signed head (so
the chain was not rewritten since, which the chain alone cannot show), and
what that head commits to beyond the period's events: the chain up to it,
the audit-log rows and the incidents it records (``store.chain_signed``).

Retention deletes a period's events in time, so the check accounts for the
purges recorded after the signed entry: it rebuilds the digest as signed
from the rows left and the purged events' leaves, which the chain keeps
until every event of their entry is gone; past that it counts them.  Those
purge records come after the signed head, so they are as trustworthy as
the chain after it (a digest exported later anchors them).  Events stamped
in the period but stored after signing are not in the digest: the check
counts them, and ``verify`` checks them.

Keys are PEM files, as ``openssl genpkey -algorithm ed25519`` writes them
(``openssl pkey -in KEY -pubout`` for the public half).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, tzinfo
from pathlib import Path
from typing import Final, Literal, TypeVar

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, ValidationError

from accesswatch.words import plural
from models.event import format_utc, parse_rfc3339
from store.chain import ChainedStore, ChainReport, PeriodAccount, Problem
from store.chain_audit import AUDIT_TABLES

FORMAT: Final = "accesswatch-digest/1"
K = TypeVar("K")  # what a key file parses to


class NotADigest(ValueError):
    """A file that is not a digest ``export-digest`` wrote (empty, not JSON, fields missing); one line."""


class KeyFileError(ValueError):
    """A key file that is missing or is not an Ed25519 key; the message says which."""


class Period(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    since: str  # RFC 3339 UTC, inclusive (event time)
    until: str  # exclusive


class ChainAnchor(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    entry: int  # the chain's latest entry when the digest was made
    last_seq: int  # the store position it covers: later (late) events of the period are not in the digest
    head: str  # hex digest of that entry


class DigestDocument(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["accesswatch-digest/1"] = FORMAT
    period: Period
    events: int
    period_digest: str  # hex SHA-256 over (seq, leaf hash) of the period's events in store order
    chain: ChainAnchor
    created_at: str  # wall-clock, RFC 3339 UTC
    key_id: str  # SHA-256 of the raw public key (hex, 16 bytes): which key signed
    signature: str = ""  # base64 Ed25519 signature of ``signed_bytes``

    def signed_bytes(self) -> bytes:
        """What the signature covers: every field but the signature, as canonical JSON."""
        return orjson.dumps(self.model_dump(exclude={"signature"}), option=orjson.OPT_SORT_KEYS)


# -- keys ------------------------------------------------------------------------------------------
def load_private_key(path: Path) -> Ed25519PrivateKey:
    key = _load(path, lambda data: serialization.load_pem_private_key(data, password=None))
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path}: not an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    key = _load(path, serialization.load_pem_public_key)
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{path}: not an Ed25519 public key")
    return key


def _load(path: Path, parse: Callable[[bytes], K]) -> K:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read the key file ({exc.strerror or exc})") from None
    try:
        return parse(data)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{path}: not a PEM key ({exc})") from None


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:32]


# -- periods ----------------------------------------------------------------------------------------
def parse_moment(text: str, zone: tzinfo) -> datetime:
    """RFC 3339, or a date (``2026-11-02``): that day's start in the organisation's time zone."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return parse_rfc3339(text)
    return datetime.combine(day, time(), zone).astimezone(UTC)


# -- making and checking ---------------------------------------------------------------------------
def export_digest(
    store: ChainedStore, since: datetime, until: datetime, private_key: Ed25519PrivateKey
) -> DigestDocument:
    if until <= since:
        raise ValueError("the period ends before it starts")
    head = store.chain_head()
    if head is None:
        raise ValueError("the store has no chain yet: nothing was stored by a version that keeps one")
    period = store.period_digest(since, until, head.last_seq)
    document = DigestDocument(
        period=Period(since=format_utc(since), until=format_utc(until)),
        events=period.events,
        period_digest=period.digest.hex(),
        chain=ChainAnchor(entry=head.entry, last_seq=head.last_seq, head=head.digest.hex()),
        created_at=format_utc(datetime.now(UTC)),
        key_id=key_id(private_key.public_key()),
    )
    signature = private_key.sign(document.signed_bytes())
    return document.model_copy(update={"signature": base64.b64encode(signature).decode()})


def read_document(path: Path) -> DigestDocument:
    """The digest at ``path``; ``NotADigest`` names the first thing wrong (pydantic's dump is many lines)."""
    try:
        return DigestDocument.model_validate_json(Path(path).read_bytes())
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        problem = f"{where}: {first['msg']}" if where else first["msg"]
        more = f", and {exc.error_count() - 1} more" if exc.error_count() > 1 else ""
        raise NotADigest(f"not a digest file: {path} ({problem}{more})") from None


def check_signature(document: DigestDocument, public_key: Ed25519PublicKey) -> list[str]:
    """Problems with the document itself (an empty list: signed by this key, unaltered)."""
    problems = []
    if document.key_id != key_id(public_key):
        problems.append(f"signed by key {document.key_id}, not by the key given ({key_id(public_key)})")
    try:
        public_key.verify(base64.b64decode(document.signature, validate=True), document.signed_bytes())
    except (InvalidSignature, ValueError):
        problems.append("the signature does not match the document: it was altered, or signed by another key")
    return problems


@dataclass(slots=True)
class StoreCheck:
    """The document against the store now: problems (NOT VALID), else what the store holds of it."""

    problems: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)  # for a valid document: what the verdict rests on


def check_against_store(document: DigestDocument, store: ChainedStore) -> StoreCheck:
    """Whether the store holds the period as signed, less what retention purged since (reported)."""
    check = StoreCheck()
    head = store.chain_head(document.chain.entry)
    if head is None:
        check.problems.append(f"the store's chain has no entry {document.chain.entry}: it was cut or replaced")
    elif head.digest.hex() != document.chain.head:
        check.problems.append(
            f"the chain's entry {document.chain.entry} differs from the signed head: the chain was rewritten"
        )
    since, until = parse_rfc3339(document.period.since), parse_rfc3339(document.period.until)
    now = store.period_digest(since, until, document.chain.last_seq)
    if now.digest.hex() == document.period_digest:
        check.findings.append(f"the store holds the period's {now.events} events as signed")
    else:
        account = store.account_period(since, until, document.chain.entry, document.chain.last_seq)
        _after_purges(document, now.events, account, check)
    if now.later:
        check.findings.append(
            f"{now.later} events stamped in the period were stored after signing: the digest does not cover"
            " them (`accesswatch verify` checks them)"
        )
    if head is not None:
        _signed_entries(store.check_signed(document.chain.entry), check)
    return check


def _signed_entries(report: ChainReport, check: StoreCheck) -> None:
    """What the signed head commits to beyond the period's events (``store.chain_signed``): problems, or a finding."""
    if report.problems:
        check.problems += [
            f"under the signed head, {problem.kind} {_where(problem) + ': ' if _where(problem) else ''}{problem.detail}"
            for problem in report.problems
        ]
        return
    rows = [plural(report.rows_checked.get(name, 0), table.noun, table.plural) for name, table in AUDIT_TABLES.items()]
    held = (
        f"the chain up to the signed entry {report.head_entry} links as signed; the {', '.join(rows)} and"
        f" {plural(report.incidents_checked, 'incident')} it records are stored as recorded"
    )
    purged = sum(report.rows_purged.values())
    if purged:
        held += f" ({plural(purged, 'audit-log row')} it records purged by retention)"
    later = sum(report.rows_later.values())
    if later:
        held += (
            f"; {plural(later, 'audit-log row')} added after signing, not covered (`accesswatch verify` checks them)"
        )
    check.findings.append(held)


def _after_purges(document: DigestDocument, stored: int, account: PeriodAccount, check: StoreCheck) -> None:
    """The period differs from the signed digest: valid only if purges since signing account for it."""
    purged = account.purged + account.purged_unlisted
    if not purged:
        if stored != document.events:
            check.problems.append(f"the period has {stored} events stored now, {document.events} when it was signed")
        check.problems.append("the period's events differ from those signed (run `accesswatch verify` to name them)")
        return
    # an entry whose list went with its events may span an end of the period: then some of them were not in it
    at_most = "up to " if account.straddles else ""
    since = f"{at_most}{purged} of the period's events were purged by retention since signing"
    if account.unpurged:  # removed behind the product's back where purges ran that recorded a count only
        gone = f"{purged} of the period's events are missing where purges ran since signing"
        check.problems += [f"{gone}, but {text} (run `accesswatch verify`)" for text in account.unpurged]
        return
    if account.digest is not None:
        if account.digest.hex() == document.period_digest:
            check.findings.append(f"{since}; with them, the {stored} stored match the signed digest")
            return
        reason = "the period's events differ from those signed, even with them (run `accesswatch verify` to name them)"
        check.problems.append(f"{since}; {reason}{_undecided(account)}")
        return
    # some purged events went with their entry's list: their leaves are gone, the digest cannot be rebuilt
    # "20 of them with their chain entry's list of events" read as a riddle to an auditor (T19): say what is gone
    unlisted = (
        f"for {account.purged_unlisted} of them the chain no longer lists the events"
        " (a list goes once all its events are purged)"
    )
    least = stored + account.purged
    counts_match = (
        (least <= document.events <= least + account.purged_unlisted)
        if account.straddles
        else (least + account.purged_unlisted == document.events)
    )
    if counts_match and not account.changed:
        check.findings.append(
            f"{since}; {unlisted}, so the signed digest cannot be recomputed. What can be checked holds: the"
            f" events still stored ({stored}) match their records in the chain under the signed head, and with the"
            f" {purged} purged they make the {document.events} that were signed"
        )
        return
    if account.changed:
        check.problems.append(
            f"{account.changed} stored events of the period no longer match their records in the chain"
        )
    if not counts_match:
        check.problems.append(
            f"{since} ({unlisted}), but they and the {stored} stored do not make the {document.events}"
            f" signed{_undecided(account)}"
        )


def _undecided(account: PeriodAccount) -> str:
    if not account.undecided:
        return ""
    return (
        f" ({account.undecided} events were deleted by purges that recorded a count only, some of which ran"
        " before signing: whether these were signed cannot be told)"
    )


# What ``verify`` checks, and what it does not: "intact" was read as the whole store's verdict, and the alerts and
# the rest of the incidents are outside the chain (``store.chain_status`` says why)
COVERED = (
    "events and their search indexes",
    "the audit log (data accesses, triage actions)",
    "incidents' creations, severities and statuses, and their alerts' statuses",
    "alerts' and incidents' actors, against the ids made from them, and the alerts incidents list",
)
NOT_COVERED = (
    "the rest of alerts and incidents (summaries, scores, evidence)",
    "dead letters",
    "the dashboard's roll-ups",
)


def describe(report: ChainReport) -> list[str]:
    """The verification report as lines for a person: the verdict first, what it covers, then each problem."""
    # in the form ``verify --head`` takes back, and the chain-head log line gives
    head = f"head {report.head_entry}:{report.head.hex()}" if report.head else "no chain yet"
    lines = [
        f"{'intact' if report.intact else 'TAMPERED'}: {plural(report.entries, 'chain entry', 'chain entries')},"
        f" {plural(report.events_checked, 'event')} checked, {report.purged} purged by retention,"
        f" {_audit_rows(report)}, {plural(report.problem_count, 'problem')}; {head}",
        f"covered: {'; '.join(COVERED)}. Not covered: {'; '.join(NOT_COVERED)}",
    ]
    if report.unchained:
        were = "was" if report.unchained == 1 else "were"
        lines.append(
            f"note: {plural(report.unchained, 'event')} {were} stored before the chain was kept and cannot be verified"
        )
    lines += map(_problem_line, report.problems)
    return lines


def _problem_line(problem: Problem) -> str:
    where = _where(problem)
    return f"{problem.kind:<9}{where + ': ' if where else ''}{problem.detail}"


def _where(problem: Problem) -> str:
    """What a problem is about, as a person finds it: ``data access 7 (chain entry 12)``; empty if nothing."""
    where = f"seq {problem.seq}" if problem.seq is not None else ""
    if problem.table is not None:  # a row of the dashboard's audit log
        where = f"{AUDIT_TABLES[problem.table].noun} {problem.row}"
    elif problem.alert_id is not None:  # an alert or incident whose status its triage log does not account for
        where = f"alert {problem.alert_id}"
    elif problem.incident_id is not None:
        where = f"incident {problem.incident_id}"
    if problem.event_id:
        where += f" event {problem.event_id}"
    if problem.entry is not None:
        where += f" (chain entry {problem.entry})"
    return where.strip()


def _audit_rows(report: ChainReport) -> str:
    """The audit log as checked: ``4 data accesses and 2 triage actions checked (1 purged by retention)``."""
    checked = " and ".join(f"{report.rows_checked.get(name, 0)} {table.plural}" for name, table in AUDIT_TABLES.items())
    purged = sum(report.rows_purged.values())
    return f"{checked} checked" + (f" ({purged} purged by retention)" if purged else "")
