"""Energy of one timing window from two meter readings, with and without the idle baseline."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from bench.meters.base import Meter, Reading


@dataclass(frozen=True)
class WindowEnergy:
    duration_s: float
    gross_j: float
    net_j: float | None  # None when no idle baseline was measured
    avg_power_w: float | None  # None for a zero-length window
    warning: str | None


def window_energy(
    start: Reading,
    end: Reading,
    idle_power_w: float | None,
    update_period_s: float,
    *,
    label: str = "energy",
    method: str = "meter",
) -> WindowEnergy:
    """gross = Δ total joules; net = gross − idle_power_w × duration (what the work itself cost).

    A window shorter than the source's update period mostly measures the counter's refresh
    phase, so it is kept but flagged; `label` ("prefill", "decode") and `method` word the warning.
    """
    duration_s = end.t_s - start.t_s
    gross_j = end.total_j - start.total_j
    net_j = gross_j - idle_power_w * duration_s if idle_power_w is not None else None
    avg_power_w = gross_j / duration_s if duration_s > 0 else None
    warnings = []
    if duration_s < update_period_s:
        warnings.append(
            f"{label} window {duration_s:.3g} s is shorter than the {method} update period {update_period_s:.3g} s: "
            "use more --gen-tokens or a longer prompt"
        )
    if gross_j < 0:
        warnings.append(f"{label} energy is negative ({gross_j:.3g} J): the source went backwards (charging or counter reset)")
    elif net_j is not None and net_j < 0:
        warnings.append(f"{label} net energy is negative ({net_j:.3g} J): the window drew less than the idle baseline (noise)")
    return WindowEnergy(duration_s, gross_j, net_j, avg_power_w, "; ".join(warnings) or None)


def measure_idle_power_w(meter: Meter, seconds: float, sleep: Callable[[float], None] = time.sleep) -> float:
    """Average power over `seconds` of doing nothing: the baseline subtracted from each window."""
    first = meter.read()
    sleep(seconds)
    last = meter.read()
    duration_s = last.t_s - first.t_s
    if duration_s <= 0:
        raise ValueError("idle window has no duration")
    return (last.total_j - first.total_j) / duration_s
