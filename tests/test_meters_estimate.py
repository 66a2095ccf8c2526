"""The TDP estimate with a fake process whose CPU times the test controls."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from bench.energy.meters.estimate import EstimateMeter, EstimateParams, probe_estimate


class FakeProcess:
    def __init__(self):
        self.user_s = 10.0
        self.system_s = 1.0

    def cpu_times(self):
        return SimpleNamespace(user=self.user_s, system=self.system_s, children_user=0.0, children_system=0.0)


class Clock:
    t_s = 50.0

    def __call__(self):
        return self.t_s


def test_estimate_follows_idle_plus_tdp_share_of_cpu_time():
    proc, clock = FakeProcess(), Clock()
    meter = EstimateMeter(idle_power_w=5.0, tdp_w=45.0, profile_id="laptop-x", process=proc, logical_cores=4, clock=clock)
    assert (meter.method, meter.is_estimate, meter.sampling_interval_s) == ("estimate:tdp", True, None)
    meter.start()
    a = meter.read()
    # 2 s wall, 4 cores busy for 1.5 s user + 0.5 s system each -> utilisation 8 / (2 × 4) = 1.0
    proc.user_s += 6.0
    proc.system_s += 2.0
    clock.t_s += 2.0
    b = meter.read()
    assert b.total_j - a.total_j == pytest.approx(45.0 * 2.0)
    # 4 s idle process -> idle power only
    clock.t_s += 4.0
    c = meter.read()
    assert c.total_j - b.total_j == pytest.approx(5.0 * 4.0)
    # one core of four busy for 2 s -> 25 %
    proc.user_s += 2.0
    clock.t_s += 2.0
    d = meter.read()
    assert d.total_j - c.total_j == pytest.approx((5.0 + 40.0 * 0.25) * 2.0)


def test_utilisation_is_clamped_and_params_validated():
    proc, clock = FakeProcess(), Clock()
    meter = EstimateMeter(2.0, 10.0, "p", process=proc, logical_cores=1, clock=clock)
    meter.start()
    proc.user_s += 5.0  # more CPU time than wall × cores (accounting jitter)
    clock.t_s += 1.0
    assert meter.read().total_j == pytest.approx(10.0)
    with pytest.raises(ValueError):
        EstimateParams(idle_power_w=20.0, tdp_w=10.0, profile_id="bad")


def test_probe_is_labelled_as_estimate():
    probe = probe_estimate(EstimateParams(3.0, 15.0, "rpi5"))
    assert probe.available and probe.method == "estimate:tdp" and probe.detail.startswith("ESTIMATE, not a measurement")
    assert not probe_estimate(None).available
