"""Energy sources by name: find what works here, say why the rest does not, open the best one.

Each source is one module in this folder with `probe(ctx)` and `open_meter(ctx)`; METERS maps
its name to the module, imported only when asked for. Adding a source is one module plus one
line. The TDP estimate is opened only when no measured source is available (or when asked for
by name), and it always carries method `estimate:tdp` and is_estimate=True.
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
}
METHODS = ("rapl", "nvml", "nvml+rapl", "apple", "battery", "external", "estimate:tdp")
_ALIASES = {"estimate": "estimate:tdp", "auto": None, "rapl+nvml": "nvml+rapl"}


@dataclass(frozen=True)
class MeterContext:
    """Where each source looks (a root path, so tests point it at a fake tree) plus test hooks."""

    sys_root: Path = Path("/")
    nvml: Any = None
    estimate_params: Any = None  # bench.energy.meters.estimate.EstimateParams
    power_log: Path | str | None = None
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
    """The named source, or (method None/"auto") the best measured one, falling back to the estimate.

    Best = an external log if given, else nvml+rapl, nvml, rapl, apple, battery. The caller still
    has to start() the meter. Keywords are MeterContext's fields.
    """
    key = method.strip().lower() if method else None
    key = _ALIASES.get(key, key) if key else None
    if key is not None and key not in METHODS:
        raise EdgebenchError(f"unknown energy method {method!r}: choose one of {', '.join(METHODS)} (or auto)")
    ctx = _context(**kw)

    def build(name: str) -> Meter:
        return meter_module(name).open_meter(ctx)

    if key == "nvml+rapl":
        return CombinedMeter([build("nvml"), build("rapl")], method="nvml+rapl")
    if key is not None:
        return build(key)
    if ctx.power_log is not None:
        return build("external")
    measured: list[Meter] = []
    for name in ("nvml", "rapl"):
        try:
            measured.append(build(name))
        except EdgebenchError:
            pass
    if len(measured) == 2:
        return CombinedMeter(measured, method="nvml+rapl")
    if measured:
        return measured[0]
    for name in ("apple", "battery"):
        if name == "apple" and ctx.system != "Darwin" and ctx.zeus_monitor is None:
            continue
        try:
            return build(name)
        except EdgebenchError:
            pass
    return build("estimate:tdp")
