"""Cost against quality: the points of the report's cost-quality charts and their Pareto front.
Pure functions over ReportData; the verdict sentences are in report/cost_quality_verdict.py,
the plotly figure in report/cost_quality_chart.py.

Two views (docs/reports.md, "Cost against quality"):

- per model with HumanEval rows: x = $ per 1000 solved HumanEval problems, y = pass@1. Local
  configurations use their own token counts and their ownership's price (rent or electricity,
  bench/cost/per_task.py, as `edgebench compare` prices a solved task); offers use the model's
  HumanEval token counts pooled over its measured variants and their published pass@1.
- always: x = $/Mtok of the mix, y = HumanEval pass@1 where known (measured for a local
  variant, else the model card's figure, drawn apart; published for an offer).

A point without a price or a quality figure is listed under its chart, never drawn at 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Sequence, TypeVar

from bench.cost import model as cost
from bench.cost.format import format_usd
from bench.cost.matching import hf_id, published
from bench.cost.options import CONTEXT_TIERS, FAIR_TIERS
from bench.cost.per_task import TaskCost, TaskTokens, local_task_cost, offer_task_cost
from bench.errors import EdgebenchError
from bench.quality.summary import TaskScore
from bench.report.data import PricedScenario, ReportData
from bench.report.tables import Table

BENCHMARK = "humaneval"
PER_TASKS = 1000  # "$ per 1000 solved"
LOCAL, OFFER = "local", "offer"
MEASURED = "measured"
PUBLISHED = "published"
MODEL_CARD = "published for the model, this variant not measured"


class _XY(Protocol):
    @property
    def x(self) -> float | None: ...

    @property
    def y(self) -> float | None: ...


P = TypeVar("P", bound=_XY)


def pareto_front(points: Sequence[P]) -> list[P]:
    """The points no other point dominates (x lower is better, y higher is better; dominated =
    another is at most as dear and at least as good, and strictly better in one), cheapest
    first. Exact duplicates dominate neither each other: both stay. Points missing x or y are
    left out: unknown is not worst."""
    known = sorted((p for p in points if p.x is not None and p.y is not None),
                   key=lambda p: (p.x, -p.y))  # type: ignore[operator]
    front: list[P] = []
    best: tuple[float, float] | None = None  # (x, y) of the last point on the front
    for p in known:
        xy = (float(p.x), float(p.y))  # type: ignore[arg-type]
        if best is None or xy[1] > best[1]:
            front.append(p)
            best = xy
        elif xy == best:
            front.append(p)
    return front


@dataclass(frozen=True)
class Point:
    label: str
    kind: str  # LOCAL or OFFER
    x: float | None
    y: float | None  # pass@1 as a fraction
    quality: str  # MEASURED, PUBLISHED or MODEL_CARD
    basis: str  # how x was obtained
    estimate: bool = False  # x rests on estimated energy or a typical rent
    why: str = ""  # why it is not drawn


@dataclass(frozen=True)
class View:
    key: str  # chart id suffix
    title: str
    x_title: str
    x_unit: str
    points: tuple[Point, ...]  # drawn: x > 0 and y known
    front: tuple[Point, ...]
    unknown: tuple[str, ...]  # "label: why", not drawn
    note: str


def compared_offers(data: ReportData) -> list[Any]:
    """The offers the cost-quality view searches: those given with --offers, else every fair
    and frontier offer (the universe `edgebench compare` matches in), not only the report's
    short list, so "the cheapest of at least that quality" is not limited to cheap tiers."""
    ctx = data.ctx
    if ctx.options.offer_ids:
        return list(ctx.offers)
    return sorted((o for o in ctx.profiles.offers.values() if o.tier in FAIR_TIERS + CONTEXT_TIERS),
                  key=lambda o: (cost.blended_usd_per_mtok(o, ctx.mix), o.id))


def offer_pass(data: ReportData, offer: Any) -> float | None:
    return published(data.ctx.profiles.models.get(offer.model_id), BENCHMARK) if offer.model_id else None


class Recipes:
    """Recipes by id, read once: only file names listed in the recipes folder are opened, so
    a model id from an uploaded CSV never becomes a path."""

    def __init__(self) -> None:
        from bench import paths

        root = paths.recipes_dir()
        self._paths = {p.stem: p for p in root.glob("*.toml")} if root.is_dir() else {}
        self._cache: dict[str, Any] = {}

    def get(self, model_id: str) -> Any:
        from bench.models.recipes import load_recipe

        if model_id not in self._cache:
            try:
                path = self._paths.get(model_id)
                self._cache[model_id] = load_recipe(path) if path else None
            except EdgebenchError:
                self._cache[model_id] = None
        return self._cache[model_id]


def chosen_scenarios(data: ReportData) -> list[PricedScenario]:
    """One scenario per configuration: chat (a real request) when there is one, else the first,
    as `edgebench compare` prices a solved task."""
    by_cfg: dict[int, PricedScenario] = {}
    for ps in data.priced:
        old = by_cfg.get(id(ps.cfg))
        if old is None or (ps.scenario.label == "chat" and old.scenario.label != "chat"):
            by_cfg[id(ps.cfg)] = ps
    return list(by_cfg.values())


def tokens_of(tasks: Sequence[TaskScore]) -> TaskTokens:
    """One TaskTokens over several runs: the token-weighted pool of their problems."""
    return TaskTokens(sum(t.n_problems for t in tasks), sum(t.n_passed for t in tasks),
                      sum(t.prompt_tokens for t in tasks), sum(t.generated_tokens for t in tasks),
                      sum(t.output_bytes for t in tasks), any(t.partial for t in tasks))


def local_task(ps: PricedScenario, task: TaskScore, data: ReportData) -> TaskCost:
    """The configuration's HumanEval tokens at its marginal price (rent or electricity)."""
    tokens = tokens_of([task])
    own = ps.local.ownership
    if ps.rented and own.rent_usd_per_hour is None:
        return TaskCost(ps.label, None, float(task.n_passed),
                        f"solves {task.n_passed} of {task.n_problems}; rent unknown ({own.label})")
    return local_task_cost(ps.label, tokens, ps.scenario.perf,
                           rent_usd_per_hour=own.rent_usd_per_hour if ps.rented else None,
                           usd_per_kwh=data.ctx.grid.electricity_usd_per_kwh)


