"""Everything a configuration is priced with besides its speed: who owns the machine, which
model it is (for matching offers), what its quality is (from quality rows), what self-hosting
the same size on a rented GPU costs, and the price of a solved task."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from bench.cost import model as cost
from bench.cost.format import format_usd, text_table
from bench.cost.matching import MeasuredQuality, OfferGroup, hf_id, match_offers
from bench.cost.ownership import Ownership, for_configuration, local_price
from bench.cost.per_task import TaskTokens, local_task_cost, offer_task_cost, solved_text
from bench.cost.selfhost import SelfHost, self_host


@dataclass(frozen=True)
class ModelContext:
    cfg: Any
    device: Any
    ownership: Ownership
    local_model: str | None  # Hugging Face id of the recipe
    groups: tuple[OfferGroup, ...]
    quality_lines: tuple[str, ...]
    tasks: Any  # bench.quality.summary.TaskScore or None
    self_host: SelfHost | None

    def per_task_lines(self, ctx: Any) -> list[str]:
        return per_task_lines(self, ctx)


def _recipe(model_id: str) -> Any:
    """The installed recipe of that id, or None (measured elsewhere). Looked up among the
    recipes, never turned into a path: the id comes from a CSV."""
    from bench.models.recipes import list_recipes

    return next((r for r in list_recipes() if r.id == model_id), None)


def model_context(cfg: Any, device: Any, ctx: Any, quality_rows: Sequence[Any]) -> ModelContext:
    from bench.quality.summary import summarize

    recipe = _recipe(cfg.model_id)
    local = hf_id(recipe.homepage) if recipe is not None else None
    summary = next((s for s in summarize(quality_rows)
                    if (s.model_id, s.variant) == (cfg.model_id, cfg.variant)), None)
    tasks = summary.tasks[0] if summary is not None and summary.tasks else None
    measured = (MeasuredQuality("humaneval", tasks.pass_at_1, tasks.n_problems, tasks.partial)
                if tasks is not None else None)
    groups = match_offers(local, measured, ctx.offers, ctx.profiles.models,
                          lambda o: ctx.offer_costs[o.id].blended_usd_per_mtok)
    lines = []
    if summary is not None:
        for c in summary.corpora:
            if c.bits_per_byte is not None:
                lines.append(f"quality: {c.bits_per_byte:.4f} bits/byte on {c.dataset}"
                             + (" (partial)" if c.partial else ""))
        if tasks is not None:
            lines.append(f"quality: HumanEval pass@1 {100 * tasks.pass_at_1:.1f}% "
                         f"({tasks.n_passed}/{tasks.n_problems}, {tasks.prompt_format}"
                         + (", partial" if tasks.partial else "") + ")")
    elif quality_rows:
        lines.append("quality: not measured for this variant")
    if recipe is not None and recipe.weights == "synthetic":
        lines.append("synthetic weights: speed, energy and cost are valid; quality is only the "
                     "publisher's figure for the same model")
    ownership = for_configuration(cfg, device, ctx.options, ctx.vm_rents)
    host = self_host(getattr(recipe, "parameters", None), tuple(ctx.profiles.gpu_rentals.values()),
                     ctx.gpu_throughputs)
    return ModelContext(cfg, device, ownership, local, tuple(groups), tuple(lines), tasks, host)


def per_task_lines(mc: ModelContext, ctx: Any) -> list[str]:
    """$ per solved task and per million output bytes, local beside the matched offers."""
    t = mc.tasks
    sc = next((s for s in mc.cfg.scenarios if s.label == "chat"), None) or next(
        iter(mc.cfg.scenarios), None)
    if t is None or sc is None:
        return []
    tokens = TaskTokens(t.n_problems, t.n_passed, t.prompt_tokens, t.generated_tokens,
                        t.output_bytes, t.partial)
    dc = cost.device_cost(sc.perf, mc.device, ctx.grid, ctx.mix, ctx.usage_tok_per_day)
    lp = local_price(mc.ownership, dc)
    rented = lp.basis == "rent"  # a rent not found leaves the cost unknown, never electricity
    local = local_task_cost(f"local {mc.cfg.variant} ({lp.basis}, {sc.label} speed)", tokens,
                            sc.perf, rent_usd_per_hour=mc.ownership.rent_usd_per_hour
                            if rented else None,
                            usd_per_kwh=None if rented else ctx.grid.electricity_usd_per_kwh)
    costs = [local]
    seen = set()
    for group in mc.groups:
        for o in group.offers:
            if o.id in seen:
                continue
            seen.add(o.id)
            model = ctx.profiles.models.get(o.model_id) if o.model_id else None
            score = model.score("humaneval") if model is not None else None
            costs.append(offer_task_cost(o, tokens, float(score.score) if score else None,
                                         same_model=o.model_id == mc.local_model))
    rows = [[c.who, format_usd(c.usd_all_tasks), solved_text(c, tokens),
             format_usd(c.usd_per_m_output_bytes(tokens.output_bytes)), c.note] for c in costs]
    head = (f"  price of a solved task: HumanEval, {t.n_problems} problems ({t.prompt_format}"
            + (", partial" if t.partial else "") + f"), {t.prompt_tokens:,} prompt + "
            f"{t.generated_tokens:,} generated tokens, {t.output_bytes:,} output bytes")
    return [head] + ["    " + line for line in text_table(
        ["who", "$ all problems", "$ per 1000 solved", "$ per M output bytes", "basis"], rows)]
