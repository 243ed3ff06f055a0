"""What a signed head commits to beyond its period's events: the chain up to it, the audit rows and incidents it lists.

A digest (``accesswatch.integrity``) signs a period's events and the chain's
head when it was made: entry N's digest, which covers every entry up to it,
the dashboard's audit log (``store.chain_audit``) and the incidents' records
(``store.chain_incidents``) included.  ``verify-digest --check-store``
compares the period's events (``store.chain_purges.account_period``) and
entry N's stored digest; this checks the rest, in one walk over the entries
up to N:

- each entry's digest is recomputed and its link to the one before it
  checked: an earlier entry altered while N's stored digest is untouched is
  otherwise unseen.  The events entries' lists are not hashed again: the
  events they list outside the period are other digests' business, and
  those inside it are rebuilt against the signed digest;
- the audit rows those entries list are compared with the tables: a row
  removed or changed is named; a row with an id past the last they list
  was added after signing (ids only grow), counted, not inserted (``verify``
  checks it);
- the incidents they record are compared as ``verify`` compares them: one
  gone that no purge recorded deleting, or stored below a recorded severity.

The purges of audit rows and incidents written after N are read too, for
what they deleted: like the period's events' purges since signing
(``store.chain_purges``), they are as trustworthy as the chain after the
signed head (a digest exported later anchors them).  The incidents'
statuses are not compared: the triage actions after N, which set them, are
not under the signed head (``verify`` compares them).
"""

from __future__ import annotations

import sqlite3

from store.chain import GENESIS, ChainReport, entries, entry_headers, with_leaves
from store.chain_audit import AUDIT_TABLES, AuditRows, is_audit_entry
from store.chain_incidents import PURGE as INCIDENTS_PURGE
from store.chain_incidents import IncidentRecords
from store.chain_verify import Listing, check_link

_PURGES = (*(table.purge_kind for table in AUDIT_TABLES.values()), INCIDENTS_PURGE)


def check_signed(db: sqlite3.Connection, signed: int) -> ChainReport:
    """The chain up to entry ``signed`` recomputed, and the audit rows and incidents it records compared with the
    store, in one read snapshot (a writer going on meanwhile does not look like tampering)."""
    report = ChainReport()
    db.execute("BEGIN")
    try:
        audit, incidents = AuditRows(db, report), IncidentRecords(db, report)
        prev, expected_n, chained_to = GENESIS, 1, 0
        for entry in entry_headers(db, up_to=signed):
            check_link(entry, prev, expected_n, chained_to, report)
            prev, expected_n = entry.digest, entry.n + 1
            report.head, report.head_entry = entry.digest, entry.n
            if is_audit_entry(entry):
                audit.add(with_leaves(db, entry))
            elif incidents.owns(entry):
                incidents.add(with_leaves(db, entry))
            elif entry.kind == "events":
                chained_to = max(chained_to, entry.last_seq)
        for purge in entries(db, after=signed, kinds=_PURGES):
            (audit if is_audit_entry(purge) else incidents).add(purge)
        audit.close(signed=True)
        listing = Listing(report)
        incidents.close((), listing.add)  # with no status check here, an incident gone is named by this alone
        listing.close()
    finally:
        db.execute("COMMIT")
    return report
