"""Report aggregation: per-test medians (pandas), per-repetition series, priced scenarios.

Pricing reuses bench.compare (grouping, pairing of pp/tg tests, device matching, offers) and
bench.cost (formulas), so `edgebench report` and `edgebench compare` can never disagree. pandas
is imported inside functions: `edgebench --help` must stay light.
"""

from __future__ import annotations

import dataclasses

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from bench.cost import model as cost
from bench.cost.options import PricingContext, PricingOptions, pricing_context
from bench.cost.ownership import LocalPrice, for_configuration, local_price
from bench.cost.scenarios import Configuration, Scenario, group_configurations
from bench.cost.verdict import assumption_lines, configuration_device, offer_break_even
from bench.cost.profiles import DeviceProfile, load_profiles
from bench.quality.summary import QualitySummary
from bench.results.schema import ResultRow

if TYPE_CHECKING:
    import pandas as pd

MAX_REP_SERIES = 40  # lines in the throttling plot; more is unreadable and bloats the page
_KEY = ("host_fingerprint", "cpu_model", "model_id", "variant", "backend", "ep", "threads", "test")
_MEDIANS = ("prefill_tok_s", "decode_tok_s", "ttft_s", "itl_p90_s", "peak_rss_bytes",
            "prefill_j_per_tok", "decode_j_per_tok")
_FRAME_COLUMNS = _KEY + _MEDIANS + ("run_id", "config_id", "rep", "n_prompt", "energy_method")


def energy_label(methods: Sequence[str]) -> str:
    """How an energy-derived number was obtained, printed next to it: never a bare figure."""
    real = sorted(set(methods) - {"none"})
    if not real:
        return "not measured"
    if all(m.startswith("estimate") for m in real):
        return ", ".join(real)
    if any(m.startswith("estimate") for m in real):
        return "partly estimate: " + ", ".join(real)
    return "measured: " + ", ".join(real)


def is_estimate(label: str) -> bool:
    return "estimate" in label


@dataclass(frozen=True)
class TestStats:
    """Medians over the repetitions of one test on one device and configuration."""

    device: str
    host_fingerprint: str
    cpu_model: str
    model_id: str
    variant: str
    backend: str
    ep: str
    threads: int
    test: str
    reps: int
    prefill_tok_s: float | None  # None for a tgN test: its 1-token prompt says nothing about prefill
    decode_tok_s: float | None
    decode_tok_s_min: float | None
    decode_tok_s_max: float | None
    ttft_s: float | None
    itl_p90_s: float | None
    peak_rss_bytes: float | None
    prefill_j_per_tok: float | None
    decode_j_per_tok: float | None
    energy: str  # energy_label() of the rows
    config: str  # ConfigNamer label, variant included
    setup: str  # the same without the variant (plots colour by variant instead)


@dataclass(frozen=True)
class RepSeries:
    """Decode throughput of one run of one test, repetition by repetition (throttling shows here)."""

    label: str
    reps: tuple[int, ...]
    decode_tok_s: tuple[float, ...]


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


_NAMED = ("model_id", "backend", "ep", "threads")


@dataclass(frozen=True)
class ConfigNamer:
    """Names a configuration by the fields that differ between rows; shared ones are said once."""

    varying: frozenset[str]

    def __call__(self, model_id: str, variant: str | None, backend: str, ep: str, threads: int) -> str:
        values = {"model_id": model_id, "backend": backend, "ep": ep, "threads": f"{threads}t"}
        parts = [values["model_id"]] if "model_id" in self.varying else []
        parts += [variant] if variant is not None else []
        parts += [values[f] for f in ("backend", "ep", "threads") if f in self.varying]
        return " ".join(parts)


def config_namer(rows: Sequence[ResultRow]) -> tuple[ConfigNamer, str]:
    """The namer, and a sentence giving the values all rows share."""
    seen = {f: {getattr(r, f) for r in rows} for f in _NAMED}
    varying = frozenset(f for f, vals in seen.items() if len(vals) > 1)
    shared = [f"{f.replace('_id', '')} {next(iter(vals))}" for f, vals in seen.items() if len(vals) == 1]
    return ConfigNamer(varying), ("All rows share: " + ", ".join(shared) + "." if shared else "")


