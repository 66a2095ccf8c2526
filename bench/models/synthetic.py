"""Exact-architecture stand-ins with random weights: a model's published shape, no download.

Speed and energy per token depend on the graph and the tensor shapes, not on the values, so a
model whose weights are random but whose graph is the one the onnxruntime-genai builder makes
for the real model measures what the real one would. The builder makes a TEMPLATE_LAYERS-deep
model at the real widths and a small vocabulary from a random-init Hugging Face model, and
synthetic_graph copies its middle layer to the full depth and widens the embedding and head to
the real vocabulary, with fresh random weights written one tensor at a time, so an 8B model
builds in a few GiB of memory.
Tokens generated from it are garbage; there is no tokenizer. See docs/synthetic.md.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

from bench.errors import EdgebenchError
from bench.models.quiet import quiet_log
from bench.models.folder import MANIFEST, sha256_file
from bench.models.sources import staging
from bench.models.synthetic_graph import TEMPLATE_LAYERS, TEMPLATE_VOCABS, GraphError

Progress = Callable[[str], None]
GIB = 1 << 30
SEED = 0  # fixed: the same config, variant and builder give the same bytes
# model_type -> architecture; each is covered by the graph-equivalence test
ARCHITECTURES = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM",
                 "phi3": "Phi3ForCausalLM", "mistral": "MistralForCausalLM"}
_SHAPE_KEYS = ("num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size",
               "vocab_size")
# Builder peak resident memory per byte of the fp32 template (embedding, head, three layers),
# and a floor for the interpreter, torch and onnxruntime; measured in docs/synthetic.md.
_BUILDER_MEMORY_PER_TEMPLATE_BYTE = 3.0
_BASE_MEMORY_BYTES = int(0.8 * GIB)


@dataclass(frozen=True)
class BuildNeeds:
    """What a build needs at its peak, estimated from the config before anything starts."""

    memory_bytes: int
    disk_bytes: int
    template_fp32_bytes: int
    model_bytes: int  # estimated size of the finished folder


def model_type(config: Mapping[str, Any]) -> str:
    """The Hugging Face model_type, from `model_type` or `architecture(s)`; only the tested."""
    arch = config.get("architecture") or (config.get("architectures") or [None])[0]
    mtype = config.get("model_type") or {v: k for k, v in ARCHITECTURES.items()}.get(arch)
    if mtype not in ARCHITECTURES or (arch and arch != ARCHITECTURES[mtype]):
        raise EdgebenchError(
            f"synthetic builds support {', '.join(sorted(ARCHITECTURES.values()))}, not "
            f"{arch or mtype!r}; give model_type or architecture in the recipe's config")
    missing = [k for k in _SHAPE_KEYS if k not in config]
    if missing:
        raise EdgebenchError(f"the synthetic config lacks {', '.join(missing)}; copy them from "
                             "the model's published config.json")
    if mtype == "phi3" and not config.get("rope_scaling") and config.get(
            "original_max_position_embeddings", 4096) != config.get("max_position_embeddings"):
        # the builder makes a LongRoPE graph (two rotary caches and an If) for this case
        raise EdgebenchError(
            "a Phi-3 config whose max_position_embeddings differs from "
            "original_max_position_embeddings (4096 unless given) is a LongRoPE model: copy "
            "rope_scaling (type longrope, short_factor, long_factor) from its config.json")
    return mtype


def _ints(value: Any) -> set[int]:
    if isinstance(value, Mapping):
        return set().union(*(_ints(v) for v in value.values())) if value else set()
    if isinstance(value, (list, tuple)):
        return set().union(*(_ints(v) for v in value)) if value else set()
    if isinstance(value, (int, float)) and not isinstance(value, bool) and (
            abs(value) < 1 << 53 and value == int(value)):
        return {int(value)}
    return set()


def template_vocab(config: Mapping[str, Any]) -> int:
    """The vocabulary the builder sees: the real one when small, else a prime that no number
    of the config equals, so synthetic_graph can find every place it lands in the graph."""
    vocab = int(config["vocab_size"])
    if vocab <= TEMPLATE_VOCABS[0]:
        return vocab
    taken = _ints(config)
    heads = int(config["num_attention_heads"])
    head_dim = int(config.get("head_dim") or int(config["hidden_size"]) // heads)
    taken |= {n * head_dim for n in taken if n <= 1024}  # q, kv widths
    taken |= {n // d for n in taken for d in (2, 4, 8, 16, 32, 64, 128, 256)}  # blocks, rotary
    free = [v for v in TEMPLATE_VOCABS if v not in taken]
    if not free:
        raise EdgebenchError("every template vocabulary size occurs in this config; "
                             "synthetic builds cannot tell them apart")
    return free[0]


def _param_counts(config: Mapping[str, Any], vocab: int) -> tuple[int, int, int]:
    """(embedding, untied LM head, one decoder layer) parameter counts."""
    h = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    kv = int(config.get("num_key_value_heads") or heads)
    hd = int(config.get("head_dim") or h // heads)
    inter = int(config["intermediate_size"])
    layer = h * hd * (2 * heads + 2 * kv) + 3 * h * inter + 2 * h + hd * (heads + 2 * kv)
    return vocab * h, 0 if config.get("tie_word_embeddings", False) else vocab * h, layer


def _weight_bytes(precision: str, options: Mapping[str, str]) -> float:
    block = int(options.get("block_size", 32))
    zero_points = str(options.get("is_symmetric", "true")).lower() == "false"
    return {"int4": 0.5 + (4 + 0.5 * zero_points) / block, "int8": 1 + (4 + zero_points) / block,
            "fp16": 2.0, "bf16": 2.0, "fp32": 4.0}.get(precision, 4.0)


def _onnx_bytes(precision: str, options: Mapping[str, str], embed: int, head: int, layers: int,
                layer: int) -> int:
    w = _weight_bytes(precision, options)
    # a tied int4 head doubles as the embedding; otherwise int4/int8 keep an fp32 table
    embed_bytes = 0 if precision == "int4" and not head else (
        4 * embed if precision in ("int4", "int8") else w * embed)
    return int(w * (layers * layer + (head or embed)) + embed_bytes)


def estimate_needs(config: Mapping[str, Any], precision: str,
                   builder_options: Mapping[str, str]) -> BuildNeeds:
    layers = int(config["num_hidden_layers"])
    t = min(layers, TEMPLATE_LAYERS)
    embed_t, head_t, layer = _param_counts(config, template_vocab(config))
    embed, head, _ = _param_counts(config, int(config["vocab_size"]))
    template_fp32 = 4 * (embed_t + head_t + t * layer)
    model = int(1.05 * _onnx_bytes(precision, builder_options, embed, head, layers, layer))
    model += 64 << 20  # rotary caches, graph, genai_config
    template_onnx = _onnx_bytes(precision, builder_options, embed_t, head_t, t, layer)
    return BuildNeeds(
        memory_bytes=int(_BUILDER_MEMORY_PER_TEMPLATE_BYTE * template_fp32) + _BASE_MEMORY_BYTES,
        disk_bytes=template_fp32 + template_onnx + model, template_fp32_bytes=template_fp32,
        model_bytes=model)


def _available_memory_bytes() -> int:
    import psutil

    return int(psutil.virtual_memory().available)


def _available_disk_bytes(path: Path) -> int:
    while not path.exists():
        path = path.parent
    return shutil.disk_usage(path).free


def check_resources(model_id: str, variant: str, needs: BuildNeeds, out_dir: Path) -> None:
    """Refuses up front, in one line, rather than dying half way through a long build."""
    memory, disk = _available_memory_bytes(), _available_disk_bytes(out_dir.parent)
    if needs.memory_bytes > memory:
        raise EdgebenchError(f"building {model_id} {variant} needs about "
                             f"{needs.memory_bytes / GIB:.1f} GiB of memory, "
                             f"{memory / GIB:.1f} GiB available")
    if needs.disk_bytes > disk:
        raise EdgebenchError(f"building {model_id} {variant} needs about "
                             f"{needs.disk_bytes / GIB:.1f} GiB of disk under {out_dir.parent}, "
                             f"{disk / GIB:.1f} GiB free")


def hf_config(config: Mapping[str, Any], layers: int | None = None,
              vocab: int | None = None) -> Any:
    """A transformers config from the recipe's keys (config.json names), `layers` deep and
    with `vocab` tokens when given (the template)."""
    from transformers import AutoConfig

    mtype = model_type(config)
    kwargs = {k: v for k, v in config.items()
              if k not in ("model_type", "architecture", "architectures")}
    if layers is not None:
        kwargs["num_hidden_layers"] = layers
        kwargs.pop("layer_types", None)
    if vocab is not None:
        kwargs["vocab_size"] = vocab
    cfg = AutoConfig.for_model(mtype, **kwargs)
    cfg.architectures = [ARCHITECTURES[mtype]]
    if cfg.pad_token_id is not None and cfg.pad_token_id >= cfg.vocab_size:
        cfg.pad_token_id = None  # the embedding's padding row must exist; genai gets it back
    return cfg


def _check_uniform_layers(cfg: Any, model_id: str) -> None:
    types = set(getattr(cfg, "layer_types", None) or [])
    if len(types) > 1:
        raise EdgebenchError(f"{model_id} mixes layer types ({', '.join(sorted(types))}); a "
                             "synthetic build copies one layer and cannot stand in for it")


def _save_template_hf(cfg: Any, path: Path) -> None:
    """Random-init weights at the real widths; biases nonzero, because the builder drops an
    all-zero bias (and its Add) that the real model's graph has."""
    import torch
    from tokenizers import Tokenizer, models
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    torch.manual_seed(SEED)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith(".bias"):
                param.normal_(0.0, 0.02)
    model.save_pretrained(str(path))
    del model
    # The builder reads a tokenizer (special token ids) and copies it; ours stays behind.
    tok = Tokenizer(models.WordLevel({"<unk>": 0}, unk_token="<unk>"))
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>").save_pretrained(str(path))


