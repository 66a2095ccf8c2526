"""`edgebench compare`: verdict tables of measured configurations against cloud offers.

Medians over repetitions are priced with bench.cost; every assumption is printed with its source
and date underneath, because a verdict is only as good as the prices behind it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from bench.cost import model as cost
from bench.cost.device_match import match_device
from bench.cost.format import format_number, format_usd, mark, source_text, text_table
from bench.cost.options import PricingContext, PricingOptions, pricing_context
from bench.cost.profiles import CloudOffer, DeviceProfile, GridRegion, Profiles, load_profiles
from bench.cost.scenarios import Configuration, Scenario, group_configurations
from bench.errors import EdgebenchError
from bench.results.schema import ResultRow

_CPU_EPS = ("cpu", "cpuexecutionprovider")
VM_NOTE = ("This is a virtual machine: these figures price its energy only. A rented machine's "
           "marginal cost is its rent for the time a token takes, which is not priced yet.")


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
                        set(ctx.energy_reference_ids))


# ---------------------------------------------------------------- report
def compare_report(rows: list[ResultRow], options: PricingOptions = PricingOptions(), *,
                   profiles_root: Path | None = None) -> str:
    """Plain-text verdict of every configuration in `rows` against the fair cloud offers.

    `options.offer_ids` restricts the offers; `options.default_offers` keeps the short list
    `edgebench run` ends with (the two cheapest of each fair tier and the cheapest frontier
    offer)."""
    if not rows:
        raise EdgebenchError("no result rows to compare")
    ctx = pricing_context(load_profiles(profiles_root), options)
    usage_tok_per_day = options.usage_tok_per_day
    profiles, grid, the_mix, forced = ctx.profiles, ctx.grid, ctx.mix, ctx.forced_device
    offers, offer_costs = ctx.offers, ctx.offer_costs

    out = [
        "edgebench compare",
        f"mix: {the_mix.name} (input {the_mix.input_share:.0%}, output {the_mix.output_share:.0%})"
        f" | usage: {usage_tok_per_day:,.0f} tok/day | region: {grid.name} [{grid.id}]",
        "local marginal = electricity only (device already owned); local dedicated = price amortised "
        "over its useful life at this usage + idle power when not computing + electricity.",
        "",
    ]
    used_devices: dict[str, DeviceProfile] = {}
    any_estimate = False
    for cfg in group_configurations(rows):
        device = configuration_device(cfg, ctx)
        out.append(f"== {cfg.model_id} / {cfg.variant} / {cfg.backend} / {cfg.ep} / {cfg.threads} threads"
                   f" on '{cfg.cpu_model}'" + (f" + '{cfg.accelerators}'" if cfg.accelerators not in ("", "none") else ""))
        if device is None:
            out += _unmatched_help(cfg, profiles)
        else:
            used_devices[device.id] = device
            how = "chosen with --device-profile" if forced else "exact match"
            out.append(f"  device profile: {device.id} ({device.name}; {how})"
                       + (" [generic stand-in]" if device.generic else ""))
        if cfg.energy_basis:
            out.append(f"  energy estimate basis: {cfg.energy_basis}")
        if cfg.virtualized:
            out.append(f"  {VM_NOTE}")
        for note in cfg.unpaired:
            out.append(f"  not priced: {note}")
        for sc in cfg.scenarios:
            out += _scenario_block(sc, device, grid, the_mix, usage_tok_per_day, offers, offer_costs)
            any_estimate |= sc.energy_is_estimate
        out.append("")
    if any_estimate:
        out.append("* ESTIMATE: energy figures marked * come from rows whose energy_method starts with "
                   "'estimate' (e.g. TDP x time), not from a measurement.")
        out.append("")
    out += assumption_lines(ctx, used_devices)
    return "\n".join(out) + "\n"


def _scenario_block(sc: Scenario, device: DeviceProfile | None, grid, mix, usage: float,
                    offers: Sequence[CloudOffer], offer_costs: dict[str, cost.OfferCost]) -> list[str]:
    p = sc.perf
    dc = cost.device_cost(p, device, grid, mix, usage)
    star = "*" if sc.energy_is_estimate else ""
    label = "ESTIMATE" if sc.energy_is_estimate else "measured"
    out = [
        f"  -- {sc.label}: prefill {p.prefill_tok_s:.4g} tok/s, decode {p.decode_tok_s:.4g} tok/s "
        f"(medians of {sc.reps} reps)",
        f"     energy ({label}: {', '.join(sc.energy_methods)}): "
        f"{format_number(p.prefill_j_per_tok)}{mark(p.prefill_j_per_tok, star)} J/prefill tok, "
        f"{format_number(p.decode_j_per_tok)}{mark(p.decode_j_per_tok, star)} J/decode tok",
        f"     device time {format_number(dc.device_s_per_mtok)} s/Mtok; capacity {format_number(dc.capacity_tok_per_day)} tok/day"
        + (f"; usage {usage:,.0f} tok/day EXCEEDS one device's capacity (priced at capacity)"
           if dc.usage_exceeds_capacity else ""),
        f"     local: marginal {format_usd(dc.marginal_usd_per_mtok)}{mark(dc.marginal_usd_per_mtok, star)}/Mtok"
        + (f" (bounds {format_usd(dc.marginal_usd_per_mtok_low)}-{format_usd(dc.marginal_usd_per_mtok_high)})"
           if dc.marginal_usd_per_mtok_low != dc.marginal_usd_per_mtok_high else "") + ", "
        f"dedicated {format_usd(dc.dedicated_usd_per_mtok)}{mark(dc.dedicated_usd_per_mtok, star)}/Mtok, "
        f"{format_number(dc.carbon_g_per_mtok)}{mark(dc.carbon_g_per_mtok, star)} g CO2/Mtok",
    ]
    out += [f"     ({m})" for m in dc.missing]
    rows, verdicts = [], []
    for o in offers:
        oc = offer_costs[o.id]
        be = offer_break_even(dc, oc, device, grid)
        if be.tok_per_day is not None and not be.exceeds_capacity:
            be_txt = f"{be.tok_per_day:,.0f}"
        elif be.exceeds_capacity:
            be_txt = "> capacity"
        elif be.reason and be.reason.startswith("never"):
            be_txt = "never"
        else:
            be_txt = "n/a"
        rows.append([o.id, o.tier, format_usd(oc.blended_usd_per_mtok), format_number(oc.carbon_g_per_mtok), be_txt])
        verdicts.append(f"     - {o.id}: {_verdict(dc, oc, be, usage, star, grid.electricity_usd_per_kwh)}")
    out.append("")
    out += ["     " + line for line in text_table(
        ["offer (fair: small, open-small; frontier for context)", "tier", "$/Mtok mix", "g CO2/Mtok",
         "break-even tok/day"], rows)]
    out.append("     verdicts:")
    out += verdicts
    out.append("")
    return out


def _verdict(dc: cost.DeviceCost, oc: cost.OfferCost, be: cost.BreakEven, usage: float, star: str,
             usd_per_kwh: float | None) -> str:
    price = oc.blended_usd_per_mtok
    parts = [f"{format_usd(price)}/Mtok."]
    if dc.marginal_usd_per_mtok is None:
        parts.append("Local energy cost unknown.")
    else:
        pv = cost.power_verdict(dc, price, usd_per_kwh) if usd_per_kwh else None
        if pv is not None and dc.marginal_usd_per_mtok_low != dc.marginal_usd_per_mtok_high:
            parts.append(f"Owned device: {pv.sentence('the offer')} (electricity "
                         f"{format_usd(dc.marginal_usd_per_mtok_low)}-"
                         f"{format_usd(dc.marginal_usd_per_mtok_high)}{star}).")
        else:
            cheaper = dc.marginal_usd_per_mtok < price
            parts.append(f"Owned device: local is {'cheaper' if cheaper else 'dearer'} "
                         f"({format_usd(dc.marginal_usd_per_mtok)}{star} electricity).")
    if dc.dedicated_usd_per_mtok is not None:
        cheaper = dc.dedicated_usd_per_mtok < price
        parts.append(f"Bought for this: {'cheaper' if cheaper else 'dearer'} at {usage:,.0f} tok/day "
                     f"({format_usd(dc.dedicated_usd_per_mtok)}{star}).")
    if be.tok_per_day is not None and not be.exceeds_capacity:
        parts.append(f"Break-even at {be.tok_per_day:,.0f} tok/day.")
    elif be.reason:
        parts.append(be.reason[0].upper() + be.reason[1:] + ".")
    if oc.carbon_g_per_mtok is not None and dc.carbon_g_per_mtok is not None:
        lower = dc.carbon_g_per_mtok < oc.carbon_g_per_mtok
        parts.append(f"Carbon: local {'lower' if lower else 'higher'} ({format_number(dc.carbon_g_per_mtok)}{star} vs "
                     f"{format_number(oc.carbon_g_per_mtok)} g/Mtok).")
    return " ".join(parts)


def _assumptions(profiles: Profiles, grid, mix, devices: dict[str, DeviceProfile],
                 offers: Sequence[CloudOffer], ref_ids: set[str]) -> list[str]:
    out = ["Assumptions and sources", "-----------------------",
           "Method: J/token are the medians reported in the rows (prefill_j_per_tok, decode_j_per_tok); "
           "dedicated cost adds the profile's idle power for the hours the device is not computing; "
           "cloud carbon = reference J per output token x PUE x the same region's grid intensity "
           "(GPU-only references: a lower bound for the cloud); break-even solves dedicated = offer price.",
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
        for k in ("price_usd", "useful_life_years", "idle_power_w"):
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
    return out


