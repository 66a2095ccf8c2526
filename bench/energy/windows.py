"""Named measurement windows: energy between two meter readings, gross and net of idle.

The runner reads the meter at the edges of the prefill and decode windows (like Zeus's
begin_window/end_window); this module turns those readings into a row's energy columns.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from bench.energy.meters.base import Meter, Reading


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


@dataclass(frozen=True)
class EnergySetup:
    """The meter for this run and the idle baseline measured before the first test."""

    meter: Any  # bench.energy.meters.base.Meter, started
    idle_power_w: float | None


@dataclass(frozen=True)
class EnergyFields:
    """The energy columns of one row (all None when nothing was metered)."""

    energy_method: str = "none"
    energy_scope: str | None = None
    sampling_interval_s: float | None = None
    idle_power_w: float | None = None
    prefill_energy_j: float | None = None
    prefill_energy_net_j: float | None = None
    decode_energy_j: float | None = None
    decode_energy_net_j: float | None = None
    prefill_j_per_tok: float | None = None
    decode_j_per_tok: float | None = None
    prefill_avg_power_w: float | None = None
    decode_avg_power_w: float | None = None
    energy_warning: str | None = None
    prefill_j_per_tok_low: float | None = None
    prefill_j_per_tok_high: float | None = None
    decode_j_per_tok_low: float | None = None
    decode_j_per_tok_high: float | None = None
    energy_basis: str | None = None


def energy_fields(setup: EnergySetup | None, edges: Sequence[Reading], n_prompt: int,
                  n_generated: int) -> EnergyFields:
    """Prefill window = TTFT (prefill + first selection), per prompt token; decode window =
    first to last token, per 2nd+ token, matching decode_tok_s."""
    if setup is None or len(edges) != 3:
        return EnergyFields()
    m = setup.meter
    r0, r1, r2 = edges
    pre = window_energy(r0, r1, setup.idle_power_w, m.update_period_s, label="prefill",
                        method=m.method)
    n_decode = n_generated - 1
    dec = window_energy(r1, r2, setup.idle_power_w, m.update_period_s, label="decode",
                        method=m.method) if n_decode > 0 else None
    warnings = [w for w in (pre.warning, dec.warning if dec else None) if w]
    bounds = {}
    if getattr(m, "is_estimate", False):
        def delta(a: Reading, b: Reading, domain: str) -> float | None:
            if domain not in a.joules or domain not in b.joules:
                return None
            return b.joules[domain] - a.joules[domain]

        def per(j: float | None, n: int) -> float | None:
            return j / n if j is not None and n > 0 else None

        bounds = dict(
            prefill_j_per_tok_low=per(delta(r0, r1, "estimate/low"), n_prompt),
            prefill_j_per_tok_high=per(delta(r0, r1, "estimate/high"), n_prompt),
            decode_j_per_tok_low=per(delta(r1, r2, "estimate/low"), n_decode),
            decode_j_per_tok_high=per(delta(r1, r2, "estimate/high"), n_decode),
            energy_basis=getattr(m, "basis", None) or None)
    return EnergyFields(
        energy_method=m.method, energy_scope=m.scope, sampling_interval_s=m.sampling_interval_s,
        idle_power_w=setup.idle_power_w,
        prefill_energy_j=pre.gross_j, prefill_energy_net_j=pre.net_j,
        decode_energy_j=dec.gross_j if dec else None,
        decode_energy_net_j=dec.net_j if dec else None,
        prefill_j_per_tok=pre.gross_j / n_prompt,
        decode_j_per_tok=dec.gross_j / n_decode if dec else None,
        prefill_avg_power_w=pre.avg_power_w, decode_avg_power_w=dec.avg_power_w if dec else None,
        energy_warning="; ".join(warnings) or None, **bounds)
