"""Which model a cloud offer serves (hardware_profiles/cloud/models.toml).

An offer's price only means something next to what it buys: a 135M local model set against a 24B
hosted one compares nothing. So every offer names its model, and the model says what it is: its
Hugging Face id where the weights are open, its size where published, its tokenizer family (a
million tokens of one tokenizer is not a million of another) and the scores its publisher reports,
in the same [[published]] format the local recipes use. Parsing is strict like the rest of the
profiles: an unknown key, a figure without a source or a bad score is one line naming file and key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from bench.cost.profile_checks import SOURCE, Spec, check_table, fail
from bench.cost.source import Source
from bench.errors import EdgebenchError
from bench.models.recipes import PublishedScore, parse_published
from bench.toml_load import load_toml

MODELS_FILE = "models.toml"  # under hardware_profiles/cloud/, beside the offer files
# Precisions a provider may publish for what it serves (the weights' number format).
SERVING_PRECISIONS = ("fp32", "bf16", "fp16", "fp8", "int8", "fp6", "fp4", "int4")
MODEL: Spec = {
    "id": ("str", True), "name": ("str", True), "open_weights": ("bool", True),
    "tokenizer_family": ("str", True), "parameters": ("int", False), "notes": ("str", False),
}
CITABLE = ("parameters", "tokenizer_family")  # [sources.parameters] is required with parameters
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")  # "org/name"
_FAMILY = re.compile(r"[a-z0-9][a-z0-9.+-]*")  # "llama3", "qwen2", "o200k", "claude-4.7"


@dataclass(frozen=True)
class OfferModel:
    """A model some offer serves. `open_weights` means `id` is its Hugging Face repository."""

    id: str
    name: str
    open_weights: bool
    tokenizer_family: str
    path: Path
    parameters: int | None = None  # as published; None where the publisher gives no count
    published: tuple[PublishedScore, ...] = ()
    notes: str | None = None
    sources: Mapping[str, Source] = field(default_factory=dict)

    def score(self, benchmark: str) -> PublishedScore | None:
        """The publisher's first figure for `benchmark` ("humaneval"), or None."""
        return next((p for p in self.published if p.benchmark == benchmark.lower()), None)


def _source(where: str, raw: Any) -> Source:
    src = check_table(where, raw, SOURCE)
    if not src["url"].startswith(("https://", "http://")):
        raise fail(where, "url must be an http(s) URL")
    return Source(src["url"], src["retrieved"], src.get("note"))


def parse_model(where: str, table: Any, path: Path) -> OfferModel:
    rec = check_table(where, table, MODEL, extra=("sources", "published"))
    if not _ID.fullmatch(rec["id"]):
        raise fail(where, f"id '{rec['id']}' must be 'org/name' (the Hugging Face id for open "
                          "weights, 'provider/model' otherwise)")
    if not _FAMILY.fullmatch(rec["tokenizer_family"]):
        raise fail(where, f"tokenizer_family '{rec['tokenizer_family']}' must be a lower-case id "
                          "such as 'llama3'")
    if rec.get("parameters") == 0:
        raise fail(where, "parameters must be positive")
    raw = rec.pop("sources", None) or {}
    if not isinstance(raw, dict):
        raise fail(where, "sources must be a table of [sources.<field>] tables")
    for key in raw:
        if key not in CITABLE or key not in rec:
            raise fail(where, f"sources.{key} names no citable field present in this model "
                              f"({', '.join(CITABLE)})")
    if "parameters" in rec and "parameters" not in raw:
        raise fail(where, "parameters has no source: add sources.parameters with url and retrieved")
    sources = {k: _source(f"{where} sources.{k}", v) for k, v in raw.items()}
    tables = rec.pop("published", [])
    if not isinstance(tables, list):
        raise fail(where, "published must be an array of tables ([[models.published]])")
    return OfferModel(**rec, path=path, sources=sources, published=parse_published(tables, where))


def parse_models_file(path: Path) -> list[OfferModel]:
    doc = load_toml(path)
    check_table(str(path), doc, {}, extra=("models",))
    items = doc.get("models", [])
    if not isinstance(items, list):
        raise fail(str(path), "models must be an array of tables ([[models]])")
    models = []
    for i, table in enumerate(items):
        label = f" ({table.get('id')})" if isinstance(table, dict) else ""
        models.append(parse_model(f"{path} models[{i}]{label}", table, path))
    return models


def load_models(cloud_dir: Path) -> dict[str, OfferModel]:
    """The models under cloud_dir/models.toml by id; none where the file does not exist."""
    path = Path(cloud_dir) / MODELS_FILE
    if not path.exists():
        return {}
    out: dict[str, OfferModel] = {}
    for m in parse_models_file(path):
        if m.id in out:
            raise EdgebenchError(f"{path}: model id '{m.id}' is defined twice")
        out[m.id] = m
    return out


def precision_source(where: str, rec: Mapping[str, Any], raw: Any) -> tuple[Any, Source | None]:
    """Splits an offer's [sources.serving_precision] off its figure sources and checks both.

    serving_precision is a word, not a number, but it is a claim about the provider just the
    same, so it needs the page that says so.
    """
    if "serving_precision" in rec and rec["serving_precision"] not in SERVING_PRECISIONS:
        raise fail(where, f"serving_precision '{rec['serving_precision']}' is not one of "
                          f"{', '.join(SERVING_PRECISIONS)}")
    if not isinstance(raw, dict) or "serving_precision" not in raw:
        if "serving_precision" in rec:
            raise fail(where, "serving_precision has no source: add sources.serving_precision "
                              "with url and retrieved (the provider's page that states it)")
        return raw, None
    if "serving_precision" not in rec:
        raise fail(where, "sources.serving_precision names no serving_precision in this record")
    rest = {k: v for k, v in raw.items() if k != "serving_precision"}
    return rest, _source(f"{where} sources.serving_precision", raw["serving_precision"])
