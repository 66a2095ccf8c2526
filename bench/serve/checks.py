"""Uploads checked as a stream: one pass over the bytes, record by record, so a 10 MB body
never becomes a 10 MB string, a list of every record or a list of every problem.

The schema's own cell rules decide what is valid (bench/results/schema.py `parse_cell`, the
results migrations, the quality reader's `check_row`); row-level plausibility and consistency
come from bench/results/validate.py and bench/serve/quality.py. Every problem is one line
located by CSV record (the header is line 1) and column; the first MAX_REPORTED_ERRORS are
kept and the rest only counted, and a run of blank lines is one problem. Rows are kept only
while no problem has been found (any problem rejects the whole upload).
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

from bench.errors import EdgebenchError
from bench.results import validate
from bench.results.inputs import QUALITY_KEY, quality_key
from bench.results.migrate import header_version, migrate
from bench.results.quality import (KIND as QUALITY_KIND, QUALITY_COLUMNS, QUALITY_REQUIRED,
                                   QUALITY_SCHEMA_VERSION, QUALITY_TYPES, QualityRow, check_row,
                                   is_quality_header)
from bench.results.schema import (COLUMNS, REQUIRED, SCHEMA_VERSION, TYPES, ResultRow,
                                  parse_cell)
from bench.results.validate import (CONTROL_CHARS, MAX_REPORTED_ERRORS, Checked, RowError,
                                   control_message, failed)
from bench.serve import fastcheck, quality as q

Texts = Callable[[list[str], int], list[str]]  # a record's cells -> its texts in column order


@dataclass(frozen=True)
class Kind:
    """What differs between result rows and quality rows; the pass itself is shared."""

    noun: str  # "results", "quality rows"
    columns: tuple[str, ...]
    types: dict[str, str]
    required: frozenset[str]
    make: Callable[..., Any]
    header_errors: Callable[[list[str]], list[RowError]]
    texts: Callable[[list[str]], Texts]  # built once per upload from its header
    version_column: str
    row_errors: Callable[[Any, int, datetime], list[RowError]]
    key: Callable[[Any], tuple]
    duplicate: Callable[[int], RowError]  # (line of the first copy) -> the error, line unset
    wrong_kind: Callable[[list[str]], str | None]


class ErrorLog:
    """The first `cap` problems and the count of all of them."""

    def __init__(self, cap: int = MAX_REPORTED_ERRORS) -> None:
        self.cap = cap
        self.first: list[RowError] = []
        self.count = 0

    def add(self, error: RowError) -> None:
        self.count += 1
        if len(self.first) < self.cap:
            self.first.append(error)

    def checked(self, status: int = 422) -> Checked:
        return failed(status, list(self.first), self.count)


def check_results_upload(data: bytes, *, max_rows: int, now: datetime | None = None,
                         copy_csv: bool = False) -> Checked:
    """A results CSV upload (any schema version this edgebench reads). A clean upload of the
    current schema passes column by column (bench/serve/fastcheck.py: its rows come as a
    ResultBatch, with COPY text for PostgreSQL when copy_csv); anything else, and every
    problem, goes through the row-by-row check here."""
    now = now or datetime.now(timezone.utc)
    batch = fastcheck.check_results(data, max_rows=max_rows, now=now, copy_csv=copy_csv)
    if batch is not None:
        return Checked(rows=batch, errors=(), status=200)
    return check_upload(data, RESULTS, max_rows=max_rows, now=now)


def check_quality_upload(data: bytes, *, max_rows: int, now: datetime | None = None) -> Checked:
    """A quality CSV upload (edgebench quality)."""
    return check_upload(data, QUALITY, max_rows=max_rows, now=now)


def check_upload(data: bytes, kind: Kind, *, max_rows: int,
                 now: datetime | None = None) -> Checked:
    """Status 200 with the rows, or 400 (not UTF-8), 413 (too many rows), 422 (content)."""
    stream = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", newline="")
    try:
        return _check(_Records(csv.reader(stream)), kind, max_rows,
                      now or datetime.now(timezone.utc))
    except UnicodeDecodeError:
        try:
            data.decode("utf-8")
            line = None
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
        return failed(400, [RowError(line, None, f"the upload is not UTF-8 text; send the "
                                                 f"{kind.noun} CSV exactly as edgebench wrote it")])


class _Records:
    """csv.reader with the record number (header 1) and csv.Error turned into a problem."""

    def __init__(self, reader: Iterator[list[str]]) -> None:
        self.reader = reader
        self.line = 0
        self.error: str | None = None

    def __iter__(self) -> Iterator[list[str]]:
        while True:
            try:
                cells = next(self.reader)
            except StopIteration:
                return
            except csv.Error as exc:
                self.error = f"not valid CSV: {exc}"
                return
            self.line += 1
            yield cells


def _check(records: _Records, kind: Kind, max_rows: int, now: datetime) -> Checked:
    log = ErrorLog()
    iterator = iter(records)
    header = next(iterator, None)
    if header is None:
        message = records.error or f"the upload is empty; it holds no {kind.noun}"
        return failed(422, [RowError(None, None, message)])
    wrong = kind.wrong_kind(header)
    if wrong:
        return failed(422, [RowError(1, None, wrong)])
    problems = kind.header_errors(header)
    if problems:
        return failed(422, problems)
    texts = kind.texts(header)
    converters = _converters(kind)
    rows: list[Any] = []
    seen: dict[tuple, int] = {}
    blank_from = None
    n_records = 0
    for cells in iterator:
        line = records.line
        if not cells:
            blank_from = line if blank_from is None else blank_from
            continue
        if blank_from is not None:
            log.add(_blank(blank_from, line - 1))
            blank_from = None
        n_records += 1
        if n_records > max_rows:
            return failed(413, [RowError(None, None, f"more than {max_rows} rows; split the file "
                                                     "and upload the parts")])
        row = _row(cells, line, len(header), kind, texts, converters, log, now)
        if row is None:
            rows.clear()
            continue
        key = kind.key(row)
        first = seen.setdefault(key, line)
        if first != line:
            dup = kind.duplicate(first)
            log.add(RowError(line, dup.column, dup.message))
        if log.count:
            rows.clear()
        else:
            rows.append(row)
    if blank_from is not None:
        log.add(_blank(blank_from, records.line))
    if records.error:
        log.add(RowError(records.line + 1, None, records.error))
    if log.count:
        return log.checked()
    if not rows:
        return failed(422, [RowError(None, None, f"the upload holds a header but no "
                                                 f"{kind.noun}")])
    return Checked(rows=tuple(rows), errors=(), status=200)


def _blank(first: int, last: int) -> RowError:
    if first == last:
        return RowError(first, None, f"line {first} is blank")
    return RowError(first, None, f"lines {first}-{last} are blank ({last - first + 1} lines)")


@dataclass(frozen=True)
class _Plan:
    """How a record's texts become a row's values, worked out once per upload: text columns
    pass through (an optional one empty becomes None), the others convert column group by
    column group (a comprehension per type instead of a function call per cell)."""

    names: tuple[str, ...]
    optional_text: tuple[tuple[int, str], ...]
    ints: tuple[int, ...]
    floats: tuple[int, ...]
    bools: tuple[int, ...]
    int_names: tuple[str, ...]
    float_names: tuple[str, ...]
    bool_names: tuple[str, ...]
    required_typed: tuple[int, ...]  # a non-text column that may not be empty


_BOOLS = {"true": True, "false": False}


def _converters(kind: Kind) -> _Plan:
    kinds = [kind.types[c].split()[0] for c in kind.columns]

    def where(type_name: str) -> tuple[int, ...]:
        return tuple(i for i, k in enumerate(kinds) if k == type_name)

    def names(type_name: str) -> tuple[str, ...]:
        return tuple(kind.columns[i] for i in where(type_name))
    return _Plan(
        names=kind.columns,
        optional_text=tuple((i, c) for i, (c, k) in enumerate(zip(kind.columns, kinds))
                            if k == "str" and c not in kind.required),
        ints=where("int"), floats=where("float"), bools=where("bool"), int_names=names("int"),
        float_names=names("float"), bool_names=names("bool"),
        required_typed=tuple(i for i, (c, k) in enumerate(zip(kind.columns, kinds))
                             if k != "str" and c in kind.required))


def _construct(cls: type, values: dict[str, Any]) -> Any:
    """A frozen dataclass instance from a complete set of field values. Its generated __init__
    sets each of ~80 fields through object.__setattr__, which costs more than checking the row;
    the instance made here is the same (no __post_init__, no slots)."""
    row = cls.__new__(cls)
    row.__dict__.update(values)
    return row


def _row(cells: list[str], line: int, width: int, kind: Kind, texts: Texts, plan: _Plan,
         log: ErrorLog, now: datetime) -> Any | None:
    """The record as a row, or None after logging what is wrong with it."""
    if len(cells) != width:
        log.add(RowError(line, None, f"{len(cells)} cells for {width} columns (truncated or "
                                     "malformed row)"))
        return None
    if CONTROL_CHARS.search("".join(cells)):
        for error in _control_errors(cells, line, kind, texts):
            log.add(error)
        return None
    try:
        values = texts(cells, line)
    except EdgebenchError as exc:
        log.add(RowError(line, kind.version_column, _strip_line(str(exc))))
        return None
    parsed: dict[str, Any] = dict(zip(plan.names, values))
    try:  # the fast path; any doubt goes to parse_cell, which words the problem
        if not all(values[i] for i in plan.required_typed):
            raise ValueError("empty")
        floats = [float(t) if (t := values[i]) else None for i in plan.floats]
        if not math.isfinite(sum(filter(None, floats))):  # an inf or nan among them
            raise ValueError("not finite")
        parsed.update(zip(plan.float_names, floats))
        parsed.update(zip(plan.int_names,
                          [int(t) if (t := values[i]) else None for i in plan.ints]))
        parsed.update(zip(plan.bool_names,
                          [_BOOLS[t] if (t := values[i]) else None for i in plan.bools]))
        parsed.update((name, None) for i, name in plan.optional_text if not values[i])
    except (ValueError, KeyError, OverflowError):
        bad = 0
        for name, text in zip(plan.names, values):
            try:
                parse_cell(name, text, line, kind.types, kind.required)
            except EdgebenchError as exc:
                log.add(RowError(line, name, _strip_line(str(exc))))
                bad += 1
        if bad:
            return None
        parsed = {name: parse_cell(name, text, line, kind.types, kind.required)
                  for name, text in zip(plan.names, values)}
    row = _construct(kind.make, parsed)
    problems = kind.row_errors(row, line, now)
    for problem in problems:
        log.add(problem)
    return None if problems else row


def _control_errors(cells: list[str], line: int, kind: Kind, texts: Texts) -> list[RowError]:
    """One problem per cell holding a control character (the column named when the record's
    header maps it)."""
    try:
        named = list(zip(kind.columns, texts(cells, line)))
    except EdgebenchError:
        named = [(None, cell) for cell in cells]  # type: ignore[misc]
    errors = []
    for column, text in named:
        found = CONTROL_CHARS.search(text)
        if found:
            errors.append(RowError(line, column, control_message(found.group())))
    return errors


def _column_errors(header: list[str], columns: tuple[str, ...], what: str) -> list[RowError]:
    """Missing, unknown and doubled columns, in linear time (a header may hold a million)."""
    counts = Counter(header)
    known = set(columns)
    errors = [RowError(1, c, f"missing column ({what})") for c in columns if c not in counts]
    errors += [RowError(1, c, f"unknown column ({what})") for c in header if c not in known]
    errors += [RowError(1, c, "column appears more than once")
               for c in sorted(c for c, n in counts.items() if n > 1)]
    return errors


def _strip_line(message: str) -> str:
    head, sep, rest = message.partition(": ")
    return rest if sep and head.startswith("line ") and head[5:].isdigit() else message


# ---------------------------------------------------------------------------- result rows
def _results_header_errors(header: list[str]) -> list[RowError]:
    if header_version(header) is not None:
        return []
    return _column_errors(header, COLUMNS, f"results schema v{SCHEMA_VERSION}")


def _results_texts(header: list[str]) -> Texts:
    version = header_version(header)
    order = [header.index(c) for c in COLUMNS] if version == SCHEMA_VERSION else None
    at = header.index("schema_version")
    current = str(SCHEMA_VERSION)

    def texts(cells: list[str], line: int) -> list[str]:
        if order is not None and cells[at] == current:
            return [cells[i] for i in order]
        values = migrate(dict(zip(header, cells)), line)
        return [values[c] for c in COLUMNS]
    return texts


def _wrong_for_results(header: list[str]) -> str | None:
    if is_quality_header(header):
        return "this is a quality CSV (edgebench quality); POST it to /api/quality"
    return None


RESULTS = Kind(
    noun="results", columns=COLUMNS, types=TYPES, required=REQUIRED, make=ResultRow,
    header_errors=_results_header_errors, texts=_results_texts, version_column="schema_version",
    row_errors=validate.row_errors, key=lambda row: (row.run_id, row.config_id, row.rep),
    duplicate=lambda first: RowError(None, "rep", f"duplicates line {first} (same run_id, "
                                                  "config_id and rep)"),
    wrong_kind=_wrong_for_results)


# ---------------------------------------------------------------------------- quality rows
def _quality_header_errors(header: list[str]) -> list[RowError]:
    if set(header) == set(QUALITY_COLUMNS) and len(header) == len(QUALITY_COLUMNS):
        return []
    return _column_errors(header, QUALITY_COLUMNS, QUALITY_KIND)


def _quality_texts(header: list[str]) -> Texts:
    order = [header.index(c) for c in QUALITY_COLUMNS]
    at = header.index("quality_schema_version")
    current = str(QUALITY_SCHEMA_VERSION)

    def texts(cells: list[str], line: int) -> list[str]:
        if cells[at] != current:
            raise EdgebenchError(f"line {line}: quality schema version {cells[at]!r}; this "
                                 f"server reads {QUALITY_SCHEMA_VERSION}")
        return [cells[i] for i in order]
    return texts


def _quality_row_errors(row: QualityRow, line: int, now: datetime) -> list[RowError]:
    try:
        check_row(row, f"line {line}")
    except EdgebenchError as exc:
        message = _strip_line(str(exc))
        first = message.split(" ", 1)[0]
        return [RowError(line, first if first in QUALITY_COLUMNS else None, message)]
    return q.row_errors(row, line, now)


def _wrong_for_quality(header: list[str]) -> str | None:
    if "schema_version" in header and not is_quality_header(header):
        return f"this is a results CSV, not an {QUALITY_KIND} file; POST it to /api/results"
    return None


QUALITY = Kind(
    noun="quality rows", columns=QUALITY_COLUMNS, types=QUALITY_TYPES, required=QUALITY_REQUIRED,
    make=QualityRow, header_errors=_quality_header_errors, texts=_quality_texts,
    version_column="quality_schema_version", row_errors=_quality_row_errors, key=quality_key,
    duplicate=lambda first: RowError(None, None, f"duplicates line {first} (same "
                                                 f"{', '.join(QUALITY_KEY)})"),
    wrong_kind=_wrong_for_quality)
