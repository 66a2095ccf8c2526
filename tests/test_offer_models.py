"""Every cloud offer names the model it serves; models carry identity, size, tokenizer and scores."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.cost.offer_models import MODELS_FILE, OfferModel, parse_models_file
from bench.cost.profiles import load_profiles
from bench.errors import EdgebenchError
from bench.models.recipes import PublishedScore, list_recipes

SRC = '{ url = "https://example.com/p", retrieved = 2025-01-01 }'
OFFER = f"""\
[[offers]]
id = "x/tiny"
provider = "x"
model = "tiny"
tier = "open-small"
model_class = "open-1b"
model_id = "org/Tiny-1B-Instruct"
input_usd_per_mtok = 0.02
output_usd_per_mtok = 0.04
sources.input_usd_per_mtok = {SRC}
sources.output_usd_per_mtok = {SRC}
"""
MODEL = f"""\
[[models]]
id = "org/Tiny-1B-Instruct"
name = "Tiny 1B Instruct"
open_weights = true
parameters = 1000000000
tokenizer_family = "llama3"
sources.parameters = {SRC}

[[models.published]]
benchmark = "humaneval"
metric = "pass@1"
score = 0.42
model = "Tiny-1B-Instruct"
setting = "0-shot"
url = "https://example.com/card"
retrieved = 2025-01-01
"""


def _tree(tmp_path: Path, offers: str = OFFER, models: str | None = MODEL) -> Path:
    root = tmp_path / "profiles"
    (root / "cloud").mkdir(parents=True)
    (root / "cloud" / "api.toml").write_text(offers)
    if models is not None:
        (root / "cloud" / MODELS_FILE).write_text(models)
    return root


def _error(root: Path, *fragments: str) -> str:
    with pytest.raises(EdgebenchError) as info:
        load_profiles(root)
    msg = str(info.value)
    assert "\n" not in msg and all(f in msg for f in fragments), msg
    return msg


# ---------------------------------------------------------------- the shipped data
def test_every_offer_names_a_model_and_every_model_is_offered():
    p = load_profiles()
    for o in p.offers.values():
        assert o.model_id in p.models, f"{o.path}: {o.id} has no model"
    offered = {o.model_id for o in p.offers.values()}
    assert set(p.models) <= offered, f"models no offer serves: {sorted(set(p.models) - offered)}"
    for m in p.models.values():
        assert isinstance(m, OfferModel) and m.tokenizer_family
        assert m.parameters is None or "parameters" in m.sources
        for s in m.published:
            assert isinstance(s, PublishedScore) and 0 <= s.score <= 1
            assert s.citation.url.startswith("https://")


def test_the_ladder_models_have_hosted_offers_with_published_quality():
    p = load_profiles()
    offered = {o.model_id for o in p.offers.values()}
    ladder = ("meta-llama/Llama-3.2-1B-Instruct", "meta-llama/Llama-3.2-3B-Instruct",
              "Qwen/Qwen2.5-7B-Instruct", "Qwen/Qwen2.5-72B-Instruct",
              "Qwen/Qwen2.5-Coder-7B-Instruct", "Qwen/Qwen2.5-Coder-32B-Instruct",
              "google/gemma-3-4b-it", "google/gemma-3-12b-it", "google/gemma-3-27b-it")
    assert set(ladder) <= offered
    # the coder and Gemma offers can be matched on the benchmark the quality stage measures
    for model_id in ladder[4:]:
        assert p.models[model_id].score("humaneval") is not None, model_id
    assert p.models["Qwen/Qwen2.5-Coder-7B-Instruct"].score("humaneval").score == pytest.approx(0.884)
    # the identity the recipes carry (their Hugging Face homepage) is the one offers use
    homepages = {r.homepage.removeprefix("https://huggingface.co/") for r in list_recipes()}
    assert {"meta-llama/Llama-3.2-1B-Instruct", "meta-llama/Llama-3.2-3B-Instruct",
            "meta-llama/Llama-3.1-8B-Instruct"} <= homepages & set(p.models)


def test_issue_13_stale_figures_are_fixed():
    p = load_profiles()
    small = p.offers["mistral/mistral-small-2603"]  # the exact version, from Mistral's own docs
    assert (small.input_usd_per_mtok, small.output_usd_per_mtok) == (0.15, 0.6)
    assert small.sources["input_usd_per_mtok"].url.startswith("https://docs.mistral.ai/")
    assert "mistral/mistral-small-latest" not in p.offers
    haiku = p.offers["anthropic/claude-haiku-5.5"]  # the newest Haiku
    assert haiku.model_id == "anthropic/claude-haiku-5-5"
    assert haiku.sources["input_usd_per_mtok"].url.startswith("https://platform.claude.com/")
    assert p.models[haiku.model_id].tokenizer_family != p.models["anthropic/claude-haiku-4-5"].tokenizer_family
    assert "ecb.europa.eu" in p.regions["de"].sources["usd_per_eur"].url
    assert p.regions["us-average"].sources["electricity_usd_per_kwh"].url.startswith("https://www.eia.gov/")


def test_serving_precision_is_parsed_with_its_source():
    p = load_profiles()
    fp8 = p.offers["novita/qwen3-4b-fp8"]
    assert fp8.serving_precision == "fp8" and "serving_precision" in fp8.sources
    assert all(o.serving_precision is None or "serving_precision" in o.sources for o in p.offers.values())


# ---------------------------------------------------------------- parsing a tree
def test_a_good_tree_parses(tmp_path):
    p = load_profiles(_tree(tmp_path))
    o, m = p.offers["x/tiny"], p.models["org/Tiny-1B-Instruct"]
    assert o.model_id == m.id and o.serving_precision is None
    assert m.open_weights and m.parameters == 10**9 and m.tokenizer_family == "llama3"
    assert m.score("HumanEval").score == 0.42 and m.score("mmlu") is None


def test_an_offer_without_model_id_names_file_and_offer(tmp_path):
    root = _tree(tmp_path, OFFER.replace('model_id = "org/Tiny-1B-Instruct"\n', ""))
    _error(root, "api.toml", "x/tiny", "model_id")


def test_an_unclassified_offer_may_lack_model_id(tmp_path):
    text = OFFER.replace('model_id = "org/Tiny-1B-Instruct"\n', "").replace("open-small", "unclassified")
    assert load_profiles(_tree(tmp_path, text)).offers["x/tiny"].model_id is None


def test_an_unknown_model_id_names_file_and_offer(tmp_path):
    root = _tree(tmp_path, OFFER.replace("org/Tiny-1B-Instruct", "org/Other"))
    _error(root, "api.toml", "x/tiny", "org/Other", MODELS_FILE)
    _error(_tree(tmp_path / "none", models=None), "x/tiny", "names no model")


@pytest.mark.parametrize("edit, fragment", [
    (('model_id = "org/Tiny-1B-Instruct"', 'model_id = "org/Tiny-1B-Instruct"\nserving_precision = "fp8"'),
     "serving_precision has no source"),
    (('model_id = "org/Tiny-1B-Instruct"', 'model_id = "org/Tiny-1B-Instruct"\nserving_precision = "q4"\n'
      f"sources.serving_precision = {SRC}"), "serving_precision 'q4' is not one of"),
    (("sources.input", f"sources.serving_precision = {SRC}\nsources.input"),
     "names no serving_precision"),
])
def test_bad_serving_precision(tmp_path, edit, fragment):
    _error(_tree(tmp_path, OFFER.replace(*edit)), "api.toml", "x/tiny", fragment)


def test_a_sourced_serving_precision_parses(tmp_path):
    text = OFFER.replace('model_id = "org/Tiny-1B-Instruct"',
                         f'model_id = "org/Tiny-1B-Instruct"\nserving_precision = "bf16"\n'
                         f"sources.serving_precision = {SRC}")
    o = load_profiles(_tree(tmp_path, text)).offers["x/tiny"]
    assert o.serving_precision == "bf16" and o.sources["serving_precision"].url == "https://example.com/p"


@pytest.mark.parametrize("edit, fragment", [
    ((f"sources.parameters = {SRC}\n", ""), "parameters has no source"),
    (("score = 0.42", "score = 42.0"), "'score' must be a fraction"),
    (('tokenizer_family = "llama3"', 'tokenizer_family = "Llama 3"'), "tokenizer_family"),
    (('id = "org/Tiny-1B-Instruct"', 'id = "Tiny-1B-Instruct"'), "must be 'org/name'"),
    (("open_weights = true", "open_weights = true\nlicence = \"x\""), "unknown key 'licence'"),
    (("open_weights = true", 'open_weights = "yes"'), "open_weights must be true or false"),
    (("parameters = 1000000000", "parameters = 1.5e9"), "parameters must be an integer"),
    (('metric = "pass@1"\n', ""), "missing key 'metric'"),
])
def test_bad_models_name_file_and_key(tmp_path, edit, fragment):
    path = tmp_path / MODELS_FILE
    path.write_text(MODEL.replace(*edit))
    with pytest.raises(EdgebenchError) as info:
        parse_models_file(path)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg and fragment in msg, msg


def test_a_model_defined_twice_is_an_error(tmp_path):
    _error(_tree(tmp_path, models=MODEL + "\n" + MODEL), "defined twice", "org/Tiny-1B-Instruct")
