"""The upload service's store on SQLite and on a real PostgreSQL (tests/pg_server.py):
migrations, WAL, concurrent writers, tokens, run ownership, pages and filters, and a database
made before Alembic upgraded without loss."""

from __future__ import annotations

import dataclasses
import sqlite3
import threading

import pytest
import sqlalchemy as sa

from bench.errors import EdgebenchError
from bench.results import schema
from bench.results.quality import QUALITY_COLUMNS, QUALITY_REQUIRED, QUALITY_TYPES
from bench.serve import storage_engine
from bench.serve.storage import (Page, RowFilter, RunNotYours, Store, StoreBusy, StoreOutcome,
                                 quality_row_key, token_hash)
from bench.serve.storage_migrate import current_revision, head_revision
from tests import pg_server
from tests.quality_rowfactory import corpus_row, humaneval_row
from tests.rowfactory import make_row

RUN_A, RUN_B, RUN_C = "a" * 32, "b" * 32, "c" * 32


@pytest.fixture()
def store(service_db_url):
    s = Store(service_db_url)
    yield s
    s.dispose()


def _rows(run_id: str, reps: range, **overrides):
    return [make_row(run_id=run_id, rep=r, **overrides) for r in reps]


def _in_threads(work, n: int) -> list:
    """work(i) in n threads released together; returns results or the exceptions raised."""
    barrier = threading.Barrier(n)
    out: list = [None] * n

    def go(i: int) -> None:
        barrier.wait()
        try:
            out[i] = work(i)
        except Exception as exc:  # noqa: BLE001 - the test asserts there is none
            out[i] = exc

    threads = [threading.Thread(target=go, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return out


# ------------------------------------------------------------------ migrations
def test_migrations_make_the_schema_the_code_uses_on_both_engines(store, service_db_url):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with store.engine.connect() as conn:
        assert current_revision(conn) == head_revision() == "0002"
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(ctx, store.tables.metadata) == []
    Store(service_db_url).dispose()  # opening again changes nothing
    with store.engine.connect() as conn:
        assert current_revision(conn) == "0002"


def test_stores_opened_at_once_migrate_a_new_database_once(service_db_url):
    """As uvicorn workers starting together would: no error, one schema."""
    opened = _in_threads(lambda _: Store(service_db_url), 4)
    assert [type(s) for s in opened] == [Store] * 4, opened
    try:
        with opened[0].engine.connect() as conn:
            assert current_revision(conn) == "0002"
            assert sa.inspect(conn).get_table_names().count("runs") == 1
    finally:
        for s in opened:
            s.dispose()


def test_a_database_from_a_newer_edgebench_is_refused_in_one_line(store, service_db_url):
    with store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0099'")
    with pytest.raises(EdgebenchError, match="at schema revision 0099, newer than this "
                                             "edgebench knows \\(up to 0002\\): upgrade edgebench"):
        Store(service_db_url)


def test_sqlite_runs_in_wal_with_a_busy_timeout(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'db.sqlite'}", busy_timeout_s=1.5)
    try:
        with s.engine.connect() as conn:
            pragma = {name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                      for name in ("journal_mode", "synchronous", "busy_timeout")}
        assert pragma == {"journal_mode": "wal", "synchronous": 1, "busy_timeout": 1500}
    finally:
        s.dispose()


def test_an_unsupported_or_malformed_url_is_one_line():
    with pytest.raises(EdgebenchError, match="'mysql' is not supported: use sqlite:///PATH"):
        Store("mysql://u@h/db")
    with pytest.raises(EdgebenchError, match="is not a URL"):
        Store("not a url")


def test_missing_postgresql_skips_with_a_reason_but_fails_under_ci(monkeypatch):
    monkeypatch.setattr(pg_server, "find_pg_bin", lambda: None)
    with pytest.raises(pg_server.PgUnavailable, match="apt-get install postgresql"):
        pg_server.start_postgres()
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="PostgreSQL unavailable: no initdb"):
        pg_server.skip_or_fail("no initdb")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true needs PostgreSQL: no initdb"):
        pg_server.skip_or_fail("no initdb")


# ------------------------------------------------------------------ writes
def test_same_rows_twice_store_one_copy_and_a_conflict_stores_nothing(store):
    token = store.token_id(store.create_token("t"))
    first = store.store_rows(_rows(RUN_A, range(1, 4)), token)
    assert (first.stored, first.duplicates, first.conflicts) == (3, 0, ())
    again = store.store_rows(_rows(RUN_A, range(1, 6)), token)
    assert (again.stored, again.duplicates) == (2, 3)
    changed = _rows(RUN_A, range(1, 3)) + [make_row(run_id=RUN_A, rep=3, decode_tok_s=1.0)]
    outcome = store.store_rows(changed + _rows(RUN_A, range(6, 9)), token)
    assert outcome.stored == 0 and [i for i, _ in outcome.conflicts] == [2]
    assert "same run_id, config_id and rep but different decode_tok_s" in outcome.conflicts[0][1]
    assert store.count_rows() == 5  # the new reps 6-8 were rolled back with the conflict
    twice = make_row(run_id=RUN_B, rep=1)
    assert store.store_rows([twice, twice], token) == StoreOutcome(1, 1, ())
    clash = store.store_rows([make_row(run_id=RUN_C, rep=1),
                              make_row(run_id=RUN_C, rep=1, decode_tok_s=2.0)], token)
    assert clash.stored == 0 and [i for i, _ in clash.conflicts] == [1]
    assert store.count_rows() == 6
    changed_quality = corpus_row(nll_nats=41_000.0)
    assert store.store_quality_rows([corpus_row()], token).stored == 1
    outcome = store.store_quality_rows([humaneval_row(0, passed=True), changed_quality], token)
    assert outcome.stored == 0 and "but different nll_nats, bits_per_byte" in outcome.conflicts[0][1]
    assert store.count_quality_rows() == 1


def test_concurrent_overlapping_uploads_store_one_copy_without_error(service_db_url):
    stores = [Store(service_db_url), Store(service_db_url)]  # two app workers, one database
    token = stores[0].token_id(stores[0].create_token("t"))
    try:
        for run_id in (RUN_A, RUN_B):
            uploads = [_rows(run_id, range(start, start + 60)) for start in (1, 21, 41, 1, 31, 11)]
            outcomes = _in_threads(lambda i: stores[i % 2].store_rows(uploads[i], token),
                                   len(uploads))
            assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
            for upload, outcome in zip(uploads, outcomes):
                assert outcome.stored + outcome.duplicates == len(upload) and not outcome.conflicts
            assert sum(o.stored for o in outcomes) == 100
        assert stores[1].count_rows() == 200
        quality = [[humaneval_row(i, passed=True) for i in range(start, start + 20)]
                   for start in (0, 10, 5, 0)]
        outcomes = _in_threads(lambda i: stores[i % 2].store_quality_rows(quality[i], token), 4)
        assert sum(o.stored for o in outcomes) == 30 == stores[0].count_quality_rows(), outcomes
    finally:
        for s in stores:
            s.dispose()


def test_two_tokens_racing_for_a_new_run_one_wins_the_other_is_refused(store):
    tokens = [store.token_id(store.create_token(name)) for name in ("x", "y")]
    outcomes = _in_threads(lambda i: store.store_rows(_rows(RUN_C, range(1, 30)), tokens[i]), 2)
    won = [o for o in outcomes if not isinstance(o, Exception)]
    refused = [o for o in outcomes if isinstance(o, RunNotYours)]
    assert len(won) == len(refused) == 1, outcomes
    assert won[0].stored == 29 and refused[0].run_ids == (RUN_C,)


def test_a_write_waits_for_a_lock_then_gives_up_with_store_busy(tmp_path):
    path = tmp_path / "db.sqlite"
    s = Store(f"sqlite:///{path}", busy_timeout_s=0.05, retry_for_s=0.3)
    token = s.token_id(s.create_token("t"))
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another process holding the write lock
        with pytest.raises(StoreBusy) as busy:
            s.store_rows(_rows(RUN_A, range(1, 3)), token)
        assert busy.value.retry_after_s > 0
        holder.execute("ROLLBACK")
        assert s.store_rows(_rows(RUN_A, range(1, 3)), token).stored == 2
    finally:
        holder.close()
        s.dispose()


def test_a_long_read_does_not_block_writers(store, service_db_url):
    token = store.token_id(store.create_token("t"))
    store.store_rows(_rows(RUN_A, range(1, 50)), token)
    writer = Store(service_db_url, busy_timeout_s=0.2, retry_for_s=0.5)  # another worker
    try:
        with store.engine.connect() as reader:  # an export midway through its read transaction
            result = reader.execute(sa.select(store.tables.results)).mappings()
            assert next(iter(result))["run_id"] == RUN_A
            assert writer.store_rows(_rows(RUN_B, range(1, 50)), token).stored == 49
            assert writer.store_quality_rows([corpus_row()], token).stored == 1
            result.close()  # an open cursor would keep its snapshot on the pooled connection
        assert store.count_rows() == 98
    finally:
        writer.dispose()


class _FakeEngine:
    """Just enough of an engine for run_write: every connection and transaction is a no-op."""

    def connect(self):
        return self

    def begin(self):
        return self

    def execution_options(self, **_kw):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *_exc):
        return False


