"""The labelled fallback when nothing measures energy: a power model driven by this process's CPU time.

power = idle_power_w + (tdp_w - idle_power_w) × utilisation, utilisation = Δ(user+system CPU
time of this process) / (Δwall × logical cores). The CPU-time delta already integrates the load
over the window, so no thread is needed. It ignores other processes and memory: it is an
estimate (`estimate:tdp` from a device profile, `estimate:class` from the CPU class table;
is_estimate=True) and must never be reported as a measurement. The same model runs at the low
and high bounds, kept in the reading as the domains `estimate/low` and `estimate/high` (which do
not count in the total), so every row can carry both.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, Callable

from bench.energy.meters.base import Probe, Reading
from bench.errors import EdgebenchError

CPU_TIMES_RESOLUTION_S = 0.01  # process CPU times advance in scheduler ticks


@dataclass(frozen=True)
class PowerBound:
    """Power with nothing running (idle_w) and with every logical CPU busy (full_w)."""

    idle_w: float
    full_w: float

    def __post_init__(self) -> None:
        if not 0 <= self.idle_w <= self.full_w:
            raise ValueError(f"need 0 <= idle_w <= full_w, got {self.idle_w} and {self.full_w}")


@dataclass(frozen=True)
class EstimateParams:
    """The model's central figures, its low/high bounds, and where they come from.

    `profile_id` names the device profile (estimate:tdp) or the CPU class (estimate:class).
    Without explicit bounds the central figures are both bounds (callers give real ones).
    """

    idle_power_w: float
    tdp_w: float
    profile_id: str
    method: str = "estimate:tdp"
    low: PowerBound | None = None
    high: PowerBound | None = None
    basis: str = ""

    def __post_init__(self) -> None:
        if not 0 <= self.idle_power_w <= self.tdp_w:
            raise ValueError(f"need 0 <= idle_power_w <= tdp_w, got {self.idle_power_w} and {self.tdp_w}")
        central = PowerBound(self.idle_power_w, self.tdp_w)
        if self.low is None:
            object.__setattr__(self, "low", central)
        if self.high is None:
            object.__setattr__(self, "high", central)
        if not self.basis:
            object.__setattr__(self, "basis", f"profile {self.profile_id}: {self.idle_power_w:g} W "
                                              f"idle, {self.tdp_w:g} W TDP")


def estimated_power_w(idle_power_w: float, tdp_w: float, utilisation: float) -> float:
    return idle_power_w + (tdp_w - idle_power_w) * min(max(utilisation, 0.0), 1.0)


def _current_process() -> Any:
    import psutil

    return psutil.Process()


class EstimateMeter:
    scope = "cpu_package"
    sampling_interval_s: float | None = None
    update_period_s = CPU_TIMES_RESOLUTION_S
    is_estimate = True

    def __init__(
        self,
        idle_power_w: float,
        tdp_w: float,
        profile_id: str,
        *,
        process: Any = None,
        logical_cores: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        params: EstimateParams | None = None,
    ) -> None:
        self.params = params or EstimateParams(idle_power_w, tdp_w, profile_id)
        self.method = self.params.method
        self.basis = self.params.basis
        self.profile_id = profile_id
        self._process = process if process is not None else _current_process()
        self._cores = logical_cores or os.cpu_count() or 1
        self._clock = clock
        self._last: tuple[float, float] | None = None
        self._acc_j = self._low_j = self._high_j = 0.0

    def _cpu_s(self) -> float:
        times = self._process.cpu_times()
        return float(times.user + times.system)

    def start(self) -> None:
        self._last = (self._clock(), self._cpu_s())
        self._acc_j = self._low_j = self._high_j = 0.0

    def read(self) -> Reading:
        """Integrates the model from the previous read to now; reads must be in time order."""
        if self._last is None:
            raise RuntimeError("EstimateMeter.read() before start()")
        t_s, cpu_s = self._clock(), self._cpu_s()
        wall_s = t_s - self._last[0]
        if wall_s > 0:
            utilisation = (cpu_s - self._last[1]) / (wall_s * self._cores)
            p = self.params
            self._acc_j += estimated_power_w(p.idle_power_w, p.tdp_w, utilisation) * wall_s
            self._low_j += estimated_power_w(p.low.idle_w, p.low.full_w, utilisation) * wall_s
            self._high_j += estimated_power_w(p.high.idle_w, p.high.full_w, utilisation) * wall_s
        self._last = (t_s, cpu_s)
        return Reading(t_s=t_s, joules={"estimate": self._acc_j, "estimate/low": self._low_j,
                                        "estimate/high": self._high_j})

    def stop(self) -> None:
        pass


def probe_estimate(params: EstimateParams | None) -> Probe:
    if params is None:
        return Probe("estimate:tdp", False, "cpu_package", None, "no hardware profile gives tdp_w and idle_power_w for this CPU")
    return Probe(
        "estimate:tdp",
        True,
        "cpu_package",
        CPU_TIMES_RESOLUTION_S,
        f"ESTIMATE, not a measurement: {params.idle_power_w:g} W idle + ({params.tdp_w:g} W TDP - idle) × process CPU utilisation (profile {params.profile_id}); bounds {params.low.full_w:g}-{params.high.full_w:g} W at full load",
    )


def probe(ctx: Any) -> Probe:
    """Registry hook (bench.energy.meters)."""
    return probe_estimate(ctx.estimate_params)


def open_meter(ctx: Any) -> EstimateMeter:
    if ctx.estimate_params is None:
        from bench.energy.meters.hints import replacement_hint

        raise EdgebenchError(
            "no energy meter works here and no hardware profile gives tdp_w/idle_power_w for "
            f"the estimate: add a profile or measure ({replacement_hint(ctx.sys_root, system=ctx.system)})")
    p = ctx.estimate_params
    return EstimateMeter(p.idle_power_w, p.tdp_w, p.profile_id, params=p)
