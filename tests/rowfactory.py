"""A valid ResultRow for tests that need rows without running a model."""

from __future__ import annotations

import dataclasses

from bench.results.schema import SCHEMA_VERSION, ResultRow

_BASE = dict(
    schema_version=SCHEMA_VERSION, run_id="0" * 32, test="tg128",
    config_id="smollm2-135m-instruct/int4/ort/cpu/t2/tg128", rep=1, source="edgebench run",
    started_utc="2026-11-22T05:00:00.000Z", finished_utc="2026-11-22T05:00:01.000Z",
    edgebench_version="0.1.0", git_commit=None, model_id="smollm2-135m-instruct",
    variant="int4", precision="int4-b32-acc4", model_sha256="a" * 64,
    model_source_sha256="b" * 64, model_size_bytes=90_000_000, backend="ort",
    backend_version="1.31.1", onnxruntime_version="1.31.1", onnxruntime_genai_version="0.18.0",
    ep="cpu", ep_options='{"intra_op_num_threads": "2"}', threads=2, n_prompt=1,
    n_gen_requested=128, n_generated=128, load_s=0.5, tokenize_s=None, prefill_s=0.005,
    prefill_tok_s=200.0, ttft_s=0.006, decode_s=0.635, decode_tok_s=200.0, itl_p50_s=0.005,
    itl_p90_s=0.0055, itl_p99_s=0.007, itl_samples_s="0.005 0.0051", peak_rss_bytes=400 * 2**20,
    host_fingerprint="f" * 16, cpu_model="AMD EPYC", cpu_arch="x86_64", cpu_cores_physical=2,
    cpu_cores_logical=2, ram_bytes=24 * 2**30, os_name="Linux", os_release="6.1",
    python_version="3.11.7", accelerators="none", available_eps="cpu", on_battery=None,
    energy_method="none", energy_scope=None, sampling_interval_s=None, idle_power_w=None,
    prefill_energy_j=None, prefill_energy_net_j=None, decode_energy_j=None,
    decode_energy_net_j=None, prefill_j_per_tok=None, decode_j_per_tok=None,
    prefill_avg_power_w=None, decode_avg_power_w=None, energy_warning=None,
    cpu_freq_mhz_before=None, cpu_freq_mhz_after=None, cpu_temp_c_before=None,
    cpu_temp_c_after=None, warnings=None,
)


def make_row(**overrides) -> ResultRow:
    return dataclasses.replace(ResultRow(**_BASE), **overrides)
