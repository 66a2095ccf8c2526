"""`edgebench compare`: verdict tables of measured configurations against cloud offers.

Medians over repetitions are priced with bench.cost; every assumption is printed with its source
and date underneath, because a verdict is only as good as the prices behind it.
"""

from __future__ import annotations

import re
import statistics
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from bench import cost
from bench.errors import EdgebenchError
from bench.profiles import (CloudOffer, DeviceProfile, EnergyReference, GridRegion, Mix, Profiles, Source,
                            load_profiles, match_device)
from bench.schema import ResultRow

DEFAULT_REGION = "us-average"
DEFAULT_USAGE_TOK_PER_DAY = 1_000_000.0
DEFAULT_ENERGY_REFERENCE = "ml-energy-llama31-8b-h100"
DEFAULT_PUE_REFERENCE = "uptime-2025-industry-pue"
FAIR_TIERS = ("small", "open-small")
CONTEXT_TIERS = ("frontier",)
_CPU_EPS = ("cpu", "cpuexecutionprovider")
_PP = re.compile(r"^pp\d+$")
_TG = re.compile(r"^tg\d+$")


@dataclass(frozen=True)
class TestMedians:
    """Medians over the repetitions of one test of one configuration."""

    test: str
    reps: int
    prefill_tok_s: float | None
    decode_tok_s: float | None
    prefill_j_per_tok: float | None
    decode_j_per_tok: float | None
    energy_methods: tuple[str, ...]


@dataclass(frozen=True)
class Scenario:
    """One priced configuration: a self-contained test (chat) or a pp test paired with a tg test."""

    label: str
    perf: cost.ConfigPerf
    reps: str
    energy_methods: tuple[str, ...]

    @property
    def energy_is_estimate(self) -> bool:
        return any(m.startswith("estimate") for m in self.energy_methods)


@dataclass(frozen=True)
class Configuration:
    model_id: str
    variant: str
    backend: str
    ep: str
    threads: int
    cpu_model: str
    accelerators: str
    cpu_cores_logical: int
    cpu_arch: str
    os_name: str
    scenarios: tuple[Scenario, ...]
    unpaired: tuple[str, ...]
    host_fingerprint: str = ""  # two hosts with the same CPU name stay apart in reports


