"""The fast path of a results upload: a clean upload of the current schema, checked a column
at a time instead of a row at a time.

An upload as edgebench writes it (schema v3, no blank line, no control character, numbers in
plain ASCII) is split into columns (bench/serve/fastcsv.py; csv.reader when its quoting is not
csv.writer's) and checked in chunks of records: each column typed with map() in C, then the
same rules as bench/results/validate.py `row_errors`, expressed over columns: a column's min
and max against its plausible range, each distinct ep_options once, all ITL samples of the
chunk matched by one regular expression (parsed one by one only when it does not match), the
consistency rules as loops over zipped columns. The answer is a ResultBatch
(bench/serve/batch.py), not a ResultRow per row; for PostgreSQL it carries the upload's own
lines as COPY text.

It only ever says yes: at the first doubt (any problem, an older schema, an odd spelling of a
number, a blank line) it returns None and the row-by-row check (bench/serve/checks.py) runs on
the same bytes and words the problems. So an upload it accepts is one the row-by-row check
accepts with the same values (tests/test_serve_fastcheck.py compares the two on many edited
uploads), and a rejected upload gets the messages it always got.
"""

from __future__ import annotations

import csv
import io
import math
import re
from datetime import datetime
from functools import cache
from itertools import islice
from operator import gt, lt
from typing import Any, Iterator, Sequence

from bench.results import validate
from bench.results.migrate import header_version
from bench.results.schema import COLUMNS, REQUIRED, SCHEMA_VERSION, TYPES
from bench.results.validate import (ENERGY_VALUES, ESTIMATE_ONLY, FUTURE_SKEW, RATE_REL_TOL,
                                    json_object_error, parse_utc)
from bench.serve.batch import KEY_COLUMNS, CsvCopy, ResultBatch
from bench.serve.fastcsv import split_columns

CHUNK_RECORDS = 1000  # records checked together: columns long enough to be cheap, chunks short
# C0 controls but tab and newline, and DEL (validate.CONTROL_CHARS): in UTF-8 these bytes are
# only ever those characters, so one search of the body covers every cell
_NOT_CONTROL = bytes(b for b in range(256) if not (b < 9 or 11 <= b < 32 or b == 127))
_NUMBER_BYTES = b"0123456789.eE+-"
_NONE_IF_EMPTY = {"": None}
_KIND = {c: TYPES[c].split()[0] for c in COLUMNS}
_BOOLS = {"true": True, "false": False}
_CONVERT = {"int": int, "float": float, "bool": _BOOLS.__getitem__}
# Samples as edgebench writes them: up to 6 digits, an optional fraction and an optional
# negative exponent, one space apart; each is a float in [0, 1e6) (atomic groups: one pass)
_SAMPLE = r"(?>[0-9]{1,6}+(?:\.[0-9]++)?+(?:e-[0-9]++)?+)"
_PLAIN_SAMPLES = re.compile(rf"(?>{_SAMPLE} )*+{_SAMPLE}")
_DOUBT = (UnicodeDecodeError, csv.Error, ValueError, TypeError, KeyError, OverflowError,
          ZeroDivisionError)
_SCHEMA = str(SCHEMA_VERSION)


