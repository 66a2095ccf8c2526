"""The upload service under hostile input and load (issue 15, F1-F7), for real: uvicorn on
127.0.0.1, on SQLite and on PostgreSQL (the `service_db_url` fixture), httpx as the client.

Every rejected upload answers 4xx with one line per problem (capped, with a count of the rest)
and stores nothing."""

from __future__ import annotations

import csv
import io
import os
import socket
import time
import tracemalloc
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from bench.results.quality import QUALITY_COLUMNS
from bench.results.validate import MAX_REPORTED_ERRORS
from bench.results.writer import format_rows_csv
from bench.serve import app as server, client as upload
from tests.live_server import (check_overlapping_uploads_store_one_copy, flaky_server,
                               served_process, uvicorn_server)
from tests.quality_rowfactory import corpus_row
from tests.rowfactory import make_row


def _rows(n: int = 3, run_id: str = "1" * 32, **overrides):
    return [make_row(run_id=run_id, rep=i + 1, **overrides) for i in range(n)]


@pytest.fixture()
def service(service_db_url):
    """(base URL, token, db URL) of a running service with an empty database."""
    token = server.create_token(service_db_url, "tests")
    with uvicorn_server(server.create_app(service_db_url)) as url:
        yield url, token, service_db_url


def _auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def _post(url: str, token: str | None, body: bytes | str, endpoint: str = "/api/results",
          content_type: str = "text/csv") -> httpx.Response:
    data = body.encode() if isinstance(body, str) else body
    return httpx.post(f"{url}{endpoint}", content=data, timeout=120,
                      headers={"Content-Type": content_type, **_auth(token)})


def _counts(url: str) -> tuple[int, int]:
    health = httpx.get(f"{url}/healthz", timeout=60).json()
    return health["rows"], health["quality_rows"]


def _rejected(response: httpx.Response, status: int = 422) -> list[dict]:
    """A rejection as the issue asks for: 4xx, one short line per problem, capped."""
    assert response.status_code == status, response.text
    body = response.json()
    assert 0 < len(body["errors"]) <= MAX_REPORTED_ERRORS
    for error in body["errors"]:
        assert set(error) == {"line", "column", "message"}
        assert "\n" not in error["message"] and "\r" not in error["message"]
        assert len(error["message"]) < 400
    return body["errors"]


def _with_cell(text: str, column: str, value: str, row: int = 0) -> str:
    records = list(csv.reader(io.StringIO(text, newline="")))
    records[row + 1][records[0].index(column)] = value
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(records)  # quotes a cell holding \r
    return out.getvalue()


# ------------------------------------------------------------------------------------ F1
def test_f1_a_duplicated_column_is_rejected(service):
    url, token, _ = service
    header, line = format_rows_csv(_rows(1)).splitlines()
    doubled = f"{header},decode_tok_s\n{line},999999.0\n"
    errors = _rejected(_post(url, token, doubled))
    assert errors == [{"line": 1, "column": "decode_tok_s",
                       "message": "column appears more than once"}]
    qheader, qline = format_rows_csv([corpus_row()], QUALITY_COLUMNS).splitlines()
    errors = _rejected(_post(url, token, f"{qheader},model_id\n{qline},other\n",
                             endpoint="/api/quality"))
    assert {"line": 1, "column": "model_id", "message": "column appears more than once"} in errors
    assert _counts(url) == (0, 0)


# ------------------------------------------------------------------------------------ F2
def test_f2_a_carriage_return_in_a_cell_is_rejected(service):
    url, token, _ = service
    text = _with_cell(format_rows_csv(_rows(2)), "warnings", "ok\r=HYPERLINK(\"http://x\")", 1)
    errors = _rejected(_post(url, token, text))
    assert errors == [{"line": 3, "column": "warnings", "message": errors[0]["message"]}]
    assert "carriage return" in errors[0]["message"]
    qtext = _with_cell(format_rows_csv([corpus_row()], QUALITY_COLUMNS), "warnings", "a\rb")
    errors = _rejected(_post(url, token, qtext, endpoint="/api/quality"))
    assert errors[0]["line"] == 2 and errors[0]["column"] == "warnings"
    assert _counts(url) == (0, 0)


def test_f2_the_writer_quotes_a_carriage_return_so_a_row_stays_one_row():
    row = make_row(warnings="ok\r=1+1", energy_warning="a\r\nb")
    text = format_rows_csv([row, make_row(rep=2)])
    records = list(csv.reader(io.StringIO(text, newline="")))
    assert len(records) == 3
    assert records[1][list(records[0]).index("warnings")] == "ok\r=1+1"
    assert records[1][list(records[0]).index("energy_warning")] == "a\r\nb"


