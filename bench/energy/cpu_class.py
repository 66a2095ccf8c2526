"""The estimate for any machine: a CPU class (hardware_profiles/cpu_classes.toml) from what the
machine says about itself, turned into low/central/high power figures for the estimate meter.

Used only when nothing measures and no device profile matches; every figure has a source, and
the rows keep both bounds, so a verdict can say whether it holds at both.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import paths
from bench.energy.meters.estimate import EstimateParams, PowerBound
from bench.errors import EdgebenchError
from bench.machine.facts import MachineFacts
from bench.toml_load import load_toml

CLASSES_FILE = "cpu_classes.toml"
_FIGURES = ("full_w_per_logical_cpu_low", "full_w_per_logical_cpu_high", "idle_fraction_low",
            "idle_fraction_high")
_BOUND_FIGURES = ("full_low_fraction_of_tdp", "full_high_fraction_of_tdp", "idle_low_fraction",
                  "idle_high_fraction")
_MATCH = {"arch": list, "cpu_model_contains": list, "vm": bool, "laptop": bool}


@dataclass(frozen=True)
class CpuClass:
    id: str
    name: str
    match: dict[str, Any]
    full_w_per_logical_cpu: tuple[float, float]  # low, high
    idle_fraction: tuple[float, float]

    def matches(self, facts: MachineFacts) -> bool:
        m = self.match
        if "arch" in m and facts.cpu_arch.lower() not in [a.lower() for a in m["arch"]]:
            return False
        if "cpu_model_contains" in m and not any(
                s.lower() in facts.cpu_model.lower() for s in m["cpu_model_contains"]):
            return False
        if "vm" in m and facts.is_vm != m["vm"]:
            return False
        return not ("laptop" in m and facts.is_laptop != m["laptop"])


@dataclass(frozen=True)
class ClassTable:
    classes: tuple[CpuClass, ...]
    profile_bounds: dict[str, float]  # fractions applied around a profile's TDP and idle


def _figures(where: str, table: dict[str, Any], names: tuple[str, ...]) -> dict[str, float]:
    out = {}
    sources = table.get("sources", {})
    for name in names:
        value = table.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                math.isfinite(value) and value >= 0):
            raise EdgebenchError(f"{where}: {name} must be a non-negative number")
        src = sources.get(name)
        if not isinstance(src, dict) or not isinstance(src.get("url"), str) or not isinstance(
                src.get("retrieved"), dt.date):
            raise EdgebenchError(f"{where}: {name} has no source: add [sources.{name}] with url "
                                 "and retrieved (a TOML date)")
        out[name] = float(value)
    return out


def load_classes(root: Path | None = None) -> ClassTable:
    path = (root or paths.profiles_dir()) / CLASSES_FILE
    doc = load_toml(path)
    classes = []
    for i, table in enumerate(doc.get("classes", [])):
        where = f"{path} classes[{i}] ({table.get('id', '?')})"
        extra = set(table) - set(_FIGURES) - set(_MATCH) - {"id", "name", "sources"}
        if extra:
            raise EdgebenchError(f"{where}: unknown key {sorted(extra)[0]!r}")
        fig = _figures(where, table, _FIGURES)
        match = {k: table[k] for k in _MATCH if k in table}
        for k, v in match.items():
            if not isinstance(v, _MATCH[k]):
                raise EdgebenchError(f"{where}: {k} must be a {_MATCH[k].__name__}")
        if fig["full_w_per_logical_cpu_low"] > fig["full_w_per_logical_cpu_high"] or (
                fig["idle_fraction_low"] > fig["idle_fraction_high"] or fig["idle_fraction_high"] > 1):
            raise EdgebenchError(f"{where}: low bounds must not exceed high bounds (fractions <= 1)")
        classes.append(CpuClass(str(table.get("id")), str(table.get("name")), match,
                                (fig["full_w_per_logical_cpu_low"], fig["full_w_per_logical_cpu_high"]),
                                (fig["idle_fraction_low"], fig["idle_fraction_high"])))
    if not classes or classes[-1].match:
        raise EdgebenchError(f"{path}: the last class must have no match keys (the catch-all)")
    bounds = _figures(f"{path} [profile_bounds]", doc.get("profile_bounds", {}), _BOUND_FIGURES)
    return ClassTable(tuple(classes), bounds)


def classify(facts: MachineFacts, table: ClassTable) -> CpuClass:
    return next(c for c in table.classes if c.matches(facts))


def class_params(facts: MachineFacts, table: ClassTable | None = None) -> EstimateParams:
    """estimate:class figures for this machine: per-thread power × its logical CPUs."""
    table = table or load_classes()
    c = classify(facts, table)
    n = facts.cores_logical
    low = PowerBound(idle_w=c.idle_fraction[0] * c.full_w_per_logical_cpu[0] * n,
                     full_w=c.full_w_per_logical_cpu[0] * n)
    high = PowerBound(idle_w=c.idle_fraction[1] * c.full_w_per_logical_cpu[1] * n,
                      full_w=c.full_w_per_logical_cpu[1] * n)
    mid = PowerBound((low.idle_w + high.idle_w) / 2, (low.full_w + high.full_w) / 2)
    basis = (f"CPU class {c.id} ({c.name}): {c.full_w_per_logical_cpu[0]:g}-"
             f"{c.full_w_per_logical_cpu[1]:g} W per logical CPU x {n}, idle "
             f"{c.idle_fraction[0]:.0%}-{c.idle_fraction[1]:.0%}"
             + ("; a VM's vCPU share of the host" if facts.is_vm else ""))
    return EstimateParams(mid.idle_w, mid.full_w, c.id, method="estimate:class", low=low,
                          high=high, basis=basis)


def profile_params(profile_id: str, idle_w: float, tdp_w: float, *, tdp_min_w: float | None,
                   tdp_max_w: float | None, table: ClassTable | None = None) -> EstimateParams:
    """estimate:tdp figures from a matched device profile, with bounds around its one TDP."""
    b = (table or load_classes()).profile_bounds
    full_low = tdp_min_w if tdp_min_w is not None else b["full_low_fraction_of_tdp"] * tdp_w
    full_high = tdp_max_w if tdp_max_w is not None else b["full_high_fraction_of_tdp"] * tdp_w
    low = PowerBound(min(b["idle_low_fraction"] * idle_w, full_low), full_low)
    high = PowerBound(min(b["idle_high_fraction"] * idle_w, full_high), max(full_high, tdp_w))
    basis = (f"device profile {profile_id}: {idle_w:g} W idle, {tdp_w:g} W TDP; bounds "
             f"{low.full_w:g}-{high.full_w:g} W at full load")
    return EstimateParams(idle_w, tdp_w, profile_id, low=low, high=high, basis=basis)
