"""The upload service: FastAPI over the store (bench/serve/storage.py), run by uvicorn
(`edgebench serve`). The service is documented for its users in docs/serve.md.

Uploads need a token, reads too unless the app is made with public_read. An upload is checked
as a stream (bench/serve/checks.py) and stored all-or-nothing and idempotently: 201 when rows
were stored, 200 when every row was already there ("duplicates" says how many), 4xx with
{"errors": [{"line", "column", "message"}], "error_count"} otherwise, nothing stored. A busy
store answers 503 with Retry-After, rows for a run another token created 403. Reads come in
pages by id (GET /api/results, /api/quality) or as one streamed CSV export. Request limits
(size, body time, uploads at once) are bench/serve/limits.py; tokens and page headers
bench/serve/security.py.
"""

from __future__ import annotations

import dataclasses
import math
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Any, Callable, Iterator, Sequence

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from bench.results.quality import QUALITY_COLUMNS
from bench.results.schema import COLUMNS
from bench.results.validate import MAX_REPORTED_ERRORS, neutralise_formulas, parse_utc
from bench.results.writer import format_rows_csv
from bench.serve import quality as q
from bench.serve.ingest import IngestWorkers, Ingested, ingest
from bench.serve.limits import Limits, RequestLimits
from bench.serve.security import (BASE_HEADERS, HttpProblem, authorise, html_headers, problem)
from bench.serve.page import ReportHtml, ReportPage
from bench.serve.storage import RowFilter, Store

_CSV_TYPES = ("text/csv", "application/csv", "text/plain")
PAGE_ROWS = 1000  # a page's default size
MAX_CONNECTIONS = 256  # open at once; more get 503 from uvicorn
MAX_PAGE_ROWS = 10_000
EXPORT_CHUNK_ROWS = 5000  # rows per read transaction of a streamed export


def create_token(db_url: str, name: str) -> str:
    """A new upload token; the database keeps only its sha256, so show it to the user once."""
    store = Store(db_url)
    try:
        return store.create_token(name)
    finally:
        store.dispose()


def create_app(db_url: str, *, max_body_bytes: int = 10_000_000, max_rows: int = 100_000,
               report_html: ReportHtml | None = None, public_read: bool = False,
               body_timeout_s: float = 60.0, max_concurrent_uploads: int = 16,
               max_upload_bytes_in_flight: int = 32_000_000, ingest_workers: int = 0) -> FastAPI:
    """Everything the app needs is built here, so tests can run several apps side by side.
    ingest_workers > 0 checks and stores uploads in that many worker processes
    (bench/serve/ingest.py), started with the app; 0 in threads of this process."""
    store = Store(db_url)
    report_page = ReportPage(store, report_html)
    workers = IngestWorkers(db_url, ingest_workers) if ingest_workers > 0 else None

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        if workers is not None:
            await run_in_threadpool(workers.start)
        yield
        if workers is not None:
            await run_in_threadpool(workers.shutdown)
        store.dispose()

    app = FastAPI(title="edgebench results", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.store = store
    app.add_middleware(RequestLimits, limits=Limits(  # type: ignore[arg-type]
        max_body_bytes=max_body_bytes, body_timeout_s=body_timeout_s,
        max_concurrent_uploads=max_concurrent_uploads,
        max_upload_bytes_in_flight=max(max_upload_bytes_in_flight, max_body_bytes)),
        authorise_upload=lambda header: authorise(store, header, writing=True))

    @app.exception_handler(HttpProblem)
    async def _on_problem(_request: Request, exc: HttpProblem) -> JSONResponse:
        body: dict[str, Any] = {"errors": [e.as_dict() for e in exc.errors[:MAX_REPORTED_ERRORS]]}
        if exc.error_count > len(body["errors"]):
            body["error_count"] = exc.error_count
        return JSONResponse(body, status_code=exc.status, headers={**BASE_HEADERS, **exc.headers})

    def reader(request: Request, browser: bool = False) -> None:
        authorise(store, request.headers.get("authorization"), writing=False,
                  public_read=public_read, browser=browser)

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "rows": store.count_rows(),
                "quality_rows": store.count_quality_rows()}

    async def upload(request: Request, kind: str) -> JSONResponse:
        token_id = request.state.upload_token_id  # checked before the body was read (limits.py)
        data = await _csv_payload(request, await request.body(), max_body_bytes)
        now = datetime.now(timezone.utc)  # what "in the future" is measured against
        if workers is not None:
            result = await workers.run(kind, data, max_rows=max_rows, now=now,
                                       token_id=token_id)
        else:
            result = await run_in_threadpool(ingest, store, kind, data, max_rows=max_rows,
                                             now=now, token_id=token_id)
        del data
        return _answer(result)

    @app.post("/api/results")
    async def post_results(request: Request) -> JSONResponse:
        return await upload(request, "results")

    @app.post("/api/quality")
    async def post_quality(request: Request) -> JSONResponse:
        return await upload(request, "quality")

    @app.get("/api/results")
    def page_results(request: Request) -> Response:
        reader(request)
        return _page(request, store.page_rows, COLUMNS, neutralise_formulas)

    @app.get("/api/quality")
    def page_quality(request: Request) -> Response:
        reader(request)
        return _page(request, store.page_quality_rows, QUALITY_COLUMNS, q.neutralise_formulas)

    @app.get("/api/results.csv")
    def export_csv(request: Request) -> Response:
        reader(request)
        chunks = store.iter_rows(_filters(request), chunk=EXPORT_CHUNK_ROWS)
        return _export(chunks, COLUMNS, neutralise_formulas, "edgebench-results.csv")

    @app.get("/api/quality.csv")
    def export_quality_csv(request: Request) -> Response:
        reader(request)
        chunks = store.iter_quality_rows(_filters(request), chunk=EXPORT_CHUNK_ROWS)
        return _export(chunks, QUALITY_COLUMNS, q.neutralise_formulas, "edgebench-quality.csv")

    @app.get("/", response_class=HTMLResponse)
    def report(request: Request) -> HTMLResponse:
        reader(request, browser=True)
        page = report_page.html()
        return HTMLResponse(page, headers=html_headers(page))

    return app


