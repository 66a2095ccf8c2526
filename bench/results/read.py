"""Reading a results CSV strictly: any problem is one line naming the file and the line."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterator

from bench.errors import EdgebenchError
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
            missing = [c for c in COLUMNS if c not in header]
            extra = [c for c in header if c not in COLUMNS]
            if missing or extra:
                raise EdgebenchError(
                    f"{path} does not match results schema v{SCHEMA_VERSION}: "
                    + (f"missing columns {', '.join(missing)}" if missing else "")
                    + ("; " if missing and extra else "")
                    + (f"unknown columns {', '.join(extra)}" if extra else "")
                )
            for lineno, cells in enumerate(reader, start=2):
                if len(cells) != len(header):
                    raise EdgebenchError(
                        f"{path} line {lineno}: {len(cells)} cells for {len(header)} columns "
                        "(the file is truncated or malformed)"
                    )
                values = dict(zip(header, cells))
                try:
                    parsed = {c: parse_cell(c, values[c], lineno) for c in COLUMNS}
                except EdgebenchError as exc:
                    raise EdgebenchError(f"{path} {exc}") from None
                if parsed["schema_version"] != SCHEMA_VERSION:
                    raise EdgebenchError(
                        f"{path} line {lineno}: schema_version {parsed['schema_version']} is not "
                        f"supported (this edgebench reads v{SCHEMA_VERSION})"
                    )
                yield ResultRow(**parsed)
        except UnicodeDecodeError:
            raise EdgebenchError(f"{path} is not UTF-8 text; is it really a results CSV?") from None
        except csv.Error as exc:
            raise EdgebenchError(f"{path} is not valid CSV: {exc}") from None


def read_rows(path: Path) -> list[ResultRow]:
    return list(iter_rows(path))
