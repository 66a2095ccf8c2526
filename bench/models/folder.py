"""Built model folders: where they live, their manifest, and the checks before a session opens.

Running a model built elsewhere needs only this module (no torch): a folder is checked for
missing files, sizes and sha256 against its manifest before any session is created.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import paths
from bench.errors import EdgebenchError
from bench.models.footprint import WeightFootprint

MANIFEST = "manifest.json"
REQUIRED_FILES = ("genai_config.json", "model.onnx", "tokenizer.json")

# Which positions the LM head computes. Benchmarks need only the last position's logits, and the
# head over every prompt position cost 15-20% of prefill (docs/models.md), so "last" is the
# default and keeps the plain folder name; quality scoring (bits per byte, KL divergence) needs
# "all", a separate build of the same weights in its own folder. The head is part of the key.
LOGITS = ("last", "all")
HEAD_BUILDER_OPTIONS = {"last": {"prune_lm_head": "true"}, "all": {"prune_lm_head": "false"}}
_FOLDER_SUFFIX = {"last": "", "all": "+all-logits"}
# A manifest's "weights": the real weights, or random ones of a real architecture (speed only).
WEIGHTS = ("real", "synthetic")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_logits(logits: str) -> str:
    if logits not in LOGITS:
        raise EdgebenchError(f"logits must be one of {', '.join(LOGITS)}, not {logits!r}")
    return logits


def variant_dir(recipe_id: str, variant: str, *, logits: str = "last") -> Path:
    """`<cache>/models/<id>/<variant>` for benchmark builds, `<variant>+all-logits` otherwise."""
    return paths.models_dir() / recipe_id / (variant + _FOLDER_SUFFIX[check_logits(logits)])


def _read_manifest(path: Path) -> dict | None:
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def build_state(recipe_id: str, variant: str, *, logits: str = "last") -> str:
    """"built", "missing", or "stale": a manifest from before the head was recorded (or for
    another head) is stale, so `models build` rebuilds it instead of benchmarking a full head."""
    path = variant_dir(recipe_id, variant, logits=logits)
    if not (path / MANIFEST).exists():
        return "missing"
    manifest = _read_manifest(path)
    return "built" if manifest is not None and manifest.get("logits") == logits else "stale"


def is_built(recipe_id: str, variant: str, *, logits: str = "last") -> bool:
    return build_state(recipe_id, variant, logits=logits) == "built"


def open_built_variant(model_id: str, variant: str, *, logits: str = "last") -> "ModelFolder":
    """A recipe's built variant, checked; a clear error saying how to build it when it is not."""
    from bench.models.recipes import get_recipe

    get_recipe(model_id).variant(variant)
    state = build_state(model_id, variant, logits=logits)
    if state != "built":
        what = "is not built" if state == "missing" else (
            "was built by an older edgebench that did not record its LM head")
        how = f"run 'edgebench models build {model_id} --variant {variant}" + (
            "'" if logits == "last" else " --logits all'")
        raise EdgebenchError(f"model {model_id} variant {variant} (logits={logits}) {what}; "
                             f"{how} first")
    return open_model_folder(variant_dir(model_id, variant, logits=logits))


