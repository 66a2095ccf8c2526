"""The report as Markdown: the same tables as the HTML page, for issues, PRs and terminals."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from bench.cost.options import PricingOptions
from bench.quality.summary import QualitySummary
from bench.report.cost_quality import point_table
from bench.report.cost_quality_verdict import INTRO, NO_HUMANEVAL, cost_quality
from bench.report.data import ReportData, build_report_data
from bench.report.quality import quality_count
from bench.report.tables import Table, all_tables, context_line
from bench.results.schema import ResultRow


def _md_cell(text: str) -> str:
    """CSV text must stay text in any Markdown renderer: no HTML, no table breaks."""
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("|", "\\|").replace("\n", " ").replace("\r", " "))


def render_markdown(rows: Sequence[ResultRow], options: PricingOptions = PricingOptions(), *,
                    profiles_root: Path | None = None,
                    quality: Sequence[QualitySummary] = ()) -> str:
    """The same tables as the HTML page, as Markdown (for issues, PRs and terminals)."""
    data = build_report_data(rows, options, profiles_root=profiles_root, quality=quality)
    return markdown_text(data)


def _table_md(t: Table, level: str = "##") -> list[str]:
    out = [f"{level} {_md_cell(t.title)}", "", _md_cell(t.intro), "",
           "| " + " | ".join(t.header) + " |",
           "|" + "|".join("---" if i in t.text_columns else "---:" for i in range(len(t.header))) + "|"]
    out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in t.rows]
    return out + [""] + [f"- {_md_cell(n)}" for n in t.notes] + ([""] if t.notes else [])


def cost_quality_md(data: ReportData) -> list[str]:
    """The verdict sentences and each chart's points as a table (Markdown has no charts)."""
    cq = cost_quality(data)
    out = ["## Cost against quality", "", INTRO, ""]
    out += [f"- {_md_cell(v.text)}" for v in cq.verdicts] or [f"- {NO_HUMANEVAL}"]
    out.append("")
    for view in cq.views:
        out += _table_md(point_table(view), "###")
    return out


def markdown_text(data: ReportData) -> str:
    out = ["# edgebench report", "",
           f"{data.n_rows:,} rows, {data.n_devices} devices, {data.n_configurations} configurations"
           f"{quality_count(data.quality)}.", "",
           context_line(data) + (f" {_md_cell(data.common)}" if data.common else ""), "",
           "Energy and everything derived from it carries its method in parentheses; a method "
           "starting with `estimate` is an estimate, not a measurement.", ""]
    for t in all_tables(data):
        out += _table_md(t)
    if data.n_rows:
        out += cost_quality_md(data)
    out += ["## Assumptions and sources", ""]
    out += [("  - " if line.startswith("  ") else "- ") + _md_cell(line.strip()) for line in data.assumptions]
    return "\n".join(out) + "\n"