def test_retries_run_until_a_deadline_then_store_busy():
    locked = sa.exc.OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked"))
    now = [0.0]
    calls: list[float] = []

    def sleep(seconds: float) -> None:
        now[0] += seconds

    def locked_twice(_conn):
        calls.append(now[0])
        if len(calls) <= 2:
            raise locked
        return "done"

    def always_locked(_conn):
        calls.append(now[0])
        raise locked

    run = lambda work, s: storage_engine.run_write(  # noqa: E731
        _FakeEngine(), work, retry_for_s=s, sleep=sleep, clock=lambda: now[0])
    assert run(locked_twice, 5.0) == "done" and len(calls) == 3
    calls.clear()
    with pytest.raises(StoreBusy, match="database is locked"):
        run(always_locked, 2.0)
    assert len(calls) > 3 and calls[-1] <= 2.0  # backed off, and stopped at the deadline
    def broken(_conn):
        calls.append(now[0])
        raise sa.exc.OperationalError("INSERT", {}, sqlite3.OperationalError("no such table: x"))

    calls.clear()
    with pytest.raises(sa.exc.OperationalError, match="no such table"):
        run(broken, 5.0)
    assert len(calls) == 1  # not a lock: no retry


# ------------------------------------------------------------------ tokens and ownership
def test_tokens_are_hashed_revocable_and_their_ids_never_reused(store):
    first, second = store.create_token("alice"), store.create_token("bob")
    ids = [store.token_id(first), store.token_id(second)]
    assert ids[0] < ids[1] and store.token_id("eb_unknown") is None
    with store.engine.connect() as conn:
        hashes = conn.execute(sa.select(store.tables.tokens.c.token_sha256)).scalars().all()
    assert sorted(hashes) == sorted([token_hash(first), token_hash(second)])
    assert store.revoke_token(ids[1]) is True and store.token_id(second) is None
    assert store.revoke_token(ids[1]) is True and store.revoke_token(9999) is False
    listed = store.list_tokens()
    assert [(t.id, t.name, t.revoked_utc is None) for t in listed] == [
        (ids[0], "alice", True), (ids[1], "bob", False)]
    assert store.token_id(first) == ids[0]
    with store.engine.begin() as conn:  # an admin deleting the newest token by hand
        conn.execute(store.tables.tokens.delete().where(store.tables.tokens.c.id == ids[1]))
    third = store.create_token("carol")
    assert store.token_id(third) > ids[1]  # SQLite AUTOINCREMENT / a PostgreSQL sequence


