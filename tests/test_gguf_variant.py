"""The `gguf` variant's graph against a numpy decoder on the same GGUF (tests/gguf_reference.py).

Tiny random llama, qwen2 and gemma3 GGUFs cover every path of the graph: packed and split
q/k/v and gate/up, affine (Q4_1, Q4_K) and symmetric types, widened 5- and 6-bit blocks, a
quantized, affine and float embedding table, tied and separate heads, qwen2's biases, both RoPE
modes, Gemma's extra norms, GELU, sliding window and second RoPE base, prefill and a decode
step on the KV cache. At accuracy level 0 (fp32 activations) the logits
agree within fp32 rounding; a wrong RoPE mode, nibble order or block minimum is off by O(1).
"""

from __future__ import annotations

import numpy as np
import pytest

from bench.errors import EdgebenchError

gguf = pytest.importorskip("gguf", reason="gguf (the convert extra) writes the test files")
onnx = pytest.importorskip("onnx", reason="onnx builds the gguf variant's graph")

from tests import gguf_reference  # noqa: E402
from tests.gguf_factory import write_decoder  # noqa: E402

IDS = [1, 17, 42, 5, 88, 3]

CASES = {
    # q/k/v and gate/up packed, affine Q4_1, tied head on a Q8_0 table
    "llama-q4_1-tied": ("llama", {"attn_q.weight": "Q4_1", "attn_k.weight": "Q4_1",
                                  "attn_v.weight": "Q4_1", "ffn_gate.weight": "Q4_1",
                                  "ffn_up.weight": "Q4_1", "ffn_down.weight": "Q4_1",
                                  "attn_output.weight": "Q4_0"}, True),
    # Q4_K_M-like: v and down differ per layer, affine K-quant embedding, head Q6_K
    "qwen2-k-quants": ("qwen2", {"token_embd.weight": "Q4_K", "attn_q.weight": "Q5_0",
                                 "attn_k.weight": "Q5_0", "blk.0.attn_v.weight": "Q6_K",
                                 "blk.1.attn_v.weight": "Q5_0", "ffn_gate.weight": "Q4_K",
                                 "ffn_up.weight": "Q4_K", "blk.0.ffn_down.weight": "Q6_K",
                                 "blk.1.ffn_down.weight": "Q5_K", "attn_output.weight": "Q4_K",
                                 "output.weight": "Q6_K"}, False),
    # float matrices where a file keeps them: F16 embedding (tied), F32 output projection
    # (gate Q8_0, up Q4_0: different bits, so gate and up stay apart)
    "llama-float-tables": ("llama", {"token_embd.weight": "F16", "attn_output.weight": "F32",
                                     "ffn_up.weight": "Q4_0"}, True),
    # Gemma 3 as its Q4_K_M file mixes types: layer 0's q/k/v packed (then split for the q/k
    # norms), layer 1's v Q6_K apart; a sliding window of 3 in layer 0, layer 1 global
    "gemma3-swa": ("gemma3", {"attn_q.weight": "Q5_0", "attn_k.weight": "Q5_0",
                              "blk.0.attn_v.weight": "Q5_0", "blk.1.attn_v.weight": "Q6_K",
                              "ffn_gate.weight": "Q5_0", "ffn_up.weight": "Q5_0",
                              "ffn_down.weight": "Q4_K", "attn_output.weight": "Q4_K"}, True),
}
# Gemma's head size is not hidden / heads (270M: 640 / 4 heads of 256)
EXTRA = {"gemma3-swa": {"head_dim": 128}}


def _model(tmp_path, case: str, logits: str = "all", accuracy_level: int = 0):
    from bench.models.gguf_config import decoder_config
    from bench.models.gguf_graph import build_model
    from bench.models.gguf_model import read_header
    from bench.models.gguf_tensors import GgufTensors

    arch, types, tied = CASES[case]
    path = write_decoder(tmp_path / f"{case}.gguf", arch, types, tied=tied, seed=len(case),
                         **EXTRA.get(case, {}))
    header = read_header(path)
    tensors = GgufTensors(path, header)
    cfg = decoder_config(header.metadata, set(tensors.infos),
                         int(tensors.info("token_embd.weight").dims[-1]))
    model, summary = build_model(cfg, tensors, accuracy_level=accuracy_level, logits=logits)
    # (no onnx.checker: SimplifiedLayerNormalization is ONNX Runtime's, in the default domain)
    return path, cfg, model, summary


def _session(model):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), so,
                                providers=["CPUExecutionProvider"])


def _step(sess, cfg, ids, past):
    feeds = {"input_ids": np.array([ids], dtype=np.int64),
             "attention_mask": np.ones((1, len(ids) + past[0].shape[2]), dtype=np.int64)}
    for i in range(cfg.layers):
        feeds[f"past_key_values.{i}.key"] = past[2 * i]
        feeds[f"past_key_values.{i}.value"] = past[2 * i + 1]
    out = sess.run(None, feeds)
    return out[0][0], out[1:]


