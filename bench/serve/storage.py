"""Storage for the upload service: a table of result rows, one of quality rows, one of hashed
upload tokens.

Result rows are stored once per (run_id, config_id, rep). Quality rows are stored once per
QUALITY_KEY (run_id, model_id, variant, measure, dataset, item, prompt_format); item and
prompt_format are empty for corpus rows and SQL unique constraints treat NULLs as distinct, so
the key is also kept as one JSON text column, `row_key`, that carries the unique constraint.

SQLAlchemy Core with portable types only (Text, BigInteger, Double, Boolean), so the same code
runs on SQLite (the default) and PostgreSQL. Built per Store, never at import time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import sqlalchemy as sa

from bench.results.inputs import QUALITY_KEY, quality_key
from bench.results import schema
from bench.results.quality import QUALITY_COLUMNS, QUALITY_REQUIRED, QUALITY_TYPES, QualityRow
from bench.results.schema import COLUMNS, ResultRow

_SA_TYPES = {"int": sa.BigInteger, "float": sa.Double, "bool": sa.Boolean, "str": sa.Text}


def _utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def token_hash(token: str) -> str:
    """Only this hash is stored: a leaked database does not leak working tokens."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Tables:
    metadata: sa.MetaData
    results: sa.Table
    tokens: sa.Table
    quality: sa.Table


def make_tables() -> Tables:
    metadata = sa.MetaData()
    result_columns = [
        sa.Column(name, _SA_TYPES[schema.TYPES[name].split()[0]](),
                  nullable=name not in schema.REQUIRED)
        for name in COLUMNS
    ]
    results = sa.Table(
        "results", metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        *result_columns,
        sa.Column("uploaded_utc", sa.Text, nullable=False),
        sa.Column("token_id", sa.Integer, nullable=True),
        sa.UniqueConstraint("run_id", "config_id", "rep", name="uq_results_run_config_rep"),
        sa.Index("ix_results_model_id", "model_id"),
        sa.Index("ix_results_host_fingerprint", "host_fingerprint"),
        sa.Index("ix_results_cpu_model", "cpu_model"),
    )
    tokens = sa.Table(
        "upload_tokens", metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("token_sha256", sa.Text, nullable=False, unique=True),
        sa.Column("created_utc", sa.Text, nullable=False),
    )
    quality = sa.Table(
        "quality_rows", metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        *[sa.Column(name, _SA_TYPES[QUALITY_TYPES[name].split()[0]](),
                    nullable=name not in QUALITY_REQUIRED) for name in QUALITY_COLUMNS],
        sa.Column("row_key", sa.Text, nullable=False),
        sa.Column("uploaded_utc", sa.Text, nullable=False),
        sa.Column("token_id", sa.Integer, nullable=True),
        sa.UniqueConstraint("row_key", name="uq_quality_rows_key"),
        sa.Index("ix_quality_rows_run_id", "run_id"),
        sa.Index("ix_quality_rows_model_id", "model_id"),
        sa.Index("ix_quality_rows_host_fingerprint", "host_fingerprint"),
        sa.Index("ix_quality_rows_cpu_model", "cpu_model"),
    )
    return Tables(metadata, results, tokens, quality)


def quality_row_key(row: QualityRow) -> str:
    """QUALITY_KEY as one non-null text, so the database itself refuses a second copy."""
    return json.dumps(list(quality_key(row)))


@dataclass(frozen=True)
class StoreOutcome:
    stored: int
    duplicates: int
    conflicts: tuple[tuple[int, str], ...]  # (index in the upload, message): same key, new content


def make_engine(db_url: str) -> sa.Engine:
    """SQLite needs cross-thread use (the web server's thread pool) and its folder to exist."""
    url = sa.make_url(db_url)
    kwargs: dict[str, Any] = {}
    if url.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"check_same_thread": False}
        if url.database and url.database != ":memory:":
            Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        else:
            kwargs["poolclass"] = sa.pool.StaticPool  # one shared in-memory database
    return sa.create_engine(url, **kwargs)


