"""Pure cost, carbon and break-even formulas: local device vs cloud offers, per 1M tokens.

Everything is SI inside (J, s, g, USD); kWh appears only at the tariff and carbon edges. The three
hardware views of the design are kept apart and always labelled: marginal (device already owned:
electricity only), dedicated (purchase price amortised over the useful life at a stated usage,
plus the idle power of an always-on device), and break-even usage against each cloud offer.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Mapping

from bench.errors import EdgebenchError
from bench.cost.profiles import CloudOffer, DeviceProfile, GridRegion, Mix

TOK_PER_MTOK = 1_000_000
J_PER_KWH = 3_600_000.0
S_PER_DAY = 86_400.0
DAYS_PER_YEAR = 365.25
DEFAULT_MIX = "3:1"

_RATIO = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*:\s*(\d+(?:\.\d+)?)\s*$")


@dataclass(frozen=True)
class ConfigPerf:
    """Medians of one configuration: rates and (optional) joules per token for prefill and decode."""

    prefill_tok_s: float
    decode_tok_s: float
    prefill_j_per_tok: float | None = None
    decode_j_per_tok: float | None = None
    # an estimate's bounds (equal to the central figures for a measurement)
    prefill_j_per_tok_low: float | None = None
    prefill_j_per_tok_high: float | None = None
    decode_j_per_tok_low: float | None = None
    decode_j_per_tok_high: float | None = None

    def bound(self, which: str) -> "ConfigPerf":
        """The same rates with the low or high joules per token as the central figures."""
        pre = getattr(self, f"prefill_j_per_tok_{which}")
        dec = getattr(self, f"decode_j_per_tok_{which}")
        return ConfigPerf(self.prefill_tok_s, self.decode_tok_s,
                          pre if pre is not None else self.prefill_j_per_tok,
                          dec if dec is not None else self.decode_j_per_tok)


@dataclass(frozen=True)
class PowerVerdict:
    """Which way the answer goes across an estimate's bounds, for one offer."""

    kind: str  # "local" (cheaper at both bounds), "cloud" (at both), "depends"
    break_even_w: float | None  # average device power at which the two cost the same

    def sentence(self, offer: str) -> str:
        if self.kind == "local":
            return f"local cheaper than {offer} at both bounds"
        if self.kind == "cloud":
            return f"{offer} cheaper at both bounds"
        return f"vs {offer} it depends on power: break-even at {self.break_even_w:.3g} W"


@dataclass(frozen=True)
class DeviceCost:
    """Local cost of 1M tokens of the mix. None fields carry a reason in `missing`."""

    device_s_per_mtok: float
    capacity_tok_per_day: float
    energy_j_per_mtok: float | None
    marginal_usd_per_mtok: float | None
    dedicated_usd_per_mtok: float | None
    carbon_g_per_mtok: float | None
    usage_tok_per_day: float
    usage_exceeds_capacity: bool
    missing: tuple[str, ...] = ()
    marginal_usd_per_mtok_low: float | None = None  # the estimate's bounds (or the measurement)
    marginal_usd_per_mtok_high: float | None = None


@dataclass(frozen=True)
class OfferCost:
    """An offer's price and carbon for 1M tokens of the mix. Carbon counts prompt and output
    tokens: the low bound takes the reference's J per output token as published (its own
    prompts folded in), the high bound adds prompt tokens at `ratio_high` of an output token."""

    offer_id: str
    blended_usd_per_mtok: float
    carbon_g_per_mtok: float | None  # the low bound
    carbon_g_per_mtok_high: float | None = None
    energy_reference_id: str | None = None
    energy_reference_note: str | None = None  # how the reference was chosen


@dataclass(frozen=True)
class BreakEven:
    """Daily tokens at which the dedicated device costs what the offer costs, or why there is none."""

    tok_per_day: float | None
    reason: str | None = None
    exceeds_capacity: bool = False


