"""Which offers a local model x variant is compared with, in labelled groups, and which energy
reference an offer's carbon is computed with."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench.cost import model as cost
from bench.cost.matching import (AS_GOOD, FRONTIER, MAX_AS_GOOD, SAME, MeasuredQuality, hf_id,
                                 match_offers)
from bench.cost.options import PricingOptions, offer_energy_reference, pricing_context
from bench.cost.profiles import EnergyReference, GridRegion, Mix, load_profiles
from tests.cost_rows import offer, offer_model

LOCAL = "org/local-1b"
MODELS = {
    LOCAL: offer_model(LOCAL, 1_000_000_000, humaneval=0.30),
    "org/weak-3b": offer_model("org/weak-3b", 3_000_000_000, humaneval=0.25),
    "org/equal-3b": offer_model("org/equal-3b", 3_000_000_000, humaneval=0.40),
    "org/coder-7b": offer_model("org/coder-7b", 7_000_000_000, humaneval=0.80),
    "org/unscored-8b": offer_model("org/unscored-8b", 8_000_000_000),
    "lab/frontier": offer_model("lab/frontier", None, humaneval=0.95),
}
OFFERS = [
    offer("b/local-1b", LOCAL, 0.10, 0.10),  # blended 3:1 = 0.10
    offer("a/local-1b", LOCAL, 0.04, 0.08),  # 0.05
    offer("c/weak-3b", "org/weak-3b", 0.01, 0.01),  # cheapest of all, but scores below
    offer("d/equal-3b", "org/equal-3b", 0.05, 0.05),
    offer("e/coder-7b", "org/coder-7b", 0.02, 0.02),
    offer("f/unscored-8b", "org/unscored-8b", 0.01, 0.02),
    offer("g/frontier", "lab/frontier", 1.0, 4.0, tier="frontier"),  # 1.75
    offer("h/frontier", "lab/frontier", 0.5, 2.0, tier="frontier"),  # 0.875
    offer("i/frontier", "lab/frontier", 2.0, 8.0, tier="frontier"),  # 3.5
]
MIX = Mix(id="3:1", name="3:1", input_share=0.75, output_share=0.25)


def price(o) -> float:
    return cost.blended_usd_per_mtok(o, MIX)


def groups(local: str | None, quality: MeasuredQuality | None, offers=OFFERS):
    out = match_offers(local, quality, offers, MODELS, price)
    return {g.name: g for g in out}, [g.name for g in out]


def ids(group) -> list[str]:
    return [o.id for o in group.offers]


def test_hf_id_is_read_from_the_recipes_homepage():
    assert hf_id("https://huggingface.co/meta-llama/Llama-3.2-1B-Instruct") == \
        "meta-llama/Llama-3.2-1B-Instruct"
    assert hf_id("https://huggingface.co/Qwen/Qwen2.5-Coder-0.5B-Instruct/") == \
        "Qwen/Qwen2.5-Coder-0.5B-Instruct"
    assert hf_id("https://github.com/org/repo") is None and hf_id(None) is None
    assert hf_id("https://huggingface.co/") is None


def test_same_model_first_cheapest_first_then_as_good_then_frontier():
    quality = MeasuredQuality("humaneval", 0.30, 164, False)
    by, order = groups(LOCAL, quality)
    assert order == [SAME, AS_GOOD, FRONTIER]
    assert ids(by[SAME]) == ["a/local-1b", "b/local-1b"]  # $0.05 before $0.10
    assert LOCAL in by[SAME].note


def test_no_hosted_offer_of_this_model_is_said():
    by, _ = groups("org/nobody-hosts-this", None)
    assert by[SAME].offers == ()
    assert "no hosted offer of this model" in by[SAME].note
    assert "org/nobody-hosts-this" in by[SAME].note
    none, _ = groups(None, None)  # a model without an identity (no recipe)
    assert none[SAME].offers == () and "no hosted offer of this model" in none[SAME].note


def test_at_least_as_good_keeps_non_frontier_offers_scoring_at_least_the_measured():
    by, _ = groups(LOCAL, MeasuredQuality("humaneval", 0.30, 164, False))
    # weak-3b (0.25 < 0.30) and unscored-8b (no figure) are out however cheap; the frontier
    # (0.95) is out of this group; the local model's own offers are in the first group
    assert ids(by[AS_GOOD]) == ["e/coder-7b", "d/equal-3b"]  # $0.02 before $0.05
    assert "30.0%" in by[AS_GOOD].note and "164 problems" in by[AS_GOOD].note
    # a score equal to the published one counts as "at least as good"
    tie, _ = groups(LOCAL, MeasuredQuality("humaneval", 0.40, 164, False))
    assert ids(tie[AS_GOOD]) == ["e/coder-7b", "d/equal-3b"]
    above, _ = groups(LOCAL, MeasuredQuality("humaneval", 0.81, 20, True))
    assert above[AS_GOOD].offers == ()
    assert "no non-frontier offer publishes humaneval at least 81.0%" in above[AS_GOOD].note


def test_at_least_as_good_is_the_cheapest_few():
    many = [offer(f"x{i}/coder-7b", "org/coder-7b", 0.01 * (i + 1), 0.01 * (i + 1))
            for i in range(MAX_AS_GOOD + 2)]
    by, _ = groups(LOCAL, MeasuredQuality("humaneval", 0.5, 164, False), offers=many)
    assert ids(by[AS_GOOD]) == [o.id for o in many[:MAX_AS_GOOD]]


def test_without_a_quality_measurement_the_match_is_identity_only():
    by, _ = groups(LOCAL, None)
    assert by[AS_GOOD].offers == ()
    assert "identity only" in by[AS_GOOD].note and "edgebench quality" in by[AS_GOOD].note
    assert ids(by[SAME]) == ["a/local-1b", "b/local-1b"]


def test_frontier_is_last_and_cheapest_first():
    by, order = groups(LOCAL, None)
    assert order[-1] == FRONTIER
    assert ids(by[FRONTIER]) == ["h/frontier", "g/frontier"]  # two cheapest, $0.875 then $1.75
    assert all(o.tier == "frontier" for o in by[FRONTIER].offers)
    assert not any(o.tier == "frontier" for g in (SAME, AS_GOOD) for o in by[g].offers)


# ---------------------------------------------------------------- carbon for an offer
def _ref(id: str, j: float | None, parameters: float | None, low=0.0, high=1.0, pue=None):
    return EnergyReference(id=id, name=id, path=Path("x"), j_per_output_tok=j,
                           parameters=parameters, prompt_to_output_energy_ratio_low=low,
                           prompt_to_output_energy_ratio_high=high, pue=pue)


def test_offer_carbon_counts_prompt_and_output_tokens_at_both_bounds():
    grid = GridRegion(id="g", name="g", path=Path("x"), electricity_usd_per_kwh=0.2,
                      carbon_g_per_kwh=400.0)
    ref = _ref("r", 0.2, 8e9, low=0.1, high=0.8)
    oc = cost.offer_cost(offer("o/x", "org/x", 1.0, 2.0), MIX, grid, ref, 1.5, "why")
    # E = J_out x (n_out + k x n_in) x PUE; 3:1 -> n_in 750,000, n_out 250,000
    # low:  0.2 x (250,000 + 0.1 x 750,000) x 1.5 = 97,500 J  -> / 3.6e6 x 400 = 10.833 g
    # high: 0.2 x (250,000 + 0.8 x 750,000) x 1.5 = 255,000 J -> 28.333 g
    assert oc.carbon_g_per_mtok == pytest.approx(97_500 / 3.6e6 * 400)
    assert oc.carbon_g_per_mtok_high == pytest.approx(255_000 / 3.6e6 * 400)
    assert (oc.energy_reference_id, oc.energy_reference_note) == ("r", "why")
    assert oc.blended_usd_per_mtok == pytest.approx(0.75 * 1.0 + 0.25 * 2.0)
    chat = Mix(id="chat", name="chat", input_share=0.5, output_share=0.5)
    # 1:1 -> 0.2 x (500,000 + 0.8 x 500,000) x 1.5 = 270,000 J
    assert cost.offer_cost(offer("o/x", "org/x", 1, 2), chat, grid, ref, 1.5) \
        .carbon_g_per_mtok_high == pytest.approx(270_000 / 3.6e6 * 400)


def test_the_reference_is_the_nearest_by_the_offer_models_parameters():
    refs = {r.id: r for r in (_ref("small", 0.1, 8e9), _ref("large", 0.8, 70e9),
                              _ref("unsized", 0.3, None), _ref("default", 0.25, None))}
    models = {"m/3b": offer_model("m/3b", 3_000_000_000),
              "m/40b": offer_model("m/40b", 40_000_000_000),  # 70/40 = 1.75 < 40/8 = 5
              "m/closed": offer_model("m/closed", None)}
    profiles = SimpleNamespace(energy_references=refs, models=models)
    default = refs["default"]

    def chosen(model_id, named=None):
        o = offer("p/" + model_id.split("/")[1], model_id, 1, 1)
        if named:
            o = dataclasses.replace(o, energy_reference=named)
        ref, note = offer_energy_reference(o, profiles, default)
        return ref.id, note

    assert chosen("m/3b") == ("small", "nearest size to 3B: 8B")
    assert chosen("m/40b") == ("large", "nearest size to 40B: 70B")
    ref_id, note = chosen("m/closed")
    assert ref_id == "default" and "no parameter count recorded" in note
    assert chosen("m/unknown-to-models")[0] == "default"
    assert chosen("m/40b", named="small") == ("small", "named by the offer")


def test_shipped_offers_get_the_reference_of_their_models_size():
    """On the shipped profiles: a hosted 1B model gets the smallest per-size reference, with the
    carbon of the hand formula from that reference's own figures."""
    profiles = load_profiles()
    ctx = pricing_context(profiles, PricingOptions())
    oc = ctx.offer_costs["sambanova/llama-3.2-1b-instruct"]
    model = profiles.models[profiles.offers["sambanova/llama-3.2-1b-instruct"].model_id]
    sized = [r for r in profiles.energy_references.values()
             if r.j_per_output_tok is not None and r.parameters]
    smallest = min(sized, key=lambda r: r.parameters)
    assert oc.energy_reference_id == smallest.id
    assert oc.energy_reference_note.startswith(f"nearest size to {model.parameters / 1e9:.3g}B")
    pue = profiles.energy_references[ctx.options.pue_reference_id].pue
    g = ctx.grid.carbon_g_per_kwh
    j = smallest.j_per_output_tok
    lo, hi = smallest.prompt_to_output_energy_ratio_low, smallest.prompt_to_output_energy_ratio_high
    n_in, n_out = 0.75e6, 0.25e6
    assert oc.carbon_g_per_mtok == pytest.approx(j * (n_out + lo * n_in) * pue / 3.6e6 * g)
    assert oc.carbon_g_per_mtok_high == pytest.approx(j * (n_out + hi * n_in) * pue / 3.6e6 * g)
    assert oc.carbon_g_per_mtok_high > oc.carbon_g_per_mtok  # prompt tokens are counted
