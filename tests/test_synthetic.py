"""Synthetic stand-ins: the stretched graph must be the builder's own graph for the full model.

The reference in each equivalence test is onnxruntime_genai's builder run on a random-init
Hugging Face model of the full depth and vocabulary; the synthetic build runs the same builder
on three layers and a 1009-token vocabulary and stretches the result. Both must agree on every
node (name, op, domain, wiring, attributes), initializer name/shape/type, value info, graph
input/output, opset, genai_config.json, and the size of the weights file.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench.errors import EdgebenchError
from bench.models import synthetic, synthetic_graph
from bench.models.folder import sha256_file
from bench.models.sources import staging

INT4 = {"block_size": "32", "accuracy_level": "4", "prune_lm_head": "true"}
INT8 = {"prune_lm_head": "true"}
# hidden 64, vocabulary 3000 (> the 1009-token template, so the widening is exercised)
LLAMA = dict(model_type="llama", num_hidden_layers=5, hidden_size=64, intermediate_size=128,
             num_attention_heads=4, num_key_value_heads=2, vocab_size=3000,
             tie_word_embeddings=True, rope_theta=10000.0, max_position_embeddings=512,
             rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=2)
QWEN2 = dict(LLAMA, model_type="qwen2", num_hidden_layers=4, rope_theta=1e6,
             rms_norm_eps=1e-6, pad_token_id=2500)  # pad past the template's vocabulary
PHI3 = dict(architecture="Phi3ForCausalLM", num_hidden_layers=6, hidden_size=64,
            intermediate_size=128, num_attention_heads=4, num_key_value_heads=4,
            vocab_size=256, tie_word_embeddings=False, rope_theta=1e4,
            max_position_embeddings=1024, original_max_position_embeddings=256,
            rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=2, pad_token_id=0,
            rope_scaling={"type": "longrope", "long_factor": [1.5] * 8,
                          "short_factor": [1.0] * 8})
MISTRAL = dict(LLAMA, model_type="mistral", num_hidden_layers=4, tie_word_embeddings=False,
               sliding_window=128)


def _needs_builder():
    for module in ("onnx", "onnxruntime_genai", "torch", "transformers"):
        pytest.importorskip(module)


def _synthetic(config, tmp: Path, precision="int4", options=INT4, name="tiny") -> Path:
    return synthetic.build_synthetic(name, config, precision, precision, options,
                                     tmp / name / precision, lambda msg: None)


def _builder_full(config, tmp: Path, precision="int4", options=INT4) -> Path:
    """The reference: the builder's own build of the whole model (random-init weights)."""
    out = tmp / "reference"
    with staging(out) as work:
        with synthetic.quiet_log(work / "log"):
            synthetic._save_template_hf(synthetic.hf_config(config), work / "hf")
            synthetic.run_builder(work / "hf", work / "onnx", precision, options, work / "cache")
        for name in ("model.onnx", "model.onnx.data", "genai_config.json"):
            shutil.move(str(work / "onnx" / name), str(work / name))
        for name in ("hf", "onnx", "cache", "log"):
            shutil.rmtree(work / name, ignore_errors=True)
            (work / name).unlink(missing_ok=True)
    return out


def _tensor(t) -> bytes:
    import onnx

    c = onnx.TensorProto()
    c.CopyFrom(t)
    del c.external_data[:]
    c.ClearField("raw_data")
    c.ClearField("data_location")
    return c.SerializeToString()


def _graph(g) -> dict:
    import onnx

    def attr(a):
        if a.type == onnx.AttributeProto.TENSOR:
            return a.name, _tensor(a.t)
        if a.type == onnx.AttributeProto.GRAPH:
            return a.name, repr(_graph(a.g))
        return a.name, a.SerializeToString()

    return {
        "inputs": [i.SerializeToString() for i in g.input],
        "outputs": [o.SerializeToString() for o in g.output],
        "nodes": sorted((n.name, n.op_type, n.domain, tuple(n.input), tuple(n.output),
                         tuple(sorted(attr(a) for a in n.attribute))) for n in g.node),
        "initializers": sorted((t.name, tuple(t.dims), t.data_type) for t in g.initializer),
        "value_info": sorted(v.SerializeToString() for v in g.value_info),
    }


def _signature(folder: Path) -> dict:
    import onnx

    m = onnx.load(str(folder / "model.onnx"), load_external_data=False)
    return {"graph": _graph(m.graph), "opset": [o.SerializeToString() for o in m.opset_import],
            "ir_version": m.ir_version,
            "genai": json.loads((folder / "genai_config.json").read_text()),
            "weights_bytes": (folder / "model.onnx.data").stat().st_size}


@pytest.mark.parametrize("config, precision, options", [
    (LLAMA, "int4", INT4), (QWEN2, "int8", INT8), (PHI3, "int4", INT4),
    (MISTRAL, "int4", INT4)], ids=["llama-int4", "qwen2-int8", "phi3-longrope-int4",
                                   "mistral-int4"])
