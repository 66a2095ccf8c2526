"""Storage for the upload service: result rows, quality rows, hashed upload tokens and which
token created each run, in SQLite (the embedded default) or PostgreSQL (shared deployments),
selected by a database URL.

Writes are all-or-nothing and idempotent: rows whose key is not stored yet go in (SQLite: under
the write lock taken at BEGIN; PostgreSQL: one COPY, or INSERT ... ON CONFLICT DO NOTHING when
some key is stored already, see storage_ingest.py), and a row the database already had is
compared with the upload's: equal, it counts as a duplicate; different, it is a conflict and
the whole upload is rolled back. So two concurrent uploads of overlapping rows store one copy
between them and neither fails. Every write transaction is retried on a lock timeout or
deadlock (storage_engine.py), then raises StoreBusy. Reads never block writers (SQLite WAL,
PostgreSQL MVCC) and come in pages by keyset on id, each page its own short transaction.

Tables: storage_tables.py; engines and retries: storage_engine.py; bulk insert:
storage_ingest.py; migrations: storage_migrate.py and migrations/.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from operator import attrgetter
from typing import Any, Callable, Generic, Iterator, Sequence, TypeVar

import sqlalchemy as sa

from bench.results.inputs import QUALITY_KEY
from bench.results.quality import QUALITY_COLUMNS, QualityRow
from bench.results.schema import COLUMNS, ResultRow
from bench.serve import storage_migrate
from bench.serve.storage_engine import StoreBusy, make_engine, run_write
from bench.serve.batch import KEY_COLUMNS, CsvCopy, ResultBatch
from bench.serve.storage_ingest import (CopyRefused, compare_stored, in_chunks, insert_new,
                                        prepare)
from bench.serve.storage_tables import (QUALITY_FLOATS, RESULT_FLOATS, Tables, make_tables,
                                        quality_row_key, to_quality_row, to_row)

__all__ = ["Page", "RowFilter", "RunNotYours", "Store", "StoreBusy", "StoreOutcome", "Tables",
           "TokenInfo", "make_engine", "make_tables", "quality_row_key", "token_hash"]

RowT = TypeVar("RowT")
_RESULT_VALUES = attrgetter(*COLUMNS)  # not dataclasses.asdict: it deep-copies every value
_QUALITY_VALUES = attrgetter(*QUALITY_COLUMNS)


def _utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def token_hash(token: str) -> str:
    """Only this hash is stored: a leaked database does not leak working tokens."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class RunNotYours(Exception):
    """The upload adds rows to runs another token created; nothing was stored."""

    def __init__(self, run_ids: tuple[str, ...]) -> None:
        shown = ", ".join(run_ids[:5]) + (f" and {len(run_ids) - 5} more" if len(run_ids) > 5
                                          else "")
        super().__init__(f"run {shown} was uploaded with another token; only that token may "
                         "add rows to it")
        self.run_ids = run_ids


@dataclass(frozen=True)
class StoreOutcome:
    stored: int
    duplicates: int
    conflicts: tuple[tuple[int, str], ...]  # (index in the upload, message): same key, new content


@dataclass(frozen=True)
class TokenInfo:
    id: int
    name: str
    created_utc: str
    revoked_utc: str | None


@dataclass(frozen=True)
class RowFilter:
    """device matches host_fingerprint or cpu_model; model matches model_id. since_utc
    (inclusive) and until_utc (exclusive) bound started_utc; both are RFC 3339 UTC texts
    compared as text, so a prefix such as "2026-11-28" works."""

    device: str | None = None
    model: str | None = None
    backend: str | None = None
    since_utc: str | None = None
    until_utc: str | None = None


@dataclass(frozen=True)
class Page(Generic[RowT]):
    rows: list[RowT]
    next_after_id: int | None  # pass as after_id for the next page; None: this was the last


@dataclass(frozen=True)
class _Upload:
    """What the store writes: keys, the runs, records(uploaded_utc, token_id) -> each row's
    values in insert order, values(i) -> row i's values in column order, CSV for COPY."""

    keys: list[tuple]
    run_ids: list[str]
    records: Callable[..., list[tuple]]
    values: Callable[[int], tuple]
    copy: CsvCopy | None = None


