"""A llama / qwen2 / gemma3 decoder in plain numpy on a GGUF's weights, as llama.cpp defines
it: the reference the `gguf` variant's ONNX graph is checked against. Weights come from the `gguf`
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


def _gelu_tanh(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))


def forward(path: Path, ids: list[int]) -> np.ndarray:
    """Logits [len(ids), vocab] in float64."""
    meta, w = load(path)
    arch = meta["general.architecture"]
    gemma = arch == "gemma3"
    layers = meta[f"{arch}.block_count"]
    heads, kv_heads = meta[f"{arch}.attention.head_count"], meta[f"{arch}.attention.head_count_kv"]
    eps = meta[f"{arch}.attention.layer_norm_rms_epsilon"]
    base = meta.get(f"{arch}.rope.freq_base", 10000.0)
    neox = arch != "llama"
    x = w["token_embd.weight"][ids]
    seq, hidden = x.shape
    if gemma:  # llama.cpp src/models/gemma3.cpp
        x = x * np.sqrt(hidden)
    d = meta.get(f"{arch}.attention.key_length", hidden // heads)
    window = meta.get(f"{arch}.attention.sliding_window", 0) if gemma else 0
    pattern = meta.get(f"{arch}.attention.sliding_window_pattern", 6)
    pos = np.arange(seq, dtype=np.float64)
    causal = np.triu(np.full((seq, seq), -np.inf), 1)
    # llama.cpp's is_masked_swa: key j is hidden from query i when i - j >= window
    far = np.where(pos[:, None] - pos[None, :] >= window, -np.inf, 0.0) if window else 0.0
    for i in range(layers):
        p = f"blk.{i}."
        swa = bool(window) and i % pattern < pattern - 1
        base_l = meta.get(f"{arch}.rope.freq_base_swa", 10000.0) if swa else base
        mask = causal + far if swa else causal
        h = _rms(x, w[p + "attn_norm.weight"], eps)
        q, k, v = (h @ w[p + f"attn_{n}.weight"].T + w.get(p + f"attn_{n}.bias", 0.0)
                   for n in "qkv")
        q, k = q.reshape(seq, heads, d), k.reshape(seq, kv_heads, d)
        if gemma:
            q = _rms(q, w[p + "attn_q_norm.weight"], eps)
            k = _rms(k, w[p + "attn_k_norm.weight"], eps)
        q = _rope(q.transpose(1, 0, 2), pos, base_l, neox)
        k = _rope(k.transpose(1, 0, 2), pos, base_l, neox)
        v = v.reshape(seq, kv_heads, d).transpose(1, 0, 2)
        rep = heads // kv_heads
        k, v = np.repeat(k, rep, axis=0), np.repeat(v, rep, axis=0)
        scores = q @ k.transpose(0, 2, 1) / np.sqrt(d) + mask
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        attn = (scores / scores.sum(-1, keepdims=True)) @ v
        out = attn.transpose(1, 0, 2).reshape(seq, heads * d) @ w[p + "attn_output.weight"].T
        x = x + (_rms(out, w[p + "post_attention_norm.weight"], eps) if gemma else out)
        h = _rms(x, w[p + "ffn_norm.weight"], eps)
        gate, up = h @ w[p + "ffn_gate.weight"].T, h @ w[p + "ffn_up.weight"].T
        act = _gelu_tanh(gate) if gemma else gate / (1 + np.exp(-gate))
        down = (act * up) @ w[p + "ffn_down.weight"].T
        x = x + (_rms(down, w[p + "post_ffw_norm.weight"], eps) if gemma else down)
    x = _rms(x, w["output_norm.weight"], eps)
    return x @ w.get("output.weight", w["token_embd.weight"]).T
