"""Every estimate carries low and high bounds, and the verdict says which way it goes at both."""

from __future__ import annotations

import sqlite3
from types import SimpleNamespace

import pytest

from bench.cost import model as cost
from bench.cost.options import PricingOptions
from bench.cost.profiles import GridRegion, Mix
from bench.cost.short_verdict import short_verdict
from bench.energy.cpu_class import load_classes, profile_params
from bench.energy.meters.estimate import EstimateMeter, EstimateParams, PowerBound
from bench.energy.windows import EnergySetup, energy_fields
from bench.errors import EdgebenchError
from tests.rowfactory import make_row


class Process:
    """psutil.Process stand-in whose CPU time advances by `busy_s` per read."""

    def __init__(self, busy_s: float) -> None:
        self.cpu_s, self.busy_s = 0.0, busy_s

    def cpu_times(self):
        self.cpu_s += self.busy_s
        return SimpleNamespace(user=self.cpu_s, system=0.0)


def test_the_estimate_meter_integrates_the_model_at_both_bounds():
    params = EstimateParams(2.0, 10.0, "x", method="estimate:class", low=PowerBound(1.0, 5.0),
                            high=PowerBound(4.0, 20.0), basis="test class")
    t = [0.0]
    meter = EstimateMeter(0, 0, "x", params=params, process=Process(busy_s=1.0), logical_cores=2,
                          clock=lambda: t[0])
    meter.start()
    r0 = meter.read()
    t[0] = 1.0  # 1 s of wall time with 1 s of CPU on 2 cores: utilisation 0.5
    r1 = meter.read()
    t[0] = 3.0
    r2 = meter.read()
    assert meter.method == "estimate:class" and meter.is_estimate
    assert r1.total_j - r0.total_j == pytest.approx(2.0 + 8.0 * 0.5)
    assert r1.joules["estimate/low"] - r0.joules["estimate/low"] == pytest.approx(1.0 + 4.0 * 0.5)
    assert r1.joules["estimate/high"] - r0.joules["estimate/high"] == pytest.approx(4.0 + 16 * 0.5)
    fields = energy_fields(EnergySetup(meter, None), (r0, r1, r2), n_prompt=10, n_generated=3)
    assert fields.energy_method == "estimate:class" and fields.energy_basis == "test class"
    assert fields.prefill_j_per_tok_low == pytest.approx(0.3)
    assert fields.prefill_j_per_tok_high == pytest.approx(1.2)
    assert fields.prefill_j_per_tok_low < fields.prefill_j_per_tok < fields.prefill_j_per_tok_high
    assert fields.decode_j_per_tok_low < fields.decode_j_per_tok < fields.decode_j_per_tok_high


def test_a_measurement_has_no_bounds():
    class Counter:
        method, scope, update_period_s, sampling_interval_s, is_estimate = "rapl", "cpu_package", 0.001, None, False

    from bench.energy.meters.base import Reading

    edges = (Reading(0.0, {"package-0": 0.0}), Reading(1.0, {"package-0": 5.0}),
             Reading(2.0, {"package-0": 9.0}))
    fields = energy_fields(EnergySetup(Counter(), None), edges, 5, 3)
    assert fields.decode_j_per_tok == pytest.approx(2.0)
    assert fields.decode_j_per_tok_low is None and fields.energy_basis is None


def test_profile_bounds_come_from_the_table_or_the_profile():
    table = load_classes()
    p = profile_params("dev", 2.0, 10.0, tdp_min_w=None, tdp_max_w=None, table=table)
    assert (p.low.full_w, p.high.full_w) == (5.0, 20.0)  # 0.5x and 2x TDP
    assert (p.low.idle_w, p.high.idle_w) == (1.0, 3.0)
    q = profile_params("dev", 2.0, 10.0, tdp_min_w=7.0, tdp_max_w=12.0, table=table)
    assert (q.low.full_w, q.high.full_w) == (7.0, 12.0)


def test_the_class_table_refuses_a_figure_without_a_source(tmp_path):
    text = (load_classes.__globals__["paths"].profiles_dir() / "cpu_classes.toml").read_text()
    broken = text.replace('[classes.sources.full_w_per_logical_cpu_low]\nurl = "https://www.amd.com',
                          '[classes.sources.unused]\nurl = "https://www.amd.com', 1)
    (tmp_path / "cpu_classes.toml").write_text(broken)
    with pytest.raises(EdgebenchError, match="full_w_per_logical_cpu_low has no source"):
        load_classes(tmp_path)


