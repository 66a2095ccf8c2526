"""Power logs from an external meter (USB-C power meter, smart plug export), read after the run.

Phones hide their rails, so the reliable number comes from a meter in the supply path that logs
to CSV. The runner records wall-clock (unix) timestamps of each window edge during the run and
calls `energy_between` afterwards. The CSV needs a timestamp column (unix seconds, unix
milliseconds if > 1e11, or ISO 8601; naive ISO times are this machine's local time) and either
power or cumulative energy, recognised by header name (W/mW/kW, Wh/mWh/kWh). Cumulative energy
is preferred when both are present: the meter integrated it at its own, faster rate.
`clock_offset_s` is added to the log's times to put them on this machine's clock.

What the meter measured is not in its numbers: a smart plug sees AC at the wall (`wall_ac`), a
USB-C meter sees DC into the device (`system_dc`), and mixing the two silently is the worst error
a comparison can make. So the scope comes from a comment line in the log (`# scope: system_dc`)
or from the user (`--scope`), and a log with neither is refused rather than guessed.
"""

from __future__ import annotations

import bisect
import csv
import re
import statistics
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Literal

from bench.errors import EdgebenchError
from bench.energy.meters.base import Probe, Reading

TIME_HEADERS = frozenset({"timestamp", "time", "t", "ts", "unixtime", "unix", "epoch", "datetime", "date", "timestamps", "times"})
# normalized header -> (kind, factor to SI: W or J)
VALUE_HEADERS: dict[str, tuple[str, float]] = {
    **{h: ("power", 1.0) for h in ("w", "watt", "watts", "power", "powerw", "powerwatts", "activepower", "activepowerw")},
    **{h: ("power", 1e-3) for h in ("mw", "powermw")},
    **{h: ("power", 1e3) for h in ("kw", "powerkw")},
    **{h: ("energy", 3600.0) for h in ("wh", "energywh", "cumulativewh", "totalwh", "energywatthours")},
    **{h: ("energy", 3.6) for h in ("mwh", "energymwh")},
    **{h: ("energy", 3.6e6) for h in ("kwh", "energykwh", "totalkwh", "cumulativekwh")},
}


# What an external meter can have measured, named as the other meters' energy_scope (and as
# device profiles' power_scope). A meter in the supply path gives the first two; an inline meter
# on one rail (a GPU's 12 V cable) the others.
EXTERNAL_SCOPES = ("wall_ac", "system_dc", "soc", "cpu_package", "gpu", "dram")
_SCOPE_LINE = re.compile(r"^\s*#\s*scope\s*[:=]\s*([^\s,;]*)", re.IGNORECASE)  # a note may follow
_SCOPE_ADVICE = ("pass --scope wall_ac (smart plug: AC at the wall) or --scope system_dc (USB-C or "
                 "DC meter: power into the device), or add the line '# scope: wall_ac' to the log")


