"""Result rows as one DuckDB table, so `edgebench report` reads and aggregates a million rows
column-wise instead of building a Python object per row.

CSV files are read by DuckDB under the results schema's own rules (bench/results/schema.py):
every numeric cell parses and is finite, integers are plain digits, booleans `true`/`false`,
required cells are present and the schema version is the current one. A file that does not
pass whole (an older schema version, a malformed row, a cell DuckDB reads differently) is read
again by the strict reader (bench/results/read.py): its rows are migrated, or its error names
the file and the line exactly as before. Rows given as objects (tests) or as value tuples (the
upload server's store) go in column by column. duckdb is imported only here, inside functions:
`edgebench --help` stays light.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from bench.errors import EdgebenchError
from bench.results import read
from bench.results.migrate import header_version
from bench.results.schema import REQUIRED, SCHEMA_VERSION, TYPES, ResultRow

if TYPE_CHECKING:
    import duckdb

# What the report reads of a row: medians, repetition series, configurations and their pricing.
REPORT_COLUMNS = (
    "run_id", "test", "config_id", "rep", "model_id", "variant", "backend", "ep", "threads",
    "n_prompt", "prefill_tok_s", "decode_tok_s", "ttft_s", "itl_p90_s", "peak_rss_bytes",
    "prefill_j_per_tok", "decode_j_per_tok", "prefill_j_per_tok_low", "prefill_j_per_tok_high",
    "decode_j_per_tok_low", "decode_j_per_tok_high", "energy_method", "energy_basis",
    "host_fingerprint", "cpu_model", "cpu_arch", "cpu_cores_logical", "os_name", "accelerators",
    "virtualized", "cloud_provider", "bytes_per_token", "decode_roofline_frac")
_SQL_TYPES = {"int": "BIGINT", "float": "DOUBLE", "bool": "BOOLEAN", "str": "VARCHAR"}
ROWS = "rows"  # the view every aggregate reads; `ord` is the rows' order in the inputs
_GLOB = re.compile(r"[*?\[\]{}]")


def kind(column: str) -> str:
    """'int', 'float', 'bool' or 'str': the schema's declared type without `| None`."""
    return TYPES[column].split()[0]


@dataclass(frozen=True)
class RowTable:
    """Result rows in DuckDB view ROWS (REPORT_COLUMNS plus `ord`), duplicates already dropped."""

    con: "duckdb.DuckDBPyConnection"
    n_rows: int
    duplicates_dropped: int = 0


def connect() -> "duckdb.DuckDBPyConnection":
    try:
        import duckdb
    except ImportError:
        raise EdgebenchError("edgebench report needs duckdb: pip install 'edgebench[report]'") from None
    con = duckdb.connect(":memory:")
    con.execute("SET enable_progress_bar = false")  # it would print into the command's output
    return con


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _create_raw(con: "duckdb.DuckDBPyConnection") -> None:
    cols = ", ".join(f"{c} {_SQL_TYPES[kind(c)]}" for c in REPORT_COLUMNS)
    con.execute(f"CREATE TABLE raw (file_no BIGINT, {cols}, ok BOOLEAN)")


def _cell_checks(columns: Sequence[str]) -> str:
    """TRUE only when every cell of a row (all read as text) is one the strict reader accepts,
    with the value the cast gives: DuckDB's casts accept a few forms Python's int() and float()
    refuse ('1.5' or '1e3' as an integer, a '+-' sign), so those send the file to that reader."""
    checks = [f"schema_version = {_lit(str(SCHEMA_VERSION))}"]
    for c in columns:
        k, q = kind(c), _q(c)
        if k == "int":  # plain digits only: '+5', '05' or ' 5' go to the strict reader
            checks.append(f"({q} IS NULL OR TRY_CAST({q} AS BIGINT)::VARCHAR = {q})")
        elif k == "float":
            checks.append(f"({q} IS NULL OR (isfinite(TRY_CAST({q} AS DOUBLE)) "
                          f"AND NOT contains({q}, '+-')))")
        elif k == "bool":
            checks.append(f"({q} IS NULL OR {q} IN ('true', 'false'))")
        if c in REQUIRED and k != "str":
            checks.append(f"{q} IS NOT NULL")
    return "coalesce(" + " AND ".join(checks) + ", false)"


def _typed(column: str) -> str:
    """A checked CSV cell as the strict reader returns it (required text: '' rather than None)."""
    k, q = kind(column), _q(column)
    if k in ("int", "float"):
        return f"TRY_CAST({q} AS {_SQL_TYPES[k]})"
    if k == "bool":
        return f"{q} = 'true'"
    if k == "str" and column in REQUIRED:
        return f"coalesce({q}, '')"
    return q


def _read_csvs(con: "duckdb.DuckDBPyConnection", files: Sequence[Path], numbers: Sequence[int],
               header: tuple[str, ...]) -> None:
    """One DuckDB scan over files sharing a header (their positions in the inputs: `numbers`),
    every cell read as text and checked (_cell_checks) in the same pass."""
    columns = "{" + ", ".join(f"{_lit(c)}: 'VARCHAR'" for c in header) + "}"
    paths = "[" + ", ".join(_lit(os.path.abspath(f)) for f in files) + "]"  # never '~/...'
    source = (f"read_csv({paths}, header = true, auto_detect = false, columns = {columns}, "
              "delim = ',', quote = '\"', escape = '\"', strict_mode = true, null_padding = false)")
    select = ", ".join(_typed(c) for c in REPORT_COLUMNS)
    file_no = f"{list(numbers)}[file_index::BIGINT + 1]"
    con.execute(f"INSERT INTO raw SELECT {file_no}, {select}, {_cell_checks(header)} FROM {source}")


