"""The real timing loop and Runner driven by a scripted backend on a fake clock: the protocol
(warmup, repetitions, order, streaming, Ctrl-C) and every timing column from known timestamps."""

from __future__ import annotations

import csv

import pytest

from bench.energy.meters.base import Reading
from bench.energy.windows import EnergySetup
from bench.errors import InterruptedRun
from bench.results.read import read_rows
from bench.results.writer import ResultWriter
from bench.run.plan import RunPlan, Shape, Target
from bench.run.runner import Runner
from bench.run.timing import generate_timed
from tests.fake_backend import (FakeClock, FakePeakRss, Script, ScriptedBackend, fake_fingerprint,
                                fake_folder)


def make_runner(tmp_path, plan, *, script=Script(), writer=None, on_token=None, energy=None,
                peaks=None, resettable=True):
    clock = FakeClock()
    log: list = []
    backends: list[ScriptedBackend] = []

    def open_backend(name: str) -> ScriptedBackend:
        backends.append(ScriptedBackend(name, clock, script, log, on_token))
        return backends[-1]

    runner = Runner(plan, fake_fingerprint(), writer, open_backend=open_backend, clock=clock,
                    sleep=clock.sleep, energy=energy,
                    peak_rss=FakePeakRss(peaks or [100 * 2**20], resettable))
    return runner, clock, log, backends


def two_targets(tmp_path) -> tuple[Target, Target]:
    return (Target(fake_folder(tmp_path, "model-a"), "fake", "cpu", 1),
            Target(fake_folder(tmp_path, "model-b"), "fake", "cpu", 1))


def test_timing_columns_come_from_known_timestamps(tmp_path):
    script = Script(prefill_s=0.5, step_s=(0.1, 0.2, 0.2, 0.3))
    plan = RunPlan(targets=(Target(fake_folder(tmp_path), "fake", "cpu", 1),),
                   shapes=(Shape.pg(8, 4),), reps=1, warmup=0)
    runner, *_ = make_runner(tmp_path, plan, script=script)
    (row,) = runner.run()
    assert row.n_prompt == 8 and row.n_generated == 4 and row.n_gen_requested == 4
    assert row.load_s == pytest.approx(1.0)
    assert row.prefill_s == pytest.approx(0.5)
    assert row.prefill_tok_s == pytest.approx(8 / 0.5)
    assert row.ttft_s == pytest.approx(0.6)  # prefill + first selection
    assert row.decode_s == pytest.approx(0.7)  # first to last token
    assert row.decode_tok_s == pytest.approx(3 / 0.7)  # 2nd+ tokens
    assert [float(x) for x in row.itl_samples_s.split()] == pytest.approx([0.2, 0.2, 0.3])
    assert row.itl_p50_s == pytest.approx(0.2) and row.itl_p99_s == pytest.approx(0.298, abs=1e-3)
    assert row.backend_version == "fake-1.0" and row.config_id == "fake-model/int4/fake/cpu/t1/pp8+tg4"


def test_a_single_token_has_no_decode_rate(tmp_path):
    plan = RunPlan(targets=(Target(fake_folder(tmp_path), "fake", "cpu", 1),),
                   shapes=(Shape.pp(16),), reps=1, warmup=0)
    runner, *_ = make_runner(tmp_path, plan, script=Script(prefill_s=0.25, step_s=(0.05,)))
    (row,) = runner.run()
    assert row.ttft_s == pytest.approx(0.3) and row.prefill_tok_s == pytest.approx(64.0)
    assert row.decode_s is None and row.decode_tok_s is None and row.itl_samples_s is None


def test_warmups_are_run_but_never_written(tmp_path):
    plan = RunPlan(targets=(Target(fake_folder(tmp_path), "fake", "cpu", 1),),
                   shapes=(Shape.tg(3),), reps=3, warmup=2)
    runner, _, log, backends = make_runner(tmp_path, plan)
    rows = runner.run()
    assert [r.rep for r in rows] == [1, 2, 3]
    assert backends[0].generation == 5  # 2 warmups + 3 repetitions
    assert [e.name for e in log].count("load") == 1


