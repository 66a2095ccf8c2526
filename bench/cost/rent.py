"""What renting costs: cloud VM rent by vCPU count, and self-hosting a model on a rented GPU.

On a rented machine the marginal cost of a token is the rent for the seconds it takes, not the
electricity (the provider pays that). Both tables live in hardware_profiles/rent/ with a source for
every figure, parsed as strictly as the other profiles; the rules are in docs/rent.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence, TypeVar

from bench.cost.profile_checks import Spec, check_sources, check_table, fail
from bench.cost.source import Source
from bench.errors import EdgebenchError
from bench.toml_load import load_toml

VM_RENT_FILE = "rent/vm_rent.toml"  # under the profiles root
GPU_THROUGHPUT_FILE = "rent/gpu_throughput.toml"

VM_RENT: Spec = {
    "id": ("str", True), "provider": ("str", True), "instance": ("str", True),
    "region": ("str", True), "notes": ("str", False), "vcpus": ("int", True),
    "ram_gib": ("figure", True), "usd_per_hour": ("figure", True),
}
GPU_THROUGHPUT: Spec = {
    "id": ("str", True), "model": ("str", True), "gpu": ("str", True), "gpus": ("int", True),
    "batch": ("int", True), "precision": ("str", False), "engine": ("str", False),
    "workload": ("str", False), "notes": ("str", False),
    "parameters": ("figure", True), "output_tok_s": ("figure", True),
}


@dataclass(frozen=True)
class VmRent:
    """One cloud VM's on-demand price per hour."""

    id: str
    provider: str
    instance: str
    region: str
    vcpus: int
    ram_gib: float
    usd_per_hour: float
    path: Path
    notes: str | None = None
    sources: Mapping[str, Source] = field(default_factory=dict)


@dataclass(frozen=True)
class GpuThroughput:
    """Published sustained output tokens/s of one model served on `gpus` GPUs of class `gpu`."""

    id: str
    model: str  # Hugging Face id
    gpu: str  # matches GpuRental.model_class
    gpus: int
    batch: int
    parameters: float
    output_tok_s: float
    path: Path
    precision: str | None = None
    engine: str | None = None
    workload: str | None = None
    notes: str | None = None
    sources: Mapping[str, Source] = field(default_factory=dict)


@dataclass(frozen=True)
class TypicalRent:
    """The rent typical_rent chose for a vCPU count, with what the output must say about it."""

    vcpus: int  # asked for
    rent: VmRent  # the chosen listed instance (its source is the figure's source)
    candidates: tuple[VmRent, ...]  # every listed instance of rent.vcpus, cheapest first

    @property
    def usd_per_hour(self) -> float:
        return self.rent.usd_per_hour

    @property
    def exact(self) -> bool:
        return self.rent.vcpus == self.vcpus

    @property
    def label(self) -> str:
        r = self.rent
        others = ", ".join(f"{c.provider} {c.instance} ${c.usd_per_hour:.4g}"
                           for c in self.candidates)
        size = "" if self.exact else f" (no {self.vcpus}-vCPU instance listed: next larger size)"
        plural = "" if self.vcpus == 1 else "s"
        return (f"typical on-demand rent for {self.vcpus} vCPU{plural}{size}: "
                f"${r.usd_per_hour:.4g}/h, {r.provider} {r.instance} ({r.region}), "
                f"the median of {len(self.candidates)} "
                f"general-purpose {r.vcpus}-vCPU instances ({others})")


def _root(root: Path | None) -> Path:
    if root is None:
        from bench.paths import profiles_dir

        return profiles_dir()
    return Path(root)


Row = tuple[dict[str, Any], dict[str, Source]]


def _rows(path: Path, key: str, spec: Spec, positive: Sequence[str]) -> list[Row]:
    doc = load_toml(path)
    check_table(str(path), doc, {}, extra=(key,))
    items = doc.get(key, [])
    if not isinstance(items, list):
        raise fail(str(path), f"{key} must be an array of tables ([[{key}]])")
    out, seen = [], set()
    for i, table in enumerate(items):
        where = f"{path} {key}[{i}]" + (f" ({table.get('id')})" if isinstance(table, dict) else "")
        rec = check_table(where, table, spec, extra=("sources",))
        sources = check_sources(where, rec, spec, rec.pop("sources", None))
        for name in positive:
            if rec[name] <= 0:
                raise fail(where, f"{name} must be positive ({rec[name]!r})")
        if rec["id"] in seen:
            raise fail(where, f"id '{rec['id']}' is defined twice")
        seen.add(rec["id"])
        out.append((rec, sources))
    return out