def test_only_the_token_that_created_a_run_adds_rows_to_it(store):
    alice, bob = (store.token_id(store.create_token(n)) for n in ("alice", "bob"))
    assert store.store_rows(_rows(RUN_A, range(1, 3)), alice).stored == 2
    with pytest.raises(RunNotYours) as refused:
        store.store_rows(_rows(RUN_B, range(1, 3)) + _rows(RUN_A, range(3, 5)), bob)
    assert refused.value.run_ids == (RUN_A,) and "another token" in str(refused.value)
    assert store.count_rows() == 2  # nothing of bob's upload, not even the new run
    assert store.store_rows(_rows(RUN_B, range(1, 3)), alice).stored == 2  # RUN_B was not claimed
    with pytest.raises(RunNotYours):  # quality rows share the runs: bob cannot use alice's
        store.store_quality_rows([corpus_row(run_id=RUN_A)], bob)
    assert store.store_quality_rows([corpus_row(run_id=RUN_A)], alice).stored == 1
    assert store.store_rows(_rows(RUN_A, range(3, 5)), alice).stored == 2


# ------------------------------------------------------------------ reads
def test_pages_walk_every_row_once_and_filters_narrow_them(store):
    token = store.token_id(store.create_token("t"))
    rows = (_rows(RUN_A, range(1, 6))
            + _rows(RUN_B, range(1, 4), cpu_model="Apple M2", host_fingerprint="2" * 16,
                    started_utc="2026-11-25T08:00:00.000Z")
            + _rows(RUN_C, range(1, 4), model_id="qwen2.5-0.5b-instruct", backend="ort-genai",
                    started_utc="2026-11-27T23:59:59.999Z"))
    assert store.store_rows(rows, token).stored == 11
    seen, after, pages = [], None, 0
    while True:
        page = store.page_rows(after_id=after, limit=4)
        assert isinstance(page, Page) and len(page.rows) <= 4
        seen += page.rows
        pages += 1
        if page.next_after_id is None:
            break
        after = page.next_after_id
    assert seen == store.query_rows() and len(seen) == 11 and pages == 3
    assert store.page_rows(limit=11).next_after_id is None  # exactly full: no empty last page
    with pytest.raises(ValueError):
        store.page_rows(limit=0)

    def runs(f: RowFilter) -> list[str]:
        return sorted({r.run_id for chunk in store.iter_rows(f, chunk=2) for r in chunk})

    assert runs(RowFilter(device="Apple M2")) == [RUN_B] == runs(RowFilter(device="2" * 16))
    assert runs(RowFilter(model="qwen2.5-0.5b-instruct")) == [RUN_C]
    assert runs(RowFilter(backend="ort")) == [RUN_A, RUN_B]
    assert runs(RowFilter(since_utc="2026-11-25", until_utc="2026-11-27")) == [RUN_B]
    assert runs(RowFilter(since_utc="2026-11-27T23:59:59.999Z")) == [RUN_C]
    assert runs(RowFilter(until_utc="2026-11-25")) == [RUN_A]  # make_row's 2026-11-22
    assert runs(RowFilter(since_utc="2026-11-23")) == [RUN_B, RUN_C]
    assert runs(RowFilter(device="Apple M2", backend="ort-genai")) == []
    assert store.count_rows(RowFilter(backend="ort")) == 8 and store.count_rows() == 11
    assert [len(c) for c in store.iter_rows(chunk=5)] == [5, 5, 1]
    assert store.query_rows(device="Apple M2", model="smollm2-135m-instruct") == rows[5:8]


