"""`edgebench upload FILE.csv --server URL` (a results CSV or a quality CSV)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from bench.serve.client import TOKEN_ENV


def cmd_upload(args: argparse.Namespace) -> int:
    from bench.serve.client import upload_file

    upload_file(Path(args.results), args.server, args.token or os.environ.get(TOKEN_ENV),
                yes=args.yes, include_host=args.include_host)
    return 0


def register(subparsers: argparse._SubParsersAction, parser_class: type) -> None:
    """Adds `upload FILE.csv --server URL [--token T] [--yes] [--include-host]`."""
    up = subparsers.add_parser(
        "upload", help="send a results or quality CSV to an edgebench server",
        description="Validate a results CSV (or a quality CSV) locally, show what will be sent, "
                    "ask, and upload it. The file's header says which kind it is. Re-uploading "
                    "is safe: the server stores each row once.")
    up.add_argument("results", metavar="FILE.csv",
                    help="results CSV written by edgebench run or import, or quality CSV "
                         "written by edgebench quality")
    up.add_argument("--server", required=True, help="server URL, e.g. https://bench.example.org")
    up.add_argument("--token", help=f"upload token (default: ${TOKEN_ENV})")
    up.add_argument("--yes", "-y", action="store_true", help="do not ask before sending")
    up.add_argument("--include-host", action="store_true",
                    help="send rows even if a text cell contains this machine's hostname, user "
                         "name or home folder")
    up.set_defaults(func=cmd_upload)
