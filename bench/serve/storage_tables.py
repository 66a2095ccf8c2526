"""The store's tables as the code uses them (the migrations in bench/serve/migrations/ make
them; tests/test_storage.py checks that a migrated database matches these), and the
conversions between database records and row records.

Result rows are stored once per (run_id, config_id, rep). Quality rows are stored once per
QUALITY_KEY (run_id, model_id, variant, measure, dataset, item, prompt_format); item and
prompt_format are empty for corpus rows and SQL unique constraints treat NULLs as distinct, so
the key is also kept as one JSON text column, `row_key`, that carries the unique constraint.
`runs` records which token created each run: only that token may add rows to it.

Portable types only (Text, BigInteger, Double, Boolean): the same code runs on SQLite and
PostgreSQL. Built per Store, never at import time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Sequence

import sqlalchemy as sa

from bench.results import schema
from bench.results.inputs import quality_key
from bench.results.quality import QUALITY_COLUMNS, QUALITY_REQUIRED, QUALITY_TYPES, QualityRow
from bench.results.schema import COLUMNS, ResultRow

_SA_TYPES = {"int": sa.BigInteger, "float": sa.Double, "bool": sa.Boolean, "str": sa.Text}


@dataclass(frozen=True)
class Tables:
    metadata: sa.MetaData
    results: sa.Table
    tokens: sa.Table
    quality: sa.Table
    runs: sa.Table


# what reads filter on (device, model, backend, date), indexed in both row tables
_FILTERED = ("model_id", "host_fingerprint", "cpu_model", "backend", "started_utc")


def _row_table(metadata: sa.MetaData, name: str, columns: Sequence[str], types: dict[str, str],
               required: Sequence[str], *extra: Any, indexed: Sequence[str] = ()) -> sa.Table:
    """A table of uploaded rows: an id, one typed column per schema column, when and by which
    token it was uploaded, `extra` columns and constraints, and an index ix_<table>_<column>
    per filtered column."""
    return sa.Table(
        name, metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        *[sa.Column(c, _SA_TYPES[types[c].split()[0]](), nullable=c not in required)
          for c in columns],
        *extra,
        sa.Column("uploaded_utc", sa.Text, nullable=False),
        sa.Column("token_id", sa.Integer, nullable=True),
        *[sa.Index(f"ix_{name}_{c}", c) for c in indexed],
    )


def make_tables() -> Tables:
    metadata = sa.MetaData()
    results = _row_table(
        metadata, "results", COLUMNS, schema.TYPES, schema.REQUIRED,
        sa.UniqueConstraint("run_id", "config_id", "rep", name="uq_results_run_config_rep"),
        indexed=_FILTERED)
    tokens = sa.Table(
        "upload_tokens", metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("token_sha256", sa.Text, nullable=False, unique=True),
        sa.Column("created_utc", sa.Text, nullable=False),
        sa.Column("revoked_utc", sa.Text, nullable=True),
        sqlite_autoincrement=True,  # ids are never reused, also after the newest is deleted
    )
    quality = _row_table(
        metadata, "quality_rows", QUALITY_COLUMNS, QUALITY_TYPES, QUALITY_REQUIRED,
        sa.Column("row_key", sa.Text, nullable=False),
        sa.UniqueConstraint("row_key", name="uq_quality_rows_key"),
        indexed=("run_id", *_FILTERED))
    runs = sa.Table(
        "runs", metadata,
        sa.Column("run_id", sa.Text, primary_key=True),
        sa.Column("token_id", sa.Integer, nullable=True),
        sa.Column("created_utc", sa.Text, nullable=False),
    )
    return Tables(metadata, results, tokens, quality, runs)


def quality_row_key(row: QualityRow) -> str:
    """QUALITY_KEY as one non-null text, so the database itself refuses a second copy."""
    return json.dumps(list(quality_key(row)))


RESULT_FLOATS = tuple(c for c in COLUMNS if schema.TYPES[c].startswith("float"))
QUALITY_FLOATS = tuple(c for c in QUALITY_COLUMNS if QUALITY_TYPES[c].startswith("float"))


def as_floats(values: dict[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """`values` with its `names` columns as float: drivers may hand back Decimal or int for
    Double; the schema wants float."""
    for c in names:
        v = values[c]
        if v is not None and type(v) is not float:
            values[c] = float(v)
    return values


def to_row(values: Sequence[Any]) -> ResultRow:
    """A row from its values in COLUMNS order (a result row of a select of those columns)."""
    return ResultRow(**as_floats(dict(zip(COLUMNS, values)), RESULT_FLOATS))


def to_quality_row(values: Sequence[Any]) -> QualityRow:
    """A quality row from its values in QUALITY_COLUMNS order."""
    return QualityRow(**as_floats(dict(zip(QUALITY_COLUMNS, values)), QUALITY_FLOATS))