def _header(path: Path) -> tuple[str, ...] | None:
    """The header when it is exactly the current schema's columns (in any order), else None."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            header = next(csv.reader(fh), None)
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    if header is None or header_version(header) != SCHEMA_VERSION:
        return None
    return tuple(header)


def _insert_rows(con: "duckdb.DuckDBPyConnection", rows: Sequence[ResultRow], file_no: int) -> None:
    _insert_columns(con, {c: [getattr(r, c) for r in rows] for c in REPORT_COLUMNS}, file_no)


def _insert_columns(con: "duckdb.DuckDBPyConnection", data: dict[str, Sequence[Any]],
                    file_no: int) -> None:
    """REPORT_COLUMNS' values by name, as numpy arrays (numpy reads None as NaN in a float
    column, and NaN never occurs in a valid row, so it stands for None; a driver's Decimal or
    int there becomes float)."""
    import numpy as np

    arrays = {c: np.array(data[c], dtype=np.float64 if kind(c) == "float" else object)
              for c in REPORT_COLUMNS}
    con.register("given", arrays)
    select = ", ".join(f"CAST({_q(c)} AS {_SQL_TYPES[kind(c)]})" for c in REPORT_COLUMNS)
    con.execute(f"INSERT INTO raw SELECT {int(file_no)}, {select}, true FROM given")
    con.unregister("given")


def _finish(con: "duckdb.DuckDBPyConnection", dedupe: bool) -> RowTable:
    """ROWS over raw in input order (rowids stay put under DELETE); with `dedupe`, a repetition
    (run_id, config_id, rep) seen twice counts once, the first copy kept, as
    bench.results.load.dedupe does."""
    (total,) = con.execute("SELECT count(*) FROM raw").fetchone()
    unique = total
    if dedupe:
        (unique,) = con.execute("SELECT count(*) FROM (SELECT 1 FROM raw GROUP BY run_id, "
                                "config_id, rep)").fetchone()
    if unique < total:
        con.execute("DELETE FROM raw WHERE rowid IN (SELECT rowid FROM raw QUALIFY row_number() "
                    "OVER (PARTITION BY run_id, config_id, rep ORDER BY file_no, rowid) > 1)")
    cols = ", ".join(REPORT_COLUMNS)
    con.execute(f"CREATE VIEW {ROWS} AS SELECT (file_no << 40) + rowid AS ord, {cols} FROM raw")
    return RowTable(con, unique, total - unique)


def table_from_files(files: Sequence[Path]) -> RowTable:
    """Every row of the results CSVs `files`, in order, duplicates once (see the module doc)."""
    con = connect()
    import duckdb

    # what a file DuckDB cannot read under our rules raises; anything else is a bug, not data
    unreadable = (duckdb.InvalidInputException, duckdb.ConversionException, duckdb.IOException,
                  duckdb.OutOfRangeException)
    _create_raw(con)
    by_header: dict[tuple[str, ...], list[int]] = {}
    strict: list[int] = []
    for i, f in enumerate(files):
        # DuckDB expands glob characters in a path: such a name goes to the strict reader
        header = None if _GLOB.search(str(f)) else _header(f)
        (strict if header is None else by_header.setdefault(header, [])).append(i)
    for header, group in by_header.items():
        try:
            _read_csvs(con, [files[i] for i in group], group, header)
        except unreadable:  # which file? each alone, then the strict reader
            for i in group:
                try:
                    _read_csvs(con, [files[i]], [i], header)
                except unreadable:
                    strict.append(i)
    failed = [r[0] for r in con.execute("SELECT DISTINCT file_no FROM raw WHERE NOT ok").fetchall()]
    if failed:
        con.execute("DELETE FROM raw WHERE file_no IN (SELECT * FROM unnest(?))", [failed])
        strict += failed
    for i in sorted(strict):
        rows = read.read_rows(files[i])  # raises the reader's one-line error for a malformed file
        if rows:
            _insert_rows(con, rows, i)
    return _finish(con, dedupe=True)


def table_from_chunks(chunks: Iterable[Sequence[Sequence[Any]]]) -> RowTable:
    """Rows as value tuples in REPORT_COLUMNS order, chunk by chunk, already deduplicated:
    the upload server's store read column-wise, without a ResultRow per row."""
    con = connect()
    _create_raw(con)
    for chunk in chunks:
        if chunk:
            _insert_columns(con, dict(zip(REPORT_COLUMNS, zip(*chunk))), 0)
    return _finish(con, dedupe=False)


def table_from_rows(rows: Sequence[ResultRow]) -> RowTable:
    """Rows already read and deduplicated (the upload server's store, tests), in their order."""
    con = connect()
    _create_raw(con)
    if rows:
        _insert_rows(con, rows, 0)
    return _finish(con, dedupe=False)