def _close(mine: np.ndarray, ref: np.ndarray) -> None:
    scale = np.abs(ref).max()
    err = np.abs(mine.astype(np.float64) - ref).max()
    assert err <= 1e-4 * scale + 1e-5, f"max error {err:.3g} at logit scale {scale:.3g}"


@pytest.mark.parametrize("case", CASES)
def test_prefill_and_decode_match_the_numpy_decoder(tmp_path, case):
    path, cfg, model, _ = _model(tmp_path, case)
    ref = gguf_reference.forward(path, IDS)
    sess = _session(model)
    empty = [np.zeros((1, cfg.kv_heads, 0, cfg.head_dim), np.float32)] * (2 * cfg.layers)
    logits, present = _step(sess, cfg, IDS[:-1], empty)
    _close(logits, ref[:-1])
    last, _ = _step(sess, cfg, IDS[-1:], present)  # one decode step on the KV cache
    _close(last[-1], ref[-1])


def test_a_wrong_rope_mode_is_caught(tmp_path):
    """The check has teeth: llama with qwen2's RoPE layout is far off."""
    from dataclasses import replace

    from bench.models import gguf_graph

    path, cfg, _, _ = _model(tmp_path, "llama-q4_1-tied")
    from bench.models.gguf_model import read_header
    from bench.models.gguf_tensors import GgufTensors

    tensors = GgufTensors(path, read_header(path))
    wrong, _ = gguf_graph.build_model(replace(cfg, rope_interleaved=False), tensors,
                                      accuracy_level=0, logits="all")
    empty = [np.zeros((1, cfg.kv_heads, 0, cfg.head_dim), np.float32)] * (2 * cfg.layers)
    logits, _ = _step(_session(wrong), cfg, IDS, empty)
    ref = gguf_reference.forward(path, IDS)
    with pytest.raises(AssertionError):
        _close(logits[1:], ref[1:])  # position 0 has no rotation


@pytest.mark.parametrize("change", ["window one short", "no window", "one RoPE base"])
def test_gemma3_window_and_rope_bases_are_checked(tmp_path, change):
    """The check has teeth where Gemma differs: a window one position short, no window at all,
    or the sliding-window layers on the global RoPE base are all far off."""
    from dataclasses import replace

    from bench.models import gguf_graph
    from bench.models.gguf_model import read_header
    from bench.models.gguf_tensors import GgufTensors

    path, cfg, _, _ = _model(tmp_path, "gemma3-swa")
    assert cfg.swa_layers == (True, False) and cfg.sliding_window == 3
    wrong = {"window one short": replace(cfg, sliding_window=2),
             "no window": replace(cfg, swa_layers=(False, False)),
             "one RoPE base": replace(cfg, rope_base_swa=cfg.rope_base)}[change]
    model, _ = gguf_graph.build_model(wrong, GgufTensors(path, read_header(path)),
                                      accuracy_level=0, logits="all")
    empty = [np.zeros((1, cfg.kv_heads, 0, cfg.head_dim), np.float32)] * (2 * cfg.layers)
    logits, _ = _step(_session(model), cfg, IDS, empty)
    with pytest.raises(AssertionError):
        _close(logits, gguf_reference.forward(path, IDS))


def test_summary_names_packing_widening_and_types(tmp_path):
    *_, summary = _model(tmp_path, "qwen2-k-quants")
    # layer 0's v is Q6_K (blocks of 16): split; layer 1's Q5_0 q/k/v: one matrix
    assert summary["packed_qkv_layers"] == 1
    assert summary["packed_gate_up_layers"] == 2
    assert summary["widened_to_8_bits"] == {"Q5_0": 5, "Q5_K": 1, "Q6_K": 3}
    # every GGUF matrix once under its own type, packed or not (2 layers x 7, table, head)
    assert summary["block_types"] == {"Q4_K": 7, "Q5_0": 5, "Q5_K": 1, "Q6_K": 3}



def test_last_logits_graph_has_one_position(tmp_path):
    _, cfg, model, _ = _model(tmp_path, "llama-q4_1-tied", logits="last")
    empty = [np.zeros((1, cfg.kv_heads, 0, cfg.head_dim), np.float32)] * (2 * cfg.layers)
    logits, _ = _step(_session(model), cfg, IDS, empty)
    assert logits.shape == (1, cfg.vocab)


