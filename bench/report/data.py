"""Report aggregation: per-test medians, per-repetition series, priced scenarios.

Medians and configurations are computed by DuckDB over the rows table (report/columnar.py,
report/aggregate.py), so a million rows never become a million Python objects. Pricing reuses
bench.compare (pairing of pp/tg tests, device matching, offers) and bench.cost (formulas), so
`edgebench report` and `edgebench compare` can never disagree.
"""

from __future__ import annotations

import dataclasses

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from bench.cost import model as cost
from bench.cost.options import PricingContext, PricingOptions, pricing_context
from bench.cost.ownership import LocalPrice, for_configuration, local_price
from bench.cost.scenarios import Configuration, Scenario
from bench.cost.verdict import assumption_lines, configuration_device, offer_break_even
from bench.cost.profiles import DeviceProfile, load_profiles
from bench.quality.summary import QualitySummary
from bench.report.aggregate import (ConfigNamer, RepSeries, TestStats, config_namer,  # noqa: F401
                                    configurations, energy_label, is_estimate, medians_by_test,
                                    rep_series, table_device_labels, test_groups)
from bench.report.columnar import RowTable, table_from_rows
from bench.results.schema import ResultRow


@dataclass(frozen=True)
class PricedScenario:
    """One priced configuration (compare.Scenario) on one device, with break-even per offer.

    `local` is the marginal price under the machine's ownership (bench/cost/ownership.py): the
    rent for the busy time on a rented machine, electricity on an owned one, exactly as
    `edgebench compare` prices it."""

    device: str
    config: str
    scenario: Scenario
    profile: DeviceProfile | None
    cost: cost.DeviceCost
    break_evens: tuple[tuple[str, cost.BreakEven], ...]  # (offer id, break-even), ctx.offers order
    cfg: Configuration
    local: LocalPrice

    @property
    def energy(self) -> str:
        return energy_label(self.scenario.energy_methods)

    @property
    def rented(self) -> bool:
        return self.local.basis == "rent"

    @property
    def local_is_estimate(self) -> bool:
        """The marginal price rests on an estimate: estimated energy, or a typical rent."""
        return self.local.ownership.estimate or (not self.rented and is_estimate(self.energy))

    @property
    def label(self) -> str:
        return f"{self.device} · {self.config} · {self.scenario.label}"


@dataclass(frozen=True)
class ReportData:
    tests: tuple[TestStats, ...]
    series: tuple[RepSeries, ...]
    series_total: int
    priced: tuple[PricedScenario, ...]
    not_priced: tuple[str, ...]  # why a configuration has no cost figures
    ctx: PricingContext
    assumptions: tuple[str, ...]
    n_rows: int
    n_devices: int
    n_configurations: int
    common: str  # what every row shares, said once instead of in every label
    quality: tuple[QualitySummary, ...] = ()  # joined on (model_id, variant) by report/quality.py


def price(configs: Sequence[Configuration], ctx: PricingContext, labels: dict[tuple[str, str], str],
          name: ConfigNamer) -> tuple[list[PricedScenario], list[str], dict[str, DeviceProfile]]:
    """Every scenario priced with the cost model; also which profiles were used (for assumptions)."""
    priced: list[PricedScenario] = []
    notes: list[str] = []
    used: dict[str, DeviceProfile] = {}
    for cfg in configs:
        device = labels[(cfg.host_fingerprint, cfg.cpu_model)]
        config = name(cfg.model_id, cfg.variant, cfg.backend, cfg.ep, cfg.threads)
        profile = configuration_device(cfg, ctx)
        if profile is None:
            notes.append(f"{device}: no device profile matches cpu_model '{cfg.cpu_model}' exactly, "
                         "so no dedicated cost or break-even (add one under hardware_profiles/devices/)")
        else:
            used[profile.id] = profile
        notes += [f"{device} · {config}: not priced: {u}" for u in cfg.unpaired]
        ownership = for_configuration(cfg, profile, ctx.options, ctx.vm_rents)
        notes.append(f"{device}: local machine {ownership.label}")
        if ownership.ask:
            notes.append(f"{device}: to price it exactly, {ownership.ask} (edgebench report)")
        for sc in cfg.scenarios:
            dc = cost.device_cost(sc.perf, profile, ctx.grid, ctx.mix, ctx.usage_tok_per_day)
            lp = local_price(ownership, dc)
            # device-level reasons once per device; "--device-profile" is compare's option, not
            # ours; a rented machine is not bought, so its missing purchase price is no gap
            notes += [f"{device}: {m}" for m in dc.missing if "--device-profile" not in m
                      and (lp.basis == "electricity" or "dedicated" not in m)]
            bes = tuple((o.id, offer_break_even(dc, ctx.offer_costs[o.id], profile, ctx.grid))
                        for o in ctx.offers)
            priced.append(PricedScenario(device, config, sc, profile, dc, bes, cfg, lp))
    return priced, list(dict.fromkeys(notes)), used


