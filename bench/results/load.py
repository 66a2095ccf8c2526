"""Report inputs: result CSVs from files or directories, duplicates counted once.

Every file goes through the one strict reader (results/read.py), which migrates older schema
versions row by row (results/migrate.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

from bench.results import read
from bench.errors import EdgebenchError
from bench.results.schema import ResultRow

def find_csv_files(paths: Sequence[Path]) -> list[Path]:
    """Files as given, directories searched recursively for *.csv; nothing found is an error."""
    if not paths:
        raise EdgebenchError("no results given: pass CSV files or directories holding them")
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.rglob("*.csv") if p.is_file())
            if not found:
                raise EdgebenchError(f"{path} holds no *.csv results files; pass a results CSV or "
                                     "a directory that holds some")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise EdgebenchError(f"{path} does not exist; pass results CSV files or directories")
    return list(dict.fromkeys(files))


def dedupe(rows: Iterable[ResultRow]) -> tuple[list[ResultRow], int]:
    """The same repetition (run_id, config_id, rep) copied into several files counts once."""
    seen: set[tuple[str, str, int]] = set()
    unique: list[ResultRow] = []
    total = 0
    for row in rows:
        total += 1
        key = (row.run_id, row.config_id, row.rep)
        if key not in seen:
            seen.add(key)
            unique.append(row)
    return unique, total - len(unique)


def load_results(paths: Sequence[Path]) -> list[ResultRow]:
    """Every row of every CSV under `paths`, migrated to the current schema, duplicates once."""
    rows = [row for f in find_csv_files(paths) for row in read.read_rows(f)]
    return dedupe(rows)[0]
