"""The fast path of a results upload (bench/serve/fastcheck.py) against the row-by-row check
(bench/serve/checks.py): whatever the fast path accepts, the row-by-row check accepts with the
same rows; everything else gets the row-by-row verdict, messages included. And the store takes
its column batches on both engines, PostgreSQL reading the CSV itself."""

from __future__ import annotations

import csv
import io
import random
from datetime import datetime, timezone

import pytest

from benchmarks.gen_rows import iter_rows
from bench.results.schema import COLUMNS, COLUMNS_BY_VERSION
from bench.serve import checks, fastcheck
from bench.serve.batch import ResultBatch
from bench.serve.storage import Store
from bench.serve.storage_ingest import _statements

NOW = datetime(2026, 11, 28, tzinfo=timezone.utc)


def _csv(records: list[list[str]], header: list[str] | tuple[str, ...] = COLUMNS) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(records)
    return out.getvalue().encode()


@pytest.fixture(scope="module")
def records() -> list[list[str]]:
    """A realistic mix: every energy method, tests with and without ITL samples."""
    return list(iter_rows(120, seed=3))


def _exact(data: bytes):
    return checks.check_upload(data, checks.RESULTS, max_rows=100_000, now=NOW)


def _fast(data: bytes, copy_csv: bool = False) -> ResultBatch | None:
    return fastcheck.check_results(data, max_rows=100_000, now=NOW, copy_csv=copy_csv)


def test_a_clean_upload_takes_the_fast_path_with_the_same_rows(records):
    data = _csv(records)
    batch, exact = _fast(data), _exact(data)
    assert exact.status == 200 and isinstance(batch, ResultBatch)
    assert list(batch) == list(exact.rows)
    assert batch[-1] == exact.rows[-1] and batch[1:3] == list(exact.rows[1:3])
    assert batch.keys() == [(r.run_id, r.config_id, r.rep) for r in exact.rows]
    assert batch.run_ids() == sorted({r.run_id for r in exact.rows})
    checked = checks.check_results_upload(data, max_rows=100_000, now=NOW)
    assert isinstance(checked.rows, ResultBatch) and checked.status == 200


def test_columns_in_another_order_take_the_fast_path(records):
    order = list(reversed(COLUMNS))
    data = _csv([[dict(zip(COLUMNS, r))[c] for c in order] for r in records], order)
    batch = _fast(data)
    assert batch is not None and list(batch) == list(_exact(data).rows)


# Cell values the fast path must not get wrong: odd spellings Python reads and PostgreSQL may
# not, non-finite and out-of-range numbers, empty required cells, texts that break CSV or JSON.
EDGE_VALUES = ("", " ", "0", "-0", "1", "-1", "+1", "1_0", " 5", "5 ", "٣", "1e5", "1e-400",
               "1e400", "inf", "nan", "-inf", "1.", ".5", "1e6", "1000001", "0.5", "2.0", "true",
               "false", "True", "x", "{}", "[]", '{"a": 1}', '{"a": [[[[[[[[[1]]]]]]]]]}',
               "a,b", 'q"q', "line\nbreak", "0.1 0.2", "0.1  0.2", " 0.1", "0.1 -0.2", "0.1 x",
               "0.1 1e7", "0.1 nan", "2026-11-28T00:00:00Z", "2099-01-01T00:00:00Z",
               "2026-11-28T00:00:00", "2026-11-28", "estimate:tdp", "rapl", "none", "real",
               "synthetic", "estimate: no meter", r"\.", "4", "128", "127", "0.01",
               "0.1 -0", "0.1 1e999", "0.1 1e-05", "0.1 1e+05", "0.1 1e--5", "0.1 e-5", "0.1\t0.2",
               "0.1 1e6", "0.1 1000000.5", "0.0 0.0")


def _mutations(records: list[list[str]], n: int, seed: int):
    rng = random.Random(seed)
    for _ in range(n):
        edited = [list(r) for r in records[:40]]
        for _ in range(rng.choice((1, 1, 2, 3))):
            row, col = rng.randrange(len(edited)), rng.randrange(len(COLUMNS))
            edited[row][col] = rng.choice(EDGE_VALUES)
        yield edited


def test_edited_uploads_get_the_row_by_row_verdict(records):
    """Fast accepts only what the row-by-row check accepts, with equal rows; the public check
    answers exactly as the row-by-row one (status, count and messages)."""
    accepted = rejected = 0
    for edited in _mutations(records, 400, seed=15):
        data = _csv(edited)
        exact = _exact(data)
        batch = _fast(data, copy_csv=True)
        if batch is not None:
            accepted += 1
            assert exact.status == 200, exact.errors[:3]
            assert list(batch) == list(exact.rows)
            if batch.copy is not None:
                back = list(csv.reader(io.StringIO(batch.copy.text.decode(), newline="")))
                assert back == edited
        checked = checks.check_results_upload(data, max_rows=100_000, now=NOW)
        assert (checked.status, checked.errors, checked.error_count) == (
            exact.status, exact.errors, exact.error_count)
        rejected += exact.status != 200
    assert accepted > 40 and rejected > 40  # both sides were exercised


@pytest.mark.parametrize("column", [
    "itl_samples_s", "ep_options", "started_utc", "finished_utc", "decode_tok_s", "prefill_s",
    "load_s", "threads", "n_generated", "on_battery", "weights", "energy_method",
    "energy_warning", "decode_j_per_tok", "decode_j_per_tok_low", "prefill_energy_net_j",
    "itl_p90_s", "cpu_temp_c_after", "run_id", "rep"])
