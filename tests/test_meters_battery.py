"""Battery meters against fake /sys/class/power_supply trees (Android phone, laptops)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.errors import EdgebenchError
from bench.energy.meters.base import SampledMeter
from bench.energy.meters.battery import (BatteryCounterMeter, open_battery, probe_battery, to_amps, to_volts)


def supply(root: Path, name: str, **files: object) -> Path:
    d = root / name
    d.mkdir(parents=True)
    for key, value in files.items():
        (d / key).write_text(f"{value}\n")
    return d


def set_files(d: Path, **files: object) -> None:
    for key, value in files.items():
        (d / key).write_text(f"{value}\n")


class Timeline:
    def __init__(self):
        self.t_s = 0.0

    def clock(self):
        return self.t_s


def android_tree(root: Path, current_now: int, voltage_now: int, status: str = "Discharging") -> Path:
    supply(root, "usb", type="USB", online=0)
    supply(root, "ac", type="Mains", online=0)
    return supply(root, "battery", type="Battery", status=status, current_now=current_now, voltage_now=voltage_now, capacity=80)


@pytest.mark.parametrize(
    "current_now, voltage_now",
    [(-850_000, 3_900_000), (850_000, 3_900_000), (-850, 3_900), (850, 3_900_000)],
    ids=["uA-negative", "uA-positive", "mA-mV", "mA-uV"],
)
def test_android_current_times_voltage_any_sign_and_unit(tmp_path, current_now, voltage_now):
    android_tree(tmp_path, current_now, voltage_now)
    tl = Timeline()
    meter = open_battery(tmp_path, clock=tl.clock, wait=lambda s: True)
    assert isinstance(meter, SampledMeter)
    assert (meter.method, meter.scope, meter.update_period_s) == ("battery", "system_dc", 1.0)
    meter.start()
    tl.t_s = 10.0
    reading = meter.read()
    meter.stop()
    assert reading.total_j == pytest.approx(0.85 * 3.9 * 10.0)


def test_unit_heuristics_explicit_override():
    assert to_amps(-1_200_000) == pytest.approx(1.2)
    assert to_amps(1200) == pytest.approx(1.2)
    assert to_amps(1200, "micro") == pytest.approx(0.0012)
    assert to_volts(3_850_000) == pytest.approx(3.85) and to_volts(3850) == pytest.approx(3.85)


def test_laptop_power_now_two_batteries(tmp_path):
    supply(tmp_path, "AC", type="Mains", online=0)
    supply(tmp_path, "BAT0", type="Battery", status="Discharging", power_now=12_500_000, energy_now=40_000_000)
    supply(tmp_path, "BAT1", type="Battery", status="Unknown", power_now=0, energy_now=20_000_000)  # idle second pack
    supply(tmp_path, "hidpp_battery_0", type="Battery", scope="Device", status="Discharging", power_now=5)  # a mouse
    tl = Timeline()
    meter = open_battery(tmp_path, clock=tl.clock, wait=lambda s: True)
    meter.start()
    tl.t_s = 4.0
    r = meter.read()
    assert set(r.joules) == {"BAT0", "BAT1"}  # the idle pack's 0 W is a real zero
    assert r.total_j == pytest.approx(12.5 * 4.0)


def test_zero_power_now_while_discharging_means_not_implemented(tmp_path):
    supply(tmp_path, "BAT0", type="Battery", status="Discharging", power_now=0, energy_now=40_000_000)
    assert isinstance(open_battery(tmp_path), BatteryCounterMeter)


def test_laptop_with_only_energy_now_is_a_coarse_counter(tmp_path):
    bat = supply(tmp_path, "BAT0", type="Battery", status="Discharging", energy_now=50_000_000, voltage_now=11_400_000)
    tl = Timeline()
    meter = open_battery(tmp_path, clock=tl.clock)
    assert isinstance(meter, BatteryCounterMeter) and meter.update_period_s == 5.0 and meter.sampling_interval_s is None
    meter.start()
    start = meter.read()
    set_files(bat, energy_now=50_000_000 - 2_500)  # 2.5 mWh = 9 J
    tl.t_s = 60.0
    end = meter.read()
    assert end.total_j - start.total_j == pytest.approx(9.0)
    probe = probe_battery(tmp_path)
    assert probe.available and "coarse counter" in probe.detail and probe.resolution_s == 5.0


def test_charge_now_counter_uses_voltage(tmp_path):
    bat = supply(tmp_path, "BAT0", type="Battery", status="Discharging", charge_now=3_000_000, voltage_now=7_600_000)
    meter = open_battery(tmp_path)
    meter.start()
    set_files(bat, charge_now=3_000_000 - 1_000)  # 1 mAh at 7.6 V = 27.36 J
    assert meter.read().total_j == pytest.approx(3.6 * 7.6)


@pytest.mark.parametrize("status", ["Charging", "Full", "Not charging"])
def test_not_discharging_is_unavailable_with_reason(tmp_path, status):
    android_tree(tmp_path, -500_000, 3_900_000, status=status)
    probe = probe_battery(tmp_path)
    assert not probe.available and status in probe.detail and "unplug" in probe.detail
    with pytest.raises(EdgebenchError, match="not discharging"):
        open_battery(tmp_path)


def test_plugging_in_mid_run_fails_the_reading(tmp_path):
    bat = android_tree(tmp_path, -500_000, 3_900_000)
    tl = Timeline()
    meter = open_battery(tmp_path, clock=tl.clock, wait=lambda s: True)
    meter.start()
    set_files(bat, status="Charging")
    tl.t_s = 1.0
    with pytest.raises(EdgebenchError, match="Charging"):
        meter.read()
    meter.stop()


def test_no_battery(tmp_path):
    assert "no " in probe_battery(tmp_path / "missing").detail
    supply(tmp_path, "AC", type="Mains", online=1)
    probe = probe_battery(tmp_path)
    assert not probe.available and "no system battery" in probe.detail
