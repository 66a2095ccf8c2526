"""The timed region: prefill plus greedy tokens, timestamps at every token, nothing else inside.

Definitions follow DESIGN.md: prefill_s is the forward pass over the prompt; TTFT adds the first
greedy selection; decode tok/s counts the 2nd+ tokens over the time from the first to the last
token (MLPerf Client); inter-token latencies are the gaps between consecutive tokens.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from bench.run.backends.base import Backend


@dataclass(frozen=True)
class Timing:
    """What one generation measured, in seconds from the moment the prompt was handed over."""

    prefill_s: float
    token_times_s: tuple[float, ...]  # time at which each generated token was available
    tokens: tuple[int, ...]
    edges: tuple[Any, ...] = ()  # energy readings: before prefill, after 1st token, after last

    @property
    def ttft_s(self) -> float:
        return self.token_times_s[0]

    @property
    def n_generated(self) -> int:
        return len(self.tokens)

    @property
    def decode_s(self) -> float | None:
        """First to last token; None with a single token."""
        t = self.token_times_s
        return t[-1] - t[0] if len(t) > 1 else None

    @property
    def decode_tok_s(self) -> float | None:
        """MLPerf Client's 2nd+ token rate."""
        d = self.decode_s
        return (len(self.tokens) - 1) / d if d else None

    def itl_s(self) -> list[float]:
        t = self.token_times_s
        return [b - a for a, b in zip(t, t[1:])]


def generate_timed(backend: Backend, prompt_ids: Sequence[int], n_gen: int,
                   stop_ids: frozenset[int] | None = None,
                   edge: Callable[[], Any] | None = None,
                   clock: Callable[[], float] = time.perf_counter) -> Timing:
    """Prefill plus n_gen greedy tokens.

    Benchmarks ignore EOS (stop_ids None, the backend masks it) like llama-bench; with
    stop_ids, generation ends after the first stop token, which is counted. `edge` (an energy
    meter's read) is called before the prefill, after the first token and after the last; the
    time it takes after the first token is taken out of the token timestamps. `clock` is
    injectable so tests can drive the loop with known timestamps.
    """
    backend.begin(len(prompt_ids) + n_gen, ignore_eos=stop_ids is None)
    edges = [edge()] if edge else []
    t0 = clock()
    backend.prefill(prompt_ids)
    t_prefill = clock()
    times, tokens = [], []
    paused = 0.0
    for i in range(n_gen):
        tokens.append(backend.next_token())
        times.append(clock() - paused)
        if i == 0 and edge:
            p0 = clock()
            edges.append(edge())
            paused += clock() - p0
        if stop_ids and tokens[-1] in stop_ids:
            break
    if edge:
        edges.append(edge())
    return Timing(t_prefill - t0, tuple(t - t0 for t in times), tuple(tokens), tuple(edges))
