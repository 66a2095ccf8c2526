"""Energy sources: find what works on this machine, say why the rest does not, open the best one.

The TDP estimate is opened only when no measured source is available (or when asked for by name),
and it always carries method `estimate:tdp` and is_estimate=True.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

from bench.errors import EdgebenchError
from bench.meters.apple import AppleSocMeter, IoregRunner, open_ioreg_battery, probe_apple, probe_ioreg_battery, run_ioreg
from bench.meters.base import CombinedMeter, Meter, Probe, Reading, SampledMeter
from bench.meters.battery import open_battery, probe_battery
from bench.meters.estimate import EstimateMeter, EstimateParams, probe_estimate
from bench.meters.external import ExternalLogMeter, energy_between, load_power_log, probe_external
from bench.meters.nvml import NvmlMeter, probe_nvml
from bench.meters.rapl import RaplMeter, TextReader, probe_rapl, read_sysfs

__all__ = [
    "METHODS",
    "CombinedMeter",
    "EstimateParams",
    "Meter",
    "Probe",
    "Reading",
    "SampledMeter",
    "detect_meters",
    "energy_between",
    "load_power_log",
    "open_meter",
    "replacement_hint",
]

METHODS = ("rapl", "nvml", "nvml+rapl", "apple", "battery", "external", "estimate:tdp")
_ALIASES = {"estimate": "estimate:tdp", "auto": None, "rapl+nvml": "nvml+rapl"}


def _powercap(sys_root: Path) -> Path:
    return sys_root / "sys/class/powercap"


def _power_supply(sys_root: Path) -> Path:
    return sys_root / "sys/class/power_supply"


def detect_meters(
    sys_root: Path = Path("/"),
    nvml: Any = None,
    *,
    estimate_params: EstimateParams | None = None,
    power_log: Path | str | None = None,
    clock_offset_s: float = 0.0,
    system: str | None = None,
    zeus_monitor: Any = None,
    ioreg: IoregRunner | None = None,
    rapl_reader: TextReader = read_sysfs,
) -> list[Probe]:
    """One Probe per source, in preference order; `nvml`, `zeus_monitor`, `ioreg` are test hooks."""
    system = system or platform.system()
    if system == "Darwin":
        battery = probe_ioreg_battery(ioreg or run_ioreg)
    else:
        battery = probe_battery(_power_supply(sys_root))
    return [
        probe_rapl(_powercap(sys_root), reader=rapl_reader),
        probe_nvml(nvml),
        probe_apple(zeus_monitor, system=system),
        battery,
        probe_external(power_log, clock_offset_s),
        probe_estimate(estimate_params),
    ]


def open_meter(
    method: str | None,
    *,
    sys_root: Path = Path("/"),
    estimate_params: EstimateParams | None = None,
    nvml: Any = None,
    power_log: Path | str | None = None,
    clock_offset_s: float = 0.0,
    system: str | None = None,
    zeus_monitor: Any = None,
    ioreg: IoregRunner | None = None,
    rapl_reader: TextReader = read_sysfs,
) -> Meter:
    """The named source, or (method None/"auto") the best measured one, falling back to the estimate.

    Best = an external log if given, else nvml+rapl, nvml, rapl, apple, battery. The caller still
    has to start() the meter.
    """
    key = method.strip().lower() if method else None
    key = _ALIASES.get(key, key) if key else None
    if key is not None and key not in METHODS:
        raise EdgebenchError(f"unknown energy method {method!r}: choose one of {', '.join(METHODS)} (or auto)")
    system = system or platform.system()

    def rapl() -> Meter:
        probe = probe_rapl(_powercap(sys_root), reader=rapl_reader)  # reads energy_uj: catches EACCES now
        if not probe.available:
            raise EdgebenchError(probe.detail)
        return RaplMeter(_powercap(sys_root), reader=rapl_reader)

    def battery() -> Meter:
        if system == "Darwin":
            return open_ioreg_battery(ioreg or run_ioreg)
        return open_battery(_power_supply(sys_root))

    def estimate() -> Meter:
        if estimate_params is None:
            raise EdgebenchError(
                "no energy meter works here and no hardware profile gives tdp_w/idle_power_w for the estimate: "
                f"add a profile or measure ({replacement_hint(sys_root, system=system)})"
            )
        p = estimate_params
        return EstimateMeter(p.idle_power_w, p.tdp_w, p.profile_id)

    builders = {
        "rapl": rapl,
        "nvml": lambda: NvmlMeter(nvml),
        "nvml+rapl": lambda: CombinedMeter([NvmlMeter(nvml), rapl()], method="nvml+rapl"),
        "apple": lambda: AppleSocMeter(zeus_monitor),
        "battery": battery,
        "external": lambda: _external(power_log, clock_offset_s),
        "estimate:tdp": estimate,
    }
    if key is not None:
        return builders[key]()

    if power_log is not None:
        return _external(power_log, clock_offset_s)
    measured: list[Meter] = []
    for name in ("nvml", "rapl"):
        try:
            measured.append(builders[name]())
        except EdgebenchError:
            pass
    if len(measured) == 2:
        return CombinedMeter(measured, method="nvml+rapl")
    if measured:
        return measured[0]
    for name in ("apple", "battery"):
        if name == "apple" and system != "Darwin" and zeus_monitor is None:
            continue
        try:
            return builders[name]()
        except EdgebenchError:
            pass
    return estimate()


def _external(power_log: Path | str | None, clock_offset_s: float) -> Meter:
    if power_log is None:
        raise EdgebenchError("the external meter needs its CSV log: pass --power-log FILE (timestamp + W or Wh columns)")
    return ExternalLogMeter(power_log, clock_offset_s=clock_offset_s)


def replacement_hint(sys_root: Path = Path("/"), *, system: str | None = None, machine: str | None = None) -> str:
    """Which real meter would replace the TDP estimate on this hardware, as one line."""
    system = system or platform.system()
    machine = (machine or platform.machine()).lower()
    hints: list[str] = []
    if system == "Darwin":
        hints.append("`pip install zeus-apple-silicon` for SoC energy (no sudo), or run on battery for the ioreg battery meter")
    elif system == "Linux":
        powercap = _powercap(sys_root)
        has_zones = powercap.is_dir() and any(p.name.startswith(("intel-rapl:", "amd-rapl:")) for p in powercap.iterdir())
        if has_zones:
            rapl = probe_rapl(powercap)
            hints.append("RAPL works here: use --energy rapl" if rapl.available else rapl.detail)
        elif machine in ("x86_64", "amd64", "i686"):
            hints.append("RAPL needs bare-metal Linux x86 (`sudo modprobe intel_rapl_msr`); VMs rarely expose it")
        if (sys_root / "proc/driver/nvidia").exists() or (sys_root / "dev/nvidia0").exists():
            hints.append("`pip install nvidia-ml-py` for NVIDIA GPU energy (NVML)")
        if _power_supply(sys_root).is_dir() and any(_power_supply(sys_root).iterdir()):
            hints.append("run unplugged for the battery meter (laptops, phones)")
    hints.append("or log a USB-C power meter / smart plug during the run and pass its CSV with --power-log (phones, boards)")
    return "; ".join(hints)