def test_quality_rows_page_and_filter_like_result_rows(store):
    token = store.token_id(store.create_token("t"))
    rows = [corpus_row(v) for v in ("int4", "int8", "fp32")] + [
        humaneval_row(i, passed=i % 2 == 0, run_id=RUN_B, backend="ort-genai",
                      started_utc="2026-11-28T01:00:00Z") for i in range(4)]
    assert store.store_quality_rows(rows, token).stored == 7
    page = store.page_quality_rows(limit=5)
    rest = store.page_quality_rows(after_id=page.next_after_id, limit=5)
    assert page.rows + rest.rows == rows and rest.next_after_id is None
    only = RowFilter(backend="ort-genai", since_utc="2026-11-28")
    assert [r for c in store.iter_quality_rows(only, chunk=3) for r in c] == rows[3:]
    assert store.count_quality_rows(only) == 4
    assert store.query_quality_rows(model="none") == []


# ------------------------------------------------------------------ databases made before Alembic
def _legacy_tables() -> sa.MetaData:
    """The tables exactly as edgebench made them before it used Alembic (create_all)."""
    types = {"int": sa.BigInteger, "float": sa.Double, "bool": sa.Boolean, "str": sa.Text}
    md = sa.MetaData()
    sa.Table("results", md, sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
             *[sa.Column(n, types[schema.TYPES[n].split()[0]](), nullable=n not in schema.REQUIRED)
               for n in schema.COLUMNS],
             sa.Column("uploaded_utc", sa.Text, nullable=False),
             sa.Column("token_id", sa.Integer, nullable=True),
             sa.UniqueConstraint("run_id", "config_id", "rep", name="uq_results_run_config_rep"),
             *[sa.Index(f"ix_results_{c}", c) for c in ("model_id", "host_fingerprint",
                                                         "cpu_model")])
    sa.Table("upload_tokens", md, sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
             sa.Column("name", sa.Text, nullable=False),
             sa.Column("token_sha256", sa.Text, nullable=False, unique=True),
             sa.Column("created_utc", sa.Text, nullable=False))
    sa.Table("quality_rows", md, sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
             *[sa.Column(n, types[QUALITY_TYPES[n].split()[0]](), nullable=n not in QUALITY_REQUIRED)
               for n in QUALITY_COLUMNS],
             sa.Column("row_key", sa.Text, nullable=False),
             sa.Column("uploaded_utc", sa.Text, nullable=False),
             sa.Column("token_id", sa.Integer, nullable=True),
             sa.UniqueConstraint("row_key", name="uq_quality_rows_key"),
             *[sa.Index(f"ix_quality_rows_{c}", c) for c in ("run_id", "model_id",
                                                              "host_fingerprint", "cpu_model")])
    return md


