"""Results schema v3: one tidy row per test x repetition, and how its cells are written and read.

Rows hold only what was measured on the device (plus provenance). Prices, tariffs and carbon are
applied later by the cost model, because they change while measurements do not.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields
from typing import Any

from bench.errors import EdgebenchError

SCHEMA_VERSION = 3


@dataclass(frozen=True, kw_only=True)
class ResultRow:
    """One repetition of one test. Field order is the CSV column order; None is an empty cell.

    Keyword-only, and every optional column defaults to None, so a row is built from what was
    measured without spelling out the empty columns.
    """

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
    git_commit: str | None = None
    model_id: str
    variant: str
    precision: str
    model_sha256: str | None = None  # of model.onnx (the graph file) as built; GGUF for imports
    model_source_sha256: str | None = None  # of the source weights (GGUF) the model was built from
    model_size_bytes: int | None = None  # all files of the model folder
    weights: str | None = None  # v2: "real" or "synthetic" (random weights: speed only)
    source_quant: str | None = None  # v2: the source weights' quantisation (Q4_K_M, ...)
    backend: str
    backend_version: str
    onnxruntime_version: str | None = None
    onnxruntime_genai_version: str | None = None
    ep: str
    ep_options: str  # JSON
    threads: int
    # shape
    n_prompt: int
    n_gen_requested: int
    n_generated: int
    # timings (seconds) and rates (tokens/s)
    load_s: float | None = None
    tokenize_s: float | None = None
    prefill_s: float | None = None
    prefill_tok_s: float | None = None
    ttft_s: float | None = None
    decode_s: float | None = None
    decode_tok_s: float | None = None
    itl_p50_s: float | None = None
    itl_p90_s: float | None = None
    itl_p99_s: float | None = None
    itl_samples_s: str | None = None  # space-separated per-token latencies, 2nd token on
    peak_rss_bytes: int | None = None
    # v2, the decode roofline (docs/roofline.md): bytes one decode step reads (weights + KV cache
    # at the mean context), the measured read bandwidth for this thread count, and
    # decode_tok_s / (bandwidth / bytes_per_token)
    bytes_per_token: int | None = None
    mem_bandwidth_bytes_s: float | None = None
    decode_roofline_frac: float | None = None
    # hardware fingerprint
    host_fingerprint: str
    cpu_model: str
    cpu_arch: str
    cpu_cores_physical: int | None = None
    cpu_cores_logical: int | None = None
    ram_bytes: int | None = None
    os_name: str
    os_release: str | None = None
    python_version: str | None = None
    accelerators: str
    available_eps: str | None = None
    on_battery: bool | None = None
    virtualized: bool | None = None  # v2: a VM (hypervisor flag or DMI vendor)
    # v3: the cloud the VM runs in, from its DMI (Amazon EC2, Google Compute Engine, ...); empty
    # on bare metal, on a VM whose DMI names no cloud, and in older rows. A cloud VM's marginal
    # cost is its rent, not its energy (docs/cost.md).
    cloud_provider: str | None = None
    # energy (see the Energy section of the README)
    energy_method: str  # rapl, nvml+rapl, battery, estimate:tdp, estimate:class, none
    energy_scope: str | None = None
    sampling_interval_s: float | None = None
    idle_power_w: float | None = None
    prefill_energy_j: float | None = None
    prefill_energy_net_j: float | None = None
    decode_energy_j: float | None = None
    decode_energy_net_j: float | None = None
    prefill_j_per_tok: float | None = None
    decode_j_per_tok: float | None = None
    prefill_avg_power_w: float | None = None
    decode_avg_power_w: float | None = None
    energy_warning: str | None = None
    # v2: an estimate's bounds (None when measured) and what it assumed
    prefill_j_per_tok_low: float | None = None
    prefill_j_per_tok_high: float | None = None
    decode_j_per_tok_low: float | None = None
    decode_j_per_tok_high: float | None = None
    energy_basis: str | None = None
    # thermals
    cpu_freq_mhz_before: float | None = None
    cpu_freq_mhz_after: float | None = None
    cpu_temp_c_before: float | None = None
    cpu_temp_c_after: float | None = None
    warnings: str | None = None


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(ResultRow))
TYPES: dict[str, str] = {f.name: str(f.type) for f in fields(ResultRow)}
REQUIRED: frozenset[str] = frozenset(n for n, t in TYPES.items() if "None" not in t)
ADDED_IN_V2: tuple[str, ...] = ("virtualized", "prefill_j_per_tok_low", "prefill_j_per_tok_high",
                                "decode_j_per_tok_low", "decode_j_per_tok_high", "energy_basis",
                                "weights", "source_quant", "bytes_per_token",
                                "mem_bandwidth_bytes_s", "decode_roofline_frac")
ADDED_IN_V3: tuple[str, ...] = ("cloud_provider",)
# The columns of every schema version this edgebench reads (older files are migrated on read).
COLUMNS_BY_VERSION: dict[int, tuple[str, ...]] = {
    1: tuple(c for c in COLUMNS if c not in ADDED_IN_V2 + ADDED_IN_V3),
    2: tuple(c for c in COLUMNS if c not in ADDED_IN_V3),
    3: COLUMNS,
}


def format_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"refusing to write a non-finite number ({value})")
        return repr(value)
    return str(value)


def parse_cell(name: str, text: str, line: int, types: dict[str, str] | None = None,
               required: frozenset[str] | None = None) -> Any:
    """One cell by its column's declared type; `types`/`required` default to the result row's
    (quality rows pass their own)."""
    types = TYPES if types is None else types
    required = REQUIRED if required is None else required
    kind = types[name]
    if text == "":
        if name in required and not kind.startswith("str"):
            raise EdgebenchError(f"line {line}: column {name} is empty but required")
        return None if name not in required else ""
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
