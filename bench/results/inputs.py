"""Report inputs: results CSVs and quality CSVs in any order, told apart by their header.

Both kinds go through their own strict reader, so a malformed file is that reader's one-line
error. A quality row copied into several files counts once, keyed like the upload service's
table (QUALITY_KEY), so a HumanEval problem is never counted twice in pass@1.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from bench.errors import EdgebenchError
from bench.results.load import dedupe, find_csv_files
from bench.results.quality import QualityRow, is_quality_header, iter_quality_rows
from bench.results.read import iter_rows
from bench.results.schema import ResultRow

# What identifies one quality measurement: a corpus row has no item and no prompt format, a
# HumanEval row one of each. Rows of the same run with the same key cannot both be true.
QUALITY_KEY = ("run_id", "model_id", "variant", "measure", "dataset", "item", "prompt_format")


def quality_key(row: QualityRow) -> tuple[str | None, ...]:
    return tuple(getattr(row, c) for c in QUALITY_KEY)


def is_quality_file(path: Path) -> bool:
    """Only the header is read; the file's own reader judges the rest (an empty or unreadable
    header counts as results, whose reader then says what is wrong)."""
    try:
        with open(path, newline="", encoding="utf-8", errors="replace") as fh:
            header = next(csv.reader(fh), [])
    except csv.Error:
        return False
    except OSError as exc:
        raise EdgebenchError(f"cannot read {path}: {exc.strerror}") from None
    return is_quality_header(header)


def dedupe_quality(rows: Iterable[QualityRow]) -> tuple[list[QualityRow], int]:
    """The same measurement copied into several files counts once (first copy kept)."""
    seen: set[tuple[str | None, ...]] = set()
    unique: list[QualityRow] = []
    total = 0
    for row in rows:
        total += 1
        key = quality_key(row)
        if key not in seen:
            seen.add(key)
            unique.append(row)
    return unique, total - len(unique)


@dataclass(frozen=True)
class SplitInputs:
    """The CSVs under the inputs, results files still unread (each caller has its own reader:
    compare row by row, the report column-wise into DuckDB) and quality rows read and
    deduplicated."""

    files: int
    result_files: list[Path]
    quality: list[QualityRow]
    quality_dropped: int


def split_inputs(paths: Sequence[Path]) -> SplitInputs:
    """Every CSV under `paths` (files or directories of *.csv), told apart by its header."""
    files = find_csv_files(paths)
    quality_files = [f for f in files if is_quality_file(f)]
    is_quality = set(quality_files)
    quality, dropped = dedupe_quality(row for f in quality_files for row in iter_quality_rows(f))
    return SplitInputs(len(files), [f for f in files if f not in is_quality], quality, dropped)


@dataclass(frozen=True)
class Inputs:
    files: int
    results: list[ResultRow]
    quality: list[QualityRow]
    duplicates_dropped: int  # result and quality rows together


def load_inputs(paths: Sequence[Path]) -> Inputs:
    """Every results and quality row under `paths` (files or directories of *.csv)."""
    split = split_inputs(paths)
    results, dropped = dedupe(row for f in split.result_files for row in iter_rows(f))
    return Inputs(split.files, results, split.quality, dropped + split.quality_dropped)
