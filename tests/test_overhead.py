"""The short mode of benchmarks/test_harness_overhead.py: the measurement itself works (the
figure is reported by the benchmark, never asserted: machines are noisy)."""

from __future__ import annotations

import pytest

from bench.run.overhead import measure
from tests.fake_backend import FakeClock, Script, ScriptedBackend


def test_overhead_is_the_difference_of_per_token_medians():
    clock = FakeClock()
    backend = ScriptedBackend("scripted", clock, Script(prefill_s=0.01, step_s=(0.002,)), [])
    result = measure(backend, [1, 2, 3], n_gen=9, reps=3, clock=clock)
    # the scripted backend takes exactly 2 ms a step and the fake clock adds nothing
    assert result.bare_s_per_tok == pytest.approx(0.002)
    assert result.harness_s_per_tok == pytest.approx(0.002)
    assert result.overhead_frac == pytest.approx(0.0, abs=1e-9)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError):
        measure(object(), [1], n_gen=1)


@pytest.mark.slow
def test_short_overhead_run_on_the_default_model(built_models):
    from bench.run.backends import make_backend

    backend = make_backend("ort")
    backend.load(built_models["int4"], ep="cpu", threads=1)
    result = measure(backend, list(range(256, 288)), n_gen=16, reps=2)
    backend.close()
    assert result.bare_s_per_tok > 0 and result.harness_s_per_tok > 0
    assert result.reps == 2 and result.n_gen == 16