# ---------------------------------------------------------------- mix
def resolve_mix(spec: str, named: Mapping[str, Mix]) -> Mix:
    """A named mix (e.g. 'chat') or any 'I:O' ratio; a ratio equal to a named id keeps its sources."""
    if spec in named:
        return named[spec]
    m = _RATIO.match(spec)
    if not m:
        raise EdgebenchError(
            f"mix '{spec}' is neither a named mix ({', '.join(sorted(named)) or 'none loaded'}) "
            "nor an input:output ratio such as 3:1"
        )
    i, o = float(m.group(1)), float(m.group(2))
    if i + o <= 0:
        raise EdgebenchError(f"mix '{spec}' has no tokens")
    return Mix(id=spec, name=f"user-stated mix {spec} (input:output)", input_share=i / (i + o),
               output_share=o / (i + o))


def _tokens(mix: Mix) -> tuple[float, float, float]:
    """Input, cached input and output tokens in one million tokens of the mix."""
    return (mix.input_share * TOK_PER_MTOK, mix.cached_input_share * TOK_PER_MTOK,
            mix.output_share * TOK_PER_MTOK)


# ---------------------------------------------------------------- local device
def device_s_per_mtok(perf: ConfigPerf, mix: Mix) -> float:
    """Busy device-seconds for 1M tokens: prompt tokens (cached or not) at prefill speed."""
    n_in, n_cached, n_out = _tokens(mix)
    if perf.prefill_tok_s <= 0 or perf.decode_tok_s <= 0:
        raise EdgebenchError("throughput must be positive to price a configuration")
    return (n_in + n_cached) / perf.prefill_tok_s + n_out / perf.decode_tok_s


def energy_j_per_mtok(perf: ConfigPerf, mix: Mix) -> float | None:
    if perf.prefill_j_per_tok is None or perf.decode_j_per_tok is None:
        return None
    n_in, n_cached, n_out = _tokens(mix)
    return (n_in + n_cached) * perf.prefill_j_per_tok + n_out * perf.decode_j_per_tok


def energy_usd(energy_j: float, usd_per_kwh: float) -> float:
    return energy_j / J_PER_KWH * usd_per_kwh


def carbon_g(energy_j: float, g_per_kwh: float) -> float:
    return energy_j / J_PER_KWH * g_per_kwh


def capacity_tok_per_day(s_per_mtok: float) -> float:
    """Most tokens one device can serve in a day of continuous work at this mix."""
    return S_PER_DAY / s_per_mtok * TOK_PER_MTOK


def fixed_usd_per_day(price_usd: float, useful_life_years: float, idle_power_w: float | None,
                      usd_per_kwh: float) -> float:
    """Amortised purchase price plus the cost of idling all day (busy time is credited back)."""
    idle_w = idle_power_w or 0.0
    return price_usd / (useful_life_years * DAYS_PER_YEAR) + energy_usd(idle_w * S_PER_DAY, usd_per_kwh)


def idle_credit_usd_per_mtok(idle_power_w: float | None, s_per_mtok: float, usd_per_kwh: float) -> float:
    """Idle energy not spent while the device is busy with 1M tokens (measured J/token cover it)."""
    return energy_usd((idle_power_w or 0.0) * s_per_mtok, usd_per_kwh)


def dedicated_usd_per_mtok(*, marginal_usd_per_mtok: float, s_per_mtok: float, price_usd: float,
                           useful_life_years: float, idle_power_w: float | None, usd_per_kwh: float,
                           usage_tok_per_day: float) -> float:
    """Cost of 1M tokens on a device bought for this job and left on all day.

    = fixed $/day / (Mtok/day) - idle credit + marginal. Usage above capacity is priced at capacity
    (the caller reports it), since one device cannot serve more.
    """
    if usage_tok_per_day <= 0:
        raise EdgebenchError("usage must be positive tokens per day")
    mtok_per_day = min(usage_tok_per_day, capacity_tok_per_day(s_per_mtok)) / TOK_PER_MTOK
    fixed = fixed_usd_per_day(price_usd, useful_life_years, idle_power_w, usd_per_kwh)
    idle_credit = idle_credit_usd_per_mtok(idle_power_w, s_per_mtok, usd_per_kwh)
    return fixed / mtok_per_day - idle_credit + marginal_usd_per_mtok


