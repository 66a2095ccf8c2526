"""Validation of a results CSV before it is uploaded or stored: schema first, plausibility second.

The schema's own strict reader (`bench.read.iter_rows`) decides what is valid, so the rules live
in one place; this module only turns its first error into row-level detail, and adds plausibility
limits the schema cannot know (a row can be well-typed and still absurd).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import re
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Sequence

from bench.results import read, schema
from bench.results.migrate import header_version, migrate
from bench.errors import EdgebenchError
from bench.results.schema import COLUMNS, SCHEMA_VERSION, ResultRow

MAX_REPORTED_ERRORS = 50


@dataclass(frozen=True)
class Limit:
    """Plausible range of a numeric column: matched by exact name, else by the longest unit
    suffix (ignoring a trailing _before/_after, as in cpu_temp_c_before)."""

    match: str
    low: float
    high: float
    why: str


# Anything outside these ranges is a unit slip or a broken clock, not a measurement. They are
# deliberately wide: the point is to stop 1e9 tok/s or negative seconds from reaching reports.
LIMITS: tuple[Limit, ...] = (
    Limit("_tok_s", 0, 1e6, "no edge device processes a million tokens/s; more is a unit slip"),
    Limit("_s", 0, 1e6, "one test taking more than ~11 days is a clock error"),
    Limit("_bytes", 0, 1e15, "a petabyte of model or RAM on one device is a unit slip"),
    Limit("_j_per_tok", 0, 1e6, "a megajoule per token is a unit slip"),
    Limit("_j", 0, 1e9, "a gigajoule for one test is a unit slip"),
    Limit("_w", 0, 1e5, "100 kW is a data-centre rack, not a device under test"),
    Limit("_mhz", 0, 1e5, "no CPU clocks at 100 GHz"),
    Limit("_c", -90, 150, "silicon does not operate outside this temperature range"),
    Limit("rep", 1, 1e6, "repetitions are 1-based"),
    Limit("threads", 1, 1e5, "at least one thread ran the test"),
    Limit("cpu_cores_logical", 1, 1e5, "a device has at least one core"),
    Limit("cpu_cores_physical", 0, 1e5, "0 means unknown"),
    Limit("n_prompt", 0, 1e8, "token counts are non-negative and far below 1e8"),
    Limit("n_gen_requested", 0, 1e8, "token counts are non-negative and far below 1e8"),
    Limit("n_generated", 0, 1e8, "token counts are non-negative and far below 1e8"),
    Limit("schema_version", SCHEMA_VERSION, SCHEMA_VERSION, "checked by the schema reader"),
    Limit("bytes_per_token", 1, 1e15, "a decode step reads at least one byte, never a petabyte"),
    Limit("mem_bandwidth_bytes_s", 1e6, 1e14, "read bandwidth between 1 MB/s and 100 TB/s; "
                                              "outside that it is a unit slip"),
    # Above 1 the weights were partly served from cache (a small model, a big last-level cache);
    # far above, bytes_per_token or the bandwidth is wrong (bits for bytes is 8x).
    Limit("decode_roofline_frac", 0, 5, "decode cannot run 5x faster than memory can be read"),
)

_NUMERIC_KINDS = ("int", "float")


def numeric_columns() -> tuple[str, ...]:
    return tuple(c for c in COLUMNS if schema.TYPES[c].split()[0] in _NUMERIC_KINDS)


def text_columns() -> tuple[str, ...]:
    return tuple(c for c in COLUMNS if schema.TYPES[c].split()[0] == "str")


def limit_for(column: str) -> Limit | None:
    exact = [lim for lim in LIMITS if lim.match == column]
    if exact:
        return exact[0]
    unit = re.sub(r"_(before|after|low|high)$", "", column)
    suffixes = [lim for lim in LIMITS if lim.match.startswith("_") and unit.endswith(lim.match)]
    return max(suffixes, key=lambda lim: len(lim.match)) if suffixes else None


@dataclass(frozen=True)
class RowError:
    """One problem, located as precisely as we can: CSV record line (header is 1) and column."""

    line: int | None
    column: str | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "column": self.column, "message": self.message}

    def one_line(self) -> str:
        where = " ".join(p for p in (f"line {self.line}" if self.line else "",
                                     f"column {self.column}" if self.column else "") if p)
        return f"{where}: {self.message}" if where else self.message


@dataclass(frozen=True)
class Checked:
    """Outcome of a check: the rows when valid, else the errors and the HTTP status that fits."""

    rows: tuple[Any, ...]  # ResultRow, or QualityRow for the quality endpoint
    errors: tuple[RowError, ...]
    status: int  # 200 valid, 400 not UTF-8, 413 too many rows, 422 invalid content
    error_count: int = 0


def plausibility_errors(rows: Sequence[ResultRow], first_line: int = 2) -> list[RowError]:
    """Range and format checks on rows the schema already accepted."""
    errors: list[RowError] = []
    numeric = numeric_columns()
    for offset, row in enumerate(rows):
        line = first_line + offset
        for column in numeric:
            value = getattr(row, column)
            if value is None:
                continue
            if isinstance(value, float) and not math.isfinite(value):
                errors.append(RowError(line, column, f"{value} is not a finite number"))
                continue
            lim = limit_for(column)
            if lim is not None and not lim.low <= value <= lim.high:
                errors.append(RowError(line, column, f"{value!r} is outside the plausible range "
                                                     f"[{lim.low:g}, {lim.high:g}] ({lim.why})"))
        errors.extend(_text_errors(row, line))
    return errors


def _text_errors(row: ResultRow, line: int) -> list[RowError]:
    errors: list[RowError] = []
    for column in ("started_utc", "finished_utc"):
        try:
            datetime.fromisoformat(getattr(row, column))
        except ValueError:
            errors.append(RowError(line, column, f"{getattr(row, column)!r} is not an RFC 3339 "
                                                 "timestamp"))
    if row.weights is not None and row.weights not in ("real", "synthetic"):
        errors.append(RowError(line, "weights", f"{row.weights!r} is neither real nor synthetic"))
    try:
        json.loads(row.ep_options)
    except ValueError:
        errors.append(RowError(line, "ep_options", "is not valid JSON"))
    if row.itl_samples_s:
        try:
            samples = [float(t) for t in row.itl_samples_s.split()]
        except ValueError:
            samples = [math.nan]
        if not all(math.isfinite(s) and 0 <= s <= 1e6 for s in samples):
            errors.append(RowError(line, "itl_samples_s", "must be space-separated non-negative "
                                                          "seconds"))
    return errors


def duplicate_key_errors(rows: Sequence[ResultRow], first_line: int = 2) -> list[RowError]:
    """(run_id, config_id, rep) identifies a row; two rows with the same key cannot both be true."""
    seen: dict[tuple[str, str, int], int] = {}
    errors: list[RowError] = []
    for offset, row in enumerate(rows):
        key = (row.run_id, row.config_id, row.rep)
        line = first_line + offset
        if key in seen:
            errors.append(RowError(line, "rep", f"duplicates line {seen[key]} (same run_id, "
                                                "config_id and rep)"))
        else:
            seen[key] = line
    return errors


def check_csv_bytes(data: bytes, *, max_rows: int) -> Checked:
    """Validates an uploaded CSV with the schema's reader, then plausibility and duplicate keys."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return failed(400, [RowError(line, None, "the upload is not UTF-8 text; send the results "
                                                  "CSV exactly as edgebench wrote it")])
    rows: list[ResultRow] = []
    with tempfile.TemporaryDirectory(prefix="edgebench-upload-") as tmp:
        path = Path(tmp) / "upload.csv"
        path.write_bytes(data)
        try:
            for row in read.iter_rows(path):
                rows.append(row)
                if len(rows) > max_rows:
                    return failed(413, [RowError(None, None, f"more than {max_rows} rows; split "
                                                              "the file and upload the parts")])
        except EdgebenchError as exc:
            message = str(exc).replace(str(path), "upload")
            return failed(422, _detailed_errors(text) or [RowError(None, None, message)])
    errors = plausibility_errors(rows) + duplicate_key_errors(rows)
    if errors:
        return failed(422, errors)
    return Checked(rows=tuple(rows), errors=(), status=200)


