"""A llama / qwen2 decoder in plain numpy on a GGUF's weights, as llama.cpp defines it: the
reference the `gguf` variant's ONNX graph is checked against. Weights come from the `gguf`
package's reader and its reference dequantization, not from edgebench's code, and RoPE follows
llama.cpp's two modes (NORM for llama: adjacent pairs; NEOX for qwen2: halves)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def load(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    import gguf

    reader = gguf.GGUFReader(str(path))
    meta = {}
    for key, field in reader.fields.items():
        if field.types and field.types[0] != gguf.GGUFValueType.ARRAY:
            value = field.parts[field.data[0]]
            meta[key] = (bytes(value).decode() if field.types[0] == gguf.GGUFValueType.STRING
                         else value.item())
    weights = {}
    for t in reader.tensors:
        data = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float64)
        weights[t.name] = data.reshape([int(d) for d in reversed(t.shape)])
    return meta, weights


def _rms(x: np.ndarray, w: np.ndarray, eps: float) -> np.ndarray:
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def _rope(x: np.ndarray, positions: np.ndarray, base: float, neox: bool) -> np.ndarray:
    """x [heads, seq, d]."""
    d = x.shape[-1]
    theta = positions[:, None] * base ** (-np.arange(0, d, 2) / d)  # [seq, d/2]
    cos, sin = np.cos(theta), np.sin(theta)
    if neox:
        x0, x1 = x[..., : d // 2], x[..., d // 2:]
        return np.concatenate([x0 * cos - x1 * sin, x0 * sin + x1 * cos], axis=-1)
    x0, x1 = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = x0 * cos - x1 * sin
    out[..., 1::2] = x0 * sin + x1 * cos
    return out


def forward(path: Path, ids: list[int]) -> np.ndarray:
    """Logits [len(ids), vocab] in float64."""
    meta, w = load(path)
    arch = meta["general.architecture"]
    layers = meta[f"{arch}.block_count"]
    heads, kv_heads = meta[f"{arch}.attention.head_count"], meta[f"{arch}.attention.head_count_kv"]
    eps = meta[f"{arch}.attention.layer_norm_rms_epsilon"]
    base = meta.get(f"{arch}.rope.freq_base", 10000.0)
    neox = arch != "llama"
    x = w["token_embd.weight"][ids]
    seq, hidden = x.shape
    d = hidden // heads
    pos = np.arange(seq, dtype=np.float64)
    mask = np.triu(np.full((seq, seq), -np.inf), 1)
    for i in range(layers):
        p = f"blk.{i}."
        h = _rms(x, w[p + "attn_norm.weight"], eps)
        q, k, v = (h @ w[p + f"attn_{n}.weight"].T + w.get(p + f"attn_{n}.bias", 0.0)
                   for n in "qkv")
        q = _rope(q.reshape(seq, heads, d).transpose(1, 0, 2), pos, base, neox)
        k = _rope(k.reshape(seq, kv_heads, d).transpose(1, 0, 2), pos, base, neox)
        v = v.reshape(seq, kv_heads, d).transpose(1, 0, 2)
        rep = heads // kv_heads
        k, v = np.repeat(k, rep, axis=0), np.repeat(v, rep, axis=0)
        scores = q @ k.transpose(0, 2, 1) / np.sqrt(d) + mask
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        attn = (scores / scores.sum(-1, keepdims=True)) @ v
        x = x + attn.transpose(1, 0, 2).reshape(seq, hidden) @ w[p + "attn_output.weight"].T
        h = _rms(x, w[p + "ffn_norm.weight"], eps)
        gate, up = h @ w[p + "ffn_gate.weight"].T, h @ w[p + "ffn_up.weight"].T
        x = x + (gate / (1 + np.exp(-gate)) * up) @ w[p + "ffn_down.weight"].T
    x = _rms(x, w["output_norm.weight"], eps)
    return x @ w.get("output.weight", w["token_embd.weight"]).T
