"""GGUF -> Hugging Face folder that onnxruntime-genai's model builder accepts, per architecture.

transformers' GGUF loader dequantizes every block type (Q4_K, Q6_K, Q5_0, Q8_0, ...) to fp32, but
refuses `save_pretrained` on the model it loaded. So the weights are moved (not copied: the new
model is built on the meta device and takes the loaded tensors by assignment) into a fresh model of
the same config without the GGUF quantization marker, which saves normally. Peak memory is one fp32
copy of the model plus what the loader holds while dequantizing.

Only architectures verified end to end (GGUF -> HF -> int4/int8/fp32 -> both backends answer) are
accepted; see docs/convert.md. Each names the class the builder dispatches on and the builder
options it needs, which build.py merges into the variant's options (and so into the manifest).

torch, transformers, gguf and the builder are imported inside the functions that need them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from bench.errors import EdgebenchError

Progress = Callable[[str], None]

_EXTRA = "pip install 'edgebench[convert]'"


@dataclass(frozen=True)
class Architecture:
    gguf: str  # `general.architecture` in the GGUF
    hf_class: str  # `architectures[0]` in config.json: the builder dispatches on it
    # Builder options this architecture needs on top of the variant's; see docs/convert.md.
    builder_options: tuple[tuple[str, str], ...] = ()


ARCHITECTURES: dict[str, Architecture] = {a.gguf: a for a in (
    Architecture("llama", "LlamaForCausalLM"),
    Architecture("qwen2", "Qwen2ForCausalLM"),
    # The builder's default windowed KV cache for sliding-window layers needs a cache of at least
    # the window (512) and ring-buffer indexing: short generations fail in onnxruntime-genai and
    # the ort backend's one full-length buffer per layer does not fit it. With it off, the
    # sliding layers read the full-length cache and GroupQueryAttention masks to the window.
    Architecture("gemma3", "Gemma3ForCausalLM", (("windowed_kv_cache", "false"),)),
)}


def architecture(gguf_arch: str) -> Architecture:
    """The conversion recipe for a GGUF architecture name, or one line saying which exist."""
    try:
        return ARCHITECTURES[gguf_arch]
    except KeyError:
        raise EdgebenchError(
            f"GGUF architecture {gguf_arch!r} is not supported by edgebench's converter (it "
            f"converts {', '.join(sorted(ARCHITECTURES))}); build the ONNX folder elsewhere and "
            "use --model-path") from None


def by_hf_class(hf_class: str) -> Architecture:
    for arch in ARCHITECTURES.values():
        if arch.hf_class == hf_class:
            return arch
    raise EdgebenchError(
        f"Hugging Face architecture {hf_class!r} is not one edgebench converts "
        f"({', '.join(a.hf_class for a in ARCHITECTURES.values())}); rebuild the model")


def gguf_architecture(gguf: Path) -> str:
    """`general.architecture` from the GGUF's header (memory-mapped: no tensor is read)."""
    try:
        from gguf import GGUFReader
    except ImportError:
        raise EdgebenchError(f"reading a GGUF needs the gguf package: {_EXTRA}") from None
    try:
        field = GGUFReader(str(gguf)).fields["general.architecture"]
        return bytes(field.parts[field.data[0]]).decode("utf-8")
    except FileNotFoundError:
        raise EdgebenchError(f"{gguf} does not exist") from None
    except KeyError:
        raise EdgebenchError(f"{gguf} has no general.architecture in its header; "
                             "it is not a model GGUF") from None
    except Exception as exc:
        raise EdgebenchError(f"{gguf} is not a readable GGUF file "
                             f"({_first_line(exc)}); fetch it again") from None


def hf_architecture(hf_dir: Path) -> Architecture:
    """The architecture of a converted folder, from its config.json."""
    try:
        classes = json.loads((hf_dir / "config.json").read_text()).get("architectures") or []
    except (OSError, ValueError) as exc:
        raise EdgebenchError(f"{hf_dir / 'config.json'} cannot be read ({_first_line(exc)}); "
                             "rebuild the model") from None
    return by_hf_class(classes[0] if classes else "(none)")


def extra_builder_options(hf_dir: Path) -> dict[str, str]:
    """The builder options the folder's architecture needs (merge before the variant's head)."""
    return dict(hf_architecture(hf_dir).builder_options)


