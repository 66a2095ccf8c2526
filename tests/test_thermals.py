"""CPU frequency/temperature from fake sysfs trees, and the throttle figure."""

from __future__ import annotations

import pytest

from bench.run.thermals import ThermalReading, read_thermals, throttle_drop


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_sysfs_frequency_and_preferred_thermal_zone(tmp_path):
    for cpu, khz in enumerate((1_800_000, 2_200_000)):
        write(tmp_path / f"sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_cur_freq", f"{khz}\n")
    write(tmp_path / "sys/devices/system/cpu/cpufreq/policy0/scaling_cur_freq", "999\n")  # not a cpuN dir
    write(tmp_path / "sys/class/thermal/thermal_zone0/type", "acpitz\n")
    write(tmp_path / "sys/class/thermal/thermal_zone0/temp", "40000\n")
    write(tmp_path / "sys/class/thermal/thermal_zone1/type", "battery\n")
    write(tmp_path / "sys/class/thermal/thermal_zone1/temp", "30000\n")
    write(tmp_path / "sys/class/thermal/thermal_zone2/type", "x86_pkg_temp\n")
    write(tmp_path / "sys/class/thermal/thermal_zone2/temp", "67500\n")
    assert read_thermals(tmp_path) == ThermalReading(cpu_freq_mhz=2000.0, cpu_temp_c=67.5)


def test_phone_soc_zone_and_empty_tree(tmp_path):
    write(tmp_path / "sys/class/thermal/thermal_zone0/type", "battery\n")
    write(tmp_path / "sys/class/thermal/thermal_zone0/temp", "30000\n")
    assert read_thermals(tmp_path) == ThermalReading(None, None)  # a battery zone is not the CPU
    write(tmp_path / "sys/class/thermal/thermal_zone7/type", "soc_thermal\n")
    write(tmp_path / "sys/class/thermal/thermal_zone7/temp", "81000\n")
    assert read_thermals(tmp_path).cpu_temp_c == 81.0


def test_real_root_does_not_crash():
    reading = read_thermals()
    assert reading.cpu_freq_mhz is None or reading.cpu_freq_mhz > 0


def test_throttle_drop():
    assert throttle_drop([20.0, 18.0, 12.0]) == pytest.approx(0.4)
    assert throttle_drop([10.0]) is None and throttle_drop([0.0, 1.0]) is None
