"""Fake machines as /proc and /sys trees under tmp_path: the matrix machine-sensitive tests run on.

Each builder writes what that kind of machine exposes (cpuinfo, meminfo, DMI, power_supply,
powercap) so the real reading code decides from files, never from the host it runs on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _x86_cpuinfo(model: str, vendor: str, threads: int, cores: int, vm: bool) -> str:
    flags = "fpu vme de pse tsc msr pae lm constant_tsc" + (" hypervisor" if vm else "")
    blocks = []
    for cpu in range(threads):
        blocks.append(f"processor\t: {cpu}\nvendor_id\t: {vendor}\ncpu family\t: 6\n"
                      f"model\t\t: 207\nmodel name\t: {model}\nphysical id\t: 0\n"
                      f"siblings\t: {threads}\ncore id\t\t: {cpu % cores}\n"
                      f"cpu cores\t: {cores}\nflags\t\t: {flags}\n")
    return "\n".join(blocks) + "\n"


def _meminfo(gib: int) -> str:
    return f"MemTotal:       {gib * 1024 * 1024} kB\nMemFree:        1024 kB\n"


def amd_epyc_vm(root: Path) -> Path:
    """The development VM: 2 vCPUs reporting just 'AMD EPYC' (matches a device profile)."""
    _write(root, "proc/cpuinfo", _x86_cpuinfo("AMD EPYC", "AuthenticAMD", 2, 1, vm=True))
    _write(root, "proc/meminfo", _meminfo(8))
    _write(root, "sys/class/dmi/id/sys_vendor", "QEMU\n")
    _write(root, "sys/class/dmi/id/product_name", "Standard PC (Q35 + ICH9, 2009)\n")
    return root


def intel_xeon_vm(root: Path) -> Path:
    """A cloud VM whose CPU name matches no profile, with no RAPL."""
    _write(root, "proc/cpuinfo", _x86_cpuinfo("Intel(R) Xeon(R) Processor", "GenuineIntel", 2, 2,
                                              vm=True))
    _write(root, "proc/meminfo", _meminfo(24))
    _write(root, "sys/class/dmi/id/sys_vendor", "Google\n")
    _write(root, "sys/class/dmi/id/product_name", "Google Compute Engine\n")
    return root


def _rapl(root: Path) -> None:
    zone = "sys/class/powercap/intel-rapl:0"
    _write(root, f"{zone}/name", "package-0\n")
    _write(root, f"{zone}/energy_uj", "123456789\n")
    _write(root, f"{zone}/max_energy_range_uj", "262143328850\n")


def intel_laptop_rapl(root: Path) -> Path:
    """A bare-metal Intel laptop on mains power with readable RAPL."""
    _write(root, "proc/cpuinfo", _x86_cpuinfo("Intel(R) Core(TM) Ultra 7 155H", "GenuineIntel",
                                              22, 16, vm=False))
    _write(root, "proc/meminfo", _meminfo(32))
    _write(root, "sys/class/dmi/id/sys_vendor", "LENOVO\n")
    _write(root, "sys/class/dmi/id/product_name", "21KC\n")
    _write(root, "sys/class/dmi/id/chassis_type", "10\n")
    _rapl(root)
    _write(root, "sys/class/power_supply/AC/type", "Mains\n")
    _write(root, "sys/class/power_supply/AC/online", "1\n")
    _write(root, "sys/class/power_supply/BAT0/type", "Battery\n")
    _write(root, "sys/class/power_supply/BAT0/status", "Charging\n")
    _write(root, "sys/class/power_supply/BAT0/power_now", "0\n")
    return root


def arm64_board(root: Path) -> Path:
    """A Raspberry Pi 5 class board: 4 Cortex-A76 cores, no power sensor, no DMI."""
    blocks = [f"processor\t: {cpu}\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd\n"
              f"CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x4\n"
              f"CPU part\t: 0xd0b\nCPU revision\t: 1\n" for cpu in range(4)]
    _write(root, "proc/cpuinfo", "\n".join(blocks) + "\nRevision\t: d04170\nModel\t\t: "
                                 "Raspberry Pi 5 Model B Rev 1.0\n")
    _write(root, "proc/meminfo", _meminfo(8))
    _write(root, "proc/device-tree/model", "Raspberry Pi 5 Model B Rev 1.0\0")
    return root


def laptop_on_battery(root: Path) -> Path:
    """An AMD laptop unplugged: the battery meter measures it (no RAPL exposed)."""
    _write(root, "proc/cpuinfo", _x86_cpuinfo("AMD Ryzen 7 7840U w/ Radeon 780M Graphics",
                                              "AuthenticAMD", 16, 8, vm=False))
    _write(root, "proc/meminfo", _meminfo(16))
    _write(root, "sys/class/dmi/id/sys_vendor", "Framework\n")
    _write(root, "sys/class/dmi/id/chassis_type", "10\n")
    _write(root, "sys/class/power_supply/ACAD/type", "Mains\n")
    _write(root, "sys/class/power_supply/ACAD/online", "0\n")
    _write(root, "sys/class/power_supply/BAT1/type", "Battery\n")
    _write(root, "sys/class/power_supply/BAT1/status", "Discharging\n")
    _write(root, "sys/class/power_supply/BAT1/power_now", "9500000\n")
    _write(root, "sys/class/power_supply/BAT1/voltage_now", "15400000\n")
    return root


def _dmi(root: Path, **fields: str) -> None:
    for name, value in fields.items():
        _write(root, f"sys/class/dmi/id/{name}", value + "\n")


def aws_nitro_vm(root: Path) -> Path:
    """An EC2 instance on the Nitro hypervisor: Amazon EC2 DMI, product name = instance type."""
    _write(root, "proc/cpuinfo", _x86_cpuinfo("Intel(R) Xeon(R) Platinum 8488C", "GenuineIntel",
                                              2, 1, vm=True))
    _write(root, "proc/meminfo", _meminfo(8))
    _dmi(root, sys_vendor="Amazon EC2", product_name="m7i.large", bios_vendor="Amazon EC2",
         board_vendor="Amazon EC2", chassis_asset_tag="Amazon EC2")
    return root


def aws_xen_vm(root: Path) -> Path:
    """An older EC2 instance on Xen: only the BIOS version says amazon."""
    _write(root, "proc/cpuinfo", _x86_cpuinfo("Intel(R) Xeon(R) CPU E5-2676 v3 @ 2.40GHz",
                                              "GenuineIntel", 2, 1, vm=True))
    _write(root, "proc/meminfo", _meminfo(8))
    _dmi(root, sys_vendor="Xen", product_name="HVM domU", bios_vendor="Xen",
         bios_version="4.2.amazon")
    return root


def aws_metal(root: Path) -> Path:
    """A rented EC2 bare-metal instance: no hypervisor flag, Amazon EC2 DMI all the same."""
    _write(root, "proc/cpuinfo", _x86_cpuinfo("Intel(R) Xeon(R) Platinum 8488C", "GenuineIntel",
                                              8, 4, vm=False))
    _write(root, "proc/meminfo", _meminfo(16))
    _dmi(root, sys_vendor="Amazon EC2", product_name="m7i.metal-24xl", bios_vendor="Amazon EC2")
    return root


def azure_vm(root: Path, *, asset_tag: bool = True) -> Path:
    """A Hyper-V guest; with Azure's chassis asset tag it is an Azure VM, without it a local one."""
    _write(root, "proc/cpuinfo", _x86_cpuinfo("AMD EPYC 7763 64-Core Processor", "AuthenticAMD",
                                              2, 1, vm=True))
    _write(root, "proc/meminfo", _meminfo(8))
    _dmi(root, sys_vendor="Microsoft Corporation", product_name="Virtual Machine",
         bios_vendor="Microsoft Corporation", board_vendor="Microsoft Corporation")
    if asset_tag:
        _dmi(root, chassis_asset_tag="7783-7084-3265-9085-8269-3286-77")
    return root


