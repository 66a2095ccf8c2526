"""Which prices are too old to trust, measured against the data set's own as-of date.

Prices move (several small-model price changes a quarter in 2026), so each refresh of the price
data sets hardware_profiles/as_of.toml to the day it was done and says how old a price may be by
then. A check against today's date would make the repository fail on its own over time, without
any change; against as_of it fails only when someone bumps as_of without refreshing the prices
it vouches for, or adds a price older than the refresh allows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from bench.cost.profile_checks import check_table, fail
from bench.cost.profiles import Profiles
from bench.toml_load import load_toml

AS_OF_FILE = "as_of.toml"
AS_OF = {"as_of": ("date", True), "max_price_age_days": ("int", True), "notes": ("str", False)}
# Figures that are prices: what an offer charges per token, what a rental charges per GPU-hour.
OFFER_PRICES = ("input_usd_per_mtok", "cached_input_usd_per_mtok", "output_usd_per_mtok")
RENTAL_PRICES = ("usd_per_gpu_hour",)


@dataclass(frozen=True)
class AsOf:
    """When the price data was last refreshed, and how old a price may be on that day."""

    as_of: dt.date
    max_price_age_days: int
    path: Path


def load_as_of(root: Path) -> AsOf:
    """Reads root/as_of.toml (root: the hardware_profiles directory)."""
    path = Path(root) / AS_OF_FILE
    rec = check_table(str(path), load_toml(path), AS_OF)
    if rec["max_price_age_days"] < 1:
        raise fail(str(path), "max_price_age_days must be at least 1")
    return AsOf(rec["as_of"], rec["max_price_age_days"], path)


def stale_figures(profiles: Profiles, as_of: dt.date, max_age_days: int) -> list[str]:
    """One line per offer or rental price retrieved more than max_age_days before as_of, or
    after it (as_of was not bumped with the refresh); empty when every price is fresh."""
    oldest = as_of - dt.timedelta(days=max_age_days)
    records = [(o, OFFER_PRICES) for o in profiles.offers.values()]
    records += [(g, RENTAL_PRICES) for g in profiles.gpu_rentals.values()]
    out = []
    for rec, fields in sorted(records, key=lambda r: (str(r[0].path), r[0].id)):
        for name in fields:
            src = rec.sources.get(name)
            if src is None:
                continue  # the figure is absent (an optional cached-input price)
            if src.retrieved < oldest:
                age = (as_of - src.retrieved).days
                out.append(f"{rec.path}: {rec.id} {name} retrieved {src.retrieved.isoformat()}, "
                           f"{age} days before as_of {as_of.isoformat()} (limit {max_age_days}): "
                           "re-check the price at its source")
            elif src.retrieved > as_of:
                out.append(f"{rec.path}: {rec.id} {name} retrieved {src.retrieved.isoformat()}, "
                           f"after as_of {as_of.isoformat()}: bump as_of in {AS_OF_FILE}")
    return out