def gguf_to_hf(gguf: Path, out_dir: Path, progress: Progress) -> Path:
    """Writes config.json, generation_config.json, fp32 safetensors and the tokenizer (with the
    chat template where the GGUF has one) into `out_dir`, which the caller stages."""
    arch = architecture(gguf_architecture(gguf))
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise EdgebenchError(
            f"building models needs the conversion extra ({exc.name} is missing): {_EXTRA}, "
            "or build elsewhere and use --model-path") from None
    progress(f"dequantizing {gguf.name} ({arch.gguf} -> {arch.hf_class}) with transformers' "
             "GGUF loader")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name,
                                                      dtype=torch.float32)
    except Exception as exc:
        raise EdgebenchError(f"transformers could not load {gguf.name} ({arch.gguf}): "
                             f"{_first_line(exc)}") from None
    if type(loaded).__name__ != arch.hf_class:
        raise EdgebenchError(f"transformers loaded {gguf.name} as {type(loaded).__name__}, not "
                             f"{arch.hf_class}; this transformers version is not supported")
    fresh = _unquantized_copy(loaded, arch, torch, AutoModelForCausalLM)
    del loaded
    progress(f"writing the Hugging Face folder ({_count(fresh) / 1e6:.0f} M parameters, fp32)")
    try:
        fresh.save_pretrained(str(out_dir))
        del fresh
        tokenizer.save_pretrained(str(out_dir))
    except OSError as exc:
        raise EdgebenchError(f"writing the Hugging Face folder {out_dir} failed "
                             f"({_first_line(exc)}); free disk space and build again") from None
    _check_folder(out_dir, arch, has_template=bool(getattr(tokenizer, "chat_template", None)))
    return out_dir


def _unquantized_copy(loaded: Any, arch: Architecture, torch: Any, auto: Any) -> Any:
    """A model of the same config without the GGUF marker, holding the loaded tensors."""
    config_dict = {k: v for k, v in loaded.config.to_dict().items()
                   if k != "quantization_config"}
    config_dict["architectures"] = [arch.hf_class]  # the GGUF loader leaves it unset
    config = type(loaded.config).from_dict(config_dict)
    with torch.device("meta"):  # no random init, no second copy of the weights
        fresh = auto.from_config(config, dtype=torch.float32)
    fresh.load_state_dict(loaded.state_dict(), strict=True, assign=True)
    fresh.tie_weights()  # ties the head to the embeddings where config.tie_word_embeddings says
    # Non-persistent buffers (rotary inv_freq) are recomputed on load and never saved.
    persistent = fresh.state_dict()
    left = [n for n, t in persistent.items() if t.is_meta]
    odd = sorted({str(t.dtype) for t in persistent.values() if t.dtype != torch.float32})
    if left or odd:
        raise EdgebenchError(f"converting {arch.gguf} left {len(left)} tensors unset "
                             f"({', '.join(left[:3])}) or non-fp32 dtypes {odd}; please report")
    return fresh


def _check_folder(out_dir: Path, arch: Architecture, *, has_template: bool) -> None:
    """What the builder and edgebench's prompts read must be there."""
    needed = ["config.json", "tokenizer.json", "tokenizer_config.json"]
    if has_template:
        needed.append("chat_template.jinja")
    missing = [n for n in needed if not (out_dir / n).is_file()]
    if missing or not any(out_dir.glob("*.safetensors")):
        raise EdgebenchError(f"converting {arch.gguf} wrote no {', '.join(missing) or 'weights'};"
                             " please report (transformers' save format changed?)")


def prepare_builder_config(config: Any) -> None:
    """Adapts transformers 5's config to what onnxruntime-genai 0.18's builder reads.

    Gemma 3 keeps one RoPE setting per layer type (`rope_parameters = {"full_attention": {...},
    "sliding_attention": {...}}`); the builder reads `rope_parameters["rope_type"]`,
    `rope_theta` (global layers) and `rope_local_base_freq` (sliding layers), transformers 4's
    names. Without this it fails (KeyError 'rope_type').
    """
    params = getattr(config, "rope_parameters", None)
    if isinstance(params, dict) and "full_attention" in params:
        local = params.get("sliding_attention", params["full_attention"])
        config.rope_local_base_freq = float(local["rope_theta"])
        config.rope_parameters = dict(params["full_attention"])
        config.rope_theta = float(params["full_attention"]["rope_theta"])


def create_onnx(hf_dir: Path, out_dir: Path, precision: str, cache_dir: Path,
                options: dict[str, str]) -> None:
    """onnxruntime_genai.models.builder.create_model with the config adapted for this
    transformers (prepare_builder_config); raises what the builder raises."""
    try:
        from onnxruntime_genai.models.builder import create_model, parse_extra_options
    except ImportError as exc:
        raise EdgebenchError(f"building models needs the conversion extra ({exc.name} is "
                             f"missing): {_EXTRA}") from None
    args = ("", str(hf_dir), str(out_dir), precision, "cpu", str(cache_dir))
    kwargs = parse_extra_options(*args, [f"{k}={v}" for k, v in options.items()])
    prepare_builder_config(kwargs["hf_details"]["hf_config"])
    create_model(*args, **kwargs)


def _count(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