def device_cost(perf: ConfigPerf, device: DeviceProfile | None, region: GridRegion, mix: Mix,
                usage_tok_per_day: float) -> DeviceCost:
    """All local figures for one configuration; what cannot be computed is None with a reason."""
    s = device_s_per_mtok(perf, mix)
    cap = capacity_tok_per_day(s)
    missing: list[str] = []
    e_j = energy_j_per_mtok(perf, mix)
    marginal = carbon = dedicated = None
    if e_j is None:
        missing.append("no energy per token in the results (energy_method none)")
    else:
        if region.electricity_usd_per_kwh is None:
            missing.append(f"region {region.id} has no electricity tariff")
        else:
            marginal = energy_usd(e_j, region.electricity_usd_per_kwh)
        if region.carbon_g_per_kwh is None:
            missing.append(f"region {region.id} has no grid carbon intensity")
        else:
            carbon = carbon_g(e_j, region.carbon_g_per_kwh)
    if device is None:
        missing.append("no device profile: dedicated cost and break-even need --device-profile")
    elif device.price_usd is None or device.useful_life_years is None:
        missing.append(f"device profile {device.id} has no price_usd/useful_life_years: no dedicated cost")
    elif marginal is not None and region.electricity_usd_per_kwh is not None:
        if device.idle_power_w is None:
            missing.append(f"device profile {device.id} has no idle_power_w: dedicated cost excludes idle power")
        dedicated = dedicated_usd_per_mtok(
            marginal_usd_per_mtok=marginal, s_per_mtok=s, price_usd=device.price_usd,
            useful_life_years=device.useful_life_years, idle_power_w=device.idle_power_w,
            usd_per_kwh=region.electricity_usd_per_kwh, usage_tok_per_day=usage_tok_per_day)
    low_j, high_j = energy_j_per_mtok(perf.bound("low"), mix), energy_j_per_mtok(perf.bound("high"), mix)
    tariff = region.electricity_usd_per_kwh
    return DeviceCost(
        marginal_usd_per_mtok_low=energy_usd(low_j, tariff) if marginal is not None and low_j is not None else None,
        marginal_usd_per_mtok_high=energy_usd(high_j, tariff) if marginal is not None and high_j is not None else None,
        device_s_per_mtok=s, capacity_tok_per_day=cap, energy_j_per_mtok=e_j,
        marginal_usd_per_mtok=marginal, dedicated_usd_per_mtok=dedicated, carbon_g_per_mtok=carbon,
        usage_tok_per_day=usage_tok_per_day, usage_exceeds_capacity=usage_tok_per_day > cap,
        missing=tuple(missing),
    )


# ---------------------------------------------------------------- cloud
def blended_usd_per_mtok(offer: CloudOffer, mix: Mix) -> float:
    """Price of 1M tokens of the mix; cached input falls back to the full input price."""
    cached = offer.cached_input_usd_per_mtok
    if cached is None:
        cached = offer.input_usd_per_mtok
    return (mix.input_share * offer.input_usd_per_mtok + mix.cached_input_share * cached
            + mix.output_share * offer.output_usd_per_mtok)


def cloud_energy_j_per_mtok(j_per_output_tok: float, prompt_ratio: float, mix: Mix) -> float:
    """E = J/output token x (output tokens + ratio x prompt tokens) for 1M tokens of the mix
    (docs/energy.md): the ratio is what a prompt token costs relative to an output token."""
    n_in, n_cached, n_out = _tokens(mix)
    return j_per_output_tok * (n_out + prompt_ratio * (n_in + n_cached))


def cloud_carbon_g_per_mtok(j_per_output_tok: float, prompt_ratio: float, pue: float,
                            g_per_kwh: float, mix: Mix) -> float:
    return carbon_g(cloud_energy_j_per_mtok(j_per_output_tok, prompt_ratio, mix) * pue, g_per_kwh)


