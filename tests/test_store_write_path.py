"""The store's write, done in SQLite and in batch where it was per-event Python, stores what it did before.

The idempotency keys are read back from the event rows just inserted
(``event_keys.add_stored``); the data classes are indexed per class with
numpy (``store.class_postings``); the customer postings are sorted on one
64-bit key; a batch's idempotency keys are hashed and probed as one array.
Each is checked here against the plain definition of what it must produce.
"""

from __future__ import annotations

import numpy as np
import pytest

from store import chain, class_postings, customer_postings, event_keys
from store.base import IncomingEvent
from store.chain import ROW_COLUMNS
from store.sqlite import SqliteStore, id_key, id_keys
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


_AWKWARD_IDS = ["", "a", "ünï\u0000cödé", "客户-7", 'x"y\\z', "e" * 128, "\U0001f600", "7"]


def test_a_batchs_keys_are_each_ids_own_key():
    # ``id_keys`` reads a batch's digests as one array: each must still be ``id_key``'s, signed and little-endian
    assert id_keys(_AWKWARD_IDS).tolist() == [id_key(event_id) for event_id in _AWKWARD_IDS]
    assert id_keys([]).tolist() == []


@pytest.mark.parametrize("order", [list, sorted, lambda keys: np.array(keys[::-1], np.int64)])
def test_the_keys_known_are_found_in_whichever_order_they_are_asked(tmp_path, settings, monkeypatch, order):
    monkeypatch.setattr(event_keys, "MERGE_KEYS", 6)  # some keys merged into the large table, some recent
    with SqliteStore(tmp_path / "a.db") as store:
        batches = [[f.incoming(settings, at=at(hours=n)) for n in range(start, start + 4)] for start in (0, 4, 8)]
        for batch in batches:
            store.write(batch)
        stored = [id_key(incoming.event.event_id) for batch in batches for incoming in batch]
        assert store._db.execute("SELECT count(*) FROM event_keys").fetchone()[0] == 8  # both levels hold keys
        asked = stored[::3] + [id_key(f"never-{n}") for n in range(5)]
        assert event_keys.known(store._db, order(asked)) == set(stored[::3])


def test_each_stored_row_is_its_event_as_the_plain_definition_makes_it(tmp_path, settings):
    """The rows, keys and chain leaves a batch writes, against a row built field by field (repeats included)."""
    events = [
        f.incoming(
            settings, event_id=event_id, at=at(hours=n), customer_ids=[event_id, "c-1"], actor={"id": f"emp-{n}"}
        )
        for n, event_id in enumerate(_AWKWARD_IDS[1:])
    ]
    with SqliteStore(tmp_path / "a.db") as store:
        store.write(events[:2])
        store.write([events[3], *events, events[4]])  # repeats of a stored event and within the batch
        stored = [events[0], events[1], events[3], events[2], *events[4:]]
        rows = store._db.execute(f"SELECT {ROW_COLUMNS} FROM events ORDER BY seq").fetchall()
        assert rows == [_plain_row(seq, incoming) for seq, incoming in enumerate(stored, 1)]
        keyed = store._db.execute("SELECT id_key, seq FROM event_keys_recent ORDER BY seq").fetchall()
        assert keyed == [(row[1], row[0]) for row in rows]
        leaves = [leaf.digest for entry in chain.entries(store._db) for leaf in entry.iter_leaves()]
        assert leaves == [chain.leaf_hash(row) for row in rows]
        assert store.verify_chain().intact


def _plain_row(seq: int, incoming: IncomingEvent) -> tuple:
    event = incoming.event
    return (
        seq,
        id_key(event.event_id),
        event.event_id,
        round(event.timestamp.timestamp() * 1_000_000),
        event.actor.id,
        event.actor.kind.value,
        event.action.value,
        event.outcome.value,
        event.resource.system,
        event.resource.type,
        event.resource.id,
        event.record_count,
        ",".join(sorted(incoming.classes)),
        event.source_ip,
        incoming.raw.decode(),
    )
