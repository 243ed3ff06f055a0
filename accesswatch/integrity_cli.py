"""The trust commands: ``verify``, ``export-digest``, ``verify-digest`` and ``purge``.

``verify`` recomputes the store's hash chain and names every event changed,
removed or inserted since it was stored, and every row of the dashboard's
audit log (data accesses, triage actions) likewise (exit 1 if any); with ``--head``, also
whether the chain still has the heads that ``run`` logged.  ``export-digest``
signs a period's digest with the auditors' Ed25519 key; ``verify-digest``
checks such a document with the public key alone, and with ``--check-store``
also against the store.  ``purge`` applies the retention policy
(``[retention]``), or with ``--dry-run`` only says what would go.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path

import orjson

from accesswatch import app, integrity
from accesswatch.arguments import WrongArgument, moment
from accesswatch.chain_heads import LoggedHead, check_heads
from accesswatch.words import plural
from ingest.sources import unreadable_reason
from models.config import Settings
from models.event import parse_rfc3339
from models.local_time import local_time
from models.visible import visible
from store.base import Store
from store.chain import ChainedStore
from store.retention import RetainingStore, RetentionPolicy

EXIT_OK, EXIT_FAILED = 0, 1


def add_commands(
    command: Callable[..., argparse.ArgumentParser], settings_of: Callable[[argparse.Namespace], Settings]
) -> None:
    """Add the subcommands; ``settings_of`` loads the configuration from the parsed arguments."""
    verify = command(
        "verify",
        _verify,
        "Recompute the hash chain; name every stored event or audit-log row changed, removed or added, and every"
        " incident deleted, lowered, moved or in a status its triage log does not give.",
    )
    verify.add_argument("--format", choices=["text", "json"], default="text")
    verify.add_argument(
        "--head",
        dest="heads",
        action="append",
        default=[],
        type=_logged_head,
        metavar="ENTRY:HASH",
        help="a chain head logged earlier (`chain head` lines of run and demo); the store must still have it."
        " Repeatable. Without one, a chain cut at its end with its events verifies intact",
    )

    export = command("export-digest", _export, "Sign a digest of a period's stored events (Ed25519) for auditors.")
    export.add_argument("--from", dest="since", required=True, metavar="TIME", help="RFC 3339, or a local date")
    export.add_argument("--to", dest="until", required=True, metavar="TIME", help="exclusive; RFC 3339 or a date")
    export.add_argument("--key", required=True, type=Path, metavar="FILE", help="Ed25519 private key (PEM)")
    export.add_argument("--out", type=Path, metavar="FILE", help="write the document here (default: stdout)")

    check = command("verify-digest", _verify_digest, "Check a signed digest with the public key (and the store).")
    check.add_argument("document", type=Path, metavar="FILE")
    check.add_argument("--public-key", required=True, type=Path, metavar="FILE", help="Ed25519 public key (PEM)")
    check.add_argument(
        "--check-store",
        action="store_true",
        help="also check that the store still holds the period as signed, less what retention purged since, and"
        " the chain, audit-log rows and incidents the signed head records",
    )
    check.epilog = (
        "exit status: 0 valid (with --check-store: the store holds the period as signed, or as signed less"
        " the events retention purged since, which the output counts, and the chain up to the signed head links"
        " and the audit-log rows and incidents it records are stored as recorded; it also counts events of the"
        " period and audit-log rows stored after signing, which the digest does not cover); 1 NOT VALID (the"
        " document, the key or the store disagree: the reasons follow; or FILE is missing or not a digest); 2 the"
        " command line is wrong"
    )

    purge = command("purge", _purge, "Delete raw events and alerts past the retention of [retention].")
    purge.add_argument("--dry-run", action="store_true", help="only say what would go")
    purge.add_argument("--as-of", metavar="TIME", help="apply the policy as of this time (default: now)")

    for sub in (verify, export, check, purge):
        sub.set_defaults(settings_of=settings_of)


def _chained(store: Store) -> ChainedStore:
    if not isinstance(store, ChainedStore):
        raise SystemExit("accesswatch: this store kind keeps no hash chain")
    return store


def _logged_head(text: str) -> LoggedHead:
    try:
        return LoggedHead.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _verify(args: argparse.Namespace) -> int:
    settings = args.settings_of(args)
    with app.open_store(settings, readonly=True) as store:
        report = _chained(store).verify_chain()
        # a chain cut back at its end is intact as it stands: only a head recorded elsewhere shows the cut
        report.problems.extend(check_heads(_chained(store), args.heads))
    if args.format == "json":
        sys.stdout.write(
            orjson.dumps(
                {
                    "intact": report.intact,
                    "entries": report.entries,
                    "events_checked": report.events_checked,
                    "purged": report.purged,
                    "unchained": report.unchained,
                    "rows_checked": report.rows_checked,  # the dashboard's audit log, by table
                    "rows_purged": report.rows_purged,
                    "incidents_checked": report.incidents_checked,  # severities compared with the chain's records
                    "head": report.head.hex() if report.head else None,
                    "head_entry": report.head_entry,
                    "problem_count": report.problem_count,  # with those counted on one line past the listed
                    "covered": integrity.COVERED,  # what was checked, and what is outside the chain
                    "not_covered": integrity.NOT_COVERED,
                    "problems": [
                        {
                            "kind": p.kind,
                            "seq": p.seq,
                            "event_id": p.event_id,
                            "entry": p.entry,
                            "detail": p.detail,
                            "count": p.count,
                            "table": p.table,  # a row of the audit log (data_accesses, triage_actions), not an event
                            "row": p.row,
                            # an incident whose status or severity the chain does not account for (or its alert)
                            "incident_id": p.incident_id,
                            "alert_id": p.alert_id,  # ... and the alert, if it is one of its alerts
                        }
                        for p in report.problems
                    ],
                }
            ).decode()
            + "\n"
        )
    else:
        # a problem names the event's id, the log's words: escaped (``models.visible``) as every table does
        sys.stdout.write("".join(visible(line) + "\n" for line in integrity.describe(report)))
    return EXIT_OK if report.intact else EXIT_FAILED


def _export(args: argparse.Namespace) -> int:
    settings = args.settings_of(args)
    zone = settings.organisation.tz
    since = moment("export-digest", "--from", args.since, zone)
    until = moment("export-digest", "--to", args.until, zone)
    if until <= since:  # a wrong argument (exit 2), found before the key or the store is read
        raise WrongArgument(
            f"accesswatch export-digest: --to {args.until} is not after --from {args.since}: the period would be empty"
        )
    try:
        key = integrity.load_private_key(args.key)
        with app.open_store(settings, readonly=True) as store:
            document = integrity.export_digest(_chained(store), since, until, key)
    except ValueError as exc:
        print(f"accesswatch export-digest: {exc}", file=sys.stderr)
        return EXIT_FAILED
    text = document.model_dump_json(indent=2) + "\n"  # the document keeps UTC: its format is signed
    if args.out:
        args.out.write_text(text)
        print(f"{document.events} events in {_period(document, zone)} signed into {args.out}")
    else:
        sys.stdout.write(text)
    return EXIT_OK


def _verify_digest(args: argparse.Namespace) -> int:
    # a digest that cannot be read verifies nothing: NOT VALID's status (1), as for a missing file, not a
    # wrong command line's (2), so that a script checking for 1 is never told "usage" about a damaged digest
    missing = unreadable_reason(str(args.document))
    if missing:
        print(f"accesswatch verify-digest: {missing}", file=sys.stderr)
        return EXIT_FAILED
    try:
        document = integrity.read_document(args.document)
        problems = integrity.check_signature(document, integrity.load_public_key(args.public_key))
    except (OSError, ValueError) as exc:
        print(f"accesswatch verify-digest: {exc}", file=sys.stderr)
        return EXIT_FAILED
    findings: list[str] = []
    settings = args.settings_of(args)  # the organisation's time zone, for the period as a person reads it
    if args.check_store and not problems:
        with app.open_store(settings, readonly=True) as store:
            check = integrity.check_against_store(document, _chained(store))
        problems, findings = check.problems, check.findings
    period = _period(document, settings.organisation.tz)
    if problems:
        print(f"NOT VALID: the digest of {period}:")
        for problem in problems:
            print(f"  {problem}")
        return EXIT_FAILED
    print(f"valid: {document.events} events in {period}, signed by key {document.key_id}")
    for finding in findings:
        print(f"  store: {finding}")
    return EXIT_OK


def _purge(args: argparse.Namespace) -> int:
    settings = args.settings_of(args)
    now = _as_of(args.as_of, settings.organisation.tz) if args.as_of else datetime.now(UTC)
    retention = settings.retention
    policy = RetentionPolicy.of(retention.events_days, retention.alerts_days, now)
    # a dry run reads: an older store is refused, not upgraded, as by every command that only reads
    with app.open_store(settings, readonly=args.dry_run, must_exist=True) as store:
        if settings.store.kind == "elasticsearch":
            return _purge_by_ilm(store, settings, now, args.dry_run)
        if not isinstance(store, RetainingStore):
            raise SystemExit("accesswatch: this store kind has no retention yet")
        report = store.purge(policy, dry_run=args.dry_run)
    verb, zone = "would purge" if args.dry_run else "purged", settings.organisation.tz
    print(
        f"{verb} {report.events} events stamped before {_local(policy.events_before, zone)}"
        f" ({retention.events_days} days) and {report.dead_letters} dead letters received before it"
    )
    kept = [f"{report.events_kept_as_evidence} cited as evidence by alerts kept"]
    if report.newest_kept:
        kept.append("the newest event (store positions never go back)")
    print(f"kept although older: {', '.join(kept)}")
    print(
        # an alert goes with its incident, whatever its own status (store.retention): "closed alerts" it was not
        f"{verb} {plural(report.incidents, 'closed incident')} that ended and were closed before"
        f" {_local(policy.alerts_before, zone)} ({retention.alerts_days} days), and"
        f" {plural(report.alerts, 'alert')}: theirs, and closed ones no incident holds"
    )
    unbacked = report.incidents_unbacked
    if unbacked:
        named = ", ".join(unbacked[:_NAMED]) + (f" and {len(unbacked) - _NAMED} more" if len(unbacked) > _NAMED else "")
        print(
            f"kept although closed and past keeping: {plural(len(unbacked), 'incident')} that no stored triage action"
            f" closes ({named}): their status was not set by a triage action; `accesswatch verify` names them"
        )
    return EXIT_OK


_NAMED = 20  # incidents the purge's line names; past it, it counts the rest


# how far ``--as-of`` may be ahead of this host's clock: a time read off another machine's clock (a `date -u`
# pasted from a laptop) is seconds ahead of an NTP-synced host, never minutes; a purge as of a minute ahead
# deletes at most the events of that minute early, where an hour or a day would delete what retention still keeps
_CLOCK_TOLERANCE = timedelta(minutes=1)


def _as_of(text: str, zone: tzinfo) -> datetime:
    """``--as-of``: a time not after now.  A purge as of a later time deletes events retention still keeps, and
    the subject-access answer would then state a period starting after it ends.  A dry run is refused alike: it
    says what the same command line would do, and that is a refusal (a forecast would also miss the events
    stored meanwhile)."""
    as_of, now = moment("purge", "--as-of", text, zone), datetime.now(UTC)
    if as_of > now + _CLOCK_TOLERANCE:
        raise WrongArgument(
            f"accesswatch purge: --as-of {text!r}: expected a time not after now ({_local(now, zone)}):"
            " a purge as of a later time would delete events retention still keeps"
        )
    return as_of


def _local(moment: datetime, zone: tzinfo) -> str:
    """A time as the other commands print it: local, with its UTC offset (``models.local_time``), to the second."""
    return local_time(moment, zone, seconds=True)


def _period(document: integrity.DigestDocument, zone: tzinfo) -> str:
    """The digest's period in local time, ``[since, until)``; as written in the document if it is no time."""
    try:
        since, until = parse_rfc3339(document.period.since), parse_rfc3339(document.period.until)
    except ValueError:  # a damaged period is for the signature check to refuse, not for this line
        return f"[{document.period.since}, {document.period.until})"
    return f"[{_local(since, zone)}, {_local(until, zone)})"


