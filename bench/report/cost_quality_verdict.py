"""The verdict sentence per device and variant with HumanEval rows (docs/reports.md): "on this
device, int4 M solves X% of tasks at $Y per 1000 solved; the cheapest cloud offer of at least
that quality costs $Z", both priced per 1000 solved problems on that variant's own token counts,
as `edgebench compare` prices a solved task. Also the whole cost-quality section's data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from bench.cost.matching import hf_id
from bench.cost.per_task import offer_task_cost
from bench.report.cost_quality import (Recipes, View, chosen_scenarios, compared_offers,
                                       local_task, mtok_view, offer_pass, pct, per_1000,
                                       price_basis, solved_views, tasks_by_variant, tokens_of,
                                       unknown_reason)
from bench.report.data import PricedScenario, ReportData

INTRO = ("What a solved task and a million tokens cost against the quality bought. Each local "
         "configuration is priced as its machine is paid for (rent for the busy time on a rented "
         "machine, electricity on an owned one), each offer at list price; the Pareto front joins "
         "the points nothing cheaper matches in quality. The sentences compare each measured "
         "variant with the cheapest offer whose published HumanEval pass@1 is at least its "
         "measured one, both priced per 1000 solved problems on that variant's token counts.")
NO_HUMANEVAL = ("No HumanEval rows in these inputs, so no price per solved task: run `edgebench "
                "quality --measures humaneval` and pass its CSV to `edgebench report`.")


@dataclass(frozen=True)
class Verdict:
    device: str
    model_id: str
    variant: str
    text: str
    local_usd_per_1000: float | None
    offer_id: str | None
    offer_usd_per_1000: float | None


@dataclass(frozen=True)
class CostQuality:
    views: tuple[View, ...]
    verdicts: tuple[Verdict, ...]


def _subjects(chosen: Sequence[PricedScenario]) -> dict[int, str]:
    """The subject per configuration ("int4 model"), naming backend, EP and threads only where
    one device runs the same variant several ways."""
    count: dict[tuple[str, str, str], int] = {}
    for ps in chosen:
        k = (ps.device, ps.cfg.model_id, ps.cfg.variant)
        count[k] = count.get(k, 0) + 1
    out = {}
    for ps in chosen:
        c = ps.cfg
        via = (f" via {c.backend} {c.ep} {c.threads}t"
               if count[(ps.device, c.model_id, c.variant)] > 1 else "")
        out[id(ps)] = f"{c.variant} {c.model_id}{via}"
    return out


def verdicts(data: ReportData, chosen: Sequence[PricedScenario],
             offers: Sequence[Any]) -> list[Verdict]:
    """The sentence per configuration with HumanEval rows (docs/reports.md)."""
    tasks = tasks_by_variant(data)
    subjects = _subjects(chosen)
    recipes = Recipes()
    out = []
    for ps in chosen:
        t = tasks.get((ps.cfg.model_id, ps.cfg.variant))
        if t is None:
            continue
        tokens = tokens_of([t])
        local = local_task(ps, t, data)
        y = per_1000(local)
        recipe = recipes.get(ps.cfg.model_id)
        local_hf = hf_id(recipe.homepage) if recipe is not None else None
        best: tuple[float, str, float] | None = None
        for o in offers:
            score = offer_pass(data, o)
            if score is None or score < t.pass_at_1:
                continue
            z = per_1000(offer_task_cost(o, tokens, score, same_model=o.model_id == local_hf))
            if z is not None and (best is None or (z, o.id) < best[:2]):
                best = (z, o.id, score)
        who = f"On {ps.device}, {subjects[id(ps)]}"
        if t.n_passed == 0:
            head = f"{who} solves 0 of {t.n_problems} tasks, so it has no price per solved task"
        elif y is None:
            head = (f"{who} solves {pct(t.pass_at_1)} of tasks; its price per solved task is "
                    f"unknown ({unknown_reason(local)})")
        else:
            head = f"{who} solves {pct(t.pass_at_1)} of tasks at ${y:.4g} per 1000 solved"
        if best is None:
            tail = (f"; no compared cloud offer publishes a HumanEval pass@1 of at least "
                    f"{pct(t.pass_at_1)}.")
        else:
            tail = (f"; the cheapest cloud offer of at least that quality costs ${best[0]:.4g} "
                    f"per 1000 solved ({best[1]}, published pass@1 {pct(best[2])}).")
        basis = (f" Local price: {price_basis(ps)}"
                 + (" (ESTIMATE)" if ps.local_is_estimate else "")
                 + f"; HumanEval {t.n_problems} problems, {t.prompt_format}"
                 + (", partial run" if t.partial else "") + ".")
        out.append(Verdict(ps.device, ps.cfg.model_id, ps.cfg.variant, head + tail + basis, y,
                           best[1] if best else None, best[0] if best else None))
    return out


def cost_quality(data: ReportData) -> CostQuality:
    chosen = chosen_scenarios(data)
    offers = compared_offers(data)
    return CostQuality(tuple(solved_views(data, chosen, offers) + [mtok_view(data, chosen, offers)]),
                       tuple(verdicts(data, chosen, offers)))
