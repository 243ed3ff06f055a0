"""Many rows into SQLite in few statements: ``INSERT ... VALUES (...), (...), ...``.

``executemany`` runs one statement a row, and Python's sqlite3 lets go of
the interpreter lock around each statement's step and takes it back after.
While another thread runs Python (the pipeline's parser), taking it back
waits for that thread's switch interval, 5 ms: measured beside a busy
thread, 10,000 event rows took 40 s one statement a row against 0.5 s
256 rows a statement (and 9.0 against 7.3 µs a row with nobody beside it).
In a 300k replay the store writer's three inserts took 16.7 s of wall
clock (12.1 s of CPU) one row a statement, and 10.4 s (6.7 s) thousands.

Rows go in the order given, each as its own INSERT would (``OR IGNORE``
and the like apply row by row), so ``total_changes`` and rowids come out
as with ``executemany``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from functools import cache
from itertools import chain

ROWS_PER_STATEMENT = 4096  # at most: fewer if the connection's limit on parameters says so


def insert_all(db: sqlite3.Connection, head: str, rows: Sequence[tuple], tail: str = "") -> None:
    """Run ``head`` (``INSERT ... INTO t (columns)``, without ``VALUES``) for every row (all of one width).

    ``tail`` follows the values: an upsert clause (``ON CONFLICT ...``), which applies row by row.
    """
    if not rows:
        return
    width = len(rows[0])
    # 32,766 parameters by default since SQLite 3.32 (a build may set fewer: 999 before)
    per_statement = max(1, min(ROWS_PER_STATEMENT, db.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width))
    flat = chain.from_iterable
    whole = len(rows) - len(rows) % per_statement
    if whole:
        db.executemany(
            _statement(head, width, per_statement, tail),
            [tuple(flat(rows[start : start + per_statement])) for start in range(0, whole, per_statement)],
        )
    # The rest in a statement per power of two it holds (640 rows: 512 and 128), not one a row: the
    # rest was thousands of single-row statements a batch (event classes, keys), each a wait of up
    # to 5 ms for the lock beside a busy thread.  Powers of two bound the statements compiled and cached.
    start = whole
    while start < len(rows):
        size = 1 << ((len(rows) - start).bit_length() - 1)
        db.execute(_statement(head, width, size, tail), tuple(flat(rows[start : start + size])))
        start += size


@cache
def _statement(head: str, width: int, rows: int, tail: str) -> str:
    one = "(" + ",".join("?" * width) + ")"
    return f"{head} VALUES {','.join([one] * rows)} {tail}".rstrip()