def per_1000(c: TaskCost) -> float | None:
    per = c.usd_per_solved_task
    return None if per is None else per * PER_TASKS


def unknown_reason(c: TaskCost) -> str:
    """Why a local TaskCost has no dollars, from its note ("solves 2 of 3; <why>")."""
    return c.note.split("; ", 1)[-1].removesuffix(": cost unknown")


def price_basis(ps: PricedScenario) -> str:
    if ps.rented:
        return f"{ps.local.ownership.label}, {ps.scenario.label} speed"
    return f"electricity ({ps.energy}), {ps.scenario.label} speed"


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _view(key: str, title: str, x_title: str, x_unit: str, points: list[Point],
          unknown: list[str], note: str) -> View:
    drawn = [p for p in points if p.x is not None and p.x > 0 and p.y is not None]
    ids = {id(p) for p in drawn}
    unknown = [f"{p.label}: {p.why}" for p in points if id(p) not in ids] + unknown
    return View(key, title, x_title, x_unit, tuple(drawn), tuple(pareto_front(drawn)),
                tuple(unknown), note)


def tasks_by_variant(data: ReportData) -> dict[tuple[str, str], TaskScore]:
    return {(s.model_id, s.variant): s.tasks[0] for s in data.quality if s.tasks}


def solved_views(data: ReportData, chosen: Sequence[PricedScenario],
                 offers: Sequence[Any]) -> list[View]:
    """One view per model (and HumanEval prompt format) with HumanEval rows."""
    tasks = tasks_by_variant(data)
    groups: dict[tuple[str, str], list[PricedScenario]] = {}
    for ps in chosen:
        t = tasks.get((ps.cfg.model_id, ps.cfg.variant))
        if t is not None:
            groups.setdefault((ps.cfg.model_id, t.prompt_format), []).append(ps)
    recipes = Recipes()
    views = []
    for i, ((model_id, fmt), members) in enumerate(groups.items()):
        points = []
        for ps in members:
            t = tasks[(model_id, ps.cfg.variant)]
            c = local_task(ps, t, data)
            why = (f"solves 0 of {t.n_problems}: no price per solved task" if t.n_passed == 0
                   else "cost unknown: " + unknown_reason(c))
            points.append(Point(f"{ps.device} · {ps.config}", LOCAL, per_1000(c), t.pass_at_1,
                                MEASURED, price_basis(ps), ps.local_is_estimate, why))
        variants = list(dict.fromkeys(ps.cfg.variant for ps in members))
        pooled = tokens_of([tasks[(model_id, v)] for v in variants])
        recipe = recipes.get(model_id)
        local_hf = hf_id(recipe.homepage) if recipe is not None else None
        for o in offers:
            score = offer_pass(data, o)
            if score is None:
                continue
            c = offer_task_cost(o, pooled, score, same_model=o.model_id == local_hf)
            points.append(Point(o.id, OFFER, per_1000(c), score, PUBLISHED,
                                "list price on this model's HumanEval token counts",
                                why="published pass@1 0: no price per solved task"))
        note = (f"HumanEval ({fmt}, {pooled.n_problems} problems over {len(variants)} measured "
                f"variant{'s' if len(variants) != 1 else ''}: {pooled.prompt_tokens:,} prompt + "
                f"{pooled.generated_tokens:,} generated tokens). Local points: each "
                "configuration's own tokens at its marginal price (rent for the busy time on a "
                "rented machine, electricity on an owned one). Offers: these tokens pooled, at "
                "list prices, over their model's published pass@1 (another tokenizer's counts "
                "may differ); offers publishing no HumanEval are listed under the $/Mtok chart."
                + (" Partial run (--limit): not comparable with a full one." if pooled.partial
                   else ""))
        views.append(_view(f"solved-{i}", f"{model_id}: $ per 1000 solved HumanEval problems "
                           "against pass@1", f"USD per {PER_TASKS} solved problems (log)",
                           f"$ per {PER_TASKS} solved", points, [], note))
    return views


