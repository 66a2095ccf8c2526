"""Bulk insert of an upload's rows, skipping keys the database already has; returns the keys
it inserted, so the store compares only the others with what is stored (compare_stored).

SQLite: the write transaction began IMMEDIATE, so no other writer runs until it commits; the
rows go in as INSERT ... ON CONFLICT DO NOTHING (statements and values made before the lock is
taken), and only when fewer went in than were sent are the inserted keys read back (the newest
ids are ours). PostgreSQL: writers run concurrently. An upload that passed the fast check
(bench/serve/fastcheck.py) arrives as CSV text, which one COPY puts straight into the table; a
key stored already (by an earlier or a concurrent upload, whose commit the COPY waits for)
voids that attempt, and the next COPYs into a temporary table and moves the rows with INSERT
... SELECT ... ON CONFLICT DO NOTHING RETURNING the key, as other uploads' rows always go, value
by value. So a concurrent upload of the same keys skips them, never an error. Both bypass
SQLAlchemy's per-row parameter processing, which cost more than the database itself (the values
are plain str, int, float, bool and None, which both drivers bind natively).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from itertools import chain
from typing import Any, Callable, Iterable, Sequence

import sqlalchemy as sa

from bench.serve.batch import CsvCopy
from bench.serve.storage_tables import as_floats

_BATCH = 300  # keys per IN (...) lookup (3 columns each: under SQLite's 999 parameters)


def in_chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    """`items` in slices of at most `size` (the store's IN (...) lookups)."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(f'"{n}"' for n in names)


@dataclass
class Insert:
    """An upload's rows ready to insert: records() gives each row's values in `names` order
    (made once, when first needed); `copy` is the same rows as CSV for PostgreSQL; on SQLite
    `statements` are the INSERTs with their values, made before the write lock is taken, so
    the lock is held only while SQLite itself works."""

    table: sa.Table
    key_columns: Sequence[str]
    names: Sequence[str]
    make_records: Callable[[], Sequence[tuple]]
    copy: CsvCopy | None = None
    statements: list[tuple[str, Any]] | None = None
    direct: bool = True  # COPY straight into the table (PostgreSQL; see _copy_csv_postgresql)
    _records: Sequence[tuple] | None = None

    def records(self) -> Sequence[tuple]:
        if self._records is None:
            self._records = self.make_records()
        return self._records


def prepare(dialect: str, table: sa.Table, key_columns: Sequence[str], names: Sequence[str],
            records: Callable[[], Sequence[tuple]], copy: CsvCopy | None = None, *,
            one_thread: bool = False) -> Insert:
    """one_thread: only this thread works in this process (an upload worker), so SQLite takes
    the rows with executemany, a row per step; else in multi-row INSERTs (see below)."""
    if dialect != "postgresql":
        copy = None  # SQLite binds values
    plan = Insert(table, key_columns, names, records, copy)
    if dialect != "postgresql":
        rows = plan.records()
        if one_thread:
            plan.statements = [(_sqlite_insert(table.name, tuple(names), key_columns, 1), rows)]
        else:
            plan.statements = [
                (_sqlite_insert(table.name, tuple(names), key_columns, size),
                 tuple(chain.from_iterable(rows[start:start + size])))
                for start, size in _statements(len(rows), _SQLITE_PARAMETERS // len(names))]
    return plan


def insert_new(conn: sa.Connection, plan: Insert, keys: Sequence[tuple], *, now: str = "",
               token_id: int | None = None) -> set[tuple]:
    """Insert the planned rows (keys[i] is row i's key) whose key is not stored yet, in order,
    the first of repeated keys only; returns the keys inserted. From CSV, each row's
    uploaded_utc is `now` and its token_id `token_id`."""
    table, key_columns = plan.table, plan.key_columns
    if plan.statements is None:  # PostgreSQL
        if plan.copy is not None:
            return _copy_csv_postgresql(conn, plan, keys, now, token_id)
        return _insert_postgresql(conn, table, key_columns, plan.names, plan.records())
    done = sum(conn.exec_driver_sql(sql, values).rowcount  # values: one row's, or a list
               for sql, values in plan.statements)
    if done == len(keys):
        return set(keys)
    if done <= 0:
        return set()
    return {tuple(r) for r in conn.exec_driver_sql(
        f'SELECT {_quoted(key_columns)} FROM "{table.name}" ORDER BY id DESC LIMIT ?', (done,))}


# With other threads busy (uploads checked in threads of the app's own process), rows go in
# as multi-row INSERTs: one statement step for many rows. executemany steps once per row, and
# each step gives the GIL up and waits to get it back from whichever thread is checking the
# next upload, which made a 500-row insert (and the write lock it holds) last longer. In an
# upload worker nothing else runs, and executemany costs less per row.
_SQLITE_PARAMETERS = 32_766  # SQLite's limit on parameters per statement (3.32 and later)


def _statements(n: int, most: int) -> list[tuple[int, int]]:
    """(start, size) of statements covering n rows: full ones of the largest power of two
    not above `most` rows, then the binary digits of the rest, so few distinct statements
    exist and the driver's statement cache keeps them."""
    top = 1 << max(most, 1).bit_length() - 1
    sizes = [top] * (n // top) + [1 << b for b in range(top.bit_length() - 1, -1, -1)
                                  if n % top & (1 << b)]
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    return list(zip(starts, sizes))


@lru_cache(maxsize=64)
def _sqlite_insert(table: str, names: tuple[str, ...], key_columns: Sequence[str],
                   rows: int) -> str:
    marks = "(" + ", ".join("?" * len(names)) + ")"
    return (f'INSERT INTO "{table}" ({_quoted(names)}) VALUES {", ".join([marks] * rows)} '
            f'ON CONFLICT ({_quoted(key_columns)}) DO NOTHING')


def _staging(conn: sa.Connection, table: sa.Table, names: Sequence[str]) -> str:
    staging = f"incoming_{table.name}"
    conn.exec_driver_sql(f'CREATE TEMP TABLE "{staging}" ON COMMIT DROP AS SELECT 0::bigint AS '
                         f'ord, {_quoted(names)} FROM "{table.name}" WITH NO DATA')
    return staging


def _move(conn: sa.Connection, table: sa.Table, key_columns: Sequence[str], staging: str,
          names: Sequence[str], extra: dict[str, tuple[str, Any]] | None = None) -> set[tuple]:
    """INSERT the staged rows in upload order, skipping stored keys; extra: column -> (SQL
    type, the same value for every row)."""
    extra = extra or {}
    cols = _quoted(names)
    consts = "".join(f", %({c})s::{sql_type}" for c, (sql_type, _) in extra.items())
    returned = conn.exec_driver_sql(
        f'INSERT INTO "{table.name}" ({cols}{"".join(f", {_quoted([c])}" for c in extra)}) '
        f'SELECT {cols}{consts} FROM "{staging}" ORDER BY ord '
        f'ON CONFLICT ({_quoted(key_columns)}) DO NOTHING RETURNING {_quoted(key_columns)}',
        {c: value for c, (_, value) in extra.items()})
    inserted = {tuple(r) for r in returned}
    conn.exec_driver_sql(f'DROP TABLE "{staging}"')  # a retried or second call in this transaction
    return inserted


def _insert_postgresql(conn: sa.Connection, table: sa.Table, key_columns: Sequence[str],
                       names: Sequence[str], records: Sequence[tuple]) -> set[tuple]:
    staging = _staging(conn, table, names)
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        with cursor.copy(f'COPY "{staging}" (ord, {_quoted(names)}) FROM STDIN') as copy:
            for ord_, record in enumerate(records):
                copy.write_row((ord_, *record))
    finally:
        cursor.close()
    return _move(conn, table, key_columns, staging, names)


class CopyRefused(Exception):
    """PostgreSQL refused the CSV (the transaction is void): run the write again, and
    insert_new takes the next way in, which `plan` now names."""


def _copy_csv_postgresql(conn: sa.Connection, plan: Insert, keys: Sequence[tuple], now: str,
                         token_id: int | None) -> set[tuple]:
    """The CSV as COPY reads it, straight into the table: a new upload is one COPY. A key
    stored already (a re-sent upload; a concurrent one, whose commit the COPY waits for)
    voids the attempt, and the next one goes through a temporary table and ON CONFLICT DO
    NOTHING. A value PostgreSQL refuses but the check accepted (a number it reads otherwise,
    such as 1e-400: Python reads 0.0, PostgreSQL "out of range") voids it too, and the next
    attempt writes the typed values. No savepoints: they cost two round trips every time."""
    import psycopg

    csv, table = plan.copy, plan.table
    assert csv is not None
    options = csv.options()
    cols = _quoted(csv.columns)
    try:
        if plan.direct:
            constants = f",{now},{'' if token_id is None else token_id}\n".encode()
            _copy(conn, f'COPY "{table.name}" ({cols}, "uploaded_utc", "token_id") FROM STDIN '
                        f'({options})', csv.text.replace(b"\n", constants))
            return set(keys)
        numbered = b"".join(b"%s,%d\n" % (line, i)
                            for i, line in enumerate(csv.text.split(b"\n")[:-1]))
        staging = _staging(conn, table, csv.columns)
        _copy(conn, f'COPY "{staging}" ({cols}, ord) FROM STDIN ({options})', numbered)
        return _move(conn, table, plan.key_columns, staging, csv.columns,
                     {"uploaded_utc": ("text", now), "token_id": ("integer", token_id)})
    except psycopg.errors.UniqueViolation:
        plan.direct = False
        raise CopyRefused() from None
    except psycopg.DataError:
        plan.copy = None
        raise CopyRefused() from None


def _copy(conn: sa.Connection, sql: str, text: bytes) -> None:
    """COPY ... FROM STDIN with `text` on the driver's own cursor. Its errors come as
    SQLAlchemy's (deadlocks and lock timeouts are retried by run_write), but for unique
    violations and refused values, which the callers handle."""
    import psycopg

    cursor = conn.connection.dbapi_connection.cursor()
    try:
        with cursor.copy(sql) as copy:
            copy.write(text)
    except (psycopg.errors.UniqueViolation, psycopg.DataError):
        raise
    except psycopg.Error as exc:
        raise sa.exc.DBAPIError.instance(sql, None, exc, psycopg.Error) from exc
    finally:
        cursor.close()


def compare_stored(conn: sa.Connection, table: sa.Table, key_columns: Sequence[str],
                   columns: Sequence[str], keys: Sequence[tuple],
                   values: Callable[[int], tuple], indexes: Sequence[int], key_names: str,
                   floats: Sequence[str]) -> tuple[tuple[int, str], ...]:
    """(index, message) for each row among `indexes` whose stored twin (same key) differs;
    values(i) is row i's values in `columns` order; `floats` are the float columns
    (storage_tables.as_floats)."""
    if not indexes:
        return ()
    key_cols = [table.c[k] for k in key_columns]
    lookup = sa.tuple_(*key_cols) if len(key_cols) > 1 else key_cols[0]
    n = len(columns)
    stored: dict[tuple, tuple] = {}
    for chunk in in_chunks(sorted({keys[i] for i in indexes}), _BATCH):
        wanted = list(chunk) if len(key_cols) > 1 else [k[0] for k in chunk]
        for rec in conn.execute(sa.select(*[table.c[c] for c in columns], *key_cols)
                                .where(lookup.in_(wanted))):
            stored[tuple(rec[n:])] = tuple(as_floats(dict(zip(columns, rec[:n])),
                                                     floats).values())
    conflicts = []
    for i in sorted(indexes):
        old, new = stored.get(keys[i]), values(i)
        if old is not None and old != new:
            diff = [c for c, a, b in zip(columns, old, new) if a != b]
            conflicts.append((i, f"a stored row has the same {key_names} but different "
                                 f"{', '.join(diff[:5])}"))
    return tuple(conflicts)