GRID = GridRegion(id="g", name="g", path=None, electricity_usd_per_kwh=0.2, carbon_g_per_kwh=400.0)
MIX = Mix(id="3:1", name="3:1", input_share=0.75, output_share=0.25)


def _cost(low: float, high: float) -> cost.DeviceCost:
    perf = cost.ConfigPerf(1000.0, 100.0, 0.01, 0.1, low / 10, high / 10, low, high)
    return cost.device_cost(perf, None, GRID, MIX, 1e6)


def test_power_verdict_at_both_bounds_and_the_break_even_power():
    dc = _cost(0.05, 0.2)
    assert dc.marginal_usd_per_mtok_low < dc.marginal_usd_per_mtok < dc.marginal_usd_per_mtok_high
    assert cost.power_verdict(dc, dc.marginal_usd_per_mtok_high * 2, 0.2).kind == "local"
    assert cost.power_verdict(dc, dc.marginal_usd_per_mtok_low / 2, 0.2).kind == "cloud"
    price = dc.marginal_usd_per_mtok
    pv = cost.power_verdict(dc, price, 0.2)
    assert pv.kind == "depends"
    # at the break-even power, device time x power costs exactly the offer's price
    assert cost.energy_usd(pv.break_even_w * dc.device_s_per_mtok, 0.2) == pytest.approx(price)
    assert "break-even at" in pv.sentence("x")


def _estimated_rows(j_low: float, j_high: float, **kw) -> list:
    mid = (j_low + j_high) / 2
    return [make_row(test="chat", rep=rep, n_prompt=200, n_generated=128, prefill_tok_s=300.0,
                     decode_tok_s=30.0, energy_method="estimate:class", energy_scope="cpu_package",
                     prefill_j_per_tok=mid / 10, decode_j_per_tok=mid,
                     prefill_j_per_tok_low=j_low / 10, prefill_j_per_tok_high=j_high / 10,
                     decode_j_per_tok_low=j_low, decode_j_per_tok_high=j_high,
                     energy_basis="CPU class x86-vm", **kw) for rep in (1, 2)]


def test_the_short_verdict_says_which_way_it_goes():
    # an owned device: the marginal cost is electricity, so an estimate has two answers
    cheap = short_verdict(_estimated_rows(0.01, 0.02), PricingOptions(owned=True))
    assert len(cheap.splitlines()) <= 15
    assert "local machine: owned (--owned): electricity only" in cheap
    assert "-> local cheaper at both bounds" in cheap and "offer cheaper" not in cheap
    assert "estimate:class" in cheap and "CPU class x86-vm" in cheap
    # a CPU no profile matches, on bare metal: owned without being told
    mystery = dict(cpu_model="Mystery CPU 9000", virtualized=False)
    pricey = short_verdict(_estimated_rows(500.0, 600.0, **mystery), PricingOptions())
    assert "local machine: owned: electricity only" in pricey
    assert "-> offer cheaper at both bounds" in pricey and "local cheaper" not in pricey
    straddle = short_verdict(_estimated_rows(0.05, 300.0, **mystery), PricingOptions())
    assert "-> depends on power (break-even" in straddle
    # this VM's profile carries a rent: the marginal cost is the rent, which has no power bounds
    rented = short_verdict(_estimated_rows(0.01, 0.02, virtualized=True), PricingOptions())
    assert "local machine: rented at $0.0864/h (device profile amd-epyc-vm-2vcpu)" in rented
    assert "by rent" in rented and "both bounds" not in rented and "depends on power" not in rented


def test_an_older_database_gains_the_new_columns(tmp_path):
    from bench.serve.storage import Store

    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    Store(url).dispose()
    con = sqlite3.connect(tmp_path / "db.sqlite")
    con.execute("ALTER TABLE results DROP COLUMN energy_basis")
    con.commit()
    con.close()
    Store(url).dispose()
    con = sqlite3.connect(tmp_path / "db.sqlite")
    names = {row[1] for row in con.execute("PRAGMA table_info(results)")}
    assert "energy_basis" in names