def mtok_view(data: ReportData, chosen: Sequence[PricedScenario], offers: Sequence[Any]) -> View:
    tasks = tasks_by_variant(data)
    recipes = Recipes()
    points = []
    for ps in chosen:
        t = tasks.get((ps.cfg.model_id, ps.cfg.variant))
        y, quality = (t.pass_at_1 if t is not None else None), MEASURED
        if t is None:
            recipe = recipes.get(ps.cfg.model_id)
            card = next((p.score for p in getattr(recipe, "published", ())
                         if p.benchmark == BENCHMARK), None)
            if card is not None:
                y, quality = float(card), MODEL_CARD
        lp = ps.local
        gap = lp.ownership.label if ps.rented else next(
            (m for m in ps.cost.missing if "energy per token" in m or "tariff" in m), "no energy cost")
        why = ("quality unknown: no HumanEval measured or published" if y is None else
               f"cost unknown: {gap}" if lp.usd_per_mtok is None else
               "a price of $0 has no place on a log axis")
        points.append(Point(f"{ps.device} · {ps.config}", LOCAL, lp.usd_per_mtok, y, quality,
                            price_basis(ps), ps.local_is_estimate, why))
    unknown = []
    for o in offers:
        score = offer_pass(data, o)
        if score is not None:
            points.append(Point(o.id, OFFER, data.ctx.offer_costs[o.id].blended_usd_per_mtok
                                if o.id in data.ctx.offer_costs else
                                cost.blended_usd_per_mtok(o, data.ctx.mix), score, PUBLISHED,
                                "list price"))
    silent = [o.id for o in offers if offer_pass(data, o) is None]
    if silent:
        unknown.append(f"{len(silent)} offers publish no HumanEval pass@1 (quality unknown): "
                       + ", ".join(silent))
    note = (f"$ per 1M tokens of the mix {data.ctx.mix.id}: local at the marginal price (rent "
            "or electricity, the chat scenario where measured), offers at list price. Tokens of "
            "different tokenizers are not the same amount of text. pass@1: measured for a local "
            "variant, else the model card's figure (open marker, not this variant's); published "
            "for an offer.")
    return _view("mtok", f"$ per 1M tokens against HumanEval pass@1 (mix {data.ctx.mix.id})",
                 "USD per 1M tokens of the mix (log)", "$/Mtok", points, unknown, note)


def _x_text(view: View, x: float) -> str:
    return f"${x:.4g}" if view.x_unit.startswith("$ per") else format_usd(x)


def point_table(view: View) -> Table:
    """The chart's drawn points as a table (the Markdown report shows it instead of the chart)."""
    on_front = {id(p) for p in view.front}
    rows = tuple((p.label, p.kind, _x_text(view, p.x) + (" (estimate)" if p.estimate else ""),
                  pct(p.y), p.quality, p.basis, "yes" if id(p) in on_front else "no")
                 for p in sorted(view.points, key=lambda p: (p.x, -p.y, p.label))  # type: ignore
                 if p.x is not None and p.y is not None)
    return Table(f"cq-{view.key}", view.title, view.note,
                 ("point", "kind", view.x_unit, "HumanEval pass@1", "quality", "cost basis",
                  "Pareto front"), rows, view.unknown)
