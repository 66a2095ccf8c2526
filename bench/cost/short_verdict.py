"""The verdict `edgebench run` ends with: per configuration, the local price under its ownership
(rent on a rented machine, electricity on an owned one) against the offers of the same model
(or the self-host-on-a-rented-GPU line when nobody hosts it) and the cheapest frontier offer.

The full comparison with every group, assumption and source stays in `edgebench compare`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Sequence

from bench.cost import model as cost
from bench.cost.context import model_context
from bench.cost.format import format_number, format_usd
from bench.cost.matching import FRONTIER, SAME
from bench.cost.offer_block import carbon_text, local_text
from bench.cost.options import PricingOptions, pricing_context
from bench.cost.ownership import LocalPrice, local_price
from bench.cost.profiles import load_profiles
from bench.cost.scenarios import Configuration, Scenario, group_configurations
from bench.cost.verdict import configuration_device
from bench.results.schema import ResultRow

MAX_CONFIGS = 8
SAME_SHOWN = 2


def _scenario(cfg: Configuration) -> Scenario | None:
    """The chat shape when there is one (a real request), else the first pp+tg pairing."""
    return next((s for s in cfg.scenarios if s.label == "chat"), None) or next(
        iter(cfg.scenarios), None)


def _against(lp: LocalPrice, dc: cost.DeviceCost, price: float, tariff: float | None) -> str:
    if lp.usd_per_mtok is None:
        return "local cost unknown"
    if lp.basis == "electricity" and tariff and lp.low_usd_per_mtok != lp.high_usd_per_mtok:
        pv = cost.power_verdict(dc, price, tariff)
        if pv is not None and pv.kind == "depends":
            return f"depends on power (break-even {pv.break_even_w:.3g} W)"
        if pv is not None:
            return {"local": "local cheaper at both bounds",
                    "cloud": "offer cheaper at both bounds"}[pv.kind]
    return "local cheaper" if lp.usd_per_mtok < price else "offer cheaper"


def _config_lines(cfg: Configuration, ctx: Any, star: str) -> tuple[list[str], Any]:
    name = f"{cfg.model_id}/{cfg.variant}/{cfg.backend}/{cfg.ep}/t{cfg.threads}"
    sc = _scenario(cfg)
    device = configuration_device(cfg, ctx)
    mc = model_context(cfg, device, ctx, ())
    if sc is None:
        return [f"- {name}: not priced ({'; '.join(cfg.unpaired) or 'no complete test'})"], mc
    dc = cost.device_cost(sc.perf, device, ctx.grid, ctx.mix, ctx.usage_tok_per_day)
    lp = local_price(mc.ownership, dc)
    tariff = ctx.grid.electricity_usd_per_kwh
    out = [f"- {name} ({sc.label}): local {local_text(lp, star)}"]
    groups = {g.name: g for g in mc.groups}
    same = groups[SAME]
    if same.offers:
        for o in same.offers[:SAME_SHOWN]:
            oc = ctx.offer_costs[o.id]
            out.append(f"    same model: {o.id} {format_usd(oc.blended_usd_per_mtok)}/Mtok -> "
                       f"{_against(lp, dc, oc.blended_usd_per_mtok, tariff)}")
    else:
        out.append(f"    {same.note}")
        if mc.self_host is not None:
            out.append(f"    {mc.self_host.text}")
    for o in groups[FRONTIER].offers[:1]:
        oc = ctx.offer_costs[o.id]
        out.append(f"    frontier, for context: {o.id} {format_usd(oc.blended_usd_per_mtok)}"
                   f"/Mtok -> {_against(lp, dc, oc.blended_usd_per_mtok, tariff)}")
    first = (same.offers or groups[FRONTIER].offers or (None,))[0]
    if first is not None and dc.carbon_g_per_mtok is not None:
        oc = ctx.offer_costs[first.id]
        out.append(f"    carbon: local {format_number(dc.carbon_g_per_mtok)}{star} g/Mtok vs "
                   f"{first.id} {carbon_text(oc)} g/Mtok (prompt + output tokens; "
                   f"{oc.energy_reference_id}: {oc.energy_reference_note})")
    return out, mc


def short_verdict(rows: Sequence[ResultRow], options: PricingOptions = PricingOptions(), *,
                  results_path: Path | None = None, profiles_root: Path | None = None) -> str:
    ctx = pricing_context(load_profiles(profiles_root),
                          dataclasses.replace(options, offer_ids=None, default_offers=False))
    configs = group_configurations(rows)
    estimated = sorted({m for c in configs for sc in c.scenarios for m in sc.energy_methods
                        if m.startswith("estimate")})
    star = "*" if estimated else ""
    out = [f"Cost verdict: mix {ctx.mix.id}, {ctx.grid.id}"
           + (f" at ${ctx.grid.electricity_usd_per_kwh:g}/kWh"
              if ctx.grid.electricity_usd_per_kwh else " (no electricity tariff)")]
    labels: list[str] = []
    body: list[str] = []
    for cfg in configs[:MAX_CONFIGS]:
        lines, mc = _config_lines(cfg, ctx, star)
        body += lines
        for text in (f"local machine: {mc.ownership.label}",
                     f"to price it exactly: {mc.ownership.ask}" if mc.ownership.ask else None):
            if text and text not in labels:
                labels.append(text)
    out += labels + body
    if len(configs) > MAX_CONFIGS:
        out.append(f"- ... and {len(configs) - MAX_CONFIGS} more configurations")
    if estimated:
        basis = next((c.energy_basis for c in configs if c.energy_basis), None)
        out.append(f"* energy is an ESTIMATE ({', '.join(estimated)}), low-high bounds"
                   + (f": {basis}" if basis else ""))
    target = str(results_path) if results_path else "RESULTS.csv"
    out.append(f"every offer group, assumption and source: edgebench compare {target}")
    return "\n".join(out)
