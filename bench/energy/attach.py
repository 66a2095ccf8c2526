"""Energy from an external meter's log, attached to rows after the run.

A USB-C meter or smart plug logs on its own clock while the phone or board runs; the log only
exists afterwards. Each row's windows are rebuilt from its own timestamps (prefill: started_utc
to started_utc + ttft_s; decode: to finished_utc) and the log is integrated between them.
The original results file is never rewritten: attached rows go to a new file. The rows' scope is
what the log (`# scope:` line) or the user (`scope`) says the meter measured; a log that says
nothing is refused, because wall AC and device DC joules must never be mixed.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path
from typing import Sequence

from bench.energy.meters.external import PowerLog, energy_between, resolve_scope
from bench.results.schema import ResultRow


def _unix_s(rfc3339: str) -> float:
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


def attach(rows: Sequence[ResultRow], log: PowerLog, scope: str | None = None) -> list[ResultRow]:
    energy_scope = resolve_scope(log, scope)
    out = []
    period_s = log.median_interval_s
    for row in rows:
        start = _unix_s(row.started_utc)
        end = _unix_s(row.finished_utc)
        first = start + (row.ttft_s or 0.0)
        prefill_j = energy_between(log, start, first)
        n_decode = row.n_generated - 1
        decode_j = energy_between(log, first, end) if n_decode > 0 else None
        warnings = [f"{name} window {dur:.3g} s is shorter than the power log's interval "
                    f"{period_s:.3g} s: use longer tests" for name, dur in
                    (("prefill", first - start), ("decode", end - first)) if dur < period_s]
        out.append(dataclasses.replace(
            row, energy_method="external", energy_scope=energy_scope, sampling_interval_s=period_s,
            idle_power_w=None, prefill_energy_j=prefill_j, prefill_energy_net_j=None,
            decode_energy_j=decode_j, decode_energy_net_j=None,
            prefill_j_per_tok=prefill_j / row.n_prompt,
            decode_j_per_tok=decode_j / n_decode if decode_j is not None else None,
            prefill_avg_power_w=prefill_j / (first - start) if first > start else None,
            decode_avg_power_w=decode_j / (end - first) if decode_j is not None and end > first
            else None,
            energy_warning="; ".join(warnings) or None))
    return out


def attach_file(results: Path, power_log: Path, clock_offset_s: float, output: Path,
                scope: str | None = None) -> int:
    from bench.errors import EdgebenchError
    from bench.energy.meters.external import load_power_log
    from bench.results.writer import ResultWriter
    from bench.results.read import read_rows

    if output.exists():
        raise EdgebenchError(f"{output} exists; attached rows go to a new file (results files "
                             "are immutable records)")
    rows = attach(read_rows(results), load_power_log(power_log, clock_offset_s), scope)
    with ResultWriter(output) as writer:
        for row in rows:
            writer.write(row)
    return len(rows)
