"""Checked result rows held column by column, as the fast upload check makes them
(bench/serve/fastcheck.py) and the store inserts them (bench/serve/storage_ingest.py).

A ResultRow per row costs more to build and to take apart again than checking it did, so an
upload that passed the fast check stays a set of columns; a row is built only when something
asks for one (a conflict's message, a test). A batch is a Sequence[ResultRow] all the same, so
anything written for rows takes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import repeat
from typing import Any, Iterator, Sequence, overload

from bench.results.schema import COLUMNS, REQUIRED, TYPES, ResultRow

KEY_COLUMNS = ("run_id", "config_id", "rep")
# Text columns that may not be NULL: an empty cell there is an empty text, not a missing value
# (PostgreSQL's COPY is told so with FORCE_NOT_NULL).
NOT_NULL_TEXT = tuple(c for c in COLUMNS if c in REQUIRED and TYPES[c].startswith("str"))
# ... and the columns whose empty cell is a missing value, also when quoted ("" in CSV is an
# empty text to PostgreSQL, an empty cell to csv.reader): FORCE_NULL
OPTIONAL = tuple(c for c in COLUMNS if c not in REQUIRED)


@dataclass(frozen=True)
class CsvCopy:
    """The rows as CSV that PostgreSQL's COPY reads cell for cell as csv.reader did: the
    upload's own lines when its quoting is csv.writer's (bench/serve/fastcsv.py), else lines
    made from its cells, in `columns` order; every number in it is plain ASCII that PostgreSQL
    reads as the value the check read (or refuses: then the typed rows go in). No cell holds a
    line break, so its lines are its records (the fast check makes none otherwise)."""

    text: bytes  # UTF-8
    columns: tuple[str, ...]
    not_null: tuple[str, ...] = NOT_NULL_TEXT  # an empty cell is "" (FORCE_NOT_NULL)
    null: tuple[str, ...] = OPTIONAL  # an empty cell, quoted or not, is NULL (FORCE_NULL)

    def options(self) -> str:
        """COPY's options for this text."""
        def quoted(names: tuple[str, ...]) -> str:
            return ", ".join(f'"{n}"' for n in names)
        return ("FORMAT csv" + (f", FORCE_NOT_NULL ({quoted(self.not_null)})" if self.not_null
                                else "")
                + (f", FORCE_NULL ({quoted(self.null)})" if self.null else ""))


class ResultBatch(Sequence[ResultRow]):
    """Result rows as columns: `columns[name][i]` is row i's value of column `name`, typed as
    the ResultRow field is; `copy` is the same rows as COPY text, when the check made it."""

    def __init__(self, columns: dict[str, Sequence[Any]], copy: CsvCopy | None = None) -> None:
        self.columns = columns
        self.copy = copy
        self._n = len(columns[COLUMNS[0]])

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, index: int) -> ResultRow: ...

    @overload
    def __getitem__(self, index: slice) -> list[ResultRow]: ...

    def __getitem__(self, index: int | slice) -> ResultRow | list[ResultRow]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._n))]
        if not -self._n <= index < self._n:
            raise IndexError(index)
        return ResultRow(**dict(zip(COLUMNS, self.values(index % self._n))))

    def __iter__(self) -> Iterator[ResultRow]:
        return (self[i] for i in range(self._n))

    def values(self, index: int) -> tuple:
        """Row `index`'s values in COLUMNS order."""
        return tuple(self.columns[c][index] for c in COLUMNS)

    def records(self, *extra: Any) -> list[tuple]:
        """Every row's values in COLUMNS order followed by `extra` (the same for every row)."""
        return list(zip(*(self.columns[c] for c in COLUMNS), *(repeat(v, self._n) for v in extra)))

    def keys(self) -> list[tuple]:
        """(run_id, config_id, rep) of every row, in order."""
        return list(zip(*(self.columns[c] for c in KEY_COLUMNS)))

    def run_ids(self) -> list[str]:
        return sorted(set(self.columns["run_id"]))
