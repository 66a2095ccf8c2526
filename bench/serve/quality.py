"""Quality rows at the upload service and its client: validated like result rows.

The quality CSV's own strict reader (`bench.results.quality.iter_quality_rows`) decides what is
valid; this module turns its first error into row-level detail for every row, and adds what the
reader cannot know: plausible counts, timestamps, bits per byte that follows from its own NLL
and bytes, and one row per QUALITY_KEY. Uploads, statuses and exports mirror result rows
(bench/results/validate.py).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import re
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Iterable, Sequence

from bench.errors import EdgebenchError
from bench.results.inputs import QUALITY_KEY, quality_key
from bench.results.quality import (KIND, QUALITY_COLUMNS, QUALITY_REQUIRED, QUALITY_SCHEMA_VERSION,
                                   QUALITY_TYPES, QualityRow, bits_per_byte, check_row,
                                   is_quality_header, iter_quality_rows)
from bench.results.schema import parse_cell
from bench.results.validate import Checked, RowError, failed

# Counts a quality row holds: non-negative, and far below these (a unit or column slip above).
COUNT_LIMITS: dict[str, tuple[int, int]] = {
    "threads": (1, 100_000), "context_tokens": (1, 10**8), "stride_tokens": (1, 10**8),
    "n_windows": (0, 10**9), "n_tokens": (0, 10**12), "n_bytes": (0, 10**13),
    "prompt_tokens": (0, 10**8), "generated_tokens": (0, 10**8), "output_bytes": (0, 10**10),
}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # as results/validate.py
_LINE_PREFIX = re.compile(r"^line (\d+): ")
_LINE_ANYWHERE = re.compile(r"\bline (\d+)\b")


def text_columns() -> tuple[str, ...]:
    return tuple(c for c in QUALITY_COLUMNS if QUALITY_TYPES[c].split()[0] == "str")


def payload_header(data: bytes) -> list[str]:
    """The first line's cells, read leniently: only used to tell the two kinds apart."""
    first = data.split(b"\n", 1)[0].decode("utf-8", errors="replace").rstrip("\r")
    try:
        return next(csv.reader([first]), [])
    except csv.Error:
        return []


def payload_is_quality(data: bytes) -> bool:
    return is_quality_header(payload_header(data))


def payload_is_results(data: bytes) -> bool:
    header = payload_header(data)
    return "schema_version" in header and not is_quality_header(header)


def plausibility_errors(rows: Sequence[QualityRow], first_line: int = 2) -> list[RowError]:
    errors: list[RowError] = []
    for line, row in enumerate(rows, start=first_line):
        for column, (low, high) in COUNT_LIMITS.items():
            value = getattr(row, column)
            if value is not None and not low <= value <= high:
                errors.append(RowError(line, column, f"{value!r} is outside the plausible range "
                                                     f"[{low:g}, {high:g}]"))
        for column in ("started_utc", "finished_utc"):
            try:
                datetime.fromisoformat(getattr(row, column))
            except ValueError:
                errors.append(RowError(line, column, f"{getattr(row, column)!r} is not an "
                                                     "RFC 3339 timestamp"))
        if row.bits_per_byte is not None and row.nll_nats is not None and row.n_bytes:
            expected = bits_per_byte(row.nll_nats, row.n_bytes)
            if not math.isclose(row.bits_per_byte, expected, rel_tol=1e-6, abs_tol=1e-9):
                errors.append(RowError(line, "bits_per_byte", f"{row.bits_per_byte!r} is not "
                                       f"nll_nats / ln 2 / n_bytes = {expected:.6g}"))
    return errors


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


def check_quality_rows(rows: Iterable[QualityRow]) -> list[RowError]:
    """Plausibility and duplicate keys for rows read locally (the upload client's pre-flight)."""
    listed = list(rows)
    return plausibility_errors(listed) + duplicate_key_errors(listed)


