"""The upload client against the real service (uvicorn on 127.0.0.1) and a flaky stub server."""

from __future__ import annotations

import argparse
import io
import os
import pty
import subprocess
import sys

import httpx
import pytest

from bench.cli import upload as upload_cli
from bench.serve import app as server, client as upload
from bench.errors import EdgebenchError
from bench.results.writer import format_rows_csv
from tests.live_server import _bound_socket, flaky_server, uvicorn_server
from tests.rowfactory import make_row

ROWS = [make_row(run_id="9" * 32, rep=i) for i in (1, 2, 3)]


@pytest.fixture()
def results(tmp_path):
    path = tmp_path / "results.csv"
    path.write_text(format_rows_csv(ROWS))
    return path


@pytest.fixture()
def service(tmp_path):
    db_url = f"sqlite:///{tmp_path / 'server.sqlite'}"
    token = server.create_token(db_url, "tests")
    with uvicorn_server(server.create_app(db_url)) as url:
        yield url, token


def _stored_rows(url: str) -> int:
    return httpx.get(f"{url}/healthz").json()["rows"]


def _run(argv, stdin, monkeypatch) -> tuple[int, str, str]:
    """`edgebench upload ...` in process, the way bench.cli.main runs it."""
    parser = argparse.ArgumentParser()
    upload_cli.register(parser.add_subparsers(dest="command"), argparse.ArgumentParser)
    args = parser.parse_args(argv)
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdin", stdin)
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    try:
        code = args.func(args)
    except EdgebenchError as exc:
        err.write(f"edgebench: error: {exc}\n")
        code = exc.exit_code
    return code, out.getvalue(), err.getvalue()


@pytest.fixture()
def tty():
    """A real terminal as stdin; write the user's answer to the returned master fd."""
    master, slave = pty.openpty()
    stdin = os.fdopen(slave, "r")
    yield master, stdin
    stdin.close()
    os.close(master)


def test_upload_with_yes(service, results, monkeypatch):
    url, token = service
    code, out, err = _run(["upload", str(results), "--server", url, "--token", token, "--yes"],
                          io.StringIO(""), monkeypatch)
    assert code == 0, err
    assert "rows:    3" in out and "AMD EPYC" in out and "smollm2-135m-instruct (int4)" in out
    assert "no hostname, user name or file path" in out
    assert f"stored 3 of 3 rows; runs: {'9' * 32}" in out
    assert f"report: {url}/" in out
    assert _stored_rows(url) == 3
    # again: nothing new, and it says so
    monkeypatch.setenv("EDGEBENCH_TOKEN", token)
    code, out, _ = _run(["upload", str(results), "--server", url + "/", "--yes"],
                        io.StringIO(""), monkeypatch)
    assert code == 0 and "stored 0 of 3 rows (3 were already there)" in out


def test_consent_refused_on_a_terminal(service, results, monkeypatch, tty):
    url, token = service
    master, stdin = tty
    os.write(master, b"n\n")
    code, _, err = _run(["upload", str(results), "--server", url, "--token", token], stdin,
                        monkeypatch)
    assert code == 2
    assert "Send 3 rows to" in err and "upload cancelled; nothing was sent" in err
    assert _stored_rows(url) == 0


def test_consent_given_on_a_terminal(service, results, monkeypatch, tty):
    url, token = service
    master, stdin = tty
    os.write(master, b"y\n")
    code, out, _ = _run(["upload", str(results), "--server", url, "--token", token], stdin,
                        monkeypatch)
    assert code == 0 and "stored 3 of 3" in out
    assert _stored_rows(url) == 3


def test_no_terminal_and_no_yes_refuses(service, results, monkeypatch):
    url, token = service
    code, _, err = _run(["upload", str(results), "--server", url, "--token", token],
                        io.StringIO("y\n"), monkeypatch)
    assert code == 2 and "pass --yes" in err
    assert err.count("\n") == 1
    assert _stored_rows(url) == 0


