"""Window energy arithmetic and the idle baseline."""

from __future__ import annotations

import pytest

from bench.energy.windows import measure_idle_power_w, window_energy
from bench.energy.meters.base import Reading


def test_gross_net_and_average_power():
    start = Reading(10.0, {"package-0": 100.0, "package-0/core": 60.0, "package-0/dram": 5.0})
    end = Reading(12.0, {"package-0": 150.0, "package-0/core": 90.0, "package-0/dram": 9.0})
    w = window_energy(start, end, idle_power_w=8.0, update_period_s=0.001)
    assert w.duration_s == 2.0 and w.gross_j == pytest.approx(54.0)
    assert w.net_j == pytest.approx(54.0 - 16.0) and w.avg_power_w == pytest.approx(27.0)
    assert w.warning is None
    assert window_energy(start, end, None, 0.001).net_j is None


def test_window_shorter_than_update_period_is_flagged():
    w = window_energy(Reading(0.0, {"gpu-0": 0.0}), Reading(0.05, {"gpu-0": 2.0}), 10.0, 0.1, label="decode", method="nvml")
    assert w.warning == "decode window 0.05 s is shorter than the nvml update period 0.1 s: use more --gen-tokens or a longer prompt"


def test_negative_net_is_kept_but_flagged():
    w = window_energy(Reading(0.0, {"x": 0.0}), Reading(1.0, {"x": 4.0}), 5.0, 0.1)
    assert w.net_j == pytest.approx(-1.0) and "less than the idle baseline" in w.warning


def test_measure_idle_power_with_injected_sleep():
    class Meter:
        t_s = 0.0

        def read(self):
            return Reading(self.t_s, {"package-0": 7.0 * self.t_s})

    meter = Meter()

    def sleep(seconds):
        meter.t_s += seconds

    assert measure_idle_power_w(meter, 3.0, sleep=sleep) == pytest.approx(7.0)