def check_quality_bytes(data: bytes, *, max_rows: int) -> Checked:
    """Validates an uploaded quality CSV with the quality reader, then plausibility and keys."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return failed(400, [RowError(line, None, "the upload is not UTF-8 text; send the quality "
                                                  "CSV exactly as edgebench wrote it")])
    if payload_is_results(data):
        return failed(422, [RowError(1, None, "this is a results CSV, not an "
                                               f"{KIND} file; POST it to /api/results")])
    rows: list[QualityRow] = []
    with tempfile.TemporaryDirectory(prefix="edgebench-quality-") as tmp:
        path = Path(tmp) / "upload.csv"
        path.write_bytes(data)
        try:
            for row in iter_quality_rows(path):
                rows.append(row)
                if len(rows) > max_rows:
                    return failed(413, [RowError(None, None, f"more than {max_rows} rows; split "
                                                              "the file and upload the parts")])
        except EdgebenchError as exc:
            message = str(exc).replace(str(path), "upload")
            found = _LINE_ANYWHERE.search(message)
            return failed(422, _detailed_errors(text) or [
                RowError(int(found.group(1)) if found else None, None, message)])
    errors = plausibility_errors(rows) + duplicate_key_errors(rows)
    if errors:
        return failed(422, errors)
    return Checked(rows=tuple(rows), errors=(), status=200)


def _detailed_errors(text: str) -> list[RowError]:
    """Every row-level error (the reader stops at the first), by the reader's own rules."""
    try:
        records = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        return [RowError(None, None, f"not valid CSV: {exc}")]
    if not records:
        return [RowError(None, None, "the upload is empty; it holds no quality rows")]
    header = records[0]
    if set(header) != set(QUALITY_COLUMNS) or len(header) != len(QUALITY_COLUMNS):
        errors = [RowError(1, c, f"missing column ({KIND})") for c in QUALITY_COLUMNS
                  if c not in header]
        errors += [RowError(1, c, f"unknown column ({KIND})") for c in header
                   if c not in QUALITY_COLUMNS]
        errors += [RowError(1, c, "column appears more than once")
                   for c in sorted({c for c in header if header.count(c) > 1})]
        return errors
    errors = []
    for lineno, cells in enumerate(records[1:], start=2):
        if len(cells) != len(header):
            errors.append(RowError(lineno, None, f"{len(cells)} cells for {len(header)} columns "
                                                 "(truncated or malformed row)"))
            continue
        values = dict(zip(header, cells))
        if values["quality_schema_version"] != str(QUALITY_SCHEMA_VERSION):
            errors.append(RowError(lineno, "quality_schema_version", "quality schema version "
                                   f"{values['quality_schema_version']!r}; this server reads "
                                   f"{QUALITY_SCHEMA_VERSION}"))
            continue
        parsed, cell_errors = {}, []
        for column in QUALITY_COLUMNS:
            try:
                parsed[column] = parse_cell(column, values[column], lineno, QUALITY_TYPES,
                                            QUALITY_REQUIRED)
            except EdgebenchError as exc:
                cell_errors.append(RowError(lineno, column, _LINE_PREFIX.sub("", str(exc))))
        if not cell_errors:
            try:
                check_row(QualityRow(**parsed), f"line {lineno}")
            except EdgebenchError as exc:
                message = _LINE_PREFIX.sub("", str(exc))
                first = message.split(" ", 1)[0]
                cell_errors.append(RowError(lineno, first if first in QUALITY_COLUMNS else None,
                                            message))
        errors += cell_errors
    return errors


def neutralise_formulas(row: QualityRow) -> QualityRow:
    """Prefixes text cells a spreadsheet would evaluate with a quote; numbers are left alone."""
    changes = {c: "'" + v for c in text_columns()
               if isinstance(v := getattr(row, c), str) and v.startswith(_FORMULA_START)}
    return dataclasses.replace(row, **changes) if changes else row
