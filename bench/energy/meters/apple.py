"""Apple Silicon: CPU, GPU, ANE and DRAM energy through zeus-apple-silicon (IOReport, no sudo),
and the battery through `ioreg -rn AppleSmartBattery` when the Mac runs on battery.

zeus-apple-silicon subscribes to IOReport's "Energy Model" channel group and reports its CPU,
GPU, GPU SRAM, ANE and DRAM channels; edgebench sums CPU, GPU, ANE and DRAM. Other SoC blocks
(display, media engines, fabric, I/O) are not read, so the scope names the blocks actually
summed (`cpu+gpu+ane+dram`, fewer where a chip lacks a channel), not `soc`. Apple computes these counters from a model of activity,
frequency and voltage (the "Energy Model" group; Zeus: "believed to be model-based estimates"),
so the method is `apple-ioreport`: energy reported by the OS, not an electrical measurement and
not an edgebench estimate. The battery meter reads current × voltage at the battery, i.e. the
whole Mac on DC: method `battery`, scope `system_dc`.
zeus-apple-silicon builds only on macOS, so the monitor object is injectable for tests.
"""

from __future__ import annotations

import platform
import re
import subprocess
import time
from typing import Any, Callable, Container

from bench.errors import EdgebenchError
from bench.energy.meters.base import Probe, Reading, SampledMeter

SOC_UPDATE_PERIOD_S = 0.001  # counters are read on demand with 1 mJ resolution (not independently verified)
IOREG_UPDATE_PERIOD_S = 1.0  # the smart battery refreshes InstantAmperage about once a second
IOREG_SAMPLING_INTERVAL_S = 1.0  # each sample runs ioreg: do not poll faster than the gauge
# zeus-apple-silicon AppleEnergyMetrics fields (mJ, Optional) -> domain key. gpu_sram is kept as a
# GPU subdomain (not added to the total) because its overlap with gpu_mj is not documented.
ZEUS_FIELDS = {"cpu_total_mj": "cpu", "gpu_mj": "gpu", "ane_mj": "ane", "dram_mj": "dram", "gpu_sram_mj": "gpu/sram"}
APPLE_METHOD = "apple-ioreport"  # rows' energy_method; `--energy apple` still selects this source
APPLE_SCOPE_ALL = "cpu+gpu+ane+dram"  # what the meter covers on a chip with every channel


def apple_scope(domains: Container[str]) -> str:
    """The summed blocks in a fixed order (gpu/sram is inside gpu): e.g. `cpu+gpu+dram`."""
    return "+".join(d for d in APPLE_SCOPE_ALL.split("+") if d in domains)

IoregRunner = Callable[[], str]


def load_zeus_monitor(monitor: Any = None) -> Any:
    if monitor is not None:
        return monitor
    if platform.system() != "Darwin":
        raise EdgebenchError("not macOS: the apple meter needs an Apple Silicon Mac")
    try:
        from zeus_apple_silicon import AppleEnergyMonitor  # type: ignore[import-not-found]
    except ImportError as exc:
        raise EdgebenchError("zeus-apple-silicon not installed: `pip install zeus-apple-silicon` (no sudo needed)") from exc
    return AppleEnergyMonitor()


