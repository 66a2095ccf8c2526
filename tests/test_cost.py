"""Cost formulas against hand-computed examples (the arithmetic is written next to each assert)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.cost import model as cost
from bench.errors import EdgebenchError
from bench.cost.profiles import CloudOffer, DeviceProfile, GridRegion, Mix

MIX_3_1 = Mix(id="3:1", name="3:1", input_share=0.75, output_share=0.25)
PERF = cost.ConfigPerf(prefill_tok_s=500.0, decode_tok_s=50.0, prefill_j_per_tok=0.02, decode_j_per_tok=0.4)
GRID = GridRegion(id="test", name="test", path=Path("x"), electricity_usd_per_kwh=0.20, carbon_g_per_kwh=400.0)
DEVICE = DeviceProfile(id="dev", name="dev", kind="desktop", path=Path("x"), price_usd=600.0,
                       useful_life_years=4.0, idle_power_w=5.0, power_scope="wall_ac")
# fixed $/day = 600 / (4 * 365.25) + 5 W * 86400 s / 3.6e6 J/kWh * 0.20 $/kWh
#             = 0.4106776 + 0.024 = 0.4346776
FIXED_USD_PER_DAY = 600 / (4 * 365.25) + 5 * 86400 / 3.6e6 * 0.20
# idle credit = 5 W * 6500 s / 3.6e6 * 0.20 = 0.0018056 $/Mtok
IDLE_CREDIT = 5 * 6500 / 3.6e6 * 0.20
MARGINAL = 115_000 / 3.6e6 * 0.20  # 0.0063889 $/Mtok


def offer(i: float, o: float, c: float | None = None) -> CloudOffer:
    return CloudOffer(id="o", provider="p", model="m", tier="small", model_class="closed-small",
                      path=Path("x"), input_usd_per_mtok=i, output_usd_per_mtok=o, cached_input_usd_per_mtok=c)


def test_device_time_energy_carbon_capacity():
    # 750,000 in / 500 tok/s = 1,500 s; 250,000 out / 50 tok/s = 5,000 s  -> 6,500 s
    assert cost.device_s_per_mtok(PERF, MIX_3_1) == pytest.approx(6500.0)
    # 750,000 * 0.02 J + 250,000 * 0.4 J = 15,000 + 100,000 = 115,000 J
    assert cost.energy_j_per_mtok(PERF, MIX_3_1) == pytest.approx(115_000.0)
    # 115,000 J = 0.0319444 kWh; * $0.20 = $0.0063889; * 400 g = 12.7778 g
    assert cost.energy_usd(115_000, 0.20) == pytest.approx(0.0063889, rel=1e-4)
    assert cost.carbon_g(115_000, 400) == pytest.approx(12.7778, rel=1e-4)
    # 86,400 s / 6,500 s per Mtok = 13.2923 Mtok/day
    assert cost.capacity_tok_per_day(6500) == pytest.approx(13_292_307.7, rel=1e-6)


def test_device_cost_marginal_and_dedicated():
    dc = cost.device_cost(PERF, DEVICE, GRID, MIX_3_1, usage_tok_per_day=1_000_000)
    assert dc.marginal_usd_per_mtok == pytest.approx(MARGINAL)
    # dedicated at 1 Mtok/day = 0.4346776 / 1 - 0.0018056 + 0.0063889 = 0.4392609
    assert dc.dedicated_usd_per_mtok == pytest.approx(0.4392609, rel=1e-6)
    assert dc.carbon_g_per_mtok == pytest.approx(12.7778, rel=1e-4)
    assert not dc.usage_exceeds_capacity and dc.missing == ()


def test_dedicated_at_full_capacity_is_hardware_plus_energy_only():
    cap = cost.capacity_tok_per_day(6500)
    dc = cost.device_cost(PERF, DEVICE, GRID, MIX_3_1, usage_tok_per_day=cap)
    # no idle hours left: 600 $ over 4 years of 13.2923 Mtok/day = 0.4106776 / 13.2923 = 0.0308962 $/Mtok
    assert dc.dedicated_usd_per_mtok == pytest.approx(0.4106776 / 13.2923077 + MARGINAL, rel=1e-6)
    over = cost.device_cost(PERF, DEVICE, GRID, MIX_3_1, usage_tok_per_day=2 * cap)
    assert over.usage_exceeds_capacity
    assert over.dedicated_usd_per_mtok == pytest.approx(dc.dedicated_usd_per_mtok)


def test_missing_figures_are_reasons_not_guesses():
    no_price = DeviceProfile(id="np", name="np", kind="laptop", path=Path("x"))
    dc = cost.device_cost(PERF, no_price, GRID, MIX_3_1, 1e6)
    assert dc.dedicated_usd_per_mtok is None and "no price_usd" in dc.missing[0]
    no_energy = cost.ConfigPerf(500.0, 50.0)
    dc = cost.device_cost(no_energy, DEVICE, GRID, MIX_3_1, 1e6)
    assert dc.marginal_usd_per_mtok is None and dc.carbon_g_per_mtok is None
    carbon_only = GridRegion(id="fr", name="fr", path=Path("x"), carbon_g_per_kwh=56.0)
    dc = cost.device_cost(PERF, DEVICE, carbon_only, MIX_3_1, 1e6)
    assert dc.marginal_usd_per_mtok is None and dc.carbon_g_per_mtok == pytest.approx(115_000 / 3.6e6 * 56)


def test_blended_price_and_cached_input():
    # gpt-4o-mini 0.15 in / 0.60 out at 3:1: (3 * 0.15 + 0.60) / 4 = 0.2625 (Artificial Analysis blend)
    assert cost.blended_usd_per_mtok(offer(0.15, 0.60), MIX_3_1) == pytest.approx(0.2625)
    cached_mix = Mix(id="c", name="c", input_share=0.5, cached_input_share=0.25, output_share=0.25)
    # 0.5 * 0.15 + 0.25 * 0.075 + 0.25 * 0.60 = 0.075 + 0.01875 + 0.15 = 0.24375
    assert cost.blended_usd_per_mtok(offer(0.15, 0.60, 0.075), cached_mix) == pytest.approx(0.24375)
    # no cached price published: cached tokens pay the input price: 0.075 + 0.0375 + 0.15 = 0.2625
    assert cost.blended_usd_per_mtok(offer(0.15, 0.60), cached_mix) == pytest.approx(0.2625)


def test_cloud_carbon_reference_times_pue_times_grid():
    # prompt ratio 0: 0.12 J/output tok * 250,000 output tok * 1.54 PUE = 46,200 J
    #                 = 0.0128333 kWh * 367 g = 4.7098 g
    assert cost.cloud_carbon_g_per_mtok(0.12, 0.0, 1.54, 367, MIX_3_1) == pytest.approx(4.70983, rel=1e-5)
    # prompt ratio 1: 0.12 * (250,000 + 1 * 750,000) * 1.54 = 184,800 J = 0.0513333 kWh * 367 = 18.8393 g
    assert cost.cloud_carbon_g_per_mtok(0.12, 1.0, 1.54, 367, MIX_3_1) == pytest.approx(18.8393, rel=1e-5)
    # ratio 0.2: 0.12 * (250,000 + 150,000) * 1.54 = 73,920 J = 0.0205333 kWh * 367 = 7.53573 g
    assert cost.cloud_carbon_g_per_mtok(0.12, 0.2, 1.54, 367, MIX_3_1) == pytest.approx(7.53573, rel=1e-5)


def _be(price: float) -> cost.BreakEven:
    return cost.break_even(offer_usd_per_mtok=price, marginal_usd_per_mtok=MARGINAL, s_per_mtok=6500,
                           price_usd=600, useful_life_years=4, idle_power_w=5, usd_per_kwh=0.20)


def test_break_even_within_capacity():
    # u* = 1e6 * 0.4346776 / (0.10 - 0.0063889 + 0.0018056) = 1e6 * 0.4346776 / 0.0954167 = 4,555,578
    be = _be(0.10)
    assert be.tok_per_day == pytest.approx(1e6 * FIXED_USD_PER_DAY / (0.10 - MARGINAL + IDLE_CREDIT))
    assert be.tok_per_day == pytest.approx(4_555_578, rel=1e-5)
    assert be.reason is None and not be.exceeds_capacity
    # at that usage the dedicated cost equals the offer price
    dc = cost.device_cost(PERF, DEVICE, GRID, MIX_3_1, usage_tok_per_day=be.tok_per_day)
    assert dc.dedicated_usd_per_mtok == pytest.approx(0.10)


def test_break_even_never_when_energy_alone_costs_more():
    # electricity alone is $0.0063889/Mtok > the offer's $0.005/Mtok: no usage can recover the price
    be = _be(0.005)
    assert be.tok_per_day is None and be.reason.startswith("never")


def test_break_even_beyond_capacity_is_flagged():
    # u* = 1e6 * 0.4346776 / (0.03 - 0.0063889 + 0.0018056) = 17,102,076 > capacity 13,292,308
    be = _be(0.03)
    assert be.exceeds_capacity and be.tok_per_day == pytest.approx(17_102_076, rel=1e-5)
    assert "capacity" in be.reason


def test_resolve_mix():
    named = {"chat": Mix(id="chat", name="chat", input_share=0.5, output_share=0.5)}
    assert cost.resolve_mix("chat", named) is named["chat"]
    m = cost.resolve_mix("1:3", named)
    assert (m.input_share, m.output_share) == (0.25, 0.75)
    with pytest.raises(EdgebenchError, match="neither a named mix"):
        cost.resolve_mix("lots", named)
