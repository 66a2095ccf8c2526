"""Synthetic results CSVs at scale, for the report and upload-service benchmarks.

A realistic mix: devices from phones to a GPU desktop (most with a hardware profile, so they
are priced), their energy methods (measured, estimated with bounds, none), several models,
variants, backends and thread counts, the default tests (pp512, tg128, chat) plus llama-bench
imports, 5 or 10 repetitions with a slow throttling decline, and per-token ITL samples written
exactly as `edgebench run` writes them (bench/run/rows.py: `.6g`, space-separated). Every row
passes the strict reader and the upload plausibility checks.

    python benchmarks/gen_rows.py --rows 1000000 --files 20 -o /tmp/rows
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import random
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

if __package__ in (None, ""):  # run as a script: the repository root holds `bench`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.results.schema import COLUMNS, SCHEMA_VERSION, format_cell  # noqa: E402
from bench.results.stats import percentile  # noqa: E402


@dataclass(frozen=True)
class Device:
    cpu_model: str
    arch: str
    cores: int
    ram_gib: int
    os_name: str
    accelerators: str
    eps: tuple[tuple[str, str], ...]  # (backend, ep)
    energy_method: str
    int4_tok_s: float  # decode tok/s of a ~0.5B int4 model on one configuration
    j_per_tok: float | None  # decode J/token at that speed
    virtualized: bool = False
    cloud_provider: str | None = None


DEVICES = (
    Device("AMD EPYC", "x86_64", 2, 24, "Linux", "none", (("ort", "cpu"), ("ort-genai", "cpu")),
           "estimate:tdp", 60.0, 0.05, virtualized=True),
    Device("Raspberry Pi 5 Model B Rev 1.1", "aarch64", 4, 8, "Linux", "none", (("ort", "cpu"),),
           "external", 25.0, 0.2),
    Device("Apple M2", "arm64", 8, 16, "Darwin", "none", (("ort", "cpu"), ("ort", "coreml")),
           "apple-ioreport", 140.0, 0.03),
    Device("Apple M4 Pro", "arm64", 14, 48, "Darwin", "none", (("ort", "cpu"), ("llamacpp", "cpu")),
           "apple-ioreport", 260.0, 0.025),
    Device("Intel(R) Core(TM) Ultra 7 258V", "x86_64", 8, 32, "Linux", "none",
           (("ort", "cpu"), ("ort-genai", "cpu")), "rapl", 110.0, 0.08),
    Device("AMD Ryzen AI 9 HX 370 w/ Radeon 890M", "x86_64", 24, 32, "Windows", "none",
           (("ort", "cpu"), ("ort", "dml")), "estimate:class", 130.0, 0.07),
    Device("AMD Ryzen 9 7950X 16-Core Processor", "x86_64", 32, 64, "Linux",
           "NVIDIA GeForce RTX 4090", (("ort", "cuda"), ("ort", "cpu")), "nvml+rapl", 900.0, 0.3),
    Device("Neoverse-V1", "aarch64", 4, 8, "Linux", "none", (("ort", "cpu"),), "estimate:class",
           70.0, 0.06, virtualized=True, cloud_provider="Amazon EC2"),
    Device("Qualcomm Technologies, Inc SM8650", "aarch64", 8, 12, "Android", "none",
           (("ort", "cpu"), ("ort", "qnn")), "battery", 45.0, 0.04),
)
# (model_id, speed relative to a 0.5B model, weights, GGUF quantisation, size of int4 in bytes)
MODELS = (
    ("smollm2-135m-instruct", 3.0, "real", "Q8_0", 110_000_000),
    ("gemma3-270m", 2.0, "real", "Q8_0", 240_000_000),
    ("qwen2.5-coder-0.5b-instruct", 1.0, "real", "Q4_K_M", 420_000_000),
    ("qwen2.5-coder-1.5b-instruct", 0.4, "real", "Q4_K_M", 1_100_000_000),
    ("llama-3.2-1b-synthetic", 0.55, "synthetic", "Q4_K_M", 800_000_000),
    ("phi-3.5-mini-synthetic", 0.18, "synthetic", "Q4_K_M", 2_300_000_000),
)
VARIANTS = {"int4": ("int4-b32-acc4", 1.0, 1.0), "int8": ("int8", 0.6, 1.9),
            "fp16": ("fp16", 0.3, 3.8)}  # (precision, speed, size factor)
TESTS = {"pp512": (512, 1), "tg128": (1, 128), "chat": (187, 128)}
LLAMA_BENCH_SHARE = 0.1  # runs that are llama-bench imports (no energy, no ITL)
START = datetime(2024, 1, 1, tzinfo=timezone.utc)  # a million rows span about six months


def _hex(rng: random.Random, n: int) -> str:
    return f"{rng.getrandbits(4 * n):0{n}x}"


def _utc(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


class _Run:
    """One `edgebench run` (or llama-bench import) on one device: its rows, rep by rep."""

    def __init__(self, rng: random.Random, device: Device, fingerprint: str, when: datetime):
        self.rng, self.device, self.fp, self.when = rng, device, fingerprint, when
        self.run_id = _hex(rng, 32)
        self.imported = rng.random() < LLAMA_BENCH_SHARE
        self.reps = rng.choice((5, 10))

    def rows(self) -> Iterator[dict[str, object]]:
        rng, d = self.rng, self.device
        models = rng.sample(MODELS, rng.randint(1, 3))
        variants = rng.sample(list(VARIANTS), rng.randint(1, 3))
        eps = [("llama.cpp", "cpu")] if self.imported else rng.sample(d.eps, rng.randint(1, len(d.eps)))
        threads = sorted({d.cores, max(1, d.cores // 2)})[: rng.randint(1, 2)]
        t = self.when
        for model_id, model_speed, weights, quant, size in models:
            for variant in variants:
                precision, v_speed, v_size = VARIANTS[variant]
                sha = hashlib.sha256(f"{model_id}/{variant}".encode()).hexdigest()
                for backend, ep in eps:
                    for th in threads:
                        tok_s = d.int4_tok_s * model_speed * v_speed * (th / d.cores) ** 0.5
                        for test, (n_prompt, n_gen) in TESTS.items():
                            if self.imported and test == "chat":
                                continue
                            cfg = f"{model_id}/{variant}/{backend}/{ep}/t{th}/{test}"
                            for rep in range(1, self.reps + 1):
                                row, t = self._row(t, cfg, rep, test, n_prompt, n_gen, tok_s)
                                row.update(model_id=model_id, variant=variant, precision=precision,
                                           weights=weights, source_quant=quant, model_sha256=sha,
                                           model_size_bytes=int(size * v_size), backend=backend,
                                           ep=ep, threads=th)
                                yield row

    def _row(self, t: datetime, cfg: str, rep: int, test: str, n_prompt: int, n_gen: int,
             tok_s: float) -> tuple[dict[str, object], datetime]:
        rng, d = self.rng, self.device
        throttle = 1.0 - 0.06 * (rep - 1) / max(self.reps - 1, 1)
        decode_rate = tok_s * throttle * rng.lognormvariate(0, 0.03)
        prefill_s = n_prompt / (decode_rate * (12 if n_prompt > 1 else 1))
        itl = [rng.lognormvariate(0, 0.08) / decode_rate for _ in range(n_gen - 1)]
        decode_s = sum(itl) if itl else None
        ttft_s = prefill_s + 1 / decode_rate
        finished = t + timedelta(seconds=ttft_s + (decode_s or 0))
        row: dict[str, object] = dict(
            schema_version=SCHEMA_VERSION, run_id=self.run_id, test=test, config_id=cfg, rep=rep,
            started_utc=_utc(t), finished_utc=_utc(finished), n_prompt=n_prompt,
            n_gen_requested=n_gen, n_generated=n_gen, prefill_s=prefill_s,
            prefill_tok_s=n_prompt / prefill_s, ttft_s=ttft_s,
            host_fingerprint=self.fp, cpu_model=d.cpu_model, cpu_arch=d.arch)
        if itl:
            row.update(decode_s=decode_s, decode_tok_s=(n_gen - 1) / decode_s,
                       itl_p50_s=percentile(itl, 50), itl_p90_s=percentile(itl, 90),
                       itl_p99_s=percentile(itl, 99))
        if self.imported:
            row.update(source="llama-bench import", edgebench_version="0.1.0",
                       backend_version="b4589 (4589)", ep_options="{}", cpu_arch="unknown",
                       os_name="unknown", accelerators="unknown", energy_method="none")
            return row, finished + timedelta(seconds=0.5)
        row.update(source="edgebench run", edgebench_version="0.1.0", git_commit="dc17704",
                   backend_version="1.22.0", onnxruntime_version="1.22.0",
                   ep_options=json.dumps({"intra_op_num_threads": str(d.cores)}, sort_keys=True),
                   load_s=rng.uniform(0.3, 2.0), tokenize_s=0.0004,
                   itl_samples_s=" ".join(f"{x:.6g}" for x in itl) if itl else None,
                   peak_rss_bytes=int(rng.uniform(3e8, 2e9)), cpu_cores_physical=d.cores,
                   cpu_cores_logical=d.cores, ram_bytes=d.ram_gib * 2**30, os_name=d.os_name,
                   os_release="6.1", python_version="3.11.7", accelerators=d.accelerators,
                   available_eps=",".join(sorted({ep for _, ep in d.eps})),
                   virtualized=d.virtualized, cloud_provider=d.cloud_provider,
                   cpu_freq_mhz_before=2400.0, cpu_freq_mhz_after=2400.0 * throttle)
        row.update(self._energy(prefill_s, decode_s, n_prompt, n_gen, throttle))
        return row, finished + timedelta(seconds=0.5)

    def _energy(self, prefill_s: float, decode_s: float | None, n_prompt: int, n_gen: int,
                throttle: float) -> dict[str, object]:
        d = self.device
        if d.j_per_tok is None or d.energy_method == "none":
            return {"energy_method": "none"}
        j = d.j_per_tok / throttle
        out: dict[str, object] = dict(
            energy_method=d.energy_method, energy_scope="system_dc", sampling_interval_s=0.1,
            idle_power_w=3.0, prefill_energy_j=j / 8 * n_prompt, prefill_j_per_tok=j / 8,
            prefill_avg_power_w=j / 8 * n_prompt / prefill_s)
        if decode_s:
            out.update(decode_energy_j=j * (n_gen - 1), decode_j_per_tok=j,
                       decode_avg_power_w=j * (n_gen - 1) / decode_s)
        if d.energy_method.startswith("estimate"):
            out.update(prefill_j_per_tok_low=j / 16, prefill_j_per_tok_high=j / 4,
                       energy_basis="TDP of the CPU class, 50-100% busy",
                       energy_warning="estimate: no energy meter on this machine")
            if decode_s:
                out.update(decode_j_per_tok_low=j / 2, decode_j_per_tok_high=j * 2)
        return out


def iter_rows(n_rows: int, seed: int = 15) -> Iterator[list[str]]:
    """Exactly n_rows rows as CSV cells in schema column order (the last run is cut short)."""
    rng = random.Random(seed)
    fingerprints = {d.cpu_model: [_hex(rng, 16) for _ in range(rng.randint(1, 3))] for d in DEVICES}
    when, n = START, 0
    while True:
        device = rng.choice(DEVICES)
        run = _Run(rng, device, rng.choice(fingerprints[device.cpu_model]), when)
        for row in run.rows():
            yield [format_cell(row.get(c)) for c in COLUMNS]
            n += 1
            if n == n_rows:
                return
        when += timedelta(minutes=rng.randint(5, 90))


def write_csvs(out_dir: Path, n_rows: int, files: int = 1, seed: int = 15) -> list[Path]:
    """n_rows rows split over `files` CSVs (consecutive runs per file), as results files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    per_file = -(-n_rows // files)
    paths = [out_dir / f"results-{i:03d}.csv" for i in range(files)]
    rows = iter_rows(n_rows, seed)
    for i, path in enumerate(paths):
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(COLUMNS)
            for _ in range(min(per_file, n_rows - i * per_file)):
                writer.writerow(next(rows))
    return paths


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--files", type=int, default=20)
    p.add_argument("--seed", type=int, default=15)
    p.add_argument("-o", "--output", type=Path, required=True)
    args = p.parse_args(argv)
    paths = write_csvs(args.output, args.rows, args.files, args.seed)
    size = sum(p.stat().st_size for p in paths)
    print(f"{args.rows} rows in {len(paths)} files under {args.output} ({size / 2**20:.0f} MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
