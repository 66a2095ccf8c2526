"""The service's report page (GET /): the built-in report over every stored row, read column-wise
from the store into DuckDB (bench/report/columnar.py) rather than a ResultRow per row, and
rendered again only when rows were stored since (a page over a million rows took 19.5 s on
SQLite and 19.2 s on PostgreSQL on the 2-vCPU development VM, docs/serve.md; an unchanged one
is served from memory). Without the report extra: a plain table of medians."""

from __future__ import annotations

import html
import statistics
import threading
from collections import defaultdict
from typing import Callable, Iterable, Sequence

from bench.results.schema import ResultRow
from bench.serve.storage import Store

ReportHtml = Callable[[list[ResultRow]], str]
# what the plain table reads of a row: its key, then the two rates it takes medians of
FALLBACK_COLUMNS = ("cpu_model", "model_id", "variant", "backend", "ep", "threads", "test",
                    "prefill_tok_s", "decode_tok_s")


class ReportPage:
    """One per app: the last page and the store generation it was rendered from. While a newer
    page renders, other requests get the last one at once (rows a few seconds older) instead
    of each holding a server thread; only the very first page is waited for."""

    def __init__(self, store: Store, report_html: ReportHtml | None = None) -> None:
        self.store = store
        self.report_html = report_html  # tests pass their own renderer of rows
        self._lock = threading.Lock()
        self._generation: tuple[int, ...] | None = None
        self._page = ""

    def html(self) -> str:
        if not self._lock.acquire(blocking=self._generation is None):
            return self._page  # another request is rendering a newer one
        try:
            generation = self.store.generation()
            if generation != self._generation:
                # read before rendering: a row stored meanwhile makes the next request render
                self._page, self._generation = self._render(), generation
            return self._page
        finally:
            self._lock.release()

    def _render(self) -> str:
        page = self._report()
        if page is None:
            page = fallback_html(self.store.iter_columns(FALLBACK_COLUMNS),
                                 self.store.count_quality_rows())
        return page

    def _report(self) -> str | None:
        """The real report (stored quality beside speed and energy); None: serve the table."""
        try:
            if self.report_html is not None:
                return self.report_html(self.store.query_rows())
            from bench.quality.summary import summarize
            from bench.report.columnar import REPORT_COLUMNS, table_from_chunks
            from bench.report.html import render_html

            table = table_from_chunks(self.store.iter_columns(REPORT_COLUMNS))
            return render_html(table if table.n_rows else [],
                               quality=summarize(self.store.query_quality_rows()))
        except Exception:  # the report extra is optional; the service must still answer
            return None


def fallback_html(chunks: Iterable[Sequence[tuple]], quality_rows: int = 0) -> str:
    """A plain table of medians per configuration from FALLBACK_COLUMNS tuples (every result
    row, so they are also its row count); every cell escaped (uploads are untrusted)."""
    groups: dict[tuple[str, ...], list[tuple]] = defaultdict(list)
    n_rows = 0
    for chunk in chunks:
        n_rows += len(chunk)
        for *key, prefill, decode in chunk:
            groups[tuple(str(k) for k in key)].append((prefill, decode))

    def median(values: Iterable[float | None]) -> str:
        got = [float(v) for v in values if v is not None]
        return f"{statistics.median(got):.1f}" if got else ""

    head = ("device", "model", "variant", "backend", "ep", "threads", "test", "reps",
            "median prefill tok/s", "median decode tok/s")
    lines = ["<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
             "<title>edgebench results</title></head><body>", "<h1>edgebench results</h1>",
             f"<p>{n_rows} rows. Download: <a href=\"api/results.csv\">results.csv</a>"
             + (f"; {quality_rows} quality rows: <a href=\"api/quality.csv\">quality.csv</a>"
                if quality_rows else "") + "</p>",
             "<table>", "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"]
    for key in sorted(groups):
        members = groups[key]
        cells = [*key, str(len(members)), median(p for p, _ in members),
                 median(d for _, d in members)]
        lines.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    lines += ["</table>", "</body></html>"]
    return "\n".join(lines)
