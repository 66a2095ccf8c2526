"""Uploads checked and stored in worker processes (bench/serve/ingest.py), as `edgebench
serve` runs them, on SQLite and PostgreSQL: the same answers as in the app's own process,
concurrent overlapping uploads from several processes storing one copy, a worker killed
mid-service answered with a retryable 503, then replaced, and no worker outliving a server
killed with -9."""

from __future__ import annotations

import os
import signal

import httpx
import pytest

from bench.results.quality import QUALITY_COLUMNS
from bench.results.writer import format_rows_csv
from bench.serve import app as server
from tests.live_server import (check_overlapping_uploads_store_one_copy, served_process,
                               uvicorn_server)
from tests.quality_rowfactory import corpus_row
from tests.rowfactory import make_row


def _rows(n: int, run_id: str = "1" * 32, **overrides):
    return [make_row(run_id=run_id, rep=i + 1, **overrides) for i in range(n)]


def _post(url: str, token: str, body: str, endpoint: str = "/api/results") -> httpx.Response:
    return httpx.post(f"{url}{endpoint}", content=body.encode(), timeout=120,
                      headers={"Content-Type": "text/csv", "Authorization": f"Bearer {token}"})


def _counts(url: str) -> tuple[int, int]:
    health = httpx.get(f"{url}/healthz", timeout=60).json()
    return health["rows"], health["quality_rows"]


def _upload_workers(pid: int) -> list:
    import psutil

    return [p for p in psutil.Process(pid).children(recursive=True)
            if "multiprocessing" in " ".join(p.cmdline())
            and "resource_tracker" not in " ".join(p.cmdline())]


@pytest.fixture()
def services(service_db_url):
    """(url with 2 upload workers, url without, token, database url) on one database."""
    token = server.create_token(service_db_url, "tests")
    with uvicorn_server(server.create_app(service_db_url, ingest_workers=2)) as pooled, \
            uvicorn_server(server.create_app(service_db_url)) as threaded:
        yield pooled, threaded, token, service_db_url


def test_workers_answer_as_the_app_itself_does(services):
    pooled, threaded, token, db_url = services
    good = format_rows_csv(_rows(5))
    first = _post(pooled, token, good)
    assert first.status_code == 201 and first.json() == {
        "run_ids": ["1" * 32], "rows": 5, "stored": 5, "duplicates": 0}
    again = _post(pooled, token, good)
    assert again.status_code == 200 and again.json()["duplicates"] == 5
    assert _post(threaded, token, good).json() == again.json()
    bad = format_rows_csv(_rows(3, run_id="2" * 32, decode_tok_s=999_999.0, n_generated=1))
    answers = [_post(url, token, bad) for url in (pooled, threaded)]
    assert answers[0].status_code == answers[1].status_code == 422
    assert answers[0].json() == answers[1].json()
    changed = format_rows_csv(_rows(2, threads=7))
    conflicts = [_post(url, token, changed) for url in (pooled, threaded)]
    assert [c.status_code for c in conflicts] == [409, 409]
    assert conflicts[0].json() == conflicts[1].json()
    assert conflicts[0].json()["errors"][0]["line"] == 2
    other = server.create_token(db_url, "other")
    refused = _post(pooled, other, good)
    assert refused.status_code == 403 and "another token" in refused.json()["errors"][0]["message"]
    quality = format_rows_csv([corpus_row(run_id="3" * 32)], QUALITY_COLUMNS)
    assert _post(pooled, token, quality, "/api/quality").status_code == 201
    assert _counts(pooled) == (5, 1)


def test_overlapping_uploads_from_several_workers_store_one_copy(services):
    pooled, _, token, _ = services
    check_overlapping_uploads_store_one_copy(pooled, token)


def test_a_killed_worker_is_a_503_then_replaced(service_db_url):
    import psutil

    token = server.create_token(service_db_url, "t")
    app = server.create_app(service_db_url, ingest_workers=1)
    with uvicorn_server(app) as url:
        assert _post(url, token, format_rows_csv(_rows(2))).status_code == 201
        workers = _upload_workers(os.getpid())
        assert workers, [p.cmdline() for p in psutil.Process().children(recursive=True)]
        for worker in workers:
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait(10)
        answer = _post(url, token, format_rows_csv(_rows(3)))
        assert answer.status_code == 503 and answer.headers["retry-after"] == "1"
        assert _post(url, token, format_rows_csv(_rows(3))).status_code == 201
        assert _counts(url) == (3, 0)


@pytest.mark.parametrize("workers", [0, 2])
def test_serve_starts_as_many_workers_as_asked(tmp_path, workers):
    """`edgebench serve --workers N` checks uploads in N processes (0: in the server itself),
    and an upload is stored either way."""
    db = f"sqlite:///{tmp_path / 'n.sqlite'}"
    token = server.create_token(db, "t")
    with served_process(db, "--workers", str(workers)) as (url, proc):
        assert len(_upload_workers(proc.pid)) == workers
        assert _post(url, token, format_rows_csv(_rows(3))).status_code == 201
        assert _counts(url) == (3, 0)


def test_serve_refuses_a_negative_worker_count(tmp_path):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "bench.cli", "serve", "--db",
                           f"sqlite:///{tmp_path / 'x.sqlite'}", "--workers", "-1"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        "edgebench: error: --workers -1: give 0 (check uploads in the server process) to 64"]


def test_workers_end_with_a_killed_server(tmp_path):
    """`edgebench serve` killed with -9 leaves no upload worker behind."""
    import psutil

    with served_process(f"sqlite:///{tmp_path / 'kill.sqlite'}", "--workers", "1") as (_, proc):
        children = psutil.Process(proc.pid).children(recursive=True)
        assert children
        proc.kill()
        proc.wait(30)
    _, alive = psutil.wait_procs(children, timeout=30)
    for left in alive:
        left.kill()
    assert not alive, [p.cmdline() for p in alive]
