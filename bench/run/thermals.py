"""CPU frequency and temperature before/after a test, so throttled results are visible as such."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Sensor names that mean "the CPU", best first (psutil sensor groups and thermal_zone types).
PREFERRED_SENSORS = ("x86_pkg_temp", "coretemp", "k10temp", "cpu_thermal", "cpu-thermal", "cpu", "soc_thermal", "soc", "acpitz")
PREFERRED_LABELS = ("package id 0", "tctl", "tdie")


@dataclass(frozen=True)
class ThermalReading:
    cpu_freq_mhz: float | None
    cpu_temp_c: float | None


def _rank(name: str) -> int | None:
    name = name.lower()
    for i, pref in enumerate(PREFERRED_SENSORS):
        if name == pref or name.startswith(pref):
            return i
    return None


def _psutil_freq_mhz() -> float | None:
    import psutil

    try:
        freq = psutil.cpu_freq()
    except (OSError, NotImplementedError, AttributeError):
        return None
    return float(freq.current) if freq and freq.current else None


def _psutil_temp_c() -> float | None:
    import psutil

    read = getattr(psutil, "sensors_temperatures", None)  # missing on macOS and Windows
    if read is None:
        return None
    try:
        groups = read()
    except (OSError, NotImplementedError):
        return None
    ranked = sorted((r, name) for name in groups if (r := _rank(name)) is not None)
    for _, name in ranked:
        entries = groups[name]
        for entry in entries:
            if entry.label.lower() in PREFERRED_LABELS:
                return float(entry.current)
        if entries:
            return float(entries[0].current)
    return None


def _read_float(path: Path) -> float | None:
    try:
        return float(path.read_text().strip())
    except (OSError, ValueError):
        return None


def sysfs_freq_mhz(sys_root: Path) -> float | None:
    """Mean scaling_cur_freq (kHz) over CPUs."""
    values = [v for p in (sys_root / "sys/devices/system/cpu").glob("cpu[0-9]*/cpufreq/scaling_cur_freq") if (v := _read_float(p))]
    return sum(values) / len(values) / 1000.0 if values else None


def sysfs_temp_c(sys_root: Path) -> float | None:
    """The best-ranked thermal zone's temp (millidegrees C); unrelated zones (battery, wifi) are ignored."""
    best: tuple[int, float] | None = None
    for zone in (sys_root / "sys/class/thermal").glob("thermal_zone*"):
        try:
            kind = (zone / "type").read_text().strip()
        except OSError:
            continue
        rank = _rank(kind)
        temp = _read_float(zone / "temp")
        if rank is not None and temp is not None and (best is None or rank < best[0]):
            best = (rank, temp / 1000.0)
    return best[1] if best else None


def read_thermals(sys_root: Path = Path("/"), *, use_psutil: bool | None = None) -> ThermalReading:
    """psutil first on the real root (it knows more platforms); sysfs from `sys_root` otherwise."""
    if use_psutil is None:
        use_psutil = sys_root == Path("/")
    freq = _psutil_freq_mhz() if use_psutil else None
    temp = _psutil_temp_c() if use_psutil else None
    return ThermalReading(
        cpu_freq_mhz=freq if freq is not None else sysfs_freq_mhz(sys_root),
        cpu_temp_c=temp if temp is not None else sysfs_temp_c(sys_root),
    )


def throttle_drop(values: list[float]) -> float | None:
    """1 − last/first: 0.4 means the last value is 40% below the first (for --sustained runs)."""
    if len(values) < 2 or not values[0]:
        return None
    return 1.0 - values[-1] / values[0]
