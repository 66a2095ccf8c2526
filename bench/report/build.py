"""`edgebench report`: results and quality CSVs -> one static HTML page (tables + plots) and a
Markdown summary.

Result CSVs are read column-wise into DuckDB by report/columnar.py (the strict reader,
results/read.py, for any file that does not pass whole); quality CSVs by results/quality.py,
told apart by results/inputs.py and folded by quality/summary.py. Aggregation lives in
report/data.py and report/aggregate.py, tables in report/tables.py, cost against
quality in report/cost_quality.py (+ _verdict.py, _chart.py), the page in report/html.py (the upload server calls render_html for GET /) and Markdown in
report/markdown.py. duckdb and plotly are imported only inside the functions that build a
report, so importing this module for `edgebench --help` stays light.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from bench.cost.options import PricingOptions
from bench.errors import EdgebenchError
from bench.quality.summary import summarize
from bench.report.columnar import table_from_files
from bench.report.data import build_report_data
from bench.report.html import render_data_html
from bench.results.inputs import split_inputs
from bench.report.markdown import markdown_text


@dataclass(frozen=True)
class ReportSummary:
    html_path: Path
    markdown_path: Path
    files: int
    rows: int
    duplicates_dropped: int
    devices: int
    configurations: int
    quality_rows: int = 0
    quality_variants: int = 0  # model x variant pairs with quality summaries


def _write_atomic(path: Path, text: str) -> None:
    """Readers (a web server, a browser reload) never see half a file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build_report(inputs: Sequence[Path], out_dir: Path, options: PricingOptions = PricingOptions(),
                 *, profiles_root: Path | None = None) -> ReportSummary:
    """Reads every CSV under `inputs` (results and quality files, told apart by their header),
    writes out_dir/index.html and out_dir/summary.md."""
    split = split_inputs(inputs)
    table = table_from_files(split.result_files)
    quality_rows = split.quality
    if not table.n_rows and not quality_rows:
        raise EdgebenchError(f"{', '.join(map(str, inputs))}: the results files hold no rows; "
                             "run `edgebench run` (or `edgebench quality`) first")
    quality = summarize(quality_rows)
    data = build_report_data(table, options, profiles_root=profiles_root, quality=quality)
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EdgebenchError(f"cannot create report directory {out_dir}: {exc.strerror}") from None
    html_path, md_path = out_dir / "index.html", out_dir / "summary.md"
    _write_atomic(html_path, render_data_html(data))
    _write_atomic(md_path, markdown_text(data))
    return ReportSummary(html_path, md_path, split.files, table.n_rows,
                         table.duplicates_dropped + split.quality_dropped, data.n_devices,
                         data.n_configurations, len(quality_rows), len(quality))