def test_stretched_graph_is_the_builders_own_full_graph(config, precision, options, tmp_path):
    _needs_builder()
    ours = _signature(_synthetic(config, tmp_path, precision, options))
    theirs = _signature(_builder_full(config, tmp_path, precision, options))
    for key in ("inputs", "outputs", "nodes", "initializers", "value_info"):
        assert ours["graph"][key] == theirs["graph"][key], key
    assert ours == theirs
    layers = config["num_hidden_layers"]
    assert len([i for i in ours["graph"]["inputs"] if b"past_key_values." in i]) == 2 * layers


def test_the_comparison_sees_a_missing_layer(tmp_path):
    """The equivalence test can fail: a model one layer short differs from the reference."""
    _needs_builder()
    short = _signature(_synthetic(dict(LLAMA, num_hidden_layers=4), tmp_path, name="short"))
    full = _signature(_builder_full(LLAMA, tmp_path))
    assert short["graph"]["nodes"] != full["graph"]["nodes"]
    assert short["weights_bytes"] < full["weights_bytes"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    _needs_builder()
    return _synthetic(LLAMA, tmp_path_factory.mktemp("synthetic"))


def test_manifest_says_synthetic_and_hashes_the_weights(tiny):
    manifest = json.loads((tiny / "manifest.json").read_text())
    assert manifest["model_id"] == "tiny" and manifest["variant"] == "int4"
    assert manifest["precision"] == "int4" and manifest["logits"] == "last"
    assert manifest["builder_options"] == INT4
    assert manifest["source_sha256"] is None
    assert manifest["weights"] == "synthetic"
    assert manifest["config"] == LLAMA
    assert manifest["builder"].startswith("onnxruntime-genai ")
    assert manifest["built_utc"]
    names = {p.name for p in tiny.iterdir()}
    assert names == {"model.onnx", "model.onnx.data", "genai_config.json", "manifest.json"}
    assert manifest["files"] == {n: (tiny / n).stat().st_size for n in names - {"manifest.json"}}
    assert manifest["sha256"] == {n: sha256_file(tiny / n)
                                  for n in ("model.onnx", "model.onnx.data")}
    genai = json.loads((tiny / "genai_config.json").read_text())["model"]
    assert genai["vocab_size"] == 3000 and genai["decoder"]["num_hidden_layers"] == 5
    assert not list(tiny.parent.glob(".*partial*")) and not list(tiny.parent.glob("*.log"))


def test_builds_are_reproducible_and_layers_get_their_own_weights(tiny, tmp_path):
    import onnx
    from onnx import numpy_helper

    again = _synthetic(LLAMA, tmp_path)
    assert sha256_file(again / "model.onnx.data") == sha256_file(tiny / "model.onnx.data")
    model = onnx.load(str(tiny / "model.onnx"), load_external_data=True)
    weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    name = "model.layers.{}.mlp.down_proj.MatMul.weight_Q4"
    layers = [weights[name.format(i)] for i in range(5)]
    assert all(a.shape == layers[0].shape for a in layers)
    assert len({a.tobytes() for a in layers}) == 5  # copies are not the template's bytes
    assert weights["lm_head.MatMul.weight_Q4"].shape[0] == 3000


@pytest.mark.parametrize("backend", ["ort", "ort-genai"])
def test_backends_run_the_folder_without_a_tokenizer(tiny, backend):
    import numpy as np

    if backend == "ort-genai":
        pytest.importorskip("onnxruntime_genai")
    from bench.run.backends import make_backend
    from bench.run.timing import generate_timed

    b = make_backend(backend)
    b.load(tiny, ep="cpu", threads=1)
    try:
        timing = generate_timed(b, [1, 5, 9], 8)
        assert timing.n_generated == 8 and all(0 <= t < 3000 for t in timing.tokens)
        if backend == "ort":
            logits = np.delete(b._logits, b._eos_ids)
            assert logits.shape == (2999,) and np.isfinite(logits).all()
    finally:
        b.close()


def test_memory_refusal_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(synthetic, "_available_memory_bytes", lambda: 1 << 30)
    big = dict(LLAMA, hidden_size=4096, intermediate_size=14336, num_attention_heads=32,
               num_key_value_heads=8, num_hidden_layers=32, vocab_size=128256)
    with pytest.raises(EdgebenchError) as err:
        _synthetic(big, tmp_path, name="big")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("building big int4 needs about ")
    assert message.endswith("GiB of memory, 1.0 GiB available")
    needed = float(message.split("about ")[1].split(" GiB")[0])
    assert 5 < needed < 12  # an 8B: three layers' fp32 template, not the whole model
    assert not (tmp_path / "big").exists() or not any((tmp_path / "big").iterdir())


def test_disk_refusal(tmp_path, monkeypatch):
    monkeypatch.setattr(synthetic, "_available_memory_bytes", lambda: 1 << 40)
    monkeypatch.setattr(synthetic, "_available_disk_bytes", lambda path: 1 << 20)
    with pytest.raises(EdgebenchError, match=r"needs about [0-9.]+ GiB of disk under .*, "
                                              r"0\.0 GiB free"):
        _synthetic(LLAMA, tmp_path)


def test_estimate_grows_with_depth_only_on_disk():
    deep = synthetic.estimate_needs(dict(LLAMA, num_hidden_layers=40), "int4", INT4)
    shallow = synthetic.estimate_needs(LLAMA, "int4", INT4)
    assert deep.memory_bytes == shallow.memory_bytes  # the template is three layers either way
    assert deep.disk_bytes > shallow.disk_bytes and deep.model_bytes > shallow.model_bytes


@pytest.mark.parametrize("config, fragment", [
    (dict(LLAMA, model_type="gemma"), "synthetic builds support"),
    ({k: v for k, v in LLAMA.items() if k != "vocab_size"}, "lacks vocab_size"),
    (dict(LLAMA, architecture="Qwen2ForCausalLM"), "synthetic builds support"),
    ({k: v for k, v in PHI3.items() if k != "rope_scaling"}, "is a LongRoPE model"),
])
def test_bad_configs_are_refused_in_one_line(config, fragment, tmp_path):
    with pytest.raises(EdgebenchError, match=fragment):
        _synthetic(config, tmp_path)


def test_mixed_layer_types_are_refused(tmp_path):
    _needs_builder()
    mixed = dict(QWEN2, use_sliding_window=True, sliding_window=64, max_window_layers=2)
    with pytest.raises(EdgebenchError, match="mixes layer types"):
        _synthetic(mixed, tmp_path)


def test_renumbering_touches_layer_and_cache_indices_only():
    mapping = {1: 7, 0: 6}
    assert synthetic_graph.renumber("/model/layers.1/attn/qkv_proj/MatMul", mapping) == \
        "/model/layers.7/attn/qkv_proj/MatMul"
    assert synthetic_graph.renumber("/model/layers.0/post_attention_layernorm/output_3",
                                    mapping) == "/model/layers.6/post_attention_layernorm/output_3"
    assert synthetic_graph.renumber("model.layers.1.mlp.up_proj.MatMul.weight_Q4", mapping) == \
        "model.layers.7.mlp.up_proj.MatMul.weight_Q4"
    assert synthetic_graph.renumber("past_key_values.1.key", mapping) == "past_key_values.7.key"
    assert synthetic_graph.renumber("present.0.value", mapping) == "present.6.value"
    assert synthetic_graph.renumber("/model/constants/INT64/[1]", mapping) == \
        "/model/constants/INT64/[1]"
    assert synthetic_graph.renumber("model.layers.11.x", mapping) == "model.layers.11.x"


def test_template_vocab_avoids_every_number_of_the_config():
    assert synthetic.template_vocab(dict(LLAMA, vocab_size=500)) == 500
    assert synthetic.template_vocab(LLAMA) == 1009
    assert synthetic.template_vocab(dict(LLAMA, intermediate_size=1009)) == 1013
    taken = dict(LLAMA, rope_scaling={"original_max_position_embeddings": 1013}, head_dim=1009)
    assert synthetic.template_vocab(taken) == 1019
    # derived widths count too: 32288 / 32 = 1009 blocks per row
    assert synthetic.template_vocab(dict(LLAMA, hidden_size=32288)) == 1013


def test_widening_refuses_a_vocabulary_that_a_layer_also_uses():
    onnx = pytest.importorskip("onnx")
    from onnx import helper

    node = helper.make_node("MatMulNBits", ["x"], ["y"], name="/model/layers.0/mlp/MatMul",
                            N=1009)
    graph = helper.make_graph([node], "g", [], [])
    with pytest.raises(synthetic_graph.GraphError, match="also occurs"):
        synthetic_graph.widen_vocab(helper.make_model(graph), 1009, 5000)


@pytest.mark.slow
def test_llama_3_2_1b_int4_builds_small_and_generates(tmp_path):
    """The published Llama-3.2-1B shape (huggingface.co/meta-llama/Llama-3.2-1B config.json)."""
    _needs_builder()
    config = dict(model_type="llama", num_hidden_layers=16, hidden_size=2048,
                  num_attention_heads=32, num_key_value_heads=8, head_dim=64,
                  intermediate_size=8192, vocab_size=128256, tie_word_embeddings=True,
                  rope_theta=500000.0, max_position_embeddings=131072, rms_norm_eps=1e-5,
                  rope_scaling={"factor": 32.0, "high_freq_factor": 4.0,
                                "low_freq_factor": 1.0,
                                "original_max_position_embeddings": 8192,
                                "rope_type": "llama3"},
                  bos_token_id=128000, eos_token_id=128001)
    folder = _synthetic(config, tmp_path, name="llama-3.2-1b")
    size = sum(p.stat().st_size for p in folder.iterdir())
    assert 0.7 * (1 << 30) < size < 0.8 * (1 << 30)  # 1.24 B weights at ~0.6 bytes each
    from bench.run.backends import make_backend
    from bench.run.timing import generate_timed

    b = make_backend("ort")
    b.load(folder, ep="cpu", threads=2)
    try:
        assert generate_timed(b, [128000], 16).n_generated == 16
    finally:
        b.close()
