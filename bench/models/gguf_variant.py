"""The `gguf` variant: a recipe's GGUF carried into an ONNX Runtime GenAI folder without loss.

The other variants dequantize the GGUF to fp32 (transformers, torch) and quantize it again; this
one keeps the file's own blocks (gguf_blocks, gguf_graph) and needs only numpy and onnx, so a
fresh machine or a board builds it in seconds. The folder has what the builder's folders have:
model.onnx + model.onnx.data, genai_config.json, the tokenizer files (gguf_tokenizer) and the
manifest, which also records every block type, which were widened to 8 bits and the accuracy
level MatMulNBits runs at.
"""

from __future__ import annotations

import json
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, Callable

from bench.errors import EdgebenchError
from bench.models.folder import variant_dir, write_manifest
from bench.models.gguf_config import DecoderConfig, decoder_config
from bench.models.sources import staging

Progress = Callable[[str], None]
PRECISION = "gguf"  # a recipe variant with this precision is built here, not by the builder
DEFAULT_ACCURACY_LEVEL = 4  # int8 activations, as the int4 variants run (speed); 0 = fp32


def genai_config(cfg: DecoderConfig) -> dict[str, Any]:
    """genai_config.json as onnxruntime-genai's builder writes it for this decoder."""
    eos: Any = list(cfg.eos_token_ids) if len(cfg.eos_token_ids) > 1 else (
        cfg.eos_token_ids[0] if cfg.eos_token_ids else None)
    pad = cfg.pad_token_id if cfg.pad_token_id is not None else (
        cfg.eos_token_ids[0] if cfg.eos_token_ids else 0)
    return {
        "model": {
            "bos_token_id": cfg.bos_token_id, "context_length": cfg.context_length,
            "decoder": {
                "session_options": {"log_id": "onnxruntime-genai", "provider_options": []},
                "filename": "model.onnx", "head_size": cfg.head_dim,
                "hidden_size": cfg.hidden,
                "inputs": {"input_ids": "input_ids", "attention_mask": "attention_mask",
                           "past_key_names": "past_key_values.%d.key",
                           "past_value_names": "past_key_values.%d.value"},
                "outputs": {"logits": "logits", "present_key_names": "present.%d.key",
                            "present_value_names": "present.%d.value"},
                "num_attention_heads": cfg.heads, "num_hidden_layers": cfg.layers,
                "num_key_value_heads": cfg.kv_heads},
            "eos_token_id": eos, "pad_token_id": pad, "type": cfg.genai_type,
            "vocab_size": cfg.vocab},
        "search": {"diversity_penalty": 0.0, "do_sample": False, "early_stopping": True,
                   "length_penalty": 1.0, "max_length": cfg.context_length, "min_length": 0,
                   "no_repeat_ngram_size": 0, "num_beams": 1, "num_return_sequences": 1,
                   "past_present_share_buffer": True, "repetition_penalty": 1.0,
                   "temperature": 1.0, "top_k": 50, "top_p": 1.0},
    }


def write_gguf_folder(gguf: Path, out: Path, *, accuracy_level: int, logits: str,
                      progress: Progress) -> dict[str, Any]:
    """model.onnx(+data), genai_config.json and tokenizer files into `out`; returns the
    manifest entries that describe the weights."""
    try:
        import onnx
    except ImportError:
        raise EdgebenchError("building the gguf variant needs the onnx package: pip install "
                             "'edgebench[gguf]'") from None
    from bench.models.gguf_graph import build_model
    from bench.models.gguf_model import read_header
    from bench.models.gguf_tensors import GgufTensors
    from bench.models.gguf_tokenizer import ARRAYS, write_tokenizer_files

    header = read_header(gguf, ARRAYS)  # once: the tensors, and the vocabulary in full
    tensors = GgufTensors(gguf, header)
    embd = tensors.info("token_embd.weight")
    cfg = decoder_config(header.metadata, set(tensors.infos), int(embd.dims[-1]))
    progress(f"carrying {gguf.name}'s blocks into MatMulNBits ({cfg.arch}, {cfg.layers} layers, "
             f"accuracy level {accuracy_level})")
    model, summary = build_model(cfg, tensors, accuracy_level=accuracy_level, logits=logits)
    try:
        onnx.save_model(model, str(out / "model.onnx"), save_as_external_data=True,
                        all_tensors_to_one_file=True, location="model.onnx.data",
                        size_threshold=1024)
    except OSError as exc:
        raise EdgebenchError(f"writing {out / 'model.onnx'} failed ({exc}); free disk space "
                             "and build again") from None
    del model
    (out / "genai_config.json").write_text(json.dumps(genai_config(cfg), indent=4) + "\n")
    write_tokenizer_files(gguf, out, header.metadata)
    return {"gguf_blocks": summary, "architecture": cfg.arch}


def build_gguf_variant(recipe: Any, variant: Any, gguf: Path, progress: Progress, *,
                       logits: str = "last") -> Path:
    """The recipe's `gguf` variant in the user cache (staged: an interrupted build leaves
    nothing that looks finished)."""
    final = variant_dir(recipe.id, variant.name, logits=logits)
    level = (variant.accuracy_level if variant.accuracy_level is not None
             else DEFAULT_ACCURACY_LEVEL)
    with staging(final) as tmp:
        entries = write_gguf_folder(gguf, tmp, accuracy_level=level, logits=logits,
                                    progress=progress)
        write_manifest(tmp, model_id=recipe.id, variant=variant.name, precision=PRECISION,
                       logits=logits, builder_options={"accuracy_level": str(level)},
                       source_sha256=recipe.source.sha256,
                       builder="edgebench gguf variant "
                               f"(onnx {importlib_metadata.version('onnx')})",
                       source_quant=recipe.source_quant, **entries)
    return final