class AppleSocMeter:
    """Cumulative mJ per SoC block from AppleEnergyMonitor.get_cumulative_energy().

    The scope is fixed when the meter opens, from the channels this chip reports.
    """

    method = APPLE_METHOD
    scope = APPLE_SCOPE_ALL
    sampling_interval_s: float | None = None
    update_period_s = SOC_UPDATE_PERIOD_S
    is_estimate = False

    def __init__(self, monitor: Any = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._monitor = load_zeus_monitor(monitor)
        self._clock = clock
        self._base_j: dict[str, float] = {}
        self.scope = apple_scope(self._cumulative_j())

    def _cumulative_j(self) -> dict[str, float]:
        metrics = self._monitor.get_cumulative_energy()
        out = {}
        for fld, domain in ZEUS_FIELDS.items():
            mj = getattr(metrics, fld, None)
            if mj is not None:  # None: the channel does not exist on this chip
                out[domain] = float(mj) * 1e-3
        if not out:
            raise EdgebenchError("zeus-apple-silicon returned no energy channels: this Mac's IOReport has no energy model")
        return out

    def start(self) -> None:
        self._base_j = self._cumulative_j()

    def read(self) -> Reading:
        t_s = self._clock()
        now = self._cumulative_j()
        return Reading(t_s=t_s, joules={d: j - self._base_j.get(d, 0.0) for d, j in now.items()})

    def stop(self) -> None:
        pass


def run_ioreg() -> str:
    try:
        out = subprocess.run(["ioreg", "-rn", "AppleSmartBattery"], capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        raise EdgebenchError(f"`ioreg -rn AppleSmartBattery` failed ({exc}): is this a Mac with a battery?") from exc
    return out.stdout


_TOP_LEVEL = re.compile(r'^\s*"(\w+)" = (.+?)\s*$')


def parse_ioreg(text: str) -> dict[str, str]:
    """Top-level `"Key" = value` lines; nested dictionaries (`{"Voltage"=...}`) are ignored."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        m = _TOP_LEVEL.match(line)
        if m and m.group(1) not in out:
            out[m.group(1)] = m.group(2)
    return out


def _signed64(value: str) -> int:
    """ioreg prints negative amperages as unsigned 64-bit (e.g. 18446744073709550616 = -1000)."""
    n = int(value)
    return n - (1 << 64) if n >= (1 << 63) else n


def ioreg_power_w(fields: dict[str, str]) -> float:
    """|InstantAmperage (mA)| × Voltage (mV); Amperage (averaged) when InstantAmperage is absent."""
    amps_key = "InstantAmperage" if "InstantAmperage" in fields else "Amperage"
    if amps_key not in fields or "Voltage" not in fields:
        raise EdgebenchError("ioreg AppleSmartBattery has no InstantAmperage/Amperage or Voltage: cannot measure the battery")
    return abs(_signed64(fields[amps_key])) * 1e-3 * int(fields["Voltage"]) * 1e-3


def ioreg_on_battery(fields: dict[str, str]) -> tuple[bool, str]:
    if fields.get("ExternalConnected") == "Yes":
        return False, "on AC power (ExternalConnected=Yes): unplug the charger to measure the battery"
    if fields.get("IsCharging") == "Yes":
        return False, "battery charging (IsCharging=Yes): unplug the charger"
    if "ExternalConnected" not in fields:
        return False, "ioreg shows no AppleSmartBattery (desktop Mac?)"
    return True, "on battery: InstantAmperage×Voltage (mA×mV) via ioreg, sampled"


def open_ioreg_battery(
    ioreg: IoregRunner = run_ioreg,
    *,
    sampling_interval_s: float = IOREG_SAMPLING_INTERVAL_S,
    clock: Callable[[], float] = time.monotonic,
    wait: Callable[[float], bool] | None = None,
) -> SampledMeter:
    def sample() -> dict[str, float]:
        fields = parse_ioreg(ioreg())
        ok, why = ioreg_on_battery(fields)
        if not ok:
            raise EdgebenchError(f"battery meter invalid: {why}")
        return {"battery": ioreg_power_w(fields)}

    sample()  # fail now, not in the sampler thread
    return SampledMeter(
        sample,
        method="battery",
        scope="system_dc",
        sampling_interval_s=sampling_interval_s,
        update_period_s=IOREG_UPDATE_PERIOD_S,
        sample_on_read=False,  # ioreg is a subprocess: do not run it inside a timed window edge
        clock=clock,
        wait=wait,
    )


def probe_apple(monitor: Any = None, *, system: str | None = None) -> Probe:
    system = system or platform.system()
    if monitor is None and system != "Darwin":
        return Probe("apple", False, APPLE_SCOPE_ALL, SOC_UPDATE_PERIOD_S, "not macOS")
    try:
        meter = AppleSocMeter(monitor)
        meter.start()
        domains = sorted(meter.read().joules)
    except EdgebenchError as exc:
        return Probe("apple", False, APPLE_SCOPE_ALL, SOC_UPDATE_PERIOD_S, str(exc))
    return Probe("apple", True, meter.scope, SOC_UPDATE_PERIOD_S,
                 f"{APPLE_METHOD}: IOReport Energy Model (Apple's model-based figures) via zeus-apple-silicon: " + ", ".join(domains))


def probe_ioreg_battery(ioreg: IoregRunner = run_ioreg) -> Probe:
    try:
        fields = parse_ioreg(ioreg())
        ok, why = ioreg_on_battery(fields)
        if ok:
            ioreg_power_w(fields)
    except EdgebenchError as exc:
        return Probe("battery", False, "system_dc", IOREG_UPDATE_PERIOD_S, str(exc))
    return Probe("battery", ok, "system_dc", IOREG_UPDATE_PERIOD_S, why)


def probe(ctx: Any) -> Probe:
    """Registry hook (bench.energy.meters)."""
    return probe_apple(ctx.zeus_monitor, system=ctx.system)


def open_meter(ctx: Any) -> AppleSocMeter:
    return AppleSocMeter(ctx.zeus_monitor)
