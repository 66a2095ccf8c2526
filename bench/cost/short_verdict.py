"""The verdict `edgebench run` ends with: one line per configuration against three offers.

The full comparison with every assumption and source stays in `edgebench compare`; this block
answers the question in at most about 15 lines: local marginal cost per million tokens (low-high
when estimated) against the cheapest small, open-small and frontier offer, and which way it goes.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

from bench.cost import model as cost
from bench.cost.format import format_usd
from bench.cost.options import PricingOptions, pricing_context
from bench.cost.profiles import load_profiles
from bench.cost.scenarios import Configuration, Scenario, group_configurations
from bench.cost.verdict import VM_NOTE, configuration_device
from bench.results.schema import ResultRow

SHORT_TIERS = ("small", "open-small", "frontier")
MAX_CONFIGS = 8


def _scenario(cfg: Configuration) -> Scenario | None:
    """The chat shape when there is one (a real request), else the first pp+tg pairing."""
    return next((s for s in cfg.scenarios if s.label == "chat"), None) or next(
        iter(cfg.scenarios), None)


def _local(dc: cost.DeviceCost) -> str:
    low, high = dc.marginal_usd_per_mtok_low, dc.marginal_usd_per_mtok_high
    if dc.marginal_usd_per_mtok is None:
        return "energy unknown"
    if low is not None and high is not None and low != high:
        return f"{format_usd(low)}-{format_usd(high)}/Mtok"
    return f"{format_usd(dc.marginal_usd_per_mtok)}/Mtok"


def _sentence(verdicts: list[tuple[str, cost.PowerVerdict]]) -> str:
    kinds = {v.kind for _, v in verdicts}
    if kinds == {"local"}:
        return f"local cheaper than all {len(verdicts)} at both bounds"
    if kinds == {"cloud"}:
        return f"all {len(verdicts)} offers cheaper at both bounds"
    return "; ".join(v.sentence(name) for name, v in verdicts)


def short_verdict(rows: Sequence[ResultRow], options: PricingOptions = PricingOptions(), *,
                  results_path: Path | None = None, profiles_root: Path | None = None) -> str:
    ctx = pricing_context(load_profiles(profiles_root),
                          dataclasses.replace(options, offer_ids=None, default_offers=False))
    offers = [next(o for o in ctx.offers if o.tier == tier) for tier in SHORT_TIERS
              if any(o.tier == tier for o in ctx.offers)]
    tariff = ctx.grid.electricity_usd_per_kwh
    configs = group_configurations(rows)
    estimated = sorted({m for c in configs for sc in c.scenarios for m in sc.energy_methods
                        if m.startswith("estimate")})
    out = [f"Cost verdict: marginal cost of an owned device (electricity only), mix {ctx.mix.id}, "
           f"{ctx.grid.id} at ${tariff:g}/kWh" if tariff else
           f"Cost verdict: {ctx.grid.id} has no electricity tariff"]
    out.append("offers: " + ", ".join(
        f"{o.id} ({o.tier}) {format_usd(ctx.offer_costs[o.id].blended_usd_per_mtok)}/Mtok"
        for o in offers))
    for cfg in configs[:MAX_CONFIGS]:
        sc = _scenario(cfg)
        name = f"{cfg.model_id}/{cfg.variant}/{cfg.backend}/{cfg.ep}/t{cfg.threads}"
        if sc is None:
            out.append(f"- {name}: not priced ({'; '.join(cfg.unpaired) or 'no complete test'})")
            continue
        dc = cost.device_cost(sc.perf, configuration_device(cfg, ctx), ctx.grid, ctx.mix,
                              ctx.usage_tok_per_day)
        pvs = [(o.id, pv) for o in offers
               if tariff and (pv := cost.power_verdict(
                   dc, ctx.offer_costs[o.id].blended_usd_per_mtok, tariff)) is not None]
        answer = _sentence(pvs) if pvs else "energy not measured: no verdict"
        out.append(f"- {name} ({sc.label}): local {_local(dc)} -> {answer}")
    if len(configs) > MAX_CONFIGS:
        out.append(f"- ... and {len(configs) - MAX_CONFIGS} more configurations")
    if estimated:
        basis = next((c.energy_basis for c in configs if c.energy_basis), None)
        out.append(f"energy is an ESTIMATE ({', '.join(estimated)}), low-high bounds"
                   + (f": {basis}" if basis else ""))
    if any(c.virtualized for c in configs):
        out.append(VM_NOTE)
    target = str(results_path) if results_path else "RESULTS.csv"
    out.append(f"every assumption and source: edgebench compare {target}")
    return "\n".join(out)
