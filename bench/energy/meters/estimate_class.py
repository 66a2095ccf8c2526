"""The class estimate as a registry entry: the same power model as estimate:tdp, with figures from
the CPU class table (bench/energy/cpu_class.py) instead of a device profile."""

from __future__ import annotations

from typing import Any

from bench.energy.meters.base import Probe
from bench.energy.meters.estimate import CPU_TIMES_RESOLUTION_S, EstimateMeter
from bench.errors import EdgebenchError


def probe(ctx: Any) -> Probe:
    p = ctx.class_params
    if p is None:
        return Probe("estimate:class", False, "cpu_package", None,
                     "the CPU class table could not be read")
    return Probe("estimate:class", True, "cpu_package", CPU_TIMES_RESOLUTION_S,
                 f"ESTIMATE, not a measurement, from {p.basis}: {p.low.full_w:.3g}-"
                 f"{p.high.full_w:.3g} W at full load")


def open_meter(ctx: Any) -> EstimateMeter:
    p = ctx.class_params
    if p is None:
        raise EdgebenchError("no energy meter works here and the CPU class table could not be "
                             "read; pass --energy none or measure")
    return EstimateMeter(p.idle_power_w, p.tdp_w, p.profile_id, params=p)
