"""A recipe's Hugging Face folder (built by `edgebench models build`) as a model record for the
`torch` backend: a ModelRecord, so rows are built as for any other model.

Opening reads only JSON and the safetensors headers (no torch): the weights' sha256 is computed
once and cached beside them keyed by size and mtime, and the footprint comes from the tensor
shapes at the chosen dtype.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

from bench import paths
from bench.errors import EdgebenchError
from bench.models.folder import ModelRecord, sha256_file
from bench.models.footprint import WeightFootprint

HF_VARIANTS = {"fp32": 4, "bf16": 2}  # variant -> bytes per floating-point parameter
DIGEST_CACHE = ".edgebench-sha256.json"
_FLOAT_DTYPES = {"F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2"}  # cast to the variant's dtype
_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
                "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}


@dataclass(frozen=True)
class HfModel(ModelRecord):
    """A recipe's Hugging Face folder as `path`; variant "fp32" or "bf16" is the dtype torch
    loads the weights in; model_sha256 is the safetensors file's (shards: see weights_sha256)."""

    logits: str = "last"  # the torch backend computes the last position's logits only
    runtime: str = "hf"


def hf_dir(recipe_id: str) -> Path:
    return paths.cache_dir() / "hf" / recipe_id


def check_hf_variant(variant: str) -> str:
    if variant not in HF_VARIANTS:
        raise EdgebenchError(f"the torch backend runs variant fp32 or bf16 of the Hugging Face "
                             f"model, not {variant!r}")
    return variant


def open_recipe_hf(recipe_id: str, variant: str) -> HfModel:
    """The recipe's HF folder in the cache, or one line saying how to build it."""
    from bench.models.recipes import get_recipe

    check_hf_variant(variant)
    recipe = get_recipe(recipe_id)
    path = hf_dir(recipe_id)
    if not (path / "config.json").is_file():
        raise EdgebenchError(f"the Hugging Face folder of {recipe_id} ({path}) is not built; run "
                             f"'edgebench models build {recipe_id}'")
    source = getattr(recipe, "source", None)
    quant = recipe.source_quant if recipe.weights == "real" else None
    return open_hf_folder(path, variant, model_id=recipe_id,
                          source_sha256=getattr(source, "sha256", None), source_quant=quant)


def open_hf_folder(path: Path, variant: str, *, model_id: str | None = None,
                   source_sha256: str | None = None, source_quant: str | None = None) -> HfModel:
    """Any HF folder with config.json and safetensors weights (tests, folders built elsewhere)."""
    check_hf_variant(variant)
    config = _read_json(path / "config.json", required=True)
    generation = _read_json(path / "generation_config.json", required=False)
    shards = safetensors_files(path)
    text = config.get("text_config") if isinstance(config.get("text_config"), dict) else config
    eos = generation.get("eos_token_id", text.get("eos_token_id", config.get("eos_token_id")))
    eos_ids = tuple(int(e) for e in ([eos] if isinstance(eos, int) else (eos or [])))
    bos = generation.get("bos_token_id", text.get("bos_token_id", config.get("bos_token_id")))
    return HfModel(
        path=path, model_id=model_id or path.name, variant=variant, precision=variant,
        model_sha256=weights_sha256(shards), source_sha256=source_sha256,
        size_bytes=sum(p.stat().st_size for p in path.iterdir()
                       if p.is_file() and not p.name.startswith(DIGEST_CACHE)),
        context_length=int(text.get("max_position_embeddings", 0) or 0),
        vocab_size=int(text.get("vocab_size", 0) or 0),
        bos_token_id=int(bos) if isinstance(bos, int) else None,
        eos_token_ids=eos_ids, source_quant=source_quant,
        footprint=_footprint_or_none(shards, text, variant),
        tokenizer_dir=path if (path / "tokenizer.json").is_file() else None)


def _read_json(file: Path, *, required: bool) -> dict:
    try:
        data = json.loads(file.read_text())
    except FileNotFoundError:
        if required:
            raise EdgebenchError(f"{file} is missing: the Hugging Face folder is incomplete; "
                                 "rebuild it with 'edgebench models build MODEL --force'") from None
        return {}
    except (OSError, ValueError) as exc:
        raise EdgebenchError(f"{file} is unreadable or corrupt ({exc}); rebuild it with "
                             "'edgebench models build MODEL --force'") from None
    return data if isinstance(data, dict) else {}


