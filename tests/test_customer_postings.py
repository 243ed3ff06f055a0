"""The customer index (store.customer_postings): every event that holds a customer id is found by it."""

from __future__ import annotations

import random
import sqlite3
import zlib

import pytest

from store import customer_postings as postings
from store.base import EventQuery
from store.customer_postings import MERGE_EVENTS, customer_hash, index_customers, seqs_of
from store.sqlite import SqliteStore
from store.sqlite_schema import MIGRATIONS
from tests import factories as f


def _db() -> sqlite3.Connection:
    """Only the postings table, as migration 0006 makes it."""
    db = sqlite3.connect(":memory:", isolation_level=None)
    script = dict(MIGRATIONS)["0006-customer-postings"]
    db.executescript(script[: script.index("INSERT INTO customer_postings")])
    return db


def _events(rng: random.Random, count: int) -> list[list[str] | None]:
    """Customer ids of ``count`` events: none, empty, a few, repeats within an event, odd text."""
    pool = [f"c-{n}" for n in range(300)] + ["", "客户-7", 'x"y', "a b"]
    return [
        None if rng.random() < 0.1 else [rng.choice(pool) for _ in range(rng.randrange(0, 8))] for _ in range(count)
    ]


def _truth(events: list[list[str] | None], customer: str) -> list[int]:
    """The seqs (from 1) whose ids share the customer's hash: exactly what the index may answer."""
    wanted = customer_hash(customer)
    return [seq for seq, ids in enumerate(events, start=1) if ids and wanted in {customer_hash(c) for c in ids}]


@pytest.mark.parametrize("sizes", [[1] * 40, [7, 3, 250, 1, 90], [MERGE_EVENTS + 5, 3], [4000, 4000, 4000, 1, 9000]])
def test_every_event_is_found_by_each_of_its_customers_whatever_the_writes(sizes):
    rng = random.Random(sum(sizes))
    db, events = _db(), []
    for size in sizes:
        batch = _events(rng, size)
        index_customers(db, len(events) + 1, batch)
        events += batch
    for customer in ["c-0", "c-17", "c-299", "", "客户-7", 'x"y', "a b", "never-seen"]:
        assert seqs_of(db, customer) == _truth(events, customer), customer


def test_small_writes_are_merged_once_they_span_enough_events():
    rng, db, events = random.Random(7), _db(), []
    step = MERGE_EVENTS // 8
    for _ in range(7):
        batch = _events(rng, step)
        index_customers(db, len(events) + 1, batch)
        events += batch
    pending = db.execute("SELECT count(*), min(first_seq), max(last_seq) FROM customer_postings WHERE merged = 0")
    assert pending.fetchone() == (7 * postings.BUCKETS, 1, 7 * step)
    batch = _events(rng, step)
    index_customers(db, len(events) + 1, batch)
    events += batch
    rows = db.execute("SELECT merged, first_seq, last_seq, count(*) FROM customer_postings GROUP BY 1, 2, 3").fetchall()
    assert rows == [(1, 1, 8 * step, postings.BUCKETS)]  # one row per bucket, spanning all eight writes
    assert seqs_of(db, "c-5") == _truth(events, "c-5")


def test_an_id_repeated_in_one_event_is_indexed_once_and_rows_are_sorted():
    db = _db()
    index_customers(db, 1, [["c-1", "c-1", "c-2"], None, [], ["c-2", "c-1"]])
    assert seqs_of(db, "c-1") == [1, 4] and seqs_of(db, "c-2") == [1, 4]
    for (blob,) in db.execute("SELECT postings FROM customer_postings"):
        pairs = list(zip(*[iter(memoryview(blob).cast("I").tolist())] * 2, strict=True))
        assert pairs == sorted(set(pairs))


def test_the_store_tells_apart_two_customers_that_share_a_hash(tmp_path, settings):
    # CRC-32 is 32 bits: among 300,000 random ids two collide (birthday bound); the store re-checks each body
    rng, seen = random.Random(1), {}
    for _ in range(300_000):
        customer = f"cust-{rng.randbytes(8).hex()}"
        other = seen.setdefault(zlib.crc32(customer.encode()), customer)
        if other != customer:
            break
    else:  # pragma: no cover - the birthday bound makes this vanishingly unlikely
        pytest.fail("no two ids shared a hash")
    assert customer_hash(customer) == customer_hash(other)
    with SqliteStore(tmp_path / "a.db") as store:
        store.write([f.incoming(settings, customer_ids=[customer]), f.incoming(settings, customer_ids=[other])])
        found = {c: [e.seq for e in store.query_events(EventQuery(customer_id=c)).items] for c in (customer, other)}
        assert found == {customer: [1], other: [2]}
