"""A GGUF's decoder hyperparameters, from its metadata, for the `gguf` variant's graph.

Only what the graph needs, checked once: an architecture the graph does not implement (or a
RoPE scaling it does not apply) is refused in one line here, before any weight is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.errors import EdgebenchError

# GGUF architectures the gguf variant builds. `rope_interleaved`: llama.cpp's converter permutes
# llama's q/k rows into the original interleaved RoPE layout (rope type NORM); qwen2 and gemma3
# keep the Hugging Face layout (rope type NEOX: rotate halves). `genai_type` is the model type
# onnxruntime-genai knows the decoder by (its builder writes gemma3_text for Gemma 3's text part).
ARCHITECTURES = {"llama": {"rope_interleaved": True, "qkv_bias": False, "genai_type": "llama"},
                 "qwen2": {"rope_interleaved": False, "qkv_bias": True, "genai_type": "qwen2"},
                 "gemma3": {"rope_interleaved": False, "qkv_bias": False,
                            "genai_type": "gemma3_text"}}
# Gemma 3 as llama.cpp runs it (src/models/gemma3.cpp, llama-hparams): without a
# sliding_window_pattern key, five of every six layers attend to the last `sliding_window`
# positions only, with RoPE base `rope.freq_base_swa` (default 10000); the others are global.
GEMMA3_SWA_PATTERN = 6
GEMMA3_SWA_ROPE_BASE = 10000.0


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
    genai_type: str = ""
    # Gemma 3 (all neutral for llama and qwen2): token embeddings times sqrt(hidden); RMS norms
    # on q and k per head and after attention and the MLP; GELU (tanh) instead of SiLU; a
    # query scale; sliding-window layers with their own RoPE base.
    gemma: bool = False
    embed_scale: float = 1.0
    attn_scale: float | None = None  # None: 1 / sqrt(head_dim)
    sliding_window: int = 0  # 0: every layer attends to every earlier position
    swa_layers: tuple[bool, ...] = ()  # per layer: a sliding-window layer
    rope_base_swa: float | None = None


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
    layers = int(_one(meta, f"{arch}.block_count"))
    extra = _gemma3(meta, tensor_names, layers, hidden, heads, head_dim) if arch == "gemma3" else {}
    return DecoderConfig(
        arch=arch, layers=layers, hidden=hidden, heads=heads,
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
        pad_token_id=meta.get("tokenizer.ggml.padding_token_id"),
        genai_type=ARCHITECTURES[arch]["genai_type"], **extra)


def _gemma3(meta: dict[str, Any], tensor_names: set[str], layers: int, hidden: int, heads: int,
            head_dim: int) -> dict[str, Any]:
    """Gemma 3's extra settings, as llama.cpp reads them; what it does not build is refused."""
    import math

    if float(meta.get("gemma3.final_logit_softcapping", 0.0) or 0.0) > 0:
        raise EdgebenchError("this gemma3 GGUF caps its logits (final_logit_softcapping), which "
                             "the gguf variant does not apply; use the int4 variant")
    if any(n.startswith(("dense_2", "dense_3")) for n in tensor_names):
        raise EdgebenchError("this gemma3 GGUF is an embedding model (dense_2/dense_3 "
                             "projections); the gguf variant builds decoders only")
    window = int(meta.get("gemma3.attention.sliding_window", 0) or 0)
    pattern = meta.get("gemma3.attention.sliding_window_pattern", GEMMA3_SWA_PATTERN)
    if isinstance(pattern, list):  # one flag per layer
        swa = tuple(bool(v) for v in pattern[:layers]) + (False,) * (layers - len(pattern))
    else:
        n = int(pattern)
        swa = tuple(n == 0 or i % n < n - 1 for i in range(layers))
    # llama.cpp's query scale: 27B (62 layers) uses hidden / heads, the others head_dim
    scale_dim = hidden // heads if layers == 62 else head_dim
    return {"gemma": True, "embed_scale": math.sqrt(hidden),
            "attn_scale": 1.0 / math.sqrt(scale_dim),
            "sliding_window": window, "swa_layers": swa if window > 0 else (False,) * layers,
            "rope_base_swa": float(meta.get("gemma3.rope.freq_base_swa", GEMMA3_SWA_ROPE_BASE))}
