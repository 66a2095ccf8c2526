"""The harness's cost per generated token on the default model (int4, ort, CPU), against a bare
loop over the same backend, interleaved; `pytest benchmarks/ --benchmark-enable` prints it.

Target: under 1% of a decode step (docs/running.md states the measured figure). Not an
assertion: these machines are noisy; the figure is reported, and the short version in
tests/test_overhead.py checks only that the measurement works.
"""

from __future__ import annotations

import os

from bench.run.backends import make_backend
from bench.run.overhead import measure


def test_harness_overhead_per_token(benchmark, built_models):
    backend = make_backend("ort")
    backend.load(built_models["int4"], ep="cpu", threads=os.cpu_count() or 1)
    prompt = list(range(256, 256 + 64))
    result = benchmark.pedantic(lambda: measure(backend, prompt, n_gen=128, reps=10),
                                rounds=1, iterations=1)
    benchmark.extra_info.update(bare_s_per_tok=result.bare_s_per_tok,
                                harness_s_per_tok=result.harness_s_per_tok,
                                overhead_frac=result.overhead_frac)
    print(f"\nharness overhead: {1e6 * result.overhead_s_per_tok:.2f} us/token = "
          f"{100 * result.overhead_frac:.2f}% of a {1e3 * result.bare_s_per_tok:.3f} ms decode "
          f"step (medians of {result.reps} interleaved repetitions, {result.n_gen} tokens)")
    backend.close()