def test_a_database_made_before_alembic_is_upgraded_not_lost(service_db_url):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    md = _legacy_tables()
    engine = sa.create_engine(service_db_url)
    old_rows = _rows(RUN_A, range(1, 4))
    quality = corpus_row(run_id=RUN_B)
    stamp = "2026-11-20T00:00:00.000000Z"
    with engine.begin() as conn:
        md.create_all(conn)
        conn.exec_driver_sql("ALTER TABLE results DROP COLUMN energy_basis")  # an older schema
        tokens = md.tables["upload_tokens"]
        conn.execute(tokens.insert(), [
            {"name": n, "token_sha256": token_hash(f"eb_{n}"), "created_utc": stamp}
            for n in ("alice", "bob")])
        conn.execute(md.tables["results"].insert(), [
            {k: v for k, v in schema.row_to_dict(r).items() if k != "energy_basis"}
            | {"uploaded_utc": stamp, "token_id": 1} for r in old_rows])
        conn.execute(md.tables["quality_rows"].insert(), [
            dataclasses.asdict(quality) | {"row_key": quality_row_key(quality),
                                           "uploaded_utc": stamp, "token_id": 2}])
    engine.dispose()

    store = Store(service_db_url)
    try:
        with store.engine.connect() as conn:
            assert current_revision(conn) == head_revision()
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(ctx, store.tables.metadata) == []
        assert store.query_rows() == old_rows and store.query_quality_rows() == [quality]
        alice, bob = store.token_id("eb_alice"), store.token_id("eb_bob")
        assert (alice, bob) == (1, 2)
        with pytest.raises(RunNotYours):  # the stored run stayed alice's
            store.store_rows(_rows(RUN_A, range(4, 6)), bob)
        assert store.store_rows(_rows(RUN_A, range(1, 6)), alice).stored == 2
        assert store.store_quality_rows([corpus_row("int8", run_id=RUN_B)], bob).stored == 1
        assert store.revoke_token(bob) and store.token_id("eb_bob") is None
        assert store.token_id(store.create_token("carol")) == 3
    finally:
        store.dispose()
