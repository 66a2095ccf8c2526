"""Runtimes side by side: per device and model, one line per runtime and variant, the best of
each column starred, so the fastest and the most energy-efficient runtime is obvious. Compared
on the largest ppN and tgN tests only, so every runtime is judged on the same test; the line
`edgebench run` ends with takes the best over all tests and names the test it came from."""

from __future__ import annotations

from collections import defaultdict
from typing import Callable, Sequence

from bench.report.aggregate import TestStats, is_estimate

STAR = " ★"
HEADER = ("device", "model", "backend", "variant", "threads", "prefill tok/s", "decode tok/s",
          "MiB/token", "roofline", "TTFT ms", "peak RSS MiB", "J/decode tok")


def _pick(tests: Sequence[TestStats], prefix: str, field: str) -> TestStats | None:
    """The ppN (or tgN) test with a value, the largest N first (pp512 over pp64)."""
    found = [t for t in tests if t.test.startswith(prefix) and "+" not in t.test
             and getattr(t, field) is not None]
    return max(found, key=lambda t: int(t.test[2:]) if t.test[2:].isdigit() else 0,
               default=None)


def _cell(value: float | None, best: bool, fmt: Callable[[float], str]) -> str:
    return "n/a" if value is None else fmt(value) + (STAR if best else "")


TITLE = "Runtimes side by side"
INTRO = ("Per device and model, every runtime and variant measured; the best of each column is "
         "starred (fastest prefill and decode, best roofline share, lowest TTFT, memory and "
         "energy per decoded token).")


def peer_rows(tests: Sequence[TestStats]) -> tuple[tuple[tuple[str, ...], ...], tuple[str, ...]]:
    """(rows, notes); no rows when no model ran on more than one runtime or variant."""
    by_model: dict[tuple[str, str], dict[tuple, list[TestStats]]] = defaultdict(
        lambda: defaultdict(list))
    for t in tests:
        by_model[(t.device, t.model_id)][(t.backend, t.variant, t.ep, t.threads)].append(t)
    rows: list[tuple[str, ...]] = []
    energy_estimated = False
    for (device, model), configs in by_model.items():
        if len(configs) < 2:
            continue
        lines = []
        for (backend, variant, ep, threads), ts in configs.items():
            pp, tg = _pick(ts, "pp", "prefill_tok_s"), _pick(ts, "tg", "decode_tok_s")
            rss = [t.peak_rss_bytes for t in ts if t.peak_rss_bytes is not None]
            lines.append((backend + ("" if ep == "cpu" else f" ({ep})"), variant, threads,
                          pp.prefill_tok_s if pp else None, tg.decode_tok_s if tg else None,
                          tg.bytes_per_token if tg else None,
                          tg.decode_roofline_frac if tg else None,
                          pp.ttft_s if pp else None, max(rss) if rss else None,
                          tg.decode_j_per_tok if tg else None, tg.energy if tg else ""))
        best = {i: pick([x[i] for x in lines if x[i] is not None], default=None)
                for i, pick in ((3, max), (4, max), (6, max), (7, min), (8, min), (9, min))}
        for x in lines:
            estimated = bool(x[10]) and is_estimate(x[10])
            energy_estimated |= estimated and x[9] is not None
            rows.append((
                device, model, x[0], x[1], str(x[2]),
                _cell(x[3], x[3] == best[3], lambda v: f"{v:,.1f}"),
                _cell(x[4], x[4] == best[4], lambda v: f"{v:,.1f}"),
                _cell(x[5], False, lambda v: f"{v / 2**20:,.1f}"),
                _cell(x[6], x[6] == best[6], lambda v: f"{100 * v:.0f}%"),
                _cell(x[7], x[7] == best[7], lambda v: f"{1e3 * v:,.0f}"),
                _cell(x[8], x[8] == best[8], lambda v: f"{v / 2**20:,.0f}"),
                _cell(x[9], x[9] == best[9], lambda v: f"{v:.3g} J")
                + (f" ({x[10]})" if x[9] is not None else "")))
    if not rows:
        return (), ()
    notes = ["prefill from the largest ppN test, decode, MiB/token, roofline and energy from "
             "the largest tgN test, TTFT from the ppN test; peak RSS is the largest of the "
             "configuration's tests.",
             "roofline: decode speed as a share of this machine's read bandwidth divided by the "
             "bytes a decode step reads; variants that read more bytes per token can be slower "
             "and still use the memory better."]
    if energy_estimated:
        notes.append("energy marked estimate is a labelled estimate, not a measurement: compare "
                     "runtimes on it only as far as its bounds allow.")
    return tuple(rows), tuple(notes)
