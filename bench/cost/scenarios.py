"""Result rows grouped into priced scenarios: medians per test, pp and tg tests paired.

A configuration is one model × variant × backend × EP × threads on one device; a scenario pairs
a prompt-processing test with a generation test so a request's time and energy can be priced.
"""

from __future__ import annotations

import re
import statistics
from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable, Sequence

from bench.cost import model as cost
from bench.results.schema import ResultRow

_PP = re.compile(r"^pp\d+$")
_TG = re.compile(r"^tg\d+$")


@dataclass(frozen=True)
class TestMedians:
    """Medians over the repetitions of one test of one configuration."""

    test: str
    reps: int
    prefill_tok_s: float | None
    decode_tok_s: float | None
    prefill_j_per_tok: float | None
    decode_j_per_tok: float | None
    energy_methods: tuple[str, ...]
    prefill_j_per_tok_low: float | None = None
    prefill_j_per_tok_high: float | None = None
    decode_j_per_tok_low: float | None = None
    decode_j_per_tok_high: float | None = None


@dataclass(frozen=True)
class Scenario:
    """One priced configuration: a self-contained test (chat) or a pp test paired with a tg test."""

    label: str
    perf: cost.ConfigPerf
    reps: str
    energy_methods: tuple[str, ...]

    @property
    def energy_is_estimate(self) -> bool:
        return any(m.startswith("estimate") for m in self.energy_methods)


@dataclass(frozen=True)
class Configuration:
    model_id: str
    variant: str
    backend: str
    ep: str
    threads: int
    cpu_model: str
    accelerators: str
    cpu_cores_logical: int
    cpu_arch: str
    os_name: str
    scenarios: tuple[Scenario, ...]
    unpaired: tuple[str, ...]
    host_fingerprint: str = ""  # two hosts with the same CPU name stay apart in reports
    virtualized: bool | None = None  # a VM: its marginal cost is its rent, not its energy
    cloud_provider: str | None = None  # a cloud VM (DMI): rented (bench/cost/ownership.py)
    energy_basis: str | None = None  # what an estimate assumed


# ---------------------------------------------------------------- aggregation
def _median(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def test_medians(rows: Sequence[ResultRow]) -> TestMedians:
    return TestMedians(
        test=rows[0].test, reps=len(rows),
        prefill_tok_s=_median(r.prefill_tok_s for r in rows),
        decode_tok_s=_median(r.decode_tok_s for r in rows),
        prefill_j_per_tok=_median(r.prefill_j_per_tok for r in rows),
        decode_j_per_tok=_median(r.decode_j_per_tok for r in rows),
        energy_methods=tuple(sorted({r.energy_method for r in rows})),
        prefill_j_per_tok_low=_median(r.prefill_j_per_tok_low for r in rows),
        prefill_j_per_tok_high=_median(r.prefill_j_per_tok_high for r in rows),
        decode_j_per_tok_low=_median(r.decode_j_per_tok_low for r in rows),
        decode_j_per_tok_high=_median(r.decode_j_per_tok_high for r in rows),
    )


def _perf(pre: TestMedians, dec: TestMedians) -> cost.ConfigPerf:
    """Rates and joules (with bounds) from the prefill of one test and the decode of another."""
    return cost.ConfigPerf(pre.prefill_tok_s, dec.decode_tok_s, pre.prefill_j_per_tok,
                           dec.decode_j_per_tok, pre.prefill_j_per_tok_low,
                           pre.prefill_j_per_tok_high, dec.decode_j_per_tok_low,
                           dec.decode_j_per_tok_high)


def pair_scenarios(tests: Sequence[TestMedians]) -> tuple[list[Scenario], list[str]]:
    """Self-contained tests price alone; each ppN is paired with each tgM of the same configuration.

    A ppN row's decode fields and a tgM row's prefill fields are ignored: the prefill of a tg test
    is a tiny prompt and would misstate prompt throughput.
    """
    scenarios: list[Scenario] = []
    pps = [t for t in tests if _PP.match(t.test)]
    tgs = [t for t in tests if _TG.match(t.test)]
    for t in tests:
        if t in pps or t in tgs:
            continue
        if t.prefill_tok_s and t.decode_tok_s:
            scenarios.append(Scenario(
                t.test, _perf(t, t),
                f"{t.reps}", t.energy_methods))
    for p in pps:
        for g in tgs:
            if not p.prefill_tok_s or not g.decode_tok_s:
                continue
            scenarios.append(Scenario(
                f"{p.test}+{g.test} (paired)",
                _perf(p, g),
                f"{p.reps}/{g.reps}", tuple(sorted(set(p.energy_methods) | set(g.energy_methods)))))
    unpaired = []
    if pps and not tgs:
        unpaired += [f"{p.test} (no tg test of this configuration to pair with)" for p in pps]
    if tgs and not pps:
        unpaired += [f"{g.test} (no pp test of this configuration to pair with)" for g in tgs]
    return scenarios, unpaired


def group_configurations(rows: Iterable[ResultRow]) -> list[Configuration]:
    """Groups by device and (model_id, variant, backend, ep, threads), then by test."""
    groups: dict[tuple, dict[str, list[ResultRow]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        key = (r.host_fingerprint, r.cpu_model, r.accelerators, r.cpu_cores_logical,
               r.model_id, r.variant, r.backend, r.ep, r.threads)
        groups[key][r.test].append(r)
    configs = []
    for key, by_test in groups.items():
        first = next(iter(by_test.values()))[0]
        scenarios, unpaired = pair_scenarios([test_medians(v) for _, v in sorted(by_test.items())])
        configs.append(Configuration(
            model_id=first.model_id, variant=first.variant, backend=first.backend, ep=first.ep,
            threads=first.threads, cpu_model=first.cpu_model, accelerators=first.accelerators,
            cpu_cores_logical=first.cpu_cores_logical, cpu_arch=first.cpu_arch,
            os_name=first.os_name, scenarios=tuple(scenarios), unpaired=tuple(unpaired),
            host_fingerprint=first.host_fingerprint,
            virtualized=any(r.virtualized for t in by_test.values() for r in t),
            cloud_provider=next((r.cloud_provider for t in by_test.values() for r in t
                                 if r.cloud_provider), None),
            energy_basis=next((r.energy_basis for t in by_test.values() for r in t
                               if r.energy_basis), None)))
    return configs
