"""The "self-host on a rented GPU" line: what serving a model of this size costs on the
cheapest rented GPU with a published throughput for the nearest model size."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence


@dataclass(frozen=True)
class SelfHost:
    usd_per_mtok: float  # per million output tokens (docs/rent.md)
    text: str


def self_host(parameters: float | None, rentals: Sequence[Any],
              throughputs: Sequence[Any]) -> SelfHost | None:
    """None when the model's size is unknown or no rented GPU class has a throughput."""
    from bench.cost.rent import nearest_throughput, self_host_usd_per_mtok

    if not parameters:
        return None
    best: tuple[float, Any, Any] | None = None
    for rental in rentals:
        tp = nearest_throughput(throughputs, parameters, rental.model_class)
        if tp is None:
            continue
        usd = self_host_usd_per_mtok(rental, tp)
        if best is None or usd < best[0]:
            best = (usd, rental, tp)
    if best is None:
        return None
    usd, rental, tp = best
    gpus = f"{tp.gpus} x " if tp.gpus > 1 else ""
    return SelfHost(usd, (
        f"self-host on a rented GPU: ${usd:.4g} per M output tokens ({gpus}{rental.gpu}, "
        f"{rental.provider} ${rental.usd_per_gpu_hour:g}/GPU-h; {tp.output_tok_s:g} output "
        f"tok/s published for {tp.model} at batch {tp.batch}, the nearest size to "
        f"{parameters / 1e9:.3g}B; a full GPU rented, so only at its throughput)"))
