"""Field specifications and strict checks for profile TOML tables.

Every figure must carry its source (url + retrieved date); unknown keys are errors so a typo
never silently drops a figure. Any problem is one EdgebenchError line naming the file and field.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, Iterable, Mapping

from bench.cost.source import Source
from bench.errors import EdgebenchError

# kind: str | figure | int | bool | strlist | date.  Figures need [sources.<field>].
Spec = Mapping[str, tuple[str, bool]]

DEVICE: Spec = {
    "id": ("str", True), "name": ("str", True), "kind": ("str", True),
    "generic": ("bool", False), "method": ("str", False), "based_on": ("str", False),
    "power_scope": ("str", False), "notes": ("str", False),
    "memory_bandwidth_gb_s": ("figure", False), "accelerator_tops": ("figure", False),
    "tdp_w": ("figure", False), "tdp_min_w": ("figure", False), "tdp_max_w": ("figure", False),
    "system_max_power_w": ("figure", False), "idle_power_w": ("figure", False),
    "price_usd": ("figure", False), "useful_life_years": ("figure", False),
    # what a rented machine (cloud VM, rented board) costs per hour: its marginal cost (rent.py)
    "rent_usd_per_hour": ("figure", False),
}
MATCH: Spec = {
    "cpu_model": ("strlist", False), "accelerators": ("strlist", False),
    "cpu_cores_logical": ("int", False),
}
OFFER: Spec = {
    "id": ("str", True), "provider": ("str", True), "model": ("str", True),
    "tier": ("str", True), "model_class": ("str", True), "litellm_key": ("str", False),
    "energy_reference": ("str", False), "notes": ("str", False),
    # model_id: a key of cloud/models.toml, required unless tier = "unclassified" (profiles.py);
    # serving_precision needs [sources.serving_precision] (offer_models.precision_source).
    "model_id": ("str", False), "serving_precision": ("str", False),
    "input_usd_per_mtok": ("figure", True), "output_usd_per_mtok": ("figure", True),
    "cached_input_usd_per_mtok": ("figure", False),
}
GPU: Spec = {
    "id": ("str", True), "provider": ("str", True), "gpu": ("str", True),
    "tier": ("str", True), "model_class": ("str", True), "notes": ("str", False),
    "usd_per_gpu_hour": ("figure", True),
}
ENERGY: Spec = {
    "id": ("str", True), "name": ("str", True), "includes_pue": ("bool", False),
    "notes": ("str", False), "j_per_output_tok": ("figure", False),
    "wh_per_query": ("figure", False), "pue": ("figure", False),
    # the measured model's weights (count), so the cost stage can pick the nearest size; and the
    # bounds of a prompt token's energy relative to an output token's (docs/energy.md)
    "parameters": ("figure", False),
    "prompt_to_output_energy_ratio_low": ("figure", False),
    "prompt_to_output_energy_ratio_high": ("figure", False),
}
REGION: Spec = {
    "id": ("str", True), "name": ("str", True), "notes": ("str", False),
    "electricity_usd_per_kwh": ("figure", False), "electricity_eur_per_kwh": ("figure", False),
    "carbon_g_per_kwh": ("figure", False),
}
FX: Spec = {"usd_per_eur": ("figure", True), "notes": ("str", False)}
MIX: Spec = {
    "id": ("str", True), "name": ("str", True), "input_parts": ("figure", True),
    "output_parts": ("figure", True), "cached_input_parts": ("figure", False),
}
SOURCE: Spec = {"url": ("str", True), "retrieved": ("date", True), "note": ("str", False)}


def fail(where: str, msg: str) -> EdgebenchError:
    return EdgebenchError(f"{where}: {msg}")


def check_value(where: str, key: str, kind: str, value: Any) -> Any:
    if kind == "str":
        if not isinstance(value, str) or not value.strip():
            raise fail(where, f"{key} must be a non-empty string")
        return value
    if kind in ("figure", "int"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise fail(where, f"{key} must be a number, not {value!r}")
        if kind == "int" and not isinstance(value, int):
            raise fail(where, f"{key} must be an integer, not {value!r}")
        if not math.isfinite(value):
            raise fail(where, f"{key} must be finite, not {value!r}")
        if value < 0:
            raise fail(where, f"{key} must not be negative ({value!r})")
        return float(value) if kind == "figure" else value
    if kind == "bool":
        if not isinstance(value, bool):
            raise fail(where, f"{key} must be true or false, not {value!r}")
        return value
    if kind == "strlist":
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise fail(where, f"{key} must be a list of non-empty strings")
        return tuple(value)
    if kind == "date":
        if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
            raise fail(where, f"{key} must be a TOML date (YYYY-MM-DD, unquoted), not {value!r}")
        if value > dt.date.today():
            raise fail(where, f"{key} {value.isoformat()} is in the future")
        return value
    raise AssertionError(kind)


def check_table(where: str, table: Any, spec: Spec, extra: Iterable[str] = ()) -> dict[str, Any]:
    """Validates keys and types of one table; `extra` keys are passed through untouched."""
    if not isinstance(table, dict):
        raise fail(where, "expected a table")
    allowed = set(spec) | set(extra)
    for key in table:
        if key not in allowed:
            raise fail(where, f"unknown key '{key}' (allowed: {', '.join(sorted(allowed))})")
    out: dict[str, Any] = {}
    for key, (kind, required) in spec.items():
        if key not in table:
            if required:
                raise fail(where, f"missing required key '{key}'")
            continue
        out[key] = check_value(where, key, kind, table[key])
    for key in extra:
        if key in table:
            out[key] = table[key]
    return out


def check_sources(where: str, record: Mapping[str, Any], spec: Spec, raw: Any) -> dict[str, Source]:
    """Every figure present needs [sources.<figure>]; a source for an absent figure is an error."""
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise fail(where, "sources must be a table of [sources.<field>] tables")
    figures = {k for k, (kind, _) in spec.items() if kind == "figure" and k in record}
    for key in raw:
        if key not in figures:
            raise fail(where, f"sources.{key} names no figure present in this record")
    sources: dict[str, Source] = {}
    for key in sorted(figures):
        if key not in raw:
            raise fail(where, f"{key} has no source: add [sources.{key}] with url and retrieved")
        src = check_table(f"{where} sources.{key}", raw[key], SOURCE)
        sources[key] = Source(src["url"], src["retrieved"], src.get("note"))
    return sources