def hyperv_vm(root: Path) -> Path:
    """A Hyper-V VM on someone's own Windows host: Microsoft DMI, no Azure asset tag."""
    return azure_vm(root, asset_tag=False)


def kvm_without_dmi(root: Path) -> Path:
    """A KVM guest exposing no /sys/class/dmi at all, only the hypervisor CPU flag."""
    _write(root, "proc/cpuinfo", _x86_cpuinfo("AMD EPYC", "AuthenticAMD", 2, 1, vm=True))
    _write(root, "proc/meminfo", _meminfo(8))
    return root


# Machines for cloud detection (tests/test_cloud_detect.py); MACHINES below is the matrix every
# machine-sensitive test runs on, and keeps its five members.
DMI_MACHINES: dict[str, Callable[[Path], Path]] = {
    "aws-nitro-vm": aws_nitro_vm,
    "aws-xen-vm": aws_xen_vm,
    "aws-metal": aws_metal,
    "azure-vm": azure_vm,
    "hyperv-vm": hyperv_vm,
    "kvm-without-dmi": kvm_without_dmi,
}

MACHINES: dict[str, Callable[[Path], Path]] = {
    "amd-epyc-vm": amd_epyc_vm,
    "intel-xeon-vm": intel_xeon_vm,
    "intel-laptop-rapl": intel_laptop_rapl,
    "arm64-board": arm64_board,
    "laptop-on-battery": laptop_on_battery,
}
