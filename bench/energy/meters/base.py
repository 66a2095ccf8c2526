"""What every energy meter returns and promises, plus the sampler that turns watts into joules.

The runner only ever subtracts two cumulative readings, so counter sources (RAPL, NVML total
energy) cost nothing between window edges and power-only sources (battery, NVML power, ioreg)
are integrated by `SampledMeter` into a synthetic counter with the same shape.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping, Protocol

from bench.errors import EdgebenchError

# Top-level domains that already contain the others (RAPL `psys` is the whole platform,
# packages included), so adding them to the total would count the same joules twice.
_OVERLAPPING_TOP_LEVEL = frozenset({"psys"})
# Subdomains that sit physically OUTSIDE their parent zone. RAPL lists `dram` under
# `package-N` in sysfs, but DRAM energy is not part of the package counter.
_DISJOINT_SUBDOMAINS = frozenset({"dram"})


def counts_in_total(domain: str) -> bool:
    """Whether `domain` adds energy not already contained in another domain of the same reading.

    Domain keys are `zone` or `zone/subzone`. A subzone is inside its parent (RAPL core and
    uncore are slices of the package) unless it is listed as disjoint (dram).
    """
    if "/" not in domain:
        return domain not in _OVERLAPPING_TOP_LEVEL
    return domain.rsplit("/", 1)[1] in _DISJOINT_SUBDOMAINS


@dataclass(frozen=True)
class Reading:
    """Cumulative joules per domain at monotonic time `t_s`; only differences are meaningful."""

    t_s: float
    joules: dict[str, float] = field(default_factory=dict)

    @property
    def total_j(self) -> float:
        """Packages + dram (+ gpus, batteries, ...): subzones inside a package and psys are skipped."""
        return sum(j for d, j in self.joules.items() if counts_in_total(d))


class Meter(Protocol):
    """An energy source. `read()` is called at window edges; `start()`/`stop()` bracket a run.

    `sampling_interval_s` is None for counters read only at window edges. `update_period_s` is the
    source's own resolution: a window shorter than it cannot be measured meaningfully.
    """

    method: str
    scope: str
    sampling_interval_s: float | None
    update_period_s: float
    is_estimate: bool

    def start(self) -> None: ...

    def read(self) -> Reading: ...

    def stop(self) -> None: ...


@dataclass(frozen=True)
class Probe:
    """One line of `edgebench meters`: does this source work here, and if not, why."""

    method: str
    available: bool
    scope: str
    resolution_s: float | None
    detail: str


PowerSource = Callable[[], Mapping[str, float]]


class SampledMeter:
    """Samples a power-only source on a background thread and integrates it (trapezoid rule).

    `read()` takes one more sample so a window edge is exact rather than up to one interval old.
    Sources that are slow to query (ioreg: a subprocess) set `sample_on_read=False`: read() then
    extends the last sample to now instead of blocking the caller. `clock` and `wait` are injectable so tests can drive the sampler with a fake timeline:
    `wait(timeout_s)` returns True when the thread must stop (default: the stop event's wait).
    """

    def __init__(
        self,
        power_w: PowerSource,
        *,
        method: str,
        scope: str,
        sampling_interval_s: float,
        update_period_s: float,
        is_estimate: bool = False,
        sample_on_read: bool = True,
        clock: Callable[[], float] = time.monotonic,
        wait: Callable[[float], bool] | None = None,
    ) -> None:
        if sampling_interval_s <= 0:
            raise ValueError("sampling_interval_s must be positive")
        self.method = method
        self.scope = scope
        self.sampling_interval_s: float | None = sampling_interval_s
        self.update_period_s = update_period_s
        self.is_estimate = is_estimate
        self._sample_on_read = sample_on_read
        self._power_w = power_w
        self._clock = clock
        self._stop_event = threading.Event()
        self._wait = wait if wait is not None else self._stop_event.wait
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._last_t_s: float | None = None
        self._last_w: dict[str, float] = {}
        self._acc_j: dict[str, float] = {}

    def start(self) -> None:
        """First sample (cumulative zero), then the background thread."""
        with self._lock:
            self._last_t_s = self._clock()
            self._last_w = dict(self._power_w())
            self._acc_j = {d: 0.0 for d in self._last_w}
            self._error = None
        self._stop_event.clear()
        self._thread = threading.Thread(target=self._run, name=f"edgebench-{self.method}-sampler", daemon=True)
        self._thread.start()

    def sample(self) -> None:
        """Take one sample now and add the trapezoid since the previous one."""
        with self._lock:
            if self._last_t_s is None:
                raise RuntimeError("SampledMeter.sample() before start()")
            t_s = self._clock()
            w = dict(self._power_w())
            dt_s = t_s - self._last_t_s
            if dt_s > 0:
                for domain, p_w in w.items():
                    prev_w = self._last_w.get(domain, p_w)
                    self._acc_j[domain] = self._acc_j.get(domain, 0.0) + 0.5 * (prev_w + p_w) * dt_s
                self._last_t_s = t_s
            self._last_w = w

    def read(self) -> Reading:
        self._raise_thread_error()
        if self._sample_on_read:
            self.sample()
            with self._lock:
                assert self._last_t_s is not None
                return Reading(t_s=self._last_t_s, joules=dict(self._acc_j))
        with self._lock:
            if self._last_t_s is None:
                raise RuntimeError("SampledMeter.read() before start()")
            t_s = self._clock()
            held_s = max(t_s - self._last_t_s, 0.0)
            joules = {d: j + self._last_w.get(d, 0.0) * held_s for d, j in self._acc_j.items()}
            return Reading(t_s=t_s, joules=joules)

    def stop(self) -> None:
        self._stop_event.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._raise_thread_error()

    def _run(self) -> None:
        try:
            while not self._wait(self.sampling_interval_s or 0.0):
                self.sample()
        except BaseException as exc:  # surfaced by the next read()/stop(), not lost in a thread
            self._error = exc

    def _raise_thread_error(self) -> None:
        if self._error is None:
            return
        exc, self._error = self._error, None
        if isinstance(exc, EdgebenchError):
            raise exc
        raise EdgebenchError(f"{self.method} power sampling failed: {exc}; run `edgebench meters` to check the source") from exc


class CombinedMeter:
    """Several meters read as one (e.g. nvml+rapl); domain keys must not collide."""

    def __init__(self, meters: list[Meter], *, method: str | None = None) -> None:
        if not meters:
            raise ValueError("CombinedMeter needs at least one meter")
        self.meters = meters
        self.method = method or "+".join(m.method for m in meters)
        self.scope = "+".join(dict.fromkeys(s for m in meters for s in m.scope.split("+")))
        intervals = [m.sampling_interval_s for m in meters if m.sampling_interval_s is not None]
        self.sampling_interval_s: float | None = min(intervals) if intervals else None
        self.update_period_s = max(m.update_period_s for m in meters)
        self.is_estimate = any(m.is_estimate for m in meters)

    def start(self) -> None:
        for m in self.meters:
            m.start()

    def read(self) -> Reading:
        joules: dict[str, float] = {}
        t_s = []
        for m in self.meters:
            r = m.read()
            clash = joules.keys() & r.joules.keys()
            if clash:
                raise ValueError(f"meters report the same domain(s) {sorted(clash)}")
            joules.update(r.joules)
            t_s.append(r.t_s)
        return Reading(t_s=sum(t_s) / len(t_s), joules=joules)

    def stop(self) -> None:
        errors = []
        for m in self.meters:
            try:
                m.stop()
            except Exception as exc:  # stop every meter even if one fails
                errors.append(exc)
        if errors:
            raise errors[0]