# ------------------------------------------------------------------------------------ F3
def test_f3_deeply_nested_ep_options_is_a_422_not_a_500(service):
    url, token, _ = service
    nested = "[" * 20_000 + "]" * 20_000
    errors = _rejected(_post(url, token, _with_cell(format_rows_csv(_rows(1)), "ep_options",
                                                    nested)))
    assert errors[0]["line"] == 2 and errors[0]["column"] == "ep_options"
    assert "nested" in errors[0]["message"]
    not_an_object = _with_cell(format_rows_csv(_rows(1)), "ep_options", "[1, 2]")
    assert "JSON object" in _rejected(_post(url, token, not_an_object))[0]["message"]
    assert _counts(url) == (0, 0)


# ------------------------------------------------------------------------------------ F4
def test_f4_megabytes_of_blank_lines_get_a_short_capped_answer(service):
    url, token, _ = service
    body = format_rows_csv(_rows(1)) + "\n" * 3_000_000 + format_rows_csv(_rows(1)).split(
        "\n", 1)[1] + "\n\n" + "x\n" * 200
    response = _post(url, token, body)
    errors = _rejected(response)
    assert errors[0] == {"line": 3, "column": None,
                         "message": "lines 3-3000002 are blank (3000000 lines)"}
    assert response.json()["error_count"] == 203  # 2 blank runs, a duplicate, 200 short rows
    assert len(response.content) < 20_000
    assert _counts(url) == (0, 0)


