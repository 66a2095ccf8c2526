"""Whole-system DC power from the battery gauge (/sys/class/power_supply): laptops, Android, boards.

Only meaningful while the battery is discharging: on AC or USB power the charger feeds the system
and the gauge sees the charge current instead. Units follow the kernel ABI (power_now µW,
current_now µA, voltage_now µV, energy_now µWh, charge_now µAh), with two tolerated deviations:
Android gauges report current_now with either sign while discharging (the magnitude is used), and
some vendor kernels report current_now in mA and voltage_now in mV. With unit "auto",
|current_now| < 10 000 is read as mA (a phone running a model draws well over 10 mA) and
voltage_now < 100 000 as mV (no battery sits below 0.1 V); pass explicit units to override.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

from bench.errors import EdgebenchError
from bench.energy.meters.base import Probe, Reading, SampledMeter

DEFAULT_ROOT = Path("/sys/class/power_supply")
DEFAULT_SAMPLING_INTERVAL_S = 0.5
SAMPLED_UPDATE_PERIOD_S = 1.0  # fuel gauges refresh power/current about once a second (some slower)
COUNTER_UPDATE_PERIOD_S = 5.0  # energy_now/charge_now move in steps every few seconds (ACPI _BST, EC)

Unit = Literal["auto", "micro", "milli"]
Source = Literal["power_now", "current_now", "energy_now", "charge_now"]


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip()
    except OSError:
        return None


def _read_num(path: Path) -> int | None:
    text = _read(path)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def to_amps(raw: int, unit: Unit = "auto") -> float:
    """current_now magnitude in A (sign dropped: Android uses both conventions)."""
    milli = unit == "milli" or (unit == "auto" and 0 < abs(raw) < 10_000)
    return abs(raw) * (1e-3 if milli else 1e-6)


def to_volts(raw: int, unit: Unit = "auto") -> float:
    milli = unit == "milli" or (unit == "auto" and 0 < abs(raw) < 100_000)
    return abs(raw) * (1e-3 if milli else 1e-6)


@dataclass(frozen=True)
class Battery:
    name: str
    path: Path
    source: Source | None


def _source(d: Path) -> Source | None:
    """The best quantity this battery exposes: instantaneous power first, coarse counters last.

    A zero power_now/current_now on a discharging battery means "not implemented"; on an idle
    second pack (dual-battery laptops) it is a genuine zero.
    """
    idle = _read(d / "status") != "Discharging"
    power_now = _read_num(d / "power_now")
    if power_now is not None and (power_now != 0 or idle):
        return "power_now"
    current_now = _read_num(d / "current_now")
    if current_now is not None and (current_now != 0 or idle) and _read_num(d / "voltage_now"):
        return "current_now"
    if _read_num(d / "energy_now") is not None:
        return "energy_now"
    if _read_num(d / "charge_now") is not None and _read_num(d / "voltage_now"):
        return "charge_now"
    return None


def find_batteries(root: Path = DEFAULT_ROOT) -> list[Battery]:
    """System batteries only: `scope` Device marks a mouse or headset battery, not this machine's."""
    if not root.is_dir():
        return []
    found = []
    for d in sorted(root.iterdir()):
        if _read(d / "type") != "Battery" or _read(d / "scope") == "Device":
            continue
        found.append(Battery(d.name, d, _source(d)))
    return found


def statuses(batteries: list[Battery]) -> dict[str, str]:
    return {b.name: _read(b.path / "status") or "Unknown" for b in batteries}


def check_discharging(batteries: list[Battery]) -> None:
    """At least one battery discharging and none charging (dual-battery laptops drain one at a time)."""
    st = statuses(batteries)
    if "Charging" in st.values() or "Discharging" not in st.values():
        shown = ", ".join(f"{n} {s}" for n, s in st.items())
        raise EdgebenchError(f"battery not discharging ({shown}): unplug the charger/USB (use adb over Wi-Fi on phones) or pick another meter")


def power_w(b: Battery, current_unit: Unit = "auto", voltage_unit: Unit = "auto") -> float:
    if b.source == "power_now":
        return abs(_need(b.path / "power_now")) * 1e-6
    if b.source == "current_now":
        return to_amps(_need(b.path / "current_now"), current_unit) * to_volts(_need(b.path / "voltage_now"), voltage_unit)
    raise ValueError(f"{b.name} has no power source")


def _need(path: Path) -> int:
    value = _read_num(path)
    if value is None:
        raise EdgebenchError(f"cannot read {path}: the battery driver stopped reporting it")
    return value


def describe(b: Battery) -> str:
    if b.source == "power_now":
        return f"{b.name}: power_now (µW), sampled"
    if b.source == "current_now":
        return f"{b.name}: current_now×voltage_now (µA×µV, auto-detects mA/mV), sampled"
    if b.source == "energy_now":
        return f"{b.name}: energy_now (µWh) only, a coarse counter refreshed every few seconds: use long windows"
    if b.source == "charge_now":
        return f"{b.name}: charge_now (µAh)×voltage_now only, a coarse counter refreshed every few seconds: use long windows"
    return f"{b.name}: no power_now/current_now/energy_now/charge_now"


