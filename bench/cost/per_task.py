"""The price of a solved task: what the tokens of HumanEval cost, divided by what got solved.

Local: the prompt and generated tokens the quality rows recorded, priced at the configuration's
marginal cost (rent for the busy time, or electricity), divided by the problems passed. Offers:
the same token counts at the offer's prices, divided by the offer model's published pass rate.
An offer of the same model shares the tokenizer, so the counts are its own; any other offer
borrows the local prompt and output lengths, and says so. Also $ per million output bytes, which
compares across tokenizers. A variant that solves nothing has no per-task cost: "solves 0 of N".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.cost.model import J_PER_KWH, TOK_PER_MTOK
from bench.cost.ownership import S_PER_HOUR


@dataclass(frozen=True)
class TaskTokens:
    """What one variant's HumanEval run used, summed over its problems."""

    n_problems: int
    n_passed: int
    prompt_tokens: int
    generated_tokens: int
    output_bytes: int
    partial: bool


@dataclass(frozen=True)
class TaskCost:
    who: str
    usd_all_tasks: float | None  # the tokens of every problem attempted
    solved: float  # problems solved (an offer's: published pass rate x problems)
    note: str

    @property
    def usd_per_solved_task(self) -> float | None:
        if self.usd_all_tasks is None or self.solved <= 0:
            return None
        return self.usd_all_tasks / self.solved

    def usd_per_m_output_bytes(self, output_bytes: int) -> float | None:
        if self.usd_all_tasks is None or output_bytes <= 0:
            return None
        return self.usd_all_tasks / output_bytes * 1e6


def local_task_cost(who: str, tokens: TaskTokens, perf: Any, *,
                    rent_usd_per_hour: float | None, usd_per_kwh: float | None) -> TaskCost:
    """`perf` is the configuration's ConfigPerf; rented when a rent is given, else owned."""
    busy_s = (tokens.prompt_tokens / perf.prefill_tok_s
              + tokens.generated_tokens / perf.decode_tok_s)
    if rent_usd_per_hour is not None:
        usd: float | None = rent_usd_per_hour / S_PER_HOUR * busy_s
        basis = f"rent for {busy_s:.0f} s of device time"
    elif (usd_per_kwh is not None and perf.prefill_j_per_tok is not None
          and perf.decode_j_per_tok is not None):
        joules = (tokens.prompt_tokens * perf.prefill_j_per_tok
                  + tokens.generated_tokens * perf.decode_j_per_tok)
        usd = joules / J_PER_KWH * usd_per_kwh
        basis = f"electricity for {joules:.0f} J"
    else:
        usd, basis = None, "no rent, or no energy measurement or tariff: cost unknown"
    note = (f"solves {tokens.n_passed} of {tokens.n_problems}" +
            (" (partial run)" if tokens.partial else "") + f"; {basis}")
    return TaskCost(who, usd, float(tokens.n_passed), note)


def offer_task_cost(offer: Any, tokens: TaskTokens, pass_rate: float | None,
                    same_model: bool) -> TaskCost:
    """An offer priced on the local run's token counts at its published pass rate."""
    usd = (tokens.prompt_tokens * offer.input_usd_per_mtok
           + tokens.generated_tokens * offer.output_usd_per_mtok) / TOK_PER_MTOK
    counts = ("same model: its own tokenizer's counts, the local output length" if same_model
              else "borrows the local prompt and output lengths (another tokenizer)")
    if pass_rate is None:
        return TaskCost(offer.id, usd, 0.0, f"no published HumanEval; {counts}")
    return TaskCost(offer.id, usd, pass_rate * tokens.n_problems,
                    f"published pass@1 {100 * pass_rate:.1f}%; {counts}")


def solved_text(cost: TaskCost, tokens: TaskTokens) -> str:
    """`$X per 1000 solved`, or why there is no such figure."""
    per = cost.usd_per_solved_task
    if per is not None:
        return f"${per * 1000:.4g} per 1000 solved"
    if cost.usd_all_tasks is None:
        return "cost unknown"
    if cost.solved <= 0 and cost.who.startswith("local"):
        return f"solves 0 of {tokens.n_problems}: no per-task cost"
    return "no published pass rate: no per-task cost"
