"""The end-of-run table: one line per configuration, median and spread over repetitions."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Callable, Sequence

from bench.results import stats
from bench.results.schema import ResultRow, row_to_dict
from bench.results.writer import format_rows_csv


def _cell(values: Sequence[float | None], scale: float = 1.0, digits: int = 1) -> str:
    clean = [v * scale for v in values if v is not None]
    if not clean:
        return "-"
    m = stats.median(clean)
    if len(clean) == 1:
        return f"{m:.{digits}f}"
    return f"{m:.{digits}f} ± {100 * stats.rel_spread(clean):.0f}%"


COLUMNS: tuple[tuple[str, Callable[[list[ResultRow]], str]], ...] = (
    ("model", lambda r: r[0].model_id),
    ("variant", lambda r: r[0].variant),
    ("backend", lambda r: r[0].backend),
    ("ep", lambda r: r[0].ep),
    ("threads", lambda r: str(r[0].threads)),
    ("test", lambda r: r[0].test),
    ("reps", lambda r: str(len(r))),
    # a tgN test's 1-token prompt says nothing about prefill speed
    ("prefill tok/s", lambda r: _cell([x.prefill_tok_s for x in r if x.n_prompt > 1])),
    ("decode tok/s", lambda r: _cell([x.decode_tok_s for x in r])),
    ("MiB/token", lambda r: _cell([x.bytes_per_token for x in r], 2**-20, 1)),
    ("roofline", lambda r: _roofline_cell(r)),
    ("TTFT ms", lambda r: _cell([x.ttft_s for x in r], 1e3)),
    ("ITL p90 ms", lambda r: _cell([x.itl_p90_s for x in r], 1e3, 2)),
    ("peak RSS MiB", lambda r: _cell([x.peak_rss_bytes for x in r], 2**-20, 0)),
    ("J/token (decode)", lambda r: _energy_cell(r)),
)


def _roofline_cell(rows: list[ResultRow]) -> str:
    """Median decode speed as a share of bandwidth / bytes_per_token (docs/roofline.md)."""
    fracs = [x.decode_roofline_frac for x in rows if x.decode_roofline_frac is not None]
    return f"{100 * stats.median(fracs):.0f}%" if fracs else "-"


def _energy_cell(rows: list[ResultRow]) -> str:
    method = rows[0].energy_method
    if method == "none":
        return "not measured"
    cell = _cell([x.decode_j_per_tok for x in rows], digits=3)
    low = [x.decode_j_per_tok_low for x in rows if x.decode_j_per_tok_low is not None]
    high = [x.decode_j_per_tok_high for x in rows if x.decode_j_per_tok_high is not None]
    if low and high:
        cell += f" [{stats.median(low):.3f}-{stats.median(high):.3f}]"
    return f"{cell} ({method}, {rows[0].energy_scope})"


def group(rows: Sequence[ResultRow]) -> list[list[ResultRow]]:
    """One group per configuration and energy scope: CPU-package and wall joules never share a
    median."""
    groups: dict[str, list[ResultRow]] = defaultdict(list)
    for row in rows:
        groups[f"{row.run_id}|{row.config_id}|{row.energy_method}|{row.energy_scope}"].append(row)
    return list(groups.values())


def markdown(rows: Sequence[ResultRow]) -> str:
    """llama-bench style: a pipe table, 'median ± half-range%' over repetitions."""
    header = [name for name, _ in COLUMNS]
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---:" if i >= 6 else "---" for i in range(len(header))) + "|"]
    for rs in group(rows):
        lines.append("| " + " | ".join(fn(rs) for _, fn in COLUMNS) + " |")
    if rows:
        r = rows[0]
        lines.append("")
        others = sorted({f"{x.backend} {x.backend_version}" for x in rows
                         if x.backend not in ("ort", "ort-genai")})
        ort = next((x for x in rows if x.onnxruntime_version), r)
        lines.append(f"edgebench {r.edgebench_version}, onnxruntime "
                     f"{ort.onnxruntime_version or '-'}, "
                     f"onnxruntime-genai {ort.onnxruntime_genai_version or '-'}, "
                     + "".join(f"{o}, " for o in others) + f"{r.cpu_model} "
                     f"({r.cpu_cores_logical} logical cores), {r.os_name} {r.os_release}")
    return "\n".join(lines)


def render(rows: Sequence[ResultRow], fmt: str) -> str:
    if fmt == "csv":
        return format_rows_csv(rows).rstrip("\n")
    if fmt == "json":
        return json.dumps([row_to_dict(r) for r in rows], indent=1)
    table = markdown(rows)
    best = peers(rows)
    return table + ("\n\n" + best if best else "")


def peers(rows: Sequence[ResultRow]) -> str:
    """Per model, when several runtimes or variants ran: which was fastest at prefill and at
    decode, and which used the least energy per decoded token (labelled when estimated)."""
    by_model: dict[str, list[list[ResultRow]]] = defaultdict(list)
    for rs in group(rows):
        by_model[rs[0].model_id].append(rs)
    lines = []
    for model, groups in by_model.items():
        configs = {(g[0].backend, g[0].variant, g[0].ep, g[0].threads) for g in groups}
        if len(configs) < 2:
            continue
        parts = []
        for label, field, unit, pick in (("fastest prefill", "prefill_tok_s", "tok/s", max),
                                         ("fastest decode", "decode_tok_s", "tok/s", max),
                                         ("least energy", "decode_j_per_tok", "J/token", min)):
            scored = [(stats.median(v), g) for g in groups
                      if (v := [getattr(x, field) for x in g if getattr(x, field) is not None
                                and (field != "prefill_tok_s" or x.n_prompt > 1)])]
            if not scored:
                continue
            value, g = pick(scored, key=lambda t: t[0])
            r = g[0]
            est = " (estimate)" if r.energy_method.startswith("estimate") and "J" in unit else ""
            parts.append(f"{label} {r.backend}/{r.variant} t{r.threads} {value:.3g} {unit}"
                         f"{est} ({r.test})")
        lines.append(f"peers of {model}: " + "; ".join(parts))
    return "\n".join(lines)


def sustained(rows: Sequence[ResultRow]) -> str:
    """First-to-last change of each configuration over back-to-back repetitions: phones lose
    ~40% within minutes, and a result must show whether it was throttled."""
    from bench.run.thermals import throttle_drop

    lines = ["sustained load: change from the first to the last repetition"]
    for rs in group(rows):
        rs = sorted(rs, key=lambda r: r.rep)
        metric = "decode_tok_s" if rs[0].decode_tok_s is not None else "prefill_tok_s"
        values = [getattr(r, metric) for r in rs if getattr(r, metric) is not None]
        drop = throttle_drop(values)
        temps = [r.cpu_temp_c_after for r in rs if r.cpu_temp_c_after is not None]
        temp = f", CPU {temps[0]:.0f} -> {temps[-1]:.0f} C" if temps else ""
        if drop is None:
            continue
        lines.append(f"- {rs[0].config_id}: {metric} {values[0]:.1f} -> {values[-1]:.1f} "
                     f"({-drop:+.0%} over {len(values)} reps{temp})")
    return "\n".join(lines)
