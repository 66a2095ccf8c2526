"""Alembic migrations of the upload service's database (run by bench.serve.storage_migrate)."""
