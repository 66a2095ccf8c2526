"""Apple meters with a fake zeus-apple-silicon monitor and ioreg text in the macOS format."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from bench.errors import EdgebenchError
from bench.energy.meters.apple import (AppleSocMeter, open_ioreg_battery, parse_ioreg, probe_apple, probe_ioreg_battery)

# Shape of `ioreg -rn AppleSmartBattery` on an Apple Silicon MacBook (abridged). Negative
# amperages are printed as unsigned 64-bit integers: 18446744073709550406 = -1210 mA.
IOREG_ON_BATTERY = """\
+-o AppleSmartBattery  <class AppleSmartBattery, id 0x100000263, registered, matched, active, busy 0 (0 ms), retain 8>
    {
      "PostChargeWaitSeconds" = 120
      "built-in" = Yes
      "AppleRawAdapterDetails" = ()
      "ExternalConnected" = No
      "AppleRawCurrentCapacity" = 4123
      "InstantAmperage" = 18446744073709550406
      "Amperage" = 18446744073709550480
      "BatteryData" = {"StateOfCharge"=88,"Voltage"=9999,"QmaxCell0"=4512}
      "Voltage" = 12621
      "IsCharging" = No
      "FullyCharged" = No
      "CurrentCapacity" = 88
    }
"""
IOREG_ON_AC = IOREG_ON_BATTERY.replace('"ExternalConnected" = No', '"ExternalConnected" = Yes').replace(
    '"IsCharging" = No', '"IsCharging" = Yes'
).replace("18446744073709550406", "1503")


class FakeZeusMonitor:
    """AppleEnergyMonitor.get_cumulative_energy() -> AppleEnergyMetrics with Optional mJ fields."""

    def __init__(self):
        self.mj = {"cpu_total_mj": 1_000, "gpu_mj": 500, "ane_mj": None, "dram_mj": 200, "gpu_sram_mj": 10}

    def get_cumulative_energy(self):
        return SimpleNamespace(**self.mj, efficiency_cores_mj=[1, 2], performance_cores_mj=[3, 4])


class Clock:
    t_s = 0.0

    def __call__(self):
        return self.t_s


def test_soc_meter_reads_cumulative_mj_per_block():
    mon, clock = FakeZeusMonitor(), Clock()
    meter = AppleSocMeter(mon, clock=clock)
    # the OS's model-based IOReport figures, scoped to the blocks summed (ane: no channel here)
    assert (meter.method, meter.scope, meter.is_estimate, meter.sampling_interval_s) == ("apple-ioreport", "cpu+gpu+dram", False, None)
    meter.start()
    start = meter.read()
    mon.mj.update(cpu_total_mj=4_000, gpu_mj=1_500, dram_mj=700, gpu_sram_mj=60)
    clock.t_s = 1.5
    end = meter.read()
    assert "ane" not in end.joules  # channel missing on this chip: not reported as 0
    assert end.joules["gpu/sram"] == pytest.approx(0.05)
    assert end.total_j - start.total_j == pytest.approx(3.0 + 1.0 + 0.5)  # gpu/sram not added twice


def test_probe_apple():
    assert probe_apple(None, system="Linux").detail == "not macOS"
    probe = probe_apple(FakeZeusMonitor(), system="Darwin")
    assert probe.available and "cpu" in probe.detail and "apple-ioreport" in probe.detail
    assert (probe.method, probe.scope) == ("apple", "cpu+gpu+dram")  # `--energy apple` selects it


def test_scope_lists_every_channel_the_chip_has_and_only_those():
    mon = FakeZeusMonitor()
    mon.mj.update(ane_mj=30)
    assert AppleSocMeter(mon).scope == "cpu+gpu+ane+dram"
    mon.mj.update(dram_mj=None, gpu_sram_mj=None)  # an older chip without DRAM counters
    assert AppleSocMeter(mon).scope == "cpu+gpu+ane"
    mon.mj = {k: None for k in mon.mj}
    with pytest.raises(EdgebenchError, match="no energy channels"):
        AppleSocMeter(mon)


def test_ioreg_parse_top_level_only_and_signed_amperage():
    fields = parse_ioreg(IOREG_ON_BATTERY)
    assert fields["Voltage"] == "12621"  # not the nested BatteryData Voltage
    clock = Clock()
    meter = open_ioreg_battery(lambda: IOREG_ON_BATTERY, clock=clock, wait=lambda s: True)
    assert (meter.method, meter.scope) == ("battery", "system_dc")
    meter.start()
    clock.t_s = 10.0
    reading = meter.read()  # holds the last sample to now: no ioreg subprocess at a window edge
    meter.stop()
    assert reading.total_j == pytest.approx(1.210 * 12.621 * 10.0)


def test_ioreg_on_ac_is_refused():
    probe = probe_ioreg_battery(lambda: IOREG_ON_AC)
    assert not probe.available and "ExternalConnected=Yes" in probe.detail
    with pytest.raises(EdgebenchError, match="AC power"):
        open_ioreg_battery(lambda: IOREG_ON_AC)
    assert probe_ioreg_battery(lambda: IOREG_ON_BATTERY).available
    assert "no AppleSmartBattery" in probe_ioreg_battery(lambda: "").detail