# ---------------------------------------------------------------- aggregation
def _median(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def test_medians(rows: Sequence[ResultRow]) -> TestMedians:
    return TestMedians(
        test=rows[0].test, reps=len(rows),
        prefill_tok_s=_median(r.prefill_tok_s for r in rows),
        decode_tok_s=_median(r.decode_tok_s for r in rows),
        prefill_j_per_tok=_median(r.prefill_j_per_tok for r in rows),
        decode_j_per_tok=_median(r.decode_j_per_tok for r in rows),
        energy_methods=tuple(sorted({r.energy_method for r in rows})),
    )


def pair_scenarios(tests: Sequence[TestMedians]) -> tuple[list[Scenario], list[str]]:
    """Self-contained tests price alone; each ppN is paired with each tgM of the same configuration.

    A ppN row's decode fields and a tgM row's prefill fields are ignored: the prefill of a tg test
    is a tiny prompt and would misstate prompt throughput.
    """
    scenarios: list[Scenario] = []
    pps = [t for t in tests if _PP.match(t.test)]
    tgs = [t for t in tests if _TG.match(t.test)]
    for t in tests:
        if t in pps or t in tgs:
            continue
        if t.prefill_tok_s and t.decode_tok_s:
            scenarios.append(Scenario(
                t.test, cost.ConfigPerf(t.prefill_tok_s, t.decode_tok_s, t.prefill_j_per_tok, t.decode_j_per_tok),
                f"{t.reps}", t.energy_methods))
    for p in pps:
        for g in tgs:
            if not p.prefill_tok_s or not g.decode_tok_s:
                continue
            scenarios.append(Scenario(
                f"{p.test}+{g.test} (paired)",
                cost.ConfigPerf(p.prefill_tok_s, g.decode_tok_s, p.prefill_j_per_tok, g.decode_j_per_tok),
                f"{p.reps}/{g.reps}", tuple(sorted(set(p.energy_methods) | set(g.energy_methods)))))
    unpaired = []
    if pps and not tgs:
        unpaired += [f"{p.test} (no tg test of this configuration to pair with)" for p in pps]
    if tgs and not pps:
        unpaired += [f"{g.test} (no pp test of this configuration to pair with)" for g in tgs]
    return scenarios, unpaired


def group_configurations(rows: Iterable[ResultRow]) -> list[Configuration]:
    """Groups by device and (model_id, variant, backend, ep, threads), then by test."""
    groups: dict[tuple, dict[str, list[ResultRow]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        key = (r.host_fingerprint, r.cpu_model, r.accelerators, r.cpu_cores_logical,
               r.model_id, r.variant, r.backend, r.ep, r.threads)
        groups[key][r.test].append(r)
    configs = []
    for key, by_test in groups.items():
        first = next(iter(by_test.values()))[0]
        scenarios, unpaired = pair_scenarios([test_medians(v) for _, v in sorted(by_test.items())])
        configs.append(Configuration(
            model_id=first.model_id, variant=first.variant, backend=first.backend, ep=first.ep,
            threads=first.threads, cpu_model=first.cpu_model, accelerators=first.accelerators,
            cpu_cores_logical=first.cpu_cores_logical, cpu_arch=first.cpu_arch,
            os_name=first.os_name, scenarios=tuple(scenarios), unpaired=tuple(unpaired),
            host_fingerprint=first.host_fingerprint))
    return configs


# ---------------------------------------------------------------- formatting helpers
def format_usd(x: float | None) -> str:
    """Dollars: cents for whole amounts, 3 significant digits below $1."""
    if x is None:
        return "n/a"
    return f"${x:,.2f}" if abs(x) >= 1 else f"${x:.3g}"


def format_number(x: float | None, unit: str = "") -> str:
    """Thousands separators from 100 up, 3 significant digits below."""
    if x is None:
        return "n/a"
    return (f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}") + unit


def _mark(x: float | None, star: str) -> str:
    return star if x is not None else ""


def _src(s: Source) -> str:
    return f"{s.url} (retrieved {s.retrieved.isoformat()})" + (f"; {s.note}" if s.note else "")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    line = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return [line(header), line(["-" * w for w in widths])] + [line(r) for r in rows]


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


# ---------------------------------------------------------------- pricing context
@dataclass(frozen=True)
class PricingContext:
    """What every configuration is priced against; shared by `compare` and `report`."""

    profiles: Profiles
    grid: GridRegion
    mix: Mix
    usage_tok_per_day: float
    offers: tuple[CloudOffer, ...]  # fair tiers first, then frontier (context), cheapest first
    offer_costs: Mapping[str, cost.OfferCost]
    energy_reference_ids: frozenset[str]  # every reference used, for the assumptions
    forced_device: DeviceProfile | None = None


def pricing_context(
    profiles: Profiles,
    *,
    device_profile_id: str | None = None,
    region: str = DEFAULT_REGION,
    usage_tok_per_day: float = DEFAULT_USAGE_TOK_PER_DAY,
    mix: str = cost.DEFAULT_MIX,
    energy_reference_id: str = DEFAULT_ENERGY_REFERENCE,
    pue_reference_id: str = DEFAULT_PUE_REFERENCE,
    offer_ids: Sequence[str] | None = None,
    default_offers: bool = False,
) -> PricingContext:
    """Resolves region, mix, forced device and references, and prices every compared offer once."""
    grid = profiles.regions.get(region)
    if grid is None:
        raise EdgebenchError(f"unknown region '{region}'; known: {', '.join(sorted(profiles.regions))}")
    the_mix = cost.resolve_mix(mix, profiles.mixes)
    forced: DeviceProfile | None = None
    if device_profile_id is not None:
        forced = profiles.devices.get(device_profile_id)
        if forced is None:
            raise EdgebenchError(
                f"unknown device profile '{device_profile_id}'; see `edgebench profiles list`")
    default_ref = profiles.energy_references.get(energy_reference_id)
    pue_ref = profiles.energy_references.get(pue_reference_id)
    if default_ref is None or default_ref.j_per_output_tok is None:
        raise EdgebenchError(f"energy reference '{energy_reference_id}' has no j_per_output_tok")
    if pue_ref is None or pue_ref.pue is None:
        raise EdgebenchError(f"PUE reference '{pue_reference_id}' has no pue")

    offers = sorted((o for o in profiles.offers.values() if o.tier in FAIR_TIERS + CONTEXT_TIERS),
                    key=lambda o: (o.tier in CONTEXT_TIERS, cost.blended_usd_per_mtok(o, the_mix), o.id))
    if offer_ids:
        unknown = [i for i in offer_ids if i not in profiles.offers]
        if unknown:
            raise EdgebenchError(f"unknown offer '{unknown[0]}'; see `edgebench profiles list`")
        offers = [profiles.offers[i] for i in offer_ids]
    elif default_offers:
        keep = {"small": 2, "open-small": 2, "frontier": 1}
        offers = [o for o in offers if (keep := {**keep, o.tier: keep.get(o.tier, 0) - 1})[o.tier] >= 0]
    used_refs = {default_ref.id, pue_ref.id}

    def offer_cost(o: CloudOffer) -> cost.OfferCost:
        ref: EnergyReference = profiles.energy_references[o.energy_reference] if o.energy_reference else default_ref
        used_refs.add(ref.id)
        return cost.offer_cost(o, the_mix, grid, ref.j_per_output_tok, pue_ref.pue)

    offer_costs = {o.id: offer_cost(o) for o in offers}
    return PricingContext(profiles=profiles, grid=grid, mix=the_mix, usage_tok_per_day=usage_tok_per_day,
                          offers=tuple(offers), offer_costs=offer_costs,
                          energy_reference_ids=frozenset(used_refs), forced_device=forced)


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
def compare_report(
    rows: list[ResultRow],
    *,
    device_profile_id: str | None = None,
    region: str = DEFAULT_REGION,
    usage_tok_per_day: float = DEFAULT_USAGE_TOK_PER_DAY,
    mix: str = cost.DEFAULT_MIX,
    profiles_root: Path | None = None,
    energy_reference_id: str = DEFAULT_ENERGY_REFERENCE,
    pue_reference_id: str = DEFAULT_PUE_REFERENCE,
    offer_ids: Sequence[str] | None = None,
    default_offers: bool = False,
) -> str:
    """Plain-text verdict of every configuration in `rows` against the fair cloud offers.

    `offer_ids` restricts the offers; `default_offers` keeps the short list `edgebench run`
    ends with (the two cheapest of each fair tier and the cheapest frontier offer)."""
    if not rows:
        raise EdgebenchError("no result rows to compare")
    ctx = pricing_context(
        load_profiles(profiles_root), device_profile_id=device_profile_id, region=region,
        usage_tok_per_day=usage_tok_per_day, mix=mix, energy_reference_id=energy_reference_id,
        pue_reference_id=pue_reference_id, offer_ids=offer_ids, default_offers=default_offers)
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
        f"{format_number(p.prefill_j_per_tok)}{_mark(p.prefill_j_per_tok, star)} J/prefill tok, "
        f"{format_number(p.decode_j_per_tok)}{_mark(p.decode_j_per_tok, star)} J/decode tok",
        f"     device time {format_number(dc.device_s_per_mtok)} s/Mtok; capacity {format_number(dc.capacity_tok_per_day)} tok/day"
        + (f"; usage {usage:,.0f} tok/day EXCEEDS one device's capacity (priced at capacity)"
           if dc.usage_exceeds_capacity else ""),
        f"     local: marginal {format_usd(dc.marginal_usd_per_mtok)}{_mark(dc.marginal_usd_per_mtok, star)}/Mtok, "
        f"dedicated {format_usd(dc.dedicated_usd_per_mtok)}{_mark(dc.dedicated_usd_per_mtok, star)}/Mtok, "
        f"{format_number(dc.carbon_g_per_mtok)}{_mark(dc.carbon_g_per_mtok, star)} g CO2/Mtok",
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
        verdicts.append(f"     - {o.id}: {_verdict(dc, oc, be, usage, star)}")
    out.append("")
    out += ["     " + line for line in _table(
        ["offer (fair: small, open-small; frontier for context)", "tier", "$/Mtok mix", "g CO2/Mtok",
         "break-even tok/day"], rows)]
    out.append("     verdicts:")
    out += verdicts
    out.append("")
    return out


def _verdict(dc: cost.DeviceCost, oc: cost.OfferCost, be: cost.BreakEven, usage: float, star: str) -> str:
    price = oc.blended_usd_per_mtok
    parts = [f"{format_usd(price)}/Mtok."]
    if dc.marginal_usd_per_mtok is None:
        parts.append("Local energy cost unknown.")
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
        out.append(f"  {k}: {_src(s)}")
    if not mix.sources:
        out.append("  (user-stated ratio, no source)")
    out.append(f"region {grid.id}: {grid.name}")
    for k in ("electricity_eur_per_kwh", "usd_per_eur", "electricity_usd_per_kwh", "carbon_g_per_kwh"):
        if k in grid.sources:
            out.append(f"  {k} = {getattr(grid, k):.6g}: {_src(grid.sources[k])}")
    if grid.electricity_eur_per_kwh is not None:
        out.append(f"  electricity_usd_per_kwh = {grid.electricity_usd_per_kwh:.6g} (EUR tariff x usd_per_eur)")
    for d in devices.values():
        out.append(f"device {d.id}: {d.name}" + (f" [generic: {d.method}]" if d.generic else ""))
        for k in ("price_usd", "useful_life_years", "idle_power_w"):
            if k in d.sources:
                out.append(f"  {k} = {getattr(d, k):g}: {_src(d.sources[k])}")
    for rid in sorted(ref_ids):
        r = profiles.energy_references[rid]
        for k, s in r.sources.items():
            out.append(f"energy reference {r.id} ({r.name}): {k} = {getattr(r, k):g}: {_src(s)}")
    out.append("offers (USD per 1M tokens: input / cached input / output):")
    for o in offers:
        cached = f"{o.cached_input_usd_per_mtok:g}" if o.cached_input_usd_per_mtok is not None else "-"
        urls = {(s.url, s.retrieved) for s in o.sources.values()}
        src = "; ".join(f"{u} (retrieved {d.isoformat()})" for u, d in sorted(urls))
        out.append(f"  {o.id}: {o.input_usd_per_mtok:g} / {cached} / {o.output_usd_per_mtok:g}: {src}")
    return out


def format_profiles_list(profiles: Profiles) -> str:
    """For `edgebench profiles list`: ids by kind, offers by tier, regions and mixes."""
    out = ["devices:"]
    for kind in sorted({d.kind for d in profiles.devices.values()}):
        out.append(f"  {kind}:")
        for d in sorted((d for d in profiles.devices.values() if d.kind == kind), key=lambda d: d.id):
            match = ", ".join(d.match_cpu_model + d.match_accelerators) or "no match strings"
            out.append(f"    {d.id:34} {d.name}  [match: {match}]")
    out.append("offers:")
    for tier in ("small", "open-small", "frontier", "unclassified"):
        ids = sorted(o.id for o in profiles.offers.values() if o.tier == tier)
        if ids:
            out.append(f"  {tier}: {', '.join(ids)}")
    out.append(f"gpu rentals: {', '.join(sorted(profiles.gpu_rentals))}")
    out.append(f"regions: {', '.join(sorted(profiles.regions))}")
    out.append(f"mixes: {', '.join(sorted(profiles.mixes))} (or any I:O ratio)")
    return "\n".join(out) + "\n"