def daily_cost_usd(ps: PricedScenario, ctx: PricingContext, tok_per_day: float) -> float | None:
    """Local $/day at this volume: dedicated when an owned device has a price, else marginal
    (the rent for the busy time on a rented machine, electricity on an owned one).

    None above one device's capacity (it cannot serve that volume) or without a marginal cost.
    """
    dc = ps.cost
    marginal = ps.local.usd_per_mtok
    if marginal is None or tok_per_day > dc.capacity_tok_per_day:
        return None
    p = ps.profile
    if p is None or p.price_usd is None or p.useful_life_years is None or ps.rented:
        return marginal * tok_per_day / cost.TOK_PER_MTOK
    per_mtok = cost.dedicated_usd_per_mtok(
        marginal_usd_per_mtok=marginal, s_per_mtok=dc.device_s_per_mtok,
        price_usd=p.price_usd, useful_life_years=p.useful_life_years, idle_power_w=p.idle_power_w,
        usd_per_kwh=ctx.grid.electricity_usd_per_kwh or 0.0, usage_tok_per_day=tok_per_day)
    return per_mtok * tok_per_day / cost.TOK_PER_MTOK


def has_dedicated_line(ps: PricedScenario) -> bool:
    """Only an owned device is bought: a rented one's cost is its rent."""
    p = ps.profile
    return (not ps.rented and p is not None and p.price_usd is not None
            and p.useful_life_years is not None)


def _without_title(lines: list[str]) -> list[str]:
    """compare prints a plain-text heading first; the report has its own."""
    return lines[2:] if lines[:1] == ["Assumptions and sources"] else lines


def build_report_data(
    rows: Sequence[ResultRow] | RowTable,
    options: PricingOptions = PricingOptions(), *, profiles_root: Path | None = None,
    quality: Sequence[QualitySummary] = ()) -> ReportData:
    """Everything the HTML and Markdown renderers show, computed once, from rows or a rows table
    (report/columnar.py: CSVs read column-wise).

    Offers default to the short list `edgebench run` prints (cheapest small, open-small and
    frontier offers); `options.offer_ids` picks others.
    """
    ctx = pricing_context(load_profiles(profiles_root),
                          dataclasses.replace(options, default_offers=not options.offer_ids))
    table = rows if isinstance(rows, RowTable) else table_from_rows(rows) if rows else None
    tests: list[TestStats] = []
    series: list[RepSeries] = []
    labels: dict[tuple[str, str], str] = {}
    configs: list[Configuration] = []
    name, common, total = ConfigNamer(frozenset()), "", 0
    if table is not None and table.n_rows:
        labels = table_device_labels(table)
        name, common = config_namer(table)
        groups = test_groups(table)
        configs = configurations(groups)
        tests = medians_by_test(table, groups, labels, name)
        series, total = rep_series(table, labels, name)
    priced, notes, used = price(configs, ctx, labels, name)
    return ReportData(
        tests=tuple(tests), series=tuple(series), series_total=total, priced=tuple(priced),
        not_priced=tuple(notes), ctx=ctx, assumptions=tuple(_without_title(assumption_lines(ctx, used))),
        n_rows=table.n_rows if table is not None else 0, n_devices=len(labels),
        n_configurations=len(configs), common=common, quality=tuple(quality))
