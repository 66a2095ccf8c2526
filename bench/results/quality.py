"""Quality rows: what a model x variant is worth, written by `edgebench quality` to its own CSV.

Three measures share one row type (docs/quality.md): `bits_per_byte` (one row per corpus),
`agreement` with the reference variant (one row per corpus) and `humaneval` (one row per
problem, so the cost stage can price a solved task from its own token counts). Reading is as
strict as for result rows: every problem is one line naming the file and the line.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Iterator

from bench.errors import EdgebenchError
from bench.results.schema import parse_cell

QUALITY_SCHEMA_VERSION = 1
MEASURES = ("bits_per_byte", "agreement", "humaneval")
KIND = f"edgebench quality v{QUALITY_SCHEMA_VERSION}"


@dataclass(frozen=True, kw_only=True)
class QualityRow:
    """One measurement; field order is the CSV column order, None an empty cell."""

    # identity and provenance
    quality_schema_version: int
    run_id: str
    measure: str  # bits_per_byte, agreement, humaneval
    dataset: str  # corpus id (prose-en, code-py) or "humaneval"
    dataset_sha256: str
    item: str | None = None  # the HumanEval task id; empty for a whole-corpus row
    started_utc: str
    finished_utc: str
    wall_s: float  # the measurement's wall time (a corpus: every window; a problem: all of it)
    edgebench_version: str
    git_commit: str | None = None
    model_id: str
    variant: str
    precision: str
    weights: str  # always "real": quality is never measured on synthetic weights
    model_sha256: str | None = None  # model.onnx of the folder that was scored or generated
    model_source_sha256: str | None = None
    source_quant: str | None = None
    backend: str
    backend_version: str
    ep: str
    threads: int
    host_fingerprint: str
    cpu_model: str
    partial: bool  # --limit cut the dataset short: not comparable with a full run
    # bits per byte: sliding windows of `context_tokens`, advanced by `stride_tokens`; each
    # token is scored once, with at least context - stride tokens of context after the first
    context_tokens: int | None = None
    stride_tokens: int | None = None
    n_windows: int | None = None
    n_tokens: int | None = None  # tokens scored
    n_bytes: int | None = None  # UTF-8 bytes of the text those tokens cover
    nll_nats: float | None = None  # summed negative log-likelihood
    bits_per_byte: float | None = None  # nll_nats / ln 2 / n_bytes
    # agreement with the reference variant on the same tokens
    reference_variant: str | None = None
    reference_model_sha256: str | None = None
    top1_agreement: float | None = None  # fraction of positions with the same argmax
    mean_kl_nats: float | None = None  # mean KL(reference || variant) per position
    # humaneval, one problem
    prompt_format: str | None = None  # completion or chat
    passed: bool | None = None
    sandbox_status: str | None = None  # passed, failed, timeout, killed, error
    sandbox_detail: str | None = None
    isolation: str | None = None  # how the completion was isolated, or that it was not
    prompt_tokens: int | None = None
    generated_tokens: int | None = None
    output_bytes: int | None = None
    stop_reason: str | None = None  # stop, eos, max_tokens
    gen_s: float | None = None
    warnings: str | None = None


QUALITY_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(QualityRow))
QUALITY_TYPES: dict[str, str] = {f.name: str(f.type) for f in fields(QualityRow)}
QUALITY_REQUIRED: frozenset[str] = frozenset(n for n, t in QUALITY_TYPES.items()
                                             if "None" not in t)
# Values the schema allows; anything else is a different program's file or a slip.
RANGES: dict[str, tuple[float, float]] = {
    "bits_per_byte": (0.0, 32.0), "top1_agreement": (0.0, 1.0), "mean_kl_nats": (0.0, 1e3),
    "wall_s": (0.0, 1e7), "gen_s": (0.0, 1e7), "nll_nats": (0.0, 1e12),
}
CHOICES: dict[str, tuple[str, ...]] = {
    "measure": MEASURES, "weights": ("real",), "prompt_format": ("completion", "chat"),
    "stop_reason": ("stop", "eos", "max_tokens"),
}


def is_quality_header(header: list[str]) -> bool:
    return "quality_schema_version" in header


def check_row(row: QualityRow, where: str) -> None:
    """What a well-typed row may still get wrong: unknown choices, impossible values, a
    measure without its numbers."""
    for name, allowed in CHOICES.items():
        value = getattr(row, name)
        if value is not None and value not in allowed:
            raise EdgebenchError(f"{where}: {name} is {value!r}; allowed: {', '.join(allowed)}")
    for name, (low, high) in RANGES.items():
        value = getattr(row, name)
        if value is not None and not low <= value <= high:
            raise EdgebenchError(f"{where}: {name} = {value} is outside [{low}, {high}]")
    needed = {"bits_per_byte": ("bits_per_byte", "n_tokens", "n_bytes"),
              "agreement": ("reference_variant", "top1_agreement", "mean_kl_nats"),
              "humaneval": ("item", "prompt_format", "passed", "isolation")}[row.measure]
    missing = [n for n in needed if getattr(row, n) in (None, "")]
    if missing:
        raise EdgebenchError(f"{where}: a {row.measure} row needs {', '.join(missing)}")


def iter_quality_rows(path: Path) -> Iterator[QualityRow]:
    """Reads and checks a quality CSV; any problem is one line naming the file and line."""
    try:
        fh = open(path, newline="", encoding="utf-8")
    except FileNotFoundError:
        raise EdgebenchError(f"quality file {path} does not exist") from None
    with fh:
        try:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise EdgebenchError(f"{path} is empty; it holds no quality rows")
            if set(header) != set(QUALITY_COLUMNS) or len(header) != len(QUALITY_COLUMNS):
                missing = [c for c in QUALITY_COLUMNS if c not in header]
                extra = [c for c in header if c not in QUALITY_COLUMNS]
                raise EdgebenchError(
                    f"{path} is not an {KIND} file (missing {', '.join(missing) or 'none'}; "
                    f"unknown {', '.join(extra) or 'none'})")
            for lineno, cells in enumerate(reader, start=2):
                if len(cells) != len(header):
                    raise EdgebenchError(f"{path} line {lineno}: {len(cells)} cells for "
                                         f"{len(header)} columns (truncated or malformed)")
                values = dict(zip(header, cells))
                if values["quality_schema_version"] != str(QUALITY_SCHEMA_VERSION):
                    raise EdgebenchError(
                        f"{path} line {lineno}: quality schema version "
                        f"{values['quality_schema_version']!r}; this edgebench reads "
                        f"{QUALITY_SCHEMA_VERSION}")
                try:
                    parsed = {c: parse_cell(c, values[c], lineno, QUALITY_TYPES,
                                            QUALITY_REQUIRED) for c in QUALITY_COLUMNS}
                except EdgebenchError as exc:
                    raise EdgebenchError(f"{path} {exc}") from None
                row = QualityRow(**parsed)
                check_row(row, f"{path} line {lineno}")
                yield row
        except UnicodeDecodeError:
            raise EdgebenchError(f"{path} is not UTF-8 text; is it really a quality CSV?") from None
        except csv.Error as exc:
            raise EdgebenchError(f"{path} is not valid CSV: {exc}") from None


def read_quality_rows(path: Path) -> list[QualityRow]:
    return list(iter_quality_rows(path))


def bits_per_byte(nll_nats: float, n_bytes: int) -> float:
    """Summed NLL in nats over the bytes the scored tokens cover: tokenizer-independent."""
    if n_bytes <= 0:
        raise ValueError("bits per byte needs at least one byte")
    return nll_nats / math.log(2) / n_bytes