def check_results(data: bytes, *, max_rows: int, now: datetime,
                  copy_csv: bool = False) -> ResultBatch | None:
    """The upload's rows when it passes every check, else None (run the row-by-row check).
    copy_csv also keeps the rows as COPY text, for a PostgreSQL store."""
    if data.translate(None, _NOT_CONTROL):
        return None  # a control character: the row-by-row check words it
    # "\." alone on a line ends COPY's data; such uploads go in as typed values instead
    copy_csv = copy_csv and b"\\." not in data
    try:
        split = split_columns(data.decode("utf-8"), max_rows)
        if split is not None:
            header, columns, breaks = split
            batch = _check(header, _sliced(columns), max_rows, now, False)
            if batch is not None and copy_csv and not breaks:  # its lines are what COPY reads
                lines = data[data.index(b"\n") + 1:]
                batch.copy = CsvCopy(lines if lines.endswith(b"\n") else lines + b"\n",
                                     tuple(header))
            return batch
        # quotes where csv.writer puts none: csv.reader reads it
        reader = csv.reader(io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", newline=""))
        header = next(reader, None)
        return None if header is None else _check(header, _read(reader, len(header)),
                                                  max_rows, now, copy_csv)
    except _DOUBT:
        return None


def _sliced(columns: list[list[str]]) -> Iterator[list[Sequence[str]] | None]:
    n = len(columns[0])
    for start in range(0, n, CHUNK_RECORDS):
        yield [column[start:start + CHUNK_RECORDS] for column in columns]


def _read(reader: Iterator[list[str]], width: int) -> Iterator[list[Sequence[str]] | None]:
    """Chunks of records as columns; None for a blank or ragged record."""
    while True:
        chunk = list(islice(reader, CHUNK_RECORDS))
        if not chunk:
            return
        if not all(chunk) or set(map(len, chunk)) != {width}:
            yield None
            return
        yield list(zip(*chunk))


def _check(header: list[str], chunks: Iterator[list[Sequence[str]] | None], max_rows: int,
           now: datetime, copy_csv: bool) -> ResultBatch | None:
    if header_version(header) != SCHEMA_VERSION:
        return None
    where = {name: i for i, name in enumerate(header)}
    latest = now + FUTURE_SKEW
    columns: dict[str, list[Any]] = {c: [] for c in COLUMNS}
    seen: set[tuple] = set()
    copy_parts: list[str] = []
    n = 0
    for cells in chunks:
        if cells is None:
            return None
        start, n = n, n + len(cells[0])
        if n > max_rows:
            return None
        raw = {name: cells[where[name]] for name in COLUMNS}
        if set(raw["schema_version"]) != {_SCHEMA}:
            return None  # an older row (migrated by the row-by-row check) or a wrong version
        typed = _typed(raw, n - start)
        if typed is None or not _plausible(typed, latest):
            return None
        seen.update(zip(*(typed[c] for c in KEY_COLUMNS)))
        if len(seen) != n:
            return None  # a key repeated within the upload
        for name in COLUMNS:
            columns[name].extend(typed[name])
        if copy_csv:
            text = _copy_text(cells)
            if text is None:
                copy_csv, copy_parts = False, []
            else:
                copy_parts.append(text)
    if n == 0:
        return None
    copy = CsvCopy("".join(copy_parts).encode(), tuple(header)) if copy_csv else None
    return ResultBatch(columns, copy)


def _copy_text(cells: list[Sequence[str]]) -> str | None:
    """The records as CSV lines for COPY, cells in header order; None when a cell holds a line
    break (the text's lines would not be its records: the typed rows go in instead).
    csv.writer scans every character of every cell; here a column is scanned once and only a
    column holding a comma or quote is quoted (each non-empty cell: an empty one stays
    unquoted, which COPY reads as NULL, or as "" under FORCE_NOT_NULL)."""
    columns: list[Any] = []
    for col in cells:
        joined = "".join(col)
        if "\n" in joined:
            return None
        if "," in joined or '"' in joined:
            col = ['"' + t.replace('"', '""') + '"' if t else "" for t in col]
        columns.append(col)
    return "\n".join(map(",".join, zip(*columns))) + "\n"


class _Typed(dict):
    """Column name -> values; `present[name]` holds a numeric column's non-empty values."""

    present: dict[str, Sequence[Any]]


def _typed(raw: dict[str, Sequence[str]], n: int) -> _Typed | None:
    """Each column typed as the row-by-row check types it (schema.parse_cell's rules), or None
    when a cell would fail there or is a number PostgreSQL might read otherwise. map() and
    dict lookups keep the per-cell work in C: a column with gaps converts its filled cells
    and looks every cell up in {text: value}, where "" finds nothing, i.e. None."""
    typed = _Typed()
    typed.present = {}
    numbers: list[str] = []
    for name in COLUMNS:
        col, kind = raw[name], _KIND[name]
        full = all(col)
        if kind == "str":
            if full or name in REQUIRED:
                typed[name] = col  # a required text may be empty: it stays ""
            else:
                typed[name] = list(map(_NONE_IF_EMPTY.get, col, col)) if any(col) else [None] * n
            continue
        convert = _CONVERT[kind]
        if full:
            present: Sequence[Any] = list(map(convert, col))
            typed[name] = present
        elif name in REQUIRED:
            return None
        elif not any(col):
            typed[name] = [None] * n
            continue
        else:
            filled = list(filter(None, col))
            present = list(map(convert, filled))
            typed[name] = list(map(dict(zip(filled, present)).get, col))
        if kind != "bool":
            typed.present[name] = present
            numbers.append("".join(col))
    try:
        plain = "".join(numbers).encode("ascii")
    except UnicodeEncodeError:
        return None
    if plain.translate(None, _NUMBER_BYTES):
        return None  # "1_000", " 5", "inf": Python reads them, PostgreSQL may not
    return typed


@cache
def _limits() -> tuple[tuple[str, float, float], ...]:
    return tuple((c, lim.low, lim.high) for c, lim in validate.numeric_limits())


def _plausible(c: _Typed, latest: datetime) -> bool:
    """validate.row_errors finds nothing in any row of these columns."""
    for name, low, high in _limits():
        values = c.present.get(name)
        if not values:
            continue
        if _KIND[name] == "float" and not math.isfinite(sum(values)):
            return False  # inf or nan (sums of plausible values are far from overflowing)
        if min(values) < low or max(values) > high:
            return False
    return _texts_ok(c) and _times_ok(c, latest) and _consistent(c) and _energy_ok(c)


def _texts_ok(c: _Typed) -> bool:
    if not set(c["weights"]) <= {None, "real", "synthetic"}:
        return False
    if any(json_object_error(text) for text in set(c["ep_options"])):
        return False
    itl = " ".join(filter(None, c["itl_samples_s"]))
    if not itl:
        return True
    if _PLAIN_SAMPLES.fullmatch(itl):
        return True  # the chunk's samples (the rows', in order) are each a float in [0, 1e6)
    samples = list(map(float, itl.split()))
    return not samples or (min(samples) >= 0 and max(samples) <= 1e6
                           and math.isfinite(sum(samples)))


def _times_ok(c: _Typed, latest: datetime) -> bool:
    started = list(map(parse_utc, c["started_utc"]))
    finished = list(map(parse_utc, c["finished_utc"]))
    return (max(started) <= latest and max(finished) <= latest
            and not any(map(lt, finished, started)))


def _consistent(c: _Typed) -> bool:
    """validate.consistency_errors but the energy part, over columns."""
    low_tol, high_tol = 1 - RATE_REL_TOL, 1 + RATE_REL_TOL
    for value, span, n_prompt in zip(c["prefill_tok_s"], c["prefill_s"], c["n_prompt"]):
        if value is not None and (not span or not n_prompt / span * low_tol <= value
                                  <= n_prompt / span * high_tol):
            return False
    for value, span, n_gen in zip(c["decode_tok_s"], c["decode_s"], c["n_generated"]):
        if value is not None and (not span or not (n_gen - 1) / span * low_tol <= value
                                  <= n_gen / span * high_tol):
            return False
    if any(map(gt, c["n_generated"], c["n_gen_requested"])):
        return False
    for a, b in (("itl_p50_s", "itl_p90_s"), ("itl_p90_s", "itl_p99_s")):
        if any(lo is not None and hi is not None and lo > hi for lo, hi in zip(c[a], c[b])):
            return False
    return True


def _energy_ok(c: _Typed) -> bool:
    """validate._energy_errors over columns. A row with energy_method none holds no energy
    value once it passes the first loop, so the per-phase rules hold for it trivially."""
    methods = c["energy_method"]
    kinds = set(methods)
    if "none" in kinds:
        measured = [c[name] for name in ENERGY_VALUES + ESTIMATE_ONLY]
        width = len(measured)
        for method, *values in zip(methods, *measured):
            if method == "none" and values.count(None) != width:
                return False
    if any(not m.startswith("estimate") and m != "none" for m in kinds):
        bounds = [c[name] for name in ESTIMATE_ONLY]
        for method, warning, *values in zip(methods, c["energy_warning"], *bounds):
            if method == "none" or method.startswith("estimate"):
                continue
            if values.count(None) != len(values) or (warning and "estimate" in warning.lower()):
                return False
    low_tol, high_tol = 1 - 1e-6, 1 + 1e-6
    for phase in ("prefill", "decode"):
        tokens = c["n_prompt"] if phase == "prefill" else [g - 1 for g in c["n_generated"]]
        for per_tok, low, high, gross, net, n in zip(
                c[f"{phase}_j_per_tok"], c[f"{phase}_j_per_tok_low"],
                c[f"{phase}_j_per_tok_high"], c[f"{phase}_energy_j"],
                c[f"{phase}_energy_net_j"], tokens):
            if per_tok is not None:
                if low is not None and high is not None and not (
                        low * low_tol <= per_tok <= high * high_tol):
                    return False
                if gross is not None and n > 0 and not math.isclose(
                        per_tok, gross / n, rel_tol=1e-3, abs_tol=1e-12):
                    return False
            if gross is not None and net is not None and net > gross + 1e-9 * abs(gross):
                return False
    return True