def run_builder(hf_dir: Path, out: Path, precision: str, builder_options: Mapping[str, str],
                cache: Path) -> str:
    """onnxruntime_genai.models.builder, called as build.py calls it; returns its version."""
    import onnxruntime_genai
    from onnxruntime_genai.models.builder import create_model, parse_extra_options

    args = ("", str(hf_dir), str(out), precision, "cpu", str(cache))
    options = [f"{k}={v}" for k, v in builder_options.items()]
    create_model(*args, **parse_extra_options(*args, options))
    return f"onnxruntime-genai {onnxruntime_genai.__version__}"


def _finish_folder(template: Path, tmp: Path, full: Any, progress: Progress) -> None:
    """The template stretched to the full depth and vocabulary, written into `tmp`."""
    import onnx

    from bench.models import synthetic_graph

    model = onnx.load(str(template / "model.onnx"), load_external_data=False)
    layers, vocab = int(full.num_hidden_layers), int(full.vocab_size)
    copies: dict[str, int] = {}
    if layers > TEMPLATE_LAYERS:
        model, copies = synthetic_graph.stretch(model, layers)
    genai = json.loads((template / "genai_config.json").read_text())
    small_vocab = int(genai["model"]["vocab_size"])
    widened = synthetic_graph.widen_vocab(model, small_vocab, vocab) if small_vocab != vocab \
        else {}
    tensors = len(model.graph.initializer)
    marks = {tensors * k // 4 for k in (1, 2, 3)}

    def report(done: int, total: int) -> None:
        if done in marks:
            progress(f"writing weights: {done}/{total} tensors")

    synthetic_graph.write(model, template, tmp / "model.onnx", seed=SEED, copies=copies,
                          widened=widened, progress=report)
    decoder = genai["model"]["decoder"]
    window = decoder.get("sliding_window")
    if window and window.get("layers"):
        if window["layers"] != list(range(decoder["num_hidden_layers"])):
            raise EdgebenchError("the template's sliding-window layers are not uniform; a "
                                 "synthetic build cannot stand in for this model")
        window["layers"] = list(range(layers))
    decoder["num_hidden_layers"] = layers
    genai["model"]["vocab_size"] = vocab
    if full.pad_token_id is not None:  # dropped from a template too small to hold it
        genai["model"]["pad_token_id"] = full.pad_token_id
    (tmp / "genai_config.json").write_text(json.dumps(genai, indent=4) + "\n")


def _logits(builder_options: Mapping[str, str]) -> str:
    return "all" if str(builder_options.get("prune_lm_head", "false")).lower() != "true" \
        else "last"


def build_synthetic(model_id: str, config: Mapping[str, Any], variant: str, precision: str,
                    builder_options: Mapping[str, str], out_dir: Path,
                    progress: Progress) -> Path:
    """Builds `out_dir` (model.onnx + data, genai_config.json, manifest.json; no tokenizer)."""
    model_type(config)
    layers = int(config["num_hidden_layers"])
    if layers < 1:
        raise EdgebenchError(f"{model_id}: num_hidden_layers must be at least 1")
    check_resources(model_id, variant, estimate_needs(config, precision, builder_options),
                    out_dir)
    try:
        import onnx  # noqa: F401
        import onnxruntime_genai  # noqa: F401
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        raise EdgebenchError(f"synthetic builds need the conversion extra ({exc.name} is "
                             "missing): pip install 'edgebench[convert]'") from None
    full = hf_config(config)
    _check_uniform_layers(full, model_id)
    log = out_dir.parent / f"{out_dir.name}.synthetic.log"
    t, vocab = min(layers, TEMPLATE_LAYERS), template_vocab(config)
    with staging(out_dir) as tmp:
        hf_dir, template = tmp / ".template-hf", tmp / ".template-onnx"
        progress(f"building a {t}-layer, {vocab}-token template of {model_id} with random "
                 f"weights (onnxruntime_genai.models.builder, {precision}, "
                 f"{dict(builder_options)})")
        try:
            with quiet_log(log):
                _save_template_hf(hf_config(config, layers=t, vocab=vocab), hf_dir)
                builder = run_builder(hf_dir, template, precision, builder_options,
                                      tmp / ".builder-cache")
        except Exception as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise EdgebenchError(f"the ONNX builder failed for {model_id}/{variant}: {first} "
                                 f"(log: {log})") from None
        shutil.rmtree(hf_dir)
        progress(f"stretching it to {layers} layers and {full.vocab_size} tokens with fresh "
                 "random weights")
        try:
            _finish_folder(template, tmp, full, progress)
        except GraphError as exc:
            raise EdgebenchError(f"cannot stretch the builder's graph of {model_id}: {exc}; "
                                 "this architecture or builder version needs a full build") \
                from None
        for leftover in (template, tmp / ".builder-cache"):
            shutil.rmtree(leftover, ignore_errors=True)
        files = {p.name: p.stat().st_size for p in sorted(tmp.iterdir()) if p.is_file()}
        manifest = {
            "model_id": model_id,
            "variant": variant,
            "precision": precision,
            "logits": _logits(builder_options),
            "builder_options": dict(builder_options),
            "source_sha256": None,
            "weights": "synthetic",
            "config": dict(config),
            "template": {"layers": t, "vocab_size": vocab},
            "seed": SEED,
            "builder": builder,
            "built_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "files": files,
            "sha256": {name: sha256_file(tmp / name) for name in files
                       if name.startswith("model.onnx")},
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    log.unlink(missing_ok=True)
    return out_dir
