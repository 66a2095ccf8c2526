"""The upload service: FastAPI over SQLAlchemy, run by uvicorn (`edgebench serve`).

Writes need a bearer token; reads are public. Uploads are validated by the schema's own reader
plus plausibility limits (bench.validate), stored all-or-nothing and idempotently on
(run_id, config_id, rep). Status codes: 201 when rows were stored, 200 when every row was
already stored (the body's "duplicates" says how many), 4xx with {"errors": [...]} otherwise.
Quality rows (POST /api/quality, GET /api/quality.csv) follow the same rules with the quality
reader (bench/serve/quality.py), keyed on QUALITY_KEY.
"""

from __future__ import annotations

import html
import statistics
from collections import defaultdict
from contextlib import asynccontextmanager
from typing import Any, Callable, Sequence

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from bench.results.quality import QUALITY_COLUMNS, QualityRow
from bench.results.schema import ResultRow
from bench.results.writer import format_rows_csv
from bench.serve import quality as q
from bench.serve.storage import Store, StoreOutcome
from bench.results.validate import (MAX_REPORTED_ERRORS, RowError, check_csv_bytes, neutralise_formulas)

ReportHtml = Callable[[list[ResultRow]], str]
_CSV_TYPES = ("text/csv", "application/csv", "text/plain")


class HttpProblem(Exception):
    """Turned into {"errors": [...]} with its status by the app's exception handler."""

    def __init__(self, status: int, errors: Sequence[RowError], headers: dict[str, str] | None = None,
                 error_count: int | None = None) -> None:
        super().__init__(errors[0].message if errors else str(status))
        self.status = status
        self.errors = list(errors)
        self.headers = headers or {}
        self.error_count = error_count if error_count is not None else len(errors)


def _problem(status: int, message: str, headers: dict[str, str] | None = None) -> HttpProblem:
    return HttpProblem(status, [RowError(None, None, message)], headers)


def create_token(db_url: str, name: str) -> str:
    """A new upload token; the database keeps only its sha256, so show it to the user once."""
    store = Store(db_url)
    try:
        return store.create_token(name)
    finally:
        store.dispose()


def create_app(db_url: str, *, max_body_bytes: int = 10_000_000, max_rows: int = 100_000,
               report_html: ReportHtml | None = None) -> FastAPI:
    """Everything the app needs is built here, so tests can run several apps side by side."""
    store = Store(db_url)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        store.dispose()

    app = FastAPI(title="edgebench results", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.store = store

    @app.exception_handler(HttpProblem)
    async def _on_problem(_request: Request, exc: HttpProblem) -> JSONResponse:
        body: dict[str, Any] = {"errors": [e.as_dict() for e in exc.errors[:MAX_REPORTED_ERRORS]]}
        if exc.error_count > len(body["errors"]):
            body["error_count"] = exc.error_count
        return JSONResponse(body, status_code=exc.status, headers=exc.headers)

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "rows": store.count_rows(),
                "quality_rows": store.count_quality_rows()}

    async def receive(request: Request) -> tuple[int, bytes]:
        """The uploader's token id and the CSV bytes, within the size limit."""
        token_id = await run_in_threadpool(_authorise, store, request.headers.get("authorization"))
        body = await _read_body(request, max_body_bytes)
        return token_id, await _csv_payload(request, body, max_body_bytes)

    async def stored(rows: Sequence[Any], store_fn: Callable[..., StoreOutcome],
                     token_id: int) -> JSONResponse:
        try:
            outcome = await run_in_threadpool(store_fn, rows, token_id)
        except sa.exc.IntegrityError:  # a concurrent upload of the same run won the race
            outcome = await run_in_threadpool(store_fn, rows, token_id)
        if outcome.conflicts:
            raise HttpProblem(409, [RowError(index + 2, None, msg)
                                    for index, msg in outcome.conflicts],
                              error_count=len(outcome.conflicts))
        run_ids = sorted({row.run_id for row in rows})
        payload = {"run_ids": run_ids, "rows": len(rows), "stored": outcome.stored,
                   "duplicates": outcome.duplicates}
        return JSONResponse(payload, status_code=201 if outcome.stored else 200)

    @app.post("/api/results")
    async def post_results(request: Request) -> JSONResponse:
        token_id, data = await receive(request)
        if q.payload_is_quality(data):
            raise _problem(422, "this is a quality CSV (edgebench quality); POST it to "
                                "/api/quality")
        checked = await run_in_threadpool(check_csv_bytes, data, max_rows=max_rows)
        if checked.errors:
            raise HttpProblem(checked.status, checked.errors, error_count=checked.error_count)
        return await stored(checked.rows, store.store_rows, token_id)

    @app.post("/api/quality")
    async def post_quality(request: Request) -> JSONResponse:
        token_id, data = await receive(request)
        checked = await run_in_threadpool(q.check_quality_bytes, data, max_rows=max_rows)
        if checked.errors:
            raise HttpProblem(checked.status, checked.errors, error_count=checked.error_count)
        return await stored(checked.rows, store.store_quality_rows, token_id)

    @app.get("/api/results.csv")
    def export_csv(device: str | None = None, model: str | None = None) -> Response:
        rows = [neutralise_formulas(r) for r in store.query_rows(device=device, model=model)]
        return _csv_response(format_rows_csv(rows), "edgebench-results.csv")

    @app.get("/api/quality.csv")
    def export_quality_csv(device: str | None = None, model: str | None = None) -> Response:
        rows = [q.neutralise_formulas(r)
                for r in store.query_quality_rows(device=device, model=model)]
        return _csv_response(format_rows_csv(rows, QUALITY_COLUMNS), "edgebench-quality.csv")

    @app.get("/", response_class=HTMLResponse)
    def report() -> HTMLResponse:
        rows = store.query_rows()
        page = _render_report(rows, report_html, store.query_quality_rows)
        if page is not None:
            return HTMLResponse(page)
        return HTMLResponse(fallback_html(rows, store.count_quality_rows()), headers={
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
            "X-Content-Type-Options": "nosniff"})

    return app