def test_invalid_rows_are_caught_before_sending(service, tmp_path, monkeypatch):
    url, token = service
    bad = tmp_path / "bad.csv"
    bad.write_text(format_rows_csv([make_row(decode_tok_s=1e9)]))
    code, _, err = _run(["upload", str(bad), "--server", url, "--token", token, "--yes"],
                        io.StringIO(""), monkeypatch)
    assert code == 2 and "line 2 column decode_tok_s" in err and "nothing was sent" in err
    assert _stored_rows(url) == 0


def test_server_rejection_is_one_line(service, results, monkeypatch):
    url, _ = service
    code, _, err = _run(["upload", str(results), "--server", url, "--token", "wrong", "--yes"],
                        io.StringIO(""), monkeypatch)
    assert code == 2 and "rejected the upload (403)" in err and err.count("\n") == 1


def test_missing_token(results, monkeypatch):
    monkeypatch.delenv("EDGEBENCH_TOKEN", raising=False)
    code, _, err = _run(["upload", str(results), "--server", "http://127.0.0.1:9", "--yes"],
                        io.StringIO(""), monkeypatch)
    assert code == 2 and "EDGEBENCH_TOKEN" in err


def test_rows_hold_nothing_personal(results):
    assert upload.privacy_findings(ROWS, upload.local_identifiers()) == []


def test_personal_strings_block_the_upload(tmp_path, service):
    url, token = service
    path = tmp_path / "leaky.csv"
    path.write_text(format_rows_csv([make_row(energy_warning="no RAPL at /home/alice/x",
                                              run_id="8" * 32)]))
    with pytest.raises(EdgebenchError, match="column energy_warning contains '/home/alice'"):
        upload.upload_file(path, url, token, yes=True, identifiers=("/home/alice", "alice-pc"),
                           stdout=io.StringIO(), stderr=io.StringIO())
    assert _stored_rows(url) == 0
    result = upload.upload_file(path, url, token, yes=True, include_host=True,
                                identifiers=("/home/alice",), stdout=io.StringIO(),
                                stderr=io.StringIO())
    assert result.stored == 1


def test_retries_transient_failures(results):
    err = io.StringIO()
    with flaky_server(fail_times=2) as (url, statuses):
        result = upload.upload_file(results, url, "t", yes=True, backoff_s=0.01,
                                    stdout=io.StringIO(), stderr=err)
    assert statuses == [503, 503, 201]
    assert result.stored == 1 and result.report_url == f"{url}/"
    assert err.getvalue().count("retrying in") == 2


def test_gives_up_after_four_retries(results):
    with flaky_server(fail_times=99, fail_status=502) as (url, statuses):
        with pytest.raises(EdgebenchError, match="answered 502 after 5 attempts"):
            upload.upload_file(results, url, "t", yes=True, backoff_s=0.01,
                               stdout=io.StringIO(), stderr=io.StringIO())
    assert statuses == [502] * 5


def test_connection_errors_are_retried(results):
    sock = _bound_socket()  # bound but not listening: connections are refused
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    slept = []
    try:
        with pytest.raises(EdgebenchError, match="cannot reach .* after 5 attempts"):
            upload.post_with_retry(f"{url}/api/results", b"x", "t", backoff_s=0.5,
                                   sleep=slept.append)
    finally:
        sock.close()
    assert slept == [0.5, 1.0, 2.0, 4.0]


def test_client_errors_are_not_retried(results):
    with flaky_server(fail_times=99, fail_status=422) as (url, statuses):
        with pytest.raises(EdgebenchError, match=r"rejected the upload \(422\)"):
            upload.upload_file(results, url, "t", yes=True, backoff_s=0.01,
                               stdout=io.StringIO(), stderr=io.StringIO())
    assert statuses == [422]


def test_bad_server_url(results):
    with pytest.raises(EdgebenchError, match="not an http"):
        upload.upload_file(results, "ftp://x", "t", yes=True)


def test_register_help_is_light():
    out = subprocess.run([sys.executable, "-c", (
        "import argparse, sys; from bench.cli import upload, serve as server_cli;"
        "from bench.cli import importers as cli;"
        "p = argparse.ArgumentParser(); s = p.add_subparsers();"
        "[m.register(s, argparse.ArgumentParser) for m in (upload, server_cli, cli)];"
        "print(sorted({'httpx', 'fastapi', 'sqlalchemy', 'uvicorn'} & set(sys.modules)))")],
        capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
