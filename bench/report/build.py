"""`edgebench report`: results and quality CSVs -> one static HTML page (tables + plots) and a
Markdown summary.

Loading lives in report/inputs.py (results/load.py, results/quality.py; quality folded by
quality/summary.py), aggregation in report/data.py, tables in report/tables.py, cost against
quality in report/cost_quality.py (+ _verdict.py, _chart.py), the page in report/html.py (the upload server calls render_html for GET /) and Markdown in
report/markdown.py. pandas and plotly are imported only inside the functions that build a
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
from bench.report.data import build_report_data
from bench.report.html import render_data_html
from bench.results.inputs import load_inputs
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
    loaded = load_inputs(inputs)
    rows = loaded.results
    if not rows and not loaded.quality:
        raise EdgebenchError(f"{', '.join(map(str, inputs))}: the results files hold no rows; "
                             "run `edgebench run` (or `edgebench quality`) first")
    quality = summarize(loaded.quality)
    data = build_report_data(rows, options, profiles_root=profiles_root, quality=quality)
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EdgebenchError(f"cannot create report directory {out_dir}: {exc.strerror}") from None
    html_path, md_path = out_dir / "index.html", out_dir / "summary.md"
    _write_atomic(html_path, render_data_html(data))
    _write_atomic(md_path, markdown_text(data))
    return ReportSummary(html_path, md_path, loaded.files, len(rows), loaded.duplicates_dropped,
                         data.n_devices, data.n_configurations, len(loaded.quality), len(quality))