def failed(status: int, errors: list[RowError]) -> Checked:
    """The first errors in line order, their count, and no rows: all or nothing."""
    errors.sort(key=lambda e: (e.line or 0))
    return Checked(rows=(), errors=tuple(errors[:MAX_REPORTED_ERRORS]), status=status,
                   error_count=len(errors))


_LINE_PREFIX = re.compile(r"^line \d+: ")


def _detailed_errors(text: str) -> list[RowError]:
    """Every row-level error (the reader stops at the first), with the schema's own cell rules."""
    try:
        records = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        return [RowError(None, None, f"not valid CSV: {exc}")]
    if not records:
        return [RowError(None, None, "the upload is empty; it holds no results")]
    header = records[0]
    version = header_version(header)
    if version is None:
        missing = [c for c in COLUMNS if c not in header]
        extra = [c for c in header if c not in COLUMNS]
        doubled = sorted({c for c in header if header.count(c) > 1})
        errors = [RowError(1, c, f"missing column (results schema v{SCHEMA_VERSION})") for c in missing]
        errors += [RowError(1, c, f"unknown column (results schema v{SCHEMA_VERSION})") for c in extra]
        errors += [RowError(1, c, "column appears more than once") for c in doubled]
        return errors
    errors = []
    for lineno, cells in enumerate(records[1:], start=2):
        if len(cells) != len(header):
            errors.append(RowError(lineno, None, f"{len(cells)} cells for {len(header)} columns "
                                                 "(truncated or malformed row)"))
            continue
        try:
            values = migrate(dict(zip(header, cells)), lineno)
        except EdgebenchError as exc:
            errors.append(RowError(lineno, "schema_version", _LINE_PREFIX.sub("", str(exc))))
            continue
        for column in COLUMNS:
            try:
                schema.parse_cell(column, values[column], lineno)
            except EdgebenchError as exc:
                errors.append(RowError(lineno, column, _LINE_PREFIX.sub("", str(exc))))
    return errors
    for lineno, cells in enumerate(records[1:], start=2):
        if len(cells) != len(header):
            errors.append(RowError(lineno, None, f"{len(cells)} cells for {len(header)} columns "
                                                 "(truncated or malformed row)"))
            continue
        values = dict(zip(header, cells))
        for column in COLUMNS:
            try:
                value = schema.parse_cell(column, values[column], lineno)
            except EdgebenchError as exc:
                errors.append(RowError(lineno, column, _LINE_PREFIX.sub("", str(exc))))
                continue
            if column == "schema_version" and value != SCHEMA_VERSION:
                errors.append(RowError(lineno, column, f"schema_version {value} is not supported "
                                                       f"(this server reads v{SCHEMA_VERSION})"))
    return errors


def check_rows(rows: Iterable[ResultRow]) -> list[RowError]:
    """Plausibility and duplicate keys for rows read locally (the upload client's pre-flight)."""
    listed = list(rows)
    return plausibility_errors(listed) + duplicate_key_errors(listed)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formulas(row: ResultRow) -> ResultRow:
    """Prefixes text cells a spreadsheet would evaluate with a quote; numbers are left alone."""
    changes = {c: "'" + v for c in text_columns()
               if isinstance(v := getattr(row, c), str) and v.startswith(_FORMULA_START)}
    return dataclasses.replace(row, **changes) if changes else row
