"""The `gguf` variant's graph against a numpy decoder on the same GGUF (tests/gguf_reference.py).

Tiny random llama and qwen2 GGUFs cover every path of the graph: packed and split q/k/v and
gate/up, affine (Q4_1, Q4_K) and symmetric types, widened 5- and 6-bit blocks, a quantized,
affine and float embedding table, tied and separate heads, qwen2's biases, both RoPE modes,
prefill and a decode step on the KV cache. At accuracy level 0 (fp32 activations) the logits
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
    # Q4_K_M-like: v and down differ per layer (split q/k/v), affine K-quant embedding, head Q6_K
    "qwen2-k-quants": ("qwen2", {"token_embd.weight": "Q4_K", "attn_q.weight": "Q5_0",
                                 "attn_k.weight": "Q5_0", "blk.0.attn_v.weight": "Q8_0",
                                 "blk.1.attn_v.weight": "Q5_0", "ffn_gate.weight": "Q4_K",
                                 "ffn_up.weight": "Q4_K", "blk.0.ffn_down.weight": "Q6_K",
                                 "blk.1.ffn_down.weight": "Q5_K", "attn_output.weight": "Q4_K",
                                 "output.weight": "Q6_K"}, False),
    # float matrices where a file keeps them: F16 embedding (tied), F32 output projection
    "llama-float-tables": ("llama", {"token_embd.weight": "F16", "attn_output.weight": "F32",
                                     "ffn_up.weight": "Q5_0"}, True),
}


def _model(tmp_path, case: str, logits: str = "all", accuracy_level: int = 0):
    from bench.models.gguf_config import decoder_config
    from bench.models.gguf_graph import build_model
    from bench.models.gguf_model import read_header
    from bench.models.gguf_tensors import GgufTensors

    arch, types, tied = CASES[case]
    path = write_decoder(tmp_path / f"{case}.gguf", arch, types, tied=tied, seed=len(case))
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


def test_summary_names_packing_widening_and_types(tmp_path):
    *_, summary = _model(tmp_path, "qwen2-k-quants")
    assert summary["packed_qkv_layers"] == 1  # layer 0's v is Q8_0: split
    assert summary["packed_gate_up_layers"] == 2
    assert summary["widened_from"]["Q5_0 (5-bit)"] >= 1
    assert summary["widened_from"]["Q6_K (6-bit)"] == 2  # blk.0 down + head
    assert summary["block_types"]["Q4_K"] >= 5


def test_last_logits_graph_has_one_position(tmp_path):
    _, cfg, model, _ = _model(tmp_path, "llama-q4_1-tied", logits="last")
    empty = [np.zeros((1, cfg.kv_heads, 0, cfg.head_dim), np.float32)] * (2 * cfg.layers)
    logits, _ = _step(_session(model), cfg, IDS, empty)
    assert logits.shape == (1, cfg.vocab)


def test_unsupported_architecture_and_rope_scaling_are_one_line(tmp_path):
    from bench.models.gguf_config import decoder_config

    with pytest.raises(EdgebenchError, match="builds llama, qwen2 GGUFs, not gemma3"):
        decoder_config({"general.architecture": "gemma3"}, set(), 10)
    meta = {"general.architecture": "llama", "llama.rope.scaling.type": "linear"}
    with pytest.raises(EdgebenchError, match="scales RoPE"):
        decoder_config(meta, set(), 10)
