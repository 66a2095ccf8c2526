"""Opening the run's energy source: the best meter (or the one asked for) plus the idle baseline.

An estimate is used only when nothing measures and the caller passes its figures; it is
announced loudly, and every row carries its method.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from bench.energy.windows import EnergySetup, measure_idle_power_w
from bench.errors import EdgebenchError


def open_energy_setup(method: str, estimate_params: Any, *, power_log: str | Path | None,
                      clock_offset_s: float, idle_s: float,
                      say: Callable[[str], None],
                      power_log_scope: str | None = None, class_params: Any = None,
                      gpu_run: bool = False, sys_root: Path = Path("/")) -> EnergySetup | None:
    """`method` "auto" picks the best source and returns None (said) when there is none.

    `power_log_scope` is what the --power-log meter measured (wall_ac, system_dc); None leaves it
    to the log's `# scope:` line, and the external meter refuses a log that says neither.
    """
    from bench.energy.meters import open_meter, replacement_hint

    scope_kw = {"power_log_scope": power_log_scope} if power_log_scope is not None else {}
    try:
        meter = open_meter(None if method == "auto" else method,
                           estimate_params=estimate_params, class_params=class_params,
                           gpu_run=gpu_run, sys_root=sys_root, power_log=power_log,
                           clock_offset_s=clock_offset_s, **scope_kw)
    except EdgebenchError as exc:
        if method != "auto":
            raise
        say(f"[bold yellow]energy NOT measured:[/] {exc}")
        return None
    meter.start()
    idle_w = None
    if idle_s > 0:
        say(f"measuring idle power for {idle_s:g} s ({meter.method})…")
        idle_w = measure_idle_power_w(meter, idle_s)
    if getattr(meter, "is_estimate", False):
        p = meter.params
        say(f"[bold yellow]ENERGY IS AN ESTIMATE[/] ({meter.method}, {p.basis}; "
            f"{p.low.full_w:.3g}-{p.high.full_w:.3g} W at full load, scaled by this process's "
            f"CPU utilisation). No meter measures energy here; {replacement_hint(sys_root)}.")
    else:
        say(f"energy: {meter.method} ({meter.scope})"
            + (f", idle baseline {idle_w:.2f} W" if idle_w is not None else ""))
    return EnergySetup(meter, idle_w)