def safetensors_files(path: Path) -> list[Path]:
    files = sorted(path.glob("*.safetensors"))
    if not files:
        raise EdgebenchError(f"{path} has no .safetensors weights; rebuild it with "
                             "'edgebench models build MODEL --force'")
    return files


def weights_sha256(files: list[Path]) -> str:
    """One file: its sha256. Several shards: the sha256 of their 'name digest' lines, sorted
    by name, so the value names exactly the weights that run. Digests are cached beside the
    weights (keyed by size and mtime), so only the first open of a folder reads them."""
    digests = [_cached_digest(f) for f in files]
    if len(files) == 1:
        return digests[0]
    import hashlib

    lines = "".join(f"{f.name} {d}\n" for f, d in zip(files, digests))
    return hashlib.sha256(lines.encode()).hexdigest()


def _cached_digest(file: Path) -> str:
    cache_file = file.parent / DIGEST_CACHE
    try:
        cache = json.loads(cache_file.read_text())
        cache = cache if isinstance(cache, dict) else {}
    except (OSError, ValueError):
        cache = {}
    stat = file.stat()
    key = {"size_bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    entry = cache.get(file.name)
    if isinstance(entry, dict) and all(entry.get(k) == v for k, v in key.items()) and isinstance(
            entry.get("sha256"), str):
        return entry["sha256"]
    digest = sha256_file(file)
    cache[file.name] = {**key, "sha256": digest}
    try:
        tmp = cache_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(cache, indent=2, sort_keys=True) + "\n")
        tmp.replace(cache_file)
    except OSError:
        pass  # a read-only folder: hash again next time
    return digest


def safetensors_header(file: Path) -> dict[str, dict]:
    """Tensor name -> {"dtype", "shape", ...}, from the file's JSON header (no weights read)."""
    try:
        with open(file, "rb") as fh:
            (length,) = struct.unpack("<Q", fh.read(8))
            if length > 100 * 1024 * 1024:
                raise ValueError("header length implausible")
            header = json.loads(fh.read(length))
    except (OSError, ValueError, struct.error) as exc:
        raise EdgebenchError(f"{file} is not a readable safetensors file ({exc}); rebuild it "
                             "with 'edgebench models build MODEL --force'") from None
    return {k: v for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)}


def hf_footprint(files: list[Path], config: dict, variant: str) -> WeightFootprint:
    """Bytes one decode step reads with torch at `variant`'s dtype (floating tensors are cast
    to it on load): every 2-D weight matrix, the LM head (the embedding table again when the
    two are tied), one row of the embedding table, and the KV cache per context token."""
    import math

    element = HF_VARIANTS[check_hf_variant(variant)]
    vocab = int(config.get("vocab_size", 0) or 0)
    matrices = 0
    row = 0
    table_bytes = 0
    has_head = False
    for file in files:
        for name, info in safetensors_header(file).items():
            shape = [int(d) for d in info.get("shape", [])]
            dtype = str(info.get("dtype", ""))
            size = math.prod(shape) * (element if dtype in _FLOAT_DTYPES
                                       else _DTYPE_BYTES.get(dtype, 0))
            if len(shape) != 2:
                continue  # norms and biases: not counted, as in the ONNX footprint
            if "embed_tokens" in name or (shape[0] == vocab and "embed" in name):
                table_bytes += size
                row += size // max(shape[0], 1)
            else:
                has_head = has_head or name.endswith("lm_head.weight")
                matrices += size
    if not has_head and config.get("tie_word_embeddings", True):
        matrices += table_bytes  # the tied head reads the whole table every step
    layers = int(config.get("num_hidden_layers", 0) or 0)
    heads = int(config.get("num_attention_heads", 0) or 0)
    kv_heads = int(config.get("num_key_value_heads", heads) or 0)
    head_dim = int(config.get("head_dim") or (int(config.get("hidden_size", 0) or 0)
                                              // max(heads, 1)))
    kv = layers * 2 * kv_heads * head_dim * element
    return WeightFootprint(matrices + row, row, kv or None)


def _footprint_or_none(files: list[Path], config: dict, variant: str) -> WeightFootprint | None:
    """Best effort, like the ONNX footprint: an odd header leaves the roofline columns empty."""
    try:
        return hf_footprint(files, config, variant)
    except (EdgebenchError, ValueError, TypeError):
        return None