def write_manifest(folder: Path, *, model_id: str, variant: str, precision: str, logits: str,
                   builder: str, builder_options: dict[str, str], source_sha256: str | None,
                   source_quant: str | None, **extra: Any) -> None:
    """A freshly built folder's manifest: what it was built from and with, each file's size,
    the model files' sha256, `extra` entries and the bytes a decode step reads (the roofline)."""
    from datetime import datetime, timezone

    from bench.models.footprint import manifest_entries

    files = {p.name: p.stat().st_size for p in sorted(folder.iterdir()) if p.is_file()}
    manifest = {
        "model_id": model_id, "variant": variant, "precision": precision, "logits": logits,
        "builder_options": builder_options, "source_sha256": source_sha256, "builder": builder,
        "built_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "files": files,
        "sha256": {name: sha256_file(folder / name) for name in files
                   if name.startswith("model.onnx")},
        "weights": "real", "source_quant": source_quant,
        **extra,
        **manifest_entries(folder),
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


@dataclass(frozen=True)
class ModelRecord:
    """What every runnable model tells the results rows, whatever runs it: an ONNX folder
    (ModelFolder), a GGUF file (GgufModel) or a Hugging Face folder (HfModel)."""

    path: Path
    model_id: str
    variant: str
    precision: str
    model_sha256: str  # sha256 of the file that is run (model.onnx, the GGUF, the safetensors)
    source_sha256: str | None
    size_bytes: int
    context_length: int
    vocab_size: int
    bos_token_id: int | None
    eos_token_ids: tuple[int, ...]
    # "last": the head computes only the last position (prefill returns logits for one
    # position); "all": every position, which quality scoring needs; "unknown": a folder whose
    # manifest does not say (built elsewhere or by an older edgebench): check the logits' shape.
    logits: str = "unknown"
    # "real" weights or "synthetic" (random weights of a real architecture: speed only)
    weights: str = "real"
    source_quant: str | None = None  # the source weights' quantisation (Q4_K_M...), if known
    # what one decode step reads (docs/roofline.md): from the manifest, else the graph, else None
    footprint: WeightFootprint | None = None
    runtime: str = "onnx"  # what can run it: "onnx", "gguf" (llama.cpp) or "hf" (torch)
    # where tokenizer.json and the chat template are when not in `path` (a GGUF's), or None
    tokenizer_dir: Path | None = None


@dataclass(frozen=True)
class ModelFolder(ModelRecord):
    """A checked ONNX model folder (model.onnx, genai_config.json, tokenizer, manifest)."""


def _says_synthetic(manifest: Path) -> bool:
    try:
        return json.loads(manifest.read_text()).get("weights") == "synthetic"
    except (OSError, ValueError, AttributeError):
        return False


def open_model_folder(path: Path, *, verify_hashes: bool = True) -> ModelFolder:
    """Checks a folder before any session is created: missing or corrupt files fail here."""
    if not path.is_dir():
        raise EdgebenchError(f"model folder {path} does not exist; build it with "
                             "'edgebench models build MODEL' or copy a built folder there")
    synthetic = _says_synthetic(path / MANIFEST)
    missing = [f for f in REQUIRED_FILES if not (path / f).exists()
               and not (synthetic and f == "tokenizer.json")]  # random weights have no tokenizer
    if missing:
        raise EdgebenchError(f"model folder {path} is missing {', '.join(missing)}; "
                             "rebuild it with 'edgebench models build MODEL --force'")
    try:
        genai = json.loads((path / "genai_config.json").read_text())["model"]
    except (ValueError, KeyError) as exc:
        raise EdgebenchError(f"{path / 'genai_config.json'} is corrupt ({exc}); rebuild the "
                             "model with 'edgebench models build MODEL --force'") from None
    manifest_path = path / MANIFEST
    manifest = {}
    if manifest_path.exists():
        try:
            manifest = json.loads(manifest_path.read_text())
        except ValueError:
            raise EdgebenchError(f"{manifest_path} is corrupt; rebuild the model") from None
        for name, size in manifest.get("files", {}).items():
            f = path / name
            if not f.exists() or f.stat().st_size != size:
                raise EdgebenchError(
                    f"{f} is missing or has the wrong size (manifest says {size} bytes): the "
                    "folder is incomplete or corrupt; rebuild with 'edgebench models build "
                    "MODEL --force' or copy it again")
        if verify_hashes:
            for name, digest in manifest.get("sha256", {}).items():
                if sha256_file(path / name) != digest:
                    raise EdgebenchError(
                        f"{path / name} does not match the sha256 in {MANIFEST}: the file is "
                        "corrupt; rebuild with 'edgebench models build MODEL --force'")
    model_sha = manifest.get("sha256", {}).get("model.onnx") or sha256_file(path / "model.onnx")
    eos = genai.get("eos_token_id", [])
    return ModelFolder(
        path=path,
        model_id=manifest.get("model_id", path.parent.name if path.parent.name else path.name),
        variant=manifest.get("variant", path.name),
        precision=_precision_label(manifest) if manifest else "unknown",
        model_sha256=model_sha,
        source_sha256=manifest.get("source_sha256"),
        size_bytes=sum(p.stat().st_size for p in path.iterdir() if p.is_file()),
        context_length=int(genai.get("context_length", 0)),
        vocab_size=int(genai.get("vocab_size", 0)),
        bos_token_id=genai.get("bos_token_id"),
        eos_token_ids=tuple([eos] if isinstance(eos, int) else eos),
        logits=manifest.get("logits") if manifest.get("logits") in LOGITS else "unknown",
        weights=manifest.get("weights") if manifest.get("weights") in WEIGHTS else "real",
        source_quant=str(manifest["source_quant"]) if manifest.get("source_quant") else None,
        footprint=WeightFootprint.from_manifest(manifest) or _graph_footprint(path),
    )


def _graph_footprint(path: Path) -> WeightFootprint | None:
    """A folder built before the manifest held the footprint: read the graph when `onnx` is
    installed; the roofline columns stay empty otherwise. Best effort: it never blocks a run."""
    try:
        from bench.models.footprint import weight_bytes_per_token

        return weight_bytes_per_token(path)
    except Exception:  # ImportError without the convert extra, or a graph onnx cannot parse
        return None


def _precision_label(manifest: dict) -> str:
    opts = manifest.get("builder_options", {})
    label = manifest.get("precision", "unknown")
    if "block_size" in opts:
        label += f"-b{opts['block_size']}"
    if "accuracy_level" in opts:
        label += f"-acc{opts['accuracy_level']}"
    return label


def folder_size_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file())
