"""Model recipes (models/<id>.toml): where the weights come from and which variants to build."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import paths
from bench.errors import EdgebenchError
from bench.toml_load import load_toml

PRECISIONS = ("int4", "int8", "fp32", "fp16", "bf16")


@dataclass(frozen=True)
class Source:
    kind: str  # "pypi-wheel": a GGUF inside a wheel on PyPI
    package: str
    version: str
    wheel: str
    wheel_sha256: str
    member: str
    sha256: str
    format: str
    quantization: str


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
    source: Source
    variants: dict[str, Variant]
    chat_system: str
    chat_prompt: str
    path: Path

    def variant(self, name: str) -> Variant:
        if name not in self.variants:
            raise EdgebenchError(
                f"model {self.id} has no variant {name!r}; variants: {', '.join(self.variants)}")
        return self.variants[name]


def _take(table: dict[str, Any], keys: dict[str, type], where: str, optional: tuple[str, ...] = ()
          ) -> dict[str, Any]:
    unknown = sorted(set(table) - set(keys))
    if unknown:
        raise EdgebenchError(f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(keys)})")
    out = {}
    for key, kind in keys.items():
        if key not in table:
            if key in optional:
                continue
            raise EdgebenchError(f"{where}: missing key {key!r}")
        if not isinstance(table[key], kind):
            raise EdgebenchError(f"{where}: {key!r} must be a {kind.__name__}")
        out[key] = table[key]
    return out


def load_recipe(path: Path) -> Recipe:
    data = load_toml(path)
    where = str(path)
    top = _take(data, {"id": str, "name": str, "architecture": str, "license": str,
                       "homepage": str, "source": dict, "variants": dict, "chat": dict}, where)
    source = Source(**_take(top["source"], {k: str for k in Source.__dataclass_fields__},
                            f"{where} [source]"))
    if source.kind != "pypi-wheel":
        raise EdgebenchError(f"{where} [source]: kind {source.kind!r} is not supported "
                             "(supported: pypi-wheel)")
    variants = {}
    for name, table in top["variants"].items():
        fields = _take(table, {"precision": str, "block_size": int, "accuracy_level": int},
                       f"{where} [variants.{name}]", optional=("block_size", "accuracy_level"))
        if fields["precision"] not in PRECISIONS:
            raise EdgebenchError(f"{where} [variants.{name}]: precision must be one of "
                                 f"{', '.join(PRECISIONS)}")
        variants[name] = Variant(name=name, **fields)
    chat = _take(top["chat"], {"system": str, "prompt": str}, f"{where} [chat]")
    if top["id"] != path.stem:
        raise EdgebenchError(f"{where}: id {top['id']!r} must match the file name {path.stem!r}")
    return Recipe(id=top["id"], name=top["name"], architecture=top["architecture"],
                  license=top["license"], homepage=top["homepage"], source=source,
                  variants=variants, chat_system=chat["system"], chat_prompt=chat["prompt"],
                  path=path)


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
