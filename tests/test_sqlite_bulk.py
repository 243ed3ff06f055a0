"""Many rows a statement (store.sqlite_bulk): the same table, rowids and change counts as one statement a row."""

from __future__ import annotations

import sqlite3

import pytest

from store.sqlite_bulk import insert_all


def _table(db: sqlite3.Connection) -> list[tuple]:
    return db.execute("SELECT rowid, k, v FROM t ORDER BY rowid").fetchall()


def _db() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:", isolation_level=None)
    db.execute("CREATE TABLE t (k INTEGER UNIQUE, v TEXT)")
    return db


@pytest.mark.parametrize("count", [0, 1, 4095, 4096, 4097, 9000])
def test_rows_go_in_in_order_as_one_statement_a_row_puts_them(count):
    # repeats of a key inside one statement and across statements: OR IGNORE keeps the first, row by row
    rows = [(i % 7000, f"value {i}") for i in range(count)]
    one_by_one, bulk = _db(), _db()
    one_by_one.executemany("INSERT OR IGNORE INTO t (k, v) VALUES (?, ?)", rows)
    insert_all(bulk, "INSERT OR IGNORE INTO t (k, v)", rows)
    assert _table(bulk) == _table(one_by_one)
    assert bulk.total_changes == one_by_one.total_changes == min(count, 7000)


def test_a_wide_row_keeps_each_statement_under_the_connections_parameter_limit():
    statements = []
    db = _db()
    db.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 10)  # 3 rows of 3 values a statement, then 1 by 1
    db.set_trace_callback(statements.append)
    insert_all(db, "INSERT INTO t (rowid, k, v)", [(i, i, str(i)) for i in range(1, 8)])
    assert [row[0] for row in _table(db)] == list(range(1, 8))
    inserts = [s for s in statements if s.startswith("INSERT")]
    assert [s.count("(") - 1 for s in inserts] == [3, 3, 1]  # two statements of three rows, then the rest


@pytest.mark.parametrize(
    "count, expected",
    [(4096 + 640, [4096, 512, 128]), (4095, [2048, 1024, 512, 256, 128, 64, 32, 16, 8, 4, 2, 1]), (3, [2, 1])],
)
def test_what_does_not_fill_a_statement_goes_in_a_statement_per_power_of_two(count, expected):
    # each statement's step lets go of the interpreter lock and waits to take it back: few statements
    statements = []
    db = _db()
    db.set_trace_callback(statements.append)
    insert_all(db, "INSERT INTO t (k, v)", [(i, str(i)) for i in range(count)])
    assert [s.count("(") - 1 for s in statements if s.startswith("INSERT")] == expected
    assert [k for _, k, _ in _table(db)] == list(range(count))


def test_values_keep_their_types():
    db = sqlite3.connect(":memory:", isolation_level=None)
    db.execute("CREATE TABLE u (a, b, c, d)")
    rows = [(1, 1.5, "x", None), (2**62, b"\x00\xff", "", None)] * 200
    insert_all(db, "INSERT INTO u (a, b, c, d)", rows)
    assert db.execute("SELECT a, b, c, d FROM u ORDER BY rowid").fetchall() == rows