def _csv_response(text: str, filename: str) -> Response:
    return Response(text, media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{filename}"',
        "X-Content-Type-Options": "nosniff"})


def _authorise(store: Store, header: str | None) -> int:
    challenge = {"WWW-Authenticate": "Bearer"}
    if not header:
        raise _problem(401, "an upload token is required: send 'Authorization: Bearer <token>' "
                            "(create one with 'edgebench serve --create-token NAME')", challenge)
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _problem(401, "use 'Authorization: Bearer <token>'", challenge)
    token_id = store.token_id(token.strip())
    if token_id is None:
        raise _problem(403, "this upload token is not valid on this server; ask its admin for one")
    return token_id


async def _read_body(request: Request, limit: int) -> bytes:
    """Stops reading as soon as the limit is passed, whatever Content-Length claims."""
    too_big = _problem(413, f"the upload is larger than {limit} bytes; split the file")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_big
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


async def _csv_payload(request: Request, body: bytes, limit: int) -> bytes:
    """The CSV bytes from a text/csv body or from the multipart field 'file'."""
    from starlette.requests import Request as StarletteRequest

    content_type = request.headers.get("content-type", "")
    media = content_type.split(";")[0].strip().lower()
    params = {k.strip().lower(): v.strip().strip('"').lower() for k, _, v in
              (p.partition("=") for p in content_type.split(";")[1:])}
    if media in _CSV_TYPES:
        if params.get("charset", "utf-8") not in ("utf-8", "utf8"):
            raise _problem(415, f"charset {params['charset']} is not accepted; send UTF-8")
        return body
    if media != "multipart/form-data":
        raise _problem(415, f"send the CSV as text/csv or as multipart field 'file', "
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
        raise _problem(400, f"malformed multipart body: {exc}") from None
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise _problem(422, "the multipart body has no file field named 'file'")
    try:
        return await upload.read()
    finally:
        await form.close()


def _render_report(rows: list[ResultRow], report_html: ReportHtml | None,
                   quality_rows: Callable[[], list[QualityRow]]) -> str | None:
    """The real report when it can be had (the built-in one with the stored quality beside
    speed and energy); None means 'serve the fallback table'."""
    try:
        if report_html is not None:
            return report_html(rows)
        from bench.quality.summary import summarize
        from bench.report.html import render_html

        return render_html(rows, quality=summarize(quality_rows()))
    except Exception:  # the report module is optional; the service must still answer
        return None


def fallback_html(rows: Sequence[ResultRow], quality_rows: int = 0) -> str:
    """A plain table of medians per configuration; every cell escaped (uploads are untrusted)."""
    groups: dict[tuple[str, ...], list[ResultRow]] = defaultdict(list)
    for row in rows:
        key = (row.cpu_model, row.model_id, row.variant, row.backend, row.ep, str(row.threads),
               row.test)
        groups[key].append(row)

    def median(values: list[float | None]) -> str:
        got = [v for v in values if v is not None]
        return f"{statistics.median(got):.1f}" if got else ""

    head = ("device", "model", "variant", "backend", "ep", "threads", "test", "reps",
            "median prefill tok/s", "median decode tok/s")
    lines = ["<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
             "<title>edgebench results</title></head><body>", "<h1>edgebench results</h1>",
             f"<p>{len(rows)} rows. Download: <a href=\"api/results.csv\">results.csv</a>"
             + (f"; {quality_rows} quality rows: <a href=\"api/quality.csv\">quality.csv</a>"
                if quality_rows else "") + "</p>",
             "<table>", "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"]
    for key in sorted(groups):
        members = groups[key]
        cells = [*key, str(len(members)), median([r.prefill_tok_s for r in members]),
                 median([r.decode_tok_s for r in members])]
        lines.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    lines += ["</table>", "</body></html>"]
    return "\n".join(lines)


def serve_main(db_url: str, host: str = "127.0.0.1", port: int = 8000) -> None:
    import uvicorn

    uvicorn.run(create_app(db_url), host=host, port=port, proxy_headers=False)
