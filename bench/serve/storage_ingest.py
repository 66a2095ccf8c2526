"""Bulk insert of an upload's rows, skipping keys the database already has; returns the keys
it inserted, so the store compares only the others with what is stored.

SQLite: the write transaction began IMMEDIATE, so no other writer runs until it commits; the
keys already stored are read first and the new rows go in with the driver's executemany.
PostgreSQL: writers run concurrently, so the rows are COPYed into a temporary table and moved
with INSERT ... SELECT ... ON CONFLICT DO NOTHING RETURNING the key: a concurrent upload of the
same keys waits for ours and then skips them, never an error. Both bypass SQLAlchemy's
per-row parameter processing, which cost more than the database itself (the values are plain
str, int, float, bool and None, which both drivers bind natively).
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import sqlalchemy as sa

_BATCH = 500  # keys per IN (...) lookup


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def stored_keys(conn: sa.Connection, table: sa.Table, key_columns: Sequence[str],
                lookup: Sequence[Any]) -> set[tuple]:
    """Keys present among rows whose first key column is in `lookup`."""
    found: set[tuple] = set()
    first = table.c[key_columns[0]]
    for chunk in _chunks(sorted(set(lookup)), _BATCH):
        found.update(tuple(r) for r in conn.execute(
            sa.select(*[table.c[k] for k in key_columns]).where(first.in_(chunk))))
    return found


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(f'"{n}"' for n in names)


def insert_new(conn: sa.Connection, table: sa.Table, key_columns: Sequence[str],
               names: Sequence[str], records: Sequence[tuple], keys: Sequence[tuple]) -> set[tuple]:
    """Insert records (values in `names` order; keys[i] is records[i]'s key) whose key is not
    stored yet, in order, the first of repeated keys only; returns the keys inserted."""
    if conn.dialect.name == "postgresql":
        return _insert_postgresql(conn, table, key_columns, names, records)
    have = stored_keys(conn, table, key_columns, [k[0] for k in keys])
    new: list[tuple] = []
    inserted: set[tuple] = set()
    for key, record in zip(keys, records):
        if key not in have and key not in inserted:
            inserted.add(key)
            new.append(record)
    if new:
        marks = ", ".join("?" * len(names))
        conn.exec_driver_sql(f'INSERT INTO "{table.name}" ({_quoted(names)}) VALUES ({marks})', new)
    return inserted


def _insert_postgresql(conn: sa.Connection, table: sa.Table, key_columns: Sequence[str],
                       names: Sequence[str], records: Sequence[tuple]) -> set[tuple]:
    staging = f"incoming_{table.name}"
    cols = _quoted(names)
    conn.exec_driver_sql(f'CREATE TEMP TABLE "{staging}" ON COMMIT DROP AS SELECT 0::bigint AS '
                         f'ord, {cols} FROM "{table.name}" WITH NO DATA')
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        with cursor.copy(f'COPY "{staging}" (ord, {cols}) FROM STDIN') as copy:
            for ord_, record in enumerate(records):
                copy.write_row((ord_, *record))
    finally:
        cursor.close()
    returned = conn.exec_driver_sql(
        f'INSERT INTO "{table.name}" ({cols}) SELECT {cols} FROM "{staging}" ORDER BY ord '
        f'ON CONFLICT ({_quoted(key_columns)}) DO NOTHING RETURNING {_quoted(key_columns)}')
    inserted = {tuple(r) for r in returned}
    conn.exec_driver_sql(f'DROP TABLE "{staging}"')  # a retried or second call in this transaction
    return inserted
