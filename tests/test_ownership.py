"""Owned or rented: the order of the decision, the rent arithmetic, and the one-line refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.cost import model as cost
from bench.cost.options import PricingOptions
from bench.cost.ownership import ASK, decide, for_configuration, local_price
from bench.cost.profiles import GridRegion, Mix
from bench.cost.scenarios import group_configurations
from bench.errors import EdgebenchError
from tests.conftest import run_cli
from tests.cost_rows import RENTS, chat_rows, device

MIX = Mix(id="3:1", name="3:1", input_share=0.75, output_share=0.25)
GRID = GridRegion(id="g", name="g", path=Path("x"), electricity_usd_per_kwh=0.2,
                  carbon_g_per_kwh=400.0)
# 750,000 / 600 + 250,000 / 40 = 1,250 + 6,250 = 7,500 s per Mtok
# energy 750,000 x 0.1 + 250,000 x 1.0 = 325,000 J
PERF = cost.ConfigPerf(600.0, 40.0, 0.1, 1.0)


def _decide(**kw):
    args = dict(rent_usd_per_hour=None, owned=False, device=None, cloud_provider=None,
                virtualized=False, vcpus=2, rents=RENTS)
    return decide(**{**args, **kw})


def test_the_users_rent_wins_over_everything():
    o = _decide(rent_usd_per_hour=0.5, device=device(0.09), cloud_provider="Amazon EC2",
                virtualized=True)
    assert (o.kind, o.rent_usd_per_hour, o.estimate, o.ask) == ("rented", 0.5, False, None)
    assert "--rent-usd-per-hour" in o.label and "0.5" in o.label


def test_owned_wins_over_a_profile_rent_and_a_cloud():
    o = _decide(owned=True, device=device(0.09), cloud_provider="Amazon EC2", virtualized=True)
    assert (o.kind, o.rent_usd_per_hour, o.ask) == ("owned", None, None)
    assert "--owned" in o.label and "electricity" in o.label


def test_the_device_profiles_rent_comes_before_the_cloud_and_the_vm_flag():
    o = _decide(device=device(0.0864), cloud_provider="Amazon EC2", virtualized=True)
    assert (o.kind, o.rent_usd_per_hour, o.estimate, o.ask) == ("rented", 0.0864, False, None)
    assert "device profile dev" in o.label
    # a profile without a rent does not decide anything
    bare = _decide(device=device(None))
    assert bare.kind == "owned"


def test_a_named_cloud_is_rented_at_the_typical_rent_labelled_without_asking():
    o = _decide(cloud_provider="Amazon EC2", virtualized=True, vcpus=2)
    # 2 vCPUs: 0.08, 0.10, 0.30 -> the median instance, b/small at $0.10
    assert (o.kind, o.rent_usd_per_hour, o.estimate, o.ask) == ("rented", 0.10, True, None)
    assert "Amazon EC2" in o.label and "typical on-demand rent for 2 vCPUs" in o.label
    assert "B small" in o.label  # the chosen instance is named
    # a rented bare-metal instance (no hypervisor flag) is still rented
    metal = _decide(cloud_provider="Amazon EC2", virtualized=False, vcpus=4)
    assert (metal.kind, metal.rent_usd_per_hour) == ("rented", 0.20)  # lower of the two middles


def test_a_vm_of_unknown_kind_is_rented_at_the_typical_rent_and_asks_in_one_line():
    o = _decide(virtualized=True, cloud_provider=None, vcpus=3)
    # no 3-vCPU instance: the next larger size (4 vCPUs), lower middle of 0.20 / 0.40
    assert (o.kind, o.rent_usd_per_hour, o.estimate) == ("rented", 0.20, True)
    assert "unknown kind" in o.label and "next larger size" in o.label
    assert o.ask == ASK and "\n" not in o.ask
    assert "--rent-usd-per-hour" in o.ask and "--owned" in o.ask


def test_bare_metal_is_owned():
    o = _decide(virtualized=False, cloud_provider=None)
    assert (o.kind, o.rent_usd_per_hour, o.estimate, o.ask) == ("owned", None, False, None)
    assert _decide(virtualized=None).kind == "owned"  # rows that never recorded it


def test_no_typical_rent_for_the_vcpu_count_is_said_not_guessed():
    cloud = _decide(cloud_provider="Amazon EC2", virtualized=True, vcpus=64)
    assert (cloud.kind, cloud.rent_usd_per_hour, cloud.ask) == ("rented", None, None)
    assert "no typical rent for 64 vCPUs" in cloud.label
    vm = _decide(virtualized=True, vcpus=64)
    assert vm.rent_usd_per_hour is None and vm.ask == ASK
    assert "no typical rent for 64 vCPUs" in vm.label
    # and the price is unknown, never the electricity in disguise
    dc = cost.device_cost(PERF, None, GRID, MIX, 1e6)
    lp = local_price(cloud, dc)
    assert (lp.usd_per_mtok, lp.basis) == (None, "rent")


def test_rent_per_mtok_is_the_rent_for_the_busy_seconds():
    dc = cost.device_cost(PERF, None, GRID, MIX, 1e6)
    assert dc.device_s_per_mtok == pytest.approx(7500.0)
    lp = local_price(_decide(rent_usd_per_hour=0.36), dc)
    # 0.36 $/h / 3600 s/h x 7,500 s = $0.75 per Mtok, no power bounds
    assert lp.basis == "rent" and lp.usd_per_mtok == pytest.approx(0.75)
    assert lp.low_usd_per_mtok == lp.high_usd_per_mtok == lp.usd_per_mtok
    assert not lp.estimated
    typical = local_price(_decide(cloud_provider="Amazon EC2", virtualized=True), dc)
    assert typical.usd_per_mtok == pytest.approx(0.10 / 3600 * 7500)  # $0.2083
    assert typical.estimated  # a typical rent is an estimate of this machine's


def test_owned_is_priced_by_electricity_with_the_estimates_bounds():
    perf = cost.ConfigPerf(600.0, 40.0, 0.1, 1.0, 0.05, 0.2, 0.5, 2.0)
    dc = cost.device_cost(perf, None, GRID, MIX, 1e6)
    lp = local_price(_decide(owned=True), dc)
    # 325,000 J / 3.6e6 J/kWh x $0.2 = $0.018056; low 162,500 J, high 650,000 J
    assert lp.basis == "electricity"
    assert lp.usd_per_mtok == pytest.approx(325_000 / 3.6e6 * 0.2)
    assert lp.low_usd_per_mtok == pytest.approx(162_500 / 3.6e6 * 0.2)
    assert lp.high_usd_per_mtok == pytest.approx(650_000 / 3.6e6 * 0.2)
    assert lp.estimated


def test_for_configuration_reads_the_rows_and_the_options():
    (cfg,) = group_configurations(chat_rows("m", cloud_provider="Amazon EC2", virtualized=True))
    o = for_configuration(cfg, None, PricingOptions(), RENTS)
    assert (o.kind, o.rent_usd_per_hour) == ("rented", 0.10) and "Amazon EC2" in o.label
    assert for_configuration(cfg, None, PricingOptions(owned=True), RENTS).kind == "owned"
    paid = for_configuration(cfg, None, PricingOptions(rent_usd_per_hour=1.5), RENTS)
    assert paid.rent_usd_per_hour == 1.5


def test_owned_and_a_rent_together_are_refused_in_one_line():
    with pytest.raises(EdgebenchError) as info:
        PricingOptions(owned=True, rent_usd_per_hour=1)
    message = str(info.value)
    assert "\n" not in message and "--owned" in message and "--rent-usd-per-hour" in message


@pytest.mark.parametrize("command", ["compare", "run"])
def test_the_two_flags_are_mutually_exclusive_on_the_cli(command, tmp_path):
    args = [str(tmp_path / "r.csv")] if command == "compare" else []
    done = run_cli(command, *args, "--owned", "--rent-usd-per-hour", "1")
    assert done.returncode == 2  # argparse's usage error, before anything runs
    assert "not allowed with argument" in done.stderr
    assert "--owned" in done.stderr and "--rent-usd-per-hour" in done.stderr
