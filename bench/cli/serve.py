"""`edgebench serve`: registered by bench.cli; FastAPI and uvicorn load only when it runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def default_db_url() -> str:
    """SQLite in the user data folder: the service keeps results across restarts."""
    from platformdirs import user_data_dir

    return f"sqlite:///{Path(user_data_dir('edgebench')) / 'edgebench.sqlite'}"


def cmd_serve(args: argparse.Namespace) -> int:
    from bench.serve import app as server

    db_url = args.db or default_db_url()
    if args.create_token:
        token = server.create_token(db_url, args.create_token)
        print(f"upload token for {args.create_token!r} (shown once; only its hash is stored):")
        print(token)
        return 0
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"edgebench: warning: listening on {args.host}; put TLS in front of it, upload "
              "tokens travel in request headers", file=sys.stderr)
    server.serve_main(db_url, args.host, args.port)
    return 0


def register(subparsers: argparse._SubParsersAction, parser_class: type) -> None:
    """Adds `serve [--db URL] [--host H] [--port P] [--create-token NAME]`."""
    del parser_class  # no nested subcommands
    serve = subparsers.add_parser(
        "serve", help="run the results upload service and web report",
        description="Run the upload service (POST /api/results, GET /api/results.csv, GET /). "
                    "Uploads need a token; reads are public.")
    serve.add_argument("--db", metavar="URL",
                       help="SQLAlchemy database URL, e.g. postgresql+psycopg://... "
                            "(default sqlite:///<user data dir>/edgebench.sqlite)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (8000)")
    serve.add_argument("--create-token", metavar="NAME",
                       help="create an upload token named NAME, print it once and exit")
    serve.set_defaults(func=cmd_serve)
