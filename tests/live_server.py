"""Real HTTP servers on 127.0.0.1 for tests: the upload app under uvicorn, and a flaky stub."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator


def _bound_socket() -> socket.socket:
    """Bound before the server starts, so the port is ours and the URL is known up front."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def uvicorn_server(app) -> Iterator[str]:
    """Runs the ASGI app with uvicorn in a thread; yields its base URL; shuts down cleanly."""
    import uvicorn

    sock = _bound_socket()
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@contextmanager
def served_process(db_url: str, *args: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """`edgebench serve --db db_url ARGS` as its own process on a free port, as a user runs it;
    yields (base URL, process) once /healthz answers and stops it with SIGTERM afterwards (a
    test may kill it first)."""
    import httpx

    with _bound_socket() as sock:  # a free port, let go for the server to take
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "bench.cli", "serve", "--db", db_url,
                             "--port", str(port), *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/healthz", timeout=5)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"edgebench serve did not start on {url}") from None
                time.sleep(0.2)
        yield url, proc
    finally:
        proc.terminate()
        proc.wait(30)


@contextmanager
def flaky_server(fail_times: int, fail_status: int = 503,
                 retry_after: str | None = None) -> Iterator[tuple[str, list[int]]]:
    """Answers fail_status fail_times (with a Retry-After header when given), then 201 like the
    real service; yields (url, statuses)."""
    statuses: list[int] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server naming)
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                status = fail_status if len(statuses) < fail_times else 201
                statuses.append(status)
            body = json.dumps({"run_ids": ["r1"], "rows": 1, "stored": 1, "duplicates": 0}
                              if status == 201 else {"errors": []}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if status != 201 and retry_after is not None:
                self.send_header("Retry-After", retry_after)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", statuses
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=30)


def post_concurrently(post, bodies) -> list[int]:
    """Each body POSTed from its own thread, all at once: the status codes, in finishing order."""
    statuses: list[int] = []
    threads = [threading.Thread(target=lambda b=b: statuses.append(post(b).status_code))
               for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses


def check_overlapping_uploads_store_one_copy(url: str, token: str) -> None:
    """Eight concurrent uploads sharing 40 rows (two sent twice): each answers 200 or 201 and
    the service holds one copy of every row."""
    import httpx

    from bench.results.writer import format_rows_csv
    from tests.rowfactory import make_row

    def rows(n: int, run_id: str) -> list:
        return [make_row(run_id=run_id, rep=i + 1) for i in range(n)]

    def post(body: str) -> httpx.Response:
        return httpx.post(f"{url}/api/results", content=body.encode(), timeout=120,
                          headers={"Content-Type": "text/csv",
                                   "Authorization": f"Bearer {token}"})
    shared = rows(40, "5" * 32)
    bodies = [format_rows_csv(shared + rows(10, f"{i:032x}")) for i in range(6)]
    statuses = post_concurrently(post, bodies + bodies[:2])
    assert set(statuses) <= {200, 201}, statuses
    assert httpx.get(f"{url}/healthz", timeout=60).json()["rows"] == 40 + 6 * 10