def test_f4_checking_blank_lines_takes_little_memory():
    data = format_rows_csv(_rows(1)).encode() + b"\n" * 2_000_000
    from bench.serve.checks import check_results_upload

    tracemalloc.start()
    try:
        checked = check_results_upload(data, max_rows=100_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert checked.status == 422 and checked.error_count == 1
    assert peak < 8_000_000, f"peak {peak / 1e6:.1f} MB for a 2 MB upload"


def test_f4_a_header_of_many_columns_gets_a_capped_answer(service):
    url, token, _ = service
    header, line = format_rows_csv(_rows(1)).splitlines()
    extra = 100_000
    body = header + "".join(f",x{i}" for i in range(extra)) + ",run_id\n" + line + "\n"
    response = _post(url, token, body)
    errors = _rejected(response)
    assert response.json()["error_count"] == extra + 1  # unknown columns, and run_id twice
    assert errors[0] == {"line": 1, "column": "x0", "message": errors[0]["message"]}


def test_f4_errors_are_capped_with_a_count_of_the_rest(service):
    url, token, _ = service
    text = format_rows_csv(_rows(120))
    for i in range(120):
        text = _with_cell(text, "threads", "0", i)
    response = _post(url, token, text)
    errors = _rejected(response)
    assert len(errors) == MAX_REPORTED_ERRORS and response.json()["error_count"] == 120
    assert [e["line"] for e in errors] == list(range(2, 2 + MAX_REPORTED_ERRORS))


# ------------------------------------------------------------------------------------ F5
def test_f5_concurrent_overlapping_uploads_store_one_copy_and_never_500(service):
    url, token, _ = service
    check_overlapping_uploads_store_one_copy(url, token)


def test_f5_a_locked_database_answers_503_then_stores(tmp_path):
    """Another writer holds SQLite's write lock past every retry (as three concurrent 95k-row
    uploads did): 503 with Retry-After, nothing half-stored, and the retry stores. SQLite
    only: the lock is taken by a second connection to the file."""
    import sqlite3

    service_db_url = f"sqlite:///{tmp_path / 'locked.sqlite'}"

    token = server.create_token(service_db_url, "t")
    body = format_rows_csv(_rows(3))
    with uvicorn_server(server.create_app(service_db_url)) as url:
        locker = sqlite3.connect(service_db_url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            locker.execute("BEGIN IMMEDIATE")
            response = _post(url, token, body)
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        assert response.status_code == 503, response.text
        assert float(response.headers["retry-after"]) >= 1
        assert _counts(url) == (0, 0)
        assert _post(url, token, body).status_code == 201


def test_f5_a_busy_store_answers_503_with_retry_after(service_db_url, monkeypatch):
    from bench.serve.storage import StoreBusy

    token = server.create_token(service_db_url, "t")
    app = server.create_app(service_db_url)

    def busy(*_args, **_kwargs):
        raise StoreBusy(2.0)
    monkeypatch.setattr(app.state.store, "store_rows", busy)
    with uvicorn_server(app) as url:
        response = _post(url, token, format_rows_csv(_rows(2)))
        assert response.status_code == 503
        assert response.headers["retry-after"] == "2"
        assert "busy" in response.json()["errors"][0]["message"]


def test_f5_only_the_token_that_created_a_run_adds_to_it(service):
    url, token, db_url = service
    other = server.create_token(db_url, "mallory")
    assert _post(url, token, format_rows_csv(_rows(2))).status_code == 201
    response = _post(url, other, format_rows_csv(_rows(3)))
    errors = _rejected(response, 403)
    assert "1" * 32 in errors[0]["message"] and "another token" in errors[0]["message"]
    assert _counts(url) == (2, 0)
    # the owner may, and the same rows again from the other token change nothing
    assert _post(url, token, format_rows_csv(_rows(3))).status_code == 201
    assert _counts(url) == (3, 0)


@pytest.mark.parametrize("status", [429, 503])
def test_f5_the_client_retries_and_honours_retry_after(results_file, status):
    slept: list[float] = []
    with flaky_server(fail_times=2, fail_status=status, retry_after="3") as (url, statuses):
        response = upload.post_with_retry(f"{url}/api/results", b"x", "t", backoff_s=0.5,
                                          sleep=slept.append)
    assert response.status_code == 201 and statuses == [status, status, 201]
    assert slept == [3.0, 3.0]


def test_f5_a_409_is_retried_only_when_the_server_says_when(results_file):
    slept: list[float] = []
    with flaky_server(fail_times=1, fail_status=409, retry_after="1") as (url, statuses):
        upload.post_with_retry(f"{url}/api/results", b"x", "t", sleep=slept.append)
    assert statuses == [409, 201] and slept == [1.0]
    with flaky_server(fail_times=1, fail_status=409) as (url, statuses):
        assert upload.post_with_retry(f"{url}/api/results", b"x", "t",
                                      sleep=slept.append).status_code == 409
    assert statuses == [409]


@pytest.fixture()
def results_file(tmp_path):
    path = tmp_path / "results.csv"
    path.write_text(format_rows_csv(_rows(2)))
    return path


# ------------------------------------------------------------------------------------ F6
def test_f6_reads_need_a_token_unless_public(service_db_url):
    token = server.create_token(service_db_url, "t")
    with uvicorn_server(server.create_app(service_db_url)) as url:
        assert _post(url, token, format_rows_csv(_rows(2))).status_code == 201
        for path in ("/api/results.csv", "/api/results", "/api/quality.csv", "/api/quality",
                     "/"):
            anonymous = httpx.get(f"{url}{path}", timeout=60)
            assert anonymous.status_code == 401, path
            assert "www-authenticate" in anonymous.headers
            assert httpx.get(f"{url}{path}", headers=_auth("eb_wrong"),
                             timeout=60).status_code == 403
        assert httpx.get(f"{url}/api/results.csv", headers=_auth(token), timeout=60
                         ).text.count("\n") == 3
        # a browser sends the token as the password of HTTP Basic auth
        assert httpx.get(f"{url}/api/results.csv", auth=("any", token), timeout=60
                         ).status_code == 200
    with uvicorn_server(server.create_app(service_db_url, public_read=True)) as url:
        assert httpx.get(f"{url}/api/results.csv", timeout=60).text.count("\n") == 3


def test_f6_results_are_paginated_and_filtered(service):
    url, token, _ = service
    day = datetime(2026, 11, 20, tzinfo=timezone.utc)
    rows = []
    for i in range(7):
        start = day + timedelta(days=i)
        rows.append(make_row(run_id=f"{i:032x}", model_id="m-a" if i % 2 else "m-b",
                             backend="ort" if i < 5 else "llama.cpp",
                             cpu_model="Apple M2" if i < 3 else "AMD EPYC",
                             started_utc=start.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                             finished_utc=(start + timedelta(seconds=1)).strftime(
                                 "%Y-%m-%dT%H:%M:%S.000Z")))
    assert _post(url, token, format_rows_csv(rows)).status_code == 201

    def page(**params) -> dict:
        response = httpx.get(f"{url}/api/results", params=params, headers=_auth(token),
                             timeout=60)
        assert response.status_code == 200, response.text
        return response.json()
    seen, after, pages = [], None, 0
    while True:
        got = page(limit=3, **({"after": after} if after is not None else {}))
        seen += [r["run_id"] for r in got["rows"]]
        pages += 1
        after = got["next_after"]
        if after is None:
            break
    assert seen == [r.run_id for r in rows] and pages == 3
    assert [r["run_id"] for r in page(model="m-a")["rows"]] == [rows[i].run_id for i in (1, 3, 5)]
    assert [r["run_id"] for r in page(backend="llama.cpp")["rows"]] == [rows[5].run_id,
                                                                       rows[6].run_id]
    assert len(page(device="Apple M2")["rows"]) == 3
    window = page(since="2026-11-22T00:00:00Z", until="2026-11-24T00:00:00Z")["rows"]
    assert [r["run_id"] for r in window] == [rows[i].run_id for i in (2, 3)]
    assert page(limit=2, model="m-b")["rows"][0]["decode_tok_s"] == 200.0
    csv_page = httpx.get(f"{url}/api/results", params={"limit": 2, "format": "csv"},
                         headers=_auth(token), timeout=60)
    assert csv_page.headers["content-type"].startswith("text/csv")
    assert csv_page.text.count("\n") == 3 and csv_page.headers["x-next-after"]
    for bad in ({"limit": 0}, {"limit": 10**6}, {"after": -1}, {"since": "yesterday"},
                {"format": "xml"}):
        response = httpx.get(f"{url}/api/results", params=bad, headers=_auth(token), timeout=60)
        assert response.status_code == 422, bad
        assert len(response.json()["errors"]) == 1


def test_f6_the_export_is_streamed(service):
    url, token, _ = service
    assert _post(url, token, format_rows_csv(_rows(30))).status_code == 201
    with httpx.stream("GET", f"{url}/api/results.csv", headers=_auth(token), timeout=60) as r:
        assert r.status_code == 200
        assert "content-length" not in r.headers  # chunked: rows leave as they are read
        text = r.read().decode()
    assert text.count("\n") == 31


# ------------------------------------------------------------------------------------ F7
_LATER = (datetime.now(timezone.utc) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@pytest.mark.parametrize("overrides, column, needle", [
    (dict(energy_method="rapl", energy_scope="package", prefill_energy_j=1.0,
          prefill_j_per_tok=1.0, energy_warning="estimate:tdp update period"),
     "energy_warning", "estimate"),
    (dict(energy_method="rapl", energy_scope="package", prefill_energy_j=1.0,
          prefill_j_per_tok=1.0, prefill_j_per_tok_low=0.5, prefill_j_per_tok_high=2.0),
     "prefill_j_per_tok_low", "only an estimate"),
    (dict(energy_method="none", decode_energy_j=3.0), "decode_energy_j", "energy_method none"),
    (dict(energy_method="estimate:tdp", energy_scope="cpu_package", prefill_energy_j=1.0,
          prefill_j_per_tok=1.0, prefill_j_per_tok_low=1.5, prefill_j_per_tok_high=2.0),
     "prefill_j_per_tok", "bounds"),
    (dict(n_generated=1, decode_tok_s=999_999.0), "decode_tok_s", "decode_s"),
    (dict(decode_tok_s=999_999.0), "decode_tok_s", "n_generated"),
    (dict(prefill_tok_s=5_000.0), "prefill_tok_s", "n_prompt"),
    (dict(n_generated=129), "n_generated", "n_gen_requested"),
    (dict(itl_p50_s=0.01), "itl_p50_s", "itl_p90_s"),
    (dict(started_utc=_LATER, finished_utc=_LATER), "started_utc", "future"),
    (dict(finished_utc="2026-11-22T04:59:00.000Z"), "finished_utc", "before started_utc"),
])
def test_f7_inconsistent_rows_are_rejected(service, overrides, column, needle):
    url, token, _ = service
    text = format_rows_csv([make_row(run_id="7" * 32, **overrides)])
    errors = _rejected(_post(url, token, text))
    assert any(e["column"] == column and needle in e["message"] for e in errors), errors
    assert _counts(url) == (0, 0)


def test_f7_quality_rows_from_the_future_are_rejected(service):
    url, token, _ = service
    text = format_rows_csv([corpus_row(started_utc=_LATER, finished_utc=_LATER)],
                           QUALITY_COLUMNS)
    errors = _rejected(_post(url, token, text, endpoint="/api/quality"))
    assert errors[0]["column"] == "started_utc" and "future" in errors[0]["message"]
    assert _counts(url) == (0, 0)


# ------------------------------------------------------------------------------------ limits
def test_a_slow_body_gets_408(service_db_url):
    app = server.create_app(service_db_url, body_timeout_s=1.0)
    token = server.create_token(service_db_url, "t")
    with uvicorn_server(app) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
            sock.sendall((f"POST /api/results HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
                          f"Authorization: Bearer {token}\r\nContent-Length: 5000\r\n\r\n"
                          "schema_version,").encode())
            answer = sock.recv(4096).decode(errors="replace")
        assert answer.startswith("HTTP/1.1 408"), answer[:200]
        assert _counts(url) == (0, 0)


def test_every_endpoint_limits_the_body(service):
    url, token, _ = service
    big = b"x" * 200_000
    for method, path in (("GET", "/healthz"), ("GET", "/api/results"), ("GET", "/")):
        response = httpx.request(method, f"{url}{path}", content=big, headers=_auth(token),
                                 timeout=60)
        assert response.status_code == 413, (method, path)


def _slow_upload(url: str, token: str) -> socket.socket:
    """An upload whose body never finishes arriving: it holds an upload slot until closed."""
    sock = socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=20)
    sock.sendall((f"POST /api/results HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
                  f"Authorization: Bearer {token}\r\nContent-Length: 5000\r\n\r\n"
                  "schema_version,").encode())
    return sock


def _wait_for_uploads_in_flight(app, n: int) -> None:
    """Until the app's request limits (bench/serve/limits.py) count n uploads in flight."""
    from bench.serve.limits import RequestLimits

    layer = app.middleware_stack  # built when uvicorn started the app
    while not isinstance(layer, RequestLimits):
        layer = layer.app
    deadline = time.monotonic() + 30
    while layer.uploads_in_flight != n:
        assert time.monotonic() < deadline, f"{layer.uploads_in_flight} uploads in flight"
        time.sleep(0.01)


def test_too_many_uploads_at_once_get_429(service_db_url):
    token = server.create_token(service_db_url, "t")
    app = server.create_app(service_db_url, max_concurrent_uploads=1, body_timeout_s=30)
    with uvicorn_server(app) as url, _slow_upload(url, token):  # holds the only upload slot
        _wait_for_uploads_in_flight(app, 1)
        response = _post(url, token, format_rows_csv(_rows(1)))
        assert response.status_code == 429 and response.headers["retry-after"]


def test_an_upload_without_a_valid_token_is_refused_before_its_body(service_db_url):
    """No token, or one the server does not know, is answered before an upload slot is taken
    and before the body is read: such clients cannot crowd out uploads that carry a token."""
    token = server.create_token(service_db_url, "t")
    app = server.create_app(service_db_url, max_concurrent_uploads=1, body_timeout_s=30)
    body = format_rows_csv(_rows(1))
    with uvicorn_server(app) as url:
        with _slow_upload(url, token):  # holds the only upload slot
            _wait_for_uploads_in_flight(app, 1)
            missing = _post(url, None, body)
            assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
            assert _post(url, "eb_wrong", body).status_code == 403
            assert _post(url, "eb_wrong", body, endpoint="/api/quality").status_code == 403
            with _slow_upload(url, "eb_wrong") as unknown:  # its body never comes: no 408 wait
                answer = unknown.recv(4096).decode(errors="replace")
            assert answer.startswith("HTTP/1.1 403"), answer[:200]
            _wait_for_uploads_in_flight(app, 1)
        assert _counts(url) == (0, 0)


def test_html_pages_carry_security_headers(service):
    url, token, _ = service
    page = httpx.get(f"{url}/", headers=_auth(token), timeout=120)
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "'unsafe-inline'" not in csp.split("script-src", 1)[1].split(";")[0]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "no-referrer"


def test_the_report_renders_under_its_csp_in_chromium(tmp_path):
    """The strict policy (only the page's own inline scripts, by hash) still draws every chart;
    a hostile model name stays text; the browser logs in with the token as Basic password."""
    from pathlib import Path

    chromium = Path("/usr/bin/chromium")
    if not chromium.exists() and os.environ.get("CI") != "true":
        pytest.skip("needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    db = f"sqlite:///{tmp_path / 'csp.sqlite'}"
    token = server.create_token(db, "t")
    rows = [make_row(run_id="1" * 32, variant=v, config_id=f"c/{v}", rep=r,
                     model_id="<img src=x onerror=alert(1)>" if v == "fp32" else "m")
            for v in ("int4", "int8", "fp32") for r in (1, 2, 3)]
    console, errors, dialogs = [], [], []
    with uvicorn_server(server.create_app(db)) as url:
        assert _post(url, token, format_rows_csv(rows)).status_code == 201
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(chromium), headless=True,
                                         args=["--no-sandbox", "--disable-gpu"])
            try:
                context = browser.new_context(http_credentials={"username": "me",
                                                                "password": token})
                page = context.new_page()
                page.on("console", lambda m: console.append((m.type, m.text)))
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
                assert page.goto(f"{url}/", wait_until="load").status == 200
                drawn = 0
                for _ in range(150):  # polled from here: the page's CSP forbids eval
                    drawn = len(page.query_selector_all(".plotly-graph-div .main-svg"))
                    if drawn >= 3:
                        break
                    time.sleep(0.2)
            finally:
                browser.close()
    assert drawn >= 3 and not errors and not dialogs
    assert not [m for m in console if m[0] == "error"], console


# ------------------------------------------------------------------------------------ tokens
def test_tokens_are_listed_revoked_and_never_reused(service_db_url, capsys):
    import argparse

    from bench.cli.serve import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"), argparse.ArgumentParser)

    def cli(*argv: str) -> str:
        args = parser.parse_args(["serve", "--db", service_db_url, *argv])
        assert args.func(args) == 0
        return capsys.readouterr().out
    first = cli("--create-token", "alice").splitlines()[-1]
    second = cli("--create-token", "bob").splitlines()[-1]
    listing = cli("--list-tokens")
    assert "alice" in listing and "bob" in listing and first not in listing
    assert "revoked" in cli("--revoke-token", "1")
    third = cli("--create-token", "carol")
    assert "id 3" in third
    listing = cli("--list-tokens").splitlines()
    assert any(line.split()[0] == "1" and "revoked" in line for line in listing[1:])
    with uvicorn_server(server.create_app(service_db_url)) as url:
        assert _post(url, first, format_rows_csv(_rows(1))).status_code == 403
        assert _post(url, second, format_rows_csv(_rows(1))).status_code == 201
    args = parser.parse_args(["serve", "--db", service_db_url, "--revoke-token", "99"])
    from bench.errors import EdgebenchError

    with pytest.raises(EdgebenchError, match="no token with id 99"):
        args.func(args)


# ------------------------------------------------------------------------------------ memory
def _rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmRSS:"))


def _tree_rss_bytes(pid: int) -> int:
    """The server and every process under it (its upload workers)."""
    import psutil

    tree = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    return sum(_rss_bytes(p.pid) for p in tree)


def test_memory_returns_after_a_big_upload(tmp_path):
    """`edgebench serve` as its own process: after a ~9 MB upload the RSS of the server and
    its upload workers together is back within 1.5x of their size when idle (warmed up by a
    small upload) once uploads have stopped for a moment (docs/serve.md: half a second). Two
    workers, whatever the core count."""
    from bench.serve.limits import _malloc_trim

    if not os.path.exists(f"/proc/{os.getpid()}/status"):
        pytest.skip("reads the server's RSS from /proc/PID/status (Linux)")
    if _malloc_trim() is None:
        pytest.skip("needs glibc's malloc_trim to hand freed heap back (this libc has none)")
    db = f"sqlite:///{tmp_path / 'mem.sqlite'}"
    token = server.create_token(db, "t")
    with served_process(db, "--workers", "2") as (url, proc):
        assert _post(url, token, format_rows_csv(_rows(50, run_id="a" * 32))).status_code == 201
        assert _tree_rss_bytes(proc.pid) > _rss_bytes(proc.pid), "no upload workers to count"
        idle = _tree_rss_bytes(proc.pid)
        big = format_rows_csv([make_row(run_id="b" * 32, rep=i + 1,
                                        itl_samples_s=" ".join(["0.005"] * 30))
                               for i in range(12_000)])
        assert 8e6 < len(big) < 10e6
        assert _post(url, token, big).status_code == 201
        settle = time.monotonic() + 5
        while (after := _tree_rss_bytes(proc.pid)) > 1.5 * idle and time.monotonic() < settle:
            time.sleep(0.25)
        assert after <= 1.5 * idle, f"idle {idle / 2**20:.0f} MiB, after {after / 2**20:.0f} MiB"
