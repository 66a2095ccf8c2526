"""Results schema v1: one tidy row per test x repetition, and its CSV reader and writer.

Rows hold only what was measured on the device (plus provenance). Prices, tariffs and carbon are
applied later by the cost model, because they change while measurements do not.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Iterable, Iterator

from bench.errors import EdgebenchError

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ResultRow:
    """One repetition of one test. Field order is the CSV column order; None is an empty cell."""

    # identity and provenance
    schema_version: int
    run_id: str
    test: str  # pp512, tg128, pp512+tg128, chat
    config_id: str  # same for every repetition of one configuration within a run
    rep: int  # 1-based repetition number (warmups are never written)
    source: str  # how the row was made: "edgebench run" or "llama-bench import"
    started_utc: str  # RFC 3339 UTC
    finished_utc: str
    edgebench_version: str
    git_commit: str | None
    model_id: str
    variant: str
    precision: str
    model_sha256: str | None  # of model.onnx (the graph file) as built; GGUF for imports
    model_source_sha256: str | None  # of the source weights (GGUF) the model was built from
    model_size_bytes: int | None  # all files of the model folder
    backend: str
    backend_version: str
    onnxruntime_version: str | None
    onnxruntime_genai_version: str | None
    ep: str
    ep_options: str  # JSON
    threads: int
    # shape
    n_prompt: int
    n_gen_requested: int
    n_generated: int
    # timings (seconds) and rates (tokens/s)
    load_s: float | None
    tokenize_s: float | None
    prefill_s: float | None
    prefill_tok_s: float | None
    ttft_s: float | None
    decode_s: float | None
    decode_tok_s: float | None
    itl_p50_s: float | None
    itl_p90_s: float | None
    itl_p99_s: float | None
    itl_samples_s: str | None  # space-separated per-token latencies, 2nd token on
    peak_rss_bytes: int | None
    # hardware fingerprint
    host_fingerprint: str
    cpu_model: str
    cpu_arch: str
    cpu_cores_physical: int | None
    cpu_cores_logical: int | None
    ram_bytes: int | None
    os_name: str
    os_release: str | None
    python_version: str | None
    accelerators: str
    available_eps: str | None
    on_battery: bool | None
    # energy (see the Energy section of the README)
    energy_method: str  # rapl, nvml+rapl, battery, estimate:tdp, none
    energy_scope: str | None
    sampling_interval_s: float | None
    idle_power_w: float | None
    prefill_energy_j: float | None
    prefill_energy_net_j: float | None
    decode_energy_j: float | None
    decode_energy_net_j: float | None
    prefill_j_per_tok: float | None
    decode_j_per_tok: float | None
    prefill_avg_power_w: float | None
    decode_avg_power_w: float | None
    energy_warning: str | None
    # thermals
    cpu_freq_mhz_before: float | None
    cpu_freq_mhz_after: float | None
    cpu_temp_c_before: float | None
    cpu_temp_c_after: float | None
    warnings: str | None


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(ResultRow))
_TYPES: dict[str, str] = {f.name: str(f.type) for f in fields(ResultRow)}
REQUIRED: frozenset[str] = frozenset(n for n, t in _TYPES.items() if "None" not in t)


def _format_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"refusing to write a non-finite number ({value})")
        return repr(value)
    return str(value)


def _parse_cell(name: str, text: str, line: int) -> Any:
    kind = _TYPES[name]
    if text == "":
        if name in REQUIRED and not kind.startswith("str"):
            raise EdgebenchError(f"line {line}: column {name} is empty but required")
        return None if name not in REQUIRED else ""
    try:
        if kind.startswith("int"):
            return int(text)
        if kind.startswith("float"):
            value = float(text)
            if not math.isfinite(value):
                raise ValueError
            return value
        if kind.startswith("bool"):
            if text not in ("true", "false"):
                raise ValueError
            return text == "true"
    except ValueError:
        raise EdgebenchError(
            f"line {line}: column {name} has {text!r}, which is not a valid {kind.split()[0]}"
        ) from None
    return text


def row_to_dict(row: ResultRow) -> dict[str, Any]:
    return dataclasses.asdict(row)


def format_rows_csv(rows: Iterable[ResultRow]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([_format_cell(getattr(row, c)) for c in COLUMNS])
    return buf.getvalue()


class ResultWriter:
    """Appends rows to a CSV and flushes each one to disk, so an interrupted run loses nothing.

    An existing file is only ever appended to, and only when its header is exactly ours:
    results files are immutable records.
    """

    @staticmethod
    def check(path: Path) -> bool:
        """Fails now, before anything is measured, if `path` cannot take our rows; True if new."""
        if not path.parent.is_dir():
            raise EdgebenchError(
                f"cannot write results to {path}: directory {path.parent} does not exist "
                "(create it or pass another --output)"
            )
        new = not path.exists() or path.stat().st_size == 0
        if not new and _read_header(path) != list(COLUMNS):
            raise EdgebenchError(
                f"{path} is not an edgebench schema v{SCHEMA_VERSION} results file "
                "(its header differs); choose a new --output file, nothing was written"
            )
        return new

    def __init__(self, path: Path) -> None:
        self.path = path
        new = self.check(path)
        try:
            self._file = open(path, "a", newline="", encoding="utf-8")
        except OSError as exc:
            raise EdgebenchError(f"cannot write results to {path}: {exc.strerror}") from None
        self._writer = csv.writer(self._file, lineterminator="\n")
        if new:
            self._writer.writerow(COLUMNS)
            self._sync()

    def _sync(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def write(self, row: ResultRow) -> None:
        self._writer.writerow([_format_cell(getattr(row, c)) for c in COLUMNS])
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


def iter_rows(path: Path) -> Iterator[ResultRow]:
    """Reads and validates a results CSV; any problem is one line naming the file and line."""
    try:
        fh = open(path, newline="", encoding="utf-8")
    except FileNotFoundError:
        raise EdgebenchError(f"results file {path} does not exist") from None
    with fh:
        try:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise EdgebenchError(f"{path} is empty; it holds no results")
            missing = [c for c in COLUMNS if c not in header]
            extra = [c for c in header if c not in COLUMNS]
            if missing or extra:
                raise EdgebenchError(
                    f"{path} does not match results schema v{SCHEMA_VERSION}: "
                    + (f"missing columns {', '.join(missing)}" if missing else "")
                    + ("; " if missing and extra else "")
                    + (f"unknown columns {', '.join(extra)}" if extra else "")
                )
            for lineno, cells in enumerate(reader, start=2):
                if len(cells) != len(header):
                    raise EdgebenchError(
                        f"{path} line {lineno}: {len(cells)} cells for {len(header)} columns "
                        "(the file is truncated or malformed)"
                    )
                values = dict(zip(header, cells))
                try:
                    parsed = {c: _parse_cell(c, values[c], lineno) for c in COLUMNS}
                except EdgebenchError as exc:
                    raise EdgebenchError(f"{path} {exc}") from None
                if parsed["schema_version"] != SCHEMA_VERSION:
                    raise EdgebenchError(
                        f"{path} line {lineno}: schema_version {parsed['schema_version']} is not "
                        f"supported (this edgebench reads v{SCHEMA_VERSION})"
                    )
                yield ResultRow(**parsed)
        except UnicodeDecodeError:
            raise EdgebenchError(f"{path} is not UTF-8 text; is it really a results CSV?") from None
        except csv.Error as exc:
            raise EdgebenchError(f"{path} is not valid CSV: {exc}") from None


def read_rows(path: Path) -> list[ResultRow]:
    return list(iter_rows(path))
