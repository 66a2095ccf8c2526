"""NvmlMeter against a fake NVML object with the pynvml function names."""

from __future__ import annotations

import pytest

from bench.errors import EdgebenchError
from bench.energy.meters.nvml import NvmlMeter, probe_nvml


class FakeNVML:
    class NVMLError(Exception):
        pass

    def __init__(self, gpus: list[dict], *, init_fails: bool = False):
        self.gpus = gpus  # each: {"energy_mj": int | None (None = not supported), "power_mw": int}
        self.init_fails = init_fails
        self.inits = self.shutdowns = 0

    def nvmlInit(self):
        if self.init_fails:
            raise self.NVMLError("Driver Not Loaded")
        self.inits += 1

    def nvmlShutdown(self):
        self.shutdowns += 1

    def nvmlDeviceGetCount(self):
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, i):
        return i

    def nvmlDeviceGetTotalEnergyConsumption(self, h):
        if self.gpus[h]["energy_mj"] is None:
            raise self.NVMLError("Not Supported")
        return self.gpus[h]["energy_mj"]

    def nvmlDeviceGetPowerUsage(self, h):
        return self.gpus[h]["power_mw"]


class Timeline:
    def __init__(self):
        self.t_s = 0.0

    def clock(self):
        return self.t_s


def test_energy_counter_read_at_window_edges_without_thread():
    nvml = FakeNVML([{"energy_mj": 5_000_000, "power_mw": 0}, {"energy_mj": 1_000, "power_mw": 0}])
    tl = Timeline()
    meter = NvmlMeter(nvml, clock=tl.clock)
    assert meter.sampling_interval_s is None and meter.update_period_s == 0.1 and meter.scope == "gpu"
    meter.start()
    start = meter.read()
    nvml.gpus[0]["energy_mj"] += 150_000  # 150 J
    nvml.gpus[1]["energy_mj"] += 30_500
    tl.t_s = 2.0
    end = meter.read()
    meter.stop()
    assert end.joules["gpu-0"] - start.joules["gpu-0"] == pytest.approx(150.0)
    assert end.total_j - start.total_j == pytest.approx(180.5)
    assert nvml.shutdowns == 1


def test_without_energy_counter_power_is_sampled_and_integrated():
    nvml = FakeNVML([{"energy_mj": None, "power_mw": 70_000}])
    tl = Timeline()
    steps = [0]

    def wait(timeout_s):  # 40 samples of 0.05 s; the power steps to 120 W after 1 s
        if steps[0] == 40:
            return True
        steps[0] += 1
        tl.t_s += timeout_s
        if tl.t_s >= 1.0 - 1e-9:
            nvml.gpus[0]["power_mw"] = 120_000
        return False

    meter = NvmlMeter(nvml, clock=tl.clock, wait=wait)
    assert meter.sampling_interval_s == 0.05
    meter.start()
    meter._sampler._thread.join()  # the fake wait ends the thread after 40 samples
    reading = meter.read()
    meter.stop()
    # 70 W for 1 s, 120 W for 1 s; the trapezoid smears the step over one 0.05 s interval
    assert reading.joules["gpu-0"] == pytest.approx(70 + 120, rel=0.01)


def test_mixed_gpus_counter_and_sampled():
    nvml = FakeNVML([{"energy_mj": 0, "power_mw": 0}, {"energy_mj": None, "power_mw": 50_000}])
    tl = Timeline()
    meter = NvmlMeter(nvml, clock=tl.clock, wait=lambda s: True)
    assert list(meter.counter_handles) == ["gpu-0"] and list(meter.power_handles) == ["gpu-1"]
    meter.start()
    tl.t_s = 1.0
    nvml.gpus[0]["energy_mj"] = 10_000
    r = meter.read()
    meter.stop()
    assert r.joules == pytest.approx({"gpu-0": 10.0, "gpu-1": 50.0})


def test_probe_says_why_nvml_is_unavailable():
    assert "Driver Not Loaded" in probe_nvml(FakeNVML([], init_fails=True)).detail
    assert "no NVIDIA GPU" in probe_nvml(FakeNVML([])).detail
    probe = probe_nvml(FakeNVML([{"energy_mj": 1, "power_mw": 1}, {"energy_mj": None, "power_mw": 1}]))
    assert probe.available and probe.detail == "gpu-0: energy counter, gpu-1: power sampled"
    with pytest.raises(EdgebenchError, match="Driver Not Loaded"):
        NvmlMeter(FakeNVML([], init_fails=True))


def test_missing_pynvml_is_reported(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes `import pynvml` raise ImportError
    probe = probe_nvml(None)
    assert not probe.available and "pip install nvidia-ml-py" in probe.detail
