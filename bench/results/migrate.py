"""Older schema versions, upgraded on read: results files are immutable records written by
whatever edgebench ran on the device, so every reader (compare, report, the upload service)
accepts every version the project has had, with the newer columns empty."""

from __future__ import annotations

from typing import Callable

from bench.errors import EdgebenchError
from bench.results.schema import (ADDED_IN_V2, ADDED_IN_V3, COLUMNS, COLUMNS_BY_VERSION,
                                  SCHEMA_VERSION)

Migration = Callable[[dict[str, str]], dict[str, str]]


def v1_to_v2(cells: dict[str, str]) -> dict[str, str]:
    """v2 adds the VM flag, an estimate's bounds, the weights' origin and the roofline columns;
    a v1 row knows none of them."""
    return {**cells, **{c: "" for c in ADDED_IN_V2}}


def v2_to_v3(cells: dict[str, str]) -> dict[str, str]:
    """v3 adds the cloud provider; a v2 row's VM is of unknown kind."""
    return {**cells, **{c: "" for c in ADDED_IN_V3}}


# MIGRATIONS[n] turns the raw cells of a schema vN row into v(N+1) cells.
MIGRATIONS: dict[int, Migration] = {1: v1_to_v2, 2: v2_to_v3}


def header_version(header: list[str]) -> int | None:
    """The schema version whose columns the header holds (in any order), or None."""
    if len(set(header)) != len(header):
        return None
    for version, columns in sorted(COLUMNS_BY_VERSION.items(), reverse=True):
        if set(header) == set(columns):
            return version
    return None


def header_problem(header: list[str]) -> str:
    """Why a header fits no known version, worded against the current one."""
    doubled = sorted({c for c in header if header.count(c) > 1})
    missing = [c for c in COLUMNS if c not in header]
    extra = [c for c in header if c not in COLUMNS]
    parts = [f"missing columns {', '.join(missing)}"] if missing else []
    parts += [f"unknown columns {', '.join(extra)}"] if extra else []
    parts += [f"columns appearing twice {', '.join(doubled)}"] if doubled else []
    return f"does not match results schema v{SCHEMA_VERSION}: " + "; ".join(parts)


def migrate(cells: dict[str, str], line: int) -> dict[str, str]:
    """Raw cells of any known version -> current-version cells; one-line errors otherwise."""
    text = cells.get("schema_version", "")
    try:
        version = int(text)
    except ValueError:
        raise EdgebenchError(f"line {line}: schema_version {text!r} is not a whole number") from None
    if version > SCHEMA_VERSION:
        raise EdgebenchError(f"line {line}: schema v{version} was written by a newer edgebench "
                             f"(this one reads up to v{SCHEMA_VERSION}); upgrade edgebench")
    start = version
    while version < SCHEMA_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise EdgebenchError(f"line {line}: no migration from schema v{version} to "
                                 f"v{version + 1}; this edgebench reads v{SCHEMA_VERSION}")
        cells = step(dict(cells))
        version += 1
        cells["schema_version"] = str(version)
    if set(cells) != set(COLUMNS):
        wrong = sorted(set(cells) ^ set(COLUMNS))
        raise EdgebenchError(f"line {line}: a schema v{start} row does not have the columns of "
                             f"v{start} ({', '.join(wrong)} differ)")
    return cells
