"""Typed, strictly validated price and hardware profiles loaded from hardware_profiles/**.toml.

Every figure must carry its source (url + retrieved date) because prices and specs change while
measurements do not: a number without provenance cannot be re-checked, so it is refused. Unknown
keys are errors so a typo never silently drops a figure. Any problem is one EdgebenchError line
naming the file and the field.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from bench.errors import EdgebenchError

if TYPE_CHECKING:
    from bench.litellm_import import ImportSummary

DEVICE_KINDS = ("laptop", "desktop", "phone", "board", "gpu", "server", "generic")
POWER_SCOPES = ("soc", "cpu_package", "gpu", "system_dc", "wall_ac", "vcpu_share")
OFFER_TIERS = ("small", "frontier", "open-small", "unclassified")
GPU_TIER = "gpu-rental"


@dataclass(frozen=True)
class Source:
    """Where one figure comes from; `note` says how it was read or derived."""

    url: str
    retrieved: dt.date
    note: str | None = None


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
    sources: Mapping[str, Source] = field(default_factory=dict)


@dataclass(frozen=True)
class CloudOffer:
    """An API price per 1M tokens. `tier` decides which local runs it is fairly compared with."""

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


# ---------------------------------------------------------------- field specifications
# kind: str | figure | int | bool | strlist | date.  Figures need [sources.<field>].
_Spec = Mapping[str, tuple[str, bool]]

_DEVICE: _Spec = {
    "id": ("str", True), "name": ("str", True), "kind": ("str", True),
    "generic": ("bool", False), "method": ("str", False), "based_on": ("str", False),
    "power_scope": ("str", False), "notes": ("str", False),
    "memory_bandwidth_gb_s": ("figure", False), "accelerator_tops": ("figure", False),
    "tdp_w": ("figure", False), "tdp_min_w": ("figure", False), "tdp_max_w": ("figure", False),
    "system_max_power_w": ("figure", False), "idle_power_w": ("figure", False),
    "price_usd": ("figure", False), "useful_life_years": ("figure", False),
}
_MATCH: _Spec = {
    "cpu_model": ("strlist", False), "accelerators": ("strlist", False),
    "cpu_cores_logical": ("int", False),
}
_OFFER: _Spec = {
    "id": ("str", True), "provider": ("str", True), "model": ("str", True),
    "tier": ("str", True), "model_class": ("str", True), "litellm_key": ("str", False),
    "energy_reference": ("str", False), "notes": ("str", False),
    "input_usd_per_mtok": ("figure", True), "output_usd_per_mtok": ("figure", True),
    "cached_input_usd_per_mtok": ("figure", False),
}
_GPU: _Spec = {
    "id": ("str", True), "provider": ("str", True), "gpu": ("str", True),
    "tier": ("str", True), "model_class": ("str", True), "notes": ("str", False),
    "usd_per_gpu_hour": ("figure", True),
}
_ENERGY: _Spec = {
    "id": ("str", True), "name": ("str", True), "includes_pue": ("bool", False),
    "notes": ("str", False), "j_per_output_tok": ("figure", False),
    "wh_per_query": ("figure", False), "pue": ("figure", False),
}
_REGION: _Spec = {
    "id": ("str", True), "name": ("str", True), "notes": ("str", False),
    "electricity_usd_per_kwh": ("figure", False), "electricity_eur_per_kwh": ("figure", False),
    "carbon_g_per_kwh": ("figure", False),
}
_FX: _Spec = {"usd_per_eur": ("figure", True), "notes": ("str", False)}
_MIX: _Spec = {
    "id": ("str", True), "name": ("str", True), "input_parts": ("figure", True),
    "output_parts": ("figure", True), "cached_input_parts": ("figure", False),
}
_SOURCE: _Spec = {"url": ("str", True), "retrieved": ("date", True), "note": ("str", False)}


def _fail(where: str, msg: str) -> EdgebenchError:
    return EdgebenchError(f"{where}: {msg}")


def _check_value(where: str, key: str, kind: str, value: Any) -> Any:
    if kind == "str":
        if not isinstance(value, str) or not value.strip():
            raise _fail(where, f"{key} must be a non-empty string")
        return value
    if kind in ("figure", "int"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(where, f"{key} must be a number, not {value!r}")
        if kind == "int" and not isinstance(value, int):
            raise _fail(where, f"{key} must be an integer, not {value!r}")
        if not math.isfinite(value):
            raise _fail(where, f"{key} must be finite, not {value!r}")
        if value < 0:
            raise _fail(where, f"{key} must not be negative ({value!r})")
        return float(value) if kind == "figure" else value
    if kind == "bool":
        if not isinstance(value, bool):
            raise _fail(where, f"{key} must be true or false, not {value!r}")
        return value
    if kind == "strlist":
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise _fail(where, f"{key} must be a list of non-empty strings")
        return tuple(value)
    if kind == "date":
        if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
            raise _fail(where, f"{key} must be a TOML date (YYYY-MM-DD, unquoted), not {value!r}")
        if value > dt.date.today():
            raise _fail(where, f"{key} {value.isoformat()} is in the future")
        return value
    raise AssertionError(kind)


def _check_table(where: str, table: Any, spec: _Spec, extra: Iterable[str] = ()) -> dict[str, Any]:
    """Validates keys and types of one table; `extra` keys are passed through untouched."""
    if not isinstance(table, dict):
        raise _fail(where, "expected a table")
    allowed = set(spec) | set(extra)
    for key in table:
        if key not in allowed:
            raise _fail(where, f"unknown key '{key}' (allowed: {', '.join(sorted(allowed))})")
    out: dict[str, Any] = {}
    for key, (kind, required) in spec.items():
        if key not in table:
            if required:
                raise _fail(where, f"missing required key '{key}'")
            continue
        out[key] = _check_value(where, key, kind, table[key])
    for key in extra:
        if key in table:
            out[key] = table[key]
    return out


def _check_sources(where: str, record: Mapping[str, Any], spec: _Spec, raw: Any) -> dict[str, Source]:
    """Every figure present needs [sources.<figure>]; a source for an absent figure is an error."""
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise _fail(where, "sources must be a table of [sources.<field>] tables")
    figures = {k for k, (kind, _) in spec.items() if kind == "figure" and k in record}
    for key in raw:
        if key not in figures:
            raise _fail(where, f"sources.{key} names no figure present in this record")
    sources: dict[str, Source] = {}
    for key in sorted(figures):
        if key not in raw:
            raise _fail(where, f"{key} has no source: add [sources.{key}] with url and retrieved")
        src = _check_table(f"{where} sources.{key}", raw[key], _SOURCE)
        sources[key] = Source(src["url"], src["retrieved"], src.get("note"))
    return sources


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
        raise _fail(str(path), f"{key} must be an array of tables ([[{key}]])")
    return [(f"{path} {key}[{i}]" + (f" ({t.get('id')})" if isinstance(t, dict) else ""), t)
            for i, t in enumerate(items)]


# ---------------------------------------------------------------- per-file parsers
def parse_device(path: Path) -> DeviceProfile:
    doc = _read_toml(path)
    where = str(path)
    rec = _check_table(where, doc, _DEVICE, extra=("match", "sources"))
    if rec["id"] != path.stem:
        raise _fail(where, f"id '{rec['id']}' must equal the file name '{path.stem}'")
    if rec["kind"] not in DEVICE_KINDS:
        raise _fail(where, f"kind '{rec['kind']}' is not one of {', '.join(DEVICE_KINDS)}")
    if rec.get("generic") and "method" not in rec:
        raise _fail(where, "method is required when generic = true (say how the figures were chosen)")
    if "power_scope" in rec and rec["power_scope"] not in POWER_SCOPES:
        raise _fail(where, f"power_scope '{rec['power_scope']}' is not one of {', '.join(POWER_SCOPES)}")
    power = [k for k in ("tdp_w", "tdp_min_w", "tdp_max_w", "system_max_power_w", "idle_power_w") if k in rec]
    if power and "power_scope" not in rec:
        raise _fail(where, f"power_scope is required with {power[0]} (what does the figure cover?)")
    if rec.get("useful_life_years") == 0:
        raise _fail(where, "useful_life_years must be positive")
    match = _check_table(f"{where} match", rec.get("match", {}), _MATCH)
    sources = _check_sources(where, rec, _DEVICE, rec.get("sources"))
    plain = {k: v for k, v in rec.items() if k not in ("match", "sources")}
    return DeviceProfile(
        **plain, path=path, sources=sources,
        match_cpu_model=match.get("cpu_model", ()),
        match_accelerators=match.get("accelerators", ()),
        match_cpu_cores_logical=match.get("cpu_cores_logical"),
    )


def parse_cloud_file(path: Path) -> tuple[list[CloudOffer], list[GpuRental], list[EnergyReference]]:
    doc = _read_toml(path)
    _check_table(str(path), doc, {}, extra=("offers", "gpu_rentals", "energy_references"))
    offers, rentals, refs = [], [], []
    for where, table in _records(path, doc, "offers"):
        rec = _check_table(where, table, _OFFER, extra=("sources",))
        if rec["tier"] not in OFFER_TIERS:
            raise _fail(where, f"tier '{rec['tier']}' is not one of {', '.join(OFFER_TIERS)}")
        sources = _check_sources(where, rec, _OFFER, rec.pop("sources", None))
        offers.append(CloudOffer(**rec, path=path, sources=sources))
    for where, table in _records(path, doc, "gpu_rentals"):
        rec = _check_table(where, table, _GPU, extra=("sources",))
        if rec["tier"] != GPU_TIER:
            raise _fail(where, f"tier must be '{GPU_TIER}' for a GPU rental")
        sources = _check_sources(where, rec, _GPU, rec.pop("sources", None))
        rentals.append(GpuRental(**rec, path=path, sources=sources))
    for where, table in _records(path, doc, "energy_references"):
        rec = _check_table(where, table, _ENERGY, extra=("sources",))
        if not any(k in rec for k in ("j_per_output_tok", "wh_per_query", "pue")):
            raise _fail(where, "needs one of j_per_output_tok, wh_per_query or pue")
        if "pue" in rec and rec["pue"] < 1:
            raise _fail(where, f"pue must be at least 1 ({rec['pue']})")
        sources = _check_sources(where, rec, _ENERGY, rec.pop("sources", None))
        refs.append(EnergyReference(**rec, path=path, sources=sources))
    return offers, rentals, refs


def parse_grid_file(path: Path) -> list[GridRegion]:
    doc = _read_toml(path)
    _check_table(str(path), doc, {}, extra=("regions", "fx"))
    usd_per_eur: float | None = None
    fx_source: Source | None = None
    if "fx" in doc:
        fx = _check_table(f"{path} fx", doc["fx"], _FX, extra=("sources",))
        fx_source = _check_sources(f"{path} fx", fx, _FX, fx.pop("sources", None))["usd_per_eur"]
        usd_per_eur = fx["usd_per_eur"]
    regions = []
    for where, table in _records(path, doc, "regions"):
        rec = _check_table(where, table, _REGION, extra=("sources",))
        sources = _check_sources(where, rec, _REGION, rec.pop("sources", None))
        if "electricity_usd_per_kwh" in rec and "electricity_eur_per_kwh" in rec:
            raise _fail(where, "give electricity_usd_per_kwh or electricity_eur_per_kwh, not both")
        if "electricity_eur_per_kwh" in rec:
            if usd_per_eur is None or fx_source is None:
                raise _fail(where, "electricity_eur_per_kwh needs an [fx] usd_per_eur table in the same file")
            rec["electricity_usd_per_kwh"] = rec["electricity_eur_per_kwh"] * usd_per_eur
            rec["usd_per_eur"] = usd_per_eur
            sources["usd_per_eur"] = fx_source
        regions.append(GridRegion(**rec, path=path, sources=sources))
    return regions


def parse_mix_file(path: Path) -> list[Mix]:
    doc = _read_toml(path)
    _check_table(str(path), doc, {}, extra=("mixes",))
    mixes = []
    for where, table in _records(path, doc, "mixes"):
        rec = _check_table(where, table, _MIX, extra=("sources",))
        sources = _check_sources(where, rec, _MIX, rec.pop("sources", None))
        total = rec["input_parts"] + rec["output_parts"] + rec.get("cached_input_parts", 0.0)
        if total <= 0:
            raise _fail(where, "input_parts + output_parts must be positive")
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
        regions=_unique("region", regions), mixes=mix_by_id,
    )
    _check_references(profiles)
    return profiles


def _check_references(p: Profiles) -> None:
    for d in p.devices.values():
        if d.based_on is not None and d.based_on not in p.devices:
            raise EdgebenchError(f"{d.path}: based_on '{d.based_on}' names no device profile")
    for o in p.offers.values():
        if o.energy_reference is not None:
            ref = p.energy_references.get(o.energy_reference)
            if ref is None or ref.j_per_output_tok is None:
                raise EdgebenchError(
                    f"{o.path}: offer '{o.id}' energy_reference '{o.energy_reference}' names no "
                    "energy reference with j_per_output_tok"
                )


# ---------------------------------------------------------------- matching
def split_accelerators(accelerators: str) -> tuple[str, ...]:
    """The fingerprint lists accelerators separated by ';' (',' also accepted)."""
    parts = accelerators.replace(",", ";").split(";")
    return tuple(p.strip() for p in parts if p.strip())


def match_device(
    cpu_model: str,
    accelerators: str,
    profiles: Profiles | Iterable[DeviceProfile],
    *,
    cpu_cores_logical: int | None = None,
) -> DeviceProfile | None:
    """Exact match only: a profile matches when every criterion it lists equals the fingerprint.

    Guessing a device from a similar name would price the wrong hardware, so there is no fuzzy
    matching. When several profiles match, the one with the most criteria wins (an accelerator
    plus CPU match beats a CPU-only match); a tie between different profiles returns None.
    Pass accelerators="" for CPU-only runs so a GPU profile is not picked for them.
    """
    devices = profiles.devices.values() if isinstance(profiles, Profiles) else profiles
    accs = set(split_accelerators(accelerators))
    best: list[tuple[int, DeviceProfile]] = []
    for d in devices:
        criteria = 0
        if d.match_cpu_model:
            if cpu_model not in d.match_cpu_model:
                continue
            criteria += 1
        if d.match_accelerators:
            if not accs & set(d.match_accelerators):
                continue
            criteria += 1
        if d.match_cpu_cores_logical is not None:
            if cpu_cores_logical != d.match_cpu_cores_logical:
                continue
            criteria += 1
        if criteria:
            best.append((criteria, d))
    if not best:
        return None
    top = max(c for c, _ in best)
    winners = [d for c, d in best if c == top]
    return winners[0] if len(winners) == 1 else None


def import_litellm(json_path: Path, out_path: Path, *, root: Path | None = None) -> "ImportSummary":
    """Refreshes API prices from a LiteLLM price map; see bench.litellm_import."""
    from bench.litellm_import import import_litellm as _impl

    return _impl(json_path, out_path, root=root)

