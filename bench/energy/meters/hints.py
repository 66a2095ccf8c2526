"""Which real meter would replace an estimate on this machine, as one line of advice."""

from __future__ import annotations

import platform
from pathlib import Path


def replacement_hint(sys_root: Path = Path("/"), *, system: str | None = None,
                     machine: str | None = None) -> str:
    """Which real meter would replace the TDP estimate on this hardware, as one line."""
    from bench.energy.meters.rapl import probe_rapl

    system = system or platform.system()
    machine = (machine or platform.machine()).lower()
    powercap = sys_root / "sys/class/powercap"
    power_supply = sys_root / "sys/class/power_supply"
    hints: list[str] = []
    if system == "Darwin":
        hints.append("`pip install zeus-apple-silicon` for SoC energy (no sudo), or run on battery for the ioreg battery meter")
    elif system == "Linux":
        has_zones = powercap.is_dir() and any(p.name.startswith(("intel-rapl:", "amd-rapl:")) for p in powercap.iterdir())
        if has_zones:
            rapl = probe_rapl(powercap)
            hints.append("RAPL works here: use --energy rapl" if rapl.available else rapl.detail)
        elif machine in ("x86_64", "amd64", "i686"):
            hints.append("RAPL needs bare-metal Linux x86 (`sudo modprobe intel_rapl_msr`); VMs rarely expose it")
        if (sys_root / "proc/driver/nvidia").exists() or (sys_root / "dev/nvidia0").exists():
            hints.append("`pip install nvidia-ml-py` for NVIDIA GPU energy (NVML)")
        if power_supply.is_dir() and any(power_supply.iterdir()):
            hints.append("run unplugged for the battery meter (laptops, phones)")
    hints.append("or log a USB-C power meter / smart plug during the run and pass its CSV with --power-log (phones, boards)")
    return "; ".join(hints)