def _answer(result: Ingested) -> JSONResponse:
    """An upload's outcome as its HTTP answer."""
    if result.payload is not None:
        return JSONResponse(result.payload, status_code=result.status, headers=BASE_HEADERS)
    headers = ({} if result.retry_after_s is None else
               {"Retry-After": str(max(1, math.ceil(result.retry_after_s)))})
    if result.errors:
        raise HttpProblem(result.status, result.errors, headers, error_count=result.error_count)
    raise problem(result.status, result.message, headers)


def _filters(request: Request) -> RowFilter:
    """device (host fingerprint or CPU model), model, backend, since/until (RFC 3339, on
    started_utc; since inclusive, until exclusive)."""
    params = request.query_params
    bounds = {}
    for name in ("since", "until"):
        text = params.get(name)
        if text:
            try:
                value = parse_utc(text).astimezone(timezone.utc)
            except ValueError:
                raise problem(422, f"{name}={text!r} is not an RFC 3339 time, e.g. "
                                   "2026-11-28T00:00:00Z") from None
            bounds[f"{name}_utc"] = value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return RowFilter(device=params.get("device") or None, model=params.get("model") or None,
                     backend=params.get("backend") or None, **bounds)


def _int_param(request: Request, name: str, default: int | None, low: int, high: int) -> int | None:
    text = request.query_params.get(name)
    if text is None or text == "":
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        raise problem(422, f"{name}={text!r} must be a whole number from {low} to {high}")
    return int(text)


def _page(request: Request, page_fn: Callable[..., Any], columns: Sequence[str],
          neutralise: Callable[[Any], Any]) -> Response:
    """One page as JSON {"rows": [...], "next_after": id or null}, or as CSV (format=csv) with
    the next page's `after` in the X-Next-After header."""
    fmt = request.query_params.get("format", "json")
    if fmt not in ("json", "csv"):
        raise problem(422, f"format={fmt!r}: choose json or csv")
    limit = _int_param(request, "limit", PAGE_ROWS, 1, MAX_PAGE_ROWS)
    after = _int_param(request, "after", None, 0, 2**63 - 1)
    page = page_fn(_filters(request), after, limit)
    headers = dict(BASE_HEADERS)
    if page.next_after_id is not None:
        headers["X-Next-After"] = str(page.next_after_id)
    if fmt == "csv":
        text = format_rows_csv([neutralise(r) for r in page.rows], columns)
        return Response(text, media_type="text/csv; charset=utf-8", headers=headers)
    return JSONResponse({"rows": [dataclasses.asdict(r) for r in page.rows],
                         "next_after": page.next_after_id}, headers=headers)


def _export(chunks: Iterator[list[Any]], columns: Sequence[str],
            neutralise: Callable[[Any], Any], filename: str) -> StreamingResponse:
    """The CSV leaves chunk by chunk, each chunk read in its own short transaction."""
    def text() -> Iterator[str]:
        yield format_rows_csv([], columns)
        for chunk in chunks:
            yield format_rows_csv([neutralise(r) for r in chunk], columns, header=False)
    return StreamingResponse(text(), media_type="text/csv; charset=utf-8", headers={
        **BASE_HEADERS, "Content-Disposition": f'attachment; filename="{filename}"'})


async def _csv_payload(request: Request, body: bytes, limit: int) -> bytes:
    """The CSV bytes from a text/csv body or from the multipart field 'file'."""
    from starlette.requests import Request as StarletteRequest

    content_type = request.headers.get("content-type", "")
    media = content_type.split(";")[0].strip().lower()
    params = {k.strip().lower(): v.strip().strip('"').lower() for k, _, v in
              (p.partition("=") for p in content_type.split(";")[1:])}
    if media in _CSV_TYPES:
        if params.get("charset", "utf-8") not in ("utf-8", "utf8"):
            raise problem(415, f"charset {params['charset']} is not accepted; send UTF-8")
        return body
    if media != "multipart/form-data":
        raise problem(415, f"send the CSV as text/csv or as multipart field 'file', "
                           f"not {media or 'no content type'}")
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await StarletteRequest(request.scope, replay).form(
            max_files=1, max_fields=5, max_part_size=limit)
    except Exception as exc:  # multipart parser errors have no common public base class
        raise problem(400, f"malformed multipart body: {exc}".splitlines()[0]) from None
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise problem(422, "the multipart body has no file field named 'file'")
    try:
        return await upload.read()
    finally:
        await form.close()


def default_ingest_workers() -> int:
    """One upload worker per core the server may use (at least one, at most 8)."""
    import os

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(8, usable or 1))


def serve_main(db_url: str, host: str = "127.0.0.1", port: int = 8000, *,
               public_read: bool = False, ingest_workers: int | None = None) -> None:
    """uvicorn with idle keep-alive connections closed after 5 s and at most MAX_CONNECTIONS
    at once (more get 503, which the upload client retries); uploads are checked and stored
    in ingest_workers processes (default: one per core)."""
    import uvicorn

    workers = default_ingest_workers() if ingest_workers is None else ingest_workers
    uvicorn.run(create_app(db_url, public_read=public_read, ingest_workers=workers), host=host,
                port=port, proxy_headers=False, timeout_keep_alive=5,
                limit_concurrency=MAX_CONNECTIONS)
