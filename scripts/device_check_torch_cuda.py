"""Device check for the torch backend on an NVIDIA GPU (a session with a GPU runs this once).

    python scripts/device_check_torch_cuda.py HF_FOLDER [--threads 2] [--out report.json]

HF_FOLDER: the default model's Hugging Face folder (`edgebench models build
smollm2-135m-instruct` puts it at <cache>/hf/smollm2-135m-instruct; copy it along). It checks:

1. greedy tokens on cuda (fp32, EOS masked) equal the CPU run's for a chat-like and a synthetic
   prompt, and bf16 on cuda runs (its tokens are reported, not required to match);
2. pp512 and tg128 tokens/s on cuda (1 warmup + 3 repetitions, medians), through the same
   generate_timed loop the runner uses (the backend synchronises before each timestamp);
3. GPU power during tg128 decode: pynvml (nvidia-ml-py) when importable, else `nvidia-smi`
   polled, plus NVML's total-energy counter over the decode when the GPU has one;
4. the backend's peak CUDA memory and its ep_options.

Exit status 0 when every check passed, 1 otherwise; the JSON report goes to stdout (or --out).
It imports only bench.run (the backend and the timing loop), torch and transformers.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from bench.run.backends.torch_hf import TorchBackend  # noqa: E402
from bench.run.timing import generate_timed  # noqa: E402

REPS = 3
VOCAB_SEED = 3


class PowerSampler:
    """Board power every 50 ms in a thread: pynvml if present, else nvidia-smi (slower)."""

    def __init__(self) -> None:
        self.samples_w: list[float] = []
        self.source = "none"
        self.energy_j: float | None = None
        self._stop = threading.Event()
        self._nvml = None
        self._handle = None
        self._energy0_mj: int | None = None
        try:
            import pynvml

            pynvml.nvmlInit()
            self._nvml, self._handle = pynvml, pynvml.nvmlDeviceGetHandleByIndex(0)
            self.source = "pynvml"
        except Exception:  # no package or no driver: fall back to nvidia-smi
            if shutil.which("nvidia-smi"):
                self.source = "nvidia-smi"

    def _read_w(self) -> float | None:
        if self._nvml is not None:
            return self._nvml.nvmlDeviceGetPowerUsage(self._handle) / 1000.0
        if self.source == "nvidia-smi":
            out = subprocess.run(["nvidia-smi", "--query-gpu=power.draw",
                                  "--format=csv,noheader,nounits", "-i", "0"],
                                 capture_output=True, text=True, timeout=5).stdout.strip()
            try:
                return float(out.splitlines()[0])
            except (ValueError, IndexError):
                return None
        return None

    def _loop(self) -> None:
        while not self._stop.is_set():
            w = self._read_w()
            if w is not None:
                self.samples_w.append(w)
            self._stop.wait(0.05)

    def __enter__(self) -> "PowerSampler":
        if self._nvml is not None:
            try:
                self._energy0_mj = self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)
            except Exception:  # pre-Volta: no counter
                self._energy0_mj = None
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        if self._nvml is not None and self._energy0_mj is not None:
            end = self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)
            self.energy_j = (end - self._energy0_mj) / 1000.0


def synthetic_ids(n: int, vocab: int) -> list[int]:
    import random

    rng = random.Random(VOCAB_SEED)
    return [1] + [rng.randrange(3, vocab) for _ in range(n - 1)]


def tokens(folder: Path, ep: str, ids: list[int], n: int, threads: int,
           variant: str = "fp32") -> list[int]:
    backend = TorchBackend()
    backend.load(folder, ep=ep, threads=threads, variant=variant)
    try:
        return list(generate_timed(backend, ids, n).tokens)
    finally:
        backend.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("hf_folder", type=Path)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--ep", default="cuda", choices=("cuda", "cpu"),
                        help="cpu: a dry run of this script without a GPU (checks then fail)")
    args = parser.parse_args()
    import torch

    report: dict = {"torch": torch.__version__, "cuda_available": torch.cuda.is_available()}
    ep = args.ep
    if ep == "cuda" and not torch.cuda.is_available():
        print(json.dumps({**report, "error": "torch sees no CUDA device"}))
        return 1
    report["gpu"] = torch.cuda.get_device_name(0) if ep == "cuda" else None
    folder = args.hf_folder
    vocab = json.loads((folder / "config.json").read_text())["vocab_size"]
    checks: dict[str, bool] = {}

    # 1. greedy tokens: cuda == cpu
    chat = [1, 504, 3458, 282, 4649, 314, 1345, 30]  # a short English-like prompt
    for label, ids, n in (("short", chat, 32), ("synthetic200", synthetic_ids(200, vocab), 48)):
        cpu = tokens(folder, "cpu", ids, n, args.threads)
        gpu = tokens(folder, ep, ids, n, args.threads)
        same = next((i for i, (a, b) in enumerate(zip(cpu, gpu)) if a != b), None)
        report[f"tokens_{label}"] = {"cpu": cpu, "cuda": gpu, "first_difference": same}
        checks[f"cuda_tokens_equal_cpu_{label}"] = cpu == gpu
    try:
        report["bf16_cuda_tokens"] = tokens(folder, ep, chat, 16, args.threads, "bf16")
        checks["bf16_cuda_runs"] = len(report["bf16_cuda_tokens"]) == 16
    except Exception as exc:  # report it: an old GPU refuses bf16 in one line
        report["bf16_cuda_error"] = str(exc)
        checks["bf16_cuda_runs"] = False

    # 2 + 3. speed and power on cuda
    backend = TorchBackend()
    backend.load(folder, ep=ep, threads=args.threads)
    try:
        for name, ids, n in (("pp512", synthetic_ids(512, vocab), 1), ("tg128", [1], 128)):
            values = []
            power = None
            for rep in range(REPS + 1):
                if name == "tg128" and rep == REPS:
                    with PowerSampler() as power:
                        t = generate_timed(backend, ids, n)
                else:
                    t = generate_timed(backend, ids, n)
                if rep:
                    values.append(len(ids) / t.prefill_s if name == "pp512" else t.decode_tok_s)
                assert len(t.tokens) == n
            report[f"{name}_tok_s"] = round(statistics.median(values), 1)
            report[f"{name}_tok_s_reps"] = [round(v, 1) for v in values]
            if power is not None:
                report["decode_power"] = {
                    "source": power.source, "samples": len(power.samples_w),
                    "mean_w": round(statistics.mean(power.samples_w), 1)
                    if power.samples_w else None,
                    "max_w": max(power.samples_w) if power.samples_w else None,
                    "nvml_energy_j": power.energy_j, "decode_s": t.decode_s}
                checks["power_read"] = bool(power.samples_w)
        report["peak_cuda_memory_bytes"] = backend.peak_device_memory_bytes()
        report["ep_options"] = backend.ep_options()
        checks["memory_reported"] = (report["peak_cuda_memory_bytes"] or 0) > 0
    finally:
        backend.close()
    report["checks"] = checks
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
