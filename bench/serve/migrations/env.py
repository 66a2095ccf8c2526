"""Alembic's entry point, run by bench.serve.storage_migrate on a connection it already holds
inside its transaction (config.attributes["connection"]); there is no alembic.ini.

A new revision: add versions/vNNNN_what.py with `revision = "NNNN"` and `down_revision` the
previous one, and upgrade() using alembic.op. A new nullable column of the result or quality
schema needs none: Store adds those on open. Anything else (a table, an index, a constraint, a
required column) needs one; tests/test_storage.py fails when the migrated database and
bench/serve/storage_tables.py differ.
"""

from alembic import context

context.configure(connection=context.config.attributes["connection"])
with context.begin_transaction():
    context.run_migrations()
