"""Synthetic but plausible result rows for the report tests: several devices (profiled or not,
measured or estimated energy, one with a hostile CPU name), variants, pp/tg/chat tests and a
slow decline over repetitions like a throttling board."""

from __future__ import annotations

from bench.results.schema import ResultRow
from tests.rowfactory import make_row

HOSTILE_CPU = "<script>alert(1)</script>"

# (cpu_model, host_fingerprint, energy_method, decode tok/s at int4, J per decode token)
DEVICES = (
    ("AMD EPYC", "e" * 16, "estimate:tdp", 60.0, 0.05),  # this VM: profile matched, no price
    ("Raspberry Pi 5 Model B Rev 1.1", "a" * 16, "external", 25.0, 0.2),  # priced: dedicated line
    ("Apple M2", "b" * 16, "apple", 140.0, 0.03),
    (HOSTILE_CPU, "c" * 16, "none", 80.0, None),  # no profile, no energy
)
VARIANTS = {"int4": 1.0, "int8": 0.7, "fp32": 0.35}
TESTS = {"pp512": (512, 0), "tg128": (1, 128), "chat": (200, 128)}


def sample_rows(reps: int = 5, devices=DEVICES, variants=VARIANTS, run_id: str = "r" * 32) -> list[ResultRow]:
    rows = []
    for cpu, fp, method, tok_s, j in devices:
        if fp == "e" * 16:
            cores = 2
        else:
            cores = 8
        for variant, speed in variants.items():
            for test, (n_prompt, n_gen) in TESTS.items():
                for rep in range(1, reps + 1):
                    throttle = 1.0 - 0.08 * (rep - 1) / max(reps - 1, 1)  # 8% slower by the end
                    decode = tok_s * speed * throttle if n_gen else None
                    prefill = tok_s * speed * 8 if n_prompt > 1 else 40.0
                    rows.append(make_row(
                        run_id=run_id, config_id=f"{fp}/{variant}/{test}", rep=rep, test=test,
                        variant=variant, precision=variant, n_prompt=n_prompt, n_gen_requested=n_gen,
                        n_generated=n_gen, prefill_tok_s=prefill, decode_tok_s=decode,
                        ttft_s=n_prompt / prefill, itl_p90_s=1.1 / decode if decode else None,
                        decode_s=(n_gen - 1) / decode if decode else None,
                        peak_rss_bytes=int(300 * 2**20 / speed), host_fingerprint=fp, cpu_model=cpu,
                        cpu_cores_logical=cores, cpu_cores_physical=cores, energy_method=method,
                        energy_scope=None if method == "none" else "system_dc",
                        prefill_j_per_tok=None if j is None else j / 8,
                        decode_j_per_tok=None if (j is None or not n_gen) else j / speed))
    return rows
