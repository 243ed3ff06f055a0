"""The store's write, done in SQLite and in batch where it was per-event Python, stores what it did before.

The idempotency keys are read back from the event rows just inserted
(``event_keys.add_stored``); the data classes are indexed per class with
numpy (``store.class_postings``); the customer postings are sorted on one
64-bit key.  Each is checked here against the plain definition of what it
must produce.
"""

from __future__ import annotations

import numpy as np
import pytest

from store import class_postings, customer_postings
from store.base import IncomingEvent
from store.sqlite import SqliteStore
from tests import factories as f
from tests.factories import at


def _class_rows(store: SqliteStore) -> list[tuple]:
    """(class, ts, seq) of every class postings entry."""
    rows = []
    for name, first_seq, blob in store._db.execute("SELECT class, first_seq, postings FROM class_postings"):
        times, offsets = class_postings.stored_postings(blob)
        rows += [(name, ts, first_seq + offset) for ts, offset in zip(times.tolist(), offsets.tolist(), strict=True)]
    return sorted(rows)


def _expected_class_rows(store: SqliteStore, batch: list[IncomingEvent]) -> list[tuple]:
    stored = store._db.execute("SELECT seq, ts, event_id FROM events ORDER BY seq").fetchall()
    classes = {incoming.event.event_id: incoming.classes for incoming in batch}
    return sorted((name, ts, seq) for seq, ts, event_id in stored for name in classes[event_id])


def _batch(settings, fields_of_each: list[list[str]]) -> list[IncomingEvent]:
    return [f.incoming(settings, at=at(hours=n), fields=fields) for n, fields in enumerate(fields_of_each)]


def test_each_event_has_a_class_row_per_class_of_its_own(tmp_path, settings):
    fields = [["passport_number"], ["email", "iban"], [], ["email"], ["iban", "passport_number", "email"]]
    with SqliteStore(tmp_path / "a.db") as store:
        first, second = _batch(settings, fields), _batch(settings, list(reversed(fields)))
        store.write(first)
        store.write(second)
        assert any(incoming.classes for incoming in first)
        assert _class_rows(store) == _expected_class_rows(store, first + second)


def test_class_names_that_a_comma_would_confuse_are_indexed_each_under_its_own(tmp_path, settings):
    # {"a,b"} and {"a", "b"} join into the same ``classes`` text: that text cannot name the set
    with SqliteStore(tmp_path / "a.db") as store:
        plain, odd = f.incoming(settings, at=at(hours=1)), f.incoming(settings, at=at(hours=2))
        batch = [plain._replace(classes=frozenset({"a", "b"})), odd._replace(classes=frozenset({"a,b"}))]
        store.write(batch)
        assert _class_rows(store) == _expected_class_rows(store, batch)


def test_a_class_named_by_the_empty_string_is_not_taken_for_no_class(tmp_path, settings):
    with SqliteStore(tmp_path / "a.db") as store:
        none, empty = f.incoming(settings, at=at(hours=1)), f.incoming(settings, at=at(hours=2))
        batch = [none._replace(classes=frozenset()), empty._replace(classes=frozenset({""}))]
        store.write(batch)
        assert _class_rows(store) == _expected_class_rows(store, batch)


def test_the_keys_recorded_are_those_of_the_events_stored(tmp_path, settings):
    with SqliteStore(tmp_path / "a.db") as store:
        batch = [f.incoming(settings, at=at(hours=n)) for n in range(5)]
        store.write(batch[:2])
        store.write(batch)  # two of them again: duplicates, no keys added for them
        keyed = store._db.execute("SELECT id_key, seq FROM event_keys_recent ORDER BY seq").fetchall()
        assert keyed == store._db.execute("SELECT id_key, seq FROM events ORDER BY seq").fetchall()
        assert len(keyed) == 5


@pytest.mark.parametrize("size", [0, 1, 7, 5000])
def test_postings_rows_are_sorted_by_bucket_hash_and_offset_each_pair_once(size):
    rng = np.random.default_rng(size)
    pairs = np.empty(size, customer_postings._PAIR)
    pairs["hash"] = rng.integers(0, 2**32, size, dtype=np.uint64).astype(np.uint32)
    pairs["hash"][: size // 2] = rng.choice(pairs["hash"][: max(1, size // 10)], size // 2)  # many repeats
    pairs["offset"] = rng.integers(0, 2**32, size, dtype=np.uint64).astype(np.uint32)
    pairs["offset"][: size // 2] %= 3
    rows = customer_postings._rows(10, 20, pairs, merged=True)
    # the definition: lexsort by (bucket, hash, offset), repeats dropped
    unique = np.unique(pairs)  # structured: sorted by hash, then offset
    expected = unique[np.argsort(unique["hash"] % customer_postings.BUCKETS, kind="stable")]
    assert b"".join(blob for *_, blob in rows) == expected.tobytes()
    assert [bucket for bucket, *_ in rows] == sorted({int(h) % customer_postings.BUCKETS for h in pairs["hash"]})