def test_every_edge_value_in_a_column_gets_the_row_by_row_verdict(records, column):
    at = COLUMNS.index(column)
    for row in (0, 1, 2):  # gen_rows starts with a pp512, a tg128 and a chat row in some order
        for value in EDGE_VALUES:
            edited = [list(r) for r in records[:6]]
            edited[row][at] = value
            data = _csv(edited)
            exact, batch = _exact(data), _fast(data)
            if batch is not None:
                assert exact.status == 200 and list(batch) == list(exact.rows), (column, value)


@pytest.mark.parametrize("body", [
    "blank", "control", "crlf", "v2", "wrong-version", "duplicate", "too-many", "quoted-number",
])
def test_what_the_fast_path_leaves_to_the_row_by_row_check(records, body):
    data = _csv(records[:5])
    if body == "blank":
        data += b"\n\n"
    elif body == "control":
        data = data.replace(b"edgebench run", b"edgebench\x01run", 1)
    elif body == "crlf":
        data = data.replace(b"\n", b"\r\n")
    elif body == "v2":
        v2 = COLUMNS_BY_VERSION[2]
        data = _csv([[("2" if c == "schema_version" else dict(zip(COLUMNS, r))[c]) for c in v2]
                     for r in records[:5]], v2)
    elif body == "wrong-version":
        data = _csv([["4", *r[1:]] for r in records[:5]])
    elif body == "duplicate":
        data = _csv(records[:5] + records[:1])
    elif body == "quoted-number":
        data = data.replace(b",512,", b',"512 ",', 1)
    limit = 3 if body == "too-many" else 100_000
    assert fastcheck.check_results(data, max_rows=limit, now=NOW) is None
    exact = checks.check_upload(data, checks.RESULTS, max_rows=limit, now=NOW)
    checked = checks.check_results_upload(data, max_rows=limit, now=NOW)
    assert (checked.status, checked.errors) == (exact.status, exact.errors)
    assert not isinstance(checked.rows, ResultBatch)


def test_chunks_keep_keys_unique_across_them(records, monkeypatch):
    monkeypatch.setattr(fastcheck, "CHUNK_RECORDS", 7)
    assert _fast(_csv(records[:30])) is not None
    assert _fast(_csv(records[:30] + records[2:3])) is None  # a repeat 27 records later


@pytest.mark.parametrize(("n", "most"), [(0, 8), (1, 8), (7, 8), (8, 8), (9, 8), (500, 399),
                                         (1000, 256), (12_345, 399)])
def test_sqlite_statements_cover_every_row_once(n, most):
    spans = _statements(n, most)
    assert [s for s, _ in spans] == [sum(z for _, z in spans[:i]) for i in range(len(spans))]
    assert sum(z for _, z in spans) == n and all(0 < z <= most for _, z in spans)
    assert len({z for _, z in spans}) <= most.bit_length()


def test_the_store_takes_a_batch_on_both_engines(records, service_db_url):
    """PostgreSQL COPYs the CSV; a number it reads otherwise (1e-400: Python 0.0, PostgreSQL
    out of range) falls back to the typed rows; SQLite inserts in multi-row statements; a
    second upload is all duplicates; a changed row is a conflict and stores nothing."""
    store = Store(service_db_url)
    try:
        token = store.token_id(store.create_token("t"))
        edited = [list(r) for r in records]
        edited[3][COLUMNS.index("load_s")] = "1e-400"
        first = _fast(_csv(edited), copy_csv=True)
        assert first is not None and first.copy is not None and first[3].load_s == 0.0
        assert store.store_rows(first, token).stored == len(records)
        stored = store.page_rows(limit=len(records)).rows
        assert stored == list(first)
        text = [list(r) for r in records[:4]]  # a line break in a cell: lines are not records
        text[2][COLUMNS.index("warnings")] = 'two\nlines, "quoted"'
        run = "f" * 32
        text = [[run if c == "run_id" else v for c, v in zip(COLUMNS, r)] for r in text]
        broken = _fast(_csv(text), copy_csv=True)
        assert broken is not None and store.store_rows(broken, token).stored == 4
        assert [r for r in store.query_rows() if r.run_id == run] == list(broken)
        again = store.store_rows(_fast(_csv(records[4:50]), copy_csv=True), token)
        assert (again.stored, again.duplicates, again.conflicts) == (0, 46, ())
        changed = [list(r) for r in records[:3]]
        changed[1][COLUMNS.index("threads")] = str(int(changed[1][COLUMNS.index("threads")]) + 1)
        conflict = store.store_rows(_fast(_csv(changed), copy_csv=True), token)
        assert conflict.stored == 0 and [i for i, _ in conflict.conflicts] == [1]
        assert "threads" in conflict.conflicts[0][1]
        quoted = _csv([[("g" * 32 if c == "run_id" else v) for c, v in zip(COLUMNS, r)]
                       for r in records[:3]])  # empty cells sent quoted: still missing values
        quoted = b"\n".join(line.replace(b",,", b',"",') for line in quoted.split(b"\n"))
        batch = _fast(quoted, copy_csv=True)
        assert batch is not None and b'"",' in quoted
        assert store.store_rows(batch, token).stored == 3
        assert [r for r in store.query_rows() if r.run_id == "g" * 32] == list(batch)
        assert store.count_rows() == len(records) + 4 + 3
    finally:
        store.dispose()
