"""CPU package and DRAM energy from the Linux powercap RAPL counters (Intel, and AMD Zen).

AMD Zen CPUs appear under the same `intel-rapl` control type since Linux 5.8 (driver
intel_rapl_msr), so one reader serves both. `amd-rapl:*` is not a mainline name but is also
accepted, harmlessly. `intel-rapl-mmio:*` duplicates package-0 over MMIO and is skipped so the
package is not counted twice. Counters are read only at window edges: no thread.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from bench.errors import EdgebenchError
from bench.energy.meters.base import Probe, Reading

DEFAULT_ROOT = Path("/sys/class/powercap")
ZONE_PREFIXES = ("intel-rapl:", "amd-rapl:")
UPDATE_PERIOD_S = 0.001  # RAPL counters refresh about every millisecond
PERMISSION_FIX = (
    "run `sudo chmod o+r /sys/class/powercap/intel-rapl:*/energy_uj` (resets at boot; "
    "make it permanent with a udev rule or /etc/sysfs.conf)"
)

TextReader = Callable[[Path], str]


def read_sysfs(path: Path) -> str:
    """Plain read; a hook so tests can reproduce the non-root kernel's EACCES while running as root."""
    with open(path, "rb") as f:
        return f.read().decode()


@dataclass(frozen=True)
class RaplZone:
    domain: str  # "package-0" or "package-0/dram"
    energy_path: Path
    max_energy_range_uj: int


def _zone_dirs(root: Path) -> list[Path]:
    """Zones listed flat (/sys/class/powercap/intel-rapl:0:0) or nested under their parent."""
    found: dict[str, Path] = {}

    def add(d: Path) -> None:
        if d.name.startswith(ZONE_PREFIXES) and d.is_dir():
            found.setdefault(d.name, d)

    for d in sorted(root.iterdir()):
        add(d)
        if d.name in ("intel-rapl", "amd-rapl") and d.is_dir():  # the control-type directory
            for child in sorted(d.iterdir()):
                add(child)
    for d in list(found.values()):
        for child in sorted(d.iterdir()):
            add(child)
    return sorted(found.values(), key=lambda p: _zone_id(p.name))


def _zone_id(name: str) -> tuple[str, tuple[int, ...]]:
    prefix, _, rest = name.partition(":")
    return prefix, tuple(int(x) for x in rest.split(":") if x.isdigit())


def _read_text(path: Path, reader: TextReader) -> str:
    try:
        return reader(path)
    except PermissionError as exc:
        raise EdgebenchError(f"RAPL file {path} is not readable (root-only since CVE-2020-8694): {PERMISSION_FIX}") from exc
    except OSError as exc:
        raise EdgebenchError(f"cannot read RAPL file {path}: {exc.strerror or exc}; check the powercap driver (modprobe intel_rapl_msr)") from exc


def _read_int(path: Path, reader: TextReader) -> int:
    text = _read_text(path, reader)
    try:
        return int(text.strip())
    except ValueError as exc:
        raise EdgebenchError(f"RAPL file {path} holds {text.strip()!r}, not an integer; the powercap driver looks broken") from exc


def discover_zones(root: Path = DEFAULT_ROOT, *, reader: TextReader = read_sysfs) -> list[RaplZone]:
    """Every package (and psys) zone with its core/uncore/dram subzones, named by their `name` files."""
    if not root.is_dir():
        raise EdgebenchError(f"no {root} (VM or non-Linux): RAPL is unavailable here; use another meter")
    dirs = _zone_dirs(root)
    if not dirs:
        raise EdgebenchError(f"no intel-rapl zones under {root}: load the driver with `sudo modprobe intel_rapl_msr` (bare-metal x86 only)")
    names: dict[str, str] = {}
    zones = []
    for d in dirs:
        name = _read_text(d / "name", reader).strip()
        prefix, ids = _zone_id(d.name)
        names[d.name] = name
        if len(ids) > 1:
            parent = f"{prefix}:" + ":".join(str(i) for i in ids[:-1])
            domain = f"{names.get(parent, parent)}/{name}"
        else:
            domain = name
        max_uj = _read_int(d / "max_energy_range_uj", reader)
        zones.append(RaplZone(domain=domain, energy_path=d / "energy_uj", max_energy_range_uj=max_uj))
    return zones


class RaplMeter:
    """Reads every zone's energy_uj at window edges and unwraps each counter separately."""

    method = "rapl"
    sampling_interval_s: float | None = None
    update_period_s = UPDATE_PERIOD_S
    is_estimate = False

    def __init__(self, root: Path = DEFAULT_ROOT, *, reader: TextReader = read_sysfs, clock: Callable[[], float] = time.monotonic) -> None:
        self.zones = discover_zones(root, reader=reader)
        self.scope = "cpu_package+dram" if any(z.domain.endswith("dram") for z in self.zones) else "cpu_package"
        self._reader = reader
        self._clock = clock
        self._last_raw_uj: dict[str, int] = {}
        self._acc_uj: dict[str, int] = {}

    def start(self) -> None:
        self._last_raw_uj = {z.domain: _read_int(z.energy_path, self._reader) for z in self.zones}
        self._acc_uj = {z.domain: 0 for z in self.zones}

    def read(self) -> Reading:
        """Joules since start(). A counter below its last value wrapped at max_energy_range_uj.

        Only one wrap between two reads can be detected (~260 kJ per wrap: tens of minutes at
        package power), which window-edge reads always satisfy.
        """
        if not self._last_raw_uj:
            raise RuntimeError("RaplMeter.read() before start()")
        t_s = self._clock()
        for z in self.zones:
            raw = _read_int(z.energy_path, self._reader)
            last = self._last_raw_uj[z.domain]
            delta = raw - last if raw >= last else (z.max_energy_range_uj - last) + raw
            self._acc_uj[z.domain] += delta
            self._last_raw_uj[z.domain] = raw
        return Reading(t_s=t_s, joules={d: uj * 1e-6 for d, uj in self._acc_uj.items()})

    def stop(self) -> None:
        pass


def probe_rapl(root: Path = DEFAULT_ROOT, *, reader: TextReader = read_sysfs) -> Probe:
    """Actually reads every counter once: os.access() says yes to root even where reads fail."""
    try:
        zones = discover_zones(root, reader=reader)
        for z in zones:
            _read_int(z.energy_path, reader)
    except EdgebenchError as exc:
        return Probe("rapl", False, "cpu_package", UPDATE_PERIOD_S, str(exc))
    scope = "cpu_package+dram" if any(z.domain.endswith("dram") for z in zones) else "cpu_package"
    return Probe("rapl", True, scope, UPDATE_PERIOD_S, "zones: " + ", ".join(z.domain for z in zones))


def probe(ctx: Any) -> Probe:
    """Registry hook (bench.energy.meters): reads energy_uj, so EACCES shows up now."""
    return probe_rapl(ctx.powercap, reader=ctx.rapl_reader)


def open_meter(ctx: Any) -> RaplMeter:
    found = probe(ctx)
    if not found.available:
        raise EdgebenchError(found.detail)
    return RaplMeter(ctx.powercap, reader=ctx.rapl_reader)