def offer_cost(offer: CloudOffer, mix: Mix, region: GridRegion, reference: Any,
               pue: float | None, note: str | None = None) -> OfferCost:
    """`reference` is the EnergyReference chosen for the offer's model size (or None)."""
    low = high = None
    j_out = getattr(reference, "j_per_output_tok", None)
    if j_out is not None and pue is not None and region.carbon_g_per_kwh is not None:
        ratio_low = reference.prompt_to_output_energy_ratio_low or 0.0
        ratio_high = reference.prompt_to_output_energy_ratio_high
        ratio_high = ratio_low if ratio_high is None else ratio_high
        low = cloud_carbon_g_per_mtok(j_out, ratio_low, pue, region.carbon_g_per_kwh, mix)
        high = cloud_carbon_g_per_mtok(j_out, ratio_high, pue, region.carbon_g_per_kwh, mix)
    return OfferCost(offer.id, blended_usd_per_mtok(offer, mix), low, high,
                     getattr(reference, "id", None), note)


# ---------------------------------------------------------------- break-even
def break_even(*, offer_usd_per_mtok: float, marginal_usd_per_mtok: float | None, s_per_mtok: float,
               price_usd: float | None, useful_life_years: float | None, idle_power_w: float | None,
               usd_per_kwh: float | None) -> BreakEven:
    """Daily tokens u* where dedicated(u*) = offer price.

    dedicated(u) = F / (u / 1e6) - C + M, with F the fixed $/day, C the idle credit and M the
    marginal $/Mtok, so u* = 1e6 * F / (P - M + C). When electricity alone costs at least the offer
    (M >= P) the device never catches up, since the fixed part is never negative.
    """
    if marginal_usd_per_mtok is None or usd_per_kwh is None:
        return BreakEven(None, "no local energy cost (no energy measurement or no tariff)")
    if price_usd is None or useful_life_years is None:
        return BreakEven(None, "device profile has no price_usd/useful_life_years")
    if marginal_usd_per_mtok >= offer_usd_per_mtok:
        return BreakEven(None, f"never: electricity alone costs ${marginal_usd_per_mtok:.4g}/Mtok, "
                               f"at least the offer's ${offer_usd_per_mtok:.4g}/Mtok")
    fixed = fixed_usd_per_day(price_usd, useful_life_years, idle_power_w, usd_per_kwh)
    credit = idle_credit_usd_per_mtok(idle_power_w, s_per_mtok, usd_per_kwh)
    u = TOK_PER_MTOK * fixed / (offer_usd_per_mtok - marginal_usd_per_mtok + credit)
    cap = capacity_tok_per_day(s_per_mtok)
    if u > cap and not math.isclose(u, cap):
        return BreakEven(u, f"break-even {u:,.0f} tok/day exceeds one device's capacity of "
                            f"{cap:,.0f} tok/day: never on one device", exceeds_capacity=True)
    return BreakEven(u)


def break_even_power_w(offer_usd_per_mtok: float, s_per_mtok: float, usd_per_kwh: float) -> float:
    """The average device power at which 1M tokens of electricity cost what the offer charges."""
    return offer_usd_per_mtok * J_PER_KWH / (usd_per_kwh * s_per_mtok)


def power_verdict(dc: DeviceCost, offer_usd_per_mtok: float, usd_per_kwh: float) -> PowerVerdict | None:
    """Local marginal cost against one offer at both bounds; None when energy is unknown."""
    low, high = dc.marginal_usd_per_mtok_low, dc.marginal_usd_per_mtok_high
    if low is None or high is None:
        return None
    if high < offer_usd_per_mtok:
        return PowerVerdict("local", None)
    if low > offer_usd_per_mtok:
        return PowerVerdict("cloud", None)
    return PowerVerdict("depends", break_even_power_w(offer_usd_per_mtok, dc.device_s_per_mtok,
                                                      usd_per_kwh))
