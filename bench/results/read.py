"""Reading a results CSV strictly: any problem is one line naming the file and the line.

Files of older schema versions are migrated row by row (results/migrate.py)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterator

from bench.errors import EdgebenchError
from bench.results.migrate import header_problem, header_version, migrate
from bench.results.schema import COLUMNS, SCHEMA_VERSION, ResultRow, parse_cell


def iter_rows(path: Path) -> Iterator[ResultRow]:
    """Reads and validates a results CSV; any problem is one line naming the file and line."""
    try:
        fh = open(path, newline="", encoding="utf-8")
    except FileNotFoundError:
        raise EdgebenchError(f"results file {path} does not exist") from None
    with fh:
        try:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise EdgebenchError(f"{path} is empty; it holds no results")
            version = header_version(header)
            if version is None:
                raise EdgebenchError(f"{path} {header_problem(header)}")
            for lineno, cells in enumerate(reader, start=2):
                if len(cells) != len(header):
                    raise EdgebenchError(
                        f"{path} line {lineno}: {len(cells)} cells for {len(header)} columns "
                        "(the file is truncated or malformed)"
                    )
                values = dict(zip(header, cells))
                try:
                    if version != SCHEMA_VERSION or values.get("schema_version") != str(version):
                        values = migrate(values, lineno)
                    parsed = {c: parse_cell(c, values[c], lineno) for c in COLUMNS}
                except EdgebenchError as exc:
                    raise EdgebenchError(f"{path} {exc}") from None
                yield ResultRow(**parsed)
        except UnicodeDecodeError:
            raise EdgebenchError(f"{path} is not UTF-8 text; is it really a results CSV?") from None
        except csv.Error as exc:
            raise EdgebenchError(f"{path} is not valid CSV: {exc}") from None


def read_rows(path: Path) -> list[ResultRow]:
    return list(iter_rows(path))
