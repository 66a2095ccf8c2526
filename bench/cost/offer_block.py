"""One priced scenario of `edgebench compare`: the local price under its ownership, then the
offers in their matched groups (same model, at least as good, frontier), each with a verdict."""

from __future__ import annotations

from typing import Any, Sequence

from bench.cost import model as cost
from bench.cost.format import format_number, format_usd, mark, text_table
from bench.cost.matching import OfferGroup
from bench.cost.ownership import LocalPrice


def carbon_text(oc: cost.OfferCost) -> str:
    """Low-high when prompt tokens' energy is a bound (docs/energy.md)."""
    low, high = oc.carbon_g_per_mtok, oc.carbon_g_per_mtok_high
    if low is None:
        return "n/a"
    if high is None or format_number(high) == format_number(low):
        return format_number(low)
    return f"{format_number(low)}-{format_number(high)}"


def local_text(lp: LocalPrice, star: str) -> str:
    """`star` marks an energy estimate, so a rent (not energy) never carries it."""
    star = "" if lp.basis == "rent" else star
    if lp.usd_per_mtok is None:
        return f"unknown ({lp.ownership.label})"
    bounds = ""
    if lp.low_usd_per_mtok != lp.high_usd_per_mtok:
        bounds = (f" (bounds {format_usd(lp.low_usd_per_mtok)}-"
                  f"{format_usd(lp.high_usd_per_mtok)})")
    est = " ESTIMATE" if lp.ownership.estimate else ""
    return f"{format_usd(lp.usd_per_mtok)}{star}/Mtok{bounds} by {lp.basis}{est}"


def offer_verdict(lp: LocalPrice, dc: cost.DeviceCost, oc: cost.OfferCost, be: Any,
                  usage: float, star: str, usd_per_kwh: float | None) -> str:
    price = oc.blended_usd_per_mtok
    parts = [f"{format_usd(price)}/Mtok."]
    if lp.usd_per_mtok is None:
        parts.append("Local cost unknown.")
    elif lp.basis == "electricity" and usd_per_kwh and lp.low_usd_per_mtok != lp.high_usd_per_mtok:
        pv = cost.power_verdict(dc, price, usd_per_kwh)
        if pv is not None:
            parts.append(f"Owned device: {pv.sentence('the offer')}.")
    else:
        cheaper = lp.usd_per_mtok < price
        what = "Rented machine" if lp.basis == "rent" else "Owned device"
        mine = "" if lp.basis == "rent" else star
        parts.append(f"{what}: local is {'cheaper' if cheaper else 'dearer'} "
                     f"({format_usd(lp.usd_per_mtok)}{mine} {lp.basis}).")
    if lp.basis == "electricity":
        if dc.dedicated_usd_per_mtok is not None:
            cheaper = dc.dedicated_usd_per_mtok < price
            parts.append(f"Bought for this: {'cheaper' if cheaper else 'dearer'} at "
                         f"{usage:,.0f} tok/day ({format_usd(dc.dedicated_usd_per_mtok)}{star}).")
        if be.tok_per_day is not None and not be.exceeds_capacity:
            parts.append(f"Break-even at {be.tok_per_day:,.0f} tok/day.")
        elif be.reason:
            parts.append(be.reason[0].upper() + be.reason[1:] + ".")
    if oc.carbon_g_per_mtok is not None and dc.carbon_g_per_mtok is not None:
        high = oc.carbon_g_per_mtok_high or oc.carbon_g_per_mtok
        if dc.carbon_g_per_mtok < oc.carbon_g_per_mtok:
            word = "lower"
        elif dc.carbon_g_per_mtok > high:
            word = "higher"
        else:
            word = "within the cloud's bounds"
        parts.append(f"Carbon: local {word} ({format_number(dc.carbon_g_per_mtok)}{star} vs "
                     f"{carbon_text(oc)} g/Mtok).")
    return " ".join(parts)


def groups_block(groups: Sequence[OfferGroup], lp: LocalPrice, dc: cost.DeviceCost,
                 ctx: Any, device: Any, star: str, break_even: Any) -> list[str]:
    """`break_even(dc, oc, device, grid)` is verdict.offer_break_even (kept there for reports)."""
    out: list[str] = []
    for group in groups:
        out.append(f"     [{group.name}] {group.note}")
        if not group.offers:
            continue
        rows, verdicts = [], []
        for o in group.offers:
            oc = ctx.offer_costs[o.id]
            be = break_even(dc, oc, device, ctx.grid)
            be_txt = ("n/a (rented)" if lp.basis == "rent" else
                      f"{be.tok_per_day:,.0f}" if be.tok_per_day is not None
                      and not be.exceeds_capacity else
                      "> capacity" if be.exceeds_capacity else
                      "never" if be.reason and be.reason.startswith("never") else "n/a")
            rows.append([o.id, o.tier, format_usd(oc.blended_usd_per_mtok), carbon_text(oc),
                         be_txt])
            verdicts.append(f"       - {o.id}: " + offer_verdict(
                lp, dc, oc, be, ctx.usage_tok_per_day, star, ctx.grid.electricity_usd_per_kwh))
        out += ["       " + line for line in text_table(
            ["offer", "tier", "$/Mtok mix", "g CO2/Mtok", "break-even tok/day"], rows)]
        out += verdicts
    return out


def local_lines(lp: LocalPrice, dc: cost.DeviceCost, star: str) -> list[str]:
    """The local price, then the figures that are not the marginal cost but still matter."""
    out = [f"     local marginal: {local_text(lp, star)}"]
    energy = (f"electricity {format_usd(dc.marginal_usd_per_mtok)}{mark(dc.marginal_usd_per_mtok, star)}"
              f"/Mtok" if dc.marginal_usd_per_mtok is not None else "electricity n/a")
    extra = [f"{format_number(dc.carbon_g_per_mtok)}{mark(dc.carbon_g_per_mtok, star)} g CO2/Mtok"]
    if lp.basis == "rent":
        extra.insert(0, f"{energy} (part of the rent, not added)")
    else:
        extra.insert(0, "dedicated n/a" if dc.dedicated_usd_per_mtok is None else
                     f"dedicated {format_usd(dc.dedicated_usd_per_mtok)}"
                     f"{mark(dc.dedicated_usd_per_mtok, star)}/Mtok")
    out.append("     also: " + ", ".join(extra))
    out += [f"     ({m})" for m in dc.missing if lp.basis == "electricity" or "dedicated" not in m]
    return out
