"""The service's report page (`GET /`) over many stored rows, SQLite and PostgreSQL: the first
request after new rows (rendered from the store) and the next ones (served as rendered), with
the server's peak RSS while rendering. Times are printed, not asserted (shared machines are
noisy); the page must be the same on both engines.

Rows come from benchmarks/gen_rows.py and go in through the service itself (2,000-row
uploads, 4 at a time). Default 20,000 rows; EDGEBENCH_PAGE_ROWS=1000000 for the size
docs/serve.md reports (uploading takes about 70 s per engine):

    EDGEBENCH_PAGE_ROWS=1000000 pytest benchmarks/test_serve_report_page.py -s -p no:cacheprovider
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import pytest

from benchmarks.gen_rows import write_csvs
from bench.serve import app as server
from tests.live_server import served_process

N_ROWS = int(os.environ.get("EDGEBENCH_PAGE_ROWS", "20000"))
ROWS_PER_UPLOAD = 2000
PAGES: dict[str, int] = {}  # engine -> page size, to compare the engines


@pytest.fixture(scope="module")
def uploads(tmp_path_factory) -> list[Path]:
    return write_csvs(tmp_path_factory.mktemp("rows"), N_ROWS,
                      files=max(1, N_ROWS // ROWS_PER_UPLOAD))


def _peak_rss_while(pid: int, action) -> tuple[object, int]:
    peak, done = [0], threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], psutil.Process(pid).memory_info().rss)
            done.wait(0.2)
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        return action(), peak[0]
    finally:
        done.set()
        watcher.join()


def test_report_page_over_stored_rows(uploads, service_db_url):
    engine = service_db_url.split(":")[0].split("+")[0]
    token = server.create_token(service_db_url, "bench")
    with served_process(service_db_url, "--public-read") as (url, proc):
        def post(path: Path) -> None:
            answer = httpx.post(f"{url}/api/results", content=path.read_bytes(), timeout=600,
                                headers={"Content-Type": "text/csv",
                                         "Authorization": f"Bearer {token}"})
            assert answer.status_code == 201, answer.text[:300]
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(post, uploads))
        assert httpx.get(f"{url}/healthz", timeout=60).json()["rows"] == N_ROWS
        start = time.perf_counter()
        first, peak = _peak_rss_while(proc.pid, lambda: httpx.get(f"{url}/", timeout=900))
        first_s = time.perf_counter() - start
        again = []
        for _ in range(3):
            start = time.perf_counter()
            page = httpx.get(f"{url}/", timeout=900)
            again.append(time.perf_counter() - start)
            assert page.text == first.text
        after = psutil.Process(proc.pid).memory_info().rss
    assert first.status_code == 200 and "Measured performance" in first.text
    PAGES[engine] = len(first.content)
    print(f"\nGET / over {N_ROWS:,} rows on {engine}: {first_s:.2f} s after new rows, "
          f"{sorted(again)[1]:.2f} s unchanged (median of 3); server RSS peak {peak / 2**20:.0f} "
          f"MiB, after {after / 2**20:.0f} MiB; page {len(first.content) / 2**20:.1f} MiB; "
          f"{os.cpu_count()} CPUs")
    if len(PAGES) == 2:
        assert PAGES["sqlite"] == PAGES["postgresql"], PAGES
