"""The command line: argument parsing and one small module per command.

Commands call the stage packages and do no measuring, pricing or rendering of their own.
"""

from bench.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
