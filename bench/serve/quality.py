"""Quality rows at the upload service and its client: validated like result rows.

The quality CSV's own reader (`bench.results.quality`: cell types, allowed values, each
measure's numbers) decides what is well-formed; this module adds what the reader cannot know:
plausible counts, timestamps, bits per byte that follows from its own NLL and bytes, and one row
per QUALITY_KEY. Uploads are checked as a stream by bench/serve/checks.py, like result rows.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import datetime
from functools import cache
from typing import Iterable, Sequence

from bench.results.inputs import QUALITY_KEY, quality_key
from bench.results.quality import QUALITY_COLUMNS, QUALITY_TYPES, QualityRow, bits_per_byte
from bench.results.validate import RowError, control_errors, timestamp_errors

# Counts a quality row holds: non-negative, and far below these (a unit or column slip above).
COUNT_LIMITS: dict[str, tuple[int, int]] = {
    "threads": (1, 100_000), "context_tokens": (1, 10**8), "stride_tokens": (1, 10**8),
    "n_windows": (0, 10**9), "n_tokens": (0, 10**12), "n_bytes": (0, 10**13),
    "prompt_tokens": (0, 10**8), "generated_tokens": (0, 10**8), "output_bytes": (0, 10**10),
}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # as results/validate.py


@cache
def text_columns() -> tuple[str, ...]:
    return tuple(c for c in QUALITY_COLUMNS if QUALITY_TYPES[c].split()[0] == "str")


def row_errors(row: QualityRow, line: int, now: datetime | None = None) -> list[RowError]:
    """What the quality reader cannot know about one row: plausible counts, sane timestamps,
    bits per byte that follows from its own NLL and bytes (control characters: control_errors;
    the upload service finds those in the raw record)."""
    errors: list[RowError] = []
    for column, (low, high) in COUNT_LIMITS.items():
        value = getattr(row, column)
        if value is not None and not low <= value <= high:
            errors.append(RowError(line, column, f"{value!r} is outside the plausible range "
                                                 f"[{low:g}, {high:g}]"))
    errors += timestamp_errors(row.started_utc, row.finished_utc, line, now)
    if row.bits_per_byte is not None and row.nll_nats is not None and row.n_bytes:
        expected = bits_per_byte(row.nll_nats, row.n_bytes)
        if not math.isclose(row.bits_per_byte, expected, rel_tol=1e-6, abs_tol=1e-9):
            errors.append(RowError(line, "bits_per_byte", f"{row.bits_per_byte!r} is not "
                                   f"nll_nats / ln 2 / n_bytes = {expected:.6g}"))
    return errors


def plausibility_errors(rows: Sequence[QualityRow], first_line: int = 2,
                        now: datetime | None = None) -> list[RowError]:
    return [e for line, row in enumerate(rows, start=first_line)
            for e in control_errors(row, text_columns(), line) + row_errors(row, line, now)]


def duplicate_key_errors(rows: Sequence[QualityRow], first_line: int = 2) -> list[RowError]:
    seen: dict[tuple, int] = {}
    errors: list[RowError] = []
    for line, row in enumerate(rows, start=first_line):
        key = quality_key(row)
        if key in seen:
            errors.append(RowError(line, None, f"duplicates line {seen[key]} (same "
                                               f"{', '.join(QUALITY_KEY)})"))
        else:
            seen[key] = line
    return errors


def check_quality_rows(rows: Iterable[QualityRow], now: datetime | None = None) -> list[RowError]:
    """Plausibility and duplicate keys for rows read locally (the upload client's pre-flight)."""
    listed = list(rows)
    return plausibility_errors(listed, now=now) + duplicate_key_errors(listed)


def neutralise_formulas(row: QualityRow) -> QualityRow:
    """Prefixes text cells a spreadsheet would evaluate with a quote; numbers are left alone."""
    changes = {c: "'" + v for c in text_columns()
               if isinstance(v := getattr(row, c), str) and v.startswith(_FORMULA_START)}
    return dataclasses.replace(row, **changes) if changes else row
