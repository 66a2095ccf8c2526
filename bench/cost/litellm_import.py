"""Refresh API prices from LiteLLM's model_prices_and_context_window.json into a profile TOML.

Our hand-sourced offers stay authoritative: a LiteLLM entry that one of them already covers (same
litellm_key or model name) is skipped and any price difference is reported, so drift is visible
without silently overwriting a sourced figure. New entries get tier 'unclassified' until someone
classifies them, because a fair comparison needs a human to say what class a model is.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from bench.errors import EdgebenchError

_FIELDS = (
    ("input_usd_per_mtok", "input_cost_per_token"),
    ("cached_input_usd_per_mtok", "cache_read_input_token_cost"),
    ("output_usd_per_mtok", "output_cost_per_token"),
)


@dataclass(frozen=True)
class ImportSummary:
    out_path: Path
    added: tuple[str, ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()  # (key, reason)
    differing: tuple[str, ...] = field(default=())

    def format(self) -> str:
        lines = [f"wrote {len(self.added)} offers to {self.out_path}",
                 f"skipped {len(self.skipped)} entries"]
        reasons: dict[str, int] = {}
        for _, reason in self.skipped:
            reasons[reason] = reasons.get(reason, 0) + 1
        lines += [f"  {n} x {r}" for r, n in sorted(reasons.items())]
        if self.differing:
            lines.append("sourced offers whose LiteLLM price differs (ours kept; re-check them):")
            lines += [f"  {d}" for d in self.differing]
        return "\n".join(lines) + "\n"


def _q(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)  # a JSON string is a valid TOML basic string


def _per_mtok(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return round(float(value) * 1_000_000, 10)


def import_litellm(json_path: Path, out_path: Path, *, root: Path | None = None) -> ImportSummary:
    """Writes new chat-model offers from json_path to out_path (per-token prices x 1e6)."""
    from bench.cost.profiles import load_profiles

    json_path, out_path = Path(json_path), Path(out_path)
    try:
        data = json.loads(json_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EdgebenchError(f"{json_path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EdgebenchError(f"{json_path}: not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise EdgebenchError(f"{json_path}: expected a JSON object of model entries")

    existing = load_profiles(root).offers.values()
    ours = {}
    for o in existing:
        if o.path.resolve() == out_path.resolve():
            continue  # a previous import is replaced, not authoritative
        for key in filter(None, (o.litellm_key, o.model)):
            ours[key] = o
    today = dt.date.today().isoformat()
    added, skipped, differing, blocks = [], [], [], []
    for key, entry in sorted(data.items()):
        if key == "sample_spec":
            continue
        if not isinstance(entry, dict):
            skipped.append((key, "not an object"))
            continue
        if entry.get("mode", "chat") != "chat":
            skipped.append((key, f"mode {entry.get('mode')!r}, not chat"))
            continue
        prices = {name: _per_mtok(entry.get(src)) for name, src in _FIELDS}
        if prices["input_usd_per_mtok"] is None or prices["output_usd_per_mtok"] is None:
            skipped.append((key, "no input/output price"))
            continue
        if any(v is not None and v < 0 for v in prices.values()):
            skipped.append((key, "negative price"))
            continue
        if key in ours:
            o = ours[key]
            skipped.append((key, "a sourced offer already covers it (ours kept)"))
            theirs = (prices["input_usd_per_mtok"], prices["output_usd_per_mtok"])
            if not all(math.isclose(a, b, rel_tol=1e-6) for a, b in
                       zip(theirs, (o.input_usd_per_mtok, o.output_usd_per_mtok))):
                differing.append(f"{o.id}: ours {o.input_usd_per_mtok:g}/{o.output_usd_per_mtok:g}, "
                                 f"LiteLLM {theirs[0]:g}/{theirs[1]:g} (input/output USD per Mtok)")
            continue
        provider = entry.get("litellm_provider")
        provider = provider if isinstance(provider, str) and provider else "unknown"
        offer_id = f"litellm/{key}"
        lines = ["[[offers]]", f"id = {_q(offer_id)}", f"provider = {_q(provider)}",
                 f"model = {_q(key)}", 'tier = "unclassified"', 'model_class = "unclassified"',
                 f"litellm_key = {_q(key)}"]
        present = [n for n, v in prices.items() if v is not None]
        lines += [f"{n} = {prices[n]!r}" for n in present]
        src = f"{{ url = {_q(str(json_path))}, retrieved = {today}, note = \"LiteLLM price map, per-token x 1e6\" }}"
        lines += [f"sources.{n} = {src}" for n in present]
        blocks.append("\n".join(lines) + "\n")
        added.append(offer_id)
    header = (f"# Imported from {json_path} on {today} by `edgebench profiles import-litellm`.\n"
              "# Set tier (small / frontier / open-small / open-large), model_class and model_id (a key of\n# cloud/models.toml) to use an offer in comparisons.\n\n")
    try:
        out_path.write_text(header + "\n".join(blocks), encoding="utf-8")
    except OSError as exc:
        raise EdgebenchError(f"cannot write {out_path}: {exc.strerror}") from None
    return ImportSummary(out_path, tuple(added), tuple(skipped), tuple(differing))
