"""Tiny GGUF files for tests: valid random blocks of every type edgebench carries, and small
llama / qwen2 / gemma3 decoders written with the `gguf` package's writer (the convert extra)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

LEGACY = ("Q4_0", "Q4_1", "Q5_0", "Q8_0")  # gguf.quants can quantize these
K_QUANTS = ("Q4_K", "Q5_K", "Q6_K")  # random bytes with sane fp16 d (and dmin)


def _fp16_bytes(rng, shape, scale: float = 1.0) -> np.ndarray:
    signs = rng.choice([-1.0, 1.0], size=shape)
    return (signs * scale * rng.uniform(1e-3, 5e-2, size=shape)).astype(np.float16).view(
        np.uint8)


def random_tensor(name: str, n: int, k: int, seed: int = 0, scale: float = 1.0) -> np.ndarray:
    """Valid blocks of GGUF type `name` for an [n, k] weight, as the file's uint8 rows; `scale`
    shrinks the values (a decoder of unit-scale random K-quant weights overflows)."""
    import gguf

    rng = np.random.default_rng(seed)
    qtype = gguf.GGMLQuantizationType[name]
    if name in LEGACY:
        return gguf.quants.quantize((scale * rng.standard_normal((n, k))).astype(np.float32),
                                    qtype)
    elems, type_size = gguf.GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, (n, k // elems, type_size), dtype=np.uint8)
    d = _fp16_bytes(rng, (n, k // elems), scale).reshape(n, k // elems, 2)
    if name == "Q6_K":
        raw[..., 208:210] = d
    else:
        raw[..., 0:2] = d
        raw[..., 2:4] = _fp16_bytes(rng, (n, k // elems), scale).reshape(n, k // elems, 2)
    return raw.reshape(n, -1)


def write_decoder(path: Path, arch: str, types: dict[str, str], *, layers: int = 2,
                  hidden: int = 256, heads: int = 4, kv_heads: int = 2, ffn: int = 512,
                  vocab: int = 96, tied: bool = True, seed: int = 0,
                  head_dim: int | None = None, sliding_window: int = 3,
                  swa_pattern: int = 2) -> Path:
    """A `layers`-deep llama, qwen2 or gemma3 GGUF with random weights. `types` maps a tensor
    name (without the `blk.N.` prefix for layer tensors, or `blk.N.name` for one layer) to its
    GGUF type; unlisted matrices are Q8_0, norms F32. gemma3 gets Gemma's extra norms, a
    key length of `head_dim`, RoPE base 1e6 (10000 in its sliding-window layers) and a
    `sliding_window` over every layer but each `swa_pattern`-th."""
    import gguf

    rng = np.random.default_rng(seed)
    w = gguf.GGUFWriter(str(path), arch)
    gemma = arch == "gemma3"
    w.add_block_count(layers)
    w.add_context_length(64)
    w.add_embedding_length(hidden)
    w.add_feed_forward_length(ffn)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(1e6 if gemma else 10000.0)
    w.add_uint32("tokenizer.ggml.bos_token_id", 1)
    w.add_uint32("tokenizer.ggml.eos_token_id", 2)
    head_dim = head_dim or hidden // heads
    if gemma:
        w.add_uint32(f"{arch}.attention.key_length", head_dim)
        w.add_uint32(f"{arch}.attention.value_length", head_dim)
        w.add_uint32(f"{arch}.attention.sliding_window", sliding_window)
        w.add_uint32(f"{arch}.attention.sliding_window_pattern", swa_pattern)
    counter = iter(range(10_000))

    def matrix(name: str, n: int, k: int) -> None:
        short = name.split(".", 2)[2] if name.startswith("blk.") else name
        kind = types.get(name, types.get(short, "Q8_0"))
        if kind == "F32":
            w.add_tensor(name, (rng.standard_normal((n, k)) * 0.05).astype(np.float32))
        elif kind == "F16":
            w.add_tensor(name, (rng.standard_normal((n, k)) * 0.05).astype(np.float16))
        else:
            raw = random_tensor(kind, n, k, seed=seed * 1000 + next(counter),
                                scale=0.002 if kind in K_QUANTS else 0.05)
            w.add_tensor(name, raw, raw_dtype=gguf.GGMLQuantizationType[kind])

    def vector(name: str, n: int, scale: float = 1.0, centre: float = 0.0) -> None:
        w.add_tensor(name, (centre + scale * rng.standard_normal(n)).astype(np.float32))

    matrix("token_embd.weight", vocab, hidden)
    for i in range(layers):
        p = f"blk.{i}."
        vector(p + "attn_norm.weight", hidden, 0.1, 1.0)
        matrix(p + "attn_q.weight", heads * head_dim, hidden)
        matrix(p + "attn_k.weight", kv_heads * head_dim, hidden)
        matrix(p + "attn_v.weight", kv_heads * head_dim, hidden)
        if arch == "qwen2":
            vector(p + "attn_q.bias", heads * head_dim, 0.1)
            vector(p + "attn_k.bias", kv_heads * head_dim, 0.1)
            vector(p + "attn_v.bias", kv_heads * head_dim, 0.1)
        matrix(p + "attn_output.weight", hidden, heads * head_dim)
        if gemma:
            vector(p + "attn_q_norm.weight", head_dim, 0.1, 1.0)
            vector(p + "attn_k_norm.weight", head_dim, 0.1, 1.0)
            vector(p + "post_attention_norm.weight", hidden, 0.1, 1.0)
            vector(p + "post_ffw_norm.weight", hidden, 0.1, 1.0)
        vector(p + "ffn_norm.weight", hidden, 0.1, 1.0)
        matrix(p + "ffn_gate.weight", ffn, hidden)
        matrix(p + "ffn_up.weight", ffn, hidden)
        matrix(p + "ffn_down.weight", hidden, ffn)
    vector("output_norm.weight", hidden, 0.1, 1.0)
    if not tied:
        matrix("output.weight", vocab, hidden)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
