"""`edgebench compare`: verdict tables of measured configurations against cloud offers.

Medians over repetitions are priced with bench.cost; every assumption is printed with its source
and date underneath, because a verdict is only as good as the prices behind it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from bench.cost import model as cost
from bench.cost.device_match import match_device
from bench.cost.format import format_number, mark, source_text
from bench.cost.options import PricingContext, PricingOptions, pricing_context
from bench.cost.profiles import CloudOffer, DeviceProfile, GridRegion, Profiles, load_profiles
from bench.cost.scenarios import Configuration, Scenario, group_configurations
from bench.errors import EdgebenchError
from bench.results.schema import ResultRow

_CPU_EPS = ("cpu", "cpuexecutionprovider")


def _kind_hints(cfg: Configuration) -> tuple[str, ...]:
    os_l, arch = cfg.os_name.lower(), cfg.cpu_arch.lower()
    if "android" in os_l or "ios" in os_l:
        return ("phone",)
    if os_l.startswith("darwin") or os_l.startswith("mac"):
        return ("laptop", "desktop")
    if arch in ("aarch64", "arm64") and os_l.startswith("linux"):
        return ("board", "laptop", "generic")
    return ("laptop", "desktop", "server", "gpu", "generic")


def _unmatched_help(cfg: Configuration, profiles: Profiles) -> list[str]:
    out = [f"  Device not matched: no profile lists cpu_model '{cfg.cpu_model}'"
           + (f" / accelerators '{cfg.accelerators}'" if cfg.accelerators not in ("", "none") else "")
           + f" ({cfg.cpu_cores_logical} logical cores). Matching is exact, never fuzzy.",
           "  Pass --device-profile ID (or add a profile, see hardware_profiles/devices/). Options by kind:"]
    for kind in _kind_hints(cfg):
        ids = sorted(d.id for d in profiles.devices.values() if d.kind == kind)
        if ids:
            out.append(f"    {kind}: {', '.join(ids)}")
    return out


def configuration_device(cfg: Configuration, ctx: PricingContext) -> DeviceProfile | None:
    """The forced profile, else the exact match; accelerators count only for non-CPU EPs."""
    if ctx.forced_device is not None:
        return ctx.forced_device
    accs = "" if cfg.ep.lower() in _CPU_EPS else cfg.accelerators
    return match_device(cfg.cpu_model, accs, ctx.profiles, cpu_cores_logical=cfg.cpu_cores_logical)


def offer_break_even(dc: cost.DeviceCost, oc: cost.OfferCost, device: DeviceProfile | None,
                     grid: GridRegion) -> cost.BreakEven:
    """Break-even of one priced scenario against one offer (None figures when no device profile)."""
    return cost.break_even(
        offer_usd_per_mtok=oc.blended_usd_per_mtok, marginal_usd_per_mtok=dc.marginal_usd_per_mtok,
        s_per_mtok=dc.device_s_per_mtok, price_usd=device.price_usd if device else None,
        useful_life_years=device.useful_life_years if device else None,
        idle_power_w=device.idle_power_w if device else None, usd_per_kwh=grid.electricity_usd_per_kwh)


def assumption_lines(ctx: PricingContext, devices: Mapping[str, DeviceProfile]) -> list[str]:
    """Every price, tariff and constant behind the figures, with source and retrieval date."""
    return _assumptions(ctx.profiles, ctx.grid, ctx.mix, dict(devices), ctx.offers,
                        set(ctx.energy_reference_ids), ctx.offer_costs)


# ---------------------------------------------------------------- report
def compare_report(rows: list[ResultRow], options: PricingOptions = PricingOptions(), *,
                   quality_rows: Sequence[Any] = (), profiles_root: Path | None = None) -> str:
    """Plain-text verdict of every configuration in `rows` against matched cloud offers.

    Each configuration is priced under its ownership (rent for a rented machine, electricity
    for an owned one: ownership.py); offers come in groups (matching.py): the same model, the
    cheapest at least as good as the measured quality (`quality_rows`, from `edgebench
    quality`), frontier for context. With HumanEval rows the price of a solved task follows."""
    from bench.cost.context import model_context

    if not rows:
        raise EdgebenchError("no result rows to compare")
    ctx = pricing_context(load_profiles(profiles_root), options)
    grid, the_mix = ctx.grid, ctx.mix
    out = [
        "edgebench compare",
        f"mix: {the_mix.name} (input {the_mix.input_share:.0%}, output {the_mix.output_share:.0%})"
        f" | usage: {options.usage_tok_per_day:,.0f} tok/day | region: {grid.name} [{grid.id}]",
        "local marginal = the rent for the time the tokens take on a rented machine (cloud VM), "
        "electricity on an owned one; dedicated = an owned device's price amortised over its "
        "useful life at this usage + idle power + electricity.",
        "",
    ]
    used_devices: dict[str, DeviceProfile] = {}
    any_estimate = False
    for cfg in group_configurations(rows):
        device = configuration_device(cfg, ctx)
        mc = model_context(cfg, device, ctx, quality_rows)
        out.append(f"== {cfg.model_id} / {cfg.variant} / {cfg.backend} / {cfg.ep} / {cfg.threads} threads"
                   f" on '{cfg.cpu_model}'" + (f" + '{cfg.accelerators}'" if cfg.accelerators not in ("", "none") else ""))
        if device is None:
            out += _unmatched_help(cfg, ctx.profiles)
        else:
            used_devices[device.id] = device
            how = "chosen with --device-profile" if ctx.forced_device else "exact match"
            out.append(f"  device profile: {device.id} ({device.name}; {how})"
                       + (" [generic stand-in]" if device.generic else ""))
        out.append(f"  local machine: {mc.ownership.label}")
        if mc.ownership.ask:
            out.append(f"  to price it exactly: {mc.ownership.ask}")
        if cfg.energy_basis:
            out.append(f"  energy estimate basis: {cfg.energy_basis}")
        out += [f"  {line}" for line in mc.quality_lines]
        for note in cfg.unpaired:
            out.append(f"  not priced: {note}")
        for sc in cfg.scenarios:
            out += _scenario_block(sc, device, ctx, mc)
            any_estimate |= sc.energy_is_estimate
        if mc.self_host is not None:
            out.append(f"  {mc.self_host.text}")
        out += mc.per_task_lines(ctx)
        out.append("")
    if any_estimate:
        out.append("* ESTIMATE: energy figures marked * come from rows whose energy_method starts with "
                   "'estimate' (e.g. TDP x time), not from a measurement.")
        out.append("")
    out += assumption_lines(ctx, used_devices)
    return "\n".join(out) + "\n"


def _scenario_block(sc: Scenario, device: DeviceProfile | None, ctx: PricingContext,
                    mc: Any) -> list[str]:
    from bench.cost.offer_block import groups_block, local_lines
    from bench.cost.ownership import local_price

    p = sc.perf
    dc = cost.device_cost(p, device, ctx.grid, ctx.mix, ctx.usage_tok_per_day)
    lp = local_price(mc.ownership, dc)
    star = "*" if sc.energy_is_estimate else ""
    label = "ESTIMATE" if sc.energy_is_estimate else "measured"
    out = [
        f"  -- {sc.label}: prefill {p.prefill_tok_s:.4g} tok/s, decode {p.decode_tok_s:.4g} tok/s "
        f"(medians of {sc.reps} reps)",
        f"     energy ({label}: {', '.join(sc.energy_methods)}): "
        f"{format_number(p.prefill_j_per_tok)}{mark(p.prefill_j_per_tok, star)} J/prefill tok, "
        f"{format_number(p.decode_j_per_tok)}{mark(p.decode_j_per_tok, star)} J/decode tok",
        f"     device time {format_number(dc.device_s_per_mtok)} s/Mtok; capacity {format_number(dc.capacity_tok_per_day)} tok/day"
        + (f"; usage {ctx.usage_tok_per_day:,.0f} tok/day EXCEEDS one device's capacity (priced at capacity)"
           if dc.usage_exceeds_capacity else ""),
    ]
    out += local_lines(lp, dc, star)
    out += groups_block(mc.groups, lp, dc, ctx, device, star, offer_break_even)
    out.append("")
    return out


def _assumptions(profiles: Profiles, grid, mix, devices: dict[str, DeviceProfile],
                 offers: Sequence[CloudOffer], ref_ids: set[str],
                 offer_costs: Mapping[str, cost.OfferCost] | None = None) -> list[str]:
    out = ["Assumptions and sources", "-----------------------",
           "Method: J/token are the medians reported in the rows (prefill_j_per_tok, decode_j_per_tok); "
           "dedicated cost adds the profile's idle power for the hours the device is not computing; "
           "cloud carbon = J per output token of the reference nearest the offer model's size x "
           "(output tokens + k x prompt tokens) x PUE x the same region's grid intensity, at k's "
           "low and high bound (GPU-only references: a lower bound for the cloud); a rented "
           "machine's marginal cost = its rent for the busy seconds; break-even solves "
           "dedicated = offer price.",
           f"mix {mix.id}: {mix.name}"]
    for k, s in mix.sources.items():
        out.append(f"  {k}: {source_text(s)}")
    if not mix.sources:
        out.append("  (user-stated ratio, no source)")
    out.append(f"region {grid.id}: {grid.name}")
    for k in ("electricity_eur_per_kwh", "usd_per_eur", "electricity_usd_per_kwh", "carbon_g_per_kwh"):
        if k in grid.sources:
            out.append(f"  {k} = {getattr(grid, k):.6g}: {source_text(grid.sources[k])}")
    if grid.electricity_eur_per_kwh is not None:
        out.append(f"  electricity_usd_per_kwh = {grid.electricity_usd_per_kwh:.6g} (EUR tariff x usd_per_eur)")
    for d in devices.values():
        out.append(f"device {d.id}: {d.name}" + (f" [generic: {d.method}]" if d.generic else ""))
        for k in ("price_usd", "useful_life_years", "idle_power_w", "rent_usd_per_hour"):
            if k in d.sources:
                out.append(f"  {k} = {getattr(d, k):g}: {source_text(d.sources[k])}")
    for rid in sorted(ref_ids):
        r = profiles.energy_references[rid]
        for k, s in r.sources.items():
            out.append(f"energy reference {r.id} ({r.name}): {k} = {getattr(r, k):g}: {source_text(s)}")
    out.append("offers (USD per 1M tokens: input / cached input / output):")
    for o in offers:
        cached = f"{o.cached_input_usd_per_mtok:g}" if o.cached_input_usd_per_mtok is not None else "-"
        urls = {(s.url, s.retrieved) for s in o.sources.values()}
        src = "; ".join(f"{u} (retrieved {d.isoformat()})" for u, d in sorted(urls))
        out.append(f"  {o.id}: {o.input_usd_per_mtok:g} / {cached} / {o.output_usd_per_mtok:g}: {src}")
        oc = offer_costs.get(o.id) if offer_costs else None
        if oc is not None and oc.energy_reference_id:
            out.append(f"    energy reference {oc.energy_reference_id} ({oc.energy_reference_note})")
    return out


