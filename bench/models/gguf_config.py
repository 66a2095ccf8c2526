"""A GGUF's decoder hyperparameters, from its metadata, for the `gguf` variant's graph.

Only what the graph needs, checked once: an architecture the graph does not implement (or a
RoPE scaling it does not apply) is refused in one line here, before any weight is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.errors import EdgebenchError

# GGUF architectures the gguf variant builds. `rope_interleaved`: llama.cpp's converter permutes
# llama's q/k rows into the original interleaved RoPE layout (rope type NORM); qwen2 keeps the
# Hugging Face layout (rope type NEOX: rotate halves).
ARCHITECTURES = {"llama": {"rope_interleaved": True, "qkv_bias": False},
                 "qwen2": {"rope_interleaved": False, "qkv_bias": True}}


@dataclass(frozen=True)
class DecoderConfig:
    arch: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    ffn: int
    vocab: int
    context_length: int
    rms_eps: float
    rope_base: float
    rope_interleaved: bool
    qkv_bias: bool
    tied_head: bool  # no output.weight: the head multiplies by the embedding table
    bos_token_id: int | None
    eos_token_ids: tuple[int, ...]
    pad_token_id: int | None


def _one(meta: dict[str, Any], key: str, default: Any = None) -> Any:
    value = meta.get(key, default)
    if isinstance(value, list):  # per-layer arrays: the graph needs one value for all layers
        if len(set(value)) != 1:
            raise EdgebenchError(f"{key} differs between layers ({sorted(set(value))[:4]}); the "
                                 "gguf variant builds uniform layers only: use the int4 variant")
        value = value[0]
    if value is None:
        raise EdgebenchError(f"the GGUF has no {key} in its header: it is not a complete "
                             "model file; fetch it again")
    return value


def decoder_config(meta: dict[str, Any], tensor_names: set[str], vocab: int) -> DecoderConfig:
    """The config of the GGUF whose header holds `meta`; one line when it is not buildable."""
    arch = str(meta.get("general.architecture", ""))
    if arch not in ARCHITECTURES:
        raise EdgebenchError(
            f"the gguf variant builds {', '.join(ARCHITECTURES)} GGUFs, not {arch or 'this'}; "
            "use the int4 variant (built with the convert extra)")
    scaling = meta.get(f"{arch}.rope.scaling.type")
    if scaling not in (None, "none") or "rope_freqs.weight" in tensor_names:
        raise EdgebenchError(f"this {arch} GGUF scales RoPE ({scaling or 'rope_freqs'}), which "
                             "the gguf variant does not apply; use the int4 variant")
    hidden = int(_one(meta, f"{arch}.embedding_length"))
    heads = int(_one(meta, f"{arch}.attention.head_count"))
    head_dim = int(meta.get(f"{arch}.attention.key_length", hidden // heads))
    rope_dim = int(meta.get(f"{arch}.rope.dimension_count", head_dim))
    if rope_dim != head_dim or int(meta.get(f"{arch}.attention.value_length",
                                            head_dim)) != head_dim:
        raise EdgebenchError(f"this {arch} GGUF has partial RoPE or unequal key/value sizes; "
                             "the gguf variant does not build it: use the int4 variant")
    eos = [meta.get(k) for k in ("tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id")]
    return DecoderConfig(
        arch=arch, layers=int(_one(meta, f"{arch}.block_count")), hidden=hidden, heads=heads,
        kv_heads=int(_one(meta, f"{arch}.attention.head_count_kv", heads)), head_dim=head_dim,
        ffn=int(_one(meta, f"{arch}.feed_forward_length")), vocab=vocab,
        context_length=int(_one(meta, f"{arch}.context_length")),
        rms_eps=float(_one(meta, f"{arch}.attention.layer_norm_rms_epsilon")),
        rope_base=float(meta.get(f"{arch}.rope.freq_base", 10000.0)),
        rope_interleaved=ARCHITECTURES[arch]["rope_interleaved"],
        qkv_bias=ARCHITECTURES[arch]["qkv_bias"],
        tied_head="output.weight" not in tensor_names,
        bos_token_id=meta.get("tokenizer.ggml.bos_token_id"),
        eos_token_ids=tuple(dict.fromkeys(int(e) for e in eos if e is not None)),
        pad_token_id=meta.get("tokenizer.ggml.padding_token_id"))