def device_labels(pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """(host_fingerprint, cpu_model) -> the CPU name, plus the fingerprint only when two hosts share it."""
    by_cpu: dict[str, set[str]] = {}
    for fp, cpu in pairs:
        by_cpu.setdefault(cpu, set()).add(fp)
    return {(fp, cpu): cpu if len(by_cpu[cpu]) == 1 else f"{cpu} [{fp[:8]}]" for fp, cpu in pairs}


def rows_frame(rows: Sequence[ResultRow]) -> "pd.DataFrame":
    """The columns the report needs, one row per repetition (column-wise: fast for 100k rows)."""
    import pandas as pd

    frame = pd.DataFrame({c: [getattr(r, c) for r in rows] for c in _FRAME_COLUMNS})
    for c in _MEDIANS:
        frame[c] = pd.to_numeric(frame[c], errors="coerce").astype("float64")
    # as in the run summary: a 1-token prompt (tgN) measures nothing about prefill
    tiny = frame["n_prompt"] <= 1
    frame.loc[tiny, ["prefill_tok_s", "prefill_j_per_tok"]] = math.nan
    return frame


def _none(x: object) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)  # type: ignore[arg-type]


def medians_by_test(frame: "pd.DataFrame", labels: dict[tuple[str, str], str],
                    name: ConfigNamer) -> list[TestStats]:
    """Median of every metric per device x model x variant x backend x ep x threads x test."""
    grouped = frame.groupby(list(_KEY), sort=True, dropna=False)
    agg = grouped[list(_MEDIANS)].median()
    agg["reps"] = grouped.size()
    agg["decode_min"] = grouped["decode_tok_s"].min()
    agg["decode_max"] = grouped["decode_tok_s"].max()
    agg["energy"] = grouped["energy_method"].agg(lambda s: energy_label(list(s.unique())))
    out = []
    for key, rec in zip(agg.index, agg.to_dict("records")):
        k = dict(zip(_KEY, key))
        out.append(TestStats(
            device=labels[(k["host_fingerprint"], k["cpu_model"])], **k, reps=int(rec["reps"]),
            prefill_tok_s=_none(rec["prefill_tok_s"]), decode_tok_s=_none(rec["decode_tok_s"]),
            decode_tok_s_min=_none(rec["decode_min"]), decode_tok_s_max=_none(rec["decode_max"]),
            ttft_s=_none(rec["ttft_s"]), itl_p90_s=_none(rec["itl_p90_s"]),
            peak_rss_bytes=_none(rec["peak_rss_bytes"]), prefill_j_per_tok=_none(rec["prefill_j_per_tok"]),
            decode_j_per_tok=_none(rec["decode_j_per_tok"]), energy=rec["energy"],
            config=name(k["model_id"], k["variant"], k["backend"], k["ep"], k["threads"]),
            setup=name(k["model_id"], None, k["backend"], k["ep"], k["threads"])))
    return out


def rep_series(frame: "pd.DataFrame", labels: dict[tuple[str, str], str], name: ConfigNamer,
               limit: int = MAX_REP_SERIES) -> tuple[list[RepSeries], int]:
    """Decode tok/s by repetition for each (run, configuration); the longest `limit` series kept."""
    decode = frame.dropna(subset=["decode_tok_s"]).sort_values("rep", kind="stable")
    groups = decode.groupby(["host_fingerprint", "cpu_model", "run_id", "config_id"], sort=True)
    sizes = groups.size().sort_values(ascending=False, kind="stable")
    out = []
    for key in sizes.index[:limit]:
        g = groups.get_group(key)
        first = g.iloc[0]
        label = (f"{labels[(key[0], key[1])]} · "
                 f"{name(first.model_id, first.variant, first.backend, first.ep, int(first.threads))}"
                 f" · {first.test} · run {str(key[2])[:8]}")
        out.append(RepSeries(label, tuple(int(r) for r in g["rep"]), tuple(float(v) for v in g["decode_tok_s"])))
    return out, len(sizes)


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
    rows: Sequence[ResultRow],
    options: PricingOptions = PricingOptions(), *, profiles_root: Path | None = None,
    quality: Sequence[QualitySummary] = ()) -> ReportData:
    """Everything the HTML and Markdown renderers show, computed once.

    Offers default to the short list `edgebench run` prints (cheapest small, open-small and
    frontier offers); `options.offer_ids` picks others.
    """
    ctx = pricing_context(load_profiles(profiles_root),
                          dataclasses.replace(options, default_offers=not options.offer_ids))
    labels = device_labels(sorted({(r.host_fingerprint, r.cpu_model) for r in rows}))
    name, common = config_namer(rows)
    configs = group_configurations(rows)
    priced, notes, used = price(configs, ctx, labels, name)
    tests: list[TestStats] = []
    series: list[RepSeries] = []
    total = 0
    if rows:
        frame = rows_frame(rows)
        tests = medians_by_test(frame, labels, name)
        series, total = rep_series(frame, labels, name)
    return ReportData(
        tests=tuple(tests), series=tuple(series), series_total=total, priced=tuple(priced),
        not_priced=tuple(notes), ctx=ctx, assumptions=tuple(_without_title(assumption_lines(ctx, used))),
        n_rows=len(rows), n_devices=len(labels), n_configurations=len(configs), common=common,
        quality=tuple(quality))