def _counter_file(b: Battery) -> str:
    if _read_num(b.path / "energy_now") is not None:
        return "energy_now"
    if _read_num(b.path / "charge_now") is not None and _read_num(b.path / "voltage_now"):
        return "charge_now"
    raise EdgebenchError(f"{b.name} has neither energy_now nor charge_now: cannot count its energy")


class BatteryCounterMeter:
    """energy_now / charge_now batteries: the drop in stored energy between window edges."""

    method = "battery"
    scope = "system_dc"
    sampling_interval_s: float | None = None
    update_period_s = COUNTER_UPDATE_PERIOD_S
    is_estimate = False

    def __init__(self, batteries: list[Battery], *, voltage_unit: Unit = "auto", clock: Callable[[], float] = time.monotonic) -> None:
        self.batteries = batteries
        self._counter = {b.name: _counter_file(b) for b in batteries}
        self._voltage_unit = voltage_unit
        self._clock = clock
        self._last_raw: dict[str, int] = {}
        self._acc_j: dict[str, float] = {}

    def _raw(self, b: Battery) -> int:
        return _need(b.path / self._counter[b.name])

    def start(self) -> None:
        check_discharging(self.batteries)
        self._last_raw = {b.name: self._raw(b) for b in self.batteries}
        self._acc_j = {b.name: 0.0 for b in self.batteries}

    def read(self) -> Reading:
        check_discharging(self.batteries)
        t_s = self._clock()
        for b in self.batteries:
            raw = self._raw(b)
            drop = self._last_raw[b.name] - raw  # stored energy falls while discharging
            if self._counter[b.name] == "energy_now":
                self._acc_j[b.name] += drop * 3.6e-3  # µWh -> J
            else:  # µAh × V -> J, at the voltage of this read
                self._acc_j[b.name] += drop * 3.6e-3 * to_volts(_need(b.path / "voltage_now"), self._voltage_unit)
            self._last_raw[b.name] = raw
        return Reading(t_s=t_s, joules=dict(self._acc_j))

    def stop(self) -> None:
        pass


def open_battery(
    root: Path = DEFAULT_ROOT,
    *,
    sampling_interval_s: float = DEFAULT_SAMPLING_INTERVAL_S,
    current_unit: Unit = "auto",
    voltage_unit: Unit = "auto",
    clock: Callable[[], float] = time.monotonic,
    wait: Callable[[float], bool] | None = None,
) -> SampledMeter | BatteryCounterMeter:
    """Sampled power when every battery reports power or current, else the coarse counter."""
    batteries = [b for b in find_batteries(root) if b.source is not None]
    if not batteries:
        raise EdgebenchError(f"no readable system battery under {root}: use RAPL, an external meter log or the estimate")
    check_discharging(batteries)
    if all(b.source in ("power_now", "current_now") for b in batteries):

        def sample() -> dict[str, float]:
            check_discharging(batteries)
            return {b.name: power_w(b, current_unit, voltage_unit) for b in batteries}

        return SampledMeter(
            sample,
            method="battery",
            scope="system_dc",
            sampling_interval_s=sampling_interval_s,
            update_period_s=SAMPLED_UPDATE_PERIOD_S,
            clock=clock,
            wait=wait,
        )
    return BatteryCounterMeter(batteries, voltage_unit=voltage_unit, clock=clock)


def probe_battery(root: Path = DEFAULT_ROOT) -> Probe:
    batteries = find_batteries(root)
    if not batteries:
        why = f"no battery: no {root}" if not root.is_dir() else f"no system battery under {root}"
        return Probe("battery", False, "system_dc", None, f"{why} (desktop, server or VM)")
    usable = [b for b in batteries if b.source is not None]
    detail = "; ".join(describe(b) for b in batteries)
    if not usable:
        return Probe("battery", False, "system_dc", None, detail)
    sampled = all(b.source in ("power_now", "current_now") for b in usable)
    resolution_s = SAMPLED_UPDATE_PERIOD_S if sampled else COUNTER_UPDATE_PERIOD_S
    try:
        check_discharging(usable)
    except EdgebenchError as exc:
        return Probe("battery", False, "system_dc", resolution_s, f"{exc} [{detail}]")
    return Probe("battery", True, "system_dc", resolution_s, detail)


def probe(ctx: Any) -> Probe:
    """Registry hook (bench.energy.meters): ioreg on macOS, sysfs power_supply elsewhere."""
    if ctx.system == "Darwin":
        from bench.energy.meters.apple import probe_ioreg_battery, run_ioreg

        return probe_ioreg_battery(ctx.ioreg or run_ioreg)
    return probe_battery(ctx.power_supply)


def open_meter(ctx: Any) -> Any:
    if ctx.system == "Darwin":
        from bench.energy.meters.apple import open_ioreg_battery, run_ioreg

        return open_ioreg_battery(ctx.ioreg or run_ioreg)
    return open_battery(ctx.power_supply)
