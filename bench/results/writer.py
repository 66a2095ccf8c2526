"""Writing result rows: an append-only, fsync-per-row CSV file, and CSV text for exports.

Rows end in "\n". Python's csv module quotes a cell only for the delimiter, the quote and the
characters of the line terminator, so a cell holding a bare "\r" would go out unquoted and
split the row in every reader (and hide what follows it from the formula check of exports);
`_RowWriter` quotes every cell of such a row.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

from bench.errors import EdgebenchError
from bench.results.schema import COLUMNS, SCHEMA_VERSION, format_cell


class _RowWriter:
    """csv.writer for "\n"-terminated rows that also quotes a cell holding "\r"."""

    def __init__(self, stream: Any) -> None:
        self._plain = csv.writer(stream, lineterminator="\n")
        self._quoted = csv.writer(stream, lineterminator="\n", quoting=csv.QUOTE_ALL)

    def writerow(self, cells: Sequence[str]) -> None:
        if any("\r" in cell for cell in cells):
            self._quoted.writerow(cells)
        else:
            self._plain.writerow(cells)


def format_rows_csv(rows: Iterable[Any], columns: Sequence[str] = COLUMNS,
                    header: bool = True) -> str:
    """CSV text of rows; `columns` serves other row kinds (quality rows); without the header
    for the later chunks of a streamed export."""
    buf = io.StringIO()
    writer = _RowWriter(buf)
    if header:
        writer.writerow(columns)
    for row in rows:
        writer.writerow([format_cell(getattr(row, c)) for c in columns])
    return buf.getvalue()


class ResultWriter:
    """Appends rows to a CSV and flushes each one to disk, so an interrupted run loses nothing.

    An existing file is only ever appended to, and only when its header is exactly ours:
    results files are immutable records. `columns` and `kind` serve other row kinds (quality
    rows) with the same guarantees.
    """

    @staticmethod
    def check(path: Path, columns: Sequence[str] = COLUMNS,
              kind: str = f"edgebench schema v{SCHEMA_VERSION} results") -> bool:
        """Fails now, before anything is measured, if `path` cannot take our rows; True if new."""
        if not path.parent.is_dir():
            raise EdgebenchError(
                f"cannot write results to {path}: directory {path.parent} does not exist "
                "(create it or pass another --output)"
            )
        new = not path.exists() or path.stat().st_size == 0
        if not new and _read_header(path) != list(columns):
            raise EdgebenchError(
                f"{path} is not an {kind} file "
                "(its header differs); choose a new --output file, nothing was written"
            )
        return new

    def __init__(self, path: Path, columns: Sequence[str] = COLUMNS,
                 kind: str = f"edgebench schema v{SCHEMA_VERSION} results") -> None:
        self.path = path
        self._columns = tuple(columns)
        new = self.check(path, self._columns, kind)
        try:
            self._file = open(path, "a", newline="", encoding="utf-8")
        except OSError as exc:
            raise EdgebenchError(f"cannot write results to {path}: {exc.strerror}") from None
        self._writer = _RowWriter(self._file)
        if new:
            self._writer.writerow(self._columns)
            self._sync()

    def _sync(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def write(self, row: Any) -> None:
        self._writer.writerow([format_cell(getattr(row, c)) for c in self._columns])
        self._sync()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "ResultWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_header(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8", errors="replace") as fh:
        return next(csv.reader(fh), [])


