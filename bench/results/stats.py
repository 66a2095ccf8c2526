"""Order statistics for repetitions and per-token latencies (pure functions, no numpy)."""

from __future__ import annotations

import math
from typing import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), q in [0, 100]."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError("q must be in [0, 100]")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def rel_spread(values: Sequence[float]) -> float:
    """Half the min-max range relative to the median: the '±%' printed in the summary."""
    m = median(values)
    return (max(values) - min(values)) / 2 / m if m else 0.0