class Store:
    """The database behind one app instance; create_all is idempotent."""

    def __init__(self, db_url: str) -> None:
        self.engine = make_engine(db_url)
        self.tables = make_tables()
        self.tables.metadata.create_all(self.engine)
        self._add_new_columns()

    def _add_new_columns(self) -> None:
        """A database made by an older edgebench gains the newer schema's (nullable) columns;
        its rows keep them empty, as the CSV reader does for older files."""
        present = {c["name"] for c in sa.inspect(self.engine).get_columns("results")}
        table = self.tables.results
        with self.engine.begin() as conn:
            for column in table.columns:
                if column.name not in present and column.nullable:
                    kind = column.type.compile(dialect=self.engine.dialect)
                    conn.execute(sa.text(f'ALTER TABLE results ADD COLUMN "{column.name}" {kind}'))

    def dispose(self) -> None:
        self.engine.dispose()

    def create_token(self, name: str) -> str:
        # prefixed: a token_urlsafe may start with "-", which `--token TOKEN` would take for an option
        token = "eb_" + secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            conn.execute(self.tables.tokens.insert().values(
                name=name, token_sha256=token_hash(token), created_utc=_utc_now()))
        return token

    def token_id(self, token: str) -> int | None:
        t = self.tables.tokens
        with self.engine.connect() as conn:
            return conn.execute(sa.select(t.c.id).where(t.c.token_sha256 == token_hash(token))
                                ).scalar_one_or_none()

    def store_rows(self, rows: Sequence[ResultRow], token_id: int | None) -> StoreOutcome:
        """All new rows in one transaction, or none: known keys count as duplicates when equal
        and as conflicts (nothing stored) when their content differs."""
        return self._store(
            self.tables.results, COLUMNS, _to_row, rows, token_id,
            key=lambda row: (row.run_id, row.config_id, row.rep),
            record=lambda row: schema.row_to_dict(row), key_names="run_id, config_id and rep")

    def store_quality_rows(self, rows: Sequence[QualityRow], token_id: int | None) -> StoreOutcome:
        """As store_rows, keyed on QUALITY_KEY."""
        return self._store(
            self.tables.quality, QUALITY_COLUMNS, _to_quality_row, rows, token_id,
            key=quality_key,
            record=lambda row: {**dataclasses.asdict(row), "row_key": quality_row_key(row)},
            key_names=", ".join(QUALITY_KEY[:-1]) + f" and {QUALITY_KEY[-1]}")

    def _store(self, table: sa.Table, columns: Sequence[str], to_row: Callable[[Any], Any],
               rows: Sequence[Any], token_id: int | None, *, key: Callable[[Any], tuple],
               record: Callable[[Any], dict[str, Any]], key_names: str) -> StoreOutcome:
        run_ids = sorted({row.run_id for row in rows})
        with self.engine.begin() as conn:
            existing: dict[tuple, Any] = {}
            for chunk in _chunks(run_ids, 500):
                for rec in conn.execute(sa.select(*[table.c[c] for c in columns])
                                        .where(table.c.run_id.in_(chunk))).mappings():
                    row = to_row(rec)
                    existing[key(row)] = row
            new: list[dict[str, Any]] = []
            conflicts: list[tuple[int, str]] = []
            duplicates = 0
            now = _utc_now()
            for index, row in enumerate(rows):
                old = existing.get(key(row))
                if old is None:
                    new.append({**record(row), "uploaded_utc": now, "token_id": token_id})
                elif old == row:
                    duplicates += 1
                else:
                    diff = [c for c in columns if getattr(old, c) != getattr(row, c)]
                    conflicts.append((index, f"a stored row has the same {key_names} but "
                                             f"different {', '.join(diff[:5])}"))
            if conflicts:
                return StoreOutcome(0, duplicates, tuple(conflicts))
            if new:
                conn.execute(table.insert(), new)
        return StoreOutcome(len(new), duplicates, ())

    def query_rows(self, device: str | None = None, model: str | None = None) -> list[ResultRow]:
        """device matches host_fingerprint or cpu_model; model matches model_id."""
        r = self.tables.results
        stmt = sa.select(*[r.c[c] for c in COLUMNS]).order_by(r.c.id)
        if device:
            stmt = stmt.where(sa.or_(r.c.host_fingerprint == device, r.c.cpu_model == device))
        if model:
            stmt = stmt.where(r.c.model_id == model)
        with self.engine.connect() as conn:
            return [_to_row(rec) for rec in conn.execute(stmt).mappings()]

    def query_quality_rows(self, device: str | None = None,
                           model: str | None = None) -> list[QualityRow]:
        """The same filters as query_rows."""
        q = self.tables.quality
        stmt = sa.select(*[q.c[c] for c in QUALITY_COLUMNS]).order_by(q.c.id)
        if device:
            stmt = stmt.where(sa.or_(q.c.host_fingerprint == device, q.c.cpu_model == device))
        if model:
            stmt = stmt.where(q.c.model_id == model)
        with self.engine.connect() as conn:
            return [_to_quality_row(rec) for rec in conn.execute(stmt).mappings()]

    def count_rows(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(self.tables.results)
                                ).scalar_one()

    def count_quality_rows(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(self.tables.quality)
                                ).scalar_one()


def _to_row(rec: Any) -> ResultRow:
    values = {c: rec[c] for c in COLUMNS}
    for c in COLUMNS:  # drivers may hand back Decimal or int for Double; the schema wants float
        if values[c] is not None and schema.TYPES[c].startswith("float"):
            values[c] = float(values[c])
    return ResultRow(**values)


def _to_quality_row(rec: Any) -> QualityRow:
    values = {c: rec[c] for c in QUALITY_COLUMNS}
    for c in QUALITY_COLUMNS:
        if values[c] is not None and QUALITY_TYPES[c].startswith("float"):
            values[c] = float(values[c])
    return QualityRow(**values)


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
