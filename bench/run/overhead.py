"""What the harness costs per generated token: edgebench's timed loop (timestamps, the energy
meter's reads, bookkeeping) against a bare loop over the same backend, interleaved.

The two loops alternate A B A B on one loaded backend so drift hits both alike, and the figure
is the difference of medians per token. A harness that costs more than about 1% of a decode step
would bias every tok/s it prints (README, docs/running.md).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from bench.run.timing import generate_timed


@dataclass(frozen=True)
class Overhead:
    bare_s_per_tok: float  # median over repetitions of a bare next_token loop
    harness_s_per_tok: float  # median of generate_timed's decode, same backend and prompt
    reps: int
    n_gen: int

    @property
    def overhead_s_per_tok(self) -> float:
        return self.harness_s_per_tok - self.bare_s_per_tok

    @property
    def overhead_frac(self) -> float:
        return self.overhead_s_per_tok / self.bare_s_per_tok


def _bare(backend: Any, prompt_ids: Sequence[int], n_gen: int,
          clock: Callable[[], float]) -> float:
    """Decode seconds per token with nothing around the calls (after the first token, as the
    harness's decode_s is measured)."""
    backend.begin(len(prompt_ids) + n_gen, ignore_eos=True)
    backend.prefill(prompt_ids)
    backend.next_token()
    t0 = clock()
    for _ in range(n_gen - 1):
        backend.next_token()
    return (clock() - t0) / (n_gen - 1)


def measure(backend: Any, prompt_ids: Sequence[int], *, n_gen: int = 128, reps: int = 10,
            edge: Callable[[], Any] | None = None,
            clock: Callable[[], float] = time.perf_counter) -> Overhead:
    """`edge` is the energy meter's read, as `edgebench run` passes it (None: no meter)."""
    if n_gen < 2 or reps < 1:
        raise ValueError("the overhead needs at least 2 generated tokens and 1 repetition")
    bare, harness = [], []
    for _ in range(reps):
        bare.append(_bare(backend, prompt_ids, n_gen, clock))
        timing = generate_timed(backend, prompt_ids, n_gen, edge=edge, clock=clock)
        harness.append(timing.decode_s / (timing.n_generated - 1))
    return Overhead(statistics.median(bare), statistics.median(harness), reps, n_gen)
