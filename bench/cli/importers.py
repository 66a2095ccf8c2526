"""`edgebench import <tool> FILE`: registered by bench.cli; the converters load on use."""

from __future__ import annotations

import argparse
from pathlib import Path


def cmd_import_llama_bench(args: argparse.Namespace) -> int:
    from bench.results.importers.llama_bench import write_import

    source = Path(args.file)
    output = Path(args.output) if args.output else Path(f"{source.stem}.edgebench.csv")
    outcome = write_import(source, output)
    print(f"{outcome.written} rows written to {output}"
          + (f" ({outcome.skipped} already there, skipped)" if outcome.skipped else ""))
    return 0


def register(subparsers: argparse._SubParsersAction, parser_class: type) -> None:
    """Adds `import llama-bench FILE -o OUT.csv`."""
    imp = subparsers.add_parser("import", help="convert other tools' results into edgebench rows")
    isub = imp.add_subparsers(dest="import_command", required=True, parser_class=parser_class)
    lb = isub.add_parser(
        "llama-bench", help="llama-bench -o csv/json/jsonl output",
        description="Convert llama-bench output (-o csv, json or jsonl; detected by content) "
                    "into edgebench rows. JSON keeps every repetition; CSV holds only means.")
    lb.add_argument("file", help="llama-bench output file")
    lb.add_argument("--output", "-o", help="results CSV, appended to; rows already in it are "
                                           "skipped (default <FILE stem>.edgebench.csv)")
    lb.set_defaults(func=cmd_import_llama_bench)
