"""A result row from what one repetition measured: the runner's timing, memory, energy, provenance.

Columns nobody measured stay None (ResultRow's optional fields default to None), so this builds
a row from what was measured without spelling out every empty column.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from bench import __version__
from bench.energy.windows import EnergySetup, energy_fields
from bench.models.footprint import mean_decode_context
from bench.results import stats
from bench.results.schema import SCHEMA_VERSION, ResultRow
from bench.run.plan import Shape, Target, config_id
from bench.run.timing import Timing


@dataclass(frozen=True)
class Provenance:
    """Same for every row of one run."""

    run_id: str
    fingerprint: Any  # bench.run.hardware.Fingerprint
    git_commit: str | None = None
    on_battery: bool | None = None


@dataclass(frozen=True)
class Measured:
    """One repetition's measurements besides the token timing."""

    rep: int
    prompt_ids: tuple[int, ...]
    tokenize_s: float | None
    timing: Timing
    started_utc: str
    finished_utc: str
    peak_rss_bytes: int
    load_s: float
    thermals_before: Any = None  # bench.run.thermals.ThermalReading
    thermals_after: Any = None
    warnings: tuple[str, ...] = ()


def roofline_fields(model: Any, n_prompt: int, timing: Timing,
                    bandwidth_bytes_s: float | None) -> dict[str, Any]:
    """bytes_per_token and the roofline fraction for decode rows (docs/roofline.md); the
    bandwidth goes in every row it was measured for."""
    footprint = getattr(model, "footprint", None)
    per_token = None
    if footprint is not None and timing.decode_tok_s is not None:
        per_token = footprint.bytes_per_token(mean_decode_context(n_prompt, timing.n_generated))
    frac = None
    if per_token and bandwidth_bytes_s and timing.decode_tok_s is not None:
        frac = timing.decode_tok_s * per_token / bandwidth_bytes_s
    return {"bytes_per_token": per_token, "mem_bandwidth_bytes_s": bandwidth_bytes_s,
            "decode_roofline_frac": frac}


def build_row(run: Provenance, target: Target, shape: Shape, backend: Any, m: Measured,
              energy: EnergySetup | None, bandwidth_bytes_s: float | None = None) -> ResultRow:
    timing = m.timing
    itl = timing.itl_s()
    versions = backend.versions()
    before, after = m.thermals_before, m.thermals_after
    n_prompt = len(m.prompt_ids)
    return ResultRow(
        schema_version=SCHEMA_VERSION, run_id=run.run_id, test=shape.name,
        config_id=config_id(target, shape), rep=m.rep, source="edgebench run",
        started_utc=m.started_utc, finished_utc=m.finished_utc,
        edgebench_version=__version__, git_commit=run.git_commit,
        model_id=target.model.model_id, variant=target.model.variant,
        precision=target.model.precision, model_sha256=target.model.model_sha256,
        model_source_sha256=target.model.source_sha256,
        model_size_bytes=target.model.size_bytes,
        weights=getattr(target.model, "weights", None),
        source_quant=getattr(target.model, "source_quant", None),
        backend=target.backend, backend_version=versions.backend_version,
        onnxruntime_version=versions.onnxruntime_version,
        onnxruntime_genai_version=versions.onnxruntime_genai_version,
        ep=target.ep, ep_options=json.dumps(backend.ep_options(), sort_keys=True),
        threads=target.threads,
        n_prompt=n_prompt, n_gen_requested=shape.n_gen, n_generated=timing.n_generated,
        load_s=m.load_s, tokenize_s=m.tokenize_s,
        prefill_s=timing.prefill_s, prefill_tok_s=n_prompt / timing.prefill_s,
        ttft_s=timing.ttft_s, decode_s=timing.decode_s, decode_tok_s=timing.decode_tok_s,
        itl_p50_s=stats.percentile(itl, 50) if itl else None,
        itl_p90_s=stats.percentile(itl, 90) if itl else None,
        itl_p99_s=stats.percentile(itl, 99) if itl else None,
        itl_samples_s=" ".join(f"{x:.6g}" for x in itl) if itl else None,
        peak_rss_bytes=m.peak_rss_bytes, on_battery=run.on_battery,
        **roofline_fields(target.model, n_prompt, timing, bandwidth_bytes_s),
        cpu_freq_mhz_before=before.cpu_freq_mhz if before else None,
        cpu_freq_mhz_after=after.cpu_freq_mhz if after else None,
        cpu_temp_c_before=before.cpu_temp_c if before else None,
        cpu_temp_c_after=after.cpu_temp_c if after else None,
        **dataclasses.asdict(run.fingerprint),
        **dataclasses.asdict(energy_fields(energy, timing.edges, n_prompt, timing.n_generated)),
        warnings="; ".join(m.warnings) or None,
    )