def test_order_without_and_with_interleave(tmp_path):
    a, b = two_targets(tmp_path)
    shapes = (Shape.pp(4), Shape.tg(2))
    plain = RunPlan(targets=(a, b), shapes=shapes, reps=2, warmup=0)
    rows = make_runner(tmp_path, plain)[0].run()
    assert [(r.model_id, r.test, r.rep) for r in rows] == [
        ("model-a", "pp4", 1), ("model-a", "pp4", 2), ("model-a", "tg2", 1), ("model-a", "tg2", 2),
        ("model-b", "pp4", 1), ("model-b", "pp4", 2), ("model-b", "tg2", 1), ("model-b", "tg2", 2)]
    inter = RunPlan(targets=(a, b), shapes=shapes, reps=2, warmup=0, interleave=True)
    runner, _, log, _ = make_runner(tmp_path, inter)
    rows = runner.run()
    assert [(r.model_id, r.test, r.rep) for r in rows] == [
        ("model-a", "pp4", 1), ("model-a", "tg2", 1), ("model-b", "pp4", 1), ("model-b", "tg2", 1),
        ("model-a", "pp4", 2), ("model-a", "tg2", 2), ("model-b", "pp4", 2), ("model-b", "tg2", 2)]
    # interleave keeps both models loaded (loaded once each) and says RSS includes both
    assert [e.name for e in log].count("load") == 2
    assert all("interleave" in r.warnings for r in rows)


def test_without_interleave_one_model_is_loaded_at_a_time(tmp_path):
    a, b = two_targets(tmp_path)
    runner, _, log, _ = make_runner(tmp_path, RunPlan(targets=(a, b), shapes=(Shape.tg(2),),
                                                      reps=1, warmup=0))
    runner.run()
    names = [(e.name, e.backend) for e in log if e.name in ("load", "close")]
    assert [n for n, _ in names] == ["load", "close", "load", "close"]


def test_each_row_is_on_disk_before_the_next_repetition_starts(tmp_path):
    out = tmp_path / "r.csv"
    seen: list[int] = []

    def count_rows(backend: ScriptedBackend, i: int) -> None:
        if i == 1:
            with open(out, newline="") as fh:
                seen.append(sum(1 for _ in csv.reader(fh)) - 1)  # minus the header

    plan = RunPlan(targets=(Target(fake_folder(tmp_path), "fake", "cpu", 1),),
                   shapes=(Shape.tg(2),), reps=3, warmup=1)
    with ResultWriter(out) as writer:
        rows = make_runner(tmp_path, plan, writer=writer, on_token=count_rows)[0].run()
    assert seen == [0, 0, 1, 2]  # warmup, then reps 1..3 each see the earlier rows on disk
    assert read_rows(out) == rows


def test_ctrl_c_mid_sweep_keeps_every_finished_row(tmp_path):
    out = tmp_path / "r.csv"

    def interrupt(backend: ScriptedBackend, i: int) -> None:
        if backend.generation == 4 and i == 2:  # warmup + 2 reps done, third rep mid-decode
            raise KeyboardInterrupt

    a, b = two_targets(tmp_path)
    plan = RunPlan(targets=(a, b), shapes=(Shape.tg(3),), reps=3, warmup=1)
    with ResultWriter(out) as writer:
        runner, _, log, _ = make_runner(tmp_path, plan, writer=writer, on_token=interrupt)
        with pytest.raises(InterruptedRun, match=r"2 finished repetitions kept \(kept in .*r\.csv\)"):
            runner.run()
    assert [(r.model_id, r.rep) for r in read_rows(out)] == [("model-a", 1), ("model-a", 2)]
    assert log[-1].name == "close"  # the loaded backend is closed on the way out


def test_peak_memory_is_per_model_and_labelled_when_not_resettable(tmp_path):
    a, b = two_targets(tmp_path)
    plan = RunPlan(targets=(a, b), shapes=(Shape.tg(2),), reps=1, warmup=0)
    rows = make_runner(tmp_path, plan, peaks=[300 * 2**20, 500 * 2**20])[0].run()
    assert [r.peak_rss_bytes for r in rows] == [300 * 2**20, 500 * 2**20]
    assert all(r.warnings is None for r in rows)
    rows = make_runner(tmp_path, plan, resettable=False)[0].run()
    assert all(r.warnings == "peak_rss_bytes is the process-lifetime peak" for r in rows)


def test_cooldown_sleeps_after_every_run_outside_the_timed_region(tmp_path):
    plan = RunPlan(targets=(Target(fake_folder(tmp_path), "fake", "cpu", 1),),
                   shapes=(Shape.tg(2),), reps=2, warmup=1, cooldown_s=30.0)
    runner, clock, *_ = make_runner(tmp_path, plan, script=Script(prefill_s=0.5, step_s=(0.1,)))
    start = clock()
    rows = runner.run()
    assert clock() - start == pytest.approx(1.0 + 3 * (0.5 + 0.2 + 30.0))
    assert all(r.ttft_s == pytest.approx(0.6) for r in rows)


