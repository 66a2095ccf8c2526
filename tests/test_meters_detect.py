"""detect_meters / open_meter over fake system roots."""

from __future__ import annotations

import pytest

from bench.errors import EdgebenchError
from bench.energy.meters import METHODS, detect_meters, open_meter, replacement_hint
from bench.energy.meters.estimate import EstimateParams, PowerBound

PARAMS = EstimateParams(idle_power_w=3.0, tdp_w=15.0, profile_id="test-profile")
CLASS_PARAMS = EstimateParams(1.0, 10.0, "x86-vm", method="estimate:class",
                              low=PowerBound(0.5, 5.0), high=PowerBound(2.0, 20.0))


class NoNVML:
    class NVMLError(Exception):
        pass

    def nvmlInit(self):
        raise self.NVMLError("NVML Shared Library Not Found")


class OneGPU(NoNVML):
    def nvmlInit(self):
        pass

    def nvmlShutdown(self):
        pass

    def nvmlDeviceGetCount(self):
        return 1

    def nvmlDeviceGetHandleByIndex(self, i):
        return i

    def nvmlDeviceGetTotalEnergyConsumption(self, h):
        return 1_000

    def nvmlDeviceGetPowerUsage(self, h):
        return 50_000


def rapl_root(sys_root):
    z = sys_root / "sys/class/powercap/intel-rapl:0"
    z.mkdir(parents=True)
    (z / "name").write_text("package-0\n")
    (z / "energy_uj").write_text("12345\n")
    (z / "max_energy_range_uj").write_text("262143328850\n")
    return sys_root


def test_empty_root_reports_every_source_unavailable_with_a_reason(tmp_path):
    probes = detect_meters(tmp_path, NoNVML(), system="Linux")
    assert [p.method for p in probes] == ["rapl", "nvml", "apple", "battery", "external",
                                          "estimate:tdp", "estimate:class"]
    for p in probes:
        assert not p.available and p.detail, p
    details = {p.method: p.detail for p in probes}
    assert "VM or non-Linux" in details["rapl"]
    assert "NVML Shared Library Not Found" in details["nvml"]
    assert details["apple"] == "not macOS"
    assert "battery" in details["battery"]


def test_open_meter_none_falls_back_to_the_labelled_estimate(tmp_path):
    meter = open_meter(None, sys_root=tmp_path, nvml=NoNVML(), system="Linux", estimate_params=PARAMS)
    assert meter.method == "estimate:tdp" and meter.is_estimate
    meter.start()
    assert meter.read().joules.keys() == {"estimate", "estimate/low", "estimate/high"}
    meter.stop()
    with pytest.raises(EdgebenchError, match="no energy meter works here"):
        open_meter(None, sys_root=tmp_path, nvml=NoNVML(), system="Linux")
    classy = open_meter(None, sys_root=tmp_path, nvml=NoNVML(), system="Linux",
                        class_params=CLASS_PARAMS)
    assert classy.method == "estimate:class" and classy.is_estimate
    profiled = open_meter(None, sys_root=tmp_path, nvml=NoNVML(), system="Linux",
                          class_params=CLASS_PARAMS, estimate_params=PARAMS)
    assert profiled.method == "estimate:tdp"  # a matched profile beats the class


def test_measured_sources_win_over_the_estimate(tmp_path):
    rapl_root(tmp_path)
    meter = open_meter(None, sys_root=tmp_path, nvml=NoNVML(), system="Linux", estimate_params=PARAMS)
    assert meter.method == "rapl" and not meter.is_estimate
    # an idle card's joules are not a CPU run's: NVML only for runs on a GPU EP
    cpu_run = open_meter(None, sys_root=tmp_path, nvml=OneGPU(), system="Linux",
                         estimate_params=PARAMS)
    assert cpu_run.method == "rapl"
    both = open_meter(None, sys_root=tmp_path, nvml=OneGPU(), system="Linux",
                      estimate_params=PARAMS, gpu_run=True)
    assert both.method == "nvml+rapl" and both.scope == "gpu+cpu_package"
    both.start()
    assert set(both.read().joules) == {"gpu-0", "package-0"}
    both.stop()
    assert open_meter("estimate", sys_root=tmp_path, estimate_params=PARAMS).method == "estimate:tdp"


def test_unknown_or_unavailable_method(tmp_path):
    with pytest.raises(EdgebenchError, match="unknown energy method 'joulescope'.*rapl, nvml, nvml\\+rapl"):
        open_meter("joulescope", sys_root=tmp_path)
    with pytest.raises(EdgebenchError, match="VM or non-Linux"):
        open_meter("rapl", sys_root=tmp_path)
    with pytest.raises(EdgebenchError, match="power-log"):
        open_meter("external", sys_root=tmp_path)
    assert "estimate:tdp" in METHODS


def test_power_log_is_preferred_when_given(tmp_path):
    log = tmp_path / "plug.csv"
    log.write_text("# scope: wall_ac\ntimestamp,power_w\n1767000000,5\n1767000001,5\n")
    probes = detect_meters(tmp_path, NoNVML(), system="Linux", power_log=log)
    assert [p.method for p in probes if p.available] == ["external"]
    assert open_meter(None, sys_root=tmp_path, nvml=NoNVML(), system="Linux", power_log=log).method == "external"


def test_replacement_hint_names_the_real_meter(tmp_path):
    assert "zeus-apple-silicon" in replacement_hint(tmp_path, system="Darwin")
    assert "modprobe intel_rapl_msr" in replacement_hint(tmp_path, system="Linux", machine="x86_64")
    hint = replacement_hint(tmp_path, system="Linux", machine="aarch64")
    assert "USB-C power meter" in hint and "RAPL" not in hint
    assert "RAPL works here" in replacement_hint(rapl_root(tmp_path / "x"), system="Linux", machine="x86_64")
