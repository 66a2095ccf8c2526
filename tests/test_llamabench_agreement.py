"""The llamacpp backend against llama-bench on the same GGUF and threads (docs/backends.md,
"Agreement with llama-bench"). Runs only where a `llama-bench` binary is on PATH: build it from
the llama.cpp sources vendored in the llama-cpp-python sdist with the same CMake flags as the
installed wheel, or the comparison measures two different builds.

Interleaved: each round runs llama-bench (pp512 and tg128, its own warmup and repetitions),
then the backend driven the way llama-bench drives llama.cpp (pp512: one 512-token batch on an
empty context; tg128: a BOS token then 127 one-token decodes, 128 decodes in all); the medians
over rounds must agree within 10%.
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import pytest

from bench.models import sources
from bench.models.gguf_model import open_recipe_gguf
from bench.run import prompts

LLAMA_BENCH = shutil.which("llama-bench")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(LLAMA_BENCH is None, reason="no llama-bench binary on PATH "
                                 "(docs/backends.md says how to build it)")]
llama_cpp = pytest.importorskip(
    "llama_cpp", reason="llama-cpp-python is not installed (pip install -e '.[llamacpp]')")
from bench.run.backends.llamacpp import LlamaCppBackend  # noqa: E402  (needs llama_cpp)

ROUNDS = 3
REPS = 3  # per round, after one warmup, for both sides
N_PROMPT, N_GEN = 512, 128
TOLERANCE = 0.10
THREADS = int(os.environ.get("EDGEBENCH_AGREEMENT_THREADS", "2"))


def _llama_bench(path) -> dict[str, float]:
    """tokens/s for pp512 and tg128, llama-bench's own averages over REPS repetitions."""
    out = subprocess.run(
        [LLAMA_BENCH, "-m", str(path), "-p", str(N_PROMPT), "-n", str(N_GEN),
         "-t", str(THREADS), "-fa", "auto", "-b", "2048", "-ub", "512", "-ngl", "0",
         "-r", str(REPS), "-o", "json"], capture_output=True, text=True, check=True).stdout
    rows = json.loads(out)
    return {("pp" if r["n_gen"] == 0 else "tg"): float(r["avg_ts"]) for r in rows}


def _ours(backend: LlamaCppBackend, model) -> dict[str, float]:
    ids = prompts.synthetic_ids(N_PROMPT, model.vocab_size, model.bos_token_id, seed=1)
    bos = [model.bos_token_id if model.bos_token_id is not None else ids[0]]

    def pp() -> float:
        backend.begin(N_PROMPT + 1)
        t0 = time.perf_counter()
        backend.prefill(ids)
        return N_PROMPT / (time.perf_counter() - t0)

    def tg() -> float:
        backend.begin(N_GEN + 1)
        t0 = time.perf_counter()
        backend.prefill(bos)
        for _ in range(N_GEN):
            backend.next_token()
        return N_GEN / (time.perf_counter() - t0)

    result = {}
    for name, test in (("pp", pp), ("tg", tg)):
        test()  # warmup, as llama-bench does
        result[name] = statistics.mean(test() for _ in range(REPS))
    return result


def test_pp512_and_tg128_agree_with_llama_bench_within_ten_percent(default_recipe):
    sources.fetch_gguf(default_recipe, lambda msg: print(msg, file=sys.stderr))
    model = open_recipe_gguf(default_recipe.id)
    backend = LlamaCppBackend()
    backend.load(model.path, ep="cpu", threads=THREADS)
    theirs, ours = [], []
    try:
        for _ in range(ROUNDS):
            theirs.append(_llama_bench(model.path))
            ours.append(_ours(backend, model))
    finally:
        backend.close()
    for test in ("pp", "tg"):
        a = statistics.median(r[test] for r in ours)
        b = statistics.median(r[test] for r in theirs)
        print(f"{test}: llamacpp {a:.1f} t/s, llama-bench {b:.1f} t/s ({THREADS} threads)",
              file=sys.stderr)
        assert abs(a - b) / b <= TOLERANCE, f"{test}: llamacpp {a:.1f} t/s, llama-bench {b:.1f}"
