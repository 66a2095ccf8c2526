"""Report inputs: result CSVs from files or directories, older schema versions migrated on read.

Results files are immutable records written by whatever edgebench version ran on the device, so
the report must read every schema version the project has had. Rows are validated by the one
strict reader in bench.schema; a migration only rewrites raw cells up to the current version.
"""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path
from typing import Callable, Iterable, Sequence

from bench.results import read
from bench.errors import EdgebenchError
from bench.results.schema import COLUMNS, SCHEMA_VERSION, ResultRow

Migration = Callable[[dict[str, str]], dict[str, str]]

# MIGRATIONS[n] turns the raw cells of a schema vN row into v(N+1) cells; the loader then sets
# schema_version. v1 is the only version the project has had, so there is nothing to migrate yet.
MIGRATIONS: dict[int, Migration] = {}


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


def _peek(path: Path) -> tuple[list[str], str | None] | None:
    """Header and the first row's schema_version cell, or None if the file cannot be parsed."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader, [])
            first = next(reader, None)
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    if first is None or "schema_version" not in header or len(first) != len(header):
        return header, None
    return header, first[header.index("schema_version")]


def read_results_file(path: Path, migrations: dict[int, Migration] | None = None) -> list[ResultRow]:
    """One CSV; current files go straight to the schema reader, older ones through MIGRATIONS."""
    migrations = MIGRATIONS if migrations is None else migrations
    peek = _peek(path)
    if peek is None or peek[1] is None or (peek[0] == list(COLUMNS) and peek[1] == str(SCHEMA_VERSION)):
        return read.read_rows(path)  # raises the schema's one-line error for anything malformed
    return _read_migrated(path, migrations)


def _migrate_row(path: Path, line: int, cells: dict[str, str],
                 migrations: dict[int, Migration]) -> dict[str, str]:
    text = cells.get("schema_version", "")
    try:
        version = int(text)
    except ValueError:
        raise EdgebenchError(f"{path} line {line}: schema_version {text!r} is not a whole number") from None
    if version > SCHEMA_VERSION:
        raise EdgebenchError(f"{path} line {line}: schema v{version} was written by a newer edgebench "
                             f"(this one reads up to v{SCHEMA_VERSION}); upgrade edgebench")
    start = version
    while version < SCHEMA_VERSION:
        step = migrations.get(version)
        if step is None:
            raise EdgebenchError(f"{path} line {line}: no migration from schema v{version} to "
                                 f"v{version + 1}; this edgebench reads v{SCHEMA_VERSION}")
        cells = step(dict(cells))
        version += 1
        cells["schema_version"] = str(version)
    if set(cells) != set(COLUMNS):
        wrong = sorted(set(cells) ^ set(COLUMNS))
        raise EdgebenchError(f"{path} line {line}: migrating schema v{start} left columns "
                             f"{', '.join(wrong)} wrong (an edgebench bug; please report it)")
    return cells


def _read_migrated(path: Path, migrations: dict[int, Migration]) -> list[ResultRow]:
    """Migrates raw cells, then validates them with the schema reader via a temporary v-current file."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader)
            migrated = []
            for line, cells in enumerate(reader, start=2):
                if len(cells) != len(header):
                    raise EdgebenchError(f"{path} line {line}: {len(cells)} cells for {len(header)} "
                                         "columns (the file is truncated or malformed)")
                migrated.append(_migrate_row(path, line, dict(zip(header, cells)), migrations))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise EdgebenchError(f"{path} is not a readable results CSV: {exc}") from None
    with tempfile.TemporaryDirectory(prefix="edgebench-migrate-") as tmp:
        current = Path(tmp) / path.name
        with open(current, "w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(COLUMNS)
            writer.writerows([cells[c] for c in COLUMNS] for cells in migrated)
        try:
            return read.read_rows(current)
        except EdgebenchError as exc:
            raise EdgebenchError(str(exc).replace(str(current), f"{path} (after migration)")) from None


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
    rows = [row for f in find_csv_files(paths) for row in read_results_file(f)]
    return dedupe(rows)[0]
