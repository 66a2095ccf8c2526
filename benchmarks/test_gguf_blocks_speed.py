"""Per-call time of one GGUF linear layer in ONNX Runtime at decode shape (M=1, K=2048, N=8192,
2 threads): the Q4_K decomposition (MatMulNBits with uint8 zp=0 + BlockSum @ mins) against the
plain int4 MatMulNBits of a Q4_0 weight, and the Q4_K MatMulNBits part alone.

    pytest benchmarks/test_gguf_blocks_speed.py --benchmark-enable -s -p no:cacheprovider
    python benchmarks/test_gguf_blocks_speed.py [rounds]

Both interleave the cases round by round (so drift, thermals and neighbours hit all alike) and
print the median per-call time of each. No assertions on time: these machines are noisy.
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
import time

import numpy as np

from bench.models import gguf_blocks, gguf_onnx

M, K, N, THREADS = 1, 2048, 8192, 2


def _raw(name: str, rng) -> np.ndarray:
    """Valid random blocks: random codes and scale bytes, sane fp16 d and dmin."""
    elems, type_size = gguf_blocks.LAYOUTS[name].elems, gguf_blocks.LAYOUTS[name].type_size
    raw = rng.integers(0, 256, (N, K // elems, type_size), dtype=np.uint8)
    for at in ((0, 2), (2, 4)) if name == "Q4_K" else ((0, 2),):
        raw[..., at[0]:at[1]] = rng.uniform(1e-3, 5e-2, (N, K // elems, 1)).astype(
            np.float16).view(np.uint8)
    return raw.reshape(N, -1)


def _session(w):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = THREADS
    so.inter_op_num_threads = 1
    model = gguf_onnx.linear_model(w, accuracy_level=0).SerializeToString()
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


def cases() -> dict:
    rng = np.random.default_rng(0)
    q4_0 = gguf_blocks.to_nbits(_raw("Q4_0", rng), "Q4_0", (N, K))
    q4_k = gguf_blocks.to_nbits(_raw("Q4_K", rng), "Q4_K", (N, K))
    return {"int4 Q4_0": _session(q4_0), "Q4_K decomposition": _session(q4_k),
            "Q4_K MatMulNBits only": _session(dataclasses.replace(q4_k, block_min=None))}


def interleaved(rounds: int = 15, calls: int = 50) -> dict[str, float]:
    """Median per-call seconds of each case over `rounds` interleaved rounds of `calls` calls."""
    sessions = cases()
    x = {"x": np.random.default_rng(1).standard_normal((M, K)).astype(np.float32)}
    per_call: dict[str, list[float]] = {name: [] for name in sessions}
    for sess in sessions.values():
        for _ in range(20):
            sess.run(None, x)
    for _ in range(rounds):
        for name, sess in sessions.items():
            t0 = time.perf_counter()
            for _ in range(calls):
                sess.run(None, x)
            per_call[name].append((time.perf_counter() - t0) / calls)
    return {name: statistics.median(v) for name, v in per_call.items()}


def _table(medians: dict[str, float]) -> str:
    base = medians["int4 Q4_0"]
    return "\n".join(f"{name:24s} {s * 1e6:9.1f} us/call  {s / base:5.2f}x int4"
                     for name, s in medians.items())


def test_q4k_decomposition_vs_int4(benchmark):
    medians = benchmark.pedantic(interleaved, rounds=1, iterations=1)
    benchmark.extra_info.update({f"{name} s/call": s for name, s in medians.items()})
    print(f"\nM={M} K={K} N={N} threads={THREADS}, medians of interleaved rounds:\n"
          + _table(medians))
    assert set(medians) == {"int4 Q4_0", "Q4_K decomposition", "Q4_K MatMulNBits only"}


if __name__ == "__main__":
    print(_table(interleaved(int(sys.argv[1]) if len(sys.argv) > 1 else 15)))
