"""`edgebench serve`: registered by bench.cli; FastAPI and uvicorn load only when it runs.

Besides running the service, it administers its tokens: --create-token NAME (printed once,
only its sha256 is stored), --list-tokens, --revoke-token ID (ids are never reused)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.errors import EdgebenchError


def default_db_url() -> str:
    """SQLite in the user data folder: the service keeps results across restarts."""
    from platformdirs import user_data_dir

    return f"sqlite:///{Path(user_data_dir('edgebench')) / 'edgebench.sqlite'}"


def cmd_serve(args: argparse.Namespace) -> int:
    db_url = args.db or default_db_url()
    if args.create_token or args.list_tokens or args.revoke_token is not None:
        return _tokens(args, db_url)
    from bench.serve import app as server

    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"edgebench: warning: listening on {args.host}; put TLS in front of it, tokens "
              "travel in request headers", file=sys.stderr)
    if args.workers is not None and not 0 <= args.workers <= 64:
        raise EdgebenchError(f"--workers {args.workers}: give 0 (check uploads in the server "
                             "process) to 64")
    server.serve_main(db_url, args.host, args.port, public_read=args.public_read,
                      ingest_workers=args.workers)
    return 0


def _tokens(args: argparse.Namespace, db_url: str) -> int:
    from bench.serve.storage import Store

    store = Store(db_url)
    try:
        if args.create_token:
            token = store.create_token(args.create_token)
            print(f"upload token id {store.token_id(token)} for {args.create_token!r} (shown "
                  "once; only its hash is stored):")
            print(token)
        elif args.list_tokens:
            print(f"{'id':>4}  {'created (UTC)':<27}  {'status':<36}  name")
            for info in store.list_tokens():
                status = f"revoked {info.revoked_utc}" if info.revoked_utc else "active"
                print(f"{info.id:>4}  {info.created_utc:<27}  {status:<36}  {info.name}")
        elif store.revoke_token(args.revoke_token):
            print(f"token id {args.revoke_token} revoked; it can no longer upload or read")
        else:
            raise EdgebenchError(f"no token with id {args.revoke_token} (or it is revoked "
                                 "already); see 'edgebench serve --list-tokens'")
    finally:
        store.dispose()
    return 0


def register(subparsers: argparse._SubParsersAction, parser_class: type) -> None:
    """Adds `serve [--db URL] [--host H] [--port P] [--workers N] [--public-read]` and the
    token commands."""
    del parser_class  # no nested subcommands
    serve = subparsers.add_parser(
        "serve", help="run the results upload service and web report",
        description="Run the upload service (POST /api/results and /api/quality; GET "
                    "/api/results, /api/results.csv, /api/quality, /api/quality.csv and the "
                    "report at /). Uploads need a token; reads too unless --public-read. "
                    "See docs/serve.md.")
    serve.add_argument("--db", metavar="URL",
                       help="database URL: sqlite:///PATH or postgresql+psycopg://USER@HOST/DB "
                            "(default sqlite:///<user data dir>/edgebench.sqlite)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (8000)")
    serve.add_argument("--workers", type=int, metavar="N",
                       help="upload checking processes (default: one per usable core, at most "
                            "8; 0 checks uploads in the server process)")
    serve.add_argument("--public-read", action="store_true",
                       help="let anyone read results and the report without a token "
                            "(uploads still need one)")
    tokens = serve.add_mutually_exclusive_group()
    tokens.add_argument("--create-token", metavar="NAME",
                        help="create a token named NAME, print it once and exit")
    tokens.add_argument("--list-tokens", action="store_true",
                        help="list the tokens (id, created, revoked, name; never the token) "
                             "and exit")
    tokens.add_argument("--revoke-token", metavar="ID", type=int,
                        help="revoke the token with this id (see --list-tokens) and exit")
    serve.set_defaults(func=cmd_serve)
