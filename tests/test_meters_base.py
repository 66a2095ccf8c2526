"""SampledMeter integration against known power traces on a fake timeline (no real sleeping)."""

from __future__ import annotations

import pytest

from bench.errors import EdgebenchError
from bench.energy.meters.base import CombinedMeter, Reading, SampledMeter, counts_in_total


class Timeline:
    """A fake monotonic clock; `waiter(n)` makes the sampler thread take exactly n steps then exit."""

    def __init__(self) -> None:
        self.t_s = 0.0

    def clock(self) -> float:
        return self.t_s

    def waiter(self, steps: int):
        remaining = [steps]

        def wait(timeout_s: float) -> bool:
            if remaining[0] == 0:
                return True
            remaining[0] -= 1
            self.t_s += timeout_s
            return False

        return wait


def sampled(tl: Timeline, trace, *, interval_s: float = 0.1, steps: int = 0) -> SampledMeter:
    return SampledMeter(
        lambda: {"dev": trace(tl.t_s)},
        method="test",
        scope="system_dc",
        sampling_interval_s=interval_s,
        update_period_s=interval_s,
        clock=tl.clock,
        wait=tl.waiter(steps),
    )


TRACES = {
    # name: (power at t, exact joules over [0, 10 s])
    "constant": (lambda t: 5.0, 50.0),
    "step": (lambda t: 2.0 if t < 3.05 else 12.0, 2.0 * 3.05 + 12.0 * 6.95),
    "ramp": (lambda t: 2.0 * t, 100.0),
}


@pytest.mark.parametrize("name", sorted(TRACES))
def test_threaded_sampler_integrates_known_traces_within_1_percent(name):
    trace, exact_j = TRACES[name]
    tl = Timeline()
    meter = sampled(tl, trace, interval_s=0.1, steps=100)  # the thread advances the clock 100 × 0.1 s
    meter.start()
    meter.stop()  # joins: the thread has taken its 100 samples
    reading = meter.read()
    assert reading.t_s == pytest.approx(10.0)
    assert reading.joules["dev"] == pytest.approx(exact_j, rel=0.01)


def test_read_takes_a_fresh_sample_so_window_edges_are_exact():
    tl = Timeline()
    meter = sampled(tl, lambda t: 4.0, steps=0)
    meter.start()
    meter.stop()
    for t in (0.1, 0.2, 0.3):  # samples driven by hand
        tl.t_s = t
        meter.sample()
    tl.t_s = 0.345  # between two sampling ticks
    reading = meter.read()
    assert reading.t_s == 0.345
    assert reading.joules["dev"] == pytest.approx(4.0 * 0.345)


def test_sampler_thread_errors_surface_on_read_as_edgebench_errors():
    tl = Timeline()
    calls = []

    def source():
        calls.append(tl.t_s)
        if len(calls) > 2:
            raise OSError("device vanished")
        return {"dev": 1.0}

    meter = SampledMeter(source, method="test", scope="gpu", sampling_interval_s=0.1, update_period_s=0.1, clock=tl.clock, wait=tl.waiter(5))
    meter.start()
    with pytest.raises(EdgebenchError, match="test power sampling failed: device vanished"):
        meter.stop()


def test_total_counts_packages_and_dram_but_not_subzones_or_psys():
    r = Reading(
        t_s=0.0,
        joules={
            "package-0": 10.0,
            "package-0/core": 6.0,
            "package-0/uncore": 1.0,
            "package-0/dram": 2.0,
            "package-1": 20.0,
            "package-1/dram": 3.0,
            "psys": 100.0,
            "gpu-0": 7.0,
        },
    )
    assert r.total_j == pytest.approx(10 + 2 + 20 + 3 + 7)
    assert counts_in_total("dram") and not counts_in_total("gpu/sram")


class _Fixed:
    def __init__(self, method, scope, joules, interval, period):
        self.method, self.scope, self.sampling_interval_s, self.update_period_s = method, scope, interval, period
        self.is_estimate = False
        self.joules = joules
        self.started = self.stopped = False

    def start(self):
        self.started = True

    def read(self):
        return Reading(1.0, dict(self.joules))

    def stop(self):
        self.stopped = True


def test_combined_meter_merges_domains_and_reports_coarsest_period():
    a = _Fixed("nvml", "gpu", {"gpu-0": 5.0}, 0.05, 0.1)
    b = _Fixed("rapl", "cpu_package+dram", {"package-0": 3.0, "package-0/dram": 1.0}, None, 0.001)
    m = CombinedMeter([a, b], method="nvml+rapl")
    m.start()
    assert (m.method, m.scope, m.sampling_interval_s, m.update_period_s) == ("nvml+rapl", "gpu+cpu_package+dram", 0.05, 0.1)
    assert m.read().total_j == pytest.approx(9.0)
    m.stop()
    assert a.stopped and b.stopped


def test_read_without_fresh_sample_holds_the_last_power_to_now():
    tl = Timeline()
    power = {"dev": 3.0}
    meter = SampledMeter(lambda: dict(power), method="slow", scope="system_dc", sampling_interval_s=1.0, update_period_s=1.0,
                         sample_on_read=False, clock=tl.clock, wait=tl.waiter(0))
    meter.start()
    meter.stop()
    tl.t_s = 1.0
    meter.sample()
    power["dev"] = 100.0  # not seen until the next sample
    tl.t_s = 1.5
    reading = meter.read()
    assert reading.t_s == 1.5 and reading.joules["dev"] == pytest.approx(3.0 * 1.5)