class ClockMeter:
    """A counter at constant power on the fake clock; each read costs `read_s` of clock time."""

    method, scope, update_period_s, sampling_interval_s = "rapl", "cpu_package", 0.001, None

    def __init__(self, clock: FakeClock, watts: float, read_s: float) -> None:
        self.clock, self.watts, self.read_s = clock, watts, read_s

    def read(self) -> Reading:
        self.clock.advance(self.read_s)
        return Reading(self.clock(), {"package-0": self.clock() * self.watts})


def test_energy_windows_and_the_meter_read_kept_out_of_token_times(tmp_path):
    script = Script(prefill_s=0.5, step_s=(0.1, 0.2, 0.2))
    plan = RunPlan(targets=(Target(fake_folder(tmp_path), "fake", "cpu", 1),),
                   shapes=(Shape.pg(10, 3),), reps=1, warmup=0)
    runner, clock, *_ = make_runner(tmp_path, plan, script=script)
    runner.energy = EnergySetup(ClockMeter(clock, watts=10.0, read_s=0.05), idle_power_w=4.0)
    (row,) = runner.run()
    assert row.ttft_s == pytest.approx(0.6) and row.decode_s == pytest.approx(0.4)  # read excluded
    assert row.energy_method == "rapl" and row.idle_power_w == 4.0
    # prefill window: before prefill -> after the first token's read; decode: -> after the last
    assert row.prefill_energy_j == pytest.approx(10.0 * (0.6 + 0.05))
    assert row.prefill_j_per_tok == pytest.approx(row.prefill_energy_j / 10)
    assert row.decode_energy_j == pytest.approx(10.0 * (0.4 + 0.05))
    assert row.decode_j_per_tok == pytest.approx(row.decode_energy_j / 2)
    assert row.decode_energy_net_j == pytest.approx(row.decode_energy_j - 4.0 * 0.45)


def test_generate_timed_stops_after_a_stop_token_and_counts_it():
    clock, log = FakeClock(), []
    backend = ScriptedBackend("fake", clock, Script(tokens=(5, 6, 2, 9)), log)
    timing = generate_timed(backend, [1, 2, 3], 10, stop_ids=frozenset({2}), clock=clock)
    assert timing.tokens == (5, 6, 2) and len(timing.token_times_s) == 3
    assert log[0].detail == 13  # begin() is told prompt + requested tokens


def test_peak_memory_is_reset_for_every_test_not_once_per_model(tmp_path):
    plan = RunPlan(targets=(Target(fake_folder(tmp_path), "fake", "cpu", 1),),
                   shapes=(Shape.pp(512), Shape.tg(4)), reps=1, warmup=0)
    rows = make_runner(tmp_path, plan, peaks=[900 * 2**20, 300 * 2**20])[0].run()
    assert [(r.test, r.peak_rss_bytes) for r in rows] == [("pp512", 900 * 2**20),
                                                          ("tg4", 300 * 2**20)]


def test_tokenize_s_excludes_compiling_the_chat_template(tmp_path, monkeypatch):
    from bench.run import prompts

    clock_box: list[FakeClock] = []
    compiled: list[object] = []

    class Template:
        def render(self, **kw):
            clock_box[0].advance(0.002)  # rendering is part of tokenize_s
            return "hello"

    def compile_chat(path):
        clock_box[0].advance(5.0)  # compiling is not
        compiled.append(path)
        return Template()

    class Tokenizer:
        def encode(self, text, add_special_tokens=False):
            clock_box[0].advance(0.001)
            return type("Enc", (), {"ids": [1, 2, 3]})()

    monkeypatch.setattr(prompts, "compile_chat", compile_chat)
    monkeypatch.setattr(prompts, "load_tokenizer", lambda path: Tokenizer())
    plan = RunPlan(targets=(Target(fake_folder(tmp_path), "fake", "cpu", 1),),
                   shapes=(Shape.chat(4),), reps=3, warmup=1)
    runner, clock, *_ = make_runner(tmp_path, plan)
    clock_box.append(clock)
    rows = runner.run()
    assert len(compiled) == 1  # once, at load
    assert [r.tokenize_s for r in rows] == pytest.approx([0.003] * 3)
    assert all(r.n_prompt == 3 for r in rows)


