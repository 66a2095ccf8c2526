"""The machine-sensitive decisions over a matrix of fake machines: facts, CPU class, device
profile, which energy source `--energy auto` picks, and `edgebench meters` end to end."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bench.cost.device_match import match_device
from bench.cost.profiles import load_profiles
from bench.energy.cpu_class import class_params, classify, load_classes
from bench.energy.meters import auto_choice
from bench.machine.facts import ROOT_ENV, Machine
from bench.run.hardware import fingerprint
from tests.fake_machines import MACHINES

# name -> (vendor, arch, logical, physical, vm, laptop, battery)
FACTS = {
    "amd-epyc-vm": ("AuthenticAMD", "x86_64", 2, 1, True, False, False),
    "intel-xeon-vm": ("GenuineIntel", "x86_64", 2, 2, True, False, False),
    "intel-laptop-rapl": ("GenuineIntel", "x86_64", 22, 16, False, True, True),
    "arm64-board": ("ARM", "aarch64", 4, 4, False, False, False),
    "laptop-on-battery": ("AuthenticAMD", "x86_64", 16, 8, False, True, True),
}
# name -> (device profile matched, CPU class, --energy auto for a CPU run)
EXPECTED = {
    "amd-epyc-vm": ("amd-epyc-vm-2vcpu", "x86-server", "estimate:tdp"),
    "intel-xeon-vm": (None, "x86-server", "estimate:class"),
    "intel-laptop-rapl": (None, "x86-laptop", "rapl"),
    # the board's model string matches its profile, which has no idle power: the class estimate
    "arm64-board": ("raspberry-pi-5", "arm-board", "estimate:class"),
    "laptop-on-battery": (None, "x86-laptop", "battery"),
}


@pytest.fixture(params=sorted(MACHINES))
def machine(request, tmp_path):
    return request.param, Machine(MACHINES[request.param](tmp_path / request.param),
                                  system="Linux")


def test_facts_come_from_the_tree(machine):
    name, m = machine
    f = m.facts()
    assert (f.cpu_vendor, f.cpu_arch, f.cores_logical, f.cores_physical, f.is_vm, f.is_laptop,
            f.has_battery) == FACTS[name]
    assert f.ram_bytes and f.ram_bytes >= 8 * 2**30


def test_profile_class_and_energy_source(machine):
    name, m = machine
    profile, cpu_class, source = EXPECTED[name]
    fp = fingerprint(["cpu"], m)
    assert fp.virtualized == FACTS[name][4] and fp.cpu_cores_logical == FACTS[name][2]
    device = match_device(fp.cpu_model, "", load_profiles(), cpu_cores_logical=fp.cpu_cores_logical)
    assert (device.id if device else None) == profile
    table = load_classes()
    assert classify(m.facts(), table).id == cpu_class
    params = class_params(m.facts(), table)
    assert params.method == "estimate:class"
    assert 0 < params.low.full_w < params.tdp_w < params.high.full_w
    assert params.low.idle_w <= params.idle_power_w <= params.high.idle_w
    estimate = None
    if device is not None and device.tdp_w is not None and device.idle_power_w is not None:
        from bench.energy.cpu_class import profile_params

        estimate = profile_params(device.id, device.idle_power_w, device.tdp_w,
                                  tdp_min_w=device.tdp_min_w, tdp_max_w=device.tdp_max_w)
        assert estimate.low.full_w < estimate.tdp_w < estimate.high.full_w
    method, why = auto_choice(sys_root=m.root, system="Linux", estimate_params=estimate,
                              class_params=params, nvml=NoNVML())
    assert method == source, why


def test_class_figures_scale_with_logical_cpus(tmp_path):
    vm = Machine(MACHINES["intel-xeon-vm"](tmp_path / "vm"), system="Linux").facts()
    laptop = Machine(MACHINES["intel-laptop-rapl"](tmp_path / "lap"), system="Linux").facts()
    table = load_classes()
    assert class_params(vm, table).high.full_w == pytest.approx(2 * 3.125)
    assert class_params(laptop, table).low.full_w == pytest.approx(22 * 1.17)


class NoNVML:
    class NVMLError(Exception):
        pass

    def nvmlInit(self):
        raise self.NVMLError("NVML Shared Library Not Found")


@pytest.mark.parametrize("name", sorted(MACHINES))
def test_meters_command_says_what_auto_would_use(name, tmp_path):
    root = MACHINES[name](tmp_path / name)
    env = {**os.environ, ROOT_ENV: str(root)}
    done = subprocess.run([sys.executable, "-m", "bench.cli", "meters"], capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("--energy auto for a CPU run"))
    assert f"a CPU run: {EXPECTED[name][2]} (" in line
    assert "| estimate:class | yes |" in done.stdout  # the estimate works on every machine
