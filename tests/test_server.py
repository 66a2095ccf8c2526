"""The upload service for real: uvicorn on 127.0.0.1, httpx as the client, on SQLite and on
PostgreSQL (the `service_db_url` fixture of tests/conftest.py). Hostile input and load:
tests/test_serve_hardening.py."""

from __future__ import annotations

import argparse
import csv
import io
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from bench.serve import app as server
from bench.results.schema import COLUMNS
from bench.results.writer import format_rows_csv
from bench.results.read import read_rows
from bench.cli.serve import register
from bench.serve.storage import Store, token_hash
from bench.results.validate import LIMITS, limit_for, numeric_columns
from tests.live_server import uvicorn_server
from tests.rowfactory import make_row


def _rows(n: int = 3, run_id: str = "1" * 32):
    return [make_row(run_id=run_id, rep=i + 1) for i in range(n)]


@pytest.fixture()
def db_url(service_db_url) -> str:
    return service_db_url


def _sql(db_url: str, query: str) -> list[tuple]:
    """Rows of a query on the service's database, whichever engine it is."""
    import sqlalchemy as sa

    store = Store(db_url)
    try:
        with store.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(query))]
    finally:
        store.dispose()


@pytest.fixture()
def service(db_url):
    """(base URL, token, db_url) of a running service with an empty database."""
    token = server.create_token(db_url, "tests")
    with uvicorn_server(server.create_app(db_url)) as url:
        yield url, token, db_url


def _post(url: str, token: str | None, body: bytes | str,
          content_type: str = "text/csv") -> httpx.Response:
    headers = {"Content-Type": content_type}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = body.encode() if isinstance(body, str) else body
    return httpx.post(f"{url}/api/results", content=data, headers=headers, timeout=60)


