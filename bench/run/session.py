"""One `edgebench run` session: the writer, a progress bar, the Runner, and the meter stopped.

The bar never refreshes on its own (rich's auto-refresh thread would run inside the timed
region); the runner's callbacks redraw it between repetitions only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.energy.windows import EnergySetup
from bench.results.schema import ResultRow
from bench.results.writer import ResultWriter
from bench.run import hardware
from bench.run.plan import RunPlan
from bench.run.runner import Runner
from bench.run.thermals import read_thermals


def run_with_progress(plan: RunPlan, fp: Any, output: Path, energy: EnergySetup | None,
                      console: Any, sys_root: Path = Path("/"), **runner_options: Any
                      ) -> list[ResultRow]:
    """Rows are flushed to `output` as each repetition ends; the meter stops whatever happens.
    `runner_options` go to the Runner (tests pass a scripted backend)."""
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn)

    try:
        with ResultWriter(output) as writer, Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), console=console, transient=True,
                auto_refresh=False) as bar:
            task = bar.add_task("starting", total=plan.total_runs)
            runner = Runner(plan, fp, writer, git_commit=hardware.git_commit(),
                            on_battery=hardware.on_battery(),
                            progress=lambda msg: bar.update(task, description=msg, refresh=True),
                            advance=lambda: (bar.advance(task), bar.refresh()), energy=energy,
                            thermals=lambda: read_thermals(sys_root), **runner_options)
            return runner.run()
    finally:
        if energy is not None:
            energy.meter.stop()
