"""Pricing choices as one frozen options object, and the context every configuration is priced in.

`PricingOptions` is what a user chooses (device profile, region and tariff, usage, mix, offers,
references); `pricing_context` resolves it against the profiles once, for `compare`, `run`'s
verdict and `report` alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from bench.cost import model as cost
from bench.cost.device_match import device_by_id
from bench.cost.profiles import (CloudOffer, DeviceProfile, EnergyReference, GridRegion, Mix, Profiles)
from bench.errors import EdgebenchError

DEFAULT_REGION = "us-average"
DEFAULT_USAGE_TOK_PER_DAY = 1_000_000.0
DEFAULT_ENERGY_REFERENCE = "ml-energy-llama31-8b-h100"
DEFAULT_PUE_REFERENCE = "uptime-2025-industry-pue"
FAIR_TIERS = ("small", "open-small", "open-large")
CONTEXT_TIERS = ("frontier",)


@dataclass(frozen=True)
class PricingOptions:
    """What the user chose to price against; every field has the documented default."""

    device_profile_id: str | None = None  # None: exact fingerprint match per configuration
    region: str = DEFAULT_REGION  # electricity tariff and grid carbon
    usage_tok_per_day: float = DEFAULT_USAGE_TOK_PER_DAY  # for the dedicated view
    mix: str = cost.DEFAULT_MIX
    offer_ids: tuple[str, ...] | None = None  # None: all fair offers + frontier
    default_offers: bool = False  # the short list `edgebench run` ends with
    energy_reference_id: str = DEFAULT_ENERGY_REFERENCE  # for offers whose size is unpublished
    pue_reference_id: str = DEFAULT_PUE_REFERENCE
    rent_usd_per_hour: float | None = None  # this machine is rented at this price (ownership.py)
    owned: bool = False  # this machine is owned: its marginal cost is electricity

    def __post_init__(self) -> None:
        if self.offer_ids is not None and not isinstance(self.offer_ids, tuple):
            object.__setattr__(self, "offer_ids", tuple(self.offer_ids))
        if self.owned and self.rent_usd_per_hour is not None:
            raise EdgebenchError("--owned and --rent-usd-per-hour contradict each other; "
                                 "give one")


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
    options: PricingOptions = PricingOptions()
    vm_rents: tuple[Any, ...] = ()  # bench.cost.rent.VmRent: typical rents by vCPU count
    gpu_throughputs: tuple[Any, ...] = ()  # bench.cost.rent.GpuThroughput: self-hosting


def pricing_context(profiles: Profiles, options: PricingOptions = PricingOptions()) -> PricingContext:
    """Resolves region, mix, forced device and references, and prices every compared offer once."""
    o = options
    device_profile_id, region, usage_tok_per_day, mix = (o.device_profile_id, o.region,
                                                         o.usage_tok_per_day, o.mix)
    energy_reference_id, pue_reference_id = o.energy_reference_id, o.pue_reference_id
    offer_ids, default_offers = o.offer_ids, o.default_offers
    grid = profiles.regions.get(region)
    if grid is None:
        raise EdgebenchError(f"unknown region '{region}'; known: {', '.join(sorted(profiles.regions))}")
    the_mix = cost.resolve_mix(mix, profiles.mixes)
    forced: DeviceProfile | None = None
    if device_profile_id is not None:
        forced = device_by_id(profiles, device_profile_id)
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
        ref, note = offer_energy_reference(o, profiles, default_ref)
        used_refs.add(ref.id)
        return cost.offer_cost(o, the_mix, grid, ref, pue_ref.pue, note)

    from bench.cost.rent import load_gpu_throughputs, load_vm_rents

    offer_costs = {o.id: offer_cost(o) for o in offers}
    return PricingContext(profiles=profiles, grid=grid, mix=the_mix, usage_tok_per_day=usage_tok_per_day,
                          offers=tuple(offers), offer_costs=offer_costs,
                          energy_reference_ids=frozenset(used_refs), forced_device=forced,
                          options=options, vm_rents=load_vm_rents(profiles.root),
                          gpu_throughputs=load_gpu_throughputs(profiles.root))


def offer_energy_reference(offer: CloudOffer, profiles: Profiles,
                           default: EnergyReference) -> tuple[EnergyReference, str]:
    """The offer's own reference if it names one; else the per-token reference nearest its
    model's published size; else (size unpublished) the default, said to be a guess of size."""
    from bench.cost.rent import nearest_by_parameters

    if offer.energy_reference:
        return profiles.energy_references[offer.energy_reference], "named by the offer"
    model = profiles.models.get(offer.model_id) if offer.model_id else None
    sized = [r for r in profiles.energy_references.values()
             if r.j_per_output_tok is not None and r.parameters is not None]
    if model is not None and model.parameters is not None and sized:
        ref = nearest_by_parameters(sized, model.parameters)
        if ref is not None:
            return ref, (f"nearest size to {model.parameters / 1e9:.3g}B: "
                         f"{ref.parameters / 1e9:.3g}B")
    return default, ("no parameter count recorded for the offer's model: the default reference "
                     "(an 8B model), likely a low bound for a larger one")
