"""Quality rows at the upload service, for real: uvicorn on 127.0.0.1, on SQLite and on
PostgreSQL (the `service_db_url` fixture), httpx and `edgebench upload` as clients. Same rules as result rows: all-or-nothing, idempotent, 4xx
with {"errors": [...]} naming the line."""

from __future__ import annotations

import csv
import dataclasses
import io
import sqlite3
import tempfile
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from bench.errors import EdgebenchError
from bench.results.quality import QUALITY_COLUMNS, read_quality_rows
from bench.results.writer import format_rows_csv
from bench.serve import app as server, client as upload
from bench.serve.storage import Store, quality_row_key
from tests.live_server import uvicorn_server
from tests.quality_rowfactory import (agreement_row, corpus_row, humaneval_row,
                                      write_quality_csv)
from tests.rowfactory import make_row
from tests.test_report_quality import html_tables


def _csv(rows) -> str:
    return format_rows_csv(rows, QUALITY_COLUMNS)


def _quality_rows():
    return [corpus_row("int4", "prose-en"), corpus_row("int4", "code-py", nll_nats=30_000.0),
            agreement_row("int4"), humaneval_row(0, passed=True),
            humaneval_row(1, passed=False, sandbox_detail='x = "a, b"\nAssertionError'),
            humaneval_row(0, passed=True, prompt_format="chat")]


@pytest.fixture()
def db_url(service_db_url) -> str:
    return service_db_url


@pytest.fixture()
def service(db_url):
    token = server.create_token(db_url, "tests")
    with uvicorn_server(server.create_app(db_url)) as url:
        yield url, token, db_url


def _post(url: str, token: str | None, body: bytes | str, content_type: str = "text/csv",
          endpoint: str = "/api/quality") -> httpx.Response:
    headers = {"Content-Type": content_type}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = body.encode() if isinstance(body, str) else body
    return httpx.post(f"{url}{endpoint}", content=data, headers=headers, timeout=60)