def _stored(url: str, token: str) -> list:
    response = httpx.get(f"{url}/api/results.csv", headers=_auth(token), timeout=60)
    assert response.status_code == 200
    return _parse_csv(response.text)


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _parse_csv(text: str):
    """Exports are read back with the strict schema reader."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "export.csv"
        p.write_text(text, encoding="utf-8")
        return read_rows(p)


def _cells(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_healthz(service):
    url, _, _ = service
    response = httpx.get(f"{url}/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "rows": 0, "quality_rows": 0}


def test_csv_upload_then_export_round_trips(service):
    url, token, _ = service
    rows = _rows(3) + [make_row(run_id="2" * 32, config_id="other", on_battery=True,
                                cpu_temp_c_before=-5.5, warnings="a, \"quoted\"\nnote")]
    response = _post(url, token, format_rows_csv(rows))
    assert response.status_code == 201, response.text
    assert response.json() == {"run_ids": ["1" * 32, "2" * 32], "rows": 4, "stored": 4,
                               "duplicates": 0}
    assert _stored(url, token) == rows


def test_multipart_upload(service):
    url, token, _ = service
    rows = _rows(2)
    response = httpx.post(f"{url}/api/results", headers={"Authorization": f"Bearer {token}"},
                          files={"file": ("results.csv", format_rows_csv(rows), "text/csv")})
    assert response.status_code == 201, response.text
    assert response.json()["stored"] == 2
    assert _stored(url, token) == rows


def test_multipart_without_file_field_is_rejected(service):
    url, token, _ = service
    response = httpx.post(f"{url}/api/results", headers={"Authorization": f"Bearer {token}"},
                          files={"other": ("x.csv", "a", "text/csv")})
    assert response.status_code == 422
    assert "'file'" in response.json()["errors"][0]["message"]


def test_reupload_is_idempotent(service):
    url, token, _ = service
    body = format_rows_csv(_rows(3))
    assert _post(url, token, body).status_code == 201
    again = _post(url, token, body)
    assert again.status_code == 200
    assert again.json() == {"run_ids": ["1" * 32], "rows": 3, "stored": 0, "duplicates": 3}
    # a run extended by one more repetition stores only the new row
    more = _post(url, token, format_rows_csv(_rows(4)))
    assert more.status_code == 201
    assert more.json()["stored"] == 1 and more.json()["duplicates"] == 3
    assert len(_stored(url, token)) == 4


def test_same_key_with_other_content_is_a_conflict(service):
    url, token, _ = service
    assert _post(url, token, format_rows_csv(_rows(2))).status_code == 201
    changed = [make_row(run_id="1" * 32, rep=1, decode_tok_s=195.0), make_row(rep=3,
                                                                                run_id="1" * 32)]
    response = _post(url, token, format_rows_csv(changed))
    assert response.status_code == 409
    assert "retry-after" not in response.headers  # a content conflict: no retry fixes it
    error = response.json()["errors"][0]
    assert error["line"] == 2 and "decode_tok_s" in error["message"]
    assert len(_stored(url, token)) == 2  # rep 3 was not stored either


def test_missing_and_wrong_token(service):
    url, token, _ = service
    body = format_rows_csv(_rows(1))
    missing = _post(url, None, body)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert "token" in missing.json()["errors"][0]["message"]
    wrong = _post(url, "not-a-token", body)
    assert wrong.status_code == 403
    assert _stored(url, token) == []


def test_token_is_stored_only_as_hash(service):
    _, token, db_url = service
    dump = repr(_sql(db_url, "select * from upload_tokens"))
    assert token not in dump
    assert token_hash(token) in dump


def _bad_upload(url: str, token: str, text: str, status: int = 422) -> list[dict]:
    response = _post(url, token, text)
    assert response.status_code == status, response.text
    assert _stored(url, token) == []
    return response.json()["errors"]


def _replace_cell(text: str, column: str, value: str, row: int = 0) -> str:
    records = list(csv.reader(io.StringIO(text)))
    records[row + 1][records[0].index(column)] = value
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(records)
    return out.getvalue()


def test_malformed_csv(service):
    url, token, _ = service
    text = format_rows_csv(_rows(2))
    truncated = text[: text.rindex("\n", 0, len(text) - 1) + 40]
    errors = _bad_upload(url, token, truncated)
    assert errors[0]["line"] == 3 and "cells" in errors[0]["message"]
    assert _bad_upload(url, token, "")[0]["message"].startswith("the upload is empty")


def test_missing_and_extra_columns(service):
    url, token, _ = service
    text = format_rows_csv(_rows(1))
    header, row = text.splitlines()[:2]
    dropped = "\n".join([header.replace("decode_tok_s,", ""),
                         ",".join(c for i, c in enumerate(next(csv.reader([row])))
                                  if i != COLUMNS.index("decode_tok_s"))]) + "\n"
    errors = _bad_upload(url, token, dropped)
    assert errors == [{"line": 1, "column": "decode_tok_s",
                       "message": "missing column (results schema v3)"}]
    extra = "\n".join([header + ",hostname", row + ",alice-laptop"]) + "\n"
    errors = _bad_upload(url, token, extra)
    assert errors[0]["column"] == "hostname" and "unknown column" in errors[0]["message"]


def test_wrong_schema_version(service):
    url, token, _ = service
    errors = _bad_upload(url, token, _replace_cell(format_rows_csv(_rows(1)), "schema_version",
                                                   "9"))
    assert errors[0]["line"] == 2 and errors[0]["column"] == "schema_version"
    assert "written by a newer edgebench" in errors[0]["message"]


@pytest.mark.parametrize("column, value, needle", [
    ("decode_tok_s", "fast", "not a valid float"),
    ("threads", "2.5", "not a valid int"),
    ("decode_tok_s", "-3.0", "plausible range"),
    ("load_s", "-0.1", "plausible range"),
    ("threads", "0", "plausible range"),
    ("decode_tok_s", "nan", "not a valid float"),
    ("prefill_tok_s", "inf", "not a valid float"),
    ("decode_tok_s", "1e9", "plausible range"),
    ("started_utc", "yesterday", "RFC 3339"),
    ("ep_options", "{not json", "JSON"),
])
def test_bad_cells_are_located(service, column, value, needle):
    url, token, _ = service
    text = _replace_cell(format_rows_csv(_rows(3)), column, value, row=1)
    errors = _bad_upload(url, token, text)
    assert errors == [{"line": 3, "column": column, "message": errors[0]["message"]}]
    assert needle in errors[0]["message"]


def test_every_error_is_reported_up_to_a_cap(service):
    url, token, _ = service
    text = format_rows_csv(_rows(60))
    for i in range(60):
        text = _replace_cell(text, "decode_tok_s", "x", row=i)
    response = _post(url, token, text)
    assert response.status_code == 422
    body = response.json()
    assert len(body["errors"]) == 50 and body["error_count"] == 60
    assert [e["line"] for e in body["errors"]] == list(range(2, 52))


def test_one_bad_row_rejects_the_whole_upload(service):
    url, token, _ = service
    text = _replace_cell(format_rows_csv(_rows(5)), "decode_tok_s", "1e9", row=4)
    _bad_upload(url, token, text)
    assert httpx.get(f"{url}/healthz").json()["rows"] == 0


def test_duplicate_rows_in_one_upload(service):
    url, token, _ = service
    rows = _rows(2) + [make_row(run_id="1" * 32, rep=1)]
    errors = _bad_upload(url, token, format_rows_csv(rows))
    assert errors[0]["line"] == 4 and "duplicates line 2" in errors[0]["message"]


def test_non_utf8_and_wrong_content_type(service):
    url, token, _ = service
    latin = format_rows_csv([make_row(cpu_model="Intel® Core")]).encode("latin-1")
    response = _post(url, token, latin)
    assert response.status_code == 400
    assert "UTF-8" in response.json()["errors"][0]["message"]
    assert _post(url, token, format_rows_csv(_rows(1)),
                 content_type="text/csv; charset=latin-1").status_code == 415
    assert _post(url, token, format_rows_csv(_rows(1)),
                 content_type="application/json").status_code == 415
    assert _stored(url, token) == []


def test_size_and_row_limits(db_url):
    token = server.create_token(db_url, "t")
    app = server.create_app(db_url, max_body_bytes=20_000, max_rows=5)
    with uvicorn_server(app) as url:
        big = format_rows_csv(_rows(40))
        assert len(big.encode()) > 20_000
        response = _post(url, token, big)
        assert response.status_code == 413
        assert "larger than 20000 bytes" in response.json()["errors"][0]["message"]

        def chunks():  # no Content-Length: the limit must hold while streaming
            data = big.encode()
            for i in range(0, len(data), 4096):
                yield data[i:i + 4096]
        streamed = httpx.post(f"{url}/api/results", content=chunks(), timeout=60, headers={
            "Authorization": f"Bearer {token}", "Content-Type": "text/csv"})
        assert streamed.status_code == 413
        many = _post(url, token, format_rows_csv(_rows(6)))
        assert many.status_code == 413 and "more than 5 rows" in many.text
        assert _post(url, token, format_rows_csv(_rows(5))).status_code == 201


def test_formula_cells_are_neutralised_on_export_only(service):
    url, token, db_url = service
    row = make_row(warnings="=HYPERLINK(\"http://x\",\"y\")", model_id="+cmd|' /C calc'!A0",
                   cpu_model="@SUM(1+1)", energy_warning="-2+3", os_release="\tx",
                   cpu_temp_c_before=-5.0, run_id="3" * 32)
    assert _post(url, token, format_rows_csv([row])).status_code == 201
    text = httpx.get(f"{url}/api/results.csv", headers=_auth(token)).text
    cells = _cells(text)[0]
    assert cells["warnings"] == "'=HYPERLINK(\"http://x\",\"y\")"
    assert cells["model_id"] == "'+cmd|' /C calc'!A0"
    assert cells["cpu_model"] == "'@SUM(1+1)"
    assert cells["energy_warning"] == "'-2+3"
    assert cells["os_release"] == "'\tx"
    assert cells["cpu_temp_c_before"] == "-5.0"  # numbers untouched
    stored = _sql(db_url, "select warnings, model_id from results")
    assert stored == [(row.warnings, row.model_id)]  # stored as given


def test_export_filters(service):
    url, token, _ = service
    a = make_row(run_id="a" * 32, host_fingerprint="1" * 16, cpu_model="Apple M2",
                 model_id="m1")
    b = make_row(run_id="b" * 32, host_fingerprint="2" * 16, cpu_model="Cortex-A76",
                 model_id="m2")
    assert _post(url, token, format_rows_csv([a, b])).status_code == 201

    def get(**params):
        return _parse_csv(httpx.get(f"{url}/api/results.csv", params=params,
                                    headers=_auth(token)).text)
    assert get(device="Apple M2") == [a]
    assert get(device="2" * 16) == [b]
    assert get(model="m1") == [a]
    assert get(device="Apple M2", model="m2") == []
    assert get() == [a, b]


def test_report_uses_the_callable(db_url):
    seen = []

    def render(rows):
        seen.append(rows)
        return "<html>custom report</html>"
    token = server.create_token(db_url, "t")
    with uvicorn_server(server.create_app(db_url, report_html=render)) as url:
        _post(url, token, format_rows_csv(_rows(2)))
        page = httpx.get(f"{url}/", headers=_auth(token))
    assert page.status_code == 200 and page.text == "<html>custom report</html>"
    assert seen[-1] == _rows(2)


def test_report_fallback_escapes_html(db_url, monkeypatch):
    monkeypatch.setitem(sys.modules, "bench.report.html", None)  # its import now fails
    token = server.create_token(db_url, "t")
    evil = make_row(model_id="<script>alert(1)</script>", cpu_model="<img src=x onerror=1>")
    with uvicorn_server(server.create_app(db_url)) as url:
        _post(url, token, format_rows_csv([evil]))
        page = httpx.get(f"{url}/", headers=_auth(token))
    assert page.status_code == 200
    assert "<script>" not in page.text and "<img" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "200.0" in page.text  # median decode tok/s
    assert "default-src 'none'" in page.headers["content-security-policy"]


def test_report_falls_back_when_the_renderer_fails(db_url):
    def broken(rows):
        raise RuntimeError("boom")
    with uvicorn_server(server.create_app(db_url, report_html=broken, public_read=True)) as url:
        page = httpx.get(f"{url}/")
    assert page.status_code == 200 and "edgebench results" in page.text


def test_limits_cover_every_numeric_column():
    assert all(limit_for(c) is not None for c in numeric_columns())
    assert all(lim.low <= lim.high for lim in LIMITS)


def test_serve_create_token_prints_it_once(db_url, capsys):
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"), argparse.ArgumentParser)
    args = parser.parse_args(["serve", "--db", db_url, "--create-token", "ci"])
    assert args.func(args) == 0
    token = capsys.readouterr().out.splitlines()[-1]
    with uvicorn_server(server.create_app(db_url)) as url:
        assert _post(url, token, format_rows_csv(_rows(1))).status_code == 201


def test_cli_modules_do_not_import_heavy_packages():
    code = ("import sys, bench.cli.serve, bench.cli.upload, bench.serve.client, bench.cli.importers;"
            "heavy = {'fastapi', 'sqlalchemy', 'uvicorn', 'httpx', 'starlette'} & set(sys.modules);"
            "print(sorted(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_tokens_never_look_like_command_line_options(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'tokens.sqlite'}")
    try:
        # one in 64 token_urlsafe values starts with "-"; 200 draws would hit it almost surely
        assert all(not store.create_token(f"t{i}").startswith("-") for i in range(200))
    finally:
        store.dispose()


def test_report_page_is_rendered_again_only_after_new_rows(db_url):
    """GET / serves the page it rendered last until a result or quality row is stored."""
    from bench.results.quality import QUALITY_COLUMNS
    from tests.quality_rowfactory import corpus_row

    seen = []

    def render(rows):
        seen.append(rows)
        return f"<html>{len(rows)} rows</html>"
    token = server.create_token(db_url, "t")
    with uvicorn_server(server.create_app(db_url, report_html=render)) as url:
        _post(url, token, format_rows_csv(_rows(2)))
        pages = [httpx.get(f"{url}/", headers=_auth(token)).text for _ in range(3)]
        assert pages == ["<html>2 rows</html>"] * 3 and len(seen) == 1
        _post(url, token, format_rows_csv(_rows(3, run_id="2" * 32)))
        assert httpx.get(f"{url}/", headers=_auth(token)).text == "<html>5 rows</html>"
        quality = format_rows_csv([corpus_row(run_id="3" * 32)], QUALITY_COLUMNS)
        answer = httpx.post(f"{url}/api/quality", content=quality.encode(), timeout=60,
                            headers={"Content-Type": "text/csv", **_auth(token)})
        assert answer.status_code == 201
        httpx.get(f"{url}/", headers=_auth(token))
    assert len(seen) == 3 and seen[-1] == _rows(2) + _rows(3, run_id="2" * 32)


def test_report_page_reads_the_store_column_wise(db_url):
    """The page's table, read from the store as value tuples, holds what the rows hold, and
    the report built from it equals the one built from the rows themselves."""
    from bench.report.columnar import REPORT_COLUMNS, table_from_chunks, table_from_rows
    from bench.report.data import build_report_data

    rows = [make_row(run_id=f"{i:032x}", rep=r + 1, model_id=f"m{i % 3}",
                     decode_tok_s=100.0 + i + r, prefill_j_per_tok=None if i % 2 else 0.5)
            for i in range(7) for r in range(3)]
    store = Store(db_url)
    try:
        store.store_rows(rows, None)
        chunks = list(store.iter_columns(REPORT_COLUMNS, chunk=4))
        assert [len(c) for c in chunks] == [4, 4, 4, 4, 4, 1]
        table = table_from_chunks(chunks)
        expected = table_from_rows(rows)
        query = f"SELECT {', '.join(REPORT_COLUMNS)} FROM rows ORDER BY ord"
        assert table.con.execute(query).fetchall() == expected.con.execute(query).fetchall()
        assert build_report_data(table) == build_report_data(rows)
    finally:
        store.dispose()


def test_report_page_in_render_serves_the_last_one(db_url):
    """While a newer page renders, a request gets the last page at once."""
    import threading

    release, rendering = threading.Event(), threading.Event()

    def render(rows):
        if len(rows) > 2:  # the second page: hold it until the test lets go
            rendering.set()
            assert release.wait(60)
        return f"<html>{len(rows)} rows</html>"
    token = server.create_token(db_url, "t")
    with uvicorn_server(server.create_app(db_url, report_html=render)) as url:
        _post(url, token, format_rows_csv(_rows(2)))
        assert httpx.get(f"{url}/", headers=_auth(token)).text == "<html>2 rows</html>"
        _post(url, token, format_rows_csv(_rows(3, run_id="2" * 32)))
        newer: list[str] = []
        slow = threading.Thread(target=lambda: newer.append(
            httpx.get(f"{url}/", headers=_auth(token), timeout=60).text))
        slow.start()
        try:
            assert rendering.wait(30)
            assert httpx.get(f"{url}/", headers=_auth(token), timeout=10).text == \
                "<html>2 rows</html>"
        finally:
            release.set()
            slow.join(60)
        assert newer == ["<html>5 rows</html>"]
        assert httpx.get(f"{url}/", headers=_auth(token)).text == "<html>5 rows</html>"
