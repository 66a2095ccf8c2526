"""NVIDIA GPU energy through NVML (nvidia-ml-py): the total-energy counter where the GPU has one
(Volta and newer), otherwise board power sampled and integrated.

The `nvml` argument is the `pynvml` module or any object with the same functions, so tests pass a
fake and machines without the package never import it.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from bench.errors import EdgebenchError
from bench.energy.meters.base import Probe, Reading, SampledMeter

UPDATE_PERIOD_S = 0.1  # NVML energy and power refresh about every 100 ms
DEFAULT_SAMPLING_INTERVAL_S = 0.05


def load_nvml(nvml: Any = None) -> Any:
    """The given object, or the real pynvml imported only now (it is optional)."""
    if nvml is not None:
        return nvml
    try:
        import pynvml  # type: ignore[import-not-found]
    except ImportError as exc:
        raise EdgebenchError("pynvml not installed: `pip install nvidia-ml-py` to measure NVIDIA GPUs") from exc
    return pynvml


def _nvml_error(nvml: Any) -> type[BaseException]:
    err = getattr(nvml, "NVMLError", None)
    return err if isinstance(err, type) and issubclass(err, BaseException) else Exception


def _init(nvml: Any) -> list[Any]:
    try:
        nvml.nvmlInit()
        count = int(nvml.nvmlDeviceGetCount())
    except _nvml_error(nvml) as exc:
        raise EdgebenchError(f"NVML init failed ({exc}): no NVIDIA driver or GPU here") from exc
    if count == 0:
        nvml.nvmlShutdown()
        raise EdgebenchError("NVML found no NVIDIA GPU")
    return [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]


def _has_energy_counter(nvml: Any, handle: Any) -> bool:
    try:
        nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    except _nvml_error(nvml):  # NVML_ERROR_NOT_SUPPORTED before Volta
        return False
    return True


class NvmlMeter:
    """All GPUs, keyed gpu-0, gpu-1, ...: counters read at window edges, the rest sampled."""

    method = "nvml"
    scope = "gpu"
    update_period_s = UPDATE_PERIOD_S
    is_estimate = False

    def __init__(
        self,
        nvml: Any = None,
        *,
        sampling_interval_s: float = DEFAULT_SAMPLING_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
        wait: Callable[[float], bool] | None = None,
    ) -> None:
        self._nvml = load_nvml(nvml)
        handles = _init(self._nvml)
        self._clock = clock
        self.counter_handles = {f"gpu-{i}": h for i, h in enumerate(handles) if _has_energy_counter(self._nvml, h)}
        self.power_handles = {f"gpu-{i}": h for i, h in enumerate(handles) if f"gpu-{i}" not in self.counter_handles}
        self._sampler: SampledMeter | None = None
        if self.power_handles:
            self._sampler = SampledMeter(
                self._power_w,
                method=self.method,
                scope=self.scope,
                sampling_interval_s=sampling_interval_s,
                update_period_s=UPDATE_PERIOD_S,
                clock=clock,
                wait=wait,
            )
        self.sampling_interval_s: float | None = sampling_interval_s if self._sampler else None
        self._base_mj: dict[str, int] = {}

    def _power_w(self) -> dict[str, float]:
        return {k: self._nvml.nvmlDeviceGetPowerUsage(h) * 1e-3 for k, h in self.power_handles.items()}  # mW

    def _energy_mj(self) -> dict[str, int]:
        return {k: int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(h)) for k, h in self.counter_handles.items()}

    def start(self) -> None:
        self._base_mj = self._energy_mj()
        if self._sampler:
            self._sampler.start()

    def read(self) -> Reading:
        """mJ counters since start() plus the sampled GPUs' integral; NVML's counter is 64-bit, no wrap."""
        joules: dict[str, float] = {}
        t_s = self._clock()
        for k, mj in self._energy_mj().items():
            joules[k] = (mj - self._base_mj[k]) * 1e-3
        if self._sampler:
            r = self._sampler.read()
            joules.update(r.joules)
            t_s = r.t_s
        return Reading(t_s=t_s, joules=joules)

    def stop(self) -> None:
        try:
            if self._sampler:
                self._sampler.stop()
        finally:
            self._nvml.nvmlShutdown()


def probe_nvml(nvml: Any = None) -> Probe:
    try:
        lib = load_nvml(nvml)
        handles = _init(lib)
    except EdgebenchError as exc:
        return Probe("nvml", False, "gpu", UPDATE_PERIOD_S, str(exc))
    try:
        kinds = ["energy counter" if _has_energy_counter(lib, h) else "power sampled" for h in handles]
    finally:
        lib.nvmlShutdown()
    detail = ", ".join(f"gpu-{i}: {k}" for i, k in enumerate(kinds))
    return Probe("nvml", True, "gpu", UPDATE_PERIOD_S, detail)


def probe(ctx: Any) -> Probe:
    """Registry hook (bench.energy.meters)."""
    return probe_nvml(ctx.nvml)


def open_meter(ctx: Any) -> NvmlMeter:
    return NvmlMeter(ctx.nvml)