def test_unsupported_architecture_and_rope_scaling_are_one_line(tmp_path):
    from bench.models.gguf_config import decoder_config

    with pytest.raises(EdgebenchError, match="builds llama, qwen2, gemma3 GGUFs, not phi3"):
        decoder_config({"general.architecture": "phi3"}, set(), 10)
    capped = {"general.architecture": "gemma3", "gemma3.final_logit_softcapping": 30.0,
              "gemma3.embedding_length": 64, "gemma3.attention.head_count": 2,
              "gemma3.block_count": 1}
    with pytest.raises(EdgebenchError, match="caps its logits"):
        decoder_config(capped, set(), 10)
    meta = {"general.architecture": "llama", "llama.rope.scaling.type": "linear"}
    with pytest.raises(EdgebenchError, match="scales RoPE"):
        decoder_config(meta, set(), 10)


# ---------------------------------------------------------------- the real default model (slow)
def _last_logits(folder, ids: list[int]) -> np.ndarray:
    import json

    import onnxruntime as ort

    cfg = json.loads((folder / "genai_config.json").read_text())["model"]["decoder"]
    sess = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    feeds = {"input_ids": np.array([ids], dtype=np.int64),
             "attention_mask": np.ones((1, len(ids)), dtype=np.int64)}
    for i in range(cfg["num_hidden_layers"]):
        for kind in ("key", "value"):
            feeds[f"past_key_values.{i}.{kind}"] = np.zeros(
                (1, cfg["num_key_value_heads"], 0, cfg["head_size"]), np.float32)
    return sess.run(["logits"], feeds)[0].reshape(-1)


@pytest.mark.slow
def test_gguf_exact_gives_the_dequantized_fp32_models_logits(built_models):
    """The fp32 variant is transformers' dequantization of the same GGUF, through the builder:
    at fp32 activations the carried blocks give its logits to fp32 rounding."""
    ids = [1, 504, 3458, 2636, 314, 7186, 28, 288, 1789, 314, 253, 2223, 30]
    exact = _last_logits(built_models["gguf-exact"], ids)
    ref = _last_logits(built_models["fp32"], ids)
    assert np.abs(exact - ref).max() <= 1e-4 * np.abs(ref).max()
    # the int8-activation build differs by more (its kernels differ between CPUs), but keeps
    # the reference's top choice among its own top three
    fast = _last_logits(built_models["gguf"], ids)
    assert ref.argmax() in np.argsort(fast)[-3:]


@pytest.mark.slow
def test_int8_activations_move_the_logits_little(built_models):
    """gguf (accuracy level 4) against gguf-exact on the chat question test_backends asks: the
    logits move by a small fraction of their range, and the exact top choice stays in the top
    three (here fp32 is nearly tied between 'The' and 'La', so the top one may swap)."""
    from bench.run import prompts

    folder = built_models["gguf"]
    tok = prompts.load_tokenizer(folder)
    ids = prompts.chat_ids(prompts.compile_chat(folder), tok, "You are a helpful assistant.",
                           "What is the capital of France?")
    exact = _last_logits(built_models["gguf-exact"], ids)
    fast = _last_logits(folder, ids)
    assert np.abs(fast - exact).max() < 0.1 * (exact.max() - exact.min())
    assert exact.argmax() in np.argsort(fast)[-3:]


@pytest.mark.slow
def test_the_variant_builds_without_torch_transformers_or_gguf(built_models, default_recipe,
                                                             tmp_path):
    """What a board or a fresh machine has: numpy, onnx, onnxruntime, tokenizers."""
    import json
    import subprocess
    import sys

    from bench.models import sources

    gguf_path, _ = sources._from_cache(default_recipe, lambda _msg: None)
    script = ("import sys\n"
              "for name in ('torch', 'transformers', 'gguf', 'onnxruntime_genai'):\n"
              "    sys.modules[name] = None  # any import of them fails\n"
              "from bench.cli import main\n"
              "sys.exit(main(sys.argv[1:]))\n")
    env = {**__import__("os").environ, "EDGEBENCH_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-c", script, "models", "build", default_recipe.id,
                           "--variant", "gguf", "--gguf", str(gguf_path)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    folder = tmp_path / "cache" / "models" / default_recipe.id / "gguf"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["precision"] == "gguf" and manifest["source_quant"] == "Q4_1"
    assert manifest["gguf_blocks"]["block_types"] == {"Q4_1": 210, "Q8_0": 1}
    assert manifest["gguf_blocks"]["widened_to_8_bits"] == {}
    assert manifest["gguf_blocks"]["packed_qkv_layers"] == 30
    assert manifest["weight_bytes_per_token"] > 0
    built = built_models["gguf"]
    for name in ("model.onnx.data", "tokenizer.json", "genai_config.json"):
        assert (folder / name).read_bytes() == (built / name).read_bytes(), name


def test_split_paths_are_used_where_layouts_differ(tmp_path):
    *_, summary = _model(tmp_path, "llama-float-tables")
    assert summary["packed_gate_up_layers"] == 0 and summary["packed_qkv_layers"] == 2
