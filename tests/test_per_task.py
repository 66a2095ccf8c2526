"""The price of a solved task: HumanEval's tokens at the local marginal cost (rent or electricity)
or at an offer's prices, divided by what got solved; never infinity when nothing did."""

from __future__ import annotations

import math

import pytest

from bench.cost import model as cost
from bench.cost.per_task import (TaskCost, TaskTokens, local_task_cost, offer_task_cost,
                                 solved_text)
from tests.cost_rows import offer

# 10 problems, 4 solved: 1,300 prompt + 900 generated tokens, 3,100 output bytes
TOKENS = TaskTokens(n_problems=10, n_passed=4, prompt_tokens=1300, generated_tokens=900,
                    output_bytes=3100, partial=False)
# busy time: 1,300 / 600 + 900 / 40 = 2.1667 + 22.5 = 24.6667 s
# energy:    1,300 x 0.1 + 900 x 1.0 = 1,030 J
PERF = cost.ConfigPerf(600.0, 40.0, 0.1, 1.0)
BUSY_S = 1300 / 600 + 900 / 40


def test_local_rent_is_the_rent_for_the_busy_seconds():
    c = local_task_cost("local int4", TOKENS, PERF, rent_usd_per_hour=0.36, usd_per_kwh=0.2)
    # $0.36/h = $0.0001/s x 24.6667 s = $0.00246667 for all 10 problems
    assert c.usd_all_tasks == pytest.approx(0.0001 * BUSY_S)
    assert c.usd_all_tasks == pytest.approx(0.00246667, rel=1e-5)
    assert c.solved == 4
    assert c.usd_per_solved_task == pytest.approx(0.00246667 / 4, rel=1e-5)
    # per 1000 solved: 0.00061667 x 1000 = $0.6167
    assert solved_text(c, TOKENS) == "$0.6167 per 1000 solved"
    # per M output bytes: 0.00246667 / 3,100 x 1e6 = $0.7957
    assert c.usd_per_m_output_bytes(TOKENS.output_bytes) == pytest.approx(0.795699, rel=1e-5)
    assert "solves 4 of 10" in c.note and "rent for 25 s of device time" in c.note


def test_local_electricity_when_owned():
    c = local_task_cost("local int4", TOKENS, PERF, rent_usd_per_hour=None, usd_per_kwh=0.2)
    # 1,030 J / 3.6e6 J/kWh x $0.2 = $5.7222e-5; / 4 solved x 1000 = $0.01431
    assert c.usd_all_tasks == pytest.approx(1030 / 3.6e6 * 0.2)
    assert solved_text(c, TOKENS) == "$0.01431 per 1000 solved"
    assert "electricity for 1030 J" in c.note


def test_local_without_energy_or_tariff_is_unknown_not_zero():
    no_energy = cost.ConfigPerf(600.0, 40.0)
    c = local_task_cost("local int4", TOKENS, no_energy, rent_usd_per_hour=None, usd_per_kwh=0.2)
    assert c.usd_all_tasks is None and c.usd_per_solved_task is None
    assert solved_text(c, TOKENS) == "cost unknown"
    assert c.usd_per_m_output_bytes(TOKENS.output_bytes) is None
    no_tariff = local_task_cost("local", TOKENS, PERF, rent_usd_per_hour=None, usd_per_kwh=None)
    assert no_tariff.usd_all_tasks is None


def test_a_variant_solving_nothing_has_no_per_task_cost_and_never_inf_or_nan():
    zero = TaskTokens(10, 0, 1300, 900, 3100, partial=True)
    for rent in (0.36, None):
        c = local_task_cost("local int4", zero, PERF, rent_usd_per_hour=rent, usd_per_kwh=0.2)
        assert c.usd_all_tasks is not None and c.usd_all_tasks > 0  # the tokens still cost
        assert c.usd_per_solved_task is None
        text = solved_text(c, zero)
        assert text == "solves 0 of 10: no per-task cost"
        assert "solves 0 of 10 (partial run)" in c.note
        for word in ("inf", "nan"):
            assert word not in (text + c.note).lower()
        assert math.isfinite(c.usd_per_m_output_bytes(zero.output_bytes))


def test_an_offer_is_priced_on_the_same_tokens_at_its_published_pass_rate():
    o = offer("a/same", "org/m", 0.04, 0.08)
    c = offer_task_cost(o, TOKENS, 0.5, same_model=True)
    # (1,300 x 0.04 + 900 x 0.08) / 1e6 = (52 + 72) / 1e6 = $0.000124; 0.5 x 10 = 5 solved
    assert c.usd_all_tasks == pytest.approx(1.24e-4)
    assert c.solved == pytest.approx(5.0)
    assert c.usd_per_solved_task == pytest.approx(1.24e-4 / 5)
    assert solved_text(c, TOKENS) == "$0.0248 per 1000 solved"
    assert "published pass@1 50.0%" in c.note and "same model" in c.note
    assert "borrows" not in c.note
    other = offer_task_cost(offer("b/other", "org/other", 0.04, 0.08), TOKENS, 0.8,
                            same_model=False)
    assert "borrows the local prompt and output lengths" in other.note
    assert other.solved == pytest.approx(8.0)
    # $ per M output bytes compares across tokenizers: same tokens, same bytes
    assert other.usd_per_m_output_bytes(3100) == pytest.approx(1.24e-4 / 3100 * 1e6)


def test_an_offer_without_a_published_pass_rate_has_no_per_task_cost():
    c = offer_task_cost(offer("a/x", "org/x", 0.04, 0.08), TOKENS, None, same_model=False)
    assert c.usd_all_tasks == pytest.approx(1.24e-4) and c.usd_per_solved_task is None
    assert solved_text(c, TOKENS) == "no published pass rate: no per-task cost"
    assert "no published HumanEval" in c.note


def test_task_cost_guards_its_divisions():
    c = TaskCost("x", 1.0, 0.0, "")
    assert c.usd_per_solved_task is None and c.usd_per_m_output_bytes(0) is None
