"""Energy sources by name: find what works here, say why the rest does not, open the best one.

Each source is one module in this folder with `probe(ctx)` and `open_meter(ctx)`; METERS maps
its name to the module, imported only when asked for. Adding a source is one module plus one
line. Estimates are opened only when no measured source is available (or when asked for by
name): `estimate:tdp` from a matched device profile, else `estimate:class` from the CPU class
table, which works on every machine. Both carry is_estimate=True and low/high bounds. NVML is
picked automatically only for runs on a GPU execution provider: an idle card's joules are not
a CPU run's energy.
"""

from __future__ import annotations

import importlib
import platform
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from bench.energy.meters.base import CombinedMeter, Meter, Probe
from bench.energy.meters.hints import replacement_hint
from bench.errors import EdgebenchError

__all__ = ["METERS", "METHODS", "MeterContext", "detect_meters", "open_meter", "replacement_hint"]

# name -> module, in preference order for detect_meters
METERS: dict[str, str] = {
    "rapl": "bench.energy.meters.rapl",
    "nvml": "bench.energy.meters.nvml",
    "apple": "bench.energy.meters.apple",
    "battery": "bench.energy.meters.battery",
    "external": "bench.energy.meters.external",
    "estimate:tdp": "bench.energy.meters.estimate",
    "estimate:class": "bench.energy.meters.estimate_class",
}
METHODS = ("rapl", "nvml", "nvml+rapl", "apple", "battery", "external", "estimate:tdp",
           "estimate:class")
_ALIASES = {"estimate": "estimate:tdp", "auto": None, "rapl+nvml": "nvml+rapl"}


@dataclass(frozen=True)
class MeterContext:
    """Where each source looks (a root path, so tests point it at a fake tree) plus test hooks."""

    sys_root: Path = Path("/")
    nvml: Any = None
    estimate_params: Any = None  # bench.energy.meters.estimate.EstimateParams (device profile)
    class_params: Any = None  # the same, from the CPU class table
    gpu_run: bool = False  # the run uses a GPU execution provider: NVML may measure it
    power_log: Path | str | None = None
    power_log_scope: str | None = None  # what the external meter measured (wall_ac, system_dc)
    clock_offset_s: float = 0.0
    system: str = ""
    zeus_monitor: Any = None
    ioreg: Any = None
    rapl_reader: Any = None

    @property
    def powercap(self) -> Path:
        return self.sys_root / "sys/class/powercap"

    @property
    def power_supply(self) -> Path:
        return self.sys_root / "sys/class/power_supply"


def _context(**kw: Any) -> MeterContext:
    if kw.get("rapl_reader") is None:
        from bench.energy.meters.rapl import read_sysfs

        kw["rapl_reader"] = read_sysfs
    kw["system"] = kw.get("system") or platform.system()
    return MeterContext(**kw)


def meter_module(name: str) -> ModuleType:
    return importlib.import_module(METERS[name])


def detect_meters(sys_root: Path = Path("/"), nvml: Any = None, **kw: Any) -> list[Probe]:
    """One Probe per source, in preference order; `nvml`, `zeus_monitor`, `ioreg` are test hooks."""
    ctx = _context(sys_root=sys_root, nvml=nvml, **kw)
    return [meter_module(name).probe(ctx) for name in METERS]


def open_meter(method: str | None, **kw: Any) -> Meter:
    """The named source, or (method None/"auto") the best one; see auto_choice for the order.

    The caller still has to start() the meter. Keywords are MeterContext's fields.
    """
    return _open(method, _context(**kw))[0]


def auto_choice(**kw: Any) -> tuple[str, str]:
    """Which source `--energy auto` would use here, and why (for `edgebench meters`)."""
    meter, why = _open(None, _context(**kw))
    return meter.method, why


def _open(method: str | None, ctx: MeterContext) -> tuple[Meter, str]:
    key = method.strip().lower() if method else None
    key = _ALIASES.get(key, key) if key else None
    if key == "estimate:tdp" and method and method.strip().lower() == "estimate" and (
            ctx.estimate_params is None):
        key = "estimate:class"  # "estimate": the profile's when one matches, else the class's
    if key is not None and key not in METHODS:
        raise EdgebenchError(f"unknown energy method {method!r}: choose one of {', '.join(METHODS)} (or auto)")

    def build(name: str) -> Meter:
        return meter_module(name).open_meter(ctx)

    if key == "nvml+rapl":
        return CombinedMeter([build("nvml"), build("rapl")], method="nvml+rapl"), "asked for"
    if key is not None:
        return build(key), "asked for"
    if ctx.power_log is not None:
        return build("external"), "a power log was given"
    skipped: list[str] = []

    def attempt(name: str) -> Meter | None:
        try:
            return build(name)
        except EdgebenchError as exc:
            skipped.append(f"{name}: {exc}")
            return None

    if ctx.gpu_run:
        gpu = attempt("nvml")
        cpu = attempt("rapl")
        if gpu and cpu:
            return CombinedMeter([gpu, cpu], method="nvml+rapl"), "GPU run: NVML plus RAPL"
        if gpu:
            return gpu, "GPU run: NVML"
        if cpu:
            return cpu, "RAPL measures the CPU package (the GPU is not metered)"
    else:
        cpu = attempt("rapl")
        if cpu:
            return cpu, "RAPL measures the CPU package"
    for name in ("apple", "battery"):
        if name == "apple" and ctx.system != "Darwin" and ctx.zeus_monitor is None:
            continue
        meter = attempt(name)
        if meter:
            return meter, f"{name} measures this device"
    why = "no meter measures here (" + "; ".join(skipped) + ")" if skipped else "no meter"
    if ctx.estimate_params is not None:
        return build("estimate:tdp"), f"{why}; a device profile matches"
    return build("estimate:class"), f"{why}; no device profile matches, so the CPU class"
