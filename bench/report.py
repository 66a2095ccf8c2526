"""`edgebench report`: results CSVs -> one static HTML page (tables + plots) and a Markdown summary.

Entry points: load_results (report_load), render_html (report_html; the upload server calls it
for GET /), render_markdown, build_report and register (the CLI sub-command). Aggregation lives in
report_data and tables in report_tables. pandas and plotly are imported only inside the functions
that build a report, so importing this module for `edgebench --help` stays light.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from bench import cost
from bench.compare import DEFAULT_REGION, DEFAULT_USAGE_TOK_PER_DAY
from bench.errors import EdgebenchError
from bench.report_data import ReportData, build_report_data
from bench.report_html import render_data_html, render_html
from bench.report_load import MIGRATIONS, dedupe, find_csv_files, load_results, read_results_file
from bench.report_tables import all_tables, context_line
from bench.schema import ResultRow

__all__ = ["MIGRATIONS", "ReportSummary", "build_report", "load_results", "register", "render_html",
           "render_markdown"]


@dataclass(frozen=True)
class ReportSummary:
    html_path: Path
    markdown_path: Path
    files: int
    rows: int
    duplicates_dropped: int
    devices: int
    configurations: int


def _md_cell(text: str) -> str:
    """CSV text must stay text in any Markdown renderer: no HTML, no table breaks."""
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("|", "\\|").replace("\n", " ").replace("\r", " "))


def render_markdown(rows: Sequence[ResultRow], *, profiles_root: Path | None = None,
                    region: str = DEFAULT_REGION, usage_tok_per_day: float = DEFAULT_USAGE_TOK_PER_DAY,
                    mix: str = cost.DEFAULT_MIX, offer_ids: Sequence[str] | None = None) -> str:
    """The same tables as the HTML page, as Markdown (for issues, PRs and terminals)."""
    data = build_report_data(rows, profiles_root=profiles_root, region=region,
                             usage_tok_per_day=usage_tok_per_day, mix=mix, offer_ids=offer_ids)
    return _markdown(data)


def _markdown(data: ReportData) -> str:
    out = ["# edgebench report", "",
           f"{data.n_rows:,} rows, {data.n_devices} devices, {data.n_configurations} configurations.", "",
           context_line(data) + (f" {_md_cell(data.common)}" if data.common else ""), "",
           "Energy and everything derived from it carries its method in parentheses; a method "
           "starting with `estimate` is an estimate, not a measurement.", ""]
    for t in all_tables(data):
        out += [f"## {t.title}", "", t.intro, "",
                "| " + " | ".join(t.header) + " |",
                "|" + "|".join("---" if i in t.text_columns else "---:" for i in range(len(t.header))) + "|"]
        out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in t.rows]
        out += [""] + [f"- {_md_cell(n)}" for n in t.notes] + ([""] if t.notes else [])
    out += ["## Assumptions and sources", ""]
    out += [("  - " if line.startswith("  ") else "- ") + _md_cell(line.strip()) for line in data.assumptions]
    return "\n".join(out) + "\n"


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


def build_report(inputs: Sequence[Path], out_dir: Path, *, profiles_root: Path | None = None,
                 region: str = DEFAULT_REGION, usage_tok_per_day: float = DEFAULT_USAGE_TOK_PER_DAY,
                 mix: str = cost.DEFAULT_MIX, offer_ids: Sequence[str] | None = None) -> ReportSummary:
    """Reads every CSV under `inputs`, writes out_dir/index.html and out_dir/summary.md."""
    files = find_csv_files(inputs)
    rows, dropped = dedupe(row for f in files for row in read_results_file(f))
    if not rows:
        raise EdgebenchError(f"{', '.join(map(str, inputs))}: the results files hold no rows; "
                             "run `edgebench run` first")
    data = build_report_data(rows, profiles_root=profiles_root, region=region,
                             usage_tok_per_day=usage_tok_per_day, mix=mix, offer_ids=offer_ids)
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EdgebenchError(f"cannot create report directory {out_dir}: {exc.strerror}") from None
    html_path, md_path = out_dir / "index.html", out_dir / "summary.md"
    _write_atomic(html_path, render_data_html(data))
    _write_atomic(md_path, _markdown(data))
    return ReportSummary(html_path, md_path, len(files), len(rows), dropped, data.n_devices,
                         data.n_configurations)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} must be > 0")
    return value


def cmd_report(args: argparse.Namespace) -> int:
    summary = build_report(args.inputs, args.output, region=args.region, usage_tok_per_day=args.usage,
                           mix=args.mix, offer_ids=args.offers)
    dup = f" ({summary.duplicates_dropped} duplicate rows counted once)" if summary.duplicates_dropped else ""
    print(f"report written to {summary.html_path} and {summary.markdown_path}: {summary.rows} rows "
          f"from {summary.files} files{dup}, {summary.devices} devices, "
          f"{summary.configurations} configurations")
    return 0


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]",
             parser_class: type[argparse.ArgumentParser] | None = None) -> argparse.ArgumentParser:
    """Adds `edgebench report CSV_OR_DIR... -o OUT_DIR`.

    `parser_class` is the CLI's one-line-error parser; add_parser already uses the subparsers'
    class, so it is only needed if this command grows sub-commands of its own.
    """
    p = subparsers.add_parser(
        "report", help="HTML + Markdown report (tables, plots, cost vs cloud) from results CSVs",
        description="Builds OUT_DIR/index.html (one self-contained page: tables and interactive "
                    "plots, no network needed) and OUT_DIR/summary.md from results CSVs.")
    p.add_argument("inputs", nargs="+", type=Path, metavar="CSV_OR_DIR",
                   help="results CSV files or directories (every *.csv under them)")
    p.add_argument("--output", "-o", type=Path, required=True, metavar="OUT_DIR",
                   help="directory for index.html and summary.md (created if missing)")
    p.add_argument("--region", default=DEFAULT_REGION,
                   help=f"electricity tariff and grid carbon region (default {DEFAULT_REGION})")
    p.add_argument("--usage", type=_positive_float, default=DEFAULT_USAGE_TOK_PER_DAY, metavar="TOK_PER_DAY",
                   help=f"daily tokens for the dedicated cost (default {DEFAULT_USAGE_TOK_PER_DAY:,.0f})")
    p.add_argument("--mix", default=cost.DEFAULT_MIX,
                   help=f"input:output ratio or named mix (default {cost.DEFAULT_MIX})")
    p.add_argument("--offers", type=lambda s: [x.strip() for x in s.split(",") if x.strip()],
                   metavar="ID,ID", help="cloud offers to compare (default: the cheapest small, "
                                         "open-small and frontier ones)")
    p.set_defaults(func=cmd_report)
    return p