class _Conflicts(Exception):
    """Raised inside the write transaction to roll it back; carries the outcome."""

    def __init__(self, outcome: StoreOutcome) -> None:
        super().__init__("conflicts")
        self.outcome = outcome


def _insert(conn: sa.Connection, table: sa.Table):
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


def _where(table: sa.Table, filters: RowFilter | None) -> list[Any]:
    if filters is None:
        return []
    c = table.c
    clauses: list[Any] = []
    if filters.device:
        clauses.append(sa.or_(c.host_fingerprint == filters.device, c.cpu_model == filters.device))
    if filters.model:
        clauses.append(c.model_id == filters.model)
    if filters.backend:
        clauses.append(c.backend == filters.backend)
    if filters.since_utc:
        clauses.append(c.started_utc >= filters.since_utc)
    if filters.until_utc:
        clauses.append(c.started_utc < filters.until_utc)
    return clauses


class Store:
    """The database behind one app instance; opening it migrates it to the newest schema."""

    def __init__(self, db_url: str, *, busy_timeout_s: float = 2.0,
                 retry_for_s: float = 10.0, one_thread: bool = False) -> None:
        """one_thread: only one thread of this process works (an upload worker,
        bench/serve/ingest.py), which lets SQLite inserts run cheaper (storage_ingest.py)."""
        self.engine = make_engine(db_url, busy_timeout_s=busy_timeout_s)
        self.tables = make_tables()
        self.retry_for_s = retry_for_s
        self.one_thread = one_thread
        try:
            storage_migrate.upgrade(self.engine, self.tables)
        except BaseException:
            self.engine.dispose()
            raise

    def dispose(self) -> None:
        self.engine.dispose()

    def _write(self, work: Callable[[sa.Connection], Any]) -> Any:
        return run_write(self.engine, work, retry_for_s=self.retry_for_s)

    # ---------------------------------------------------------------- tokens
    def create_token(self, name: str) -> str:
        """A new token, returned once; only its sha256 is stored. Ids are never reused."""
        # prefixed: a token_urlsafe may start with "-", which `--token TOKEN` would take for
        # an option
        token = "eb_" + secrets.token_urlsafe(32)
        values = dict(name=name, token_sha256=token_hash(token), created_utc=_utc_now())
        self._write(lambda conn: conn.execute(self.tables.tokens.insert().values(**values)))
        return token

    def revoke_token(self, token_id: int) -> bool:
        """False when no token has this id; revoking twice keeps the first time."""
        t = self.tables.tokens

        def work(conn: sa.Connection) -> bool:
            conn.execute(t.update().where(t.c.id == token_id, t.c.revoked_utc.is_(None))
                         .values(revoked_utc=_utc_now()))
            return conn.execute(sa.select(t.c.id).where(t.c.id == token_id)).first() is not None
        return self._write(work)

    def list_tokens(self) -> list[TokenInfo]:
        t = self.tables.tokens
        with self.engine.connect() as conn:
            return [TokenInfo(r.id, r.name, r.created_utc, r.revoked_utc) for r in conn.execute(
                sa.select(t.c.id, t.c.name, t.c.created_utc, t.c.revoked_utc).order_by(t.c.id))]

    def token_id(self, token: str) -> int | None:
        """The id of a valid token; None when it is unknown or revoked."""
        t = self.tables.tokens
        with self.engine.connect() as conn:
            return conn.execute(sa.select(t.c.id).where(
                t.c.token_sha256 == token_hash(token), t.c.revoked_utc.is_(None))
            ).scalar_one_or_none()

    # ---------------------------------------------------------------- writes
    def store_rows(self, rows: Sequence[ResultRow], token_id: int | None) -> StoreOutcome:
        """All new rows in one transaction, or none: known keys count as duplicates when equal
        and as conflicts (nothing stored) when their content differs. RunNotYours when a run
        was created by another token; StoreBusy when the database stayed locked. `rows` may
        be a ResultBatch (bench/serve/batch.py), which goes in without a ResultRow per row."""
        if isinstance(rows, ResultBatch):
            upload = _Upload(rows.keys(), rows.run_ids(), rows.records, rows.values, rows.copy)
        else:
            values = [_RESULT_VALUES(row) for row in rows]
            upload = _Upload([(r.run_id, r.config_id, r.rep) for r in rows],
                             sorted({r.run_id for r in rows}),
                             lambda *extra: [(*v, *extra) for v in values], values.__getitem__)
        return self._store(self.tables.results, KEY_COLUMNS, COLUMNS, upload, token_id,
                           "run_id, config_id and rep", RESULT_FLOATS)

    def store_quality_rows(self, rows: Sequence[QualityRow], token_id: int | None) -> StoreOutcome:
        """As store_rows, keyed on QUALITY_KEY (held in the row_key column)."""
        values = [_QUALITY_VALUES(row) for row in rows]
        keys = [(quality_row_key(row),) for row in rows]
        upload = _Upload(keys, sorted({r.run_id for r in rows}),
                         lambda *extra: [(*v, *k, *extra) for v, k in zip(values, keys)],
                         values.__getitem__)
        return self._store(self.tables.quality, ("row_key",), QUALITY_COLUMNS, upload, token_id,
                           ", ".join(QUALITY_KEY[:-1]) + f" and {QUALITY_KEY[-1]}",
                           QUALITY_FLOATS)

    def _claim_runs(self, conn: sa.Connection, run_ids: list[str], token_id: int | None,
                    now: str) -> None:
        """The first upload of a run makes it its token's; RunNotYours for anyone else's."""
        runs = self.tables.runs
        conn.execute(_insert(conn, runs).on_conflict_do_nothing(index_elements=["run_id"]),
                     [{"run_id": r, "token_id": token_id, "created_utc": now} for r in run_ids])
        foreign = []
        for chunk in in_chunks(run_ids, 500):
            foreign += [r.run_id for r in conn.execute(
                sa.select(runs.c.run_id, runs.c.token_id).where(runs.c.run_id.in_(chunk)))
                if r.token_id != token_id]
        if foreign:
            raise RunNotYours(tuple(sorted(foreign)))

    def _store(self, table: sa.Table, key_columns: tuple[str, ...], columns: Sequence[str],
               upload: _Upload, token_id: int | None, key_names: str,
               floats: Sequence[str]) -> StoreOutcome:
        if not upload.keys:
            return StoreOutcome(0, 0, ())
        # rows go in upload order (ids keep it for exports). Two uploads of overlapping rows
        # come from the same file in the same order, so PostgreSQL writers wait for each other;
        # a deadlock all the same is retried by run_write. Runs are claimed sorted.
        keys = upload.keys
        names = (*columns, *(("row_key",) if "row_key" in key_columns else ()),
                 "uploaded_utc", "token_id")
        now = _utc_now()
        plan = prepare(self.engine.dialect.name, table, key_columns, names,
                       lambda: upload.records(now, token_id), upload.copy,
                       one_thread=self.one_thread)

        def work(conn: sa.Connection) -> StoreOutcome:
            self._claim_runs(conn, upload.run_ids, token_id, now)
            inserted = insert_new(conn, plan, keys, now=now, token_id=token_id)
            if len(inserted) == len(keys):
                return StoreOutcome(len(keys), 0, ())
            taken: set[tuple] = set()
            compare: list[int] = []  # indexes of rows whose key the database already had
            for i, k in enumerate(keys):
                if k in inserted and k not in taken:
                    taken.add(k)
                else:
                    compare.append(i)
            conflicts = compare_stored(conn, table, key_columns, columns, keys, upload.values,
                                       compare, key_names, floats)
            if conflicts:
                raise _Conflicts(StoreOutcome(0, len(compare) - len(conflicts), conflicts))
            return StoreOutcome(len(taken), len(compare), ())

        for _ in range(3):  # COPY straight in, COPY through a temporary table, typed values
            try:
                return self._write(work)
            except _Conflicts as rolled_back:
                return rolled_back.outcome
            except CopyRefused:  # PostgreSQL refused the CSV; plan names the next way in
                continue
        raise AssertionError("the typed values are never refused as CSV")

    # ---------------------------------------------------------------- reads
    def _page(self, table: sa.Table, columns: Sequence[str],
              to_record: Callable[[Any], Any] | None, filters: RowFilter | None,
              after_id: int | None, limit: int) -> Page:
        """Up to `limit` rows with id > after_id, by id (keyset). to_record None: each row as
        the driver's own tuple of `columns`, which no Row object is made for: 6.7 s for a
        million rows on SQLite, 9.6 s as Row objects (SQLite's booleans stay 0/1 there;
        DuckDB casts them)."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        stmt = (sa.select(table.c.id, *[table.c[c] for c in columns])
                .where(*_where(table, filters)).order_by(table.c.id).limit(limit + 1))
        if after_id is not None:
            stmt = stmt.where(table.c.id > after_id)
        with self.engine.connect() as conn:
            result = conn.execute(stmt)
            recs = result.all() if to_record is not None else result.cursor.fetchall()
        more = len(recs) > limit
        recs = recs[:limit]
        return Page([rec[1:] for rec in recs] if to_record is None else
                    [to_record(rec[1:]) for rec in recs], recs[-1][0] if more else None)

    def page_rows(self, filters: RowFilter | None = None, after_id: int | None = None,
                  limit: int = 1000) -> Page[ResultRow]:
        """Up to `limit` rows with id > after_id, in upload order."""
        return self._page(self.tables.results, COLUMNS, to_row, filters, after_id, limit)

    def page_quality_rows(self, filters: RowFilter | None = None, after_id: int | None = None,
                          limit: int = 1000) -> Page[QualityRow]:
        return self._page(self.tables.quality, QUALITY_COLUMNS, to_quality_row, filters,
                          after_id, limit)

    def iter_rows(self, filters: RowFilter | None = None,
                  chunk: int = 5000) -> Iterator[list[ResultRow]]:
        """Every matching row in chunks, each read in its own short transaction (an export
        never holds a read open for its whole length)."""
        return self._iter(self.page_rows, filters, chunk)

    def iter_quality_rows(self, filters: RowFilter | None = None,
                          chunk: int = 5000) -> Iterator[list[QualityRow]]:
        return self._iter(self.page_quality_rows, filters, chunk)

    @staticmethod
    def _iter(page_fn: Callable[..., Page], filters: RowFilter | None,
              chunk: int) -> Iterator[list[Any]]:
        after: int | None = None
        while True:
            page = page_fn(filters, after, chunk)
            if page.rows:
                yield page.rows
            if page.next_after_id is None:
                return
            after = page.next_after_id

    def iter_columns(self, columns: Sequence[str], chunk: int = 50_000) -> Iterator[list[tuple]]:
        """Only `columns` of every result row, as value tuples in upload order, a chunk per short
        read: the report page reads a million rows without a ResultRow per row."""
        table = self.tables.results
        return self._iter(lambda filters, after, limit: self._page(
            table, columns, None, filters, after, limit), None, chunk)

    def generation(self) -> tuple[int, ...]:
        """Changes whenever a result or quality row is stored: what a cached report page is
        keyed on. The two tables' largest ids, one index lookup each: rows are never deleted
        and ids only grow, so a stored row raises one."""
        newest = [sa.select(sa.func.max(t.c.id)).scalar_subquery()
                  for t in (self.tables.results, self.tables.quality)]
        with self.engine.connect() as conn:
            return tuple(v or 0 for v in conn.execute(sa.select(*newest)).one())

    def query_rows(self, device: str | None = None, model: str | None = None) -> list[ResultRow]:
        """device matches host_fingerprint or cpu_model; model matches model_id."""
        return [row for chunk in self.iter_rows(RowFilter(device=device, model=model))
                for row in chunk]

    def query_quality_rows(self, device: str | None = None,
                           model: str | None = None) -> list[QualityRow]:
        """The same filters as query_rows."""
        return [row for chunk in self.iter_quality_rows(RowFilter(device=device, model=model))
                for row in chunk]

    def _count(self, table: sa.Table, filters: RowFilter | None) -> int:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(table)
                                .where(*_where(table, filters))).scalar_one()

    def count_rows(self, filters: RowFilter | None = None) -> int:
        return self._count(self.tables.results, filters)

    def count_quality_rows(self, filters: RowFilter | None = None) -> int:
        return self._count(self.tables.quality, filters)
