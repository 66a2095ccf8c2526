"""Typed, strictly validated price and hardware profiles loaded from hardware_profiles/**.toml.

Every figure must carry its source (url + retrieved date) because prices and specs change while
measurements do not: a number without provenance cannot be re-checked, so it is refused. Unknown
keys are errors so a typo never silently drops a figure. Any problem is one EdgebenchError line
naming the file and the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from bench.cost.offer_models import MODELS_FILE, OfferModel, load_models, precision_source
from bench.cost.profile_checks import (DEVICE, ENERGY, FX, GPU, MATCH, MIX, OFFER, REGION, check_sources, check_table, fail)
from bench.cost.source import Source
from bench.errors import EdgebenchError

DEVICE_KINDS = ("laptop", "desktop", "phone", "board", "gpu", "server", "generic")
POWER_SCOPES = ("soc", "cpu_package", "gpu", "system_dc", "wall_ac", "vcpu_share")
# open-large: hosted open models above 14B, matched by model identity rather than by tier.
OFFER_TIERS = ("small", "frontier", "open-small", "open-large", "unclassified")
UNCLASSIFIED = "unclassified"  # imported, not yet matched to a model: may lack model_id
GPU_TIER = "gpu-rental"


@dataclass(frozen=True)
class DeviceProfile:
    """One device (or a clearly labelled generic stand-in). Missing figures stay None."""

    id: str
    name: str
    kind: str
    path: Path
    match_cpu_model: tuple[str, ...] = ()
    match_accelerators: tuple[str, ...] = ()
    match_cpu_cores_logical: int | None = None
    generic: bool = False
    method: str | None = None
    based_on: str | None = None
    power_scope: str | None = None
    notes: str | None = None
    memory_bandwidth_gb_s: float | None = None
    accelerator_tops: float | None = None
    tdp_w: float | None = None
    tdp_min_w: float | None = None
    tdp_max_w: float | None = None
    system_max_power_w: float | None = None
    idle_power_w: float | None = None
    price_usd: float | None = None
    useful_life_years: float | None = None
    rent_usd_per_hour: float | None = None
    sources: Mapping[str, Source] = field(default_factory=dict)


@dataclass(frozen=True)
class CloudOffer:
    """An API price per 1M tokens. `tier` decides which local runs it is fairly compared with.

    `model_id` keys Profiles.models (what the price buys); None only for unclassified offers.
    """

    id: str
    provider: str
    model: str
    tier: str
    model_class: str
    path: Path
    input_usd_per_mtok: float
    output_usd_per_mtok: float
    cached_input_usd_per_mtok: float | None = None
    litellm_key: str | None = None
    energy_reference: str | None = None
    notes: str | None = None
    sources: Mapping[str, Source] = field(default_factory=dict)
    model_id: str | None = None
    serving_precision: str | None = None  # as the provider publishes it, e.g. "fp8"


@dataclass(frozen=True)
class GpuRental:
    """A GPU-hour price; no $/Mtok without a sourced sustained throughput, so none is derived."""

    id: str
    provider: str
    gpu: str
    tier: str
    model_class: str
    path: Path
    usd_per_gpu_hour: float
    notes: str | None = None
    sources: Mapping[str, Source] = field(default_factory=dict)


@dataclass(frozen=True)
class EnergyReference:
    """Data-centre energy per output token or per query, or a PUE figure."""

    id: str
    name: str
    path: Path
    includes_pue: bool = False
    j_per_output_tok: float | None = None
    wh_per_query: float | None = None
    pue: float | None = None
    parameters: float | None = None
    prompt_to_output_energy_ratio_low: float | None = None
    prompt_to_output_energy_ratio_high: float | None = None
    notes: str | None = None
    sources: Mapping[str, Source] = field(default_factory=dict)


@dataclass(frozen=True)
class GridRegion:
    """Electricity tariff and grid carbon intensity. EUR tariffs are converted at load time."""

    id: str
    name: str
    path: Path
    electricity_usd_per_kwh: float | None = None
    carbon_g_per_kwh: float | None = None
    electricity_eur_per_kwh: float | None = None
    usd_per_eur: float | None = None
    notes: str | None = None
    sources: Mapping[str, Source] = field(default_factory=dict)


@dataclass(frozen=True)
class Mix:
    """Workload mix as token shares of one million tokens (input + cached input + output = 1)."""

    id: str
    name: str
    input_share: float
    output_share: float
    cached_input_share: float = 0.0
    sources: Mapping[str, Source] = field(default_factory=dict)


@dataclass(frozen=True)
class Profiles:
    """Everything under one profiles root, keyed by id."""

    root: Path
    devices: Mapping[str, DeviceProfile]
    offers: Mapping[str, CloudOffer]
    gpu_rentals: Mapping[str, GpuRental]
    energy_references: Mapping[str, EnergyReference]
    regions: Mapping[str, GridRegion]
    mixes: Mapping[str, Mix]
    models: Mapping[str, OfferModel] = field(default_factory=dict)  # cloud/models.toml by id


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise EdgebenchError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise EdgebenchError(f"{path}: cannot read: {exc.strerror}") from None


def _records(path: Path, doc: dict[str, Any], key: str) -> list[tuple[str, Any]]:
    items = doc.get(key, [])
    if not isinstance(items, list):
        raise fail(str(path), f"{key} must be an array of tables ([[{key}]])")
    return [(f"{path} {key}[{i}]" + (f" ({t.get('id')})" if isinstance(t, dict) else ""), t)
            for i, t in enumerate(items)]


# ---------------------------------------------------------------- per-file parsers
def parse_device(path: Path) -> DeviceProfile:
    doc = _read_toml(path)
    where = str(path)
    rec = check_table(where, doc, DEVICE, extra=("match", "sources"))
    if rec["id"] != path.stem:
        raise fail(where, f"id '{rec['id']}' must equal the file name '{path.stem}'")
    if rec["kind"] not in DEVICE_KINDS:
        raise fail(where, f"kind '{rec['kind']}' is not one of {', '.join(DEVICE_KINDS)}")
    if rec.get("generic") and "method" not in rec:
        raise fail(where, "method is required when generic = true (say how the figures were chosen)")
    if "power_scope" in rec and rec["power_scope"] not in POWER_SCOPES:
        raise fail(where, f"power_scope '{rec['power_scope']}' is not one of {', '.join(POWER_SCOPES)}")
    power = [k for k in ("tdp_w", "tdp_min_w", "tdp_max_w", "system_max_power_w", "idle_power_w") if k in rec]
    if power and "power_scope" not in rec:
        raise fail(where, f"power_scope is required with {power[0]} (what does the figure cover?)")
    if rec.get("useful_life_years") == 0:
        raise fail(where, "useful_life_years must be positive")
    match = check_table(f"{where} match", rec.get("match", {}), MATCH)
    sources = check_sources(where, rec, DEVICE, rec.get("sources"))
    plain = {k: v for k, v in rec.items() if k not in ("match", "sources")}
    return DeviceProfile(
        **plain, path=path, sources=sources,
        match_cpu_model=match.get("cpu_model", ()),
        match_accelerators=match.get("accelerators", ()),
        match_cpu_cores_logical=match.get("cpu_cores_logical"),
    )


def parse_cloud_file(path: Path) -> tuple[list[CloudOffer], list[GpuRental], list[EnergyReference]]:
    doc = _read_toml(path)
    check_table(str(path), doc, {}, extra=("offers", "gpu_rentals", "energy_references"))
    offers, rentals, refs = [], [], []
    for where, table in _records(path, doc, "offers"):
        rec = check_table(where, table, OFFER, extra=("sources",))
        if rec["tier"] not in OFFER_TIERS:
            raise fail(where, f"tier '{rec['tier']}' is not one of {', '.join(OFFER_TIERS)}")
        if "model_id" not in rec and rec["tier"] != UNCLASSIFIED:
            raise fail(where, "missing required key 'model_id' (the cloud/models.toml id of the "
                              "model this price buys)")
        raw, precision = precision_source(where, rec, rec.pop("sources", None))
        sources = check_sources(where, rec, OFFER, raw)
        if precision is not None:
            sources["serving_precision"] = precision
        offers.append(CloudOffer(**rec, path=path, sources=sources))
    for where, table in _records(path, doc, "gpu_rentals"):
        rec = check_table(where, table, GPU, extra=("sources",))
        if rec["tier"] != GPU_TIER:
            raise fail(where, f"tier must be '{GPU_TIER}' for a GPU rental")
        sources = check_sources(where, rec, GPU, rec.pop("sources", None))
        rentals.append(GpuRental(**rec, path=path, sources=sources))
    for where, table in _records(path, doc, "energy_references"):
        rec = check_table(where, table, ENERGY, extra=("sources",))
        if not any(k in rec for k in ("j_per_output_tok", "wh_per_query", "pue")):
            raise fail(where, "needs one of j_per_output_tok, wh_per_query or pue")
        if "pue" in rec and rec["pue"] < 1:
            raise fail(where, f"pue must be at least 1 ({rec['pue']})")
        sources = check_sources(where, rec, ENERGY, rec.pop("sources", None))
        refs.append(EnergyReference(**rec, path=path, sources=sources))
    return offers, rentals, refs


def parse_grid_file(path: Path) -> list[GridRegion]:
    doc = _read_toml(path)
    check_table(str(path), doc, {}, extra=("regions", "fx"))
    usd_per_eur: float | None = None
    fx_source: Source | None = None
    if "fx" in doc:
        fx = check_table(f"{path} fx", doc["fx"], FX, extra=("sources",))
        fx_source = check_sources(f"{path} fx", fx, FX, fx.pop("sources", None))["usd_per_eur"]
        usd_per_eur = fx["usd_per_eur"]
    regions = []
    for where, table in _records(path, doc, "regions"):
        rec = check_table(where, table, REGION, extra=("sources",))
        sources = check_sources(where, rec, REGION, rec.pop("sources", None))
        if "electricity_usd_per_kwh" in rec and "electricity_eur_per_kwh" in rec:
            raise fail(where, "give electricity_usd_per_kwh or electricity_eur_per_kwh, not both")
        if "electricity_eur_per_kwh" in rec:
            if usd_per_eur is None or fx_source is None:
                raise fail(where, "electricity_eur_per_kwh needs an [fx] usd_per_eur table in the same file")
            rec["electricity_usd_per_kwh"] = rec["electricity_eur_per_kwh"] * usd_per_eur
            rec["usd_per_eur"] = usd_per_eur
            sources["usd_per_eur"] = fx_source
        regions.append(GridRegion(**rec, path=path, sources=sources))
    return regions


def parse_mix_file(path: Path) -> list[Mix]:
    doc = _read_toml(path)
    check_table(str(path), doc, {}, extra=("mixes",))
    mixes = []
    for where, table in _records(path, doc, "mixes"):
        rec = check_table(where, table, MIX, extra=("sources",))
        sources = check_sources(where, rec, MIX, rec.pop("sources", None))
        total = rec["input_parts"] + rec["output_parts"] + rec.get("cached_input_parts", 0.0)
        if total <= 0:
            raise fail(where, "input_parts + output_parts must be positive")
        mixes.append(Mix(
            id=rec["id"], name=rec["name"], sources=sources,
            input_share=rec["input_parts"] / total, output_share=rec["output_parts"] / total,
            cached_input_share=rec.get("cached_input_parts", 0.0) / total,
        ))
    return mixes


# ---------------------------------------------------------------- whole tree
def _unique(kind: str, items: Iterable[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        if item.id in out:
            raise EdgebenchError(
                f"{item.path if hasattr(item, 'path') else kind}: {kind} id '{item.id}' is also "
                f"defined in {getattr(out[item.id], 'path', '?')}"
            )
        out[item.id] = item
    return out


def load_profiles(root: Path | None = None) -> Profiles:
    """Loads and cross-checks every profile file under root (default: bench.paths.profiles_dir())."""
    if root is None:
        from bench.paths import profiles_dir

        root = profiles_dir()
    root = Path(root)
    if not root.is_dir():
        raise EdgebenchError(f"profiles directory {root} does not exist (set EDGEBENCH_PROFILES_DIR?)")
    devices = [parse_device(p) for p in sorted((root / "devices").glob("*.toml"))]
    offers: list[CloudOffer] = []
    rentals: list[GpuRental] = []
    refs: list[EnergyReference] = []
    for p in sorted((root / "cloud").glob("*.toml")):
        if p.name == MODELS_FILE:
            continue  # what the offers serve, not offers: load_models below
        o, g, e = parse_cloud_file(p)
        offers += o
        rentals += g
        refs += e
    regions = [r for p in sorted((root / "grid").glob("*.toml")) for r in parse_grid_file(p)]
    mix_path = root / "mixes.toml"
    mixes = parse_mix_file(mix_path) if mix_path.exists() else []
    mix_by_id: dict[str, Mix] = {}
    for m in mixes:
        if m.id in mix_by_id:
            raise EdgebenchError(f"{mix_path}: mix id '{m.id}' is defined twice")
        mix_by_id[m.id] = m
    profiles = Profiles(
        root=root, devices=_unique("device", devices), offers=_unique("offer", offers),
        gpu_rentals=_unique("gpu rental", rentals), energy_references=_unique("energy reference", refs),
        regions=_unique("region", regions), mixes=mix_by_id, models=load_models(root / "cloud"),
    )
    _check_references(profiles)
    return profiles


def _check_references(p: Profiles) -> None:
    for d in p.devices.values():
        if d.based_on is not None and d.based_on not in p.devices:
            raise EdgebenchError(f"{d.path}: based_on '{d.based_on}' names no device profile")
    for o in p.offers.values():
        if o.model_id is not None and o.model_id not in p.models:
            raise EdgebenchError(
                f"{o.path}: offer '{o.id}' model_id '{o.model_id}' names no model in "
                f"{p.root / 'cloud' / MODELS_FILE} (add a [[models]] entry there)"
            )
        if o.energy_reference is not None:
            ref = p.energy_references.get(o.energy_reference)
            if ref is None or ref.j_per_output_tok is None:
                raise EdgebenchError(
                    f"{o.path}: offer '{o.id}' energy_reference '{o.energy_reference}' names no "
                    "energy reference with j_per_output_tok"
                )