def test_the_progress_bar_never_redraws_inside_a_timed_region(tmp_path):
    """rich's auto-refresh thread would wake up during timing; the session runs without it."""
    import io
    import threading

    from rich.console import Console

    from bench.run.session import run_with_progress

    seen: list[str] = []

    def look(backend: ScriptedBackend, i: int) -> None:
        seen.extend(type(t).__name__ for t in threading.enumerate()
                    if t is not threading.current_thread())

    clock, log = FakeClock(), []
    plan = RunPlan(targets=(Target(fake_folder(tmp_path), "fake", "cpu", 1),),
                   shapes=(Shape.tg(3),), reps=2, warmup=0)
    console = Console(file=io.StringIO(), force_terminal=True)
    rows = run_with_progress(
        plan, fake_fingerprint(), tmp_path / "r.csv", None, console,
        open_backend=lambda name: ScriptedBackend(name, clock, Script(), log, look),
        clock=clock, sleep=clock.sleep, peak_rss=FakePeakRss())
    assert len(rows) == 2
    assert not [name for name in seen if "refresh" in name.lower()], seen


def _roofline_rows(tmp_path, *, eps=("cpu",), bandwidth=None, **folder):
    """pp8+tg4 and pp8 at 0.5 s prefill, then tokens at 0.1 0.2 0.2 0.3 s: decode 3 / 0.7 tok/s."""
    import dataclasses

    from bench.models.footprint import WeightFootprint

    model = dataclasses.replace(fake_folder(tmp_path), source_quant="Q4_K_M",
                                footprint=WeightFootprint(1_000_000, 1_000, 100), **folder)
    clock, log = FakeClock(), []
    plan = RunPlan(targets=tuple(Target(model, "fake", ep, 2) for ep in eps),
                   shapes=(Shape.pg(8, 4), Shape.pp(8)), reps=1, warmup=0)
    script = Script(prefill_s=0.5, step_s=(0.1, 0.2, 0.2, 0.3))
    runner = Runner(plan, fake_fingerprint(), None, clock=clock, sleep=clock.sleep,
                    open_backend=lambda name: ScriptedBackend(name, clock, script, log),
                    peak_rss=FakePeakRss(), bandwidth=bandwidth)
    return runner.run()


def test_roofline_fraction_from_bytes_per_token_and_the_threads_bandwidth(tmp_path):
    asked: list[int] = []

    def bandwidth(threads: int) -> float:
        asked.append(threads)
        return {1: 1e6, 2: 5e6}[threads]

    decode, prompt_only = _roofline_rows(tmp_path, bandwidth=bandwidth)
    # weights + KV at the mean decode context: prompt 8 + 4 generated / 2 = 10 tokens
    assert decode.bytes_per_token == 1_000_000 + 100 * 10
    assert decode.mem_bandwidth_bytes_s == 5e6 and set(asked) == {2}
    assert decode.decode_roofline_frac == pytest.approx((3 / 0.7) * 1_001_000 / 5e6)  # 86%
    assert (decode.weights, decode.source_quant) == ("real", "Q4_K_M")
    # a prompt-only row has no decode rate: the bandwidth, but no bytes or fraction
    assert prompt_only.mem_bandwidth_bytes_s == 5e6
    assert prompt_only.bytes_per_token is None and prompt_only.decode_roofline_frac is None

    from bench.run import summary

    assert "| 86% |" in summary.markdown([decode])


def test_roofline_columns_stay_empty_without_a_bandwidth_or_off_the_cpu(tmp_path):
    (decode, _) = _roofline_rows(tmp_path, weights="synthetic")
    assert decode.bytes_per_token == 1_001_000 and decode.weights == "synthetic"
    assert decode.mem_bandwidth_bytes_s is None and decode.decode_roofline_frac is None
    rows = _roofline_rows(tmp_path, eps=("cpu", "cuda"), bandwidth=lambda threads: 2e9)
    on_gpu = [r for r in rows if r.ep == "cuda"]
    assert on_gpu and all(r.mem_bandwidth_bytes_s is None and r.decode_roofline_frac is None
                          for r in on_gpu)


def test_the_chat_shape_is_skipped_with_a_reason_where_a_model_has_no_chat(tmp_path):
    base = Target(fake_folder(tmp_path, "base-model"), "fake", "cpu", 1,
                  no_chat="the model has no chat template (a base model)")
    plan = RunPlan(targets=(base,), shapes=(Shape.tg(2), Shape.chat(4)), reps=2, warmup=1)
    assert plan.total_runs == 3  # tg2 only: 1 warmup + 2 reps
    assert plan.skipped() == ["chat shape skipped on base-model/int4: the model has no chat "
                              "template (a base model)"]
    rows = make_runner(tmp_path, plan)[0].run()
    assert [r.test for r in rows] == ["tg2", "tg2"]