def _norm(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", header.lower())


@dataclass(frozen=True)
class PowerLog:
    """A parsed log on this machine's clock: cumulative joules at each timestamp."""

    path: Path
    kind: Literal["power", "energy"]
    t_unix_s: tuple[float, ...]
    power_w: tuple[float, ...] | None  # the samples, for power logs
    cumulative_j: tuple[float, ...]
    clock_offset_s: float
    scope: str | None = None  # from a `# scope: ...` line; None when the log does not say

    @property
    def median_interval_s(self) -> float:
        """The log's resolution: pass it as update_period_s to window_energy."""
        return statistics.median(b - a for a, b in zip(self.t_unix_s, self.t_unix_s[1:]))

    def cumulative_at(self, t_unix_s: float) -> float:
        """Joules since the first row; exact for piecewise-linear power, linear for energy logs."""
        ts = self.t_unix_s
        if not ts[0] <= t_unix_s <= ts[-1]:
            raise EdgebenchError(
                f"power log {self.path} covers {ts[0]:.3f}..{ts[-1]:.3f} (unix s, after clock_offset_s={self.clock_offset_s}) "
                f"but the window needs {t_unix_s:.3f}: record the whole run or fix the clock offset"
            )
        i = min(bisect.bisect_right(ts, t_unix_s) - 1, len(ts) - 2)
        dt_s = t_unix_s - ts[i]
        span_s = ts[i + 1] - ts[i]
        if self.power_w is None:
            return self.cumulative_j[i] + (self.cumulative_j[i + 1] - self.cumulative_j[i]) * dt_s / span_s
        p0, p1 = self.power_w[i], self.power_w[i + 1]
        p_x = p0 + (p1 - p0) * dt_s / span_s
        return self.cumulative_j[i] + 0.5 * (p0 + p_x) * dt_s


def _parse_time(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        iso = text.strip()
        if iso.endswith(("Z", "z")):
            iso = iso[:-1] + "+00:00"
        return datetime.fromisoformat(iso).timestamp()  # naive -> local time
    return value / 1000.0 if value > 1e11 else value


def _check_scope(scope: str, where: str) -> str:
    if scope not in EXTERNAL_SCOPES:
        raise EdgebenchError(f"{where}: scope {scope!r} is not one of {', '.join(EXTERNAL_SCOPES)}; {_SCOPE_ADVICE}")
    return scope


def _log_scope(path: Path, text: str) -> str | None:
    """The `# scope: NAME` comment line (at most one value; any line of the file)."""
    found: str | None = None
    for line_no, line in enumerate(text.splitlines(), start=1):
        m = _SCOPE_LINE.match(line)
        if m is None:
            continue
        scope = _check_scope(m.group(1).lower(), f"power log {path} line {line_no}")
        if found is not None and scope != found:
            raise EdgebenchError(f"power log {path} line {line_no}: second scope {scope!r} contradicts {found!r}; keep one '# scope:' line")
        found = scope
    return found


def resolve_scope(log: PowerLog, scope: str | None) -> str:
    """The log's own scope line and the user's --scope must agree; one of them must be there."""
    given = _check_scope(scope.strip().lower(), "--scope") if scope is not None else None
    if given is not None and log.scope is not None and given != log.scope:
        raise EdgebenchError(f"power log {log.path} says '# scope: {log.scope}' but --scope {given} was given: correct the one that is wrong")
    resolved = given or log.scope
    if resolved is None:
        raise EdgebenchError(f"power log {log.path} does not say what the meter measured: {_SCOPE_ADVICE}")
    return resolved


def load_power_log(path: Path | str, clock_offset_s: float = 0.0) -> PowerLog:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise EdgebenchError(f"cannot read power log {path}: {exc.strerror or exc}") from exc
    lines = [(n, ln) for n, ln in enumerate(text.splitlines(), start=1) if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise EdgebenchError(f"power log {path} is empty: export the meter's CSV with a timestamp and W or Wh column")
    header_no, header = lines[0]
    delimiter = max(";\t,", key=header.count) if any(c in header for c in ";\t,") else ","
    columns = [_norm(h) for h in next(csv.reader([header], delimiter=delimiter))]
    t_col = next((i for i, c in enumerate(columns) if c in TIME_HEADERS), None)
    values = [(i, *VALUE_HEADERS[c]) for i, c in enumerate(columns) if c in VALUE_HEADERS]
    values.sort(key=lambda v: v[1] != "energy")  # cumulative energy first
    if t_col is None or not values:
        missing = "timestamp column (timestamp/time, unix s or ISO 8601)" if t_col is None else "power (W, mW) or cumulative energy (Wh, kWh) column"
        raise EdgebenchError(f"power log {path} line {header_no}: no {missing} among headers {header.strip()!r}")
    v_col, kind, factor = values[0]

    t_unix_s: list[float] = []
    vals: list[float] = []
    for line_no, line in lines[1:]:
        row = next(csv.reader([line], delimiter=delimiter))
        try:
            t = _parse_time(row[t_col]) + clock_offset_s
            v = float(row[v_col]) * factor
        except (IndexError, ValueError) as exc:
            raise EdgebenchError(f"power log {path} line {line_no}: cannot parse {line.strip()!r} ({exc}); expected a timestamp and a number") from exc
        if t_unix_s and t <= t_unix_s[-1]:
            raise EdgebenchError(f"power log {path} line {line_no}: timestamp does not increase; sort the log or remove duplicate rows")
        if kind == "power" and v < 0:
            raise EdgebenchError(f"power log {path} line {line_no}: negative power {v} W; check the meter's orientation")
        if kind == "energy" and vals and v < vals[-1]:
            raise EdgebenchError(f"power log {path} line {line_no}: cumulative energy went down (meter reset?); split the log at the reset")
        t_unix_s.append(t)
        vals.append(v)
    if len(t_unix_s) < 2:
        raise EdgebenchError(f"power log {path} has fewer than 2 data rows: log during the whole run")
    scope = _log_scope(path, text)

    if kind == "energy":
        cumulative = [v - vals[0] for v in vals]
        power = None
    else:
        cumulative = [0.0]
        for i in range(1, len(vals)):
            cumulative.append(cumulative[-1] + 0.5 * (vals[i - 1] + vals[i]) * (t_unix_s[i] - t_unix_s[i - 1]))
        power = tuple(vals)
    return PowerLog(path, kind, tuple(t_unix_s), power, tuple(cumulative), clock_offset_s, scope)  # type: ignore[arg-type]


def energy_between(log: PowerLog | Path | str, start_unix_s: float, end_unix_s: float) -> float:
    """Joules between two wall-clock times (this machine's clock), interpolated at both edges."""
    if not isinstance(log, PowerLog):
        log = load_power_log(log)
    if end_unix_s < start_unix_s:
        raise ValueError("end_unix_s before start_unix_s")
    return log.cumulative_at(end_unix_s) - log.cumulative_at(start_unix_s)


class ExternalLogMeter:
    """For logs written live on this machine: each read re-loads the file at the current wall time.

    When the log is only available after the run (the usual case), call `energy_between` with the
    window edges' unix timestamps instead; reading before the log covers "now" raises. The scope
    is settled when the meter opens (the log's `# scope:` line or `scope`), as `energy attach` does.
    """

    method = "external"
    sampling_interval_s: float | None = None
    is_estimate = False

    def __init__(
        self,
        path: Path | str,
        *,
        clock_offset_s: float = 0.0,
        scope: str | None = None,
        wall_clock: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self.clock_offset_s = clock_offset_s
        self._wall_clock = wall_clock
        self._clock = clock
        log = load_power_log(self.path, clock_offset_s)
        self.scope = resolve_scope(log, scope)
        self.update_period_s = log.median_interval_s

    def start(self) -> None:
        pass

    def read(self) -> Reading:
        t_s, wall_s = self._clock(), self._wall_clock()
        log = load_power_log(self.path, self.clock_offset_s)
        return Reading(t_s=t_s, joules={"external": log.cumulative_at(wall_s)})

    def stop(self) -> None:
        pass


def probe_external(path: Path | str | None, clock_offset_s: float = 0.0, scope: str | None = None) -> Probe:
    if path is None:
        return Probe("external", False, "wall_ac/system_dc", None, "no power log given (USB-C meter or smart-plug CSV, read after the run)")
    try:
        log = load_power_log(path, clock_offset_s)
    except EdgebenchError as exc:
        return Probe("external", False, "wall_ac/system_dc", None, str(exc))
    detail = f"{log.path}: {log.kind} log, {len(log.t_unix_s)} rows"
    try:
        resolved = resolve_scope(log, scope)
    except EdgebenchError as exc:  # the log itself is fine; run/attach will need --scope
        return Probe("external", True, "unknown", log.median_interval_s, f"{detail}; {exc}")
    return Probe("external", True, resolved, log.median_interval_s, detail)


def probe(ctx: Any) -> Probe:
    """Registry hook (bench.energy.meters)."""
    return probe_external(ctx.power_log, ctx.clock_offset_s, getattr(ctx, "power_log_scope", None))


def open_meter(ctx: Any) -> ExternalLogMeter:
    if ctx.power_log is None:
        raise EdgebenchError("the external meter needs its CSV log: pass --power-log FILE "
                             "(timestamp + W or Wh columns)")
    return ExternalLogMeter(ctx.power_log, clock_offset_s=ctx.clock_offset_s,
                            scope=getattr(ctx, "power_log_scope", None))
