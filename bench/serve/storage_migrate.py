"""Bring a database to the newest schema when a Store opens it.

Alembic runs the revisions in bench/serve/migrations/versions/ (no alembic.ini: the config is
built here and env.py uses the connection we hand it), all in one write transaction, so a
failed upgrade leaves the database as it was. Several processes opening one database at once
(uvicorn workers) take turns: SQLite's write lock, or a PostgreSQL advisory lock.

After the revisions, tables and nullable columns of the code's schema that the database lacks
are added: the result and quality schemas gain nullable columns between releases, and those
need no revision of their own (rows stored before keep them empty, as the CSV reader does).
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from bench.errors import EdgebenchError
from bench.serve.storage_engine import run_write
from bench.serve.storage_tables import Tables

MIGRATIONS = Path(__file__).resolve().with_name("migrations")
_PG_LOCK_KEY = 7_213_245_107_843_114  # any constant shared by every edgebench process


def _config():
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _script():
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config())


def head_revision() -> str:
    return _script().get_current_head()


def _check_known(revision: str | None) -> None:
    """A database migrated by a newer edgebench: say so instead of Alembic's KeyError."""
    if revision is not None and revision not in {s.revision for s in _script().walk_revisions()}:
        raise EdgebenchError(f"the database is at schema revision {revision}, newer than this "
                             f"edgebench knows (up to {head_revision()}): upgrade edgebench")


def current_revision(conn: sa.Connection) -> str | None:
    from alembic.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()


def _missing(conn: sa.Connection, tables: Tables) -> tuple[list[sa.Table], list[sa.Column]]:
    """Tables of the code the database lacks, and nullable columns its tables lack."""
    inspector = sa.inspect(conn)
    present = set(inspector.get_table_names())
    new_tables = [t for t in tables.metadata.sorted_tables if t.name not in present]
    new_columns = []
    for table in tables.metadata.sorted_tables:
        if table.name in present:
            have = {c["name"] for c in inspector.get_columns(table.name)}
            new_columns += [c for c in table.columns if c.name not in have and c.nullable]
    return new_tables, new_columns


def is_current(engine: sa.Engine, tables: Tables) -> bool:
    with engine.connect() as conn:
        revision = current_revision(conn)
        _check_known(revision)
        if revision != head_revision():
            return False
        new_tables, new_columns = _missing(conn, tables)
        return not new_tables and not new_columns


def _upgrade(conn: sa.Connection, tables: Tables) -> None:
    from alembic import command

    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")
    revision = current_revision(conn)
    _check_known(revision)
    if revision != head_revision():
        config = _config()
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    new_tables, new_columns = _missing(conn, tables)
    if new_tables:
        tables.metadata.create_all(conn, tables=new_tables)
    for column in new_columns:
        kind = column.type.compile(dialect=conn.dialect)
        conn.exec_driver_sql(f'ALTER TABLE {column.table.name} ADD COLUMN "{column.name}" {kind}')


def upgrade(engine: sa.Engine, tables: Tables) -> None:
    """To the head revision, then the code's missing tables and nullable columns; a no-op
    (one read) for a database that is up to date."""
    if not is_current(engine, tables):
        run_write(engine, lambda conn: _upgrade(conn, tables), retry_for_s=60.0)
