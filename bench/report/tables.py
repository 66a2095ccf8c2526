"""The report's tables as plain-text cells, shared by the HTML and Markdown renderers.

Each energy-derived cell carries its method in parentheses ("0.041 J (estimate:tdp)") so an
estimate can never be read as a measurement, whichever renderer shows it.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.cost.format import format_number, format_usd
from bench.report.data import PricedScenario, ReportData, has_dedicated_line, is_estimate
from bench.report.peers import HEADER as PEERS_HEADER, INTRO as PEERS_INTRO
from bench.report.peers import TITLE as PEERS_TITLE, peer_rows
from bench.report.quality import (NO_QUALITY_NOTE, QUALITY_NOTE, QUALITY_SECTION_HEADER,
                                  QUALITY_SECTION_INTRO, QualityCells, quality_section_rows)


TEXT_HEADERS = frozenset({"device", "model", "variant", "backend", "ep", "test", "configuration",
                          "scenario", "device profile", "local scenario", "offer", "tier",
                          "dataset", "vs variant", "prompt format", "isolation", "partial",
                          "speed rows", "local machine", "point", "kind",
                          "quality", "cost basis", "Pareto front"})


@dataclass(frozen=True)
class Table:
    key: str  # stable id for anchors and tests
    title: str
    intro: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    notes: tuple[str, ...] = ()

    @property
    def text_columns(self) -> frozenset[int]:
        """Columns aligned left; the rest are figures, aligned right."""
        return frozenset(i for i, h in enumerate(self.header) if h in TEXT_HEADERS)


def _f(x: float | None, scale: float = 1.0, digits: int = 1) -> str:
    return "n/a" if x is None else f"{x * scale:,.{digits}f}"


def _with(text: str, label: str) -> str:
    """A figure followed by how it was obtained."""
    return text if text == "n/a" else f"{text} ({label})"


def _joules(x: float | None, label: str) -> str:
    if label == "not measured":
        return "not measured"
    return "n/a" if x is None else f"{x:.3g} J ({label})"


def context_line(data: ReportData) -> str:
    ctx = data.ctx
    return (f"Pricing assumptions: region {ctx.grid.name} [{ctx.grid.id}], usage "
            f"{ctx.usage_tok_per_day:,.0f} tok/day, mix {ctx.mix.name} (input {ctx.mix.input_share:.0%}, "
            f"output {ctx.mix.output_share:.0%}). Defaults are us-average, 1,000,000 tok/day and 3:1; "
            "change them with --region, --usage and --mix.")


def performance_table(data: ReportData) -> Table:
    quality = QualityCells(data.quality)
    rows = tuple((
        t.device, t.config, t.test, str(t.reps),
        _f(t.prefill_tok_s), _f(t.decode_tok_s), _f(t.ttft_s, 1e3), _f(t.itl_p90_s, 1e3, 2),
        _f(t.peak_rss_bytes, 2**-20, 0), _joules(t.prefill_j_per_tok, t.energy),
        _joules(t.decode_j_per_tok, t.energy), *quality(t.model_id, t.variant),
    ) for t in data.tests)
    return Table(
        "performance", "Measured performance",
        "Medians over repetitions per device, model, variant, backend, execution provider, threads "
        "and test. Throughput, latency and memory are measured; every energy figure names its "
        "method (an 'estimate:' method is not a measurement). Quality of the same model and "
        "variant is shown beside them.",
        ("device", "configuration", "test", "reps", "prefill tok/s",
         "decode tok/s", "TTFT ms", "ITL p90 ms", "peak RSS MiB", "J/prefill tok", "J/decode tok",
         *quality.header),
        rows, ("prefill tok/s is n/a for tgN tests: their 1-token prompt measures nothing about prefill.",
               QUALITY_NOTE))


def quality_table(data: ReportData) -> Table:
    """Every quality summary, also of models without speed rows in these inputs."""
    with_speed = {(t.model_id, t.variant) for t in data.tests}
    return Table("quality", "Quality per model and variant", QUALITY_SECTION_INTRO,
                 QUALITY_SECTION_HEADER, quality_section_rows(data.quality, with_speed),
                 () if data.quality else (NO_QUALITY_NOTE,))


def marginal_text(ps: PricedScenario) -> str:
    """The ownership-aware marginal $/Mtok with its basis: rent carries no energy label (it is
    not energy), electricity carries the energy method, a typical rent says it is an estimate."""
    lp = ps.local
    if lp.usd_per_mtok is None:
        return f"n/a ({lp.basis})"
    if ps.rented:
        return f"{format_usd(lp.usd_per_mtok)} (rent" + (
            ", estimate: typical rent)" if lp.ownership.estimate else ")")
    bounds = ("" if lp.low_usd_per_mtok == lp.high_usd_per_mtok else
              f"; bounds {format_usd(lp.low_usd_per_mtok)}-{format_usd(lp.high_usd_per_mtok)}")
    return _with(format_usd(lp.usd_per_mtok), f"electricity, {ps.energy}{bounds}")


def local_cost_table(data: ReportData) -> Table:
    rows = []
    for ps in data.priced:
        dc, e = ps.cost, ps.energy
        dedicated = ("n/a (rented)" if ps.rented else
                     _with(format_usd(dc.dedicated_usd_per_mtok), e))
        rows.append((
            ps.device, ps.config, ps.scenario.label, ps.scenario.reps,
            ps.profile.id if ps.profile else "none matched", ps.local.ownership.label,
            _f(ps.scenario.perf.prefill_tok_s), _f(ps.scenario.perf.decode_tok_s),
            _with(format_number(dc.energy_j_per_mtok), e), marginal_text(ps),
            dedicated, _with(format_number(dc.carbon_g_per_mtok), e),
            format_number(dc.capacity_tok_per_day) + (" (usage exceeds it)" if dc.usage_exceeds_capacity else ""),
        ))
    return Table(
        "local-cost", "Local cost per 1M tokens of the mix",
        "Marginal = what the tokens cost on this machine as it is paid for, as `edgebench compare` "
        "prices it: the rent for the time they take on a rented machine (a cloud VM, a device "
        "profile with a rent), electricity on an owned one. Dedicated (owned devices only) = "
        "purchase price over its useful life at the stated usage + idle power when not computing "
        "+ electricity. Energy, dollars and carbon follow from the rows' J/token and carry their "
        "method; prefill and decode tok/s are measured medians (a ppN test paired with a tgM test "
        "when no test holds both).",
        ("device", "configuration", "scenario", "reps", "device profile", "local machine",
         "prefill tok/s", "decode tok/s", "J/Mtok", "marginal $/Mtok", "dedicated $/Mtok",
         "g CO2/Mtok", "capacity tok/day"),
        tuple(rows), data.not_priced)


def offers_table(data: ReportData) -> Table:
    ctx = data.ctx
    rows = []
    for o in ctx.offers:
        oc = ctx.offer_costs[o.id]
        rows.append((o.id, o.tier, format_usd(oc.blended_usd_per_mtok),
                     _with(format_number(oc.carbon_g_per_mtok), "estimate: reference J/token x PUE")))
    return Table(
        "offers", "Cloud offers compared",
        "List prices blended over the same mix. Cloud carbon is an estimate: a published J per output "
        "token x PUE x the same region's grid intensity (GPU-only references: a lower bound).",
        ("offer", "tier", "$/Mtok (mix, list price)", "g CO2/Mtok"), tuple(rows))


def break_even_table(data: ReportData) -> Table:
    ctx = data.ctx
    offers = {o.id: o for o in ctx.offers}
    rows = []
    for ps in data.priced:
        e, dc = ps.energy, ps.cost
        for offer_id, be in ps.break_evens:
            price = ctx.offer_costs[offer_id].blended_usd_per_mtok
            if ps.rented:
                be_txt = "n/a (rented)"
            elif be.tok_per_day is not None and not be.exceeds_capacity:
                be_txt = _with(f"{be.tok_per_day:,.0f}", e)
            elif be.reason:
                be_txt = be.reason
            else:
                be_txt = "n/a"
            if has_dedicated_line(ps) and dc.dedicated_usd_per_mtok is not None:
                local, kind, local_txt = (dc.dedicated_usd_per_mtok, "dedicated",
                                          _with(format_usd(dc.dedicated_usd_per_mtok), e))
            else:
                local, kind, local_txt = (ps.local.usd_per_mtok, f"marginal, {ps.local.basis}",
                                          marginal_text(ps))
            if local is None:
                verdict = f"n/a (no local {ps.local.basis} cost)"
            else:
                estimate = ps.local_is_estimate if kind != "dedicated" else is_estimate(e)
                verdict = f"local {'cheaper' if local < price else 'dearer'} ({kind})" + (
                    " (estimate)" if estimate else "")
            rows.append((ps.label, offer_id, offers[offer_id].tier, format_usd(price),
                         local_txt if local is not None else "n/a", be_txt, verdict))
    return Table(
        "break-even", "Break-even against each offer",
        f"Daily tokens at which a device bought for the job (dedicated) costs what the offer costs "
        f"(none for a rented machine: it is not bought); the verdict at "
        f"{ctx.usage_tok_per_day:,.0f} tok/day uses dedicated cost when an owned device has a "
        "price, else the marginal cost (rent on a rented machine, electricity on an owned one).",
        ("local scenario", "offer", "tier", "offer $/Mtok", "local $/Mtok", "break-even tok/day",
         f"at {ctx.usage_tok_per_day:,.0f} tok/day"), tuple(rows))


def peers_table(data: ReportData) -> Table | None:
    """Runtimes side by side (report/peers.py); None when nothing ran on two runtimes."""
    rows, notes = peer_rows(data.tests)
    return Table("peers", PEERS_TITLE, PEERS_INTRO, PEERS_HEADER, rows, notes) if rows else None


def all_tables(data: ReportData) -> list[Table]:
    peers = peers_table(data)
    return [performance_table(data), *([peers] if peers else []), quality_table(data),
            local_cost_table(data), offers_table(data), break_even_table(data)]