def _read(text: str):
    """Exports are read back with the strict quality reader."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "export.csv"
        path.write_text(text, encoding="utf-8")
        return read_quality_rows(path)


def _stored(url: str, token: str, **params) -> list:
    response = httpx.get(f"{url}/api/quality.csv", params=params, timeout=60,
                         headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    return _read(response.text)


def _counts(url: str) -> tuple[int, int]:
    health = httpx.get(f"{url}/healthz").json()
    return health["rows"], health["quality_rows"]


def test_upload_reupload_and_export_round_trip(service):
    url, token, _ = service
    rows = _quality_rows()
    body = _csv(rows)
    first = _post(url, token, body)
    assert first.status_code == 201, first.text
    assert first.json() == {"run_ids": ["q" * 32], "rows": 6, "stored": 6, "duplicates": 0}
    again = _post(url, token, body)
    assert again.status_code == 200
    assert again.json() == {"run_ids": ["q" * 32], "rows": 6, "stored": 0, "duplicates": 6}
    assert _stored(url, token) == rows
    assert _counts(url) == (0, 6)
    # one more problem in the same run: only it is new
    more = _post(url, token, _csv(rows + [humaneval_row(2, passed=True)]))
    assert more.status_code == 201 and more.json()["stored"] == 1
    assert more.json()["duplicates"] == 6


def test_multipart_upload(service, tmp_path):
    url, token, _ = service
    path = write_quality_csv(tmp_path / "quality.csv", _quality_rows())
    response = httpx.post(f"{url}/api/quality", headers={"Authorization": f"Bearer {token}"},
                          files={"file": ("quality.csv", path.read_bytes(), "text/csv")})
    assert response.status_code == 201, response.text
    assert _stored(url, token) == _quality_rows()


def test_needs_a_valid_token(service):
    url, token, _ = service
    body = _csv(_quality_rows())
    assert _post(url, None, body).status_code == 401
    assert _post(url, "not-a-token", body).status_code == 403
    assert _stored(url, token) == []


def _replace(text: str, column: str, value: str, row: int = 0) -> str:
    records = list(csv.reader(io.StringIO(text)))
    records[row + 1][records[0].index(column)] = value
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(records)
    return out.getvalue()


@pytest.mark.parametrize("column, value, needle", [
    ("measure", "perplexity", "allowed: bits_per_byte, agreement, humaneval"),
    ("bits_per_byte", "fast", "not a valid float"),
    ("bits_per_byte", "40.0", "outside [0.0, 32.0]"),
    ("bits_per_byte", "0.5", "nll_nats / ln 2 / n_bytes"),
    ("n_tokens", "-4", "plausible range"),
    ("weights", "synthetic", "allowed: real"),
    ("partial", "", "empty but required"),
    ("started_utc", "yesterday", "RFC 3339"),
    ("quality_schema_version", "2", "this server reads 1"),
])
def test_a_bad_cell_rejects_the_whole_upload_naming_its_line(service, column, value, needle):
    url, token, _ = service
    text = _replace(_csv(_quality_rows()), column, value, row=1)
    response = _post(url, token, text)
    assert response.status_code == 422, response.text
    (error,) = response.json()["errors"]
    assert error["line"] == 3 and needle in error["message"], error
    assert error["column"] in (column, None)
    assert "\n" not in error["message"]
    assert _stored(url, token) == [] and _counts(url) == (0, 0)  # the good rows were not stored either


def test_malformed_and_mismatched_files(service):
    url, token, _ = service
    text = _csv(_quality_rows())
    truncated = text[: text.index("\n", text.index("\n") + 1) + 30]
    errors = _post(url, token, truncated).json()["errors"]
    assert errors[0]["line"] == 3 and "cells" in errors[0]["message"]
    missing = _post(url, token, "\n".join(line.rsplit(",", 1)[0] for line in text.splitlines()))
    assert missing.status_code == 422
    assert missing.json()["errors"][0] == {"line": 1, "column": "warnings",
                                           "message": "missing column (edgebench quality v1)"}
    humaneval_without_format = _replace(text, "prompt_format", "", row=3)
    errors = _post(url, token, humaneval_without_format).json()["errors"]
    assert errors[0]["line"] == 5 and "needs prompt_format" in errors[0]["message"]
    dup = _csv(_quality_rows() + [corpus_row("int4", "prose-en")])
    errors = _post(url, token, dup).json()["errors"]
    assert errors[0]["line"] == 8 and "duplicates line 2" in errors[0]["message"]
    assert _post(url, token, "").json()["errors"][0]["message"].startswith("the upload is empty")
    # each kind goes to its own endpoint, and says where the other belongs
    results = _post(url, token, format_rows_csv([make_row()]))
    assert results.status_code == 422 and "/api/results" in results.text
    wrong_way = _post(url, token, text, endpoint="/api/results")
    assert wrong_way.status_code == 422 and "/api/quality" in wrong_way.text
    assert _stored(url, token) == [] and _counts(url) == (0, 0)


def test_encoding_content_type_and_limits(db_url):
    token = server.create_token(db_url, "t")
    with uvicorn_server(server.create_app(db_url, max_body_bytes=20_000, max_rows=5)) as url:
        latin = _csv([corpus_row(cpu_model="Intel® Core")]).encode("latin-1")
        assert _post(url, token, latin).status_code == 400
        body = _csv(_quality_rows())
        assert _post(url, token, body, content_type="application/json").status_code == 415
        many = _post(url, token, body)  # six rows
        assert many.status_code == 413 and "more than 5 rows" in many.text
        big = _csv([humaneval_row(i, passed=True) for i in range(60)])
        assert len(big.encode()) > 20_000
        assert _post(url, token, big).status_code == 413
        assert _stored(url, token) == []
        assert _post(url, token, _csv(_quality_rows()[:5])).status_code == 201


def test_same_key_with_other_content_is_a_conflict(service):
    url, token, _ = service
    assert _post(url, token, _csv(_quality_rows()[:2])).status_code == 201
    changed = [corpus_row("int4", "prose-en", nll_nats=41_000.0), corpus_row("fp32")]
    response = _post(url, token, _csv(changed))
    assert response.status_code == 409
    error = response.json()["errors"][0]
    assert error["line"] == 2 and "bits_per_byte" in error["message"]
    assert len(_stored(url, token)) == 2  # the fp32 row was not stored either


def test_export_neutralises_formulas_and_filters(service):
    url, token, db_url = service
    evil = corpus_row(model_id="=HYPERLINK(\"http://x\")", cpu_model="@SUM(1)",
                      warnings="-2+3", run_id="e" * 32)
    other = corpus_row(host_fingerprint="2" * 16, cpu_model="Apple M2", run_id="f" * 32)
    assert _post(url, token, _csv([evil, other])).status_code == 201
    text = httpx.get(f"{url}/api/quality.csv", headers={"Authorization": f"Bearer {token}"}).text
    cells = list(csv.DictReader(io.StringIO(text)))[0]
    assert (cells["model_id"], cells["cpu_model"], cells["warnings"]) == (
        "'=HYPERLINK(\"http://x\")", "'@SUM(1)", "'-2+3")
    assert cells["bits_per_byte"] == str(evil.bits_per_byte)  # numbers untouched
    store = Store(db_url)
    try:
        with store.engine.connect() as conn:
            stored = conn.execute(sa.text("select model_id from quality_rows order by id")).first()
    finally:
        store.dispose()
    assert tuple(stored) == (evil.model_id,)
    assert _stored(url, token, device="Apple M2") == [other] == _stored(url, token, device="2" * 16)
    assert _stored(url, token, model="smollm2-135m-instruct") == [other]


def test_the_database_refuses_a_second_copy_of_a_corpus_row(db_url):
    """item and prompt_format are NULL for corpus rows; the key column still makes them unique."""
    store = Store(db_url)
    try:
        row = corpus_row()
        assert store.store_quality_rows([row], None).stored == 1
        assert store.store_quality_rows([row], None).duplicates == 1
        record = {**dataclasses.asdict(row), "row_key": quality_row_key(row),
                  "uploaded_utc": "2026-11-28T00:00:00.000000Z", "token_id": None}
        with pytest.raises(sa.exc.IntegrityError):  # as a concurrent upload would insert it
            with store.engine.begin() as conn:
                conn.execute(store.tables.quality.insert(), [record])
        assert store.count_quality_rows() == 1
    finally:
        store.dispose()


def test_report_page_shows_stored_quality_beside_speed(service):
    url, token, _ = service
    speed = [make_row(run_id="1" * 32, variant=v, config_id=f"c/{v}") for v in ("int4", "int8")]
    assert _post(url, token, format_rows_csv(speed), endpoint="/api/results").status_code == 201
    assert _post(url, token, _csv([corpus_row("int4")])).status_code == 201
    page = httpx.get(f"{url}/", timeout=120, headers={"Authorization": f"Bearer {token}"})
    perf = html_tables(page.text)["performance"]
    cells = {r["configuration"]: r["bits/byte prose-en"] for r in perf}
    assert cells == {"int4": f"{corpus_row().bits_per_byte:.3f}", "int8": "quality not measured"}


# ---------------------------------------------------------------- edgebench upload
def test_upload_command_sends_quality_to_its_endpoint(service, tmp_path):
    url, token, _ = service
    path = write_quality_csv(tmp_path / "quality.csv", _quality_rows())
    out = io.StringIO()
    result = upload.upload_file(path, url, token, yes=True, stdout=out, stderr=io.StringIO())
    assert (result.rows, result.stored, result.duplicates) == (6, 6, 0)
    text = out.getvalue()
    assert "(quality rows)" in text and "humaneval (3 rows)" in text
    assert "stored 6 of 6 quality rows" in text
    assert _counts(url) == (0, 6)
    again = upload.upload_file(path, url, token, yes=True, stdout=io.StringIO(),
                               stderr=io.StringIO())
    assert (again.stored, again.duplicates) == (0, 6)


def test_upload_command_checks_quality_locally(service, tmp_path):
    url, token, _ = service
    leaky = write_quality_csv(tmp_path / "leaky.csv", [humaneval_row(
        0, passed=False, sandbox_detail='File "/home/alice/x.py", line 3')])
    with pytest.raises(EdgebenchError, match="column sandbox_detail contains '/home/alice'"):
        upload.upload_file(leaky, url, token, yes=True, identifiers=("/home/alice",),
                           stdout=io.StringIO(), stderr=io.StringIO())
    bad = write_quality_csv(tmp_path / "bad.csv", [corpus_row(bits_per_byte=0.5)])
    with pytest.raises(EdgebenchError, match=r"line 2 column bits_per_byte: .*nothing was sent"):
        upload.upload_file(bad, url, token, yes=True, stdout=io.StringIO(),
                           stderr=io.StringIO())
    malformed = tmp_path / "malformed.csv"
    malformed.write_text(_replace(_csv(_quality_rows()), "measure", "ppl", row=2))
    with pytest.raises(EdgebenchError, match=r"malformed\.csv line 4: measure is 'ppl'"):
        upload.upload_file(malformed, url, token, yes=True, stdout=io.StringIO(),
                           stderr=io.StringIO())
    assert _counts(url) == (0, 0)


def test_an_older_database_gains_the_quality_table(tmp_path):
    db_url = f"sqlite:///{tmp_path / 'old.sqlite'}"  # SQLite only: the file is edited directly
    Store(db_url).dispose()
    path = db_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:  # as made by an edgebench before quality rows
        conn.execute("drop table quality_rows")
    store = Store(db_url)
    try:
        assert store.store_quality_rows([corpus_row()], None).stored == 1
        assert store.query_quality_rows() == [corpus_row()]
    finally:
        store.dispose()