def load_vm_rents(root: Path | None = None) -> tuple[VmRent, ...]:
    """hardware_profiles/rent/vm_rent.toml (root: the profiles root, default profiles_dir())."""
    path = _root(root) / VM_RENT_FILE
    rows = _rows(path, "vm_rents", VM_RENT, ("vcpus", "ram_gib", "usd_per_hour"))
    return tuple(VmRent(**rec, path=path, sources=src) for rec, src in rows)


def load_gpu_throughputs(root: Path | None = None) -> tuple[GpuThroughput, ...]:
    """hardware_profiles/rent/gpu_throughput.toml (root: the profiles root)."""
    path = _root(root) / GPU_THROUGHPUT_FILE
    rows = _rows(path, "gpu_throughputs", GPU_THROUGHPUT,
                 ("gpus", "batch", "parameters", "output_tok_s"))
    return tuple(GpuThroughput(**rec, path=path, sources=src) for rec, src in rows)


def typical_rent(rents: Iterable[VmRent], vcpus: int) -> TypicalRent | None:
    """The median listed instance with exactly `vcpus` vCPUs, else of the next larger count.

    A VM cannot be rented with fewer vCPUs than the run used, hence "next larger". With an even
    number of instances the lower of the two middle prices is taken, so the figure is always one
    listed instance's price, with that instance's source. None when no instance is large enough.
    """
    if vcpus < 1:
        raise EdgebenchError(f"a VM has at least 1 vCPU, not {vcpus}")
    rents = list(rents)
    sizes = sorted({r.vcpus for r in rents if r.vcpus >= vcpus})
    if not sizes:
        return None
    candidates = tuple(sorted((r for r in rents if r.vcpus == sizes[0]),
                              key=lambda r: (r.usd_per_hour, r.id)))
    return TypicalRent(vcpus=vcpus, rent=candidates[(len(candidates) - 1) // 2],
                       candidates=candidates)


def rent_usd_per_mtok(usd_per_hour: float, device_s_per_mtok: float) -> float:
    """A million tokens' marginal cost on a rented machine: the rent for the time they take."""
    return usd_per_hour / 3600.0 * device_s_per_mtok


T = TypeVar("T")


def nearest_by_parameters(items: Iterable[T], parameters: float) -> T | None:
    """The item whose `.parameters` is nearest `parameters` by ratio (log distance); ties: smaller.

    Works for GpuThroughput and for energy references (EnergyReference.parameters); items without
    a parameter count are skipped.
    """
    if not parameters > 0:
        raise EdgebenchError(f"a model's parameter count must be positive, not {parameters!r}")
    sized = [i for i in items if getattr(i, "parameters", None)]
    if not sized:
        return None
    return min(sized, key=lambda i: (abs(math.log(i.parameters / parameters)), i.parameters,
                                     getattr(i, "id", "")))


def nearest_throughput(throughputs: Iterable[GpuThroughput], parameters: float,
                       gpu: str) -> GpuThroughput | None:
    """The published throughput on GPU class `gpu` for the model nearest in size; None if none."""
    return nearest_by_parameters((t for t in throughputs if t.gpu == gpu), parameters)


def self_host_usd_per_mtok(rental: Any, throughput: GpuThroughput) -> float:
    """USD per million output tokens of serving `throughput`'s model on rented GPUs.

    rental: a GpuRental (usd_per_gpu_hour, model_class). usd_per_gpu_hour x gpus / 3600 /
    output_tok_s x 1e6. Output tokens only: the throughput was measured with the benchmark's own
    prompts being processed in the same time (docs/rent.md).
    """
    if rental.model_class != throughput.gpu:
        raise EdgebenchError(
            f"GPU rental '{rental.id}' is a {rental.model_class} but throughput "
            f"'{throughput.id}' was measured on {throughput.gpu}: pick a throughput for "
            f"{rental.model_class} (hardware_profiles/{GPU_THROUGHPUT_FILE})")
    return rental.usd_per_gpu_hour * throughput.gpus / 3600.0 / throughput.output_tok_s * 1e6