# what each family of Elasticsearch indices holds, as the purge's lines count it
_HELD = {
    "events": ("event", "events"),
    "deadletters": ("dead letter", "dead letters"),
    "alerts": ("alert", "alerts"),
    "incidents": ("incident", "incidents"),
    "actions": ("triage action", "triage actions"),
    "accesses": ("recorded data access", "recorded data accesses"),
}


def _purge_by_ilm(store: Store, settings: Settings, now: datetime, dry_run: bool) -> int:
    """On Elasticsearch, ILM deletes whole dated indices itself: ``--dry-run`` lists those past retention, counted."""
    from store.elasticsearch import ElasticsearchStore
    from store.elasticsearch import mappings as m
    from store.elasticsearch.retention import dated_before

    assert isinstance(store, ElasticsearchStore)
    prefix = store.settings.prefix
    if not dry_run:
        raise SystemExit(
            f"accesswatch purge: on Elasticsearch, retention is ILM's: its policies {prefix}-events and"
            f" {prefix}-records delete the indices past [retention] themselves; --dry-run lists them"
        )
    indices = store.indices_past_retention(now)
    retention = settings.retention
    for families, days, kind in (
        (m.DAILY, retention.events_days, "daily"),
        (m.MONTHLY, retention.alerts_days, "monthly"),
    ):
        due = [index for index in indices if index.family in families]
        counts = [_counted(sum(i.documents for i in due if i.family == family), *_HELD[family]) for family in families]
        cut = dated_before(store.settings, families[0], now)
        held = _counted(len(due), f"{kind} index", f"{kind} indices")
        print(
            f"would purge {', '.join(counts[:-1])} and {counts[-1]} in {held}"
            f" dated {cut:%Y-%m-%d} or earlier ({days} days before {_local(now, settings.organisation.tz)})"
        )
    for index in indices:
        print(f"  {index.name}: {_counted(index.documents, *_HELD[index.family])}")
    print(
        f"ILM deletes these whole indices itself (policies {prefix}-events and {prefix}-records), open incidents and"
        " the events alerts cite too: purge does not delete on Elasticsearch"
    )
    return EXIT_OK


def _counted(count: int, noun: str, plural: str) -> str:
    return f"{count:,} {noun if count == 1 else plural}"
