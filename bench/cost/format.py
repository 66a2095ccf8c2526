"""Plain-text formatting shared by the verdict, the profile list and the report tables."""

from __future__ import annotations

from typing import Sequence

from bench.cost.profiles import Profiles
from bench.cost.source import Source


def format_usd(x: float | None) -> str:
    """Dollars: cents for whole amounts, 3 significant digits below $1."""
    if x is None:
        return "n/a"
    return f"${x:,.2f}" if abs(x) >= 1 else f"${x:.3g}"


def format_number(x: float | None, unit: str = "") -> str:
    """Thousands separators from 100 up, 3 significant digits below."""
    if x is None:
        return "n/a"
    return (f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}") + unit


def mark(x: float | None, star: str) -> str:
    return star if x is not None else ""


def source_text(s: Source) -> str:
    return f"{s.url} (retrieved {s.retrieved.isoformat()})" + (f"; {s.note}" if s.note else "")


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    line = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return [line(header), line(["-" * w for w in widths])] + [line(r) for r in rows]


def format_profiles_list(profiles: Profiles) -> str:
    """For `edgebench profiles list`: ids by kind, offers by tier, regions and mixes."""
    out = ["devices:"]
    for kind in sorted({d.kind for d in profiles.devices.values()}):
        out.append(f"  {kind}:")
        for d in sorted((d for d in profiles.devices.values() if d.kind == kind), key=lambda d: d.id):
            match = ", ".join(d.match_cpu_model + d.match_accelerators) or "no match strings"
            out.append(f"    {d.id:34} {d.name}  [match: {match}]")
    out.append("offers:")
    for tier in ("small", "open-small", "open-large", "frontier", "unclassified"):
        ids = sorted(o.id for o in profiles.offers.values() if o.tier == tier)
        if ids:
            out.append(f"  {tier}: {', '.join(ids)}")
    out.append(f"gpu rentals: {', '.join(sorted(profiles.gpu_rentals))}")
    out.append(f"regions: {', '.join(sorted(profiles.regions))}")
    out.append(f"mixes: {', '.join(sorted(profiles.mixes))} (or any I:O ratio)")
    return "\n".join(out) + "\n"
