"""The report's aggregates, computed by DuckDB over the rows table (report/columnar.py): medians
per test, repetition series, and configurations for pricing.

Every figure is the one the row-wise code gave: a median of an even count is the mean of the two
middle values, exactly as statistics.median (bench/cost/scenarios.py, so `report` and `compare`
agree) and pandas compute it; order-dependent choices (which configuration comes first, a
series' label, a configuration's first row) follow the rows' order in the inputs (`ord`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Sequence

from bench.cost.scenarios import Configuration, TestMedians, pair_scenarios
from bench.report.columnar import ROWS, RowTable

MAX_REP_SERIES = 40  # lines in the throttling plot; more is unreadable and bloats the page
_KEY = ("host_fingerprint", "cpu_model", "model_id", "variant", "backend", "ep", "threads", "test")
_MEDIANS = ("prefill_tok_s", "decode_tok_s", "ttft_s", "itl_p90_s", "peak_rss_bytes",
            "prefill_j_per_tok", "decode_j_per_tok", "bytes_per_token", "decode_roofline_frac")
_NAMED = ("model_id", "backend", "ep", "threads")
# bench.cost.scenarios.group_configurations' key: a device and a model x variant x backend x EP x threads
_CONFIG_KEY = ("host_fingerprint", "cpu_model", "accelerators", "cpu_cores_logical", "model_id",
               "variant", "backend", "ep", "threads")
_TEST_MEDIANS = ("prefill_tok_s", "decode_tok_s", "prefill_j_per_tok", "decode_j_per_tok",
                 "prefill_j_per_tok_low", "prefill_j_per_tok_high", "decode_j_per_tok_low",
                 "decode_j_per_tok_high")
_STATS = tuple(dict.fromkeys(_MEDIANS + _TEST_MEDIANS))  # medians a TestGroup holds


def energy_label(methods: Sequence[str]) -> str:
    """How an energy-derived number was obtained, printed next to it: never a bare figure."""
    return _energy_label(frozenset(methods))


@functools.lru_cache(maxsize=256)  # asked once per scenario and cell: thousands of times
def _energy_label(methods: frozenset[str]) -> str:
    real = sorted(methods - {"none"})
    if not real:
        return "not measured"
    if all(m.startswith("estimate") for m in real):
        return ", ".join(real)
    if any(m.startswith("estimate") for m in real):
        return "partly estimate: " + ", ".join(real)
    return "measured: " + ", ".join(real)


def is_estimate(label: str) -> bool:
    return "estimate" in label


@dataclass(frozen=True)
class TestStats:
    """Medians over the repetitions of one test on one device and configuration."""

    device: str
    host_fingerprint: str
    cpu_model: str
    model_id: str
    variant: str
    backend: str
    ep: str
    threads: int
    test: str
    reps: int
    prefill_tok_s: float | None  # None for a tgN test: its 1-token prompt says nothing about prefill
    decode_tok_s: float | None
    decode_tok_s_min: float | None
    decode_tok_s_max: float | None
    ttft_s: float | None
    itl_p90_s: float | None
    peak_rss_bytes: float | None
    prefill_j_per_tok: float | None
    decode_j_per_tok: float | None
    energy: str  # energy_label() of the rows
    config: str  # ConfigNamer label, variant included
    setup: str  # the same without the variant (plots colour by variant instead)
    bytes_per_token: float | None = None  # what a decode step reads (docs/roofline.md)
    decode_roofline_frac: float | None = None  # decode speed / (bandwidth / bytes_per_token)


@dataclass(frozen=True)
class RepSeries:
    """Decode throughput of one run of one test, repetition by repetition (throttling shows here)."""

    label: str
    reps: tuple[int, ...]
    decode_tok_s: tuple[float, ...]


@dataclass(frozen=True)
class ConfigNamer:
    """Names a configuration by the fields that differ between rows; shared ones are said once."""

    varying: frozenset[str]

    def __call__(self, model_id: str, variant: str | None, backend: str, ep: str, threads: int) -> str:
        values = {"model_id": model_id, "backend": backend, "ep": ep, "threads": f"{threads}t"}
        parts = [values["model_id"]] if "model_id" in self.varying else []
        parts += [variant] if variant is not None else []
        parts += [values[f] for f in ("backend", "ep", "threads") if f in self.varying]
        return " ".join(parts)


def _median(column: str, where: str = "") -> str:
    """SQL for the median ignoring NULLs: DuckDB's median of an even count is the mean of the two
    middle values, bit for bit as statistics.median and pandas (tests/test_report_columnar.py)."""
    x = f"CAST({column} AS DOUBLE)"
    return f"median(CASE WHEN {where} THEN {x} END)" if where else f"median({x})"


def config_namer(table: RowTable) -> tuple[ConfigNamer, str]:
    """The namer, and a sentence giving the values all rows share."""
    sql = ", ".join(f"count(DISTINCT {f}), min({f})" for f in _NAMED)
    counts = table.con.execute(f"SELECT {sql} FROM {ROWS}").fetchone()
    seen = {f: (counts[2 * i], counts[2 * i + 1]) for i, f in enumerate(_NAMED)}
    varying = frozenset(f for f, (n, _) in seen.items() if n > 1)
    shared = [f"{f.replace('_id', '')} {value}" for f, (n, value) in seen.items() if n == 1]
    return ConfigNamer(varying), ("All rows share: " + ", ".join(shared) + "." if shared else "")


def device_labels(pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """(host_fingerprint, cpu_model) -> the CPU name, plus the fingerprint only when two hosts share it."""
    by_cpu: dict[str, set[str]] = {}
    for fp, cpu in pairs:
        by_cpu.setdefault(cpu, set()).add(fp)
    return {(fp, cpu): cpu if len(by_cpu[cpu]) == 1 else f"{cpu} [{fp[:8]}]" for fp, cpu in pairs}


def table_device_labels(table: RowTable) -> dict[tuple[str, str], str]:
    pairs = table.con.execute(f"SELECT DISTINCT host_fingerprint, cpu_model FROM {ROWS}").fetchall()
    return device_labels(sorted(pairs))


@dataclass(frozen=True)
class TestGroup:
    """One test of one configuration (bench.cost.scenarios' grouping): what both the medians
    table and the pricing need, from one pass over the rows."""

    config: tuple[Any, ...]  # _CONFIG_KEY values
    test: str
    first: int  # `ord` of its first row
    reps: int
    tiny: int  # rows with a 1-token prompt, whose prefill figures the medians table ignores
    median: dict[str, float | None]  # _STATS, over every row
    decode_min: float | None
    decode_max: float | None
    methods: tuple[str, ...]
    cpu_arch: str  # of its first row
    os_name: str
    virtualized: bool
    cloud_provider: str | None  # the first non-empty one
    energy_basis: str | None

    @property
    def key(self) -> tuple[Any, ...]:
        """_KEY: the medians table's grouping."""
        fields = dict(zip(_CONFIG_KEY, self.config), test=self.test)
        return tuple(fields[k] for k in _KEY)


def test_groups(table: RowTable) -> list[TestGroup]:
    """Every (configuration, test) group, in order of first appearance."""
    key = ", ".join(_CONFIG_KEY)
    medians = ", ".join(_median(c) for c in _STATS)
    rows = table.con.execute(
        f"SELECT {key}, test, min(ord), count(*), count(*) FILTER (WHERE n_prompt <= 1), "
        f"{medians}, min(decode_tok_s), max(decode_tok_s), list(DISTINCT energy_method), "
        "arg_min(cpu_arch, ord), arg_min(os_name, ord), bool_or(coalesce(virtualized, false)), "
        "arg_min(cloud_provider, ord) FILTER (WHERE cloud_provider <> ''), "
        f"arg_min(energy_basis, ord) FILTER (WHERE energy_basis <> '') FROM {ROWS} "
        f"GROUP BY {key}, test").fetchall()
    n, m = len(_CONFIG_KEY), len(_STATS)
    out = []
    for r in sorted(rows, key=lambda r: r[n + 1]):
        test, first, reps, tiny = r[n:n + 4]
        low, high, methods, arch, os_name, virt, cloud, basis = r[n + 4 + m:]
        out.append(TestGroup(r[:n], test, first, reps, tiny, dict(zip(_STATS, r[n + 4:n + 4 + m])),
                             low, high, tuple(sorted(methods)), arch, os_name, virt, cloud, basis))
    return out


def medians_by_test(table: RowTable, groups: Sequence[TestGroup], labels: dict[tuple[str, str], str],
                    name: ConfigNamer) -> list[TestStats]:
    """Median of every metric per device x model x variant x backend x ep x threads x test; as in
    the run summary, a 1-token prompt (tgN) measures nothing about prefill.

    Taken from `groups` when each of them is one such test (the usual case: a host's
    accelerators and core count do not vary) with all or none of its prompts 1 token long;
    otherwise queried on its own."""
    keys = [g.key for g in groups]
    if len(set(keys)) < len(keys) or any(0 < g.tiny < g.reps for g in groups):
        return _medians_query(table, labels, name)
    out = []
    for g in sorted(groups, key=lambda g: g.key):
        k = dict(zip(_KEY, g.key))
        med = dict(g.median)
        if g.tiny:
            med["prefill_tok_s"] = med["prefill_j_per_tok"] = None
        out.append(_test_stats(k, g.reps, med, g.decode_min, g.decode_max, g.methods, labels, name))
    return out


def _test_stats(k: dict[str, Any], reps: int, med: dict[str, float | None], low: float | None,
                high: float | None, methods: Sequence[str], labels: dict[tuple[str, str], str],
                name: ConfigNamer) -> TestStats:
    return TestStats(
        device=labels[(k["host_fingerprint"], k["cpu_model"])], **k, reps=reps,
        prefill_tok_s=med["prefill_tok_s"], decode_tok_s=med["decode_tok_s"],
        decode_tok_s_min=low, decode_tok_s_max=high, ttft_s=med["ttft_s"],
        itl_p90_s=med["itl_p90_s"], peak_rss_bytes=med["peak_rss_bytes"],
        prefill_j_per_tok=med["prefill_j_per_tok"], decode_j_per_tok=med["decode_j_per_tok"],
        bytes_per_token=med.get("bytes_per_token"),
        decode_roofline_frac=med.get("decode_roofline_frac"),
        energy=energy_label(methods),
        config=name(k["model_id"], k["variant"], k["backend"], k["ep"], k["threads"]),
        setup=name(k["model_id"], None, k["backend"], k["ep"], k["threads"]))


def _medians_query(table: RowTable, labels: dict[tuple[str, str], str],
                   name: ConfigNamer) -> list[TestStats]:
    tiny = {"prefill_tok_s": "n_prompt > 1", "prefill_j_per_tok": "n_prompt > 1"}
    medians = ", ".join(_median(c, tiny.get(c, "")) for c in _MEDIANS)
    key = ", ".join(_KEY)
    rows = table.con.execute(
        f"SELECT {key}, count(*), {medians}, min(decode_tok_s), max(decode_tok_s), "
        f"list(DISTINCT energy_method) FROM {ROWS} GROUP BY {key}").fetchall()
    out = []
    for rec in sorted(rows, key=lambda r: r[:len(_KEY)]):
        reps, *values = rec[len(_KEY):]
        low, high, methods = values[len(_MEDIANS):]
        out.append(_test_stats(dict(zip(_KEY, rec[:len(_KEY)])), reps,
                               dict(zip(_MEDIANS, values[:len(_MEDIANS)])), low, high, methods,
                               labels, name))
    return out


def rep_series(table: RowTable, labels: dict[tuple[str, str], str], name: ConfigNamer,
               limit: int = MAX_REP_SERIES) -> tuple[list[RepSeries], int]:
    """Decode tok/s by repetition for each (run, configuration); the longest `limit` series kept
    (ties: in key order), each labelled by its first repetition."""
    group = "host_fingerprint, cpu_model, run_id, config_id"
    rows = table.con.execute(
        f"WITH sizes AS MATERIALIZED (SELECT {group}, count(*) AS n FROM {ROWS} "
        f"WHERE decode_tok_s IS NOT NULL GROUP BY {group}), "
        f"top AS (SELECT * FROM sizes ORDER BY n DESC, {group} LIMIT {int(limit)}) "
        f"SELECT {group}, model_id, variant, backend, ep, threads, test, rep, decode_tok_s, "
        f"(SELECT count(*) FROM sizes) FROM {ROWS} JOIN top USING ({group}) "
        f"WHERE decode_tok_s IS NOT NULL ORDER BY top.n DESC, {group}, rep, ord").fetchall()
    total = rows[0][-1] if rows else 0
    series: dict[tuple, list[Any]] = {}
    for r in rows:
        series.setdefault(r[:4], []).append(r)
    out = []
    for (fp, cpu, run_id, _), g in series.items():
        _, _, _, _, model_id, variant, backend, ep, threads, test, _, _, _ = g[0]
        label = (f"{labels[(fp, cpu)]} · {name(model_id, variant, backend, ep, int(threads))}"
                 f" · {test} · run {str(run_id)[:8]}")
        out.append(RepSeries(label, tuple(int(r[10]) for r in g), tuple(float(r[11]) for r in g)))
    return out, total


def configurations(groups: Sequence[TestGroup]) -> list[Configuration]:
    """bench.cost.scenarios.group_configurations over the groups: per configuration, each test's
    medians, paired into scenarios; the fields a configuration takes from its rows come from its
    first row, its first cloud provider and energy basis in test-then-row order."""
    by_config: dict[tuple[Any, ...], list[TestGroup]] = {}
    for g in groups:  # in order of first appearance: configurations and their tests alike
        by_config.setdefault(g.config, []).append(g)
    configs = []
    for k, tests in by_config.items():
        f = dict(zip(_CONFIG_KEY, k))
        medians = [TestMedians(test=t.test, reps=t.reps, energy_methods=t.methods,
                               **{c: t.median[c] for c in _TEST_MEDIANS}) for t in tests]
        scenarios, unpaired = pair_scenarios(sorted(medians, key=lambda m: m.test))
        configs.append(Configuration(
            model_id=f["model_id"], variant=f["variant"], backend=f["backend"], ep=f["ep"],
            threads=f["threads"], cpu_model=f["cpu_model"], accelerators=f["accelerators"],
            cpu_cores_logical=f["cpu_cores_logical"], cpu_arch=tests[0].cpu_arch,
            os_name=tests[0].os_name, scenarios=tuple(scenarios), unpaired=tuple(unpaired),
            host_fingerprint=f["host_fingerprint"], virtualized=any(t.virtualized for t in tests),
            cloud_provider=next((t.cloud_provider for t in tests if t.cloud_provider), None),
            energy_basis=next((t.energy_basis for t in tests if t.energy_basis), None)))
    return configs
