"""`edgebench report CSV_OR_DIR... -o OUT_DIR` (results and quality CSVs, in any order)."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.cli.args import list_of, positive_float
from bench.cli.compare import ownership_options
from bench.cost.model import DEFAULT_MIX
from bench.cost.options import DEFAULT_REGION, DEFAULT_USAGE_TOK_PER_DAY


def cmd_report(args: argparse.Namespace) -> int:
    from bench.cost.options import PricingOptions
    from bench.report.build import build_report

    options = PricingOptions(region=args.region, usage_tok_per_day=args.usage, mix=args.mix,
                             offer_ids=args.offers, rent_usd_per_hour=args.rent_usd_per_hour,
                             owned=args.owned)
    summary = build_report(args.inputs, args.output, options)
    dup = f" ({summary.duplicates_dropped} duplicate rows counted once)" if summary.duplicates_dropped else ""
    quality = (f", {summary.quality_rows} quality rows for {summary.quality_variants} model "
               "variants" if summary.quality_rows else "")
    print(f"report written to {summary.html_path} and {summary.markdown_path}: {summary.rows} rows "
          f"from {summary.files} files{dup}, {summary.devices} devices, "
          f"{summary.configurations} configurations{quality}")
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
                    "plots, no network needed) and OUT_DIR/summary.md from results CSVs, with "
                    "quality (edgebench quality CSVs) beside speed and energy.")
    p.add_argument("inputs", nargs="+", type=Path, metavar="CSV_OR_DIR",
                   help="results and quality CSV files or directories (every *.csv under them), "
                        "in any order; each file's header says which kind it is")
    p.add_argument("--output", "-o", type=Path, required=True, metavar="OUT_DIR",
                   help="directory for index.html and summary.md (created if missing)")
    p.add_argument("--region", default=DEFAULT_REGION,
                   help=f"electricity tariff and grid carbon region (default {DEFAULT_REGION})")
    p.add_argument("--usage", type=positive_float, default=DEFAULT_USAGE_TOK_PER_DAY, metavar="TOK_PER_DAY",
                   help=f"daily tokens for the dedicated cost (default {DEFAULT_USAGE_TOK_PER_DAY:,.0f})")
    p.add_argument("--mix", default=DEFAULT_MIX,
                   help=f"input:output ratio or named mix (default {DEFAULT_MIX})")
    p.add_argument("--offers", type=list_of(str, "offer"),
                   metavar="ID,ID", help="cloud offers to compare (default: the cheapest small, "
                                         "open-small and frontier ones)")
    ownership_options(p)
    p.set_defaults(func=cmd_report)
    return p
