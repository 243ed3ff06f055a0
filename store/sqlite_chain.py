"""The chain as the embedded store offers it: ``SqliteChain``, a mixin of ``store.sqlite.SqliteStore``.

Separate from ``store.chain`` so that the dependencies go one way: this
module uses the format (``store.chain``), ``verify`` (``store.chain_verify``),
the purge accounting (``store.chain_purges``) and a signed head's check
(``store.chain_signed``), none of which imports it.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from store.chain import ChainedStore, ChainHead, ChainReport, PeriodAccount, PeriodDigest, head, period_digest
from store.chain_purges import account_period
from store.chain_signed import check_signed
from store.chain_verify import verify


class SqliteChain(ChainedStore):
    """``ChainedStore`` on the embedded store's connection (a mixin of ``store.sqlite.SqliteStore``)."""

    _db: sqlite3.Connection

    def verify_chain(self) -> ChainReport:
        return verify(self._db)

    def chain_head(self, entry: int | None = None) -> ChainHead | None:
        return head(self._db, entry)

    def period_digest(self, since: datetime, until: datetime, up_to_seq: int) -> PeriodDigest:
        return period_digest(self._db, _micros(since), _micros(until), up_to_seq)

    def account_period(self, since: datetime, until: datetime, entry: int, up_to_seq: int) -> PeriodAccount:
        return account_period(self._db, _micros(since), _micros(until), entry, up_to_seq)

    def check_signed(self, entry: int) -> ChainReport:
        return check_signed(self._db, entry)


def _micros(moment: datetime) -> int:
    return round(moment.timestamp() * 1_000_000)
