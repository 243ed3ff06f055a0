"""Signed digests of the audit trail: what an auditor hands a third party.

A digest document states, for a period of event time, how many events the
store held and one SHA-256 over them (``store.chain.period_digest``), and the
chain's head when it was made; it is signed with the auditors' Ed25519 key.
Anyone with the public key checks the signature without the store; with the
store, ``check_against_store`` also proves that the period's events are the
same as when it was signed, and that the chain still has the signed head (so
the chain was not rewritten since, which the chain alone cannot show).

Keys are PEM files, as ``openssl genpkey -algorithm ed25519`` writes them
(``openssl pkey -in KEY -pubout`` for the public half).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from datetime import UTC, date, datetime, time, tzinfo
from pathlib import Path
from typing import Final, Literal, TypeVar

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict

from models.event import format_utc, parse_rfc3339
from store.chain import ChainedStore, ChainReport

FORMAT: Final = "accesswatch-digest/1"
K = TypeVar("K")  # what a key file parses to


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
    return DigestDocument.model_validate_json(Path(path).read_bytes())


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


def check_against_store(document: DigestDocument, store: ChainedStore) -> list[str]:
    """Problems between the document and the store now (an empty list: the period is as signed)."""
    problems = []
    head = store.chain_head(document.chain.entry)
    if head is None:
        problems.append(f"the store's chain has no entry {document.chain.entry}: it was cut or replaced")
    elif head.digest.hex() != document.chain.head:
        problems.append(
            f"the chain's entry {document.chain.entry} differs from the signed head: the chain was rewritten"
        )
    since, until = parse_rfc3339(document.period.since), parse_rfc3339(document.period.until)
    now = store.period_digest(since, until, document.chain.last_seq)
    if now.events != document.events:
        problems.append(f"the period has {now.events} events stored now, {document.events} when it was signed")
    if now.digest.hex() != document.period_digest:
        problems.append("the period's events differ from those signed (run `accesswatch verify` to name them)")
    return problems


def describe(report: ChainReport) -> list[str]:
    """The verification report as lines for a person: the verdict first, then each problem."""
    head = f"head {report.head.hex()} (entry {report.head_entry})" if report.head else "no chain yet"
    lines = [
        f"{'intact' if report.intact else 'TAMPERED'}: {report.entries} chain entries, {report.events_checked} events"
        f" checked, {report.purged} purged by retention, {len(report.problems)} problems; {head}"
    ]
    if report.unchained:
        lines.append(f"note: {report.unchained} events were stored before the chain was kept and cannot be verified")
    for problem in report.problems:
        where = f"seq {problem.seq}" if problem.seq is not None else ""
        if problem.event_id:
            where += f" event {problem.event_id}"
        if problem.entry is not None:
            where += f" (chain entry {problem.entry})"
        lines.append(f"{problem.kind:<9}{where.strip()}: {problem.detail}")
    return lines
